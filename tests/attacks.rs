//! The attack suite: each attack runs from 127.0.0.1 against the real
//! binary with its shipped per-client limits, while a well-behaved widget —
//! the official CometD JavaScript client, from 127.0.0.2
//! (`tests/interop/honest.mjs`) — publishes and receives on its channel.
//! Each attack must meet its documented limit and error; the widget must
//! lose nothing, be refused nothing, never start over, and keep its
//! latency; the server's memory (VmRSS from `/proc`) must stay flat and its
//! log free of panics.
//!
//! Where an attack is about one limit, the limits that would stop it earlier
//! (the DoS filter's request rate, the handshake rate) are raised for that
//! server, so the limit under test is the one that holds. The attacks run
//! one at a time: they measure the widget's latency.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Browser, Frame, Server, Ws, SHIPPED_LIMITS};
use futures_util::{stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

/// One attack at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ATTACKER: [u8; 4] = [127, 0, 0, 1];
/// Another client, to check that the attacker locked no one else out.
const BYSTANDER: [u8; 4] = [127, 0, 0, 3];
/// What the widget's p99 may rise to under attack: this much over its p99
/// before the attack (the attacker and the server share two cores).
const LATENCY_SLACK_MS: u64 = 150;
/// What the server's resident memory may grow by during an attack.
const MEMORY_SLACK: u64 = 64 << 20;
/// The widget's channel: the one channel its clients may publish on.
const CHANNEL: &str = "/honest/widget";

fn env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        SHIPPED_LIMITS,
        ("GMSHUB__COMETD__PUBLISHCHANNELS", "/honest/**"),
    ];
    env.extend_from_slice(extra);
    env
}

/// The DoS filter's request rate out of the way of the limit under test.
const NO_RATE: (&str, &str) = ("GMSHUB__DOS_FILTER__MAXREQUESTSPERSEC", "1000000");

/// One window of the widget's report (see honest.mjs).
#[derive(Debug, Deserialize)]
struct Report {
    sent: u64,
    refused: u64,
    delivered: u64,
    p99: u64,
    max: u64,
    handshakes: u64,
    #[serde(default)]
    missing: u64,
    #[serde(default)]
    repeated: u64,
}

/// The widget: a Node process running the official CometD client.
struct Honest {
    child: Child,
    input: ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Honest {
    fn start(server: &Server) -> Honest {
        let interop = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
        assert!(
            std::path::Path::new(interop)
                .join("node_modules/cometd")
                .exists(),
            "the CometD client is not installed: npm ci --prefix tests/interop (scripts/test does)"
        );
        let mut child = Command::new("node")
            .arg(format!("{interop}/honest.mjs"))
            .arg(server.url("/genesys/cometd"))
            .arg(CHANNEL)
            .env("PERIOD_MS", "100")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node");
        let input = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut honest = Honest {
            child,
            input,
            lines,
        };
        assert_eq!(honest.line(Duration::from_secs(20)), "ready");
        honest
    }

    fn line(&mut self, wait: Duration) -> String {
        self.lines
            .recv_timeout(wait)
            .expect("the widget did not answer")
    }

    fn ask(&mut self, what: &str, wait: Duration) -> Report {
        writeln!(self.input, "{what}").expect("the widget's input");
        let line = self.line(wait);
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    fn report(&mut self) -> Report {
        self.ask("report", Duration::from_secs(10))
    }

    fn stop(mut self) -> Report {
        self.ask("stop", Duration::from_secs(20))
    }
}

impl Drop for Honest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's resident memory in bytes (VmRSS), if it still runs.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb << 10)
}

/// Runs `attack` while the widget works, and checks what the widget, the
/// server's memory and its log went through.
async fn under_attack<T>(
    name: &str,
    server: &Server,
    attack: impl std::future::Future<Output = T>,
) -> T {
    let mut honest = Honest::start(server);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = honest.report();
    let rss_before = rss(server.pid()).expect("the server runs");
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampling = {
        let (peak, pid) = (peak.clone(), server.pid());
        tokio::spawn(async move {
            loop {
                if let Some(bytes) = rss(pid) {
                    peak.fetch_max(bytes, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let started = Instant::now();
    let outcome = attack.await;
    let took = started.elapsed();
    sampling.abort();
    let during = honest.report();
    let end = honest.stop();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "{name}: {took:?}; widget p99 {} ms before, {} ms (max {}) during, {} publishes; \
         memory {} MiB before, peak {} MiB",
        before.p99,
        during.p99,
        during.max,
        before.sent + during.sent,
        rss_before >> 20,
        peak >> 20
    );
    assert!(
        during.sent > 0 && during.delivered > 0,
        "{name}: {during:?}"
    );
    assert_eq!(before.refused + during.refused + end.refused, 0, "{name}");
    assert_eq!((end.missing, end.repeated), (0, 0), "{name}: {end:?}");
    assert_eq!(end.handshakes, 1, "{name}: the widget started over");
    assert!(
        during.p99 <= before.p99 + LATENCY_SLACK_MS,
        "{name}: p99 {} ms under attack, {} ms before",
        during.p99,
        before.p99
    );
    assert!(
        peak <= rss_before + MEMORY_SLACK,
        "{name}: memory {} MiB before, peak {} MiB",
        rss_before >> 20,
        peak >> 20
    );
    let log = server.output();
    assert!(!log.contains("panicked"), "{name}: a panic in the log");
    outcome
}

/// A long-polling handshake (with a browser of its own when `http` keeps no
/// cookies); the reply's `error`, or "" when it succeeded. HTTP refusals
/// read as `HTTP n`.
async fn handshake(http: &reqwest::Client, server: &Server) -> String {
    let r = http
        .post(server.url("/genesys/cometd"))
        .json(&json!([{"channel": "/meta/handshake", "version": "1.0",
                       "supportedConnectionTypes": ["long-polling"]}]))
        .send()
        .await
        .expect("a handshake answer");
    if r.status() != 200 {
        return format!("HTTP {}", r.status().as_u16());
    }
    let v: Value = r.json().await.expect("JSON");
    match v[0]["successful"] == true {
        true => String::new(),
        false => v[0]["error"].as_str().unwrap_or("?").to_owned(),
    }
}

/// A client from `ip` that keeps no cookies (each request a new browser).
fn cookieless(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(ip.into()))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `count` handshakes from the attacker, `at_once` at a time: how many got
/// each answer.
async fn handshake_flood(
    server: &Server,
    count: usize,
    at_once: usize,
) -> std::collections::BTreeMap<String, usize> {
    let http = cookieless(ATTACKER);
    let answers = stream::iter(0..count)
        .map(|_| handshake(&http, server))
        .buffer_unordered(at_once)
        .collect::<Vec<_>>()
        .await;
    tally(answers)
}

/// Counts each distinct answer.
fn tally(answers: Vec<String>) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for a in answers {
        *counts.entry(a).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_flood_stops_at_the_sessions_per_address() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = Server::start(&env(&[
        NO_RATE,
        ("GMSHUB__COMETD__MAXHANDSHAKESPERSECOND", "1000000"),
    ]));
    let counts = under_attack("session flood", &server, handshake_flood(&server, 1500, 32)).await;
    eprintln!("session flood: {counts:?}");
    assert_eq!(
        counts.get(""),
        Some(&500),
        "maxSessionsPerAddress: {counts:?}"
    );
    assert_eq!(
        counts.get("403:too_many_sessions:handshake_denied"),
        Some(&1000),
        "{counts:?}"
    );
    // Another address is not locked out.
    assert_eq!(handshake(&cookieless(BYSTANDER), &server).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_flood_is_paced_as_shipped() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = Server::start(&env(&[]));
    let started = Instant::now();
    let counts = under_attack(
        "handshake flood",
        &server,
        handshake_flood(&server, 2000, 64),
    )
    .await;
    let seconds = started.elapsed().as_secs() + 1;
    eprintln!("handshake flood: {counts:?} in {seconds} s");
    // A burst of five seconds' worth, then maxHandshakesPerSecond (20).
    let admitted = counts.get("").copied().unwrap_or_default() as u64;
    assert!(admitted <= 100 + 20 * seconds, "{counts:?}");
    for refusal in counts.keys().filter(|k| !k.is_empty()) {
        assert!(
            ["403:too_many_handshakes:handshake_denied", "HTTP 429"].contains(&refusal.as_str()),
            "an undocumented refusal: {counts:?}"
        );
    }
    assert_eq!(handshake(&cookieless(BYSTANDER), &server).await, "");
}

/// A malformed request, and the shape its error must have.
struct Malformed {
    method: reqwest::Method,
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    shape: Shape,
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// The classic GMS APIs: `{"message", "exception"}`.
    Classic,
    /// Chat API v2: `{"statusCode": 1 or 2, "errors": [...]}`.
    ChatV2,
    /// gmshub's agent API: `{"error": ...}`.
    Agent,
    /// Bayeux: a reply array with `successful: false`, or a 400 in the
    /// classic shape for what is not a Bayeux message at all.
    Bayeux,
}

fn malformed() -> Vec<Malformed> {
    use reqwest::Method;
    let m = |method: Method, path, content_type, body: &'static [u8], shape| Malformed {
        method,
        path,
        content_type,
        body,
        shape,
    };
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    vec![
        m(
            Method::POST,
            "/genesys/cometd",
            json,
            b"{not json",
            Shape::Bayeux,
        ),
        m(
            Method::POST,
            "/genesys/cometd",
            json,
            b"[{\"channel\": 5}]",
            Shape::Bayeux,
        ),
        m(
            Method::POST,
            "/genesys/cometd",
            json,
            b"[{\"channel\":\"/meta/\xff\"}]",
            Shape::Bayeux,
        ),
        m(
            Method::POST,
            "/genesys/cometd",
            json,
            b"[{\"channel\":\"/meta/connect\",\"clientId\":\"nope\"}]",
            Shape::Bayeux,
        ),
        m(
            Method::POST,
            "/genesys/2/chat/customer-support",
            form,
            b"nickname=%FF",
            Shape::ChatV2,
        ),
        m(
            Method::POST,
            "/genesys/2/chat/customer-support",
            "text/plain",
            b"nickname=x",
            Shape::ChatV2,
        ),
        m(
            Method::POST,
            "/genesys/2/chat/customer-support/nochat/send",
            form,
            b"message=x&alias=1&secureKey=k&userId=u",
            Shape::ChatV2,
        ),
        m(
            Method::GET,
            "/genesys/2/chat/customer-support/x/y/z",
            form,
            b"",
            Shape::ChatV2,
        ),
        m(
            Method::POST,
            "/genesys/1/service/request-chat",
            form,
            b"x=%FF%FE",
            Shape::Classic,
        ),
        m(
            Method::POST,
            "/genesys/1/service/nosuch/ixn/chat/send",
            form,
            b"msg=x",
            Shape::Classic,
        ),
        m(
            Method::POST,
            "/genesys/1/storage/abc",
            form,
            b"name=%FF",
            Shape::Classic,
        ),
        m(
            Method::POST,
            "/genesys/1/storage/60",
            "application/xml",
            b"<a/>",
            Shape::Classic,
        ),
        m(
            Method::GET,
            "/genesys/1/storage/nosuch",
            form,
            b"",
            Shape::Classic,
        ),
        m(
            Method::POST,
            "/genesys/1/notification/subscription",
            json,
            b"{\"expire\": \"x\"",
            Shape::Classic,
        ),
        m(
            Method::POST,
            "/genesys/1/notification/subscription",
            json,
            b"{\"filter\": 5}",
            Shape::Classic,
        ),
        m(
            Method::DELETE,
            "/genesys/1/notification/subscription/nosuch",
            json,
            b"",
            Shape::Classic,
        ),
        m(
            Method::POST,
            "/genesys/1/service/callback/nosuch",
            form,
            b"_customer_number=1",
            Shape::Classic,
        ),
        m(
            Method::GET,
            "/genesys/1/service/callback?_customer_number=%FF",
            form,
            b"",
            Shape::Classic,
        ),
        m(
            Method::POST,
            "/gmshub/agent/login",
            json,
            b"{\"username\": [",
            Shape::Agent,
        ),
        m(Method::GET, "/gmshub/agent/offers", json, b"", Shape::Agent),
        m(Method::DELETE, "/genesys/1/node", json, b"", Shape::Classic),
        m(
            Method::GET,
            "/genesys/1/nothing/here",
            json,
            b"",
            Shape::Classic,
        ),
    ]
}

/// Whether `body` is an error in `shape`.
fn in_shape(shape: Shape, body: &Value) -> bool {
    let classic = |v: &Value| v["message"].is_string() && v["exception"].is_string();
    match shape {
        Shape::Classic => classic(body),
        Shape::Agent => body["error"].is_string(),
        Shape::ChatV2 => {
            matches!(body["statusCode"].as_u64(), Some(1 | 2)) && body["errors"].is_array()
        }
        Shape::Bayeux => {
            classic(body)
                || body.as_array().is_some_and(|replies| {
                    !replies.is_empty() && replies.iter().all(|r| r["successful"] == false)
                })
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_malformed_requests_get_errors_in_their_apis_shape() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = Server::start(&env(&[NO_RATE]));
    let variants = Arc::new(malformed());
    let wrong = under_attack("malformed requests", &server, async {
        let http = cookieless(ATTACKER);
        let answers = stream::iter(0..10_000)
            .map(|i| {
                let (http, variants, server) = (&http, variants.clone(), &server);
                async move {
                    let v = &variants[i % variants.len()];
                    let r = http
                        .request(v.method.clone(), server.url(v.path))
                        .header("content-type", v.content_type)
                        .body(v.body)
                        .send()
                        .await
                        .expect("an answer");
                    let status = r.status();
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    let fine = status.is_client_error() && in_shape(v.shape, &body)
                        || status == 200
                            && matches!(v.shape, Shape::Bayeux | Shape::ChatV2)
                            && in_shape(v.shape, &body);
                    (!fine).then(|| format!("{} {} -> {status} {body}", v.method, v.path))
                }
            })
            .buffer_unordered(16)
            .filter_map(|wrong| async move { wrong })
            .collect::<Vec<_>>()
            .await;
        tally(answers)
    })
    .await;
    assert!(wrong.is_empty(), "answers out of shape: {wrong:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_chat_batches_create_at_most_the_chats_per_minute() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Room for a thousand requests in one message.
    let server = Server::start(&env(&[("GMSHUB__COMETD__MAXMESSAGESIZE", "1048576")]));
    let (started, refused) = under_attack("1000-chat batches", &server, async {
        let mut ws = Ws::connect(&server, None).await;
        let id = ws.handshake(json!(null)).await;
        let mut chats = std::collections::HashSet::new();
        let (mut refused, mut denied) = (0usize, 0usize);
        for batch in 0..5 {
            let requests: Vec<Value> = (0..1000)
                .map(|i| {
                    json!({"channel": "/service/chatV2/customer-support", "clientId": id,
                           "data": {"operation": "requestChat", "nickname": format!("b{batch}n{i}")}})
                })
                .collect();
            ws.send(Value::Array(requests)).await;
            // Every request of the batch is answered: refused at once past
            // maxBatchPublishes, or with the chat's answer (a new chat, or
            // error 106 past the chats per minute).
            let answered = |refused, denied, chats: &std::collections::HashSet<String>| {
                refused + denied + chats.len()
            };
            let goal = 1000 * (batch + 1);
            while answered(refused, denied, &chats) < goal {
                let Frame::Messages(messages) = ws.next(Duration::from_secs(30)).await else {
                    panic!("batch {batch}: {} answers", answered(refused, denied, &chats));
                };
                for m in messages {
                    if m["error"] == "403::too_many_publishes" {
                        refused += 1;
                    } else if m["data"]["statusCode"] == 0 {
                        if let Some(chat) = m["data"]["chatId"].as_str() {
                            chats.insert(chat.to_owned());
                        }
                    } else if m["data"]["errors"][0]["code"] == 106 {
                        denied += 1;
                    }
                }
            }
        }
        let started = chats.len();
        (started, refused)
    })
    .await;
    eprintln!("1000-chat batches: {started} chats started, {refused} refused by the batch bound");
    assert_eq!(refused, 5 * (1000 - 32), "maxBatchPublishes is 32");
    assert_eq!(started, 30, "[chat] max-chats-per-minute-per-address is 30");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_to_a_tag_of_many_dead_subscriptions_is_shared_and_logged_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = Server::start(&env(&[NO_RATE, ("RUST_LOG", "info")]));
    const SUBSCRIPTIONS: usize = 3000;
    const PUBLISHES: usize = 20;
    // What the server says from here on.
    let start_of_attack = server.output().len();
    let outcome = under_attack("fan-out amplification", &server, async {
        let http = cookieless(ATTACKER);
        let made = stream::iter(0..SUBSCRIPTIONS)
            .map(|i| {
                let http = &http;
                let url = server.url("/genesys/1/notification/subscription");
                async move {
                    let r = http
                        .post(url)
                        .json(&json!({"subscriberId": "attacker", "filter": "promo",
                            "notificationDetails": {"deviceId": format!("dead-{i}"), "type": "comet"}}))
                        .send()
                        .await
                        .unwrap();
                    r.status() == 200
                }
            })
            .buffer_unordered(16)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        // The back office (loopback is its network) publishes large
        // messages to the tag: each is held once, not per subscription.
        let message = "x".repeat(8 << 10);
        for _ in 0..PUBLISHES {
            let r = http
                .post(server.url("/genesys/1/notification/publish"))
                .json(&json!({"tag": "promo", "message": message}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        // Let the deliveries settle.
        tokio::time::sleep(Duration::from_secs(2)).await;
        made
    })
    .await;
    assert_eq!(outcome, SUBSCRIPTIONS);
    let log = server.output().split_off(start_of_attack);
    let settled = log.matches("publish settled with failures").count();
    let others: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && !l.contains("publish settled with failures"))
        .collect();
    eprintln!("fan-out: {settled} settled lines, other warnings: {others:#?}");
    assert_eq!(settled, PUBLISHES, "one line per publish");
    assert!(others.is_empty(), "nothing else to say");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_slowloris_sockets_are_closed_and_delay_no_one() {
    let _one = ONE_AT_A_TIME.lock().await;
    const SOCKETS: usize = 500;
    let server = Server::start(&env(&[("GMSHUB__SERVER__HEADER_READ_TIMEOUT", "3")]));
    let addr = server.addr;
    let closed = under_attack("slowloris", &server, async {
        let mut sockets = Vec::new();
        for _ in 0..SOCKETS {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket
                .bind((std::net::Ipv4Addr::from(ATTACKER), 0).into())
                .unwrap();
            let mut stream = socket.connect(addr).await.expect("a connection");
            stream
                .write_all(b"GET /genesys/1/node HTTP/1.1\r\nHost: gmshub\r\n")
                .await
                .unwrap();
            sockets.push(stream);
        }
        // A header byte a second on each, until the server closes it.
        let bystander = Browser::from_address(&server, BYSTANDER);
        let started = Instant::now();
        let mut closed = 0;
        let mut slowest = Duration::ZERO;
        while !sockets.is_empty() && started.elapsed() < Duration::from_secs(15) {
            let mut open = Vec::new();
            for mut s in sockets {
                match s.write_all(b"X").await {
                    Ok(()) => open.push(s),
                    Err(_) => closed += 1,
                }
            }
            sockets = open;
            let asked = Instant::now();
            assert_eq!(bystander.get("/genesys/1/node").await.status, 200);
            slowest = slowest.max(asked.elapsed());
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        eprintln!("slowloris: the bystander's slowest answer {slowest:?}");
        assert!(slowest < Duration::from_millis(500));
        closed
    })
    .await;
    assert_eq!(closed, SOCKETS, "header-read-timeout closes them all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_flood_stops_at_max_subscriptions() {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = Server::start(&env(&[]));
    const SOCKETS: usize = 4;
    const FRAMES: usize = 50;
    const PER_FRAME: usize = 100;
    let per_socket = under_attack("subscription flood", &server, async {
        let floods = (0..SOCKETS).map(|s| {
            let server = &server;
            async move {
                let mut ws = Ws::connect(server, None).await;
                let id = ws.handshake(json!(null)).await;
                let (mut ok, mut refused) = (0, 0);
                for f in 0..FRAMES {
                    let batch: Vec<Value> = (0..PER_FRAME)
                        .map(|i| {
                            json!({"channel": "/meta/subscribe", "clientId": id,
                                   "subscription": format!("/flood/{s}/{f}/{i}")})
                        })
                        .collect();
                    ws.send(Value::Array(batch)).await;
                    let mut answered = 0;
                    while answered < PER_FRAME {
                        let replies = ws
                            .until(Duration::from_secs(10), |m| {
                                m["channel"] == "/meta/subscribe"
                            })
                            .await;
                        assert!(!replies.is_empty(), "no subscribe replies");
                        for r in replies.iter().filter(|m| m["channel"] == "/meta/subscribe") {
                            answered += 1;
                            match r["successful"] == true {
                                true => ok += 1,
                                false => {
                                    assert_eq!(r["error"], "403::too_many_subscriptions");
                                    refused += 1
                                }
                            }
                        }
                    }
                }
                (ok, refused)
            }
        });
        futures_util::future::join_all(floods).await
    })
    .await;
    for (ok, refused) in per_socket {
        assert_eq!(ok, 1000, "maxSubscriptions");
        assert_eq!(refused, FRAMES * PER_FRAME - 1000);
    }
}
