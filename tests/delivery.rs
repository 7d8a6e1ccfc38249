//! Nothing lost, nothing misdelivered: a session's messages go to the
//! carrier of its latest `/meta/connect` only, whatever its earlier sockets
//! do; what a bounded queue drops is exactly what its policy says, and
//! counted.

mod common;

use std::time::Duration;

use common::{deliveries, json_of, Browser, Frame, Server, Ws};
use serde_json::{json, Value};

const FAST: &[(&str, &str)] = &[
    ("GMSHUB__COMETD__TIMEOUT", "1000"),
    ("GMSHUB__COMETD__MAXINTERVAL", "3000"),
    ("GMSHUB__COMETD__SWEEPPERIOD", "100"),
];
const COOKIE: &str = "00112233445566778899aabbccddeeff";
const MESSAGES: usize = 20;

fn connect(id: &str) -> Value {
    json!([{"channel": "/meta/connect", "clientId": id, "connectionType": "websocket"}])
}

/// A session on socket A, subscribed to `/stale`, with a connect held there.
async fn session_on_socket_a(server: &Server) -> (Ws, String) {
    let mut a = Ws::connect(server, Some(COOKIE)).await;
    let id = a.handshake(Value::Null).await;
    a.send(connect(&id)).await;
    a.until(Duration::from_secs(2), |m| m["channel"] == "/meta/connect")
        .await;
    a.send(json!([{"channel": "/meta/subscribe", "clientId": id, "subscription": "/stale"}]))
        .await;
    a.until(Duration::from_secs(2), |m| {
        m["channel"] == "/meta/subscribe"
    })
    .await;
    a.send(connect(&id)).await;
    (a, id)
}

async fn publish_all(server: &Server) {
    let bob = Browser::new(server);
    let b = bob.session().await;
    for i in 0..MESSAGES {
        bob.publish(&b, "/stale", json!(i)).await;
    }
}

fn data(messages: &[Value]) -> Vec<Value> {
    deliveries(messages)
        .iter()
        .map(|m| m["data"].clone())
        .collect()
}

/// What socket A gets from now on: no deliveries, and it is closed.
async fn stale_socket_gets_nothing(mut a: Ws) {
    let mut got = Vec::new();
    loop {
        match a.next(Duration::from_secs(3)).await {
            Frame::Messages(m) => got.extend(m),
            Frame::Ping => {}
            Frame::Close(_) => break,
            Frame::Timeout => panic!("the socket that lost its session stays open"),
        }
    }
    assert!(
        data(&got).is_empty(),
        "the stale socket took deliveries: {got:?}"
    );
}

#[tokio::test]
async fn a_session_moved_to_another_socket_gets_every_message_there() {
    let server = Server::start(FAST);
    let (a, id) = session_on_socket_a(&server).await;

    // The client reconnects on socket B; A stays open and silent.
    let mut b = Ws::connect(&server, Some(COOKIE)).await;
    b.send(connect(&id)).await;
    b.until(Duration::from_secs(2), |m| m["channel"] == "/meta/connect")
        .await;
    b.send(connect(&id)).await;
    publish_all(&server).await;

    let want: Vec<Value> = (0..MESSAGES).map(|i| json!(i)).collect();
    let got = b
        .until(Duration::from_secs(5), |m| m["data"] == json!(MESSAGES - 1))
        .await;
    assert_eq!(
        data(&got),
        want,
        "every message on the new socket, in order"
    );
    stale_socket_gets_nothing(a).await;
}

#[tokio::test]
async fn a_session_moved_to_long_polling_gets_every_message_there() {
    let server = Server::start(FAST);
    let (a, id) = session_on_socket_a(&server).await;

    // The client goes on over long-polling (same browser); A stays open.
    let lp = Browser::with_headers(&server, &[("cookie", &format!("BAYEUX_BROWSER={COOKIE}"))]);
    let first = lp.connect(&id).await;
    assert_eq!(first[0]["successful"], true, "{first:?}");
    let (publish, mut got) = (publish_all(&server), Vec::new());
    let poll = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
        while data(&got).len() < MESSAGES && tokio::time::Instant::now() < deadline {
            got.extend(lp.connect(&id).await);
        }
    };
    tokio::join!(publish, poll);
    let want: Vec<Value> = (0..MESSAGES).map(|i| json!(i)).collect();
    assert_eq!(
        data(&got),
        want,
        "every message over long-polling, in order"
    );
    stale_socket_gets_nothing(a).await;
}

#[tokio::test]
async fn drop_oldest_keeps_the_newest_that_fit_and_counts_what_it_dropped() {
    // Each delivery is `{"channel":"/q","data":"xxxxxxxx"}`: 34 bytes. 110
    // bytes hold three; a 200-byte message fits never.
    let server = Server::start(&[
        ("GMSHUB__COMETD__MAXQUEUE", "110"),
        ("GMSHUB__COMETD__MAXQUEUEPOLICY", "drop-oldest"),
    ]);
    let alice = Browser::new(&server);
    let a = alice.session().await;
    alice.subscribe(&a, json!("/q")).await;
    let bob = Browser::new(&server);
    let b = bob.session().await;
    for i in 0..5 {
        bob.publish(&b, "/q", json!(format!("{i:08}"))).await;
    }
    bob.publish(&b, "/q", json!("z".repeat(200))).await;
    let got = alice.connect(&a).await;
    assert_eq!(
        data(&got),
        vec![json!("00000002"), json!("00000003"), json!("00000004")],
        "the three newest that fit; the oversized one did not empty the queue"
    );
    let node = alice.get("/genesys/1/node").await;
    assert_eq!(node.json["cometd"]["dropped"], json!(3), "{}", node.json);
}

#[tokio::test]
async fn a_long_chat_resumes_over_cometd_whatever_the_queue_bound() {
    // 40 messages of 1000 bytes: a transcript five times the 8 KiB queue.
    let server = Server::start(&[("GMSHUB__COMETD__MAXQUEUE", "8192")]);
    let http = reqwest::Client::new();
    let chat = "/genesys/2/chat/customer-support";
    let started: Value = json_of(http.post(server.url(chat)).form(&[("nickname", "Ada")])).await;
    let (id, user, key) = (
        started["chatId"].as_str().unwrap().to_owned(),
        started["userId"].as_str().unwrap().to_owned(),
        started["secureKey"].as_str().unwrap().to_owned(),
    );
    for i in 0..40 {
        let text = format!("{i:04}{}", "m".repeat(996));
        let sent: Value = json_of(http.post(server.url(&format!("{chat}/{id}/send"))).form(&[
            ("userId", &user),
            ("secureKey", &key),
            ("message", &text),
        ]))
        .await;
        assert_eq!(sent["statusCode"], 0, "{sent}");
    }

    let channel = "/service/chatV2/customer-support";
    let mut ws = Ws::connect(&server, None).await;
    let client = ws.handshake(Value::Null).await;
    ws.send(connect(&client)).await;
    ws.until(Duration::from_secs(2), |m| m["channel"] == "/meta/connect")
        .await;
    ws.send(json!([{"channel": channel, "clientId": client, "id": "rn",
        "data": {"operation": "requestNotifications", "secureKey": key, "transcriptPosition": 1}}]))
        .await;
    let got = ws
        .until(Duration::from_secs(10), |m| {
            m["channel"] == channel && m["data"]["nextPosition"] == json!(42)
        })
        .await;
    let indexes: Vec<u64> = got
        .iter()
        .filter(|m| m["channel"] == channel)
        .flat_map(|m| {
            m["data"]["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(
        indexes,
        (1..=41).collect::<Vec<u64>>(),
        "the whole transcript, once, in order"
    );
    // The session is still there.
    ws.send(json!([{"channel": "/meta/connect", "clientId": client,
        "connectionType": "websocket", "advice": {"timeout": 0}}]))
        .await;
    let c = ws
        .until(Duration::from_secs(2), |m| m["channel"] == "/meta/connect")
        .await;
    let reply = c.iter().find(|m| m["channel"] == "/meta/connect").unwrap();
    assert_eq!(reply["successful"], true, "{reply}");
}

#[tokio::test]
async fn a_socket_whose_session_expired_is_told_to_handshake_and_closed() {
    let server = Server::start(&[
        ("GMSHUB__COMETD__MAXINTERVAL", "500"),
        ("GMSHUB__COMETD__SWEEPPERIOD", "100"),
        ("GMSHUB__COMETD__WS.PINGINTERVAL", "200"),
    ]);
    let mut ws = Ws::connect(&server, None).await;
    let id = ws.handshake(Value::Null).await;
    ws.send(connect(&id)).await;
    ws.until(Duration::from_secs(2), |m| m["channel"] == "/meta/connect")
        .await;
    // The client sends no connect again but keeps the socket (answering
    // pings): the session expires after maxInterval.
    let mut got = Vec::new();
    let closed = loop {
        match ws.next(Duration::from_secs(5)).await {
            Frame::Messages(m) => got.extend(m),
            Frame::Ping => {}
            Frame::Close(code) => break code,
            Frame::Timeout => panic!("the orphan socket stays open: {got:?}"),
        }
    };
    let told = got
        .iter()
        .find(|m| m["channel"] == "/meta/connect")
        .unwrap_or_else(|| panic!("no 402 before the close: {got:?}"));
    assert_eq!(told["successful"], false);
    assert_eq!(told["error"], "402::session_unknown");
    assert_eq!(told["advice"]["reconnect"], "handshake");
    assert_eq!(closed, Some(1000));
}
