//! Accepting and serving connections within bounds (axum's `serve` has
//! neither limits nor a header-read timer): at most `[server]
//! max-connections` open at once, set below the open-files limit so that
//! accepting never fails for want of a descriptor; at most
//! `max-connections-per-address` from one client address; every HTTP/1
//! request head (and an idle keep-alive connection's next one) read within
//! `header-read-timeout`, so sockets that say nothing, or dribble, are
//! closed. A connection over a limit is closed as soon as it is accepted.
//! May use: `api::edge` (what is served), the configuration.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use dashmap::DashMap;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::api::edge::Served;
use crate::config::ConnectionLimits;

/// Counts open connections, in all and by client address.
pub struct Gate {
    limits: ConnectionLimits,
    open: AtomicUsize,
    by_address: DashMap<IpAddr, usize>,
    refused: AtomicUsize,
}

/// One admitted connection; its drop gives the place back.
pub struct Permit {
    gate: Arc<Gate>,
    peer: IpAddr,
}

impl Gate {
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: AtomicUsize::new(0),
            by_address: DashMap::new(),
            refused: AtomicUsize::new(0),
        })
    }

    /// A place for a connection from `peer`, if both limits allow one.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Permit> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.limits.total {
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.refuse(peer, "max-connections");
            return None;
        }
        let mut count = self.by_address.entry(peer).or_insert(0);
        if *count >= self.limits.per_address {
            drop(count);
            self.open.fetch_sub(1, Ordering::AcqRel);
            self.refuse(peer, "max-connections-per-address");
            return None;
        }
        *count += 1;
        metrics::gauge!("gmshub_connections").increment(1.0);
        Some(Permit {
            gate: self.clone(),
            peer,
        })
    }

    fn refuse(&self, peer: IpAddr, limit: &'static str) {
        metrics::counter!("gmshub_connections_refused_total").increment(1);
        // One line per thousand, not one per connection of a flood.
        if self.refused.fetch_add(1, Ordering::Relaxed) % 1000 == 0 {
            tracing::warn!(%peer, limit, "connection refused ([server] {limit})");
        }
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.by_address.remove_if_mut(&self.peer, |_, count| {
            *count -= 1;
            *count == 0
        });
        self.gate.open.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("gmshub_connections").decrement(1.0);
    }
}

/// Serves `app` on `listener` until `stopping` turns true, then waits for
/// the connections under way to finish (the caller bounds the wait).
pub async fn serve<L>(
    mut listener: L,
    app: Served,
    gate: Arc<Gate>,
    mut stopping: watch::Receiver<bool>,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let graceful = GracefulShutdown::new();
    let header_read_timeout = gate.limits.header_read_timeout;
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // CONNECT, for WebSocket over HTTP/2.
    builder.http2().enable_connect_protocol();
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        let Some(permit) = gate.admit(peer.ip()) else {
            continue;
        };
        tracing::trace!(%peer, "connection accepted");
        // hyper times a head once its first byte is in; a connection that
        // sends nothing at all is timed here, until its first request.
        let asked = Arc::new(AtomicBool::new(false));
        let asked_in = asked.clone();
        let service = app
            .clone()
            .map_request(move |request: hyper::Request<Incoming>| {
                asked_in.store(true, Ordering::Relaxed);
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = &mut connection => Some(ended),
                () = tokio::time::sleep(header_read_timeout) => None,
            };
            let ended = match ended {
                Some(ended) => ended,
                None if asked.load(Ordering::Relaxed) => connection.await,
                None => Ok(()), // silent: dropped, which closes it
            };
            if let Err(e) = ended {
                tracing::trace!(%peer, "connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_hold_in_all_and_per_address_and_free_on_drop() {
        let gate = Gate::new(ConnectionLimits {
            total: 3,
            per_address: 2,
            header_read_timeout: Duration::from_secs(1),
        });
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 1].into(), [127, 0, 0, 2].into());
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert!(gate.admit(a).is_none(), "two per address");
        let _third = gate.admit(b).unwrap();
        assert!(gate.admit(b).is_none(), "three in all");
        assert_eq!(gate.open(), 3);
        drop(first);
        assert_eq!(gate.open(), 2);
        let _again = gate.admit(a).unwrap();
        assert_eq!(gate.by_address.get(&a).map(|c| *c), Some(2));
    }
}
