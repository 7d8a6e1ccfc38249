//! Abuse resistance against the real binary: the Bayeux security policy as
//! shipped and as configured, the per-session bounds of the engine
//! (subscriptions, handshake `ext`, the publisher's `ext`), and the bounds
//! on connections.

mod common;

use std::time::Duration;

use common::{deliveries, Browser, Server, SHIPPED_CHANNELS};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

const FAST: &[(&str, &str)] = &[
    ("GMSHUB__COMETD__TIMEOUT", "300"),
    ("GMSHUB__COMETD__MAXINTERVAL", "3000"),
    SHIPPED_CHANNELS,
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    FAST.iter().chain(extra).copied().collect()
}

/// What `browser`'s session receives in one connect (held 300 ms at most).
async fn received(browser: &Browser, id: &str) -> Vec<Value> {
    deliveries(&browser.connect(id).await)
}

#[tokio::test]
async fn clients_cannot_publish_on_genesys_or_unlisted_channels_as_shipped() {
    let server = Server::start(FAST);
    let customer = Browser::new(&server);
    let listener = customer.session().await;
    for channel in ["/_genesys", "/demo/*"] {
        assert_eq!(
            customer.subscribe(&listener, json!(channel)).await["successful"],
            true
        );
    }
    let attacker = Browser::new(&server);
    let evil = attacker.session().await;
    let forged = json!({"message": "your chat was transferred: call +1 555 0100"});
    for channel in ["/_genesys", "/_genesys/x", "/anything"] {
        let r = attacker.publish(&evil, channel, forged.clone()).await;
        assert_eq!(r["successful"], false, "{channel}: {r}");
        assert_eq!(
            r["error"], "403:denied_by_security_policy:publish_denied",
            "{channel}"
        );
    }
    assert_eq!(received(&customer, &listener).await, Vec::<Value>::new());

    // The playground's channels are open while the pages are served.
    let r = attacker
        .publish(&evil, "/demo/room", json!({"text": "hi"}))
        .await;
    assert_eq!(r["successful"], true, "{r}");
    let got = received(&customer, &listener).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["channel"], "/demo/room");

    // Without the pages, nothing but the services.
    let closed = Server::start(&with(&[("GMSHUB__LAB__ENABLE_SAMPLE", "false")]));
    let b = Browser::new(&closed);
    let id = b.session().await;
    let r = b.publish(&id, "/demo/room", json!(1)).await;
    assert_eq!(r["error"], "403:denied_by_security_policy:publish_denied");
    assert!(closed
        .output()
        .contains("clients publish only to services ([cometd] publishChannels)"));
}

#[tokio::test]
async fn listed_channels_open_publishing_but_never_genesys() {
    let server = Server::start(&with(&[(
        "GMSHUB__COMETD__PUBLISHCHANNELS",
        "/rooms/*, /**",
    )]));
    let b = Browser::new(&server);
    let id = b.session().await;
    assert_eq!(
        b.publish(&id, "/rooms/1", json!(1)).await["successful"],
        true
    );
    assert_eq!(b.publish(&id, "/a/b/c", json!(1)).await["successful"], true);
    let r = b.publish(&id, "/_genesys", json!(1)).await;
    assert_eq!(r["error"], "403:denied_by_security_policy:publish_denied");
}

#[tokio::test]
async fn root_wildcards_are_refused_unless_allowed() {
    let server = Server::start(FAST);
    let b = Browser::new(&server);
    let id = b.session().await;
    for root in ["/**", "/*"] {
        let r = b.subscribe(&id, json!(root)).await;
        assert_eq!(r["successful"], false, "{root}: {r}");
        assert_eq!(r["error"], "403:denied_by_security_policy:subscribe_denied");
    }
    // One refused pattern refuses the whole subscribe.
    let r = b.subscribe(&id, json!(["/demo/a", "/**"])).await;
    assert_eq!(r["successful"], false);
    assert_eq!(
        b.subscribe(&id, json!("/demo/**")).await["successful"],
        true
    );

    let open = Server::start(&with(&[("GMSHUB__COMETD__ROOTWILDCARDS", "true")]));
    let b = Browser::new(&open);
    let id = b.session().await;
    assert_eq!(b.subscribe(&id, json!("/**")).await["successful"], true);
}

#[tokio::test]
async fn subscriptions_per_session_are_bounded() {
    let server = Server::start(&with(&[("GMSHUB__COMETD__MAXSUBSCRIPTIONS", "5")]));
    let b = Browser::new(&server);
    let id = b.session().await;
    let five: Vec<String> = (0..5).map(|i| format!("/demo/{i}")).collect();
    assert_eq!(b.subscribe(&id, json!(five)).await["successful"], true);
    assert_eq!(b.subscribe(&id, json!("/demo/0")).await["successful"], true);
    let r = b.subscribe(&id, json!("/demo/5")).await;
    assert_eq!(r["error"], "403::too_many_subscriptions");
}

#[tokio::test]
async fn a_large_handshake_ext_is_refused() {
    let server = Server::start(FAST);
    let b = Browser::new(&server);
    let replies = b
        .send(json!([{
            "channel": "/meta/handshake", "version": "1.0",
            "supportedConnectionTypes": ["long-polling"],
            "ext": {"pad": "x".repeat(8 * 1024)}
        }]))
        .await;
    assert_eq!(replies[0]["successful"], false);
    assert_eq!(replies[0]["error"], "403:ext_too_large:handshake_denied");
    // An ext of ordinary size (GMS's, the ack extension's) is welcome.
    b.handshake_with(json!({"ack": true, "token": "t".repeat(2000)}))
        .await;
}

#[tokio::test]
async fn a_publishers_ext_is_not_relayed_unless_configured() {
    for (forward, env) in [
        (false, with(&[])),
        (
            true,
            with(&[("GMSHUB__COMETD__FORWARDPUBLISHEREXT", "true")]),
        ),
    ] {
        let server = Server::start(&env);
        let b = Browser::new(&server);
        let id = b.session().await;
        b.subscribe(&id, json!("/demo/room")).await;
        b.send(json!([{"channel": "/demo/room", "clientId": id, "data": 1,
                        "ext": {"role": "supervisor"}}]))
            .await;
        let got = received(&b, &id).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].get("ext").is_some(), forward, "{}", got[0]);
    }
}

/// A raw HTTP/1.1 GET of `/genesys/1/node` from `from` (a loopback
/// address); the status line's code, or `None` when the server closed the
/// connection without answering.
async fn node_status(server: &Server, from: [u8; 4]) -> Option<u16> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    let mut stream = socket.connect(server.addr).await.ok()?;
    let request = "GET /genesys/1/node HTTP/1.1\r\nHost: gmshub\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("answered or closed within 5 s")
        .ok()?;
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test]
async fn connections_per_address_are_capped_without_touching_other_addresses() {
    let server = Server::start(&with(&[(
        "GMSHUB__SERVER__MAX_CONNECTIONS_PER_ADDRESS",
        "20",
    )]));
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // Accepted and counted before the next one is: give the server a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node_status(&server, [127, 0, 0, 1]).await, None);
    assert_eq!(node_status(&server, [127, 0, 0, 2]).await, Some(200));
    drop(idle);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node_status(&server, [127, 0, 0, 1]).await, Some(200));
    assert!(server
        .output()
        .contains("connection refused ([server] max-connections-per-address)"));
}

#[tokio::test]
async fn connections_in_all_are_capped() {
    let server = Server::start(&with(&[("GMSHUB__SERVER__MAX_CONNECTIONS", "5")]));
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Full: another address is turned away too, and served once a place frees.
    assert_eq!(node_status(&server, [127, 0, 0, 2]).await, None);
    idle.pop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node_status(&server, [127, 0, 0, 2]).await, Some(200));
    assert!(server
        .output()
        .contains("connection refused ([server] max-connections)"));
}

#[tokio::test]
async fn a_request_head_not_sent_in_time_closes_the_connection() {
    let server = Server::start(&with(&[
        ("GMSHUB__SERVER__HEADER_READ_TIMEOUT", "1"),
        ("GMSHUB__COMETD__TIMEOUT", "2000"),
    ]));
    let started = std::time::Instant::now();
    // Silent, and dribbling: both are closed after the timeout.
    let silent = TcpStream::connect(server.addr).await.unwrap();
    let mut dribbling = TcpStream::connect(server.addr).await.unwrap();
    dribbling
        .write_all(b"GET /genesys/1/node HTTP/1.1\r\n")
        .await
        .unwrap();
    for mut stream in [silent, dribbling] {
        let mut rest = Vec::new();
        let read = timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "closed within 5 s");
    }
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A long-poll held past it is a request whose head came in time.
    let b = Browser::new(&server);
    let id = b.session().await;
    let held = std::time::Instant::now();
    let replies = b.connect(&id).await;
    assert_eq!(replies.last().unwrap()["successful"], true);
    assert!(held.elapsed() >= Duration::from_millis(1800));
}

#[tokio::test]
async fn every_error_is_in_its_apis_shape() {
    let server = Server::start(FAST);
    // A fresh connection per request: the server closes one after a 413.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let classic = |v: &Value| v["message"].is_string() && v["exception"].is_string();
    // An unknown path, a wrong method: the framework's empty answers.
    let r = http
        .get(server.url("/genesys/1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(classic(&r.json().await.unwrap()));
    let r = http
        .delete(server.url("/genesys/1/node"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers().contains_key("allow"), "Allow kept");
    assert!(classic(&r.json().await.unwrap()));
    // Over the body limit of the Notification API: the framework's 413.
    let big = json!({"tag": "t", "message": "x".repeat(2 << 20)});
    let r = http
        .post(server.url("/genesys/1/notification/subscription"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(classic(&r.json().await.unwrap()));
    // Chat API v2 in its own shape.
    let r = http
        .get(server.url("/genesys/2/chat/customer-support/x/y/z"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["statusCode"], 2, "{v}");
    // A form that is not UTF-8 is refused, not stored with U+FFFD.
    let r = http
        .post(server.url("/genesys/1/storage/60"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=%FF%FE")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("UTF-8"), "{v}");
}

#[tokio::test]
async fn one_batch_cannot_create_a_thousand_chats() {
    // Room for the thousand in one message.
    let server = Server::start(&with(&[("GMSHUB__COMETD__MAXMESSAGESIZE", "1048576")]));
    let b = Browser::new(&server);
    let id = b.session().await;
    let batch: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"channel": "/service/chatV2/customer-support", "clientId": id,
                   "data": {"operation": "requestChat", "nickname": format!("n{i}")}})
        })
        .collect();
    let replies = b.send(Value::Array(batch)).await;
    let refused = replies
        .iter()
        .filter(|m| m["error"] == "403::too_many_publishes")
        .count();
    assert_eq!(refused, 1000 - 32, "maxBatchPublishes is 32");
}
