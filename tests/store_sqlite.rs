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
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.purge().await.unwrap(), 1);
    assert!(store.get("c", "kept").await.unwrap().is_some());
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
