//! Redis SIGKILLed and started again (same port, its append-only file kept)
//! while two nodes carry rooms traffic: publishers on both nodes, ack and
//! plain subscribers on both. The bus and the store come back by
//! themselves, and no subscriber misses or repeats a message: the outbox
//! holds what could not be published and what reached fewer nodes than
//! listen, and sends it again when they are back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clients::{Publisher, Subscriber, HOLD_MS};
use crate::common::redis::RedisServer;
use crate::common::{json_of, Server};

pub fn node(redis: &RedisServer, id: &str) -> Server {
    Server::start(&[
        ("GMSHUB__STORE__TYPE", "redis"),
        ("GMSHUB__REDIS__URL", &redis.url()),
        ("GMSHUB__CLUSTER__ENABLED", "true"),
        ("GMSHUB__SERVER__NODE_ID", id),
        ("GMSHUB__CLUSTER__HEARTBEAT_INTERVAL", "300"),
        ("GMSHUB__COMETD__TIMEOUT", &HOLD_MS.to_string()),
    ])
}

pub fn ws(server: &Server) -> String {
    format!("ws://{}", server.addr)
}

const ROOMS: usize = 4;
const PUBLISHERS_PER_NODE: usize = 2;
const MESSAGES_PER_PUBLISHER: usize = 160;
const PUBLISH_PAUSE: Duration = Duration::from_millis(25);

/// Waits until the node answers 200 on `/genesys/1/node` (its store read
/// again); how long that took.
async fn healthy(server: &Server, bound: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < bound {
        let answer = reqwest::get(server.url("/genesys/1/node")).await;
        if answer.is_ok_and(|a| a.status() == 200) {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node not healthy {bound:?} after Redis came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_load_loses_and_repeats_nothing() {
    let mut redis = RedisServer::start_durable();
    let nodes = [node(&redis, "fa"), node(&redis, "fb")];
    let urls: Vec<String> = nodes.iter().map(ws).collect();

    // On each node, per room: an ack subscriber; and a plain one in two rooms.
    let mut subscribers = Vec::new();
    for url in &urls {
        for room in 0..ROOMS {
            let channel = format!("/room/{room}");
            subscribers.push((
                room,
                url.clone(),
                Subscriber::open(url, &channel, true).await,
            ));
            if room < 2 {
                let plain = Subscriber::open(url, &channel, false).await;
                subscribers.push((room, url.clone(), plain));
            }
        }
    }
    // Each room's subscribers learn what to expect once publishing is over.
    let rooms_done: Vec<_> = (0..ROOMS).map(|_| watch::channel(None).0).collect();
    let mut listening = Vec::new();
    for (room, url, mut s) in subscribers {
        let expected = rooms_done[room].subscribe();
        listening.push(tokio::spawn(async move {
            let expected = s.run(&url, expected, Duration::from_secs(15)).await;
            (room, url, s, expected)
        }));
    }

    let mut publishing = Vec::new();
    for (n, url) in urls.iter().enumerate() {
        for p in 0..PUBLISHERS_PER_NODE {
            let url = url.clone();
            publishing.push(tokio::spawn(async move {
                let mut publisher = Publisher::open(&url).await;
                let mut accepted = Vec::new();
                for i in 0..MESSAGES_PER_PUBLISHER {
                    let room = i % ROOMS;
                    let id = format!("n{n}p{p}-{i}");
                    if publisher.publish(&format!("/room/{room}"), &id).await {
                        accepted.push((room, id));
                    }
                    tokio::time::sleep(PUBLISH_PAUSE).await;
                }
                accepted
            }));
        }
    }

    // The fault, a second and a half into the load: Redis dies, and is
    // back a second and a half later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.restart();
    let back = Instant::now();
    for node in &nodes {
        let took = healthy(node, Duration::from_secs(10)).await;
        eprintln!("node {} healthy {took:?} after Redis came back", node.addr);
    }
    assert!(
        back.elapsed() < Duration::from_secs(6),
        "{:?}",
        back.elapsed()
    );

    let mut expected: Vec<HashSet<String>> = vec![HashSet::new(); ROOMS];
    let mut accepted = 0;
    for p in publishing {
        for (room, id) in p.await.unwrap() {
            expected[room].insert(id);
            accepted += 1;
        }
    }
    // Publishing touches no store: the server accepted every message.
    assert_eq!(accepted, 2 * PUBLISHERS_PER_NODE * MESSAGES_PER_PUBLISHER);
    for (room, expected) in expected.into_iter().enumerate() {
        rooms_done[room].send_replace(Some(Arc::new(expected)));
    }
    let mut lost = Vec::new();
    for l in listening {
        let (room, url, s, expected) = l.await.unwrap();
        let missing = s.missing(&expected);
        eprintln!(
            "room {room} on {url}: {} of {}, {} repeated, {} missing",
            s.got.len(),
            expected.len(),
            s.repeats.len(),
            missing.len()
        );
        assert!(
            s.repeats.is_empty(),
            "{}: repeated {:?}",
            s.client_id,
            s.repeats
        );
        if !missing.is_empty() {
            lost.push((s.client_id.clone(), missing));
        }
    }
    assert!(lost.is_empty(), "lost: {lost:?}");

    // The fault did hit the bus, and the bus reports no loss.
    let logs: String = nodes.iter().map(Server::output).collect();
    assert!(
        logs.contains("publishing failed, holding messages")
            || logs.contains("subscription to Redis lost"),
        "{logs}"
    );
    for node in &nodes {
        let status = json_of(reqwest::Client::new().get(node.url("/genesys/1/node"))).await;
        assert_eq!(
            status["bus"],
            serde_json::json!({"dropped": 0, "missed": 0}),
            "{status}"
        );
    }
}
