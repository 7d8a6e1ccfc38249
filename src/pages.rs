//! The pages the binary serves: the CometD playground at `/` (connect with
//! the official CometD JavaScript client, subscribe, publish, watch messages
//! arrive), the customer chat widget at `/chat`, the agent desk at
//! `/agent` and the callback page at `/callback`. The client's files are
//! embedded at build time (see `build.rs`) and served under `/js/cometd/`.
//! May use: nothing else of the binary.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

const INDEX: &str = include_str!("../web/index.html");
const CHAT: &str = include_str!("../web/chat.html");
const AGENT: &str = include_str!("../web/agent.html");
const CALLBACK: &str = include_str!("../web/callback.html");
const MISSING: &str =
    "<!doctype html><title>gmshub</title><p>This gmshub binary was built without the \
CometD JavaScript client. Run <code>npm ci --prefix web</code> and build again.</p>";

/// The pages and the client's files, routed.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/js/cometd/{file}", get(cometd_js))
        .route("/chat", get(chat))
        .route("/agent", get(agent))
        .route("/callback", get(callback))
}

async fn index() -> Html<&'static str> {
    if COMETD_JS.is_empty() {
        Html(MISSING)
    } else {
        Html(INDEX)
    }
}

/// The customer chat widget: Chat API v2 over CometD, REST as fallback.
async fn chat() -> Html<&'static str> {
    Html(if COMETD_JS.is_empty() { MISSING } else { CHAT })
}

/// The agent desk: the agent API, with events over CometD.
async fn agent() -> Html<&'static str> {
    Html(if COMETD_JS.is_empty() { MISSING } else { AGENT })
}

/// Booking a callback, its free times, and its state live over CometD.
async fn callback() -> Html<&'static str> {
    Html(if COMETD_JS.is_empty() {
        MISSING
    } else {
        CALLBACK
    })
}

async fn cometd_js(Path(file): Path<String>) -> Response {
    match COMETD_JS.iter().find(|(name, _)| *name == file) {
        Some((_, body)) => (
            [
                (header::CONTENT_TYPE, "text/javascript;charset=UTF-8"),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
