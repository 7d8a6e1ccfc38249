//! `GET /metrics`: the Prometheus text exposition, in the back office's
//! access group (`[admin]` credentials or `[server] admin-networks`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::config::access::METRICS;
use crate::observe::Scrape;

pub fn router(scrape: Scrape) -> Router {
    Router::new()
        .route(METRICS, get(exposition))
        .with_state(scrape)
}

async fn exposition(State(scrape): State<Scrape>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        scrape.render().await,
    )
}
