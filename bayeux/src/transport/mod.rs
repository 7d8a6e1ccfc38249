//! The three transports as one axum router: WebSocket and callback-polling
//! (JSONP) on GET, long-polling on POST, at the mount point and at any path
//! under it (the CometD client appends `/handshake`, `/connect`, ...).

mod cookie;
mod http;
mod websocket;

use std::sync::Arc;

use axum::routing::{get, MethodRouter};
use axum::Router;

use crate::server::Bayeux;

/// A router serving Bayeux at each of `mounts` (e.g. `/genesys/cometd`).
pub fn router(server: Arc<Bayeux>, mounts: &[&str]) -> Router {
    let mut router = Router::new();
    for mount in mounts {
        let mount = mount.trim_end_matches('/');
        router = router
            .route(mount, endpoint())
            .route(&format!("{mount}/"), endpoint())
            .route(&format!("{mount}/{{*rest}}"), endpoint());
    }
    router.with_state(server)
}

fn endpoint() -> MethodRouter<Arc<Bayeux>> {
    get(http::get).post(http::long_polling)
}
