//! `bayeux-load`: a load generator for Bayeux servers over WebSocket.
//!
//! Clients subscribe to rooms, publishers publish at a fixed rate, and every
//! delivery is timed from publish to receipt (one process, one clock). The
//! run reports delivered messages per second, latency percentiles, expected
//! versus received deliveries, errors, and the server's peak RSS and CPU
//! when its pid is given.
//!
//! Scenarios: `rooms` (the CometD benchmark shape: clients each in several
//! of many rooms) and `fanout` (every client in one room).

mod client;
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tokio::sync::{watch, Semaphore};

use client::Client;
use stats::{process_usage, Recorder, Report};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    Rooms,
    Fanout,
}

#[derive(Parser, Debug)]
#[command(about = "Bayeux load generator (WebSocket)")]
struct Args {
    /// WebSocket URL of the Bayeux endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8080/genesys/cometd")]
    url: String,
    #[arg(long, value_enum, default_value = "rooms")]
    scenario: Scenario,
    /// Subscribing clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Rooms (channels); `fanout` uses one.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Rooms each client joins (`rooms` scenario).
    #[arg(long, default_value_t = 10)]
    rooms_per_client: usize,
    /// Messages published per second, over all publishers.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Publishing clients (each its own session).
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Bytes of padding in each message's data.
    #[arg(long, default_value_t = 50)]
    size: usize,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds to wait for late deliveries after publishing stops.
    #[arg(long, default_value_t = 2)]
    drain: u64,
    /// Clients connecting at once while ramping up.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// The server's pid, to report its peak RSS and CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// Room membership, deterministic so runs are comparable: client `i` joins
/// `k` distinct rooms starting at a stride that spreads them evenly.
fn membership(clients: usize, rooms: usize, k: usize) -> Vec<Vec<usize>> {
    let k = k.min(rooms).max(1);
    (0..clients)
        .map(|i| {
            (0..k)
                .map(|j| (i * 7 + j * (rooms / k).max(1)) % rooms)
                .collect::<Vec<_>>()
        })
        .map(|mut v| {
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (rooms, per_client) = match args.scenario {
        Scenario::Rooms => (args.rooms.max(1), args.rooms_per_client),
        Scenario::Fanout => (1, 1),
    };
    let names: Vec<String> = (0..rooms).map(|r| format!("/load/room/{r}")).collect();
    let members = membership(args.clients, rooms, per_client);
    let mut room_size = vec![0u64; rooms];
    for m in &members {
        for r in m {
            room_size[*r] += 1;
        }
    }

    // Ramp up: connect and subscribe every client, a bounded number at once.
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    let mut receivers = Vec::with_capacity(args.clients);
    for m in members {
        let url = args.url.clone();
        let channels: Vec<String> = m.iter().map(|r| names[*r].clone()).collect();
        let gate = gate.clone();
        let stop = stop_rx.clone();
        let ready = ready_tx.clone();
        receivers.push(tokio::spawn(async move {
            let mut rec = Recorder::new();
            let permit = gate.acquire_owned().await.expect("semaphore");
            let opened = async {
                let mut c = Client::open(&url).await?;
                c.subscribe(&channels).await?;
                Ok::<_, client::ClientError>(c)
            }
            .await;
            drop(permit);
            match opened {
                Ok(c) => {
                    let _ = ready.send(Ok(()));
                    c.receive(&mut rec, stop).await;
                }
                Err(e) => {
                    rec.errors += 1;
                    let _ = ready.send(Err(e.to_string()));
                }
            }
            rec
        }));
    }
    drop(ready_tx);
    let mut ok = 0usize;
    let mut failed = 0usize;
    let mut last_print = Instant::now();
    while ok + failed < args.clients {
        match ready_rx.recv().await {
            Some(Ok(())) => ok += 1,
            Some(Err(e)) => {
                if failed == 0 {
                    eprintln!("client failed: {e}");
                }
                failed += 1;
            }
            None => break,
        }
        if last_print.elapsed() > Duration::from_secs(1) {
            eprintln!("ramp-up: {ok}/{} connected, {failed} failed", args.clients);
            last_print = Instant::now();
        }
    }
    eprintln!(
        "ramp-up done: {ok} connected, {failed} failed in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // Publish.
    let pad = "x".repeat(args.size);
    let publishers = args.publishers.max(1);
    let (pub_stop_tx, pub_stop_rx) = watch::channel(false);
    let mut pubs = Vec::new();
    for p in 0..publishers {
        // Publisher p takes rooms p, p+P, p+2P, ...: every room is covered.
        let targets: Vec<String> = names.iter().skip(p).step_by(publishers).cloned().collect();
        if targets.is_empty() {
            continue;
        }
        let rate = args.rate as f64 / publishers.min(rooms) as f64;
        let c = Client::open(&args.url).await?;
        let stop = pub_stop_rx.clone();
        let pad = pad.clone();
        let first_room = p;
        pubs.push(tokio::spawn(async move {
            let mut rec = Recorder::new();
            let sent = c.publish_loop(&targets, rate, &pad, &mut rec, stop).await;
            (first_room, sent, rec)
        }));
    }
    let run_start = Instant::now();
    let progress = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.tick().await;
        loop {
            tick.tick().await;
            eprintln!("running: {:.0}s", run_start.elapsed().as_secs_f64());
        }
    });
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    // Publishers stop first; receivers get `drain` seconds for stragglers.
    let publish_elapsed = run_start.elapsed().as_secs_f64();
    pub_stop_tx.send_replace(true);
    progress.abort();
    let mut published = 0u64;
    let mut expected = 0u64;
    let mut total = Recorder::new();
    for handle in pubs {
        let (first_room, sent, rec) = handle.await?;
        for (i, n) in sent.iter().enumerate() {
            published += n;
            expected += n * room_size[first_room + i * publishers];
        }
        total.errors += rec.errors;
    }
    tokio::time::sleep(Duration::from_secs(args.drain)).await;
    stop_tx.send_replace(true);
    for handle in receivers {
        total.merge(&handle.await?);
    }
    let (rss, cpu) = args.server_pid.map(process_usage).unwrap_or((None, None));
    let mut report = Report {
        scenario: format!("{:?}", args.scenario).to_lowercase(),
        transport: "websocket".into(),
        clients: args.clients,
        publish_rate: args.rate,
        seconds: publish_elapsed,
        published,
        expected,
        received: total.received,
        missed: expected as i64 - total.received as i64,
        errors: total.errors + failed as u64,
        delivered_per_sec: total.received as f64 / publish_elapsed,
        p50_ms: 0.0,
        p90_ms: 0.0,
        p99_ms: 0.0,
        p999_ms: 0.0,
        max_ms: 0.0,
        server_peak_rss_kb: rss,
        server_cpu_seconds: cpu,
    };
    report.latency(&total.latency_us);
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}
