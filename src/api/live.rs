//! The rules a running hub may replace (on SIGHUP): the access groups and
//! their credentials, CORS, the DoS filter, the access log switch. Held in one
//! `ArcSwap`, read once per request without a lock, and replaced whole, so
//! a request sees one version of them from start to end. May use: `cors`,
//! `dos_filter`, the configuration.

use std::convert::Infallible;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::util::BoxCloneSyncService;
use tower::{service_fn, Layer};

use super::cors;
use super::dos_filter::DosFilter;
use crate::config::{Access, CorsSettings, DosSettings, Settings};

/// The answer to a preflight, made by tower-http's `CorsLayer`.
pub type Preflights = BoxCloneSyncService<Request, Response, Infallible>;

/// One version of the replaceable rules.
pub struct Rules {
    pub access: Arc<Access>,
    pub cors: Arc<CorsSettings>,
    /// With origins listed: the headers of an actual answer, and the
    /// preflights' answers.
    pub answers: Option<(cors::Actual, Preflights)>,
    /// `[dos-filter]`, unless disabled.
    pub dos: Option<Arc<DosFilter>>,
    /// Who the per-client limits exempt (`[dos-filter] ipWhitelist`).
    pub clients: Arc<DosSettings>,
    /// `[log] access-log`: a line per request.
    pub access_log: bool,
}

impl Rules {
    /// The rules `settings` make (the DoS filter starts its own tracker
    /// sweep, so this needs the runtime).
    pub fn of(settings: &Settings) -> Self {
        let (cors, dos) = (settings.cors.clone(), settings.dos.clone());
        let answers =
            cors::Actual::new(&cors)
                .zip(cors::preflights(&cors))
                .map(|(actual, layer)| {
                    // A preflight's answer is the layer's own; nothing is behind it.
                    let nothing = service_fn(|_: Request| async {
                        Ok::<_, Infallible>(StatusCode::NOT_FOUND.into_response())
                    });
                    (actual, Preflights::new(layer.layer(nothing)))
                });
        Self {
            access: settings.access.clone(),
            cors,
            answers,
            dos: DosFilter::new(dos.clone()),
            clients: dos,
            access_log: settings.log.access_log,
        }
    }
}

/// The current rules, shared by every listener and the access check.
#[derive(Clone)]
pub struct LiveRules(Arc<ArcSwap<Rules>>);

impl LiveRules {
    pub fn new(rules: Rules) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(rules)))
    }

    /// The rules now (one atomic load and a reference count).
    pub fn now(&self) -> Arc<Rules> {
        self.0.load_full()
    }

    /// Puts `rules` in place for the requests that start from now on.
    pub fn replace(&self, rules: Rules) {
        self.0.store(Arc::new(rules));
    }
}

/// The DoS filter paces WebSocket frames too: through the current rules,
/// so a replaced filter paces from then on.
impl bayeux::Pacer for LiveRules {
    fn hold_frame(&self, peer: std::net::SocketAddr) -> Option<std::time::Duration> {
        self.0.load().dos.as_ref()?.hold_frame(peer)
    }
}
