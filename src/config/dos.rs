//! `[dos-filter]`: GMS's request-rate filter (Jetty's `DoSFilter`), with
//! its parameter names and defaults. On by default: gmshub faces anonymous
//! clients, and a normal widget never reaches the limit (see
//! `docs/security.md`). May use: the options, `access` (network lists).

use std::net::IpAddr;
use std::time::Duration;

use axum::http::StatusCode;
use ipnet::IpNet;

use super::access::{networks, within};
use super::options::Options;

const SECTION: &str = "dos-filter";

/// What happens to a request over the rate (`delayMs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// `-1`: refused at once.
    Reject,
    /// `0`: throttled without a delay first.
    Throttle,
    /// Delayed this long, then throttled.
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub struct DosSettings {
    /// `enabled` (true).
    pub enabled: bool,
    /// `maxRequestsPerSec` (25): requests one client may make per second.
    pub max_requests_per_sec: u32,
    /// `delayMs` (100).
    pub over_limit: OverLimit,
    /// `maxWaitMs` (50): how long an over-limit request waits for a pass
    /// before it is suspended.
    pub max_wait: Duration,
    /// `throttledRequests` (5): over-limit requests let through at once.
    pub throttled_requests: u32,
    /// `throttleMs` (30000): how long a suspended request waits for a pass
    /// before it is refused.
    pub throttle: Duration,
    /// `maxRequestMs` (30000): longest a request may run (held Bayeux
    /// connects excepted: their own `timeout` bounds them).
    pub max_request: Duration,
    /// `maxIdleTrackerMs` (30000): how long a quiet client's tracker is kept.
    pub max_idle_tracker: Duration,
    /// `insertHeaders` (true): a `DoSFilter` header on what it touched.
    pub insert_headers: bool,
    /// `remotePort` (false): track each connection (address and port)
    /// instead of each address.
    pub remote_port: bool,
    /// `ipWhitelist` (empty): addresses or networks never limited (by this
    /// filter, nor by the per-address Bayeux limits).
    pub ip_whitelist: Vec<IpNet>,
    /// `tooManyCode` (429): the status of a refused request.
    pub too_many_code: StatusCode,
}

impl Default for DosSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_requests_per_sec: 25,
            over_limit: OverLimit::Delay(Duration::from_millis(100)),
            max_wait: Duration::from_millis(50),
            throttled_requests: 5,
            throttle: Duration::from_millis(30_000),
            max_request: Duration::from_millis(30_000),
            max_idle_tracker: Duration::from_millis(30_000),
            insert_headers: true,
            remote_port: false,
            ip_whitelist: Vec::new(),
            too_many_code: StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

impl DosSettings {
    pub fn from_options(o: &Options) -> Self {
        let d = Self::default();
        let at_least_one = |option, default: u32| o.value(SECTION, option, default).max(1);
        let over_limit = match o.value::<i64>(SECTION, "delayMs", 100) {
            n if n < 0 => OverLimit::Reject,
            0 => OverLimit::Throttle,
            n => OverLimit::Delay(Duration::from_millis(n as u64)),
        };
        let too_many_code = o.value::<u16>(SECTION, "tooManyCode", 429);
        Self {
            enabled: o.flag(SECTION, "enabled", d.enabled),
            max_requests_per_sec: at_least_one("maxRequestsPerSec", d.max_requests_per_sec),
            over_limit,
            max_wait: o.millis(SECTION, "maxWaitMs", d.max_wait),
            throttled_requests: at_least_one("throttledRequests", d.throttled_requests),
            throttle: o.millis(SECTION, "throttleMs", d.throttle),
            max_request: o.millis(SECTION, "maxRequestMs", d.max_request),
            max_idle_tracker: o
                .millis(SECTION, "maxIdleTrackerMs", d.max_idle_tracker)
                .max(Duration::from_secs(1)),
            insert_headers: o.flag(SECTION, "insertHeaders", d.insert_headers),
            remote_port: o.flag(SECTION, "remotePort", d.remote_port),
            ip_whitelist: networks(o, SECTION, "ipWhitelist").unwrap_or_default(),
            too_many_code: StatusCode::from_u16(too_many_code)
                .ok()
                .filter(|c| c.is_client_error() || c.is_server_error())
                .unwrap_or_else(|| {
                    tracing::warn!(
                        value = too_many_code,
                        "[dos-filter] tooManyCode: not an error status, using 429"
                    );
                    d.too_many_code
                }),
        }
    }

    /// Whether `ip` is on `ipWhitelist`.
    pub fn is_whitelisted(&self, ip: IpAddr) -> bool {
        within(&self.ip_whitelist, ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ini: &str) -> DosSettings {
        DosSettings::from_options(&Options::from_ini(ini, &[]).unwrap())
    }

    #[test]
    fn gms_names_and_defaults() {
        let d = settings("");
        assert!(d.enabled && d.insert_headers && !d.remote_port);
        assert_eq!(d.max_requests_per_sec, 25);
        assert_eq!(d.over_limit, OverLimit::Delay(Duration::from_millis(100)));
        assert_eq!(d.too_many_code, StatusCode::TOO_MANY_REQUESTS);
        let s = settings(
            "[dos-filter]\nmaxRequestsPerSec = 200\ndelayMs = -1\nipWhitelist = 10.0.0.0/8, 192.0.2.7\n\
             remotePort = true\ntooManyCode = 503\nthrottledRequests = 0\n",
        );
        assert_eq!(s.max_requests_per_sec, 200);
        assert_eq!(s.over_limit, OverLimit::Reject);
        assert!(s.remote_port);
        assert_eq!(s.too_many_code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(s.throttled_requests, 1, "at least one pass");
        assert!(s.is_whitelisted("10.2.3.4".parse().unwrap()));
        assert!(s.is_whitelisted("::ffff:192.0.2.7".parse().unwrap()));
        assert!(!s.is_whitelisted("192.0.2.8".parse().unwrap()));
        assert_eq!(
            settings("[dos-filter]\ndelayMs = 0\n").over_limit,
            OverLimit::Throttle
        );
        assert_eq!(
            settings("[dos-filter]\ntooManyCode = 200\n").too_many_code,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}
