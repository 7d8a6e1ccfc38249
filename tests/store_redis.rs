//! The store conformance suite against the Redis backend, each test on a
//! `redis-server` of its own.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use channels::store::conformance::Harness;
use channels::store::Store;
use common::redis::RedisServer;
use gmshub::store::redis::Redis;

struct RedisHarness {
    server: RedisServer,
}

#[async_trait]
impl Harness for RedisHarness {
    async fn open(&self) -> Arc<dyn Store> {
        Redis::open(&self.server.url(), "gmshub")
            .await
            .expect("connect to redis")
    }
}

async fn redis() -> Option<Box<dyn Harness>> {
    Some(Box::new(RedisHarness {
        server: RedisServer::start(),
    }))
}

channels::store_conformance!(redis);

#[tokio::test]
async fn an_unreachable_redis_fails_clearly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Redis::open(&format!("redis://127.0.0.1:{port}/"), "gmshub")
        .await
        .err()
        .expect("no server");
    assert!(err.to_string().contains("cannot connect"), "{err}");
}
