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
    let login_reply: Value = http
        .post(format!("{base}/login"))
        .json(&json!({"agent": login, "password": password}))
        .send()
        .await
        .map_err(err)?
        .json()
        .await
        .map_err(err)?;
    let token = login_reply["token"]
        .as_str()
        .ok_or_else(|| ClientError::Protocol(format!("bot {login} cannot log in: {login_reply}")))?
        .to_owned();
    http.post(format!("{base}/ready"))
        .bearer_auth(&token)
        .json(&json!({"capacity": capacity}))
        .send()
        .await
        .map_err(err)?;
    let mut s = Session::open(&target).await?;
    s.subscribe("/service/agent").await?;
    s.publish(
        "/service/agent",
        json!({"operation": "attach", "token": token}),
    )
    .await?;
    let mut next: HashMap<String, u64> = HashMap::new();
    loop {
        // A tick every second looks for chats left waiting while the bot
        // was full (their offer ping came and went).
        let messages = match s
            .next(tokio::time::Instant::now() + Duration::from_secs(1))
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
                    let view: Value = http
                        .get(format!("{base}/chats/{id}?from={from}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .map_err(err)?
                        .json()
                        .await
                        .map_err(err)?;
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

/// One customer's chat: start it, wait for the bot, exchange messages, leave.
async fn customer(
    target: Target,
    service: String,
    messages: usize,
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
    for i in 0..messages {
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

    let server_before = crate::stats::usage_of(server_pids);
    let me = [std::process::id()];
    let gen_before: Vec<_> = me.iter().map(|p| crate::stats::usage(*p)).collect();
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(args.chats);
    for _ in 0..args.chats {
        let permit = gate.clone().acquire_owned().await.expect("semaphore");
        let (target, service, messages) = (target.clone(), args.service.clone(), args.messages);
        tasks.push(tokio::spawn(async move {
            let out = customer(target, service, messages).await;
            drop(permit);
            out
        }));
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
