//! The store conformance suite against the SQLite backend, in a fresh
//! temporary folder per test.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use channels::store::conformance::Harness;
use channels::store::Store;
use gmshub::store::sqlite::Sqlite;

struct SqliteHarness {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

#[async_trait]
impl Harness for SqliteHarness {
    async fn open(&self) -> Arc<dyn Store> {
        Sqlite::open(&self.path).expect("open sqlite")
    }
}

async fn sqlite() -> Option<Box<dyn Harness>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/store.db");
    Some(Box::new(SqliteHarness { _dir: dir, path }))
}

channels::store_conformance!(sqlite);

#[tokio::test]
async fn purge_removes_only_expired_rows() {
    use channels::store::Write;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&dir.path().join("p.db")).unwrap();
    store
        .put(
            "c",
            "gone",
            Write::new(b"x").ttl(Some(Duration::from_millis(1))),
        )
        .await
        .unwrap();
    store.put("c", "kept", Write::new(b"y")).await.unwrap();
    // Long enough for the three appends to see each other live.
    let short = Some(Duration::from_millis(300));
    for _ in 0..3 {
        store.append("c", "gone", b"e", short).await.unwrap();
    }
    store.append("c", "kept", b"e", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        store.purge().await.unwrap(),
        3,
        "the larger of records and entries"
    );
    assert!(store.get("c", "kept").await.unwrap().is_some());
    let rows = |log: &'static str| {
        let conn = rusqlite::Connection::open(dir.path().join("p.db")).unwrap();
        conn.query_row(
            "SELECT COUNT(*) FROM logs WHERE collection = 'c' AND log = ?1",
            [log],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
    };
    assert_eq!(
        (rows("gone"), rows("kept")),
        (0, 1),
        "expired log entries purged"
    );
}

#[tokio::test]
async fn a_file_from_before_the_entries_and_index_expiry_columns_opens_and_keeps_its_data() {
    use channels::store::{IndexEntry, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE records (collection TEXT NOT NULL, id TEXT NOT NULL, value BLOB NOT NULL,
               version INTEGER NOT NULL, expires_at INTEGER, PRIMARY KEY (collection, id)) WITHOUT ROWID;
             CREATE TABLE record_index (collection TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
               id TEXT NOT NULL, PRIMARY KEY (collection, name, value, id)) WITHOUT ROWID;
                          INSERT INTO records VALUES ('c', 'old', x'6869', 3, NULL);
             INSERT INTO record_index VALUES ('c', 'tag', 'a', 'old');
             INSERT INTO records VALUES ('c', 'gone', x'6869', 1, 1000);
             INSERT INTO record_index VALUES ('c', 'tag', 'a', 'gone');",
        )
        .unwrap();
    }
    let store = Sqlite::open(&path).unwrap();
    let r = store.get("c", "old").await.unwrap().unwrap();
    assert_eq!((r.value.as_slice(), r.version), (&b"hi"[..], 3));
    assert_eq!(store.find("c", "tag", "a", 10).await.unwrap().len(), 1);
    // Index rows got their record's expiry: the expired one is not counted.
    assert_eq!(store.count("c", "tag", "a").await.unwrap(), 1);
    let tags = [IndexEntry::new("tag", "b")];
    store
        .update("c", "old", 3, Write::new(b"x").indexes(&tags))
        .await
        .unwrap()
        .unwrap();
    assert!(store.find("c", "tag", "a", 10).await.unwrap().is_empty());
    assert_eq!(store.find("c", "tag", "b", 10).await.unwrap().len(), 1);
}

/// The statements keyed by a record's id search the id index: planned on
/// the primary key's prefix, each write scanned the whole collection.
#[test]
fn writes_find_index_rows_by_id() {
    use gmshub::store::sqlite::{DELETE_INDEX_ROWS, RETTL_INDEX_ROWS};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.db");
    drop(Sqlite::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in [DELETE_INDEX_ROWS, RETTL_INDEX_ROWS] {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = st.parameter_count();
        let args: [&dyn rusqlite::ToSql; 3] = [&"c", &"id", &1];
        let plan: Vec<String> = st
            .query_map(&args[..n], |r| r.get::<_, String>(3))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(
            plan.iter()
                .any(|p| p.contains("record_index_by_id (collection=? AND id=?)")),
            "{sql}: {plan:?}"
        );
    }
}

/// Reads cancelled while their query runs (a client that went away) never
/// leave the next read without a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_reads_keep_the_reader_pool_whole() {
    use channels::store::{IndexEntry, Write};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&dir.path().join("r.db")).unwrap();
    let entry = [IndexEntry::new("k", "v")];
    for i in 0..2000 {
        store
            .put("c", &format!("r{i}"), Write::new(&[7; 64]).indexes(&entry))
            .await
            .unwrap();
    }
    for round in 0..100u64 {
        // Eight finds at once, most cut off while their query runs.
        let cut = (0..8).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let wait = Duration::from_micros((round * 7 + i * 13) % 400);
                let _ = tokio::time::timeout(wait, store.find("c", "k", "v", 5000)).await;
            })
        });
        futures_util::future::join_all(cut).await;
        let found = store.find("c", "k", "v", 5).await;
        assert!(found.is_ok(), "round {round}: {found:?}");
    }
}

/// The minute purge goes in batches found through the expiry indexes: it
/// never scans every row in one write turn.
#[tokio::test]
async fn the_purge_works_in_batches_through_indexes() {
    use channels::store::{IndexEntry, Write};
    use gmshub::store::sqlite::{PURGE_BATCH, PURGE_FIND};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("purge.db");
    let store = Sqlite::open(&path).unwrap();
    let entry = [IndexEntry::new("k", "v")];
    let expired = PURGE_BATCH * 2 + 7;
    for i in 0..expired {
        let write = Write::new(b"x")
            .ttl(Some(Duration::from_millis(1)))
            .indexes(&entry);
        store.put("c", &format!("e{i}"), write).await.unwrap();
    }
    store
        .put("c", "kept", Write::new(b"y").indexes(&entry))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store.purge_batch().await.unwrap(),
        PURGE_BATCH,
        "one turn, one batch"
    );
    assert_eq!(store.purge().await.unwrap(), expired - PURGE_BATCH);
    let left = store.find("c", "k", "v", 10_000).await.unwrap();
    assert_eq!(left.len(), 1);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let index_rows: i64 = conn
        .query_row("SELECT count(*) FROM record_index", [], |r| r.get(0))
        .unwrap();
    assert_eq!(index_rows, 1, "expired index rows went with their records");
    let mut st = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {PURGE_FIND}"))
        .unwrap();
    let plan: Vec<String> = st
        .query_map(rusqlite::params![1, 10], |r| r.get::<_, String>(3))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        plan.iter().any(|p| p.contains("records_by_expiry")),
        "{plan:?}"
    );
}
