//! The embedded store: one SQLite file (WAL journal), the default, so that
//! `cargo run` needs nothing installed. A single node only: SQLite is not
//! shared between machines.
//!
//! Every operation runs in one transaction on a blocking thread; the
//! connection's mutex is never held across an `.await`. Expired rows are
//! invisible to every query (each one compares `expires_at` with the clock)
//! and are removed by a purge every minute, which only reclaims space.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use channels::store::{
    check_key, entries_after, expiry, now_ms, LogEntry, Record, Result, Store, StoreError, Version,
    Write,
};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};

const BACKEND: &str = "sqlite";
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Read-only connections beside the one writer.
const READERS: usize = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    value BLOB NOT NULL,
    version INTEGER NOT NULL,
    expires_at INTEGER,
    entries TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_expiry ON records (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS record_index (
    collection TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
        id TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (collection, name, value, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_index_by_id ON record_index (collection, id);
CREATE TABLE IF NOT EXISTS logs (
    collection TEXT NOT NULL,
    log TEXT NOT NULL,
    idx INTEGER NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (collection, log, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_by_expiry ON logs (expires_at) WHERE expires_at IS NOT NULL;
";

/// Made after the `ord` column exists (files older than it get it first).
const ORDERED_INDEX: &str = "CREATE INDEX IF NOT EXISTS record_index_ordered
    ON record_index (collection, name, value, ord, id) WHERE ord IS NOT NULL;";

const INSERT_LOG_ENTRY: &str =
    "INSERT INTO logs (collection, log, idx, value, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Expired log entries, a batch at a time, through `logs_by_expiry`.
pub const PURGE_LOGS: &str = "DELETE FROM logs WHERE (collection, log, idx) IN
    (SELECT collection, log, idx FROM logs INDEXED BY logs_by_expiry
     WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2)";

/// A record's index rows, by the record's id. `INDEXED BY`: without it,
/// SQLite 3.54 plans these on the primary key's `collection` prefix alone,
/// a scan of every index row of the collection on each write.
pub const DELETE_INDEX_ROWS: &str =
    "DELETE FROM record_index INDEXED BY record_index_by_id WHERE collection = ?1 AND id = ?2";
/// Expired records, oldest first, through `records_by_expiry`.
pub const PURGE_FIND: &str = "SELECT collection, id FROM records INDEXED BY records_by_expiry
     WHERE expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2";
/// Records one purge turn deletes at most.
pub const PURGE_BATCH: usize = 500;

pub const RETTL_INDEX_ROWS: &str = "UPDATE record_index INDEXED BY record_index_by_id
     SET expires_at = ?3 WHERE collection = ?1 AND id = ?2";

pub struct Sqlite {
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections: with WAL, reads run beside the writer and
    /// each other, and see every commit made before they start.
    readers: Arc<Mutex<Vec<Connection>>>,
    reads: Arc<tokio::sync::Semaphore>,
    /// One operation at a time reaches the blocking pool: the connection
    /// serves one anyway, and waiting here (a task) is cheaper than a
    /// blocking thread each parked on the mutex.
    turn: Arc<tokio::sync::Semaphore>,
    path: PathBuf,
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        message: e.to_string(),
    }
}

impl Sqlite {
    /// Opens (creating it and its folder if needed) the database file, and
    /// starts the purge of expired rows.
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn =
            Connection::open(path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
        // WAL: readers do not wait for the writer; NORMAL sync survives a
        // crash of the process (a power cut may lose the last commits).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(failed)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(failed)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(failed)?;
        // Pages in memory (64 MiB). Not mapped: in WAL mode a connection
        // that sees another's commit drops its mapping whole, and a munmap
        // of 256 MiB on every read after a write (with its TLB shootdown
        // across cores) cost more than the reads it saved.
        conn.pragma_update(None, "cache_size", -65536)
            .map_err(failed)?;
        conn.execute_batch(SCHEMA).map_err(failed)?;
        // Files made before `entries` existed get the column.
        let has_entries: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('records') WHERE name = 'entries'")
            .and_then(|mut st| st.exists([]))
            .map_err(failed)?;
        if !has_entries {
            conn.execute_batch("ALTER TABLE records ADD COLUMN entries TEXT NOT NULL DEFAULT ''")
                .map_err(failed)?;
        }
        // ... and index rows their record's expiry, copied from it.
        let index_expiry: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('record_index') WHERE name = 'expires_at'")
            .and_then(|mut st| st.exists([]))
            .map_err(failed)?;
        if !index_expiry {
            conn.execute_batch(
                "ALTER TABLE record_index ADD COLUMN expires_at INTEGER;
                 UPDATE record_index SET expires_at = (SELECT r.expires_at FROM records r
                 WHERE r.collection = record_index.collection AND r.id = record_index.id);",
            )
            .map_err(failed)?;
        }
        // ... and their order, for `find_ordered`.
        let index_order: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('record_index') WHERE name = 'ord'")
            .and_then(|mut st| st.exists([]))
            .map_err(failed)?;
        if !index_order {
            conn.execute_batch("ALTER TABLE record_index ADD COLUMN ord INTEGER")
                .map_err(failed)?;
        }
        conn.execute_batch(ORDERED_INDEX).map_err(failed)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| failed(format!("{}: {e}", path.display())))?;
            reader
                .busy_timeout(Duration::from_secs(5))
                .map_err(failed)?;
            reader
                .pragma_update(None, "cache_size", -16384)
                .map_err(failed)?;
            readers.push(reader);
        }
        let store = Arc::new(Self {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::new(Mutex::new(readers)),
            reads: Arc::new(tokio::sync::Semaphore::new(READERS)),
            turn: Arc::new(tokio::sync::Semaphore::new(1)),
            path: path.to_owned(),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(purge_loop(Arc::downgrade(&store)));
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a read on one of the read-only connections. The permit goes
    /// with the blocking task, not with this future: a read whose caller
    /// went away keeps its connection until its query ends, so a permit
    /// always finds a connection.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = self.reads.clone().acquire_owned().await.map_err(failed)?;
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.lock().pop().expect("a reader per permit");
            let out = f(&conn);
            readers.lock().push(conn);
            drop(permit);
            out
        })
        .await
        .map_err(failed)?
        .map_err(failed)
    }

    /// Runs a point read (one row by its key: microseconds) on the calling
    /// thread, on the writer's connection when it is idle, else as
    /// [`read`](Self::read) does. Most reads of a chat event are these:
    /// handing each to the blocking pool cost more in thread wake-ups than
    /// the read (a third of the server's CPU went to scheduling in the chat
    /// benchmark's profile), and the writer's page cache stays warm where a
    /// reader's is dropped after every commit it did not make (WAL). Only
    /// the writer's: it is the one connection that never waits for another
    /// (a reader can meet a busy WAL index and sleep in its busy handler,
    /// which must not happen on a runtime thread).
    async fn point_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        if let Some(conn) = self.conn.try_lock() {
            return f(&conn).map_err(failed);
        }
        self.read(f).await
    }

    /// Runs a write on the writer connection, one at a time (the turn,
    /// likewise, ends with the blocking task).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let turn = self.turn.clone().acquire_owned().await.map_err(failed)?;
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let out = f(&mut conn.lock());
            drop(turn);
            out
        })
        .await
        .map_err(failed)?
        .map_err(failed)
    }

    /// Deletes expired rows; returns how many records went. In batches of
    /// [`PURGE_BATCH`], each its own write turn, so writes go on between.
    pub async fn purge(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self.purge_batch().await?;
            total += n;
            if n < PURGE_BATCH {
                return Ok(total);
            }
        }
    }

    /// Deletes at most [`PURGE_BATCH`] expired records, found through the
    /// expiry index, with their index rows, and as many expired log
    /// entries; returns how many of both.
    pub async fn purge_batch(&self) -> Result<usize> {
        self.run(|conn| {
            let tx = conn.transaction()?;
            let now = now_ms() as i64;
            let entries = tx
                .prepare_cached(PURGE_LOGS)?
                .execute(params![now, PURGE_BATCH as i64])?;
            let expired: Vec<(String, String)> = tx
                .prepare_cached(PURGE_FIND)?
                .query_map(params![now, PURGE_BATCH as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            for (collection, id) in &expired {
                tx.prepare_cached(DELETE_INDEX_ROWS)?
                    .execute(params![collection, id])?;
                tx.prepare_cached("DELETE FROM records WHERE collection = ?1 AND id = ?2")?
                    .execute(params![collection, id])?;
            }
            tx.commit()?;
            Ok(expired.len().max(entries))
        })
        .await
    }
}

async fn purge_loop(store: Weak<Sqlite>) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(store) = store.upgrade() else { return };
        match store.purge().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(records = n, "purged expired records"),
            Err(e) => tracing::warn!("purging expired records: {e}"),
        }
    }
}

/// The live version of a record, if any.
fn live_version(
    tx: &Transaction,
    collection: &str,
    id: &str,
    now: i64,
) -> rusqlite::Result<Option<Version>> {
    tx.prepare_cached(
        "SELECT version FROM records WHERE collection = ?1 AND id = ?2
         AND (expires_at IS NULL OR expires_at > ?3)",
    )?
    .query_row(params![collection, id, now], |row| row.get::<_, i64>(0))
    .optional()
    .map(|v| v.map(|v| v as Version))
}

/// Writes the record, and its index entries when they changed (a chat's
/// entries stay the same over most of its writes; rewriting them each time
/// was the largest cost of a write). Index rows carry the record's expiry,
/// so that `count` reads them alone: joining each to its record read the
/// record's whole value.
fn write_record(tx: &Transaction, w: &OwnedWrite, version: Version) -> rusqlite::Result<()> {
    let (collection, id) = (&w.collection, &w.id);
    let expires_at = w.expires_at.map(|t| t as i64);
    let old: Option<(String, Option<i64>)> = tx
        .prepare_cached(
            "SELECT entries, expires_at FROM records WHERE collection = ?1 AND id = ?2",
        )?
        .query_row(params![collection, id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    // Only the rows that changed are written: a chat's entries mostly stay
    // the same (its idle due time is the one that moves with each message),
    // and rewriting all of them was the largest cost of a write.
    let old_entries = old
        .as_ref()
        .and_then(|(entries, _)| serde_json::from_str::<Vec<Entry>>(entries).ok());
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO record_index (collection, name, value, id, expires_at, ord)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut add = |(name, value, order): &Entry| {
        let order = order.map(|o| o.min(i64::MAX as u64) as i64);
        insert.execute(params![collection, name, value, id, expires_at, order])
    };
    match (old_entries, old) {
        (Some(was), Some((_, old_expiry))) => {
            let mut remove = tx.prepare_cached(
                "DELETE FROM record_index WHERE collection = ?1 AND name = ?2 AND value = ?3 AND id = ?4",
            )?;
            for (name, value, _) in was.iter().filter(|e| !w.indexes.contains(e)) {
                remove.execute(params![collection, name, value, id])?;
            }
            for entry in w.indexes.iter().filter(|e| !was.contains(e)) {
                add(entry)?;
            }
            if old_expiry != expires_at {
                tx.prepare_cached(RETTL_INDEX_ROWS)?
                    .execute(params![collection, id, expires_at])?;
            }
        }
        // A new record, or one whose entries an older file wrote otherwise.
        _ => {
            tx.prepare_cached(DELETE_INDEX_ROWS)?
                .execute(params![collection, id])?;
            for entry in &w.indexes {
                add(entry)?;
            }
        }
    }
    tx.prepare_cached(
        "INSERT INTO records (collection, id, value, version, expires_at, entries) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (collection, id) DO UPDATE SET value = excluded.value,
         version = excluded.version, expires_at = excluded.expires_at, entries = excluded.entries",
    )?
    .execute(params![collection, id, w.value, version as i64, w.expires_at.map(|t| t as i64), w.entries])?;
    Ok(())
}

/// An index entry as a write keeps it: name, value, order.
type Entry = (String, String, Option<u64>);

/// Owned copies of a write, to move onto the blocking thread.
struct OwnedWrite {
    collection: String,
    id: String,
    value: Vec<u8>,
    expires_at: Option<u64>,
    indexes: Vec<Entry>,
    /// The entries, encoded to compare with the stored ones.
    entries: String,
}

impl OwnedWrite {
    fn new(collection: &str, id: &str, w: Write<'_>) -> Result<Self> {
        check_key("an id", id)?;
        for ix in w.indexes {
            check_key("an index name", &ix.name)?;
            check_key("an index value", &ix.value)?;
        }
        let mut indexes: Vec<Entry> = w
            .indexes
            .iter()
            .map(|ix| (ix.name.clone(), ix.value.clone(), ix.order))
            .collect();
        indexes.sort();
        // One row per name and value (the first order given wins).
        indexes.dedup_by(|b, a| (&a.0, &a.1) == (&b.0, &b.1));
        let entries = serde_json::to_string(&indexes).unwrap_or_default();
        Ok(Self {
            collection: collection.to_owned(),
            id: id.to_owned(),
            value: w.value.to_vec(),
            expires_at: w.expires_at(now_ms()),
            indexes,
            entries,
        })
    }

    fn store(&self, tx: &Transaction, version: Version) -> rusqlite::Result<()> {
        write_record(tx, self, version)
    }
}

#[async_trait]
impl Store for Sqlite {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn shared(&self) -> bool {
        false
    }

    async fn create(
        &self,
        collection: &str,
        id: &str,
        write: Write<'_>,
    ) -> Result<Option<Version>> {
        let w = OwnedWrite::new(collection, id, write)?;
        self.run(move |conn| {
            let tx = conn.transaction()?;
            if live_version(&tx, &w.collection, &w.id, now_ms() as i64)?.is_some() {
                return Ok(None);
            }
            w.store(&tx, 1)?;
            tx.commit()?;
            Ok(Some(1))
        })
        .await
    }

    async fn put(&self, collection: &str, id: &str, write: Write<'_>) -> Result<Version> {
        let w = OwnedWrite::new(collection, id, write)?;
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let version =
                live_version(&tx, &w.collection, &w.id, now_ms() as i64)?.unwrap_or(0) + 1;
            w.store(&tx, version)?;
            tx.commit()?;
            Ok(version)
        })
        .await
    }

    async fn update(
        &self,
        collection: &str,
        id: &str,
        expected: Version,
        write: Write<'_>,
    ) -> Result<Option<Version>> {
        let w = OwnedWrite::new(collection, id, write)?;
        self.run(move |conn| {
            let tx = conn.transaction()?;
            if live_version(&tx, &w.collection, &w.id, now_ms() as i64)? != Some(expected) {
                return Ok(None);
            }
            w.store(&tx, expected + 1)?;
            tx.commit()?;
            Ok(Some(expected + 1))
        })
        .await
    }

    async fn get(&self, collection: &str, id: &str) -> Result<Option<Record>> {
        let (collection, id) = (collection.to_owned(), id.to_owned());
        self.point_read(move |conn| {
            conn.prepare_cached(
                "SELECT value, version, expires_at FROM records WHERE collection = ?1 AND id = ?2
                 AND (expires_at IS NULL OR expires_at > ?3)",
            )?
            .query_row(params![collection, id, now_ms() as i64], read_record)
            .optional()
        })
        .await
    }

    async fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        let (collection, id) = (collection.to_owned(), id.to_owned());
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let live = live_version(&tx, &collection, &id, now_ms() as i64)?.is_some();
            tx.execute(DELETE_INDEX_ROWS, params![collection, id])?;
            tx.execute(
                "DELETE FROM records WHERE collection = ?1 AND id = ?2",
                params![collection, id],
            )?;
            tx.commit()?;
            Ok(live)
        })
        .await
    }

    async fn count(&self, collection: &str, name: &str, value: &str) -> Result<u64> {
        let (collection, name, value) = (collection.to_owned(), name.to_owned(), value.to_owned());
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT COUNT(*) FROM record_index
                 WHERE collection = ?1 AND name = ?2 AND value = ?3
                 AND (expires_at IS NULL OR expires_at > ?4)",
            )?
            .query_row(params![collection, name, value, now_ms() as i64], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as u64)
        })
        .await
    }

    async fn find(
        &self,
        collection: &str,
        name: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<(String, Record)>> {
        let (collection, name, value) = (collection.to_owned(), name.to_owned(), value.to_owned());
        self.read(move |conn| {
            found(
                conn,
                "SELECT r.id, r.value, r.version, r.expires_at FROM record_index i
                 JOIN records r ON r.collection = i.collection AND r.id = i.id
                 WHERE i.collection = ?1 AND i.name = ?2 AND i.value = ?3
                 AND (r.expires_at IS NULL OR r.expires_at > ?4)",
                params![collection, name, value, now_ms() as i64],
                limit,
            )
        })
        .await
    }

    async fn find_ordered(
        &self,
        collection: &str,
        name: &str,
        value: &str,
        until: u64,
        limit: usize,
    ) -> Result<Vec<(String, Record)>> {
        let (collection, name, value) = (collection.to_owned(), name.to_owned(), value.to_owned());
        self.read(move |conn| {
            // The index rows carry their record's expiry: expired ones are
            // skipped before any record is read.
            found(
                conn,
                "SELECT r.id, r.value, r.version, r.expires_at
                 FROM record_index i INDEXED BY record_index_ordered
                 JOIN records r ON r.collection = i.collection AND r.id = i.id
                 WHERE i.collection = ?1 AND i.name = ?2 AND i.value = ?3
                 AND i.ord IS NOT NULL AND i.ord <= ?4
                 AND (i.expires_at IS NULL OR i.expires_at > ?5)
                 ORDER BY i.ord, i.id",
                params![
                    collection,
                    name,
                    value,
                    until.min(i64::MAX as u64) as i64,
                    now_ms() as i64,
                ],
                limit,
            )
        })
        .await
    }

    async fn append(
        &self,
        collection: &str,
        log: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<u64> {
        check_key("a log id", log)?;
        let (collection, log, value) = (collection.to_owned(), log.to_owned(), value.to_vec());
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let now = now_ms();
            let last_live = last_live(&tx, &collection, &log, now)?;
            let index = last_live + 1;
            tx.prepare_cached(INSERT_LOG_ENTRY)?.execute(params![
                collection,
                log,
                index,
                value,
                expiry(ttl, now).map(|t| t as i64)
            ])?;
            tx.commit()?;
            Ok(index as u64)
        })
        .await
    }

    async fn read_log(
        &self,
        collection: &str,
        log: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        let (collection, log) = (collection.to_owned(), log.to_owned());
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT idx, value FROM logs WHERE collection = ?1 AND log = ?2 AND idx >= ?3
                 AND (expires_at IS NULL OR expires_at > ?4) ORDER BY idx",
            )?;
            let rows = stmt.query_map(
                params![
                    collection,
                    log,
                    from.min(i64::MAX as u64) as i64,
                    now_ms() as i64,
                ],
                |row| {
                    Ok(LogEntry {
                        index: row.get::<_, i64>(0)? as u64,
                        value: row.get(1)?,
                    })
                },
            )?;
            rows.take(limit).collect()
        })
        .await
    }

    async fn write_log(
        &self,
        collection: &str,
        log: &str,
        entries: &[LogEntry],
        ttl: Option<Duration>,
    ) -> Result<()> {
        check_key("a log id", log)?;
        if entries.is_empty() {
            return Ok(());
        }
        let (collection, log, entries) = (collection.to_owned(), log.to_owned(), entries.to_vec());
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let now = now_ms();
            let last = last_live(&tx, &collection, &log, now)?;
            let new = match entries_after(&entries, last as u64) {
                Ok(new) => new,
                Err(e) => return Ok(Err(e)),
            };
            let expires_at = expiry(ttl, now).map(|t| t as i64);
            let mut insert = tx.prepare_cached(INSERT_LOG_ENTRY)?;
            for e in new {
                insert.execute(params![
                    collection,
                    log,
                    e.index as i64,
                    e.value,
                    expires_at
                ])?;
            }
            drop(insert);
            tx.commit()?;
            Ok(Ok(()))
        })
        .await?
    }

    async fn keep_log(&self, collection: &str, log: &str, ttl: Duration) -> Result<()> {
        let (collection, log) = (collection.to_owned(), log.to_owned());
        self.run(move |conn| {
            let now = now_ms();
            conn.prepare_cached(
                "UPDATE logs SET expires_at = MAX(expires_at, ?3) WHERE collection = ?1 AND log = ?2
                 AND expires_at > ?4",
            )?
            .execute(params![collection, log, expiry(Some(ttl), now).map(|t| t as i64), now as i64])?;
            Ok(())
        })
        .await
    }

    async fn delete_log(&self, collection: &str, log: &str) -> Result<bool> {
        let (collection, log) = (collection.to_owned(), log.to_owned());
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let live: bool = tx
                .prepare_cached(
                    "SELECT 1 FROM logs WHERE collection = ?1 AND log = ?2
                     AND (expires_at IS NULL OR expires_at > ?3) LIMIT 1",
                )?
                .exists(params![collection, log, now_ms() as i64])?;
            tx.prepare_cached("DELETE FROM logs WHERE collection = ?1 AND log = ?2")?
                .execute(params![collection, log])?;
            tx.commit()?;
            Ok(live)
        })
        .await
    }
}

/// The index of the log's last live entry (0 if it has none). Expired
/// entries past it (not purged yet) are removed: their indexes are given
/// back, as for a log that expired whole.
fn last_live(tx: &Transaction, collection: &str, log: &str, now: u64) -> rusqlite::Result<i64> {
    let (last, last_live): (Option<i64>, Option<i64>) = tx
        .prepare_cached(
            "SELECT MAX(idx), MAX(CASE WHEN expires_at IS NULL OR expires_at > ?3
             THEN idx END) FROM logs WHERE collection = ?1 AND log = ?2",
        )?
        .query_row(params![collection, log, now as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let last_live = last_live.unwrap_or(0);
    if last.unwrap_or(0) > last_live {
        tx.prepare_cached("DELETE FROM logs WHERE collection = ?1 AND log = ?2 AND idx > ?3")?
            .execute(params![collection, log, last_live])?;
    }
    Ok(last_live)
}

/// Runs a lookup whose rows are an id and its record, reading at most
/// `limit` rows. The limit is not bound into the query: SQLite 3.54 plans
/// with a bound `LIMIT`'s value, so a cached statement run with another
/// limit than the last is prepared again (10 µs instead of 1, measured),
/// and the rows are read one at a time anyway.
fn found(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    limit: usize,
) -> rusqlite::Result<Vec<(String, Record)>> {
    conn.prepare_cached(sql)?
        .query_map(params, |row| {
            Ok((row.get::<_, String>(0)?, read_record_at(row, 1)?))
        })?
        .take(limit)
        .collect()
}

fn read_record(row: &rusqlite::Row) -> rusqlite::Result<Record> {
    read_record_at(row, 0)
}

fn read_record_at(row: &rusqlite::Row, at: usize) -> rusqlite::Result<Record> {
    Ok(Record {
        value: row.get(at)?,
        version: row.get::<_, i64>(at + 1)? as Version,
        expires_at: row.get::<_, Option<i64>>(at + 2)?.map(|t| t as u64),
    })
}
