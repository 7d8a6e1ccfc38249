//! Cross-origin requests (see `config::cors` for the options): tower-http's
//! `CorsLayer` answers preflights; the answer to an actual request from a
//! listed origin gets its headers here, from values made once at start
//! (`CorsLayer` clones its whole configuration and builds a header map per
//! request: +17 % of a long-poll's CPU, for three constant headers).
//! Requests and WebSocket upgrades from origins that are not listed are
//! refused with 403 (unless `[cors]` says to deliver them). Requests
//! without `Origin`, and same-origin ones (the `Origin` names the `Host`
//! asked), pass untouched.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::error::ApiError;
use crate::config::CorsSettings;

/// The headers of an answer to an actual request from a listed origin.
#[derive(Clone)]
pub struct Actual {
    credentials: bool,
    exposed: Option<HeaderValue>,
}

impl Actual {
    /// `None` when no origin is listed (then no answer carries CORS headers).
    pub fn new(cors: &CorsSettings) -> Option<Self> {
        if !cors.any_origin && cors.origins.is_empty() {
            return None;
        }
        let exposed = (!cors.exposed.is_empty())
            .then(|| cors.exposed.join(", ").parse().ok())
            .flatten();
        Some(Self {
            credentials: cors.credentials,
            exposed,
        })
    }

    /// Adds them for `origin` (listed, or `None` for a request without one
    /// that gets only `Vary`).
    pub fn apply(&self, origin: Option<HeaderValue>, response: &mut Response) {
        let headers = response.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        let Some(origin) = origin else { return };
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(exposed) = &self.exposed {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
        }
    }
}

/// Whether `request` is a CORS preflight (for [`preflights`]).
pub fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// tower-http's layer that answers preflights from the listed origins;
/// `None` when none is listed.
pub fn preflights(cors: &Arc<CorsSettings>) -> Option<CorsLayer> {
    Actual::new(cors)?;
    let parse = |names: &[String]| -> Vec<HeaderName> {
        names.iter().filter_map(|n| n.parse().ok()).collect()
    };
    let methods: Vec<Method> = cors.methods.iter().filter_map(|m| m.parse().ok()).collect();
    let allowed = cors.clone();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                origin.to_str().is_ok_and(|o| allowed.allows(o))
            }))
            .allow_methods(methods)
            .allow_headers(parse(&cors.headers))
            .expose_headers(parse(&cors.exposed))
            .allow_credentials(cors.credentials)
            .max_age(cors.max_age),
    )
}

/// Whether `origin` is the site that was asked (`Host`).
pub(super) fn same_origin(origin: &str, host: Option<&HeaderValue>) -> bool {
    let authority = origin.split_once("://").map_or("", |(_, a)| a);
    host.and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case(authority))
}

/// What a request's `Origin` asks for: `Ok(Some(origin))` for a listed
/// one (its answer gets CORS headers), `Ok(None)` when none is needed, and
/// the 403 for an origin that is not listed (unless `[cors]` says to
/// deliver it anyway).
pub fn check(cors: &CorsSettings, request: &Request) -> Result<Option<HeaderValue>, ApiError> {
    let headers = request.headers();
    let Some(value) = headers.get(header::ORIGIN) else {
        return Ok(None);
    };
    let Ok(origin) = value.to_str() else {
        return Ok(None);
    };
    if same_origin(origin, headers.get(header::HOST)) {
        return Ok(None);
    }
    if cors.allows(origin) {
        return Ok(Some(value.clone()));
    }
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|u| u.to_str().ok())
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let deliver = if upgrade {
        cors.deliver_not_allowed_websocket
    } else {
        cors.deliver_not_allowed
    };
    if deliver {
        return Ok(None);
    }
    let origin = origin.chars().take(200).collect::<String>();
    tracing::debug!(origin, upgrade, "cross-origin request refused");
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "com.genesyslab.gsg.services.exceptions.ForbiddenException",
        format!("origin {origin} is not allowed ([cors] allowedOriginPatterns)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_is_the_host_asked() {
        let host = HeaderValue::from_static("chat.example.com:8080");
        assert!(same_origin("https://chat.example.com:8080", Some(&host)));
        assert!(!same_origin("https://chat.example.com", Some(&host)));
        assert!(!same_origin("null", Some(&host)));
        assert!(!same_origin("https://chat.example.com:8080", None));
    }
}
