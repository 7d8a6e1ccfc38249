//! Three gmshub processes sharing one real `redis-server`: broadcasts
//! published on any node reach every subscriber of the cluster exactly once;
//! a node killed with SIGKILL leaves the others serving, its clients
//! re-handshake on another node and keep receiving, and nothing it stored is
//! lost. Also the bus's delivery to one session held by another node.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::redis::RedisServer;
use common::{json_of, Browser, Frame, Server, Ws};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

fn node(redis: &RedisServer) -> Server {
    Server::start(&[
        ("GMSHUB__STORE__TYPE", "redis"),
        ("GMSHUB__REDIS__URL", &redis.url()),
        ("GMSHUB__CLUSTER__ENABLED", "true"),
        ("GMSHUB__CLUSTER__HEARTBEAT_INTERVAL", "300"),
    ])
}

/// A WebSocket client subscribed to `channel`, with a connect held.
async fn subscriber(server: &Server, channel: &str) -> (Ws, String) {
    let mut ws = Ws::connect(server, None).await;
    ws.send(json!([{"channel": "/meta/handshake", "version": "1.0",
        "supportedConnectionTypes": ["websocket"], "id": "h"}]))
        .await;
    let hs = ws.until(WAIT, |m| m["channel"] == "/meta/handshake").await;
    let id = hs
        .iter()
        .find(|m| m["channel"] == "/meta/handshake")
        .unwrap()["clientId"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.send(
        json!([{"channel": "/meta/connect", "clientId": id, "connectionType": "websocket",
        "advice": {"timeout": 0}, "id": "c0"}]),
    )
    .await;
    ws.until(WAIT, |m| m["channel"] == "/meta/connect").await;
    ws.send(
        json!([{"channel": "/meta/subscribe", "clientId": id, "subscription": channel, "id": "s"}]),
    )
    .await;
    let sub = ws.until(WAIT, |m| m["channel"] == "/meta/subscribe").await;
    assert!(
        sub.iter()
            .any(|m| m["channel"] == "/meta/subscribe" && m["successful"] == true),
        "{sub:?}"
    );
    ws.send(json!([{"channel": "/meta/connect", "clientId": id, "connectionType": "websocket", "id": "c1"}]))
        .await;
    (ws, id)
}

/// Reads deliveries on `channel` until `expected` arrived and a quiet
/// period shows no more come; returns how often each `data.n` arrived.
async fn collect(ws: &mut Ws, channel: &str, expected: usize) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let total: usize = seen.values().sum();
        let wait = if total >= expected {
            Duration::from_millis(300)
        } else {
            deadline.saturating_duration_since(tokio::time::Instant::now())
        };
        match ws.next(wait).await {
            Frame::Messages(msgs) => {
                for m in msgs.iter().filter(|m| m["channel"] == channel) {
                    *seen
                        .entry(m["data"]["n"].as_str().unwrap().to_owned())
                        .or_default() += 1;
                }
            }
            Frame::Ping => {}
            Frame::Timeout => return seen,
            Frame::Close(code) => panic!("socket closed ({code:?}) after {seen:?}"),
        }
    }
}

fn exactly_once(seen: &HashMap<String, usize>, expected: &[String], who: &str) {
    let mut got: Vec<&String> = seen.keys().collect();
    got.sort();
    let mut want: Vec<&String> = expected.iter().collect();
    want.sort();
    assert_eq!(got, want, "{who}: which messages arrived");
    assert!(
        seen.values().all(|&n| n == 1),
        "{who}: duplicates in {seen:?}"
    );
}

async fn publish_from(server: &Server, tag: &str, count: usize) -> Vec<String> {
    let browser = Browser::new(server);
    let id = browser.session().await;
    let mut sent = Vec::new();
    for i in 0..count {
        let n = format!("{tag}-{i}");
        let reply = browser
            .publish(&id, "/cluster/room", json!({ "n": n }))
            .await;
        assert_eq!(reply["successful"], true, "{reply}");
        sent.push(n);
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_redis() {
    let redis = RedisServer::start();
    let nodes: Vec<Server> = (0..3).map(|_| node(&redis)).collect();

    // Every node sees the cluster.
    let listing = Browser::new(&nodes[0]).get("/genesys/1/node").await.json;
    assert_eq!(listing["store"], "redis");
    assert_eq!(listing["cluster"], true);
    assert_eq!(listing["nodes"].as_array().unwrap().len(), 3, "{listing}");

    // Two subscribers on each node.
    let mut subs = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for _ in 0..2 {
            let (ws, id) = subscriber(n, "/cluster/room").await;
            subs.push((i, ws, id));
        }
    }
    // Each node publishes; everyone gets all of it, once.
    let mut sent = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        sent.extend(publish_from(n, &format!("node{i}"), 5).await);
    }
    for (i, ws, _) in subs.iter_mut() {
        let seen = collect(ws, "/cluster/room", sent.len()).await;
        exactly_once(&seen, &sent, &format!("subscriber on node {i}"));
    }

    // Data stored through node 2 before it dies.
    let stored = Browser::new(&nodes[2])
        .post_raw(
            "/genesys/1/storage/600",
            "application/x-www-form-urlencoded",
            "k=survives",
        )
        .await;
    assert_eq!(stored.status, 200, "{}", stored.text);
    let data_id = stored.json["id"].as_str().unwrap().to_owned();

    // SIGKILL node 2: its clients lose their socket.
    let mut nodes = nodes;
    let mut dead = nodes.pop().unwrap();
    dead.signal("KILL");
    dead.wait(WAIT).expect("killed");
    let mut survivors = Vec::new();
    for (i, mut ws, id) in subs {
        if i == 2 {
            match ws.next(WAIT).await {
                Frame::Close(_) => {}
                other => panic!("the dead node's socket: {other:?}"),
            }
            // As a load balancer would, the client goes to another node; its
            // old session is unknown there, so it handshakes again.
            let mut retry = Ws::connect(&nodes[0], None).await;
            retry
                .send(json!([{"channel": "/meta/connect", "clientId": id, "connectionType": "websocket", "id": "r"}]))
                .await;
            let answer = retry.until(WAIT, |m| m["channel"] == "/meta/connect").await;
            assert_eq!(answer[0]["successful"], false);
            assert_eq!(answer[0]["advice"]["reconnect"], "handshake");
            let (ws, _) = subscriber(&nodes[0], "/cluster/room").await;
            survivors.push((0, ws));
        } else {
            survivors.push((i, ws));
        }
    }
    let sent: Vec<String> = publish_from(&nodes[1], "after", 5).await;
    for (i, ws) in survivors.iter_mut() {
        let seen = collect(ws, "/cluster/room", sent.len()).await;
        exactly_once(
            &seen,
            &sent,
            &format!("subscriber on node {i} after the kill"),
        );
    }

    // Nothing stored was lost; the dead node leaves the membership by itself.
    for n in &nodes {
        let read = Browser::new(n)
            .get(&format!("/genesys/1/storage/{data_id}"))
            .await;
        assert_eq!(read.status, 200);
        assert_eq!(read.json["k"], "survives");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let listing = Browser::new(&nodes[0]).get("/genesys/1/node").await.json;
        if listing["nodes"].as_array().unwrap().len() == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead node is still listed: {listing}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs one Bayeux batch on an in-process engine; returns its replies and
/// whatever a connect carried.
fn run(server: &std::sync::Arc<bayeux::Bayeux>, batch: Value) -> Vec<Value> {
    let parsed = bayeux::message::parse_batch(batch.to_string().as_bytes()).expect("batch");
    let ctx = bayeux::RequestContext {
        transport: bayeux::Transport::LongPolling,
        browser: None,
        bound: None,
        user: None,
        peer: None,
    };
    let outcome = server.handle_batch(parsed, &ctx);
    let mut parts = outcome.replies;
    if let Some(held) = outcome.connect {
        held.complete(&mut parts);
    }
    parts
        .iter()
        .map(|b| serde_json::from_slice(b).expect("JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_reaches_the_node_that_holds_a_session() {
    use gmshub::cluster::RedisBus;
    let redis = RedisServer::start();
    let engine = |node: &str| {
        bayeux::Bayeux::new(bayeux::BayeuxConfig {
            client_id_prefix: format!("{node}."),
            ..Default::default()
        })
    };
    let (a, b) = (engine("a"), engine("b"));
    let bus_a = RedisBus::start(&redis.url(), "t", "a", &a, 1 << 20)
        .await
        .unwrap();
    let bus_b = RedisBus::start(&redis.url(), "t", "b", &b, 1 << 20)
        .await
        .unwrap();
    a.set_relay(bus_a.clone());
    b.set_relay(bus_b.clone());

    let hs = run(
        &b,
        json!([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}]),
    );
    let id = hs[0]["clientId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("b."), "{id}");
    let connect =
        json!([{"channel": "/meta/connect", "clientId": id, "connectionType": "long-polling"}]);
    run(&b, connect.clone());
    run(
        &b,
        json!([{"channel": "/meta/subscribe", "clientId": id, "subscription": "/news"}]),
    );

    // An event for the session, sent from node a; a broadcast from a's server API.
    let data = serde_json::value::RawValue::from_string(r#"{"for":"you"}"#.into()).unwrap();
    assert!(
        bus_a.deliver(&id, "/service/private", &data),
        "sent towards node b"
    );
    a.publish(
        "/news",
        &serde_json::value::RawValue::from_string(r#"{"headline":1}"#.into()).unwrap(),
    )
    .unwrap();
    assert!(
        !bus_a.deliver("no-node-in-this-id", "/x", &data),
        "a clientId without a node"
    );

    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bus deliveries: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        got.extend(
            run(&b, connect.clone())
                .into_iter()
                .filter(|m| m["channel"] != "/meta/connect"),
        );
    }
    assert!(
        got.iter()
            .any(|m| m["channel"] == "/service/private" && m["data"]["for"] == "you"),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|m| m["channel"] == "/news" && m["data"]["headline"] == 1),
        "{got:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again: Vec<Value> = run(&b, connect)
        .into_iter()
        .filter(|m| m["channel"] != "/meta/connect")
        .collect();
    assert!(again.is_empty(), "delivered once: {again:?}");
}

/// A chat customer over raw Bayeux on a WebSocket: subscribed to the chat
/// channel, publishing chat requests, reading chat payloads.
struct ChatClient {
    ws: Ws,
    id: String,
    n: u32,
}

const CHAT: &str = "/service/chatV2/customer-support";

impl ChatClient {
    async fn open(server: &Server) -> ChatClient {
        let (ws, id) = subscriber(server, CHAT).await;
        ChatClient { ws, id, n: 0 }
    }

    async fn request(&mut self, data: Value) {
        self.n += 1;
        let msg = json!([{"channel": CHAT, "clientId": self.id, "data": data, "id": format!("p{}", self.n)}]);
        self.ws.send(msg).await;
    }

    /// Chat payloads (deliveries with data) until `done` holds for the
    /// collected list.
    async fn payloads_until(&mut self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&got) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.ws.next(left).await {
                Frame::Messages(msgs) => got.extend(
                    msgs.into_iter()
                        .filter(|m| m["channel"] == CHAT && m.get("data").is_some())
                        .map(|m| m["data"].clone()),
                ),
                Frame::Ping => {}
                other => panic!("waiting for chat payloads: {other:?} after {got:?}"),
            }
        }
        got
    }
}

fn chat_events(payloads: &[Value]) -> Vec<Value> {
    payloads
        .iter()
        .flat_map(|p| p["messages"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_survives_the_death_of_the_customers_node() {
    let redis = RedisServer::start();
    let mut nodes: Vec<Server> = (0..2).map(|_| node(&redis)).collect();
    let agent_node = nodes.pop().unwrap();
    let mut customer_node = nodes.pop().unwrap();

    // The customer on node A over CometD.
    let mut customer = ChatClient::open(&customer_node).await;
    customer
        .request(json!({"operation": "requestChat", "nickname": "Jane"}))
        .await;
    let first = customer.payloads_until(|p| !p.is_empty()).await;
    let key = first[0]["secureKey"].as_str().unwrap().to_owned();
    let chat_id = first[0]["chatId"].as_str().unwrap().to_owned();

    // The agent on node B, over REST: its events reach node A through the bus.
    let http = reqwest::Client::new();
    let login: Value = http
        .post(agent_node.url("/gmshub/agent/login"))
        .json(&json!({"agent": "agent", "password": "agent"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let agent = |path: &str, body: Value| {
        http.post(agent_node.url(&format!("/gmshub/agent{path}")))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    agent("/ready", json!({"capacity": 1})).await.unwrap();
    let taken: Value = agent(&format!("/chats/{chat_id}/accept"), json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(taken["state"], "connected", "{taken}");
    agent(
        &format!("/chats/{chat_id}/send"),
        json!({"message": "hello from node B"}),
    )
    .await
    .unwrap();
    let got = customer
        .payloads_until(|p| {
            chat_events(p)
                .iter()
                .any(|m| m["text"] == "hello from node B")
        })
        .await;
    let mut seen: Vec<u64> = chat_events(&first)
        .iter()
        .chain(chat_events(&got).iter())
        .map(|m| m["index"].as_u64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, [1, 2, 3], "join, agent join, message: once each");
    let position = seen.last().unwrap() + 1;

    // Node A dies; the agent keeps writing on node B.
    customer_node.signal("KILL");
    customer_node.wait(WAIT).expect("killed");
    for text in ["one", "two", "three"] {
        let r = agent(&format!("/chats/{chat_id}/send"), json!({"message": text}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    // The widget comes back through the load balancer, on node B, and
    // resumes from the last position it saw: exactly the missed events.
    let mut resumed = ChatClient::open(&agent_node).await;
    resumed
        .request(json!({"operation": "requestNotifications", "secureKey": key, "transcriptPosition": position}))
        .await;
    let back = resumed.payloads_until(|p| !p.is_empty()).await;
    let texts: Vec<String> = chat_events(&back)
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(texts, ["one", "two", "three"], "{back:?}");
    assert_eq!(back[0]["statusCode"], 0);

    // And the conversation goes on in real time, both ways, each event once.
    resumed
        .request(json!({"operation": "sendMessage", "secureKey": key, "message": "I am back"}))
        .await;
    let mine = resumed
        .payloads_until(|p| chat_events(p).iter().any(|m| m["text"] == "I am back"))
        .await;
    agent(
        &format!("/chats/{chat_id}/send"),
        json!({"message": "welcome back"}),
    )
    .await
    .unwrap();
    let theirs = resumed
        .payloads_until(|p| chat_events(p).iter().any(|m| m["text"] == "welcome back"))
        .await;
    let indexes: Vec<u64> = chat_events(&mine)
        .iter()
        .chain(chat_events(&theirs).iter())
        .map(|m| m["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [position + 3, position + 4], "{mine:?} {theirs:?}");
}

/// `comet` notifications in a cluster: to a `gms_user` with dots in it (an
/// e-mail address) whose session is on another node, and to a clientId of a
/// node that is not there. Delivered means the session's node queued it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comet_push_reaches_users_on_other_nodes_and_counts_only_what_arrived() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis), node(&redis));
    let user = "jane.doe@example.com";
    let jane = Browser::with_headers(&a, &[("gms_user", user)]);
    let id = jane.session().await;
    jane.subscribe(&id, json!("/_genesys")).await;

    let http = reqwest::Client::new();
    let subscribe = |filter: &str, device: &str| {
        http.post(b.url("/genesys/1/notification/subscription"))
            .json(&json!({"subscriberId": "s", "filter": filter, "expire": 60,
                          "notificationDetails": {"deviceId": device, "type": "comet"}}))
            .send()
    };
    let ghost = format!("gone-node.{}", "ab".repeat(20));
    assert_eq!(subscribe("to.jane", user).await.unwrap().status(), 200);
    assert_eq!(subscribe("to.ghost", &ghost).await.unwrap().status(), 200);
    // The user's session is known to every node once stored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for tag in ["to.jane", "to.ghost"] {
        let r = http
            .post(b.url("/genesys/1/notification/publish"))
            .json(&json!({"tag": tag, "message": format!("for {tag}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.is_empty() && tokio::time::Instant::now() < deadline {
        got.extend(
            jane.send(json!([{"channel": "/meta/connect", "clientId": id,
                "connectionType": "long-polling", "advice": {"timeout": 500}}]))
                .await
                .into_iter()
                .filter(|m| m["channel"] == "/_genesys"),
        );
    }
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["data"]["message"], "for to.jane");

    // Node b counts one delivery (jane's), and retries the ghost's.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let node: Value = json_of(http.get(b.url("/genesys/1/node"))).await;
        let comet = &node["push"]["comet"];
        if comet["retried"].as_u64().unwrap_or(0) >= 1 {
            assert_eq!(comet["delivered"], 1, "{comet}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{comet}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two nodes may not share a node id: their clientIds and the bus would
/// mix them up. The second is refused at start, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_with_the_same_id_is_refused() {
    let redis = RedisServer::start();
    let env = [
        ("GMSHUB__STORE__TYPE", "redis".to_owned()),
        ("GMSHUB__REDIS__URL", redis.url()),
        ("GMSHUB__CLUSTER__ENABLED", "true".into()),
        ("GMSHUB__CLUSTER__HEARTBEAT_INTERVAL", "300".into()),
        ("GMSHUB__SERVER__NODE_ID", "twin".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = Server::start(&env);
    let data = tempfile::tempdir().unwrap();
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_gmshub"));
    second
        .args(["--listen", "127.0.0.1:0"])
        .env("GMSHUB__SQLITE__PATH", data.path().join("x.db"));
    for (k, v) in &env {
        second.env(k, v);
    }
    let mut child = second
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the twin started");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("node id twin") && err.contains(&first.addr.to_string()),
        "{err}"
    );
    // The first one is untouched.
    let node: Value = reqwest::get(first.url("/genesys/1/node"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(node["nodes"].as_array().unwrap().len(), 1, "{node}");

    // A node that restarts with its id (its old record still there) starts.
    drop(first);
    let again = Server::start(&env);
    assert_eq!(
        reqwest::get(again.url("/genesys/1/node"))
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A node that cannot reach its store answers the load balancer's probe
/// with 503, so traffic goes to the nodes that can serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_its_store_answers_503() {
    let redis = RedisServer::start();
    let n = node(&redis);
    let probe = || async {
        let r = reqwest::get(n.url("/genesys/1/node")).await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(probe().await.0, 200);
    drop(redis);
    let (status, body) = probe().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["storeReachable"], false, "{body}");
    assert_eq!(
        body["status"], "ONLINE",
        "the operator's status is unchanged"
    );
}

/// A series' value in a node's `/metrics` (0 when absent).
async fn metric(server: &Server, series: &str) -> f64 {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_counts_what_it_carries_in_each_nodes_metrics() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis), node(&redis));
    let (mut ws, _) = subscriber(&b, "/cluster/room").await;
    let sent = publish_from(&a, "m", 5).await;
    let seen = collect(&mut ws, "/cluster/room", sent.len()).await;
    exactly_once(&seen, &sent, "b's subscriber");
    // Each broadcast is put on the bus once by A and taken off once by B.
    assert_eq!(metric(&a, "gmshub_bus_published_total").await, 5.0);
    assert_eq!(metric(&b, "gmshub_bus_received_total").await, 5.0);
    assert_eq!(metric(&b, "gmshub_bus_published_total").await, 0.0);
    for node in [&a, &b] {
        assert_eq!(
            metric(node, "gmshub_bus_dropped_total{reason=\"missed\"}").await,
            0.0
        );
        assert_eq!(metric(node, "gmshub_bus_reconnects_total").await, 0.0);
    }
    assert_eq!(
        metric(&b, "gmshub_bayeux_sessions{transport=\"websocket\"}").await,
        1.0
    );
}
