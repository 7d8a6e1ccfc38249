//! Offer pings, coalesced: when chats enter or leave a queue, each agent
//! serving it is told to look at its offers at most once per window, at
//! the window's end (so the look sees every change of the window). A queue
//! that fills at a hundred chats a second makes each desk read its offers
//! a few times a second, not a hundred. May use: nothing else of comet.

use std::collections::HashSet;
use std::time::Duration;

use parking_lot::Mutex;

/// How long an agent's offer ping waits for more changes.
pub const WINDOW: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct OfferPings {
    /// Agents whose ping is on its way.
    pending: Mutex<HashSet<String>>,
}

impl OfferPings {
    /// Of `logins`, those whose ping is to be sent after the window (the
    /// others have one on its way already, which will cover this change).
    pub fn claim(&self, logins: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut pending = self.pending.lock();
        logins
            .into_iter()
            .filter(|login| pending.insert(login.clone()))
            .collect()
    }

    /// The window of `logins` is over: a change from now on claims again.
    /// Called just before their pings go, so no change falls between.
    pub fn release(&self, logins: &[String]) {
        let mut pending = self.pending.lock();
        for login in logins {
            pending.remove(login);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_ping_per_agent_per_window() {
        let pings = OfferPings::default();
        let agents = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(pings.claim(agents(&["a", "b"])), agents(&["a", "b"]));
        assert!(
            pings.claim(agents(&["a", "b"])).is_empty(),
            "covered by the pending ones"
        );
        assert_eq!(pings.claim(agents(&["b", "c"])), agents(&["c"]));
        pings.release(&agents(&["a", "b"]));
        assert_eq!(pings.claim(agents(&["a", "b", "c"])), agents(&["a", "b"]));
    }
}
