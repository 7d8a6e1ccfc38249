//! Response headers for every answer: `X-Content-Type-Options: nosniff`
//! (no browser guesses a type for what gmshub serves), and the
//! `[header.<name>]` rules of the configuration (see `config::headers`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::HeaderRule;

/// `router` with the headers added to what it answers.
pub fn around(router: Router, rules: Arc<Vec<HeaderRule>>) -> Router {
    let router = router.layer(SetResponseHeaderLayer::if_not_present(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ));
    if rules.is_empty() {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(rules, apply))
}

async fn apply(
    State(rules): State<Arc<Vec<HeaderRule>>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    for rule in rules.iter().filter(|r| r.matches(&path)) {
        response
            .headers_mut()
            .insert(rule.name.clone(), rule.value.clone());
        if rule.terminating {
            break;
        }
    }
    response
}
