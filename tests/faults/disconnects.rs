//! A thousand sockets of ack-extension subscribers cut at random points of
//! the exchange (a proxy between them and the node cuts each connection
//! after a random number of bytes either way) while publishers keep every
//! room busy: each subscriber resumes its session on a new socket, and
//! gets every message of its room, once, with nothing to deduplicate.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clients::{Publisher, Subscriber, HOLD_MS};
use crate::common::Server;
use crate::proxy::CuttingProxy;

const CUTS: usize = 1000;
const ROOMS: usize = 4;
const SUBSCRIBERS: usize = 16;
const PUBLISHERS: usize = 2;
/// Publishing stops when the cuts are done, or at these bounds.
const MOST_MESSAGES_PER_PUBLISHER: usize = 20_000;
const MOST_TIME: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cut_sockets_lose_and_repeat_nothing() {
    let server = Server::start(&[("GMSHUB__COMETD__TIMEOUT", &HOLD_MS.to_string())]);
    let direct = format!("ws://{}", server.addr);
    let seed = rand::random::<u64>();
    eprintln!("proxy seed {seed}");
    let proxy = Arc::new(CuttingProxy::start(server.addr, CUTS, seed).await);

    // Sessions are opened directly; every connect after goes through the
    // proxy, on a new socket each time one is cut.
    let rooms_done: Vec<_> = (0..ROOMS).map(|_| watch::channel(None).0).collect();
    let mut listening = Vec::new();
    for i in 0..SUBSCRIBERS {
        let room = i % ROOMS;
        let mut s = Subscriber::open(&direct, &format!("/room/{room}"), true).await;
        s.drop_socket();
        let expected = rooms_done[room].subscribe();
        let url = proxy.url();
        listening.push(tokio::spawn(async move {
            let expected = s.run(&url, expected, Duration::from_secs(30)).await;
            (room, s, expected)
        }));
    }

    let started = Instant::now();
    let mut publishing = Vec::new();
    for p in 0..PUBLISHERS {
        let (direct, proxy) = (direct.clone(), proxy.clone());
        publishing.push(tokio::spawn(async move {
            let mut publisher = Publisher::open(&direct).await;
            let mut accepted = Vec::new();
            for i in 0..MOST_MESSAGES_PER_PUBLISHER {
                if proxy.cut() >= CUTS || started.elapsed() > MOST_TIME {
                    break;
                }
                let room = i % ROOMS;
                let id = format!("p{p}-{i}");
                assert!(publisher.publish(&format!("/room/{room}"), &id).await);
                accepted.push((room, id));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            accepted
        }));
    }
    let mut expected: Vec<HashSet<String>> = vec![HashSet::new(); ROOMS];
    for p in publishing {
        for (room, id) in p.await.unwrap() {
            expected[room].insert(id);
        }
    }
    let published: usize = expected.iter().map(HashSet::len).sum();
    eprintln!(
        "{} cuts, {published} messages in {:?}",
        proxy.cut(),
        started.elapsed()
    );
    assert!(
        proxy.cut() >= CUTS,
        "only {} cuts in {MOST_TIME:?}",
        proxy.cut()
    );
    for (room, expected) in expected.into_iter().enumerate() {
        rooms_done[room].send_replace(Some(Arc::new(expected)));
    }

    let mut resumed = 0;
    for l in listening {
        let (room, s, expected) = l.await.unwrap();
        let missing = s.missing(&expected);
        resumed += s.resumed;
        assert!(
            missing.is_empty(),
            "{} (room {room}) missed {} of {}: {:?}",
            s.client_id,
            missing.len(),
            expected.len(),
            &missing[..missing.len().min(20)]
        );
        assert!(
            s.repeats.is_empty(),
            "{}: repeated {:?}",
            s.client_id,
            s.repeats
        );
    }
    eprintln!("{resumed} sockets opened again");
    assert!(
        resumed >= CUTS / 2,
        "the cuts hit the subscribers: {resumed}"
    );
}
