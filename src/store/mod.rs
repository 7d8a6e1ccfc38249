//! The store backends, one per engine, behind `channels::store::Store`:
//! `sqlite` (embedded, the default), `redis` and `cassandra` (shared by
//! the nodes of a cluster). `[store] type` picks one.
//! May use: `channels::store` (the interface it implements).

pub mod cassandra;
pub mod redis;
pub mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;

use channels::store::{Store, StoreError};

/// Which backend, with its options (`[store]`, `[redis]`, `[cassandra]`).
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Sqlite { path: PathBuf },
    Redis { url: String, key_prefix: String },
    Cassandra(cassandra::CassandraConfig),
}

/// Opens the configured store, failing clearly when it cannot be used.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        StoreConfig::Sqlite { path } => Ok(sqlite::Sqlite::open(path)?),
        StoreConfig::Redis { url, key_prefix } => Ok(redis::Redis::open(url, key_prefix).await?),
        StoreConfig::Cassandra(config) => Ok(cassandra::Cassandra::open(config).await?),
    }
}
