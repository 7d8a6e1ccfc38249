//! The three transports as one axum router: WebSocket and callback-polling
//! (JSONP) on GET, long-polling on POST, at the mount point and at any path
//! under it (the CometD client appends `/handshake`, `/connect`, ...).

mod http;
mod websocket;

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::routing::{get, MethodRouter};
use axum::Router;

use crate::server::Bayeux;
use crate::session::random_hex;

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

/// The browser id of a request: its BAYEUX_BROWSER cookie, or a new one
/// (`true`) to be set if the request creates a session.
/// The end user a request names, from `BayeuxConfig::identity_header`.
pub(crate) fn identity(headers: &HeaderMap, config: &crate::BayeuxConfig) -> Option<String> {
    let name = config.identity_header.as_deref()?;
    let value = headers.get(name)?.to_str().ok()?.trim();
    // Bounded: it is kept on the session.
    (!value.is_empty() && value.len() <= 256).then(|| value.to_owned())
}

pub(crate) fn browser_id(headers: &HeaderMap, cookie_name: &str) -> (String, bool) {
    let found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == cookie_name && valid_browser_id(value))
        .map(|(_, value)| value.to_owned());
    match found {
        Some(id) => (id, false),
        None => (random_hex::<16>(), true),
    }
}

fn valid_browser_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= 64 && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `Set-Cookie` for a new browser id: path `/`, HttpOnly, as CometD sets it.
pub(crate) fn browser_cookie(cookie_name: &str, id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{cookie_name}={id}; Path=/; HttpOnly"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}
