//! Every HTTP request, once answered: counted and timed by route template,
//! method and status, and with `[log] access-log` written as one line of
//! the `gmshub::access` log (client address, method, route, status,
//! duration, bytes). The route is the template the router matched (a
//! `MatchedPath` the routes put on their answers, see [`remember_route`]),
//! never the path itself: paths carry chat ids, secure keys and file names
//! that are capabilities, and as labels they would be unbounded.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Instant;

use dashmap::DashMap;
use metrics::{Counter, Histogram};
use parking_lot::RwLock;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Copies the template the router matched onto the answer, for the edge
/// to count it by.
pub async fn remember_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// What the edge knew of a request before it was answered.
pub struct Started {
    at: Instant,
    method: Method,
    client: Option<IpAddr>,
}

impl Started {
    pub fn now(method: &Method, client: Option<IpAddr>) -> Self {
        Self {
            at: Instant::now(),
            method: method.clone(),
            client,
        }
    }

    /// Counts and (with the access log on) logs the request answered with
    /// `response`; `mount` is the Bayeux mount it went to, if it did.
    pub fn finished(self, response: &Response, mount: Option<&'static str>, log: bool) {
        let route = match response.extensions().get::<MatchedPath>() {
            Some(matched) => intern(matched.as_str()),
            None => mount.unwrap_or(UNMATCHED),
        };
        let method = method_label(&self.method);
        let status = response.status();
        let elapsed = self.at.elapsed();
        let (count, time) = handles(route, method, status.as_u16());
        count.increment(1);
        time.record(elapsed);
        if log {
            let bytes = response_bytes(response);
            tracing::info!(
                target: "gmshub::access",
                client = %self.client.map_or("-".into(), |c| c.to_string()),
                method,
                route,
                status = status.as_u16(),
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                bytes = %bytes.map_or("-".into(), |b| b.to_string()),
            );
        }
    }
}

/// The route templates seen, kept for the process's life: a label is a
/// `&'static str`, and there are only as many templates as routes.
fn intern(route: &str) -> &'static str {
    static SEEN: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let seen = SEEN.get_or_init(RwLock::default);
    if let Some(known) = seen.read().get(route) {
        return known;
    }
    let mut seen = seen.write();
    if let Some(known) = seen.get(route) {
        return known;
    }
    let leaked: &'static str = Box::leak(route.into());
    seen.insert(leaked);
    leaked
}

/// The series of a route, method and status. Made once and kept: the
/// macros build a key (an allocation per label set) and look it up on
/// every call, which a long-poll should not pay per exchange.
fn handles(route: &'static str, method: &'static str, status: u16) -> (Counter, Histogram) {
    type Key = ((usize, usize), &'static str, u16);
    static MADE: OnceLock<DashMap<Key, (Counter, Histogram)>> = OnceLock::new();
    let made = MADE.get_or_init(DashMap::new);
    // Routes are interned or static: address and length name the route.
    let key = ((route.as_ptr() as usize, route.len()), method, status);
    if let Some(found) = made.get(&key) {
        return found.clone();
    }
    let series = (
        metrics::counter!(
            "gmshub_http_requests_total",
            "route" => route,
            "method" => method,
            "status" => status.to_string()
        ),
        metrics::histogram!("gmshub_http_request_duration_seconds", "route" => route),
    );
    made.insert(key, series.clone());
    series
}

/// The methods a label may name; anything else is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The body's size when the answer says it (a stream does not).
fn response_bytes(response: &Response) -> Option<u64> {
    use axum::body::HttpBody;
    response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or_else(|| response.body().size_hint().exact())
}
