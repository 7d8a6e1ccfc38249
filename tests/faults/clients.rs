//! The fault tests' Bayeux clients, over WebSocket: a subscriber (with the
//! ack extension or without) that resumes its session on a new socket
//! whenever one is cut and records every message id it receives, and a
//! publisher that records what the server accepted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket to `url` (`ws://host:port`) carrying the browser cookie.
async fn open(url: &str, cookie: &str) -> Option<Socket> {
    let mut request = format!("{url}/genesys/cometd")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "cookie",
        format!("BAYEUX_BROWSER={cookie}").parse().expect("header"),
    );
    let connect = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok((socket, _))) => Some(socket),
        _ => None,
    }
}

/// The messages of a text frame.
fn messages(frame: Message) -> Vec<Value> {
    let Message::Text(text) = frame else {
        return Vec::new();
    };
    match serde_json::from_str(&text) {
        Ok(Value::Array(all)) => all,
        Ok(one) => vec![one],
        Err(e) => panic!("a frame that is not JSON ({e}): {text}"),
    }
}

/// One exchange: sends `batch`, reads until the reply on `channel`, and
/// hands every other message read to `delivered`. `None` when the socket
/// was cut or nothing answered within `wait`.
async fn exchange(
    socket: &mut Socket,
    batch: Value,
    channel: &str,
    wait: Duration,
    mut delivered: impl FnMut(&Value),
) -> Option<Value> {
    socket.send(Message::text(batch.to_string())).await.ok()?;
    let deadline = Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await;
        let frame = frame.ok()??.ok()?;
        let mut reply = None;
        for m in messages(frame) {
            if m["channel"] == channel && m.get("successful").is_some() {
                reply = Some(m);
            } else if m.get("data").is_some() {
                delivered(&m);
            }
        }
        if reply.is_some() {
            return reply;
        }
    }
}

/// A subscriber: its session, the last ack batch it received, and what it
/// got (by `data.id`).
pub struct Subscriber {
    cookie: String,
    pub client_id: String,
    ack: bool,
    batch: u64,
    socket: Option<Socket>,
    /// Every id received, once.
    pub got: HashSet<String>,
    /// Ids received again (after the first time).
    pub repeats: Vec<String>,
    /// Sockets lost and replaced.
    pub resumed: usize,
}

/// How long a connect is held in the fault tests (the nodes run with
/// `[cometd] timeout` at this).
pub const HOLD_MS: u64 = 2000;

impl Subscriber {
    /// Handshakes on `url` (with the ack extension if `ack`) and subscribes
    /// to `channel`.
    pub async fn open(url: &str, channel: &str, ack: bool) -> Subscriber {
        let cookie = format!("{:032x}", rand::random::<u128>());
        let mut socket = open(url, &cookie).await.expect("a socket");
        let mut handshake = json!({"channel": "/meta/handshake", "version": "1.0",
            "supportedConnectionTypes": ["websocket"]});
        if ack {
            handshake["ext"] = json!({"ack": true});
        }
        let wait = Duration::from_secs(10);
        let reply = exchange(
            &mut socket,
            json!([handshake]),
            "/meta/handshake",
            wait,
            |_| {},
        )
        .await
        .expect("handshake reply");
        assert_eq!(reply["successful"], true, "{reply}");
        let client_id = reply["clientId"].as_str().expect("clientId").to_owned();
        let mut subscriber = Subscriber {
            cookie,
            client_id,
            ack,
            batch: 0,
            socket: Some(socket),
            got: HashSet::new(),
            repeats: Vec::new(),
            resumed: 0,
        };
        // The first connect answers at once.
        assert!(subscriber.poll(url, wait).await, "first connect");
        let socket = subscriber.socket.as_mut().expect("socket");
        let subscribe = json!([{"channel": "/meta/subscribe",
            "clientId": subscriber.client_id, "subscription": channel}]);
        let reply = exchange(socket, subscribe, "/meta/subscribe", wait, |_| {})
            .await
            .expect("subscribe reply");
        assert_eq!(reply["successful"], true, "{reply}");
        subscriber
    }

    fn take(&mut self, m: &Value) {
        let Some(id) = m["data"]["id"].as_str() else {
            return;
        };
        if !self.got.insert(id.to_owned()) {
            self.repeats.push(id.to_owned());
        }
    }

    /// One `/meta/connect` (a new socket to `url` first if the last was
    /// lost); whether its reply came. A reply that is not successful is a
    /// lost session: a test failure.
    pub async fn poll(&mut self, url: &str, wait: Duration) -> bool {
        if self.socket.is_none() {
            self.socket = open(url, &self.cookie).await;
            if self.socket.is_none() {
                return false;
            }
            self.resumed += 1;
        }
        let mut connect = json!({"channel": "/meta/connect", "clientId": self.client_id,
            "connectionType": "websocket"});
        if self.ack {
            connect["ext"] = json!({ "ack": self.batch });
        }
        let mut socket = self.socket.take().expect("socket");
        let mut delivered = Vec::new();
        let reply = exchange(&mut socket, json!([connect]), "/meta/connect", wait, |m| {
            delivered.push(m.clone())
        })
        .await;
        for m in &delivered {
            self.take(m);
        }
        let Some(reply) = reply else {
            return false;
        };
        assert_eq!(
            reply["successful"], true,
            "{}: the session was lost: {reply}",
            self.client_id
        );
        if let Some(batch) = reply["ext"]["ack"].as_u64() {
            self.batch = batch;
        }
        self.socket = Some(socket);
        true
    }

    /// Polls (on `url`, resuming on a new socket when one is cut) until
    /// every id of `expected` arrived or `bound` passed, then a moment
    /// longer to see repeats.
    pub async fn until(&mut self, url: &str, expected: &HashSet<String>, bound: Duration) {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline && !expected.is_subset(&self.got) {
            let wait = Duration::from_millis(HOLD_MS + 3000);
            if !self.poll(url, wait).await {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // A connect held to its end shows what else was on its way.
        self.poll(url, Duration::from_millis(HOLD_MS + 1000)).await;
    }

    /// Closes its socket (the next poll opens another, maybe elsewhere).
    pub fn drop_socket(&mut self) {
        self.socket = None;
    }

    /// Polls until the test says what to expect (the publishers are done),
    /// then until that has arrived (see [`until`](Self::until)).
    pub async fn run(
        &mut self,
        url: &str,
        mut expected: tokio::sync::watch::Receiver<Option<Arc<HashSet<String>>>>,
        bound: Duration,
    ) -> Arc<HashSet<String>> {
        loop {
            let known = expected.borrow_and_update().clone();
            if let Some(expected) = known {
                self.until(url, &expected, bound).await;
                return expected;
            }
            if !self.poll(url, Duration::from_millis(HOLD_MS + 3000)).await {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// What of `expected` never arrived.
    pub fn missing(&self, expected: &HashSet<String>) -> Vec<String> {
        let mut missing: Vec<String> = expected.difference(&self.got).cloned().collect();
        missing.sort();
        missing
    }
}

/// A publisher on its own session.
pub struct Publisher {
    socket: Socket,
    client_id: String,
}

impl Publisher {
    pub async fn open(url: &str) -> Publisher {
        let cookie = format!("{:032x}", rand::random::<u128>());
        let mut socket = open(url, &cookie).await.expect("a socket");
        let handshake = json!([{"channel": "/meta/handshake", "version": "1.0",
            "supportedConnectionTypes": ["websocket"]}]);
        let wait = Duration::from_secs(10);
        let reply = exchange(&mut socket, handshake, "/meta/handshake", wait, |_| {})
            .await
            .expect("handshake reply");
        let client_id = reply["clientId"].as_str().expect("clientId").to_owned();
        Publisher { socket, client_id }
    }

    /// Publishes `{"id": id}` on `channel`; whether the server accepted it.
    pub async fn publish(&mut self, channel: &str, id: &str) -> bool {
        let message = json!([{"channel": channel, "clientId": self.client_id,
            "data": {"id": id}}]);
        let wait = Duration::from_secs(10);
        let reply = exchange(&mut self.socket, message, channel, wait, |_| {}).await;
        reply.is_some_and(|r| r["successful"] == true)
    }
}
