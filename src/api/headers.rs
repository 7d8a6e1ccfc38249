//! Response headers for every answer: `X-Content-Type-Options: nosniff`
//! (no browser guesses a type for what gmshub serves), and the
//! `[header.<name>]` rules of the configuration (see `config::headers`),
//! and `Secure` cookies over TLS. `edge` calls these on each answer.

use axum::http::{header, HeaderValue};
use axum::response::Response;

use crate::config::HeaderRule;

/// Adds `nosniff` (unless the answer set its own) and the rules matching
/// `path`, in order, up to the first terminating one.
pub fn apply(rules: &[HeaderRule], path: Option<&str>, response: &mut Response) {
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    let Some(path) = path else { return };
    for rule in rules.iter().filter(|r| r.matches(path)) {
        headers.insert(rule.name.clone(), rule.value.clone());
        if rule.terminating {
            break;
        }
    }
}

/// Makes every cookie set over TLS `Secure`, with `same_site` unless it
/// names its own (the `BAYEUX_BROWSER` cookie of a widget on another site
/// needs `SameSite=None` to come back with CometD's requests).
pub fn secure_cookies(same_site: &str, response: &mut Response) {
    let headers = response.headers_mut();
    if !headers.contains_key(header::SET_COOKIE) {
        return;
    }
    let cookies: Vec<_> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let text = cookie.to_str().unwrap_or_default();
        let lower = text.to_ascii_lowercase();
        let mut secured = text.to_owned();
        if !lower.contains("samesite") {
            secured.push_str("; SameSite=");
            secured.push_str(same_site);
        }
        if !lower.contains("secure") {
            secured.push_str("; Secure");
        }
        headers.append(header::SET_COOKIE, secured.parse().unwrap_or(cookie));
    }
}
