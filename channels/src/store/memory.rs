//! A store in process memory: what the services' own tests run on, and an
//! executable statement of the interface's rules (it passes the same
//! conformance suite as the real backends). Nothing survives the process.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{
    check_key, entries_after, now_ms, IndexEntry, LogEntry, Record, Result, Store, Version, Write,
};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Says it is shared between nodes, for tests of what a node does
    /// differently then.
    shared: bool,
}

impl MemoryStore {
    /// A store that says it is shared between nodes.
    pub fn as_if_shared() -> Self {
        Self {
            shared: true,
            ..Self::default()
        }
    }
}

#[derive(Default)]
struct Inner {
    records: HashMap<(String, String), (Record, Vec<IndexEntry>)>,
    /// (collection, name, value) -> ids
    index: HashMap<(String, String, String), BTreeSet<String>>,
    /// (collection, name, value) -> (order, id) of the ordered entries
    ordered: HashMap<(String, String, String), BTreeSet<(u64, String)>>,
    /// (collection, log) -> the log's entries, in order
    logs: HashMap<(String, String), Vec<Kept>>,
}

/// A log entry as kept: (index, value, expiry).
type Kept = (u64, Vec<u8>, Option<u64>);

fn live_entry(expires_at: Option<u64>, now: u64) -> bool {
    expires_at.is_none_or(|t| t > now)
}

impl Inner {
    fn live(&self, key: &(String, String), now: u64) -> Option<&(Record, Vec<IndexEntry>)> {
        self.records
            .get(key)
            .filter(|(r, _)| r.expires_at.is_none_or(|t| t > now))
    }

    fn remove(&mut self, key: &(String, String)) -> Option<Record> {
        let (record, entries) = self.records.remove(key)?;
        for e in entries {
            let entry = (key.0.clone(), e.name, e.value);
            if let (Some(order), Some(ids)) = (e.order, self.ordered.get_mut(&entry)) {
                ids.remove(&(order, key.1.clone()));
            }
            if let Some(ids) = self.index.get_mut(&entry) {
                ids.remove(&key.1);
            }
        }
        Some(record)
    }

    fn write(&mut self, key: (String, String), w: &Write<'_>, version: Version, now: u64) {
        self.remove(&key);
        for e in w.indexes {
            let entry = (key.0.clone(), e.name.clone(), e.value.clone());
            if let Some(order) = e.order {
                let ids = self.ordered.entry(entry.clone()).or_default();
                ids.insert((order, key.1.clone()));
            }
            self.index.entry(entry).or_default().insert(key.1.clone());
        }
        let record = Record {
            value: w.value.to_vec(),
            version,
            expires_at: w.expires_at(now),
        };
        self.records.insert(key, (record, w.indexes.to_vec()));
    }
}

fn checked(collection: &str, id: &str, w: &Write<'_>) -> Result<(String, String)> {
    check_key("an id", id)?;
    for e in w.indexes {
        check_key("an index name", &e.name)?;
        check_key("an index value", &e.value)?;
    }
    Ok((collection.to_owned(), id.to_owned()))
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn shared(&self) -> bool {
        self.shared
    }

    async fn create(
        &self,
        collection: &str,
        id: &str,
        write: Write<'_>,
    ) -> Result<Option<Version>> {
        let key = checked(collection, id, &write)?;
        let now = now_ms();
        let mut inner = self.inner.lock();
        if inner.live(&key, now).is_some() {
            return Ok(None);
        }
        inner.write(key, &write, 1, now);
        Ok(Some(1))
    }

    async fn put(&self, collection: &str, id: &str, write: Write<'_>) -> Result<Version> {
        let key = checked(collection, id, &write)?;
        let now = now_ms();
        let mut inner = self.inner.lock();
        let version = inner.live(&key, now).map_or(0, |(r, _)| r.version) + 1;
        inner.write(key, &write, version, now);
        Ok(version)
    }

    async fn update(
        &self,
        collection: &str,
        id: &str,
        expected: Version,
        write: Write<'_>,
    ) -> Result<Option<Version>> {
        let key = checked(collection, id, &write)?;
        let now = now_ms();
        let mut inner = self.inner.lock();
        if inner.live(&key, now).map(|(r, _)| r.version) != Some(expected) {
            return Ok(None);
        }
        inner.write(key, &write, expected + 1, now);
        Ok(Some(expected + 1))
    }

    async fn get(&self, collection: &str, id: &str) -> Result<Option<Record>> {
        let key = (collection.to_owned(), id.to_owned());
        Ok(self
            .inner
            .lock()
            .live(&key, now_ms())
            .map(|(r, _)| r.clone()))
    }

    async fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        let key = (collection.to_owned(), id.to_owned());
        let now = now_ms();
        let mut inner = self.inner.lock();
        let live = inner.live(&key, now).is_some();
        inner.remove(&key);
        Ok(live)
    }

    async fn count(&self, collection: &str, name: &str, value: &str) -> Result<u64> {
        Ok(self.find(collection, name, value, usize::MAX).await?.len() as u64)
    }

    async fn find(
        &self,
        collection: &str,
        name: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<(String, Record)>> {
        let now = now_ms();
        let inner = self.inner.lock();
        let Some(ids) =
            inner
                .index
                .get(&(collection.to_owned(), name.to_owned(), value.to_owned()))
        else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .filter_map(|id| {
                inner
                    .live(&(collection.to_owned(), id.clone()), now)
                    .map(|(r, _)| (id.clone(), r.clone()))
            })
            .take(limit)
            .collect())
    }

    async fn find_ordered(
        &self,
        collection: &str,
        name: &str,
        value: &str,
        until: u64,
        limit: usize,
    ) -> Result<Vec<(String, Record)>> {
        let now = now_ms();
        let inner = self.inner.lock();
        let entry = (collection.to_owned(), name.to_owned(), value.to_owned());
        let Some(ids) = inner.ordered.get(&entry) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .take_while(|(order, _)| *order <= until)
            .filter_map(|(_, id)| {
                inner
                    .live(&(collection.to_owned(), id.clone()), now)
                    .map(|(r, _)| (id.clone(), r.clone()))
            })
            .take(limit)
            .collect())
    }

    async fn append(
        &self,
        collection: &str,
        log: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<u64> {
        check_key("a log id", log)?;
        let now = now_ms();
        let expires_at = super::expiry(ttl, now);
        let mut inner = self.inner.lock();
        let entries = inner
            .logs
            .entry((collection.to_owned(), log.to_owned()))
            .or_default();
        entries.retain(|(_, _, x)| live_entry(*x, now));
        let index = entries.last().map_or(0, |(i, _, _)| *i) + 1;
        entries.push((index, value.to_vec(), expires_at));
        Ok(index)
    }

    async fn read_log(
        &self,
        collection: &str,
        log: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        let now = now_ms();
        let inner = self.inner.lock();
        let Some(entries) = inner.logs.get(&(collection.to_owned(), log.to_owned())) else {
            return Ok(Vec::new());
        };
        let start = entries.partition_point(|(i, _, _)| *i < from);
        Ok(entries[start..]
            .iter()
            .filter(|(_, _, x)| live_entry(*x, now))
            .take(limit)
            .map(|(index, value, _)| LogEntry {
                index: *index,
                value: value.clone(),
            })
            .collect())
    }

    async fn write_log(
        &self,
        collection: &str,
        log: &str,
        entries: &[LogEntry],
        ttl: Option<Duration>,
    ) -> Result<()> {
        check_key("a log id", log)?;
        let now = now_ms();
        let expires_at = super::expiry(ttl, now);
        let mut inner = self.inner.lock();
        let kept = inner
            .logs
            .entry((collection.to_owned(), log.to_owned()))
            .or_default();
        kept.retain(|(_, _, x)| live_entry(*x, now));
        let last = kept.last().map_or(0, |(i, _, _)| *i);
        for e in entries_after(entries, last)? {
            kept.push((e.index, e.value.clone(), expires_at));
        }
        Ok(())
    }

    async fn keep_log(&self, collection: &str, log: &str, ttl: Duration) -> Result<()> {
        let now = now_ms();
        let until = super::expiry(Some(ttl), now);
        let mut inner = self.inner.lock();
        if let Some(kept) = inner.logs.get_mut(&(collection.to_owned(), log.to_owned())) {
            for (_, _, expires_at) in kept.iter_mut() {
                if expires_at.is_some_and(|x| x > now) {
                    *expires_at = (*expires_at).max(until);
                }
            }
        }
        Ok(())
    }

    async fn delete_log(&self, collection: &str, log: &str) -> Result<bool> {
        let now = now_ms();
        let removed = self
            .inner
            .lock()
            .logs
            .remove(&(collection.to_owned(), log.to_owned()));
        Ok(removed.is_some_and(|e| e.iter().any(|(_, _, x)| live_entry(*x, now))))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::MemoryStore;
    use crate::store::conformance::Harness;
    use crate::store::Store;

    /// One store that every `open` returns: "reopening" a memory store is
    /// the same process looking again.
    struct Memory(Arc<MemoryStore>);

    #[async_trait]
    impl Harness for Memory {
        async fn open(&self) -> Arc<dyn Store> {
            self.0.clone()
        }
    }

    async fn memory() -> Option<Box<dyn Harness>> {
        Some(Box::new(Memory(Arc::default())))
    }

    crate::store_conformance!(memory);
}
