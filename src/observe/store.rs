//! The store as the metrics see it: every operation of whatever backend
//! counted and timed by backend and operation, failures counted apart. A
//! wrapper, so that no backend times itself and none can be forgotten.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use std::time::Duration;

use channels::store::{LogEntry, Record, Result, Store, Version, Write};

/// `inner`, with its operations measured.
pub struct Metered(pub Arc<dyn Store>);

impl Metered {
    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let backend = self.0.backend();
        let started = Instant::now();
        let result = call.await;
        let labels = [("backend", backend), ("operation", operation)];
        metrics::histogram!("gmshub_store_operation_duration_seconds", &labels)
            .record(started.elapsed());
        metrics::counter!("gmshub_store_operations_total", &labels).increment(1);
        if result.is_err() {
            metrics::counter!("gmshub_store_errors_total", &labels).increment(1);
        }
        result
    }
}

#[async_trait]
impl Store for Metered {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }

    fn shared(&self) -> bool {
        self.0.shared()
    }

    async fn create(
        &self,
        collection: &str,
        id: &str,
        write: Write<'_>,
    ) -> Result<Option<Version>> {
        self.timed("create", self.0.create(collection, id, write))
            .await
    }

    async fn put(&self, collection: &str, id: &str, write: Write<'_>) -> Result<Version> {
        self.timed("put", self.0.put(collection, id, write)).await
    }

    async fn update(
        &self,
        collection: &str,
        id: &str,
        expected: Version,
        write: Write<'_>,
    ) -> Result<Option<Version>> {
        self.timed("update", self.0.update(collection, id, expected, write))
            .await
    }

    async fn get(&self, collection: &str, id: &str) -> Result<Option<Record>> {
        self.timed("get", self.0.get(collection, id)).await
    }

    async fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        self.timed("delete", self.0.delete(collection, id)).await
    }

    async fn count(&self, collection: &str, name: &str, value: &str) -> Result<u64> {
        self.timed("count", self.0.count(collection, name, value))
            .await
    }

    async fn find(
        &self,
        collection: &str,
        name: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<(String, Record)>> {
        self.timed("find", self.0.find(collection, name, value, limit))
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
        let call = self.0.find_ordered(collection, name, value, until, limit);
        self.timed("find_ordered", call).await
    }

    async fn append(
        &self,
        collection: &str,
        log: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<u64> {
        self.timed("append", self.0.append(collection, log, value, ttl))
            .await
    }

    async fn read_log(
        &self,
        collection: &str,
        log: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        self.timed("read_log", self.0.read_log(collection, log, from, limit))
            .await
    }

    async fn write_log(
        &self,
        collection: &str,
        log: &str,
        entries: &[LogEntry],
        ttl: Option<Duration>,
    ) -> Result<()> {
        let call = self.0.write_log(collection, log, entries, ttl);
        self.timed("write_log", call).await
    }

    async fn keep_log(&self, collection: &str, log: &str, ttl: Duration) -> Result<()> {
        self.timed("keep_log", self.0.keep_log(collection, log, ttl))
            .await
    }

    async fn delete_log(&self, collection: &str, log: &str) -> Result<bool> {
        self.timed("delete_log", self.0.delete_log(collection, log))
            .await
    }
}
