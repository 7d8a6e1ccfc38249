//! `GET /gmshub/openapi.json`: the OpenAPI 3.1 description of the REST
//! APIs (`docs/openapi.json`, served as committed). `tests/openapi.rs`
//! checks it names every route, and `scripts/test` runs schemathesis with
//! it against the binary.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// Where the description is served.
pub const PATH: &str = "/gmshub/openapi.json";

const DESCRIPTION: &str = include_str!("../../docs/openapi.json");

pub fn router() -> Router {
    Router::new().route(
        PATH,
        get(|| async {
            ([(header::CONTENT_TYPE, "application/json")], DESCRIPTION).into_response()
        }),
    )
}
