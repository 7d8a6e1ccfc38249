//! End to end over WebSocket: many batches on one socket, deliveries as they
//! happen, held connects, ping, size limits, the ack extension across a
//! dropped socket, and graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{deliveries, reply, Browser, Frame, Server, Ws};
use serde_json::{json, Value};

const FAST: &[(&str, &str)] = &[
    ("GMSHUB__COMETD__TIMEOUT", "1000"),
    ("GMSHUB__COMETD__MAXINTERVAL", "3000"),
    ("GMSHUB__COMETD__SWEEPPERIOD", "100"),
];

const SECOND: Duration = Duration::from_secs(1);

fn connect_msg(id: &str, ext: Value) -> Value {
    let mut m = json!({"channel": "/meta/connect", "clientId": id, "connectionType": "websocket"});
    if !ext.is_null() {
        m["ext"] = ext;
    }
    json!([m])
}

#[tokio::test]
async fn one_socket_carries_every_meta_channel_and_deliveries() {
    let server = Server::start(FAST);
    let mut ws = Ws::connect(&server, None).await;
    let id = ws.handshake(Value::Null).await;
    // First connect: answered at once, with the advice.
    ws.send(connect_msg(&id, Value::Null)).await;
    let got = ws.until(SECOND, |m| m["channel"] == "/meta/connect").await;
    let c = reply(&got, "/meta/connect");
    assert_eq!(c["successful"], true);
    assert_eq!(
        c["advice"],
        json!({"reconnect": "retry", "interval": 0, "timeout": 1000, "maxInterval": 3000})
    );

    // The next connect is held; meanwhile the socket carries other batches.
    let held_at = Instant::now();
    ws.send(connect_msg(&id, Value::Null)).await;
    ws.send(json!([{"channel": "/meta/subscribe", "clientId": id, "subscription": ["/ws/a", "/ws/b/*"], "id": "s"}]))
        .await;
    let got = ws
        .until(SECOND, |m| m["channel"] == "/meta/subscribe")
        .await;
    assert_eq!(reply(&got, "/meta/subscribe")["successful"], true);

    // A broadcast from an HTTP client arrives at once, not with the connect reply.
    let bob = Browser::new(&server);
    let b = bob.session().await;
    bob.publish(&b, "/ws/b/c", json!({"x": 1})).await;
    let got = ws.until(SECOND, |m| m["channel"] == "/ws/b/c").await;
    assert_eq!(
        deliveries(&got),
        vec![json!({"channel": "/ws/b/c", "data": {"x": 1}})]
    );
    assert!(
        got.iter().all(|m| m["channel"] != "/meta/connect"),
        "connect still held: {got:?}"
    );

    // Several messages in one frame, answered in one go.
    ws.send(json!([
        {"channel": "/ws/a", "clientId": id, "data": 1, "id": "p1"},
        {"channel": "/ws/a", "clientId": id, "data": 2, "id": "p2"},
    ]))
    .await;
    let got = ws.until(SECOND, |m| m["id"] == "p2").await;
    assert_eq!(reply(&got, "/ws/a")["successful"], true);
    let got = if deliveries(&got).len() < 2 {
        let mut all = got.clone();
        all.extend(ws.until(SECOND, |m| m["data"] == 2).await);
        all
    } else {
        got
    };
    let data: Vec<Value> = deliveries(&got).iter().map(|m| m["data"].clone()).collect();
    assert_eq!(data, vec![json!(1), json!(2)]);

    // The held connect comes back after the timeout.
    let got = ws
        .until(Duration::from_secs(3), |m| m["channel"] == "/meta/connect")
        .await;
    assert_eq!(reply(&got, "/meta/connect")["successful"], true);
    assert!(held_at.elapsed() >= Duration::from_millis(900));

    ws.send(json!([{"channel": "/meta/disconnect", "clientId": id, "id": "d"}]))
        .await;
    let got = ws
        .until(SECOND, |m| m["channel"] == "/meta/disconnect")
        .await;
    assert_eq!(reply(&got, "/meta/disconnect")["successful"], true);
}

#[tokio::test]
async fn server_pings_and_bad_input_is_answered_or_closed() {
    let mut env = FAST.to_vec();
    env.push(("GMSHUB__COMETD__WS_PINGINTERVAL", "200"));
    let server = Server::start(&env);
    let mut ws = Ws::connect(&server, None).await;
    let mut pinged = false;
    for _ in 0..5 {
        if let Frame::Ping = ws.next(SECOND).await {
            pinged = true;
            break;
        }
    }
    assert!(pinged, "no ping from the server");
    // Malformed JSON gets an error and the socket stays open.
    ws.send_text("{nope".into()).await.unwrap();
    let got = ws.until(SECOND, |m| m.get("error").is_some()).await;
    assert_eq!(got.last().unwrap()["error"], "400::message_invalid");
    // `[]`, an old Faye keep-alive, is ignored.
    ws.send_text("[]".into()).await.unwrap();
    let id = ws.handshake(Value::Null).await;
    assert!(!id.is_empty());
    // Over `maxMessageSize`: closed with 1009.
    let big = format!(
        r#"[{{"channel":"/a","clientId":"{id}","data":"{}"}}]"#,
        "x".repeat(70 * 1024)
    );
    let _ = ws.send_text(big).await;
    assert_eq!(ws.close_code(SECOND).await, Some(1009));
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_is_closed_with_1007() {
    let server = Server::start(FAST);
    let mut ws = Ws::connect(&server, None).await;
    ws.handshake(Value::Null).await;
    ws.send_raw_text(b"[{\"channel\":\"/meta/connect\",\"x\":\"\xff\xfe\"}]")
        .await
        .unwrap();
    assert_eq!(ws.close_code(SECOND).await, Some(1007));
}

#[tokio::test]
async fn ack_extension_over_websocket_survives_a_dropped_socket() {
    let server = Server::start(FAST);
    let cookie = "0123456789abcdef0123456789abcdef";
    let mut ws = Ws::connect(&server, Some(cookie)).await;
    ws.send(json!([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket"],
                    "ext": {"ack": true}}]))
        .await;
    let hs = ws
        .until(SECOND, |m| m["channel"] == "/meta/handshake")
        .await;
    assert_eq!(hs[0]["ext"]["ack"], json!({"enabled": true, "batch": 0}));
    let id = hs[0]["clientId"].as_str().unwrap().to_owned();
    ws.send(connect_msg(&id, json!({"ack": 0}))).await;
    let first = ws.until(SECOND, |m| m["channel"] == "/meta/connect").await;
    let b1 = reply(&first, "/meta/connect")["ext"]["ack"]
        .as_u64()
        .unwrap();
    ws.send(json!([{"channel": "/meta/subscribe", "clientId": id, "subscription": "/acked"}]))
        .await;
    ws.until(SECOND, |m| m["channel"] == "/meta/subscribe")
        .await;

    // With acks, deliveries ride on connect replies only.
    ws.send(connect_msg(&id, json!({"ack": b1}))).await;
    let bob = Browser::new(&server);
    let b = bob.session().await;
    bob.publish(&b, "/acked", json!("m1")).await;
    let got = ws.until(SECOND, |m| m["channel"] == "/meta/connect").await;
    assert_eq!(
        deliveries(&got),
        vec![json!({"channel": "/acked", "data": "m1"})]
    );
    let b2 = reply(&got, "/meta/connect")["ext"]["ack"].as_u64().unwrap();
    assert!(b2 > b1);

    // The socket drops before the client could acknowledge b2 (as if the
    // frame had been lost); m2 is published while no socket is there.
    ws.close().await;
    bob.publish(&b, "/acked", json!("m2")).await;

    // A new socket of the same browser resumes the session: m1 comes again,
    // then m2, in order.
    let mut ws = Ws::connect(&server, Some(cookie)).await;
    ws.send(connect_msg(&id, json!({"ack": b1}))).await;
    let got = ws.until(SECOND, |m| m["channel"] == "/meta/connect").await;
    let c = reply(&got, "/meta/connect");
    assert_eq!(c["successful"], true, "{got:?}");
    let data: Vec<Value> = deliveries(&got).iter().map(|m| m["data"].clone()).collect();
    assert_eq!(data, vec![json!("m1"), json!("m2")]);
    let b3 = c["ext"]["ack"].as_u64().unwrap();
    // Acknowledged: the next connect is held with nothing to resend.
    ws.send(connect_msg(&id, json!({"ack": b3}))).await;
    match ws.next(Duration::from_millis(500)).await {
        Frame::Timeout | Frame::Ping => {}
        other => panic!("nothing should come before the hold ends: {other:?}"),
    }
}

/// GMS's graceful stop: OFFLINE first (the node check answers 503) while
/// the node serves on for half of `[sml] suspending-wait-timeout`, then the
/// clients are told to handshake elsewhere, and the process exits in time.
#[tokio::test]
async fn graceful_shutdown_goes_offline_then_tells_clients_to_handshake_elsewhere() {
    let mut env = FAST.to_vec();
    env.extend([
        ("GMSHUB__COMETD__TIMEOUT", "20000"),
        ("GMSHUB__SML__SUSPENDING_WAIT_TIMEOUT", "5"),
    ]);
    let mut server = Server::start(&env);
    let mut ws = Ws::connect(&server, None).await;
    let id = ws.handshake(Value::Null).await;
    ws.send(connect_msg(&id, Value::Null)).await;
    ws.until(SECOND, |m| m["channel"] == "/meta/connect").await;
    ws.send(connect_msg(&id, Value::Null)).await; // held for 20 s
    let poller = Browser::new(&server);
    let p = poller.session().await;
    let held = {
        let poller = poller.clone();
        tokio::spawn(async move { poller.connect(&p).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let late = Browser::new(&server);
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate(Duration::from_secs(8));
        (status, server)
    });
    // OFFLINE at once, and still serving: a client that arrives now (the
    // load balancer has not seen the 503 yet) gets a session.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(late.get("/genesys/1/node").await.status, 503);
    let newcomer = late.handshake().await;
    assert!(!newcomer.is_empty());
    let got = ws
        .until(Duration::from_secs(4), |m| m["channel"] == "/meta/connect")
        .await;
    let moved = started.elapsed();
    assert!(
        moved >= Duration::from_millis(2400),
        "held connects are answered after half the wait, not at once: {moved:?}"
    );
    let c = reply(&got, "/meta/connect");
    assert_eq!(c["error"], "402::session_unknown");
    assert_eq!(c["advice"]["reconnect"], "handshake");
    let mut close = None;
    for _ in 0..5 {
        if let Frame::Close(code) = ws.next(SECOND).await {
            close = code;
            break;
        }
    }
    assert_eq!(close, Some(1001), "socket closed as going away");
    let r = held.await.unwrap();
    assert_eq!(
        reply(&r, "/meta/connect")["advice"]["reconnect"],
        "handshake"
    );
    let (status, _server) = status.await.unwrap();
    let status = status.expect("exited within the bound");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(6));
}
