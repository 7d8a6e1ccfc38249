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
