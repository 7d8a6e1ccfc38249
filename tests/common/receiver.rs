//! An HTTP receiver standing in for the push targets a test configures
//! (customhttp servers, httpcb URLs, ORS): it records every request and
//! answers as its path says.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use parking_lot::Mutex;

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

/// An HTTP receiver standing in for a customhttp server and httpcb URLs:
/// `/cb/flaky` answers 503 twice then 200, `/cb/bad` 400, `/cb/gone` 410,
/// `/cb/redirect` 307 to `/cb/redirected`, anything else 200.
#[derive(Clone, Default)]
pub struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
}

async fn receive(
    State(r): State<Receiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = format!("/{path}");
    if path.starts_with("/slow/") {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let mut got = r.got.lock();
    got.push(Got {
        path: path.clone(),
        authorization: h("authorization"),
        content_type: h("content-type"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let tries = got.iter().filter(|g| g.path == path).count();
    let status = match path.as_str() {
        "/cb/flaky" if tries <= 2 => StatusCode::SERVICE_UNAVAILABLE,
        "/cb/bad" => StatusCode::BAD_REQUEST,
        "/cb/gone" => StatusCode::GONE,
        "/cb/created" => StatusCode::CREATED,
        "/cb/redirect" => {
            return (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", "/cb/redirected")],
            )
                .into_response()
        }
        p if p.starts_with("/ors/scxml/session/ended/") => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    };
    status.into_response()
}

impl Receiver {
    pub async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = axum::Router::new()
            .route("/{*path}", post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, base)
    }

    pub fn at(&self, path: &str) -> Vec<Got> {
        self.got
            .lock()
            .iter()
            .filter(|g| g.path == path)
            .cloned()
            .collect()
    }

    pub async fn wait(&self, path: &str, n: usize) -> Vec<Got> {
        for _ in 0..400 {
            let got = self.at(path);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{path}: {n} request(s) expected, got {:?}", self.at(path));
    }
}
