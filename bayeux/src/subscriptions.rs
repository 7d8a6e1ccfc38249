//! Who is subscribed to what, answering "which sessions get a message on
//! `/a/b/c`" without scanning every session.
//!
//! Three maps, keyed so a channel needs one lookup per level: exact names,
//! `*` patterns by their base (`/a/b/*` under `/a/b`), and `**` patterns by
//! their base (`/a/**` under `/a`). A message on `/a/b/c` looks up `/a/b/c`
//! in the first, `/a/b` in the second, and `/a/b`, `/a` and `""` in the third.
//!
//! Each entry is a subscriber list behind its own read-write lock, so
//! publishers on different channels never contend, and publishers on the same
//! channel share a read lock.
//! May use: channels, sessions.

use std::sync::Arc;

use dashmap::DashMap;
use indexmap::IndexMap;
use parking_lot::RwLock;

use crate::channel::{parent, ChannelName, Wildcard};
use crate::session::Session;

pub(crate) type Subscribers = Arc<RwLock<IndexMap<u64, Arc<Session>>>>;

#[derive(Default)]
pub(crate) struct SubscriptionIndex {
    exact: DashMap<Arc<str>, Subscribers>,
    one: DashMap<Arc<str>, Subscribers>,
    deep: DashMap<Arc<str>, Subscribers>,
}

impl SubscriptionIndex {
    fn map_for(&self, pattern: &ChannelName) -> &DashMap<Arc<str>, Subscribers> {
        match pattern.wildcard() {
            Wildcard::None => &self.exact,
            Wildcard::One => &self.one,
            Wildcard::Deep => &self.deep,
        }
    }

    pub fn subscribe(&self, pattern: &ChannelName, session: &Arc<Session>) {
        let map = self.map_for(pattern);
        // Inserting under the entry guard keeps a concurrent unsubscribe from
        // dropping the list between our lookup and our insert.
        let entry = map.entry(Arc::from(pattern.wildcard_base())).or_default();
        entry.write().insert(session.key(), session.clone());
    }

    pub fn unsubscribe(&self, pattern: &ChannelName, session_key: u64) {
        self.map_for(pattern)
            .remove_if(pattern.wildcard_base(), |_, list| {
                let mut list = list.write();
                list.swap_remove(&session_key);
                list.is_empty()
            });
    }

    /// Whether the channel or pattern has subscribers.
    pub fn contains(&self, pattern: &ChannelName) -> bool {
        self.map_for(pattern).contains_key(pattern.wildcard_base())
    }

    /// The subscriber lists whose patterns match `channel`, most specific first.
    pub fn matching(&self, channel: &str, out: &mut Vec<Subscribers>) {
        if let Some(list) = self.exact.get(channel) {
            out.push(list.clone());
        }
        let Some(up) = parent(channel) else { return };
        if let Some(list) = self.one.get(up) {
            out.push(list.clone());
        }
        let mut level = Some(up);
        while let Some(base) = level {
            if let Some(list) = self.deep.get(base) {
                out.push(list.clone());
            }
            level = parent(base);
        }
    }

    /// Number of distinct channels and patterns with subscribers.
    pub fn len(&self) -> usize {
        self.exact.len() + self.one.len() + self.deep.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(key: u64) -> Arc<Session> {
        Arc::new(Session::new(
            key,
            format!("c{key}").into(),
            None,
            None,
            None,
            u64::MAX,
        ))
    }

    fn keys(index: &SubscriptionIndex, channel: &str) -> Vec<u64> {
        let mut lists = Vec::new();
        index.matching(channel, &mut lists);
        let mut keys: Vec<u64> = lists
            .iter()
            .flat_map(|l| l.read().keys().copied().collect::<Vec<_>>())
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn exact_one_and_deep_patterns() {
        let index = SubscriptionIndex::default();
        let p = |n| ChannelName::parse(n).unwrap();
        index.subscribe(&p("/a/b"), &s(1));
        index.subscribe(&p("/a/*"), &s(2));
        index.subscribe(&p("/a/**"), &s(3));
        index.subscribe(&p("/**"), &s(4));
        index.subscribe(&p("/a/b/*"), &s(5));
        assert_eq!(keys(&index, "/a/b"), vec![1, 2, 3, 4]);
        assert_eq!(keys(&index, "/a/b/c"), vec![3, 4, 5]);
        assert_eq!(keys(&index, "/a"), vec![4]);
        index.unsubscribe(&p("/a/**"), 3);
        assert_eq!(keys(&index, "/a/b/c"), vec![4, 5]);
        index.unsubscribe(&p("/a/b"), 1);
        assert!(!index.contains(&p("/a/b")));
        assert_eq!(index.len(), 3);
    }
}
