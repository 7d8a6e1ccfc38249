//! The store every GMS service of gmshub keeps its state in, as one small
//! interface that the backends in the binary implement (SQLite, Redis,
//! ScyllaDB/Cassandra).
//!
//! The interface is deliberately narrow, so that three very different
//! engines can honour it exactly:
//!
//! - a *record* is a value (bytes) under `(collection, id)`, with a version
//!   that every write bumps and an optional time to live;
//! - writes are create-if-absent, unconditional put, or compare-and-set on
//!   the version (the state machines of chat and callback are built on it: two
//!   nodes racing to move one callback cannot both win);
//! - a record may carry *index entries* `(name, value)`, and `find` returns
//!   the live records of a collection whose entry matches: subscriptions by
//!   tag, callbacks by customer number or state, nodes by cluster; an entry
//!   may carry an *order* (a time), and `find_ordered` returns the records
//!   of an entry in that order, up to a bound, at most a limit: the oldest
//!   chats of a queue, the chats due for their idle check;
//! - a *log* is an append-only sequence of values under `(collection, log)`:
//!   `append` gives each value the next index (1, 2, ...), never the same
//!   one twice whoever appends from wherever, and `read_log` reads a range
//!   by index without reading the rest (a chat's transcript);
//! - expiry is the store's job: an expired record is never returned, by any
//!   operation, whether or not anything has purged it yet.
//!
//! Services keep typed values through [`Collection`].

pub mod collection;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod memory;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

pub use collection::{Collection, Logs};
pub use memory::MemoryStore;

/// A record's version: 1 when created, one more on every write.
pub type Version = u64;

/// What the store holds under one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub value: Vec<u8>,
    pub version: Version,
    /// When it stops existing, in milliseconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// One index entry of a record: `find(collection, name, value)` returns it;
/// with an order, `find_ordered` too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexEntry {
    pub name: String,
    pub value: String,
    /// Where the record stands among those of this entry (a time, in
    /// milliseconds): `find_ordered` returns them in this order.
    pub order: Option<u64>,
}

impl IndexEntry {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            order: None,
        }
    }

    /// An entry that `find_ordered` returns in `order`.
    pub fn ordered(name: impl Into<String>, value: impl Into<String>, order: u64) -> Self {
        Self {
            order: Some(order),
            ..Self::new(name, value)
        }
    }
}

/// One value of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// 1 for a log's first value, one more for each next.
    pub index: u64,
    pub value: Vec<u8>,
}

/// What a write stores: the value, its time to live (none: until deleted)
/// and the index entries that find it. A write replaces all of them.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub value: &'a [u8],
    pub ttl: Option<Duration>,
    pub indexes: &'a [IndexEntry],
}

impl<'a> Write<'a> {
    pub fn new(value: &'a [u8]) -> Self {
        Self {
            value,
            ttl: None,
            indexes: &[],
        }
    }

    pub fn ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn indexes(mut self, indexes: &'a [IndexEntry]) -> Self {
        self.indexes = indexes;
        self
    }

    /// The expiry this write sets, from now.
    pub fn expires_at(&self, now_ms: u64) -> Option<u64> {
        expiry(self.ttl, now_ms)
    }
}

/// When something given `ttl` at `now_ms` stops existing (none: never).
pub fn expiry(ttl: Option<Duration>, now_ms: u64) -> Option<u64> {
    ttl.map(|ttl| now_ms.saturating_add(ttl.as_millis().max(1) as u64))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or failed; the operation may or may
    /// not have happened.
    #[error("{backend} store unavailable: {message}")]
    Unavailable {
        backend: &'static str,
        message: String,
    },
    /// The backend answered something this interface cannot read (a schema
    /// that does not match, a corrupt row).
    #[error("{backend} store: {message}")]
    Corrupt {
        backend: &'static str,
        message: String,
    },
    /// A stored value could not be decoded into its type.
    #[error("stored value in {collection} cannot be read: {message}")]
    Decode { collection: String, message: String },
    /// A value could not be encoded.
    #[error("value for {collection} cannot be stored: {message}")]
    Encode { collection: String, message: String },
    /// An argument the backend cannot hold (too long an id, a TTL beyond what
    /// it keeps).
    #[error("{0}")]
    Invalid(String),
    /// A read-modify-write lost its compare-and-set to other writers
    /// [`collection::WRITE_ATTEMPTS`] times in a row, or a fresh id was
    /// taken as often: the caller may try again later.
    #[error("too many concurrent writers on {collection} {id}")]
    Contended { collection: String, id: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store. Implementations are cheap to share (`Arc<dyn Store>`), and
/// safe to use from every node of a cluster at once where the backend is
/// shared.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name, for logs and `/genesys/1/node`.
    fn backend(&self) -> &'static str;

    /// Whether several gmshub nodes can share this store.
    fn shared(&self) -> bool;

    /// Stores the record if no live record has that id; returns its version
    /// (1), or `None` when the id is taken.
    async fn create(&self, collection: &str, id: &str, write: Write<'_>)
        -> Result<Option<Version>>;

    /// Stores the record whatever was there; returns the new version.
    async fn put(&self, collection: &str, id: &str, write: Write<'_>) -> Result<Version>;

    /// Replaces the record only if its live version is `expected`; returns the
    /// new version, or `None` when it has changed, expired or gone.
    async fn update(
        &self,
        collection: &str,
        id: &str,
        expected: Version,
        write: Write<'_>,
    ) -> Result<Option<Version>>;

    /// The live record with that id.
    async fn get(&self, collection: &str, id: &str) -> Result<Option<Record>>;

    /// Removes the record; returns whether a live one was there.
    async fn delete(&self, collection: &str, id: &str) -> Result<bool>;

    /// How many live records of the collection have the index entry
    /// `name = value` (an agent's open chats, for its capacity), without
    /// reading them. Cassandra counts index rows, which a crash between a
    /// record's writes can leave one too many until the record's next write.
    async fn count(&self, collection: &str, name: &str, value: &str) -> Result<u64>;

    /// Live records of the collection with the index entry `name = value`,
    /// at most `limit` of them, in no particular order.
    async fn find(
        &self,
        collection: &str,
        name: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<(String, Record)>>;

    /// Live records of the collection whose entry `name = value` has an
    /// order of at most `until`, lowest order first (ties by id), at most
    /// `limit` of them. Entries without an order are not among them. The
    /// cost is that of the records returned, however many have the entry.
    async fn find_ordered(
        &self,
        collection: &str,
        name: &str,
        value: &str,
        until: u64,
        limit: usize,
    ) -> Result<Vec<(String, Record)>>;

    /// Appends `value` to the log `log` of the collection; returns its
    /// index: one more than the log's last live entry (1 for an empty log),
    /// never given to two appends, by any number of writers on any number
    /// of nodes. The entry lives at least `ttl` (none: until the log is
    /// deleted); a backend may keep it until the log's last entry expires.
    async fn append(
        &self,
        collection: &str,
        log: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<u64>;

    /// The log's live entries from index `from` on, in order, at most
    /// `limit`; the cost is that of the entries returned.
    async fn read_log(
        &self,
        collection: &str,
        log: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>>;

    /// Writes `entries`, of consecutive indexes, into the log, where they
    /// continue it or repeat its last entries: writers racing to store the
    /// same entries (each of which it reserved elsewhere, say under a
    /// record's compare-and-set) store them once, and an index the log
    /// holds keeps its value (writing it again with another value is a
    /// caller's error; a backend may keep either). Entries that would leave
    /// a gap after the log's last live entry are refused with
    /// [`StoreError::Invalid`], and nothing is written. Each lives at least
    /// `ttl` (none: until the log is deleted).
    async fn write_log(
        &self,
        collection: &str,
        log: &str,
        entries: &[LogEntry],
        ttl: Option<Duration>,
    ) -> Result<()>;

    /// Makes every live entry of the log live at least `ttl` from now, so a
    /// log can be kept as long as the record it belongs to without being
    /// written again. The cost may be that of the whole log: call it seldom
    /// (doubling the lifetime each time).
    async fn keep_log(&self, collection: &str, log: &str, ttl: Duration) -> Result<()>;

    /// Removes the log; returns whether it had a live entry.
    async fn delete_log(&self, collection: &str, log: &str) -> Result<bool>;
}

/// Milliseconds since the Unix epoch, the clock every expiry is read on.
/// Nodes of a cluster need synchronised clocks (NTP), as GMS's do.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Longest id or index value a backend must accept, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// Refuses ids and index entries that are empty or too long: every backend
/// keys on them, and a key of unbounded length is a way to exhaust memory.
pub fn check_key(what: &str, key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(StoreError::Invalid(format!(
            "{what} must be 1 to {MAX_KEY_LEN} bytes long"
        )));
    }
    Ok(())
}

/// Of `entries` for [`Store::write_log`] into a log whose last live index
/// is `last`, the ones it does not hold yet; refuses entries that are not
/// consecutive from index 1 on, or that would leave a gap.
pub fn entries_after(entries: &[LogEntry], last: u64) -> Result<&[LogEntry]> {
    let Some(first) = check_consecutive(entries)? else {
        return Ok(entries);
    };
    if first > last + 1 {
        return Err(StoreError::Invalid(format!(
            "log entry {first} would leave a gap after entry {last}"
        )));
    }
    let held = (last + 1 - first) as usize;
    Ok(&entries[held.min(entries.len())..])
}

/// The first index of `entries` (none if empty); refuses entries whose
/// indexes are not consecutive from 1 on.
pub fn check_consecutive(entries: &[LogEntry]) -> Result<Option<u64>> {
    let Some(first) = entries.first().map(|e| e.index) else {
        return Ok(None);
    };
    if first == 0 || !entries.iter().zip(first..).all(|(e, i)| e.index == i) {
        return Err(StoreError::Invalid(
            "log entries must have consecutive indexes from 1 on".into(),
        ));
    }
    Ok(Some(first))
}
