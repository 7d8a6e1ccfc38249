//! A push endpoint that accepts connections and never answers, beside
//! healthy ones, all on one push worker: the healthy devices' notifications
//! arrive as fast as when there is no tarpit (each device waits only for
//! its own), and every one of them arrives.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::json;

use crate::common::{call, with_config, Server};

/// When each (device path, message) arrived.
pub type Arrivals = Arc<Mutex<HashMap<(String, String), Instant>>>;

/// Records when each notification (its `note-` id) reached each path.
pub async fn healthy_receiver() -> (Arrivals, String) {
    let arrivals = Arrivals::default();
    let app = axum::Router::new()
        .route(
            "/{*path}",
            post(
                |State(a): State<Arrivals>, Path(path): Path<String>, body: Bytes| async move {
                    let body = String::from_utf8_lossy(&body).into_owned();
                    if let Some(id) = body.split('"').find(|s| s.starts_with("note-")) {
                        a.lock().insert((path, id.to_owned()), Instant::now());
                    }
                    "ok"
                },
            ),
        )
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (arrivals, base)
}

/// Accepts every connection and keeps it, reading nothing, answering
/// nothing.
async fn tarpit() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    base
}

pub async fn subscribe(s: &Server, tag: &str, url: &str) {
    let body = json!({"subscriberId": "app", "filter": tag,
        "notificationDetails": {"deviceId": url, "type": "httpcb"}});
    let (status, v) = call(
        s,
        "POST",
        "/genesys/1/notification/subscription",
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

const HEALTHY: usize = 5;
const NOTES: usize = 20;

/// Publishes `NOTES` notifications on `tag`, 50 ms apart; the latency of
/// each arrival on the healthy devices, sorted.
async fn latencies(s: &Server, arrivals: &Arrivals, tag: &str) -> Vec<Duration> {
    let mut sent = Vec::new();
    for i in 0..NOTES {
        let id = format!("note-{tag}-{i}");
        let (status, v) = call(
            s,
            "POST",
            "/genesys/1/notification/publish",
            Some(json!({"tag": tag, "message": id})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        sent.push((id, Instant::now()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrivals
        .lock()
        .keys()
        .filter(|(_, id)| id.contains(tag))
        .count()
        < HEALTHY * NOTES
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrivals = arrivals.lock();
    let mut latencies = Vec::new();
    for device in 0..HEALTHY {
        for (id, at) in &sent {
            let key = (format!("{tag}/{device}"), id.clone());
            let arrived = arrivals
                .get(&key)
                .unwrap_or_else(|| panic!("{key:?} never arrived"));
            latencies.push(arrived.saturating_duration_since(*at));
        }
    }
    latencies.sort();
    latencies
}

fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99).div_ceil(100) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tarpit_endpoint_does_not_slow_healthy_devices() {
    let (arrivals, healthy) = healthy_receiver().await;
    let tarpit = tarpit().await;
    let dir = tempfile::tempdir().unwrap();
    // One worker: every device shares it, the worst case for a tarpit.
    let s = with_config(
        &dir,
        "[push]\npushEnabled = httpcb\nworkers = 1\nhttpcb.connection_timeout = 5\n\
         httpcb.allowed-urls = http://127.0.0.1:*\n",
        &[],
    );
    for device in 0..HEALTHY {
        subscribe(&s, "alone", &format!("{healthy}/alone/{device}")).await;
        subscribe(&s, "beside", &format!("{healthy}/beside/{device}")).await;
        subscribe(&s, "beside", &format!("{tarpit}/stuck/{device}")).await;
    }
    let alone = latencies(&s, &arrivals, "alone").await;
    let started = Instant::now();
    let beside = latencies(&s, &arrivals, "beside").await;
    eprintln!(
        "healthy devices, p99 {:?} alone, {:?} beside a tarpit (median {:?} / {:?})",
        p99(&alone),
        p99(&beside),
        alone[alone.len() / 2],
        beside[beside.len() / 2]
    );
    // A stall would show the tarpit's 5 s; noise on this machine is far
    // below a second.
    assert!(
        p99(&beside) < Duration::from_millis(750).max(p99(&alone) * 3),
        "{beside:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "all arrived before the tarpit's timeout"
    );
}
