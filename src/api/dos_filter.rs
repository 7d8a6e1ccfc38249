//! GMS's DoS filter (`[dos-filter]`, Jetty's `DoSFilter`): each client
//! (address, or connection with `remotePort`) may make `maxRequestsPerSec`
//! requests a second; past that a request is delayed (`delayMs`), then
//! throttled (at most `throttledRequests` over-limit requests run at once,
//! the others wait up to `maxWaitMs` and then `throttleMs` for a pass) or
//! refused (`tooManyCode`, `DoSFilter: unavailable`). Requests run at most
//! `maxRequestMs`.
//!
//! Bayeux-aware: a held `/meta/connect` gives its pass back as soon as it
//! is admitted (it is held by design, and its own `timeout` bounds it), and
//! a WebSocket's frames count as requests of its client, held rather than
//! refused: a frame over the rate waits until the client is within it
//! again, and the engine reads nothing more from that socket meanwhile
//! (nothing the client sent is lost; its deliveries go on). Rates per client are kept by governor (GCRA: the
//! same allowance as Jetty's sliding second, without a timestamp ring per
//! client). May use: the configuration.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bayeux::KeyedRate;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{DosSettings, OverLimit};

const HEADER: HeaderName = HeaderName::from_static("dosfilter");

/// At most one warning per client this often (a flood would otherwise
/// write a line per request).
const ALERT_EVERY: Duration = Duration::from_secs(10);

/// Who a rate is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tracked {
    Address(IpAddr),
    Connection(SocketAddr),
}

pub struct DosFilter {
    settings: Arc<DosSettings>,
    rates: KeyedRate<Tracked>,
    alerts: DefaultKeyedRateLimiter<Tracked>,
    passes: Arc<Semaphore>,
}

/// What an admitted request carries until it is answered.
#[must_use]
pub struct Admitted {
    /// The throttle's pass, held while the request runs.
    pass: Option<OwnedSemaphorePermit>,
    /// `DoSFilter: delayed` or `throttled`, when the filter touched it.
    mark: Option<&'static str>,
    insert_headers: bool,
}

impl Admitted {
    /// Gives the throttle's pass back early (a held Bayeux connect).
    pub fn release(&mut self) {
        self.pass = None;
    }

    /// Marks `response` as the filter touched it.
    pub fn mark(&self, response: &mut Response) {
        if let (Some(mark), true) = (self.mark, self.insert_headers) {
            response
                .headers_mut()
                .insert(HEADER, HeaderValue::from_static(mark));
        }
    }
}

impl DosFilter {
    /// The filter `settings` describe; `None` when it is disabled. Spawns
    /// the task that forgets quiet clients (every `maxIdleTrackerMs`).
    pub fn new(settings: Arc<DosSettings>) -> Option<Arc<Self>> {
        if !settings.enabled {
            return None;
        }
        let rate = NonZeroU32::new(settings.max_requests_per_sec).expect("at least one");
        let filter = Arc::new(Self {
            rates: KeyedRate::new(Quota::per_second(rate)),
            alerts: RateLimiter::keyed(
                Quota::with_period(ALERT_EVERY)
                    .expect("a period")
                    .allow_burst(NonZeroU32::MIN),
            ),
            passes: Arc::new(Semaphore::new(settings.throttled_requests as usize)),
            settings,
        });
        let weak: Weak<Self> = Arc::downgrade(&filter);
        let period = filter.settings.max_idle_tracker;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(filter) = weak.upgrade() else { break };
                filter.rates.forget_quiet();
                filter.alerts.retain_recent();
            }
        });
        Some(filter)
    }

    pub fn max_request(&self) -> Duration {
        self.settings.max_request
    }

    fn tracked(&self, peer: SocketAddr) -> Option<Tracked> {
        if self.settings.is_whitelisted(peer.ip()) {
            return None;
        }
        Some(if self.settings.remote_port {
            Tracked::Connection(peer)
        } else {
            Tracked::Address(bayeux::client_key(peer.ip()))
        })
    }

    /// Counts one request of `tracked`: `Err(wait)` when it is over the rate.
    fn count(&self, tracked: &Tracked) -> Result<(), Duration> {
        self.rates.check(tracked)
    }

    fn alert(&self, tracked: &Tracked, what: &str) {
        if self.alerts.check_key(tracked).is_ok() {
            tracing::warn!(client = ?tracked, "DoS filter: requests over [dos-filter] maxRequestsPerSec {what} (one line per client every 10 s)");
        }
    }

    /// Lets a request from `peer` run, after the delay and throttle it
    /// owes, or refuses it.
    pub async fn admit(&self, peer: Option<SocketAddr>) -> Result<Admitted, Response> {
        let mut admitted = Admitted {
            pass: None,
            mark: None,
            insert_headers: self.settings.insert_headers,
        };
        let Some(tracked) = peer.and_then(|p| self.tracked(p)) else {
            return Ok(admitted);
        };
        if self.count(&tracked).is_ok() {
            return Ok(admitted);
        }
        match self.settings.over_limit {
            OverLimit::Reject => {
                self.alert(&tracked, "refused");
                return Err(self.refusal());
            }
            OverLimit::Throttle => self.alert(&tracked, "throttled"),
            OverLimit::Delay(delay) => {
                self.alert(&tracked, "delayed");
                admitted.mark = Some("delayed");
                tokio::time::sleep(delay).await;
            }
        }
        let acquire = || self.passes.clone().acquire_owned();
        let pass = match tokio::time::timeout(self.settings.max_wait, acquire()).await {
            Ok(pass) => pass,
            Err(_) => {
                admitted.mark = Some("throttled");
                match tokio::time::timeout(self.settings.throttle, acquire()).await {
                    Ok(pass) => pass,
                    Err(_) => return Err(self.refusal()),
                }
            }
        };
        admitted.pass = pass.ok();
        Ok(admitted)
    }

    /// Refusals are plain text: the edge puts them in each API's shape.
    fn refusal(&self) -> Response {
        let text = "too many requests from this client ([dos-filter] maxRequestsPerSec)";
        let mut response = (self.settings.too_many_code, text).into_response();
        let headers = response.headers_mut();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        if self.settings.insert_headers {
            headers.insert(HEADER, HeaderValue::from_static("unavailable"));
        }
        response
    }

    /// A request that ran past `maxRequestMs`.
    pub fn overran(&self) -> Response {
        let text = "the request ran longer than [dos-filter] maxRequestMs";
        (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
    }
}

impl bayeux::Pacer for DosFilter {
    fn hold_frame(&self, peer: SocketAddr) -> Option<Duration> {
        let tracked = self.tracked(peer)?;
        let wait = self.count(&tracked).err()?;
        self.alert(&tracked, "(WebSocket frames, paced)");
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bayeux::Pacer;

    fn filter(ini: &str) -> Arc<DosFilter> {
        let o = crate::config::Options::from_ini(ini, &[]).unwrap();
        DosFilter::new(Arc::new(DosSettings::from_options(&o))).expect("enabled")
    }

    fn from(ip: [u8; 4], port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from((ip, port)))
    }

    #[tokio::test]
    async fn over_the_rate_a_request_is_delayed_then_marked() {
        let f = filter("[dos-filter]\nmaxRequestsPerSec = 3\ndelayMs = 50\n");
        for _ in 0..3 {
            let a = f.admit(from([192, 0, 2, 1], 1)).await.unwrap();
            assert_eq!(a.mark, None);
            assert!(a.pass.is_none(), "within the rate, no pass is taken");
        }
        let started = std::time::Instant::now();
        let a = f.admit(from([192, 0, 2, 1], 2)).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(a.mark, Some("delayed"));
        assert!(a.pass.is_some());
        let mut response = Response::default();
        a.mark(&mut response);
        assert_eq!(response.headers()[HEADER], "delayed");
        // Another client has its own allowance.
        assert_eq!(f.admit(from([192, 0, 2, 2], 1)).await.unwrap().mark, None);
    }

    /// A request from 192.0.2.1 that `f` refuses.
    async fn refused(f: &DosFilter) -> Response {
        f.admit(from([192, 0, 2, 1], 1))
            .await
            .err()
            .expect("refused")
    }

    #[tokio::test]
    async fn refused_with_delay_minus_one_and_after_the_throttle_wait() {
        let f = filter("[dos-filter]\nmaxRequestsPerSec = 1\ndelayMs = -1\n");
        assert!(f.admit(from([192, 0, 2, 1], 1)).await.is_ok());
        let answer = refused(&f).await;
        assert_eq!(answer.status(), 429);
        assert_eq!(answer.headers()[HEADER], "unavailable");
        assert_eq!(answer.headers()["retry-after"], "1");

        let f = filter(
            "[dos-filter]\nmaxRequestsPerSec = 1\ndelayMs = 0\nthrottledRequests = 1\nmaxWaitMs = 10\nthrottleMs = 30\n",
        );
        assert!(f.admit(from([192, 0, 2, 1], 1)).await.is_ok());
        let holding = f.admit(from([192, 0, 2, 1], 1)).await.unwrap();
        assert!(holding.pass.is_some());
        // The one pass is taken: the next over-limit request waits, then
        // is refused.
        assert_eq!(refused(&f).await.status(), 429);
        drop(holding);
        assert!(f.admit(from([192, 0, 2, 1], 1)).await.is_ok());
    }

    #[tokio::test]
    async fn whitelisted_and_per_connection_tracking() {
        let f = filter(
            "[dos-filter]\nmaxRequestsPerSec = 1\ndelayMs = -1\nipWhitelist = 192.0.2.0/24\n",
        );
        for _ in 0..10 {
            assert!(f.admit(from([192, 0, 2, 9], 1)).await.is_ok());
        }
        let f = filter("[dos-filter]\nmaxRequestsPerSec = 1\ndelayMs = -1\nremotePort = true\n");
        assert!(f.admit(from([192, 0, 2, 9], 1)).await.is_ok());
        assert!(
            f.admit(from([192, 0, 2, 9], 2)).await.is_ok(),
            "another connection"
        );
        assert!(f.admit(from([192, 0, 2, 9], 1)).await.is_err());
    }

    #[tokio::test]
    async fn websocket_frames_over_the_rate_are_held_until_within_it() {
        let f = filter("[dos-filter]\nmaxRequestsPerSec = 2\n");
        let peer = SocketAddr::from(([192, 0, 2, 1], 5));
        assert_eq!(f.hold_frame(peer), None);
        assert_eq!(f.hold_frame(peer), None);
        // Two a second: the next one may come in about half a second.
        let hold = f.hold_frame(peer).expect("paced");
        assert!(
            hold > Duration::from_millis(400) && hold <= Duration::from_millis(500),
            "{hold:?}"
        );
        tokio::time::sleep(hold).await;
        assert_eq!(f.hold_frame(peer), None, "counted once it is let through");
    }

    #[tokio::test]
    async fn without_insert_headers_nothing_is_marked() {
        let f = filter("[dos-filter]\nmaxRequestsPerSec = 1\ndelayMs = 1\ninsertHeaders = false\n");
        assert!(f.admit(from([192, 0, 2, 1], 1)).await.is_ok());
        let delayed = f.admit(from([192, 0, 2, 1], 1)).await.unwrap();
        let mut response = Response::default();
        delayed.mark(&mut response);
        assert!(response.headers().get(HEADER).is_none());
        let f =
            filter("[dos-filter]\nmaxRequestsPerSec = 1\ndelayMs = -1\ninsertHeaders = false\n");
        assert!(f.admit(from([192, 0, 2, 1], 1)).await.is_ok());
        let answer = refused(&f).await;
        assert_eq!(answer.status(), 429);
        assert!(answer.headers().get(HEADER).is_none());
    }

    #[tokio::test]
    async fn quiet_clients_are_forgotten_every_max_idle_tracker_ms() {
        // 1 s, the shortest period the option takes.
        let f = filter("[dos-filter]\nmaxRequestsPerSec = 100\nmaxIdleTrackerMs = 1000\n");
        for i in 0..10 {
            assert!(f.admit(from([192, 0, 2, i], 1)).await.is_ok());
        }
        assert_eq!(f.rates.tracked(), 10);
        // One request refills in 10 ms; the tracker looks after a second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            f.rates.tracked(),
            0,
            "forgotten once back at their allowance"
        );
    }
}
