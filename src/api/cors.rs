//! Cross-origin requests (see `config::cors` for the options): tower-http's
//! `CorsLayer` answers preflights and adds the response headers for listed
//! origins; in front of it, requests and WebSocket upgrades from origins
//! that are not listed are refused with 403 (unless `[cors]` says to
//! deliver them). Requests without `Origin`, and same-origin ones (the
//! `Origin` names the `Host` asked), pass untouched.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::error::ApiError;
use crate::config::CorsSettings;

/// `router` with cross-origin handling around it.
pub fn around(router: Router, cors: Arc<CorsSettings>) -> Router {
    let parse = |names: &[String]| -> Vec<HeaderName> {
        names.iter().filter_map(|n| n.parse().ok()).collect()
    };
    let methods: Vec<Method> = cors.methods.iter().filter_map(|m| m.parse().ok()).collect();
    let allowed = cors.clone();
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| allowed.allows(o))
        }))
        .allow_methods(methods)
        .allow_headers(parse(&cors.headers))
        .expose_headers(parse(&cors.exposed))
        .allow_credentials(cors.credentials)
        .max_age(cors.max_age);
    router
        .layer(layer)
        .layer(axum::middleware::from_fn_with_state(cors, refuse))
}

/// Whether `origin` is the site that was asked (`Host`).
fn same_origin(origin: &str, host: Option<&HeaderValue>) -> bool {
    let authority = origin.split_once("://").map_or("", |(_, a)| a);
    host.and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case(authority))
}

async fn refuse(State(cors): State<Arc<CorsSettings>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return next.run(request).await;
    };
    if same_origin(origin, headers.get(header::HOST)) || cors.allows(origin) {
        return next.run(request).await;
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
        return next.run(request).await;
    }
    let origin = origin.chars().take(200).collect::<String>();
    tracing::debug!(origin, upgrade, "cross-origin request refused");
    ApiError::new(
        StatusCode::FORBIDDEN,
        "com.genesyslab.gsg.services.exceptions.ForbiddenException",
        format!("origin {origin} is not allowed ([cors] allowedOriginPatterns)"),
    )
    .into_response()
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
