//! The server under test, as both transports need it, and the client side
//! interface they share: open a session, subscribe, receive, publish.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// Where the Bayeux endpoint is: `http://host:port/path`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub authority: String,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .ok_or_else(|| format!("{url}: only http:// (or ws://) URLs on this machine"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let addr = authority
            .parse()
            .map_err(|e| format!("{authority}: expected ip:port ({e})"))?;
        Ok(Self {
            addr,
            authority: authority.to_owned(),
            path: format!("/{path}"),
        })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.authority, self.path)
    }
}

/// Opens a TCP connection to the server from one of many loopback source
/// addresses (127.0.1.1 to 127.0.1.250, in turn). With tens of thousands of
/// connections from one address to one port, the kernel's search for a free
/// ephemeral port dominates every connect (a profile of the idle ramp-up put
/// a quarter of all CPU time in it); many source addresses keep that search
/// short. Only for loopback servers: elsewhere the system chooses.
pub async fn connect_tcp(addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
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
