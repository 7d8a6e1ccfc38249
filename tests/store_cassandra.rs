//! The store conformance suite against ScyllaDB/Cassandra. No CQL server can
//! run on the machines this project is built on, so these tests run where
//! one is provided: `GMSHUB_TEST_CQL=host:port cargo test --test
//! store_cassandra` (the keyspace `gmshub_test` is created, replication
//! factor 1). Without the variable each test says it was skipped.

use std::sync::Arc;

use async_trait::async_trait;
use channels::store::conformance::Harness;
use channels::store::Store;
use gmshub::store::cassandra::{apply_schema, Cassandra, CassandraConfig};

struct CassandraHarness {
    config: CassandraConfig,
}

#[async_trait]
impl Harness for CassandraHarness {
    async fn open(&self) -> Arc<dyn Store> {
        Cassandra::open(&self.config).await.expect("open cassandra")
    }
}

fn config() -> Option<CassandraConfig> {
    let node = std::env::var("GMSHUB_TEST_CQL")
        .ok()
        .filter(|v| !v.is_empty())?;
    Some(CassandraConfig {
        nodes: vec![node],
        keyspace: "gmshub_test".into(),
        strategy_class: "SimpleStrategy".into(),
        strategy_option: "replication_factor:1".into(),
        ..Default::default()
    })
}

async fn cassandra() -> Option<Box<dyn Harness>> {
    let config = config()?;
    apply_schema(&config).await.expect("apply the schema");
    Some(Box::new(CassandraHarness { config }))
}

channels::store_conformance!(cassandra);

#[tokio::test]
async fn a_missing_table_stops_the_start() {
    let Some(mut config) = config() else {
        eprintln!("SKIPPED: GMSHUB_TEST_CQL not set");
        return;
    };
    config.keyspace = "gmshub_test_empty".into();
    let err = Cassandra::open(&config)
        .await
        .err()
        .expect("no schema there");
    assert!(err.to_string().contains("gmshub schema cassandra"), "{err}");
}
