//! `bayeux-load`: a load generator for Bayeux servers (gmshub, Faye, any
//! CometD server), over WebSocket or long-polling.
//!
//! Scenarios:
//! - `rooms`: the CometD benchmark shape (clients each in several of many
//!   rooms), publish rate stepped up (`--rates`) until latency or loss breaks;
//! - `fanout`: every client in one room;
//! - `idle`: as many idle sessions as asked for, reporting server memory per
//!   session and the time to connect them all;
//! - `churn`: handshake + connect + disconnect cycles per second.
//!
//! Every delivery is timed from its publish (stamped in its data) to its
//! receipt, counted against the deliveries expected from the room sizes, and
//! the report gives delivered messages per second, latency percentiles,
//! misses, errors, server RSS and CPU, and the generator's own CPU.

mod callback;
mod chat;
mod fleet;
mod lp;
mod stats;
mod target;
mod wire;
mod ws;

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use fleet::{Fleet, LocalFleet, RemoteFleet};
use stats::{cpu_percent, quantile_ms, usage, usage_of, Churn, Recorder, Report, Shared, Step};
use target::{Publisher, Target, Transport};

/// Publishes sent in one batch at most: gmshub's `[cometd] maxBatchPublishes`
/// default (a publisher that fell behind sends what is due in several).
const MAX_BATCH_PUBLISHES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Rooms,
    Fanout,
    Idle,
    Churn,
    /// Chat API v2 over CometD, answered by bots (gmshub only).
    Chat,
    /// Callback bookings, and many callbacks due at once (gmshub only).
    Callback,
}

#[derive(Parser, Debug, Clone)]
#[command(about = "Bayeux load generator (WebSocket and long-polling)")]
struct Args {
    /// The Bayeux endpoint, e.g. http://127.0.0.1:8080/genesys/cometd; several
    /// (comma-separated: the nodes of a cluster) share the clients and the
    /// publishers in turn.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080/genesys/cometd"
    )]
    url: Vec<String>,
    #[arg(long, value_enum, default_value = "websocket")]
    transport: Transport,
    #[arg(long, value_enum, default_value = "rooms")]
    scenario: Scenario,
    /// Subscribing (or idle) clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Rooms (channels); `fanout` uses one.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Rooms each client joins.
    #[arg(long, default_value_t = 10)]
    rooms_per_client: usize,
    /// Publishing sessions.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Bytes of padding in each message's data.
    #[arg(long, default_value_t = 50)]
    size: usize,
    /// Publish rates (messages per second, all publishers together), stepped in order.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    rates: Vec<u64>,
    /// Seconds each rate is held (and the length of `churn`).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds to wait for late deliveries after each step.
    #[arg(long, default_value_t = 3)]
    drain: u64,
    /// Stop stepping after a step whose p99 exceeds this or that lost messages.
    #[arg(long)]
    max_p99_ms: Option<f64>,
    /// Worker processes holding the subscribers (default: enough for the
    /// open-files limit, about 9 000 clients each).
    #[arg(long)]
    processes: Option<usize>,
    /// Clients opening at once (ramp-up), or concurrent cycles (`churn`).
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// The server's pid, to report its memory and CPU (comma-separated for
    /// the nodes of a cluster: their sum).
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// A name for the server, written into the report.
    #[arg(long, default_value = "server")]
    label: String,
    /// `chat`: chats to run in all.
    #[arg(long, default_value_t = 1000)]
    chats: usize,
    /// `chat`: messages each customer sends (each answered by a bot).
    #[arg(long, default_value_t = 5)]
    messages: usize,
    /// `chat`: bot accounts `bot0`..`botN-1` answering.
    #[arg(long, default_value_t = 10)]
    bots: usize,
    /// `chat`: the bots' password.
    #[arg(long, default_value = "bot")]
    bot_password: String,
    /// `chat`: the chat service; `callback`: the callback service.
    #[arg(long, default_value = "customer-support")]
    service: String,
    /// `chat`: customers spread over this many services, `SERVICE-0` to
    /// `SERVICE-(N-1)` (1: `SERVICE` alone), as a site spreads its agents
    /// over queues (the server's configuration says which bots serve which).
    #[arg(long, default_value_t = 1)]
    services: usize,
    /// `chat`: a customer's pause before each message, in ms: `MIN-MAX`
    /// (uniformly drawn), or 0 for none (as fast as the bot answers).
    #[arg(long, default_value = "0")]
    think_ms: String,
    /// `chat`: chats left waiting (Chat API v2 over REST, on
    /// `--waiting-service`, whose queue no bot serves) before the run.
    #[arg(long, default_value_t = 0)]
    waiting: usize,
    /// `chat`: the service the waiting chats are on.
    #[arg(long, default_value = "waiting")]
    waiting_service: String,
    /// `chat`: every chat starts at once, and the messages start when all
    /// have a bot: the server's CPU per chat event is measured over the
    /// messages alone.
    #[arg(long)]
    together: bool,
    /// `chat`: chats started per second at most (0: as fast as
    /// `--concurrency` allows).
    #[arg(long, default_value_t = 0.0)]
    start_rate: f64,
    /// `callback`: immediate callbacks booked in phase 1.
    #[arg(long, default_value_t = 5000)]
    bookings: usize,
    /// `callback`: callbacks due at the same instant in phase 2.
    #[arg(long, default_value_t = 5000)]
    due: usize,
    /// `https://` targets: the certificate authority to trust (PEM).
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// An `Origin` header on every request (a widget served by another site).
    #[arg(long)]
    origin: Option<String>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Internal: run as worker `INDEX` of `COUNT`, holding every COUNT-th client.
    #[arg(long, hide = true, num_args = 2, value_names = ["INDEX", "COUNT"])]
    worker: Option<Vec<usize>>,
}

/// Room membership, deterministic so runs compare: client `i` joins `k`
/// distinct rooms spread evenly over all of them.
fn membership(clients: usize, rooms: usize, k: usize) -> Vec<Vec<usize>> {
    let k = k.clamp(1, rooms.max(1));
    let stride = (rooms / k).max(1);
    (0..clients)
        .map(|i| {
            let mut v: Vec<usize> = (0..k).map(|j| (i * 7 + j * stride) % rooms).collect();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect()
}

fn room_name(r: usize) -> String {
    format!("/load/room/{r}")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    // A worker process runs on one thread: several workers already share the
    // cores with the server, and more threads only add context switches.
    let runtime = if args.worker.is_some() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let targets = args
        .url
        .iter()
        .map(|u| Target::parse(u, args.ca.as_deref(), args.origin.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let rooms = match args.scenario {
        Scenario::Fanout => 1,
        _ => args.rooms.max(1),
    };
    let members = match args.scenario {
        Scenario::Fanout => vec![vec![0]; args.clients],
        // An idle session is subscribed to one channel and waits.
        Scenario::Idle => membership(args.clients, rooms, 1),
        _ => membership(args.clients, rooms, args.rooms_per_client),
    };

    if let Some(w) = &args.worker {
        let (index, count) = (w[0], w[1].max(1));
        let mine = members
            .iter()
            .enumerate()
            .filter(|(i, _)| i % count == index)
            .map(|(_, m)| m.iter().map(|r| room_name(*r)).collect())
            .collect();
        let label = format!("worker {index}");
        let fleet =
            LocalFleet::start(&targets, args.transport, mine, args.concurrency, &label).await;
        fleet::serve_worker(fleet).await?;
        return Ok(());
    }

    let mut report = Report {
        label: args.label.clone(),
        scenario: format!("{:?}", args.scenario).to_lowercase(),
        transport: args.transport.name().into(),
        clients: args.clients,
        rooms,
        rooms_per_client: members.first().map_or(0, Vec::len),
        size: args.size,
        ..Report::default()
    };
    if args.scenario == Scenario::Chat {
        let chat_args = chat::ChatArgs {
            chats: args.chats,
            concurrency: args.concurrency,
            messages: args.messages,
            bots: args.bots,
            bot_password: args.bot_password.clone(),
            service: args.service.clone(),
            think_ms: chat::parse_range(&args.think_ms)?,
            waiting: args.waiting,
            waiting_service: args.waiting_service.clone(),
            together: args.together,
            start_rate: args.start_rate,
            services: args.services,
        };
        report.chat = Some(chat::run(&targets[0], &chat_args, &args.server_pid).await);
    } else if args.scenario == Scenario::Callback {
        let callback_args = callback::CallbackArgs {
            bookings: args.bookings,
            concurrency: args.concurrency,
            due: args.due,
            service: args.service.clone(),
        };
        report.callback = Some(callback::run(&targets[0], &callback_args, &args.server_pid).await);
    } else if args.scenario == Scenario::Churn {
        report.churn = Some(churn(&args, &targets).await);
    } else {
        run_fleet(&args, &targets, &members, rooms, &mut report).await?;
    }
    if let Some(u) = usage_of(&args.server_pid) {
        report.server_peak_rss_kb = u.peak_rss_kb;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

/// Connects the subscribers, then (for `rooms` and `fanout`) steps the
/// publish rate.
async fn run_fleet(
    args: &Args,
    targets: &[Target],
    members: &[Vec<usize>],
    rooms: usize,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let server = &args.server_pid;
    report.server_rss_kb_before = usage_of(server).and_then(|u| u.rss_kb);
    let processes = args.processes.unwrap_or(args.clients.div_ceil(9000)).max(1);
    let started = Instant::now();
    let mut fleet = if processes == 1 {
        let lists = members
            .iter()
            .map(|m| m.iter().map(|r| room_name(*r)).collect())
            .collect();
        Fleet::Local(
            LocalFleet::start(targets, args.transport, lists, args.concurrency, "ramp-up").await,
        )
    } else {
        let mut workers = Vec::new();
        let mut spawning = Vec::new();
        for index in 0..processes {
            let mut worker_args: Vec<String> = std::env::args().skip(1).collect();
            worker_args.extend(["--worker".into(), index.to_string(), processes.to_string()]);
            spawning.push(tokio::spawn(RemoteFleet::spawn(worker_args)));
        }
        for s in spawning {
            workers.push(s.await??);
        }
        Fleet::Remote(workers)
    };
    let ready = fleet.ready();
    report.connected = ready.connected;
    report.failed = ready.failed;
    report.ramp_up_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{}: {} connected, {} failed in {:.1} s",
        args.label, ready.connected, ready.failed, report.ramp_up_seconds
    );
    if !server.is_empty() {
        // Let the server settle (lazy allocations, freed handshake buffers).
        tokio::time::sleep(Duration::from_secs(1)).await;
        report.server_rss_kb_after_ramp = usage_of(server).and_then(|u| u.rss_kb);
        if let (Some(before), Some(after)) =
            (report.server_rss_kb_before, report.server_rss_kb_after_ramp)
        {
            if ready.connected > 0 {
                report.rss_kb_per_session =
                    Some(after.saturating_sub(before) as f64 / ready.connected as f64);
            }
        }
    }
    if args.scenario != Scenario::Idle {
        let mut room_size = vec![0u64; rooms];
        for m in members {
            for r in m {
                room_size[*r] += 1;
            }
        }
        step_rates(args, targets, &mut fleet, &room_size, report).await?;
    }
    fleet.stop().await;
    Ok(())
}

/// Publishes at each rate in turn and measures what arrives.
async fn step_rates(
    args: &Args,
    targets: &[Target],
    fleet: &mut Fleet,
    room_size: &[u64],
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let rooms = room_size.len();
    let count = args.publishers.clamp(1, rooms);
    let errors = Shared::default();
    let mut publishers = Vec::with_capacity(count);
    for p in 0..count {
        let target = &targets[p % targets.len()];
        publishers.push(Publisher::open(target, args.transport, errors.clone()).await?);
    }
    let pad = "x".repeat(args.size);
    let mut pids = vec![std::process::id()];
    pids.extend(fleet.pids());
    for &rate in &args.rates {
        fleet.take().await;
        errors.take();
        let server_before = usage_of(&args.server_pid);
        let gen_before: Vec<_> = pids.iter().map(|p| usage(*p)).collect();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
        // Publisher p takes rooms p, p+P, p+2P, ...: every room is covered.
        let runs: Vec<_> = publishers
            .drain(..)
            .enumerate()
            .map(|(p, publisher)| {
                let targets: Vec<String> = (p..rooms).step_by(count).map(room_name).collect();
                let pad = pad.clone();
                let share = rate as f64 / count as f64;
                tokio::spawn(publish(publisher, targets, share, pad, deadline))
            })
            .collect();
        let mut published = 0;
        let mut expected = 0;
        for (p, run) in runs.into_iter().enumerate() {
            let (publisher, sent) = run.await?;
            for (i, n) in sent.iter().enumerate() {
                published += n;
                expected += n * room_size[p + i * count];
            }
            publishers.push(publisher);
        }
        // CPU is read over the publishing time only, not the drain.
        let seconds = started.elapsed().as_secs_f64();
        let gen_after: Vec<_> = pids.iter().map(|p| usage(*p)).collect();
        let server_after = usage_of(&args.server_pid);
        tokio::time::sleep(Duration::from_secs(args.drain)).await;
        let got = fleet.take().await;
        let mut step = Step {
            rate,
            seconds,
            published,
            expected,
            received: got.received,
            missed: expected as i64 - got.received as i64,
            errors: got.errors + errors.lock().errors,
            delivered_per_sec: got.received as f64 / seconds,
            server_cpu_percent: match (server_before, server_after) {
                (Some(b), Some(a)) => cpu_percent(&[b], &[a], seconds),
                _ => None,
            },
            generator_cpu_percent: cpu_percent(&gen_before, &gen_after, seconds),
            ..Step::default()
        };
        step.latency(&got.latency_us);
        step.print();
        let broke = args
            .max_p99_ms
            .is_some_and(|max| step.p99_ms > max || step.missed != 0);
        report.steps.push(step);
        if broke {
            break;
        }
    }
    for p in publishers {
        p.close().await;
    }
    Ok(())
}

/// One publisher's share of a step: `rate` messages per second over
/// `targets` until `deadline`, all messages due in a millisecond sent as one
/// batch. Returns the publisher and the count sent to each target.
async fn publish(
    mut publisher: Publisher,
    targets: Vec<String>,
    rate: f64,
    pad: String,
    deadline: tokio::time::Instant,
) -> (Publisher, Vec<u64>) {
    let mut sent = vec![0u64; targets.len()];
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut total = 0u64;
    let mut next = 0usize;
    while tokio::time::Instant::now() < deadline {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        if due <= total {
            continue;
        }
        let mut channels = Vec::with_capacity((due - total) as usize);
        while total < due {
            channels.push(targets[next].as_str());
            sent[next] += 1;
            total += 1;
            next = (next + 1) % targets.len();
        }
        // gmshub takes at most 32 publishes per batch (`maxBatchPublishes`).
        for chunk in channels.chunks(MAX_BATCH_PUBLISHES) {
            let batch = wire::publishes(publisher.client_id(), chunk, &pad);
            if publisher.send(batch).await.is_err() {
                return (publisher, sent);
            }
        }
    }
    (publisher, sent)
}

/// Handshake + connect + disconnect cycles, `concurrency` at a time, for
/// `seconds`.
async fn churn(args: &Args, targets: &[Target]) -> Churn {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for i in 0..args.concurrency.max(1) {
        let target = targets[i % targets.len()].clone();
        let transport = args.transport;
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            while Instant::now() < deadline {
                let t = Instant::now();
                match target::Subscriber::open(&target, transport).await {
                    Ok(c) => c.close().await,
                    Err(_) => {
                        rec.errors += 1;
                        continue;
                    }
                }
                rec.received += 1;
                let _ = rec.latency_us.record(t.elapsed().as_micros() as u64);
            }
            rec
        }));
    }
    let mut all = Recorder::default();
    for t in tasks {
        if let Ok(rec) = t.await {
            all.merge(&rec);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let c = Churn {
        seconds,
        cycles: all.received,
        cycles_per_sec: all.received as f64 / seconds,
        errors: all.errors,
        p50_ms: quantile_ms(&all.latency_us, 0.5),
        p99_ms: quantile_ms(&all.latency_us, 0.99),
    };
    eprintln!(
        "{}: churn {:.0} cycles/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
        args.label, c.cycles_per_sec, c.p50_ms, c.p99_ms, c.errors
    );
    c
}
