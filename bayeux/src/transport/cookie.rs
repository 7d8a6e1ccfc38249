//! What a transport reads off a request's headers before the engine sees it:
//! the BAYEUX_BROWSER cookie (and the `Set-Cookie` that gives a browser its
//! id) and the end user named by the configured identity header.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::config::BayeuxConfig;
use crate::id::random_hex;

/// The end user a request names, from `BayeuxConfig::identity_header`.
pub(crate) fn identity(headers: &HeaderMap, config: &BayeuxConfig) -> Option<String> {
    let name = config.identity_header.as_deref()?;
    let value = headers.get(name)?.to_str().ok()?.trim();
    // Bounded: it is kept on the session.
    (!value.is_empty() && value.len() <= 256).then(|| value.to_owned())
}

/// The browser id of a request: its BAYEUX_BROWSER cookie, or a new one
/// (`true`) to be set if the request creates a session.
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
