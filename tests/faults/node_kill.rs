//! A node SIGKILLed in the middle of a service's work, two nodes on one
//! Redis; the survivor carries on with what the dead one held, because
//! every service keeps its state in the store:
//! - a Chat API v2 chat over REST, and a v1 chat: the customer goes on
//!   through the other node, refresh from its last position gives exactly
//!   what it missed, and each side's transcript has every message once;
//! - notifications: subscriptions made on the dead node still reach every
//!   device, once, through the survivor.
//!
//! Elsewhere: a Chat v2 CometD chat whose customer's node dies
//! (`tests/cluster.rs`), a callback scheduled on a node that dies
//! (`tests/callback.rs`), the chat widget's resume in Chromium
//! (`tests/interop`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::chat::{Agent, Customer};
use crate::common::redis::RedisServer;
use crate::common::{call, Server};
use crate::tarpit::{healthy_receiver, subscribe};

fn node(redis: &RedisServer, id: &str, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("GMSHUB__STORE__TYPE", "redis"),
        ("GMSHUB__CLUSTER__ENABLED", "true"),
        ("GMSHUB__SERVER__NODE_ID", id),
        ("GMSHUB__CLUSTER__HEARTBEAT_INTERVAL", "300"),
    ];
    let url = redis.url();
    env.push(("GMSHUB__REDIS__URL", &url));
    env.extend_from_slice(extra);
    Server::start(&env)
}

fn kill(mut server: Server) {
    server.signal("KILL");
    server.wait(Duration::from_secs(10)).expect("killed");
}

/// The texts of the chat v2 `Message` events of `messages`, in order.
fn texts(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["type"] == "Message")
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_chat_goes_on_through_another_node_when_its_node_dies() {
    let redis = RedisServer::start();
    let (first, second) = (node(&redis, "ka", &[]), node(&redis, "kb", &[]));
    let mut customer = Customer::start(&first, "Ann").await;
    let agent = Agent::login(&second, "agent", "agent").await;
    agent.post("/ready", json!({"capacity": 1})).await;
    let (status, taken) = agent.post("/chats/next", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    assert_eq!(taken["chatId"], customer.chat_id.as_str());
    let chat = format!("/chats/{}", customer.chat_id);
    for i in 0..3 {
        let v = customer.op("send", &[("message", &format!("c{i}"))]).await;
        assert_eq!(v["statusCode"], 0, "{v}");
        agent
            .post(&format!("{chat}/send"), json!({"message": format!("a{i}")}))
            .await;
    }
    let seen = customer.op("refresh", &[("transcriptPosition", "1")]).await;
    assert_eq!(
        texts(&seen["messages"]),
        ["c0", "a0", "c1", "a1", "c2", "a2"]
    );
    let position = seen["nextPosition"].as_u64().expect("nextPosition");

    kill(first);
    for i in 3..5 {
        let (status, v) = agent
            .post(&format!("{chat}/send"), json!({"message": format!("a{i}")}))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    customer.through(&second);
    let missed = customer
        .op("refresh", &[("transcriptPosition", &position.to_string())])
        .await;
    assert_eq!(missed["statusCode"], 0, "{missed}");
    assert_eq!(
        texts(&missed["messages"]),
        ["a3", "a4"],
        "exactly what it missed"
    );
    let v = customer.op("send", &[("message", "c3")]).await;
    assert_eq!(v["statusCode"], 0, "{v}");
    let (_, transcript) = agent.get(&chat).await;
    assert_eq!(
        texts(&transcript["messages"]),
        ["c0", "a0", "c1", "a1", "c2", "a2", "a3", "a4", "c3"]
    );
}

async fn v1(s: &Server, path: &str, form: &[(&str, &str)]) -> Value {
    let r = reqwest::Client::new()
        .post(s.url(path))
        .header("gms_user", "u1")
        .form(form)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.expect("JSON")
}

/// The texts of a v1 transcript's `Message.Text` entries, in order.
fn v1_texts(resource: &Value) -> Vec<String> {
    resource["transcriptToShow"]
        .as_array()
        .expect("transcript")
        .iter()
        .filter(|e| e[0] == "Message.Text")
        .map(|e| e[2].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_chat_goes_on_through_another_node_when_its_node_dies() {
    let redis = RedisServer::start();
    let (first, second) = (node(&redis, "va", &[]), node(&redis, "vb", &[]));
    let service = v1(&first, "/genesys/1/service/request-chat", &[]).await;
    let path = format!(
        "/genesys/1/service/{}/ixn/chat",
        service["_id"].as_str().expect("_id")
    );
    let started = v1(&first, &path, &[("firstName", "Jo"), ("lastName", "Doe")]).await;
    let chat_id = started["chatSessionId"].as_str().expect("chat").to_owned();
    let agent = Agent::login(&second, "agent", "agent").await;
    agent.post("/ready", json!({})).await;
    let (_, taken) = agent.post("/chats/next", json!({})).await;
    assert_eq!(taken["chatId"], chat_id.as_str());
    let chat = format!("/chats/{chat_id}");
    v1(&first, &format!("{path}/send"), &[("message", "c0")]).await;
    agent
        .post(&format!("{chat}/send"), json!({"message": "a0"}))
        .await;
    let seen = v1(
        &first,
        &format!("{path}/refresh"),
        &[("transcriptPosition", "1")],
    )
    .await;
    assert_eq!(v1_texts(&seen), ["c0", "a0"]);
    let position = seen["transcriptPosition"].as_u64().expect("position");

    kill(first);
    agent
        .post(&format!("{chat}/send"), json!({"message": "a1"}))
        .await;
    let missed = v1(
        &second,
        &format!("{path}/refresh"),
        &[("transcriptPosition", &position.to_string())],
    )
    .await;
    assert_eq!(
        v1_texts(&missed),
        ["a1"],
        "exactly what it missed: {missed}"
    );
    v1(&second, &format!("{path}/send"), &[("message", "c1")]).await;
    let (_, transcript) = agent.get(&chat).await;
    assert_eq!(texts(&transcript["messages"]), ["c0", "a0", "a1", "c1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_made_on_a_node_that_dies_are_served_by_the_survivor() {
    let (received, base) = healthy_receiver().await;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gmshub.ini");
    // The devices listen on loopback, which a pattern must allow.
    std::fs::write(
        &config,
        "[push]\npushEnabled = httpcb\nhttpcb.allowed-urls = http://127.0.0.1:*\n",
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let extra = [("GMSHUB_CONFIG", config.as_str())];
    let (first, second) = (node(&redis, "na", &extra), node(&redis, "nb", &extra));
    for device in 0..3 {
        subscribe(&first, "offers", &format!("{base}/dev/{device}")).await;
    }
    kill(first);
    let publish = json!({"tag": "offers", "message": "note-after-the-kill"});
    let (status, v) = call(
        &second,
        "POST",
        "/genesys/1/notification/publish",
        Some(publish),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["subscriptions"], 3, "{v}");
    for _ in 0..200 {
        if received.lock().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut got: Vec<String> = received
        .lock()
        .keys()
        .map(|(path, _)| path.clone())
        .collect();
    got.sort();
    assert_eq!(got, ["dev/0", "dev/1", "dev/2"], "each device once");
}
