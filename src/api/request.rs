//! What the REST APIs read off a request besides its path and form body:
//! the `gms_user` header GMS clients name their end user in, the client's
//! address, and JSON object bodies.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};

use crate::wire::GMS_USER;

/// A media type without its parameters (`text/html; charset=x` → `text/html`).
pub fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Whether the request says its body is JSON.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| essence(t).eq_ignore_ascii_case("application/json"))
}

/// The end user a request names in its `gms_user` header.
pub fn gms_user(headers: &HeaderMap) -> Option<&str> {
    headers.get(GMS_USER).and_then(|v| v.to_str().ok())
}

/// The address the request came from (none for a hub driven in-process,
/// without a listener).
pub fn peer(extensions: &Extensions) -> Option<IpAddr> {
    peer_socket(extensions).map(|addr| addr.ip())
}

/// The key the per-client limits count a request's client under (see
/// `bayeux::client_key`); `None` when the client is exempt
/// (`[dos-filter] ipWhitelist`) or unknown. Put on every request by the edge.
#[derive(Debug, Clone, Copy)]
pub struct ClientKey(pub Option<IpAddr>);

pub fn client_key(extensions: &Extensions) -> Option<IpAddr> {
    extensions.get::<ClientKey>().and_then(|k| k.0)
}

/// The client's address and port (port 0 when a trusted proxy named it).
pub fn peer_socket(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

/// A request body that must be one JSON object; the error says what it is
/// instead.
pub fn object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("the body must be a JSON object".into()),
        Err(e) => Err(format!("the body is not JSON: {e}")),
    }
}
