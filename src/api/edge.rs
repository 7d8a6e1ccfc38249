//! What every request passes before any route, as one middleware (one boxed
//! future per request however many checks are configured; a middleware
//! each made the security layers cost a third of a long-poll's CPU):
//! `[port_restrictions]`, identity through trusted proxies, the DoS filter
//! (with `maxRequestMs` on what it admits), the refusal of unlisted
//! origins; on the way out, the request counted and logged (`observe::http`), errors in their API's shape, `nosniff`,
//! the `[header.<name>]` rules
//! and, on TLS listeners, `Secure` cookies and HSTS; with origins listed,
//! preflights go to tower-http's `CorsLayer` and other answers get their
//! CORS headers (see `cors`).
//!
//! The stack wraps the router once, not each route: axum's `Router::layer`
//! re-boxes every route per layer, and each box costs a service clone and a
//! future allocation per request.
//! May use: `access`, `cors`, `dos_filter`, `headers`, `request`, `shape`, the configuration.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::util::BoxCloneSyncService;
use tower::{service_fn, Layer, ServiceBuilder, ServiceExt};

use super::dos_filter::{Admitted, DosFilter};
use super::{access, cors, headers, request as req, shape};
use crate::config::{Access, CorsSettings, DosSettings, HeaderRule, PortRestrictions};
use crate::observe::http;

/// What a listener serves: one boxed stack, cloned per request by hyper.
pub type Served = BoxCloneSyncService<Request, Response, Infallible>;

/// The configuration the edge checks against.
#[derive(Clone)]
pub struct Edge {
    pub ports: Arc<PortRestrictions>,
    pub access: Arc<Access>,
    pub cors: Arc<CorsSettings>,
    pub rules: Arc<Vec<HeaderRule>>,
    /// `[dos-filter]`, unless disabled.
    pub dos: Option<Arc<DosFilter>>,
    /// Who the per-client limits exempt (`[dos-filter] ipWhitelist`).
    pub clients: Arc<DosSettings>,
    /// Where the Bayeux endpoint is mounted (its connects are held by
    /// design: `maxRequestMs` does not apply to them).
    pub bayeux: &'static [&'static str],
    /// `[log] access-log`: a line per request.
    pub access_log: bool,
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
    access::identify(&edge.access, &mut request);
    let started = http::Started::now(request.method(), req::peer(request.extensions()));
    let mount = edge
        .bayeux
        .iter()
        .find(|m| request.uri().path().starts_with(*m))
        .copied();
    // The path is kept only when a rule may need it after the request is gone.
    let path = (!edge.rules.is_empty()).then(|| request.uri().path().to_owned());
    let family = shape::Family::of(request.uri().path());
    let response = at.answer(request, mount.is_some(), next).await;
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
    started.finished(&response, mount, edge.access_log);
    response
}

impl Listener {
    /// A refusal, a preflight's answer, or the route's.
    async fn answer(&self, mut request: Request, bayeux: bool, next: Next) -> Response {
        let edge = &self.edge;
        if let Some(refused) = access::port_refusal(&edge.ports, self.port, &request) {
            return refused;
        }
        let key = req::peer(request.extensions())
            .filter(|ip| !edge.clients.is_whitelisted(*ip))
            .map(bayeux::client_key);
        request.extensions_mut().insert(req::ClientKey(key));
        let admitted = match &edge.dos {
            Some(filter) => match filter.admit(req::peer_socket(request.extensions())).await {
                Ok(admitted) => Some(admitted),
                Err(refused) => return refused,
            },
            None => None,
        };
        let origin = match cors::check(&edge.cors, &request) {
            Ok(origin) => origin,
            Err(refused) => return refused.into_response(),
        };
        match &self.cors {
            Some((_, preflights)) if cors::is_preflight(&request) => {
                let Ok(answer) = preflights.clone().oneshot(request).await;
                answer
            }
            cors => {
                let mut response = self.handle(request, admitted, bayeux, next).await;
                if let Some((actual, _)) = cors {
                    actual.apply(origin, &mut response);
                }
                response
            }
        }
    }

    /// Runs the route; with the DoS filter, within `maxRequestMs` (but for
    /// the Bayeux endpoint, whose held connects give their pass back at
    /// once) and marked as the filter touched it.
    async fn handle(
        &self,
        request: Request,
        admitted: Option<Admitted>,
        bayeux: bool,
        next: Next,
    ) -> Response {
        let (Some(filter), Some(mut admitted)) = (&self.edge.dos, admitted) else {
            return next.run(request).await;
        };
        let mut response = if bayeux {
            admitted.release();
            next.run(request).await
        } else {
            tokio::time::timeout(filter.max_request(), next.run(request))
                .await
                .unwrap_or_else(|_| filter.overran())
        };
        admitted.mark(&mut response);
        response
    }
}
