//! What the binary serves to browsers: the embeddable chat widget at
//! `/widget/v1/` (one script any site includes, with the official CometD
//! JavaScript client inside, and its stylesheet), and the sample pages: the
//! CometD playground at `/`, the chat page at `/chat` (which embeds the
//! widget), the agent desk at `/agent` and the callback page at
//! `/callback`. Everything is embedded at build time (see `build.rs`); the
//! client's files are served under `/js/cometd/`. May use: nothing else of
//! the binary.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

const INDEX: &str = include_str!("../web/index.html");
const CHAT: &str = include_str!("../web/chat.html");
const AGENT: &str = include_str!("../web/agent.html");
const CALLBACK: &str = include_str!("../web/callback.html");
const WIDGET_CSS: &str = include_str!("../web/widget/widget.css");
const FAVICON: &str = include_str!("../web/favicon.svg");
const MISSING: &str =
    "<!doctype html><title>gmshub</title><p>This gmshub binary was built without the \
CometD JavaScript client. Run <code>npm ci --prefix web</code> and build again.</p>";

/// The pages' scripts and styles (no page carries inline code, so their
/// Content-Security-Policy needs no `unsafe-inline`).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.js",
        "text/javascript",
        include_str!("../web/index.js"),
    ),
    ("index.css", "text/css", include_str!("../web/index.css")),
    ("chat.js", "text/javascript", include_str!("../web/chat.js")),
    (
        "agent.js",
        "text/javascript",
        include_str!("../web/agent.js"),
    ),
    ("agent.css", "text/css", include_str!("../web/agent.css")),
    (
        "callback.js",
        "text/javascript",
        include_str!("../web/callback.js"),
    ),
    (
        "callback.css",
        "text/css",
        include_str!("../web/callback.css"),
    ),
    ("page.css", "text/css", include_str!("../web/page.css")),
    ("favicon.svg", "image/svg+xml", FAVICON),
];

/// How the pages are served.
#[derive(Debug, Clone)]
pub struct PageOptions {
    /// `[lab] enable-sample`: serve the pages at all.
    pub enabled: bool,
    /// `[pages] widget`: serve the chat widget.
    pub widget: bool,
    /// `[pages] frame-ancestors`: who may frame them (CSP's
    /// `frame-ancestors`; `'self'` by default, `'none'`, or origins).
    pub frame_ancestors: String,
}

/// The headers every page carries.
#[derive(Clone)]
struct Policy {
    csp: HeaderValue,
    frame_options: Option<HeaderValue>,
}

impl Policy {
    fn new(options: &PageOptions) -> Self {
        let ancestors = options.frame_ancestors.trim();
        let csp = format!(
            // The CometD client runs its timers in a worker made from a blob.
            "default-src 'self'; script-src 'self'; worker-src 'self' blob:; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors {ancestors}"
        );
        let frame_options = match ancestors {
            "'self'" => Some(HeaderValue::from_static("SAMEORIGIN")),
            "'none'" => Some(HeaderValue::from_static("DENY")),
            // Named origins: CSP says it; X-Frame-Options cannot.
            _ => None,
        };
        Self {
            csp: HeaderValue::from_str(&csp).unwrap_or_else(|_| {
                tracing::warn!("[pages] frame-ancestors is not a header value; using 'self'");
                HeaderValue::from_static(
                    "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'self'",
                )
            }),
            frame_options,
        }
    }

    fn apply(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        if let Some(v) = &self.frame_options {
            headers.insert(header::X_FRAME_OPTIONS, v.clone());
        }
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }
}

/// The widget and the pages, routed (each only when enabled).
pub fn router(options: &PageOptions) -> Router {
    let mut widget = Router::new();
    if options.widget {
        widget = widget
            .route("/widget/v1/gmshub-chat.js", get(widget_js))
            .route("/widget/v1/gmshub-chat.css", get(widget_css));
    }
    if !options.enabled {
        return widget;
    }
    let page = |html: &'static str| {
        get(move |State(policy): State<Policy>| async move {
            policy.apply(Html(if COMETD_JS.is_empty() { MISSING } else { html }).into_response())
        })
    };
    Router::new()
        .route("/", page(INDEX))
        .route("/chat", page(CHAT))
        .route("/agent", page(AGENT))
        .route("/callback", page(CALLBACK))
        .route("/favicon.ico", get(favicon))
        .route("/assets/{file}", get(asset))
        .route("/js/cometd/{file}", get(cometd_js))
        .with_state(Policy::new(options))
        .merge(widget)
}

/// The headers of what other sites embed: cacheable, and loadable from
/// any origin even where a site isolates itself (COEP).
fn embeddable(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                "cross-origin",
            ),
        ],
        body,
    )
        .into_response()
}

async fn widget_js() -> Response {
    if WIDGET_JS.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/javascript;charset=UTF-8")],
            "console.error(\"gmshub: this binary was built without its chat widget \
             (npm ci --prefix web, then build again)\");",
        )
            .into_response();
    }
    embeddable("text/javascript;charset=UTF-8", WIDGET_JS)
}

async fn widget_css() -> Response {
    embeddable("text/css;charset=UTF-8", WIDGET_CSS)
}

/// Browsers ask for `/favicon.ico` whatever the pages say.
async fn favicon() -> Response {
    embeddable("image/svg+xml", FAVICON)
}

/// A page's script or style (the policy is the page's, not theirs).
async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, format!("{kind};charset=UTF-8")),
                (header::CACHE_CONTROL, "no-cache".to_owned()),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
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
