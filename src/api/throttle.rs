//! Agent logins, throttled per account and per client address (governor's
//! keyed limiters): a guessing run against one account, or from one
//! address, is refused with 429 and a `Retry-After`, while an agent who
//! mistypes once or twice never notices. The address is the per-client
//! limits' key (`request::client_key`): an address the site trusts
//! (`[dos-filter] ipWhitelist`) has no address allowance, as for the Bayeux
//! limits; every account keeps its own.

use std::net::IpAddr;
use std::time::Duration;

use bayeux::KeyedRate;

/// Attempts per account: 5 at once, then one every 12 s.
const PER_ACCOUNT: u32 = 5;
/// Attempts per address: 20 at once, then one every 3 s.
const PER_ADDRESS: u32 = 20;

pub struct LoginThrottle {
    by_account: KeyedRate<String>,
    by_address: KeyedRate<IpAddr>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            by_account: KeyedRate::per_minute(PER_ACCOUNT),
            by_address: KeyedRate::per_minute(PER_ADDRESS),
        }
    }
}

impl LoginThrottle {
    /// Counts one attempt (against `account` when it is one); how long to
    /// wait instead when either allowance is spent.
    pub fn attempt(&self, account: Option<&str>, address: Option<IpAddr>) -> Result<(), Duration> {
        if let Some(address) = address {
            self.by_address.check(&address)?;
        }
        match account {
            Some(account) => self.by_account.check(&account.to_owned()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_and_an_address_have_their_allowance() {
        let t = LoginThrottle::default();
        let here: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..PER_ACCOUNT {
            assert!(t.attempt(Some("ada"), Some(here)).is_ok());
        }
        let wait = t.attempt(Some("ada"), Some(here)).unwrap_err();
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(12),
            "{wait:?}"
        );
        // Another account from the same address still may, up to the
        // address's allowance.
        for i in 0..(PER_ADDRESS - PER_ACCOUNT - 1) {
            assert!(t.attempt(Some(&format!("other{i}")), Some(here)).is_ok());
        }
        assert!(
            t.attempt(Some("bob"), Some(here)).is_err(),
            "the address is spent"
        );
        assert!(t.attempt(Some("bob"), Some([192, 0, 2, 2].into())).is_ok());
        // Names that are no account count against their address only.
        let other: IpAddr = [192, 0, 2, 3].into();
        for _ in 0..PER_ADDRESS {
            assert!(t.attempt(None, Some(other)).is_ok());
        }
        assert!(t.attempt(None, Some(other)).is_err());
        assert_eq!(
            t.by_account.tracked(),
            PER_ADDRESS as usize - PER_ACCOUNT as usize + 1
        );
    }
}
