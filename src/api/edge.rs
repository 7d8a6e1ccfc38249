//! What every request passes before any route, as one middleware (one boxed
//! future per request however many checks are configured; a middleware
//! each made the security layers cost a third of a long-poll's CPU):
//! `[port_restrictions]`, identity through trusted proxies, the refusal of
//! unlisted origins; on the way out, `nosniff` and the `[header.<name>]`
//! rules. tower-http's `CorsLayer` sits inside it when origins are listed.
//! May use: `access`, `cors`, `headers`, the configuration.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use super::{access, cors, headers};
use crate::config::{Access, CorsSettings, HeaderRule, PortRestrictions};

/// The configuration the edge checks against.
pub struct Edge {
    pub ports: Arc<PortRestrictions>,
    pub access: Arc<Access>,
    pub cors: Arc<CorsSettings>,
    pub rules: Arc<Vec<HeaderRule>>,
}

/// `router` behind the edge.
pub fn around(router: Router, edge: Edge) -> Router {
    let router = match cors::layer(&edge.cors) {
        Some(layer) => router.layer(layer),
        None => router,
    };
    router.layer(axum::middleware::from_fn_with_state(Arc::new(edge), run))
}

async fn run(State(edge): State<Arc<Edge>>, mut request: Request, next: Next) -> Response {
    let refused = access::port_refusal(&edge.ports, &request).or_else(|| {
        access::identify(&edge.access, &mut request);
        cors::refusal(&edge.cors, &request)
    });
    // The path is kept only when a rule may need it after the request is gone.
    let path = (!edge.rules.is_empty()).then(|| request.uri().path().to_owned());
    let mut response = match refused {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    headers::apply(&edge.rules, path.as_deref(), &mut response);
    response
}
