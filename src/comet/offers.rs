//! Offer pings, coalesced: when chats enter or leave a queue, each agent
//! serving it is told to look at its offers at once, and then at most once
//! per window while changes go on: the first change of a quiet spell is
//! pinged when it happens (a chat waits for no window), the ones after it
//! at the window's end, with the chats that changed meanwhile. A queue that
//! fills at a hundred chats a second makes each desk read its offers a few
//! times a second, not a hundred. May use: nothing else of comet.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

/// How long an agent's pings are held back after one was sent.
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

impl Covered {
    fn add(&mut self, chat_id: &str) {
        if self.chats.iter().any(|c| c == chat_id) {
            return;
        }
        if self.chats.len() < MOST_CHATS {
            self.chats.push(chat_id.to_owned());
        } else {
            self.more = true;
        }
    }
}

#[derive(Default)]
pub struct OfferPings {
    /// Agents inside a window, with the chats that changed since its ping.
    held: Mutex<HashMap<String, Covered>>,
}

impl OfferPings {
    /// Notes that `chat_id` changed the offers of `logins`; returns the
    /// pings to send now, to the agents that were quiet (each with this
    /// chat): a window opens for them, to be ended by [`release`](Self::release).
    /// The others hear of it at their window's end.
    pub fn claim(
        &self,
        logins: impl IntoIterator<Item = String>,
        chat_id: &str,
    ) -> Vec<(String, Covered)> {
        let mut held = self.held.lock();
        let mut now = Vec::new();
        for login in logins {
            match held.get_mut(&login) {
                Some(covered) => covered.add(chat_id),
                None => {
                    held.insert(login.clone(), Covered::default());
                    let mut covered = Covered::default();
                    covered.add(chat_id);
                    now.push((login, covered));
                }
            }
        }
        now
    }

    /// The window of `logins` is over: the pings of those with changes in
    /// it (a new window opens for them: release them again after it), and
    /// the others are quiet again.
    pub fn release(&self, logins: Vec<String>) -> Vec<(String, Covered)> {
        let mut held = self.held.lock();
        let mut due = Vec::new();
        for login in logins {
            match held.get_mut(&login) {
                Some(covered) if !covered.chats.is_empty() || covered.more => {
                    due.push((login, std::mem::take(covered)));
                }
                _ => {
                    held.remove(&login);
                }
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    fn logins(now: &[(String, Covered)]) -> Vec<String> {
        now.iter().map(|(l, _)| l.clone()).collect()
    }

    #[test]
    fn the_first_change_is_pinged_at_once_the_next_once_per_window() {
        let pings = OfferPings::default();
        let first = pings.claim(names(&["a", "b"]), "c1");
        assert_eq!(logins(&first), names(&["a", "b"]), "quiet agents: at once");
        assert_eq!(first[0].1.chats, names(&["c1"]));
        assert!(
            pings.claim(names(&["a", "b"]), "c2").is_empty(),
            "inside the window: held"
        );
        pings.claim(names(&["a"]), "c2");
        assert_eq!(
            logins(&pings.claim(names(&["b", "c"]), "c3")),
            names(&["c"])
        );
        let due = pings.release(names(&["a", "b"]));
        assert_eq!(
            due[0],
            (
                "a".to_owned(),
                Covered {
                    chats: names(&["c2"]),
                    more: false
                }
            ),
            "once each"
        );
        assert_eq!(due[1].1.chats, names(&["c2", "c3"]));
        // Their next window passes with no change: quiet again, so the next
        // change is pinged at once.
        assert!(pings.release(names(&["a", "b"])).is_empty());
        assert_eq!(
            logins(&pings.claim(names(&["a", "b", "c"]), "c4")),
            names(&["a", "b"])
        );
        assert_eq!(pings.release(names(&["c"]))[0].1.chats, names(&["c4"]));
    }

    #[test]
    fn a_ping_names_a_bounded_number_of_chats() {
        let pings = OfferPings::default();
        for i in 0..MOST_CHATS + 6 {
            pings.claim(names(&["a"]), &format!("c{i}"));
        }
        let (_, covered) = pings.release(names(&["a"])).pop().unwrap();
        assert_eq!(covered.chats.len(), MOST_CHATS);
        assert!(covered.more);
    }
}
