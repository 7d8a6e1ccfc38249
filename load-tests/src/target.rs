//! The server under test, as both transports need it, and the client side
//! interface they share: open a session, subscribe, receive, publish.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::lp::{LpClient, LpPublisher};
use crate::stats::Shared;
use crate::ws::{WsClient, WsPublisher};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Websocket,
    LongPolling,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::LongPolling => "long-polling",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    Ws(Box<tokio_tungstenite::tungstenite::Error>),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        // Boxed: tungstenite's error is large and this one travels by value.
        ClientError::Ws(Box::new(e))
    }
}

/// Where the Bayeux endpoint is (`http://host:port/path`, or `https://`
/// with the certificate authority `--ca` names), and the `Origin` each
/// request carries, if any (`--origin`: a widget on another site).
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub authority: String,
    pub path: String,
    pub origin: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    pub fn parse(
        url: &str,
        ca: Option<&std::path::Path>,
        origin: Option<&str>,
    ) -> Result<Self, String> {
        let (secure, rest) = if let Some(rest) = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("wss://"))
        {
            (true, rest)
        } else if let Some(rest) = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
        {
            (false, rest)
        } else {
            return Err(format!("{url}: expected an http:// or https:// URL"));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let addr = authority
            .parse()
            .map_err(|e| format!("{authority}: expected ip:port ({e})"))?;
        let tls = match (secure, ca) {
            (false, _) => None,
            (true, None) => {
                return Err(format!(
                    "{url}: https needs --ca (the server's certificate authority, PEM)"
                ))
            }
            (true, Some(ca)) => Some(client_config(ca)?),
        };
        Ok(Self {
            addr,
            authority: authority.to_owned(),
            path: format!("/{path}"),
            origin: origin.map(str::to_owned),
            tls,
        })
    }

    pub fn ws_url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.authority, self.path)
    }

    /// A connection to the server: TCP (see [`connect_tcp`]), then TLS for
    /// an `https://` target.
    pub async fn connect(&self) -> io::Result<Stream> {
        let tcp = connect_tcp(self.addr).await?;
        let Some(tls) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let name = rustls::pki_types::ServerName::from(self.addr.ip());
        let tls = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// A rustls client that trusts only the certificates in `ca`, over HTTP/1.1
/// (as CometD clients speak it: WebSocket upgrades need it).
fn client_config(ca: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A connection to the server, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Opens a TCP connection to the server from one of many loopback source
/// addresses (127.0.1.1 to 127.0.1.250, in turn). With tens of thousands of
/// connections from one address to one port, the kernel's search for a free
/// ephemeral port dominates every connect (a profile of the idle ramp-up put
/// a quarter of all CPU time in it); many source addresses keep that search
/// short. Only for loopback servers: elsewhere the system chooses.
pub async fn connect_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if addr.ip().is_loopback() && addr.is_ipv4() {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % 250;
        socket.bind(SocketAddr::from(([127, 0, 1, 1 + n as u8], 0)))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A subscribing client of either transport.
pub enum Subscriber {
    Ws(WsClient),
    Lp(LpClient),
}

impl Subscriber {
    pub async fn open(target: &Target, transport: Transport) -> Result<Self, ClientError> {
        Ok(match transport {
            Transport::Websocket => Subscriber::Ws(WsClient::open(target).await?),
            Transport::LongPolling => Subscriber::Lp(LpClient::open(target).await?),
        })
    }

    pub async fn subscribe(&mut self, channels: &[String]) -> Result<(), ClientError> {
        match self {
            Subscriber::Ws(c) => c.subscribe(channels).await,
            Subscriber::Lp(c) => c.subscribe(channels).await,
        }
    }

    /// Ends the session (`/meta/disconnect`) and closes the connection.
    pub async fn close(self) {
        match self {
            Subscriber::Ws(c) => c.close().await,
            Subscriber::Lp(c) => c.close().await,
        }
    }

    /// Receives until `stop` fires, recording every delivery.
    pub async fn run(self, rec: Shared, stop: tokio::sync::watch::Receiver<bool>) {
        match self {
            Subscriber::Ws(c) => c.run(rec, stop).await,
            Subscriber::Lp(c) => c.run(rec, stop).await,
        }
    }
}

/// A publishing client of either transport; keeps its session alive.
pub enum Publisher {
    Ws(WsPublisher),
    Lp(LpPublisher),
}

impl Publisher {
    pub async fn open(
        target: &Target,
        transport: Transport,
        errors: Shared,
    ) -> Result<Self, ClientError> {
        Ok(match transport {
            Transport::Websocket => Publisher::Ws(WsPublisher::open(target, errors).await?),
            Transport::LongPolling => Publisher::Lp(LpPublisher::open(target, errors).await?),
        })
    }

    pub fn client_id(&self) -> &str {
        match self {
            Publisher::Ws(p) => &p.id,
            Publisher::Lp(p) => &p.id,
        }
    }

    pub async fn send(&mut self, batch: String) -> Result<(), ClientError> {
        match self {
            Publisher::Ws(p) => p.send(batch),
            Publisher::Lp(p) => p.send(batch).await,
        }
    }

    pub async fn close(self) {
        match self {
            Publisher::Ws(p) => p.close().await,
            Publisher::Lp(p) => p.close().await,
        }
    }
}
