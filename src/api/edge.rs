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
//! May use: `access`, `cors`, `dos_filter`, `headers`, `live`, `request`, `shape`, the
//! configuration.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

use super::dos_filter::{Admitted, DosFilter};
use super::live::{LiveRules, Rules};
use super::{access, cors, headers, request as req, shape};
use crate::config::{HeaderRule, PortRestrictions};
use crate::observe::http;

/// What a listener serves: one boxed stack, cloned per request by hyper.
pub type Served = BoxCloneSyncService<Request, Response, Infallible>;

/// The configuration the edge checks against.
#[derive(Clone)]
pub struct Edge {
    pub ports: Arc<PortRestrictions>,
    pub rules: Arc<Vec<HeaderRule>>,
    /// Access, CORS, the DoS filter, the access log, as they stand (SIGHUP
    /// replaces them).
    pub live: LiveRules,
    /// Where the Bayeux endpoint is mounted (its connects are held by
    /// design: `maxRequestMs` does not apply to them).
    pub bayeux: &'static [&'static str],
}

/// What a TLS listener adds to its answers.
#[derive(Clone)]
pub struct OverTls {
    /// `SameSite` for cookies that name none.
    pub same_site: Arc<str>,
    /// `Strict-Transport-Security`, when configured.
    pub hsts: Option<HeaderValue>,
}

/// One listener's view of the edge: the port it serves, whether it is TLS.
struct Listener {
    edge: Edge,
    port: u16,
    tls: Option<OverTls>,
}

/// `router` behind the edge, as served on local `port` (over TLS with `tls`).
pub fn serve(router: Router, edge: &Edge, port: u16, tls: Option<OverTls>) -> Served {
    let listener = Arc::new(Listener {
        edge: edge.clone(),
        port,
        tls,
    });
    Served::new(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(listener, run))
            .service(router),
    )
}

async fn run(State(at): State<Arc<Listener>>, mut request: Request, next: Next) -> Response {
    let edge = &at.edge;
    let rules = edge.live.now();
    access::identify(&rules.access, &mut request);
    let started = http::Started::now(request.method(), req::peer(request.extensions()));
    let mount = edge
        .bayeux
        .iter()
        .find(|m| request.uri().path().starts_with(*m))
        .copied();
    // The path is kept only when a rule may need it after the request is gone.
    let path = (!edge.rules.is_empty()).then(|| request.uri().path().to_owned());
    let family = shape::Family::of(request.uri().path());
    let response = at.answer(&rules, request, mount.is_some(), next).await;
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
    started.finished(&response, mount, rules.access_log);
    response
}

impl Listener {
    /// A refusal, a preflight's answer, or the route's.
    async fn answer(
        &self,
        rules: &Rules,
        mut request: Request,
        bayeux: bool,
        next: Next,
    ) -> Response {
        if let Some(refused) = access::port_refusal(&self.edge.ports, self.port, &request) {
            return refused;
        }
        let key = req::peer(request.extensions())
            .filter(|ip| !rules.clients.is_whitelisted(*ip))
            .map(bayeux::client_key);
        request.extensions_mut().insert(req::ClientKey(key));
        let admitted = match &rules.dos {
            Some(filter) => match filter.admit(req::peer_socket(request.extensions())).await {
                Ok(admitted) => Some(admitted),
                Err(refused) => return refused,
            },
            None => None,
        };
        let origin = match cors::check(&rules.cors, &request, bayeux) {
            Ok(origin) => origin,
            Err(refused) => return refused.into_response(),
        };
        match &rules.answers {
            Some((_, preflights)) if cors::is_preflight(&request) => {
                let Ok(answer) = preflights.clone().oneshot(request).await;
                answer
            }
            cors => {
                let filter = rules.dos.as_deref();
                let mut response = self.handle(filter, request, admitted, bayeux, next).await;
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
        filter: Option<&DosFilter>,
        request: Request,
        admitted: Option<Admitted>,
        bayeux: bool,
        next: Next,
    ) -> Response {
        let (Some(filter), Some(mut admitted)) = (filter, admitted) else {
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
