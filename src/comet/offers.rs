//! Offer pings, coalesced: when chats enter or leave a queue, each agent
//! serving it is told to look at its offers at most once per window, at
//! the window's end (so the look sees every change of the window), with the
//! chats that changed meanwhile. A queue that fills at a hundred chats a
//! second makes each desk read its offers a few times a second, not a
//! hundred. May use: nothing else of comet.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

/// How long an agent's offer ping waits for more changes.
pub const WINDOW: Duration = Duration::from_millis(250);
/// The most chat ids one ping names (past them it says there were more).
pub const MOST_CHATS: usize = 64;

/// The chats one coalesced ping is about, first first.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Covered {
    pub chats: Vec<String>,
    /// Chats beyond [`MOST_CHATS`] changed too.
    pub more: bool,
}

#[derive(Default)]
pub struct OfferPings {
    /// Agents whose ping is on its way, with the chats it will name.
    pending: Mutex<HashMap<String, Covered>>,
}

impl OfferPings {
    /// Notes that `chat_id` changed the offers of `logins`; returns those
    /// whose ping is to be sent after the window (the others have one on
    /// its way already, which now names this chat too).
    pub fn claim(&self, logins: impl IntoIterator<Item = String>, chat_id: &str) -> Vec<String> {
        let mut pending = self.pending.lock();
        let mut fresh = Vec::new();
        for login in logins {
            let covered = pending.entry(login.clone()).or_insert_with(|| {
                fresh.push(login);
                Covered::default()
            });
            if covered.chats.iter().any(|c| c == chat_id) {
                continue;
            }
            if covered.chats.len() < MOST_CHATS {
                covered.chats.push(chat_id.to_owned());
            } else {
                covered.more = true;
            }
        }
        fresh
    }

    /// The window of `logins` is over: what their pings name. A change from
    /// now on claims again.
    pub fn release(&self, logins: Vec<String>) -> Vec<(String, Covered)> {
        let mut pending = self.pending.lock();
        logins
            .into_iter()
            .filter_map(|login| pending.remove(&login).map(|c| (login, c)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn one_ping_per_agent_per_window_naming_every_chat() {
        let pings = OfferPings::default();
        assert_eq!(pings.claim(names(&["a", "b"]), "c1"), names(&["a", "b"]));
        assert!(
            pings.claim(names(&["a", "b"]), "c2").is_empty(),
            "covered by the pending ones"
        );
        assert_eq!(pings.claim(names(&["b", "c"]), "c2"), names(&["c"]));
        let released = pings.release(names(&["a", "b"]));
        assert_eq!(released[0].1.chats, names(&["c1", "c2"]));
        assert_eq!(released[1].1.chats, names(&["c1", "c2"]), "once each");
        assert_eq!(
            pings.claim(names(&["a", "b", "c"]), "c3"),
            names(&["a", "b"])
        );
        assert_eq!(
            pings.release(names(&["c"]))[0].1.chats,
            names(&["c2", "c3"])
        );
    }

    #[test]
    fn a_ping_names_a_bounded_number_of_chats() {
        let pings = OfferPings::default();
        for i in 0..MOST_CHATS + 5 {
            pings.claim(names(&["a"]), &format!("c{i}"));
        }
        let (_, covered) = pings.release(names(&["a"])).pop().unwrap();
        assert_eq!(covered.chats.len(), MOST_CHATS);
        assert!(covered.more);
    }
}
