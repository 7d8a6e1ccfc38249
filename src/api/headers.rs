//! Response headers for every answer: `X-Content-Type-Options: nosniff`
//! (no browser guesses a type for what gmshub serves), and the
//! `[header.<name>]` rules of the configuration (see `config::headers`).
//! `edge` calls [`apply`] on each answer.

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
