//! What every request passes before any route, as one middleware (one boxed
//! future per request however many checks are configured; a middleware
//! each made the security layers cost a third of a long-poll's CPU):
//! `[port_restrictions]`, identity through trusted proxies, the refusal of
//! unlisted origins; on the way out, errors in their API's shape, `nosniff`,
//! the `[header.<name>]` rules
//! and, on TLS listeners, `Secure` cookies and HSTS; with origins listed,
//! preflights go to tower-http's `CorsLayer` and other answers get their
//! CORS headers (see `cors`).
//!
//! The stack wraps the router once, not each route: axum's `Router::layer`
//! re-boxes every route per layer, and each box costs a service clone and a
//! future allocation per request.
//! May use: `access`, `cors`, `headers`, the configuration.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::util::BoxCloneSyncService;
use tower::{service_fn, Layer, ServiceBuilder, ServiceExt};

use super::{access, cors, headers, shape};
use crate::config::{Access, CorsSettings, HeaderRule, PortRestrictions};

/// What a listener serves: one boxed stack, cloned per request by hyper.
pub type Served = BoxCloneSyncService<Request, Response, Infallible>;

/// The configuration the edge checks against.
#[derive(Clone)]
pub struct Edge {
    pub ports: Arc<PortRestrictions>,
    pub access: Arc<Access>,
    pub cors: Arc<CorsSettings>,
    pub rules: Arc<Vec<HeaderRule>>,
}

/// What a TLS listener adds to its answers.
#[derive(Clone)]
pub struct OverTls {
    /// `SameSite` for cookies that name none.
    pub same_site: Arc<str>,
    /// `Strict-Transport-Security`, when configured.
    pub hsts: Option<HeaderValue>,
}

/// One listener's view of the edge: the port it serves, whether it is TLS,
/// and the CORS answers when origins are listed.
struct Listener {
    edge: Edge,
    port: u16,
    tls: Option<OverTls>,
    cors: Option<(cors::Actual, Served)>,
}

/// `router` behind the edge, as served on local `port` (over TLS with `tls`).
pub fn serve(router: Router, edge: &Edge, port: u16, tls: Option<OverTls>) -> Served {
    let cors = cors::Actual::new(&edge.cors).zip(cors::preflights(&edge.cors));
    let cors = cors.map(|(actual, layer)| {
        // A preflight's answer is the layer's own; nothing is behind it.
        let nothing = service_fn(|_: Request| async {
            Ok::<_, Infallible>(StatusCode::NOT_FOUND.into_response())
        });
        (actual, Served::new(layer.layer(nothing)))
    });
    let listener = Arc::new(Listener {
        edge: edge.clone(),
        port,
        tls,
        cors,
    });
    Served::new(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(listener, run))
            .service(router),
    )
}

async fn run(State(at): State<Arc<Listener>>, mut request: Request, next: Next) -> Response {
    let edge = &at.edge;
    let checked = match access::port_refusal(&edge.ports, at.port, &request) {
        Some(refused) => Err(refused),
        None => {
            access::identify(&edge.access, &mut request);
            cors::check(&edge.cors, &request).map_err(IntoResponse::into_response)
        }
    };
    // The path is kept only when a rule may need it after the request is gone.
    let path = (!edge.rules.is_empty()).then(|| request.uri().path().to_owned());
    let family = shape::Family::of(request.uri().path());
    let response = match (checked, &at.cors) {
        (Err(refused), _) => refused,
        (Ok(_), Some((_, preflights))) if cors::is_preflight(&request) => {
            let Ok(answer) = preflights.clone().oneshot(request).await;
            answer
        }
        (Ok(origin), Some((actual, _))) => {
            let mut response = next.run(request).await;
            actual.apply(origin, &mut response);
            response
        }
        (Ok(_), None) => next.run(request).await,
    };
    let mut response = shape::errors(family, response).await;
    headers::apply(&edge.rules, path.as_deref(), &mut response);
    if let Some(tls) = &at.tls {
        headers::secure_cookies(&tls.same_site, &mut response);
        if let Some(hsts) = &tls.hsts {
            response
                .headers_mut()
                .insert(axum::http::header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
    }
    response
}
