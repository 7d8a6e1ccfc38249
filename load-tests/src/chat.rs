//! The `chat` scenario: customers over CometD (Chat API v2 on
//! `/service/chatV2/{service}`, WebSocket) start chats that bots answer
//! through gmshub's agent API (pings over CometD on `/service/agent`,
//! actions over REST). Every customer message is echoed by a bot; the
//! round trip (customer send → bot's reply back at the customer) is timed,
//! and so is starting a chat (requestChat → the bot has joined).
//!
//! gmshub only: Faye has no chat. Bots are accounts `[agent.botN]` of type
//! `bot` (load-tests/chat-bench.py writes them into the server's config).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::stats::quantile_ms;
use crate::target::{ClientError, Stream, Target};

const WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct ChatArgs {
    pub chats: usize,
    pub concurrency: usize,
    pub messages: usize,
    pub bots: usize,
    pub bot_password: String,
    pub service: String,
    /// A customer's pause before each message: (min, max) ms.
    pub think_ms: (u64, u64),
    pub waiting: usize,
    pub waiting_service: String,
    pub together: bool,
    /// Chats started per second at most (0: as fast as `concurrency` allows).
    pub start_rate: f64,
    /// Services the customers are spread over (1: `service` alone).
    pub services: usize,
}

impl ChatArgs {
    /// The service of the `n`th customer.
    fn service_of(&self, n: usize) -> String {
        match self.services {
            0 | 1 => self.service.clone(),
            many => format!("{}-{}", self.service, n % many),
        }
    }
}

/// `MIN-MAX` or one number (ms).
pub fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let bad = |_| format!("--think-ms {text:?}: MIN-MAX or one number, in ms");
    let (min, max) = match text.split_once('-') {
        Some((a, b)) => (
            a.trim().parse().map_err(bad)?,
            b.trim().parse().map_err(bad)?,
        ),
        None => {
            let n = text.trim().parse().map_err(bad)?;
            (n, n)
        }
    };
    if min > max {
        return Err(format!("--think-ms {text:?}: MIN above MAX"));
    }
    Ok((min, max))
}

/// A draw in `range` from `seed` (splitmix64: the generator needs no
/// better randomness than spreading customers' pauses).
fn draw(range: (u64, u64), seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    range.0 + z % (range.1 - range.0 + 1)
}

#[derive(Debug, Default, Serialize)]
pub struct ChatReport {
    pub chats: usize,
    pub concurrency: usize,
    pub messages_per_chat: usize,
    pub bots: usize,
    pub started: u64,
    pub failed: u64,
    pub seconds: f64,
    pub chats_per_sec: f64,
    pub start_p50_ms: f64,
    pub start_p99_ms: f64,
    pub replies: u64,
    pub missed: u64,
    pub messages_per_sec: f64,
    pub rtt_p50_ms: f64,
    pub rtt_p90_ms: f64,
    pub rtt_p99_ms: f64,
    pub rtt_p999_ms: f64,
    pub rtt_max_ms: f64,
    pub server_cpu_percent: Option<f64>,
    pub generator_cpu_percent: Option<f64>,
    pub think_ms: (u64, u64),
    /// Chats left waiting in a queue beside the run.
    pub waiting: usize,
    /// With `--together`: the message phase alone (every chat had its bot).
    pub message_seconds: Option<f64>,
    /// Chat events written in the message phase (a message and its reply).
    pub message_events: Option<u64>,
    /// The server's CPU time per chat event in the message phase.
    pub server_cpu_us_per_event: Option<f64>,
}

/// A Bayeux session on a WebSocket, keeping a `/meta/connect` outstanding.
pub(crate) struct Session {
    ws: WebSocketStream<Stream>,
    pub(crate) id: String,
    n: u64,
    /// Messages read with an earlier one that `until` returned: a frame
    /// can carry an answer and a push together, and neither may be lost.
    unread: std::collections::VecDeque<Value>,
}

impl Session {
    pub(crate) async fn open(target: &Target) -> Result<Session, ClientError> {
        let connection = target.connect().await?;
        let (ws, _) = tokio_tungstenite::client_async(target.ws_url(), connection).await?;
        let mut s = Session {
            ws,
            id: String::new(),
            n: 0,
            unread: Default::default(),
        };
        s.send(json!([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket"]}]))
            .await?;
        let hs = s.until(|m| m["channel"] == "/meta/handshake").await?;
        s.id = hs["clientId"]
            .as_str()
            .ok_or_else(|| ClientError::Protocol(format!("handshake refused: {hs}")))?
            .to_owned();
        let id = s.id.clone();
        s.send(json!([{"channel": "/meta/connect", "clientId": id, "connectionType": "websocket", "advice": {"timeout": 0}}]))
            .await?;
        // `next` answers that reply with the connect that stays held; one
        // more here would supersede it, and each answer would then call for
        // another: a connect storm.
        s.until(|m| m["channel"] == "/meta/connect").await?;
        Ok(s)
    }

    async fn send(&mut self, v: Value) -> Result<(), ClientError> {
        Ok(self.ws.send(Message::text(v.to_string())).await?)
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        let id = self.id.clone();
        self.send(
            json!([{"channel": "/meta/connect", "clientId": id, "connectionType": "websocket"}]),
        )
        .await
    }

    pub(crate) async fn subscribe(&mut self, channel: &str) -> Result<(), ClientError> {
        let id = self.id.clone();
        self.send(json!([{"channel": "/meta/subscribe", "clientId": id, "subscription": channel}]))
            .await?;
        let r = self.until(|m| m["channel"] == "/meta/subscribe").await?;
        if r["successful"] != true {
            return Err(ClientError::Protocol(format!("subscribe refused: {r}")));
        }
        Ok(())
    }

    async fn publish(&mut self, channel: &str, data: Value) -> Result<(), ClientError> {
        self.n += 1;
        let (id, n) = (self.id.clone(), self.n);
        self.send(json!([{"channel": channel, "clientId": id, "data": data, "id": n.to_string()}]))
            .await
    }

    /// The next messages the server sends, those an earlier `until` left
    /// unread first (a held connect's reply is answered with a new connect).
    pub(crate) async fn next(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<Value>, ClientError> {
        if !self.unread.is_empty() {
            return Ok(self.unread.drain(..).collect());
        }
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| ClientError::Timeout("a chat message"))?
                .ok_or_else(|| ClientError::Protocol("socket closed".into()))??;
            let Message::Text(text) = frame else { continue };
            let v: Value =
                serde_json::from_str(&text).map_err(|e| ClientError::Protocol(e.to_string()))?;
            let list = match v {
                Value::Array(a) => a,
                other => vec![other],
            };
            if list.iter().any(|m| m["channel"] == "/meta/connect") {
                self.connect().await?;
            }
            return Ok(list);
        }
    }

    async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Result<Value, ClientError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut list = self.next(deadline).await?.into_iter();
            while let Some(m) = list.next() {
                if pred(&m) {
                    self.unread.extend(list);
                    return Ok(m);
                }
            }
        }
    }
}

fn http_base(target: &Target) -> String {
    format!("http://{}", target.authority)
}

/// Takes waiting chats until none is left or the bot is full.
async fn take(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    next: &mut HashMap<String, u64>,
) -> Result<(), ClientError> {
    let err = |e: reqwest::Error| ClientError::Protocol(format!("agent API: {e}"));
    loop {
        let r = http
            .post(format!("{base}/chats/next"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(err)?;
        if r.status() != 200 {
            return Ok(());
        }
        let view: Value = r.json().await.map_err(err)?;
        if let Some(id) = view["chatId"].as_str() {
            next.insert(id.to_owned(), view["nextPosition"].as_u64().unwrap_or(1));
        }
    }
}

/// Logs an agent in and makes it ready for `capacity` chats; its token.
async fn ready(
    http: &reqwest::Client,
    base: &str,
    login: &str,
    password: &str,
    capacity: usize,
) -> Result<String, ClientError> {
    let err = |e: reqwest::Error| ClientError::Protocol(format!("agent API: {e}"));
    let reply: Value = http
        .post(format!("{base}/login"))
        .json(&json!({"agent": login, "password": password}))
        .send()
        .await
        .map_err(err)?
        .json()
        .await
        .map_err(err)?;
    let token = reply["token"]
        .as_str()
        .ok_or_else(|| ClientError::Protocol(format!("{login} cannot log in: {reply}")))?
        .to_owned();
    http.post(format!("{base}/ready"))
        .bearer_auth(&token)
        .json(&json!({"capacity": capacity}))
        .send()
        .await
        .map_err(err)?;
    Ok(token)
}

/// One bot: takes every chat it is offered and echoes each customer message.
async fn bot(
    target: Target,
    login: String,
    password: String,
    capacity: usize,
) -> Result<(), ClientError> {
    let http = reqwest::Client::new();
    let base = format!("{}/gmshub/agent", http_base(&target));
    let err = |e: reqwest::Error| ClientError::Protocol(format!("agent API: {e}"));
    let token = ready(&http, &base, &login, &password, capacity).await?;
    let mut s = Session::open(&target).await?;
    s.subscribe("/service/agent").await?;
    s.publish(
        "/service/agent",
        json!({"operation": "attach", "token": token}),
    )
    .await?;
    let mut next: HashMap<String, u64> = HashMap::new();
    loop {
        // A tick every few seconds looks for chats left waiting while the
        // bot was full (their offer ping came and went); with hundreds of
        // bots, a tick each second would be a load of its own.
        let messages = match s
            .next(tokio::time::Instant::now() + Duration::from_secs(5))
            .await
        {
            Ok(m) => m,
            Err(ClientError::Timeout(_)) => {
                take(&http, &base, &token, &mut next).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        for m in messages {
            let d = &m["data"];
            match d["event"].as_str() {
                Some("offers") => take(&http, &base, &token, &mut next).await?,
                Some("chat") => {
                    let Some(id) = d["chatId"].as_str() else {
                        continue;
                    };
                    let Some(from) = next.get(id).copied() else {
                        continue;
                    };
                    if d["state"] == "ended" {
                        next.remove(id);
                        take(&http, &base, &token, &mut next).await?;
                        continue;
                    }
                    // The ping carries its change's events; a gap (a ping
                    // missed) is read through the agent API.
                    let pushed = d["messages"].as_array().filter(|l| {
                        l.first()
                            .is_none_or(|e| e["index"].as_u64().unwrap_or(u64::MAX) <= from)
                    });
                    let view: Value = match pushed {
                        Some(_) => d.clone(),
                        None => http
                            .get(format!("{base}/chats/{id}?from={from}"))
                            .bearer_auth(&token)
                            .send()
                            .await
                            .map_err(err)?
                            .json()
                            .await
                            .map_err(err)?,
                    };
                    for e in view["messages"].as_array().into_iter().flatten() {
                        let index = e["index"].as_u64().unwrap_or(0);
                        if index < from {
                            continue;
                        }
                        next.insert(id.to_owned(), index + 1);
                        if e["type"] == "Message" && e["from"]["type"] == "Client" {
                            let text = format!("re:{}", e["text"].as_str().unwrap_or(""));
                            http.post(format!("{base}/chats/{id}/send"))
                                .bearer_auth(&token)
                                .json(&json!({"message": text}))
                                .send()
                                .await
                                .map_err(err)?;
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

struct Outcome {
    start_us: Option<u64>,
    rtts_us: Vec<u64>,
    missed: u64,
}

/// How a customer paces its messages.
#[derive(Clone)]
struct Pace {
    think_ms: (u64, u64),
    seed: u64,
    /// With `--together`: says the chat has its bot, then waits for all.
    gate: Option<(Arc<Gate>, tokio::sync::watch::Receiver<bool>)>,
}

/// Chats that have their bot (or failed before), for `--together`.
#[derive(Default)]
struct Gate {
    arrived: std::sync::atomic::AtomicUsize,
}

impl Session {
    /// Reads (and drops) what the server sends until `until`, answering
    /// held connects, so the session stays alive through a pause.
    async fn idle_until(&mut self, until: tokio::time::Instant) -> Result<(), ClientError> {
        self.unread.clear();
        loop {
            match self.next(until).await {
                Ok(_) => continue,
                Err(ClientError::Timeout(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// One customer's chat: start it, wait for the bot, exchange messages, leave.
async fn customer(
    target: Target,
    service: String,
    messages: usize,
    pace: Pace,
) -> Result<Outcome, ClientError> {
    let result = converse(target, service, messages, &pace).await;
    if result.is_err() {
        arrive(&pace);
    }
    result
}

fn arrive(pace: &Pace) {
    if let Some((gate, _)) = &pace.gate {
        gate.arrived
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn converse(
    target: Target,
    service: String,
    messages: usize,
    pace: &Pace,
) -> Result<Outcome, ClientError> {
    let channel = format!("/service/chatV2/{service}");
    let mut s = Session::open(&target).await?;
    s.subscribe(&channel).await?;
    let t0 = Instant::now();
    s.publish(
        &channel,
        json!({"operation": "requestChat", "nickname": "load"}),
    )
    .await?;
    let hello = s
        .until(|m| m["channel"] == channel.as_str() && m["data"]["chatId"].is_string())
        .await?;
    let key = hello["data"]["secureKey"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let joined = |m: &Value| {
        m["data"]["messages"].as_array().is_some_and(|l| {
            l.iter()
                .any(|e| e["type"] == "ParticipantJoined" && e["from"]["type"] != "Client")
        })
    };
    s.until(|m| m["channel"] == channel.as_str() && joined(m))
        .await?;
    let mut out = Outcome {
        start_us: Some(t0.elapsed().as_micros() as u64),
        rtts_us: Vec::with_capacity(messages),
        missed: 0,
    };
    if let Some((_, go)) = &pace.gate {
        arrive(pace);
        let mut go = go.clone();
        while !*go.borrow_and_update() {
            let wait = tokio::time::Instant::now() + Duration::from_millis(500);
            tokio::select! {
                changed = go.changed() => if changed.is_err() { break },
                idle = s.idle_until(wait) => idle?,
            }
        }
    }
    for i in 0..messages {
        if pace.think_ms.1 > 0 {
            let pause = draw(pace.think_ms, pace.seed.wrapping_mul(1_000_003) + i as u64);
            s.idle_until(tokio::time::Instant::now() + Duration::from_millis(pause))
                .await?;
        }
        let text = format!("m{i}");
        let want = format!("re:{text}");
        let sent = Instant::now();
        s.publish(
            &channel,
            json!({"operation": "sendMessage", "secureKey": key, "message": text}),
        )
        .await?;
        let replied = |m: &Value| {
            m["data"]["messages"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|e| e["type"] == "Message" && e["text"] == want.as_str())
            })
        };
        match s
            .until(|m| m["channel"] == channel.as_str() && replied(m))
            .await
        {
            Ok(_) => out.rtts_us.push(sent.elapsed().as_micros() as u64),
            Err(ClientError::Timeout(_)) => out.missed += 1,
            Err(e) => return Err(e),
        }
    }
    s.publish(
        &channel,
        json!({"operation": "disconnect", "secureKey": key}),
    )
    .await?;
    Ok(out)
}

pub async fn run(target: &Target, args: &ChatArgs, server_pids: &[u32]) -> ChatReport {
    let capacity = args.concurrency.div_ceil(args.bots.max(1)) + 1;
    for b in 0..args.bots.max(1) {
        let (target, password) = (target.clone(), args.bot_password.clone());
        tokio::spawn(async move {
            if let Err(e) = bot(target, format!("bot{b}"), password, capacity).await {
                eprintln!("bot{b}: {e}");
            }
        });
    }
    // Let the bots log in and attach before the first chat.
    tokio::time::sleep(Duration::from_secs(1)).await;
    if args.waiting > 0 {
        if let Err(e) = fill_queue(target, args).await {
            eprintln!("chat: filling the waiting queue: {e}");
        }
    }
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let gate = Arc::new(Gate::default());

    let server_before = crate::stats::usage_of(server_pids);
    let me = [std::process::id()];
    let gen_before: Vec<_> = me.iter().map(|p| crate::stats::usage(*p)).collect();
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(args.chats);
    let pacing = (args.start_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.start_rate));
    for n in 0..args.chats {
        if let Some(every) = pacing {
            tokio::time::sleep_until((started + every * n as u32).into()).await;
        }
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let (target, service, messages) = (target.clone(), args.service_of(n), args.messages);
        let pace = Pace {
            think_ms: args.think_ms,
            seed: n as u64,
            gate: args.together.then(|| (gate.clone(), go_rx.clone())),
        };
        tasks.push(tokio::spawn(async move {
            let out = customer(target, service, messages, pace).await;
            drop(permit);
            out
        }));
    }
    let mut phase = None;
    if args.together {
        // Every chat has its bot (or failed): the message phase starts.
        let deadline = Instant::now() + Duration::from_secs(600);
        while gate.arrived.load(std::sync::atomic::Ordering::Relaxed) < args.chats
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        phase = Some((Instant::now(), crate::stats::usage_of(server_pids)));
        let _ = go_tx.send(true);
    }
    let mut report = ChatReport {
        chats: args.chats,
        concurrency: args.concurrency,
        messages_per_chat: args.messages,
        bots: args.bots,
        ..Default::default()
    };
    let mut start = Histogram::<u64>::new(3).expect("histogram");
    let mut rtt = Histogram::<u64>::new(3).expect("histogram");
    let mut first_error = None;
    let mut done = 0;
    let mut last = Instant::now();
    for t in tasks {
        match t.await {
            Ok(Ok(out)) => {
                report.started += 1;
                if let Some(us) = out.start_us {
                    let _ = start.record(us);
                }
                for us in out.rtts_us {
                    let _ = rtt.record(us);
                    report.replies += 1;
                }
                report.missed += out.missed;
            }
            Ok(Err(e)) => {
                report.failed += 1;
                first_error.get_or_insert(e.to_string());
            }
            Err(e) => {
                report.failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
        done += 1;
        if last.elapsed() > Duration::from_secs(1) {
            eprintln!("chat: {done}/{} chats done", args.chats);
            last = Instant::now();
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    let server_after = crate::stats::usage_of(server_pids);
    report.think_ms = args.think_ms;
    report.waiting = args.waiting;
    if let Some((at, Some(before))) = phase {
        let seconds = at.elapsed().as_secs_f64();
        let events = report.replies * 2;
        report.message_seconds = Some(seconds);
        report.message_events = Some(events);
        if let (Some(b), Some(a)) = (
            before.cpu_seconds,
            server_after.as_ref().and_then(|u| u.cpu_seconds),
        ) {
            report.server_cpu_us_per_event = Some((a - b) * 1e6 / events.max(1) as f64);
        }
    }
    let gen_after: Vec<_> = me.iter().map(|p| crate::stats::usage(*p)).collect();
    if let (Some(b), Some(a)) = (server_before, server_after) {
        report.server_cpu_percent = crate::stats::cpu_percent(&[b], &[a], report.seconds);
    }
    report.generator_cpu_percent =
        crate::stats::cpu_percent(&gen_before, &gen_after, report.seconds);
    if let Some(e) = first_error {
        eprintln!("chat: first failure: {e}");
    }
    report.chats_per_sec = report.started as f64 / report.seconds;
    report.messages_per_sec = report.replies as f64 * 2.0 / report.seconds;
    report.start_p50_ms = quantile_ms(&start, 0.5);
    report.start_p99_ms = quantile_ms(&start, 0.99);
    report.rtt_p50_ms = quantile_ms(&rtt, 0.5);
    report.rtt_p90_ms = quantile_ms(&rtt, 0.9);
    report.rtt_p99_ms = quantile_ms(&rtt, 0.99);
    report.rtt_p999_ms = quantile_ms(&rtt, 0.999);
    report.rtt_max_ms = quantile_ms(&rtt, 1.0);
    if let Some(us) = report.server_cpu_us_per_event {
        eprintln!("chat: server CPU {us:.0} µs per chat event over the message phase");
    }
    eprintln!(
        "chat: {} chats in {:.1} s ({:.0}/s, start p50 {:.1} p99 {:.1} ms), {} replies, round trip p50 {:.2} p99 {:.2} max {:.1} ms, {} missed, {} failed",
        report.started,
        report.seconds,
        report.chats_per_sec,
        report.start_p50_ms,
        report.start_p99_ms,
        report.replies,
        report.rtt_p50_ms,
        report.rtt_p99_ms,
        report.rtt_max_ms,
        report.missed,
        report.failed
    );
    report
}

/// Leaves `--waiting` chats waiting on `--waiting-service` (over REST, so
/// they hold no connection), and a desk watching their queue: an agent
/// `watcher`, ready, reading its offers every second as a desk would.
async fn fill_queue(target: &Target, args: &ChatArgs) -> Result<(), ClientError> {
    let http = reqwest::Client::new();
    let err = |e: reqwest::Error| ClientError::Protocol(format!("chat API: {e}"));
    let url = format!(
        "{}/genesys/2/chat/{}",
        http_base(target),
        args.waiting_service
    );
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(32));
    let mut tasks = Vec::with_capacity(args.waiting);
    for _ in 0..args.waiting {
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let r = http.post(url).form(&[("nickname", "waiting")]).send().await;
            drop(permit);
            r.map_err(err)?.error_for_status().map_err(err).map(drop)
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| ClientError::Protocol(e.to_string()))??;
    }
    eprintln!(
        "chat: {} chats waiting on {} ({:.1} s)",
        args.waiting,
        args.waiting_service,
        started.elapsed().as_secs_f64()
    );
    let base = format!("{}/gmshub/agent", http_base(target));
    let token = ready(&http, &base, "watcher", &args.bot_password, 1).await?;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let offers = http
                .get(format!("{base}/offers"))
                .bearer_auth(&token)
                .send()
                .await;
            if offers.is_err() {
                return;
            }
        }
    });
    Ok(())
}
