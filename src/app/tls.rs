//! The TLS listener: rustls (TLS 1.3 and 1.2 only), ALPN `h2` and
//! `http/1.1`, the certificate from PEM files or a PKCS#12 keystore and
//! reloaded on SIGHUP ([`Certificates::reload`]: new connections get the
//! new one, open connections keep theirs). Handshakes run beside the
//! accept loop, each bounded, so a client that stalls its handshake holds
//! up nobody else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::header;
use axum::response::IntoResponse;
use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use secrecy::ExposeSecret;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

use crate::config::tls::CertificateSource;

/// How long a client may take over its handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("[tls] certificate: {0}")]
pub struct TlsError(String);

/// The certificate new connections are served, swappable.
#[derive(Debug)]
pub struct Certificates {
    source: CertificateSource,
    current: RwLock<Arc<CertifiedKey>>,
}

fn load(source: &CertificateSource) -> Result<CertifiedKey, TlsError> {
    let failed = |e: &dyn std::fmt::Display| TlsError(e.to_string());
    let (chain, key): (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) = match source {
        CertificateSource::Pem { chain, key } => {
            let certs = CertificateDer::pem_file_iter(chain)
                .and_then(|all| all.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TlsError(format!("{}: {e}", chain.display())))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| TlsError(format!("{}: {e}", key.display())))?;
            (certs, key)
        }
        CertificateSource::Keystore { path, password } => {
            let bytes =
                std::fs::read(path).map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
            let store = p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                password.expose_secret(),
                p12_keystore::Pkcs12ImportPolicy::Strict,
            )
            .map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
            let (_, entry) = store
                .private_key_chain()
                .ok_or_else(|| TlsError(format!("{}: no private key", path.display())))?;
            let certs = entry
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect();
            let key = PrivatePkcs8KeyDer::from(entry.key().as_der().to_vec()).into();
            (certs, key)
        }
    };
    if chain.is_empty() {
        return Err(TlsError("no certificate".into()));
    }
    let signing =
        rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).map_err(|e| failed(&e))?;
    Ok(CertifiedKey::new(chain, signing))
}

impl Certificates {
    pub fn load(source: CertificateSource) -> Result<Arc<Self>, TlsError> {
        let current = RwLock::new(Arc::new(load(&source)?));
        Ok(Arc::new(Self { source, current }))
    }

    /// Reads the files again; on an error the current certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.source)?;
        *self.current.write() = Arc::new(fresh);
        Ok(())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

/// What axum serves: TLS streams whose handshake is done.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, certificates: Arc<Certificates>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        // The provider named, as more than one is linked in (the store's
        // and push's clients bring theirs).
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(certificates);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (tx, ready) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little.
                        tracing::warn!("TLS listener: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                if tx.is_closed() {
                    return;
                }
                let (acceptor, ready) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = ready.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accept task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The plain listener's whole answer once `[tls] redirect-http` is on: 308
/// to the same host, path and query on the TLS port.
pub fn redirect_to(tls_port: u16) -> axum::Router {
    axum::Router::new().fallback(move |request: Request| async move {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_owned());
        let Some(host) = host.filter(|h| !h.is_empty() && !h.contains(['/', '@'])) else {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                "a Host header is needed",
            )
                .into_response();
        };
        let port = if tls_port == 443 {
            String::new()
        } else {
            format!(":{tls_port}")
        };
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let target = format!("https://{host}{port}{path}");
        (
            axum::http::StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, target)],
        )
            .into_response()
    })
}
