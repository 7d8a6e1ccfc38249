//! Who is behind a request, as far as per-client limits go, and those
//! limits: handshakes per second, and live sessions, per client address and
//! per browser (BAYEUX_BROWSER), so that one anonymous client cannot take
//! the server's `maxSessions` for itself. An IPv6 address counts by its /64
//! (one subscriber line is given a whole /64; counting single addresses
//! would let it open a session from each), an IPv4 one as itself. And the
//! hook that paces a WebSocket's frames.
//! May use: config.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::ClientLimits;

/// Past this many tracked keys, those back to a full allowance are dropped
/// (a key at full allowance is the same as a key never seen).
const KEPT: usize = 10_000;

/// A rate per key (governor's keyed GCRA), for every per-client limit of
/// gmshub: keys back at their full allowance are forgotten once more than
/// a few thousand are tracked, so a flood of keys costs no memory for long.
pub struct KeyedRate<K: std::hash::Hash + Eq + Clone>(DefaultKeyedRateLimiter<K>);

impl<K: std::hash::Hash + Eq + Clone> KeyedRate<K> {
    pub fn new(quota: Quota) -> Self {
        Self(RateLimiter::keyed(quota))
    }

    /// `n` a minute, in bursts of as many.
    pub fn per_minute(n: u32) -> Self {
        Self::new(Quota::per_minute(
            NonZeroU32::new(n.max(1)).expect("at least one"),
        ))
    }

    /// Counts one for `key`; `Err(wait)` (nothing counted) when over.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        if self.0.len() > KEPT {
            self.forget_quiet();
        }
        let now = DefaultClock::default().now();
        self.0.check_key(key).map_err(|n| n.wait_time_from(now))
    }

    /// How many keys are tracked.
    pub fn tracked(&self) -> usize {
        self.0.len()
    }

    /// Forgets the keys back at their full allowance.
    pub fn forget_quiet(&self) {
        self.0.retain_recent();
    }
}

/// The key per-client limits count `ip` under: an IPv4 address (an
/// IPv4-mapped IPv6 one included) as itself, an IPv6 one by its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

/// Paces what one WebSocket sends (the embedding's request-rate filter).
/// A frame from `peer` is handled once `hold_frame` says `None` (and so
/// has counted it); until then the socket holds it and reads nothing more
/// (TCP pushes back on the client), asking again after the time given. Its
/// deliveries go on, and nothing the client sent is refused.
pub trait Pacer: Send + Sync + 'static {
    fn hold_frame(&self, peer: SocketAddr) -> Option<Duration>;
}

/// Why a handshake was refused by the per-client limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Too many handshakes lately: try again after this long.
    TooFast(Duration),
    /// Too many live sessions for this address or browser.
    TooMany,
}

/// The live sessions and recent handshakes of each client.
pub(crate) struct Census {
    limits: ClientLimits,
    by_address: DashMap<IpAddr, usize>,
    by_browser: DashMap<Box<str>, usize>,
    address_rate: KeyedRate<IpAddr>,
    browser_rate: KeyedRate<Box<str>>,
}

impl Census {
    pub(crate) fn new(limits: ClientLimits) -> Self {
        let rate = NonZeroU32::new(limits.handshakes_per_second.max(1)).expect("not zero");
        // Bursts of five seconds' worth: a page reload storm after a
        // restart passes, a flood does not.
        let burst = rate.saturating_mul(NonZeroU32::new(5).expect("not zero"));
        let quota = Quota::per_second(rate).allow_burst(burst);
        Self {
            limits,
            by_address: DashMap::new(),
            by_browser: DashMap::new(),
            address_rate: KeyedRate::new(quota),
            browser_rate: KeyedRate::new(quota),
        }
    }

    /// The key a handshake from `peer` is counted under; `None` when the
    /// address is exempt (or unknown), and then nothing is counted.
    pub(crate) fn key_of(&self, peer: Option<IpAddr>) -> Option<IpAddr> {
        let peer = peer?;
        let peer = client_key(peer);
        (!self.limits.exempt.iter().any(|n| n.contains(&peer))).then_some(peer)
    }

    /// Counts a handshake from `address` (a key from [`Self::key_of`]) and
    /// `browser`, and a new live session for both, unless a limit says no.
    pub(crate) fn admit(&self, address: IpAddr, browser: Option<&str>) -> Result<(), Refusal> {
        self.address_rate
            .check(&address)
            .map_err(Refusal::TooFast)?;
        if let Some(browser) = browser {
            self.browser_rate
                .check(&Box::from(browser))
                .map_err(Refusal::TooFast)?;
        }
        if !add(&self.by_address, address, self.limits.sessions_per_address) {
            return Err(Refusal::TooMany);
        }
        if let Some(browser) = browser {
            if !add(
                &self.by_browser,
                browser.into(),
                self.limits.sessions_per_browser,
            ) {
                remove(&self.by_address, &address);
                return Err(Refusal::TooMany);
            }
        }
        Ok(())
    }

    /// A session [`Self::admit`] counted is gone.
    pub(crate) fn release(&self, address: IpAddr, browser: Option<&str>) {
        remove(&self.by_address, &address);
        if let Some(browser) = browser {
            remove(&self.by_browser, browser);
        }
    }

    /// Live sessions counted for `address` (a key).
    pub fn sessions_of(&self, address: IpAddr) -> usize {
        self.by_address.get(&address).map_or(0, |n| *n)
    }
}

/// One more for `key`, unless it has `max` already.
fn add<K: std::hash::Hash + Eq>(counts: &DashMap<K, usize>, key: K, max: usize) -> bool {
    let mut n = counts.entry(key).or_insert(0);
    if *n >= max {
        return false;
    }
    *n += 1;
    true
}

/// One fewer for `key`; a key at zero is forgotten.
fn remove<K, Q>(counts: &DashMap<K, usize>, key: &Q)
where
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized,
{
    counts.remove_if_mut(key, |_, n| {
        *n = n.saturating_sub(1);
        *n == 0
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: usize, per_browser: usize, rate: u32) -> ClientLimits {
        ClientLimits {
            sessions_per_address: per_address,
            sessions_per_browser: per_browser,
            handshakes_per_second: rate,
            exempt: vec!["10.0.0.0/8".parse().unwrap()],
        }
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn live_sessions_are_capped_per_address_and_per_browser() {
        let census = Census::new(limits(3, 2, 1000));
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(census.admit(here, Some("b1")), Ok(()));
        assert_eq!(census.admit(here, Some("b1")), Ok(()));
        // The browser has its two; the address still has room.
        assert_eq!(census.admit(here, Some("b1")), Err(Refusal::TooMany));
        assert_eq!(census.sessions_of(here), 2, "a refusal counts nothing");
        assert_eq!(census.admit(here, Some("b2")), Ok(()));
        assert_eq!(census.admit(here, Some("b3")), Err(Refusal::TooMany));
        census.release(here, Some("b1"));
        assert_eq!(census.admit(here, Some("b1")), Ok(()));
        for browser in ["b1", "b1", "b2"] {
            census.release(here, Some(browser));
        }
        assert_eq!(census.sessions_of(here), 0);
        assert!(census.by_browser.is_empty(), "counts at zero are forgotten");
    }

    #[test]
    fn handshakes_are_paced_per_address_and_exempt_networks_are_not_counted() {
        let census = Census::new(limits(usize::MAX, usize::MAX, 2));
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        // Two per second, in bursts of five seconds' worth.
        for _ in 0..10 {
            assert_eq!(census.admit(here, None), Ok(()));
        }
        match census.admit(here, None) {
            Err(Refusal::TooFast(wait)) => assert!(wait <= Duration::from_millis(500), "{wait:?}"),
            other => panic!("{other:?}"),
        }
        let elsewhere: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(census.admit(elsewhere, None), Ok(()));
        assert_eq!(census.key_of(Some("10.1.2.3".parse().unwrap())), None);
        assert_eq!(census.key_of(Some(here)), Some(here));
        assert_eq!(census.key_of(None), None);
    }
}
