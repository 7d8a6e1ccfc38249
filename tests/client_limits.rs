//! Per-client limits against the real binary, as shipped: GMS's DoS filter
//! (`[dos-filter]`) on REST and Bayeux requests and on a WebSocket's
//! frames, and the live sessions and handshakes one address or browser may
//! have. 127.0.0.1 plays the heavy client, 127.0.0.2 another one.

mod common;

use std::time::{Duration, Instant};

use common::{Browser, Server, Ws, SHIPPED_LIMITS};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    [
        ("GMSHUB__COMETD__TIMEOUT", "300"),
        ("GMSHUB__COMETD__MAXINTERVAL", "3000"),
        SHIPPED_LIMITS,
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .collect()
}

/// A handshake's first reply.
async fn handshake(b: &Browser) -> Value {
    b.send(json!([{
        "channel": "/meta/handshake", "version": "1.0",
        "supportedConnectionTypes": ["long-polling"], "id": "hs"
    }]))
    .await[0]
        .clone()
}

#[tokio::test]
async fn requests_over_the_rate_are_delayed_as_shipped() {
    let server = Server::start(&with(&[]));
    let b = Browser::new(&server);
    let started = Instant::now();
    // 60 at once: 25 a second pass untouched, the others wait delayMs
    // (100 ms) and then for one of the throttle's passes.
    let answers = futures_util::future::join_all((0..60).map(|_| b.get("/genesys/1/node"))).await;
    let delayed = answers
        .iter()
        .filter(|a| a.headers.get("dosfilter").is_some_and(|v| v == "delayed"))
        .count();
    assert!(
        answers.iter().all(|a| a.status == 200),
        "a delayed request is still served"
    );
    assert!((20..=40).contains(&delayed), "{delayed} of 60 delayed");
    assert!(started.elapsed() >= Duration::from_millis(100));
    // Another client is not slowed.
    let other = Browser::from_address(&server, [127, 0, 0, 2]);
    let a = other.get("/genesys/1/node").await;
    assert!(a.headers.get("dosfilter").is_none());
    assert!(server.output().contains("DoS filter: requests over"));
}

#[tokio::test]
async fn with_delay_minus_one_the_excess_is_refused_in_the_apis_shape() {
    let server = Server::start(&with(&[
        ("GMSHUB__DOS_FILTER__DELAYMS", "-1"),
        ("GMSHUB__DOS_FILTER__MAXREQUESTSPERSEC", "5"),
        ("GMSHUB__DOS_FILTER__IPWHITELIST", "127.0.0.3"),
    ]));
    let b = Browser::new(&server);
    let mut refused = Vec::new();
    for _ in 0..20 {
        let a = b.get("/genesys/1/storage/none").await;
        if a.status == 429 {
            refused.push(a);
        }
    }
    assert!(refused.len() >= 10, "{} of 20 refused", refused.len());
    let a = &refused[0];
    assert_eq!(a.headers["dosfilter"], "unavailable");
    assert_eq!(a.headers["retry-after"], "1");
    assert!(
        a.json["message"]
            .as_str()
            .unwrap()
            .contains("maxRequestsPerSec"),
        "{}",
        a.text
    );
    // Chat API v2 has its own error shape.
    let v2 = b
        .post_raw(
            "/genesys/2/chat/customer-support",
            "application/x-www-form-urlencoded",
            "",
        )
        .await;
    assert_eq!(v2.status, 429);
    assert!(v2.json["statusCode"].is_number(), "{}", v2.text);
    // A whitelisted address is never limited.
    let trusted = Browser::from_address(&server, [127, 0, 0, 3]);
    for _ in 0..20 {
        assert_ne!(trusted.get("/genesys/1/storage/none").await.status, 429);
    }
}

#[tokio::test]
async fn a_held_connect_outlives_max_request_ms_and_a_slow_request_does_not() {
    let server = Server::start(&with(&[
        ("GMSHUB__DOS_FILTER__MAXREQUESTMS", "1000"),
        ("GMSHUB__COMETD__TIMEOUT", "2000"),
    ]));
    let b = Browser::new(&server);
    let id = b.session().await;
    let held = Instant::now();
    let replies = b.connect(&id).await;
    assert_eq!(replies.last().unwrap()["successful"], true);
    assert!(
        held.elapsed() >= Duration::from_millis(1800),
        "held its full timeout"
    );

    // A request whose body never comes is answered 503 after maxRequestMs.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /genesys/1/storage/60 HTTP/1.1\r\nHost: gmshub\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = vec![0; 4096];
    let n = timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered within 5 s")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("maxRequestMs"), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_websockets_frames_over_the_rate_are_paced_and_none_is_lost() {
    let server = Server::start(&with(&[("GMSHUB__DOS_FILTER__MAXREQUESTSPERSEC", "10")]));
    let mut ws = Ws::connect(&server, None).await;
    let id = ws.handshake(json!(null)).await;
    let started = Instant::now();
    for n in 0..30 {
        ws.send(json!([{ "channel": "/service/echo", "clientId": id, "data": n, "id": format!("p{n}") }]))
            .await;
    }
    let is_reply = |m: &Value| m["successful"].is_boolean();
    let replies = ws
        .until(Duration::from_secs(10), |m| m["id"] == "p29" && is_reply(m))
        .await;
    let answered: Vec<_> = replies
        .iter()
        .filter(|m| is_reply(m) && m["id"].as_str().is_some_and(|i| i.starts_with('p')))
        .collect();
    assert_eq!(answered.len(), 30, "every frame answered: {replies:?}");
    // Ten at once, then one every 100 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn live_sessions_per_address_are_capped_and_freed_on_disconnect() {
    let server = Server::start(&with(&[("GMSHUB__COMETD__MAXSESSIONSPERADDRESS", "3")]));
    let mut ids = Vec::new();
    for _ in 0..3 {
        // A browser each: the per-browser limit is not what is tested.
        let b = Browser::new(&server);
        ids.push((
            handshake(&b).await["clientId"].as_str().unwrap().to_owned(),
            b,
        ));
    }
    let refused = handshake(&Browser::new(&server)).await;
    assert_eq!(refused["successful"], false);
    assert_eq!(refused["error"], "403:too_many_sessions:handshake_denied");
    assert_eq!(refused["advice"]["reconnect"], "handshake");
    assert_eq!(refused["advice"]["interval"], 5000);
    // Another address is not affected.
    let other = handshake(&Browser::from_address(&server, [127, 0, 0, 2])).await;
    assert_eq!(other["successful"], true);
    // A disconnect gives the place back.
    let (id, b) = ids.pop().unwrap();
    b.send(json!([{ "channel": "/meta/disconnect", "clientId": id }]))
        .await;
    assert_eq!(handshake(&Browser::new(&server)).await["successful"], true);
}

#[tokio::test]
async fn live_sessions_per_browser_and_handshakes_per_second_are_capped() {
    let server = Server::start(&with(&[
        ("GMSHUB__COMETD__MAXLIVESESSIONSPERBROWSER", "2"),
        ("GMSHUB__COMETD__MAXHANDSHAKESPERSECOND", "4"),
    ]));
    // One browser (one cookie): two sessions, then refused.
    let b = Browser::new(&server);
    assert_eq!(handshake(&b).await["successful"], true);
    assert_eq!(handshake(&b).await["successful"], true);
    let refused = handshake(&b).await;
    assert_eq!(refused["error"], "403:too_many_sessions:handshake_denied");
    // Handshakes from one address: 4 a second in bursts of 20.
    let mut paced = None;
    for _ in 0..25 {
        let reply = handshake(&Browser::new(&server)).await;
        if reply["successful"] == false {
            paced = Some(reply);
            break;
        }
    }
    let paced = paced.expect("a handshake flood is paced");
    assert_eq!(paced["error"], "403:too_many_handshakes:handshake_denied");
    let wait = paced["advice"]["interval"].as_i64().unwrap();
    assert!((1..=250).contains(&wait), "advised to wait {wait} ms");
    tokio::time::sleep(Duration::from_millis(wait as u64 + 10)).await;
    assert_eq!(handshake(&Browser::new(&server)).await["successful"], true);
}

#[tokio::test]
async fn chats_started_per_address_are_paced_in_each_apis_shape() {
    let server = Server::start(&with(&[(
        "GMSHUB__CHAT__MAX_CHATS_PER_MINUTE_PER_ADDRESS",
        "3",
    )]));
    let start = |b: Browser| async move {
        b.post_raw(
            "/genesys/2/chat/customer-support",
            "application/x-www-form-urlencoded",
            "nickname=Ann",
        )
        .await
    };
    for _ in 0..3 {
        let a = start(Browser::new(&server)).await;
        assert_eq!(a.json["statusCode"], 0, "{}", a.text);
    }
    let refused = start(Browser::new(&server)).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.json["statusCode"], 1);
    assert!(refused.json["errors"][0]["advice"]
        .as_str()
        .unwrap()
        .contains("too many chats"));
    // The same limit over CometD, and none for another address.
    let mut ws = Ws::connect(&server, None).await;
    let id = ws.handshake(json!(null)).await;
    ws.send(
        json!([{ "channel": "/service/chatV2/customer-support", "clientId": id,
                     "data": { "operation": "requestChat", "nickname": "Ann" } }]),
    )
    .await;
    let got = ws
        .until(Duration::from_secs(5), |m| {
            m["data"]["statusCode"].is_number()
        })
        .await;
    let answer = got
        .iter()
        .find(|m| m["data"]["statusCode"].is_number())
        .unwrap();
    assert_eq!(answer["data"]["statusCode"], 1, "{answer}");
    let other = start(Browser::from_address(&server, [127, 0, 0, 2])).await;
    assert_eq!(other.json["statusCode"], 0, "{}", other.text);
}

#[tokio::test]
async fn callbacks_booked_per_address_are_paced() {
    let server = Server::start(&with(&[(
        "GMSHUB__CALLBACK__MAX_BOOKINGS_PER_MINUTE_PER_ADDRESS",
        "2",
    )]));
    // A number each: one number's waiting callbacks are limited otherwise.
    let book = |b: Browser, n: u32| async move {
        b.post_raw(
            "/genesys/1/service/callback/default",
            "application/json",
            json!({"_customer_number": format!("+1 650 253 000{n}")}).to_string(),
        )
        .await
    };
    for n in 0..2 {
        let a = book(Browser::new(&server), n).await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let refused = book(Browser::new(&server), 2).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert!(refused.json["message"]
        .as_str()
        .unwrap()
        .contains("too many callbacks"));
    assert!(refused.json["exception"]
        .as_str()
        .unwrap()
        .ends_with("CallbackExceptionServiceUnavailable"));
    let other = book(Browser::from_address(&server, [127, 0, 0, 2]), 3).await;
    assert_eq!(other.status, 200, "{}", other.text);
}
