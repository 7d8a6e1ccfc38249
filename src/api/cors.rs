//! Cross-origin requests (see `config::cors` for the options): tower-http's
//! `CorsLayer` answers preflights and adds the response headers for listed
//! origins; in front of it, requests and WebSocket upgrades from origins
//! that are not listed are refused with 403 (unless `[cors]` says to
//! deliver them). Requests without `Origin`, and same-origin ones (the
//! `Origin` names the `Host` asked), pass untouched.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::error::ApiError;
use crate::config::CorsSettings;

/// tower-http's layer for the listed origins; `None` when none is listed
/// (then no answer carries CORS headers, and `refusal` turns cross-origin
/// requests away).
pub fn layer(cors: &Arc<CorsSettings>) -> Option<CorsLayer> {
    if !cors.any_origin && cors.origins.is_empty() {
        return None;
    }
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
fn same_origin(origin: &str, host: Option<&HeaderValue>) -> bool {
    let authority = origin.split_once("://").map_or("", |(_, a)| a);
    host.and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case(authority))
}

/// The 403 for a request from an origin that is not listed (unless
/// `[cors]` says to deliver it anyway).
pub fn refusal(cors: &CorsSettings, request: &Request) -> Option<Response> {
    let headers = request.headers();
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    if same_origin(origin, headers.get(header::HOST)) || cors.allows(origin) {
        return None;
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
        return None;
    }
    let origin = origin.chars().take(200).collect::<String>();
    tracing::debug!(origin, upgrade, "cross-origin request refused");
    Some(
        ApiError::new(
            StatusCode::FORBIDDEN,
            "com.genesyslab.gsg.services.exceptions.ForbiddenException",
            format!("origin {origin} is not allowed ([cors] allowedOriginPatterns)"),
        )
        .into_response(),
    )
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
