//! A network partition: one node runs in its own network namespace, joined
//! to the host (Redis, the other node, the clients) by a veth pair that
//! the test cuts (`ip link set down`) and heals. While it is cut off, the
//! cluster drops it (membership) and its clients move to the other node;
//! nothing is delivered twice, the clients that stayed lose nothing, and
//! once healed the node rejoins: listed again, healthy, and carrying
//! broadcasts both ways. (This machine's kernel has no `sch_netem`, so
//! the fault is a cut, not delay or loss.)

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;

use crate::clients::{Publisher, Subscriber, HOLD_MS};
use crate::common::netns::TestNet;
use crate::common::redis::RedisServer;
use crate::common::{json_of, Server};

fn env<'a>(redis_url: &'a str, id: &'a str, hold: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("GMSHUB__STORE__TYPE", "redis"),
        ("GMSHUB__REDIS__URL", redis_url),
        ("GMSHUB__CLUSTER__ENABLED", "true"),
        ("GMSHUB__SERVER__NODE_ID", id),
        ("GMSHUB__CLUSTER__HEARTBEAT_INTERVAL", "300"),
        ("GMSHUB__COMETD__TIMEOUT", hold),
    ]
}

/// The node ids `server` lists as live (none when it cannot answer).
async fn live_nodes(server: &Server) -> Vec<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let Ok(answer) = client.get(server.url("/genesys/1/node")).send().await else {
        return Vec::new();
    };
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    let mut ids: Vec<String> = body["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

async fn until_listed(server: &Server, ids: &[&str], bound: Duration) -> Duration {
    let started = Instant::now();
    while live_nodes(server).await != ids {
        assert!(
            started.elapsed() < bound,
            "{} never listed {ids:?}",
            server.addr
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// What the publisher had accepted, with when it sent each: a message sent
/// after a subscription's reply came is one the subscription must get
/// (its answer may come later than that reply, under load).
type Accepted = Arc<Mutex<Vec<(usize, String, Instant)>>>;

fn accepted_since(accepted: &Accepted, room: usize, since: Instant) -> HashSet<String> {
    accepted
        .lock()
        .iter()
        .filter(|(r, _, sent)| *r == room && *sent > since)
        .map(|(_, id, _)| id.clone())
        .collect()
}

const ROOMS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_node_loses_its_clients_to_the_other_and_rejoins_cleanly() {
    let began = Instant::now();
    let net = TestNet::create();
    let redis = RedisServer::start_durable_on(&net.host_ip);
    let hold = HOLD_MS.to_string();
    let (near_url, far_url) = (redis.url(), redis.url_on(&net.host_ip));
    let outside = Server::start(&env(&near_url, "pa", &hold));
    let inside = Server::start_in_netns(&net.ns, &net.ns_ip, &env(&far_url, "pb", &hold));
    until_listed(&outside, &["pa", "pb"], Duration::from_secs(5)).await;
    let (a, b) = (
        format!("ws://{}", outside.addr),
        format!("ws://{}", inside.addr),
    );

    // Two subscribers per room on each node. Those on the outside node
    // stay; those inside move when their node stops answering.
    let mut stayed = Vec::new();
    let mut moved = Vec::new();
    for room in 0..ROOMS {
        let channel = format!("/room/{room}");
        for _ in 0..2 {
            let (tx, rx) = watch::channel(None);
            let mut s = Subscriber::open(&a, &channel, true).await;
            let url = a.clone();
            stayed.push((
                room,
                tx,
                tokio::spawn(async move {
                    let e = s.run(&url, rx, Duration::from_secs(15)).await;
                    (s, e)
                }),
            ));
            let (tx, rx) = watch::channel(None);
            let (moved_tx, moved_rx) = tokio::sync::oneshot::channel();
            let mut old = Subscriber::open(&b, &channel, true).await;
            let (a, b, channel) = (a.clone(), b.clone(), channel.clone());
            moved.push((
                room,
                tx,
                moved_rx,
                tokio::spawn(async move {
                    while old.poll(&b, Duration::from_millis(HOLD_MS + 3000)).await {}
                    let mut new = Subscriber::open(&a, &channel, true).await;
                    let _ = moved_tx.send(Instant::now());
                    let e = new.run(&a, rx, Duration::from_secs(15)).await;
                    (old, new, e)
                }),
            ));
        }
    }

    let accepted = Accepted::default();
    let publishing = Arc::new(AtomicBool::new(true));
    let publisher = {
        let (a, accepted, publishing) = (a.clone(), accepted.clone(), publishing.clone());
        tokio::spawn(async move {
            let mut publisher = Publisher::open(&a).await;
            let mut i = 0;
            while publishing.load(Ordering::Relaxed) {
                let room = i % ROOMS;
                let id = format!("m{i}");
                let sent = Instant::now();
                assert!(publisher.publish(&format!("/room/{room}"), &id).await);
                accepted.lock().push((room, id, sent));
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cut_at = Instant::now();
    net.cut();
    let dropped = until_listed(&outside, &["pa"], Duration::from_secs(5)).await;
    eprintln!("the cluster dropped the cut-off node after {dropped:?}");
    // Every client of the cut-off node notices and moves.
    let mut moves = Vec::new();
    for (room, tx, moved_rx, task) in moved {
        let bound = Duration::from_millis(HOLD_MS + 6000);
        let at = tokio::time::timeout(bound, moved_rx).await;
        let at = at.expect("a client moved in time").expect("moved");
        moves.push((room, tx, at, task));
    }
    net.heal();
    let healed_at = Instant::now();
    let rejoined = until_listed(&outside, &["pa", "pb"], Duration::from_secs(10)).await;
    let healthy = until_listed(&inside, &["pa", "pb"], Duration::from_secs(15)).await;
    eprintln!(
        "healed node listed again after {rejoined:?}, serving after {:?}",
        rejoined + healthy
    );

    // Broadcasts cross to the healed node again.
    let (tx, rx) = watch::channel(None);
    let mut fresh = Subscriber::open(&b, "/room/0", true).await;
    let fresh_since = Instant::now();
    let fresh_task = {
        let b = b.clone();
        tokio::spawn(async move {
            let e = fresh.run(&b, rx, Duration::from_secs(15)).await;
            (fresh, e)
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    publishing.store(false, Ordering::Relaxed);
    publisher.await.unwrap();
    assert!(healed_at.elapsed() < Duration::from_secs(20));

    eprintln!("publishing done {:?} after the cut", cut_at.elapsed());
    // Everyone learns what to expect at once, then the accounts.
    for (room, tx, _) in &stayed {
        tx.send_replace(Some(Arc::new(accepted_since(&accepted, *room, began))));
    }
    for (room, tx, moved_at, _) in &moves {
        tx.send_replace(Some(Arc::new(accepted_since(&accepted, *room, *moved_at))));
    }
    tx.send_replace(Some(Arc::new(accepted_since(&accepted, 0, fresh_since))));
    for (_, _, task) in stayed {
        let (s, expected) = task.await.unwrap();
        assert!(
            s.missing(&expected).is_empty(),
            "stayed: {:?}",
            s.missing(&expected)
        );
        assert!(s.repeats.is_empty(), "{:?}", s.repeats);
    }
    for (room, _, moved_at, task) in moves {
        let (old, new, after) = task.await.unwrap();
        assert!(
            new.missing(&after).is_empty(),
            "moved: {:?}",
            new.missing(&after)
        );
        let before: HashSet<String> = accepted
            .lock()
            .iter()
            .filter(|(r, _, sent)| *r == room && *sent + Duration::from_millis(500) < cut_at)
            .map(|(_, id, _)| id.clone())
            .collect();
        assert!(
            old.missing(&before).is_empty(),
            "before the cut: {:?}",
            old.missing(&before)
        );
        let twice: Vec<&String> = old.got.intersection(&new.got).collect();
        assert!(twice.is_empty(), "delivered to both sessions: {twice:?}");
        assert!(old.repeats.is_empty() && new.repeats.is_empty());
        eprintln!(
            "moved client of room {room}: {} before the cut, {} after moving {:?} after it",
            old.got.len(),
            new.got.len(),
            moved_at - cut_at
        );
    }
    eprintln!("accounts done {:?} after the cut", cut_at.elapsed());
    let (fresh, expected) = fresh_task.await.unwrap();
    assert!(!expected.is_empty());
    assert!(
        fresh.missing(&expected).is_empty(),
        "after healing: {:?}",
        fresh.missing(&expected)
    );
    assert!(fresh.repeats.is_empty());
    let status = json_of(reqwest::Client::new().get(outside.url("/genesys/1/node"))).await;
    assert_eq!(status["bus"]["missed"], 0, "{status}");
}
