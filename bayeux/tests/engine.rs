//! The engine's server-side API, security policy and extension interfaces,
//! exercised without HTTP: batches go straight into `Bayeux::handle_batch`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bayeux::channel::ChannelName;
use bayeux::ext::timesync::Timesync;
use bayeux::ext::{Broadcast, Extension};
use bayeux::message::{parse_batch, Incoming};
use bayeux::security::SecurityPolicy;
use bayeux::{
    Bayeux, BayeuxConfig, RemoveReason, RequestContext, ServiceHandler, ServiceRequest, Session,
    Transport,
};
use serde_json::value::RawValue;
use serde_json::{json, Value};

const BROWSER: &str = "b1";

fn ctx() -> RequestContext<'static> {
    RequestContext {
        transport: Transport::LongPolling,
        browser: Some(BROWSER),
        bound: None,
        user: None,
        peer: None,
    }
}

/// Runs one batch; returns the replies and, for a connect, what it carried.
fn run(server: &Arc<Bayeux>, batch: Value) -> Vec<Value> {
    let parsed = parse_batch(batch.to_string().as_bytes()).expect("batch");
    let outcome = server.handle_batch(parsed, &ctx());
    let mut parts = outcome.replies;
    if let Some(held) = outcome.connect {
        held.complete(&mut parts);
    }
    parts
        .iter()
        .map(|b| serde_json::from_slice(b).expect("reply JSON"))
        .collect()
}

fn session(server: &Arc<Bayeux>) -> String {
    let r = run(
        server,
        json!([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}]),
    );
    r[0]["clientId"].as_str().expect("clientId").to_owned()
}

struct Policy;

impl SecurityPolicy for Policy {
    fn can_handshake(&self, message: &Incoming, _ctx: &RequestContext<'_>) -> Result<(), String> {
        match message.ext_object().and_then(|e| e.get("token").cloned()) {
            Some(Value::String(t)) if t == "secret" => Ok(()),
            _ => Err("bad_token".into()),
        }
    }

    fn can_subscribe(&self, _s: &Session, channel: &ChannelName) -> bool {
        !channel.as_str().starts_with("/private")
    }

    fn can_publish(&self, _s: &Session, channel: &ChannelName, _m: &Incoming) -> bool {
        channel.as_str() != "/readonly"
    }

    fn can_create(&self, _s: &Session, channel: &ChannelName) -> bool {
        channel.as_str() != "/never"
    }
}

#[tokio::test]
async fn security_policy_decides_handshake_subscribe_publish_and_create() {
    let server = Bayeux::new(BayeuxConfig::default());
    server.set_security_policy(Arc::new(Policy));
    let denied = run(
        &server,
        json!([{"channel": "/meta/handshake", "version": "1.0", "ext": {"token": "wrong"}}]),
    );
    assert_eq!(denied[0]["successful"], false);
    assert_eq!(denied[0]["error"], "403:bad_token:handshake_denied");
    assert_eq!(denied[0]["advice"]["reconnect"], "none");

    let ok = run(
        &server,
        json!([{"channel": "/meta/handshake", "version": "1.0", "ext": {"token": "secret"}}]),
    );
    let id = ok[0]["clientId"].as_str().unwrap();
    let s = server.session(id).expect("session");
    let ext: Value = serde_json::from_str(s.handshake_ext().unwrap().get()).unwrap();
    assert_eq!(ext["token"], "secret");

    let r = run(
        &server,
        json!([{"channel": "/meta/subscribe", "clientId": id, "subscription": "/private/x"}]),
    );
    assert_eq!(
        r[0]["error"],
        "403:denied_by_security_policy:subscribe_denied"
    );
    let r = run(
        &server,
        json!([{"channel": "/meta/subscribe", "clientId": id, "subscription": "/never"}]),
    );
    assert_eq!(
        r[0]["error"],
        "403:denied_by_security_policy:channel_create_denied"
    );
    let r = run(
        &server,
        json!([{"channel": "/readonly", "clientId": id, "data": 1}]),
    );
    assert_eq!(
        r[0]["error"],
        "403:denied_by_security_policy:publish_denied"
    );
    let r = run(
        &server,
        json!([{"channel": "/open", "clientId": id, "data": 1}]),
    );
    assert_eq!(r[0]["successful"], true);
}

struct DropSecrets;

impl Extension for DropSecrets {
    fn incoming(&self, _s: Option<&Session>, message: &mut Incoming) -> bool {
        message.channel.as_deref() != Some("/secret")
    }

    fn outgoing_broadcast(&self, channel: &str, data: &RawValue) -> Broadcast {
        if channel != "/stamped" {
            return Broadcast::Keep;
        }
        let mut v: Value = serde_json::from_str(data.get()).unwrap();
        v["stamped"] = json!(true);
        Broadcast::Replace(RawValue::from_string(v.to_string()).unwrap())
    }
}

#[tokio::test]
async fn extensions_see_incoming_messages_replies_and_broadcasts() {
    let server = Bayeux::new(BayeuxConfig::default());
    server.add_extension(Arc::new(DropSecrets));
    server.add_extension(Arc::new(Timesync));
    let id = session(&server);
    let r = run(
        &server,
        json!([{"channel": "/secret", "clientId": id, "data": 1, "id": "9"}]),
    );
    assert_eq!(r[0]["error"], "404::message_deleted");
    assert_eq!(r[0]["id"], "9");

    run(
        &server,
        json!([{"channel": "/meta/subscribe", "clientId": id, "subscription": "/stamped"}]),
    );
    run(
        &server,
        json!([{"channel": "/stamped", "clientId": id, "data": {"a": 1}}]),
    );
    let r = run(
        &server,
        json!([{"channel": "/meta/connect", "clientId": id, "connectionType": "long-polling",
                "ext": {"timesync": {"tc": 1000, "l": 5, "o": -3}}}]),
    );
    assert_eq!(
        r[0],
        json!({"channel": "/stamped", "data": {"a": 1, "stamped": true}})
    );
    let sync = &r[1]["ext"]["timesync"];
    assert_eq!(sync["tc"], 1000);
    let ts = sync["ts"].as_i64().unwrap();
    assert!(ts > 1_700_000_000_000, "server wall time in ms: {ts}");
    assert!(sync["p"].as_i64().unwrap() >= 0);
    assert_eq!(sync["a"].as_i64().unwrap(), 1000 - 3 + 5 - ts);
}

struct Upper;

impl ServiceHandler for Upper {
    fn handle(&self, server: &Arc<Bayeux>, session: &Arc<Session>, request: &ServiceRequest<'_>) {
        let text = request.data.get().to_uppercase();
        let reply = RawValue::from_string(text).unwrap();
        server.deliver(session, "/service/upper", &reply).unwrap();
    }
}

#[tokio::test]
async fn server_side_api_publish_deliver_lookup_and_removal() {
    let server = Bayeux::new(BayeuxConfig::default());
    let removed = Arc::new(AtomicUsize::new(0));
    let seen = removed.clone();
    server.on_session_removed(Arc::new(move |_s, reason| {
        assert_eq!(reason, RemoveReason::Server);
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    server
        .add_service("/service/upper", Arc::new(Upper))
        .unwrap();
    assert!(server
        .add_service("/not/a/service", Arc::new(Upper))
        .is_err());

    let a = session(&server);
    let b = session(&server);
    run(
        &server,
        json!([{"channel": "/meta/subscribe", "clientId": a, "subscription": "/news/**"}]),
    );
    let data = RawValue::from_string(r#"{"headline":"x"}"#.into()).unwrap();
    assert_eq!(server.publish("/news/today", &data).unwrap(), 1);
    assert!(server.publish("/news/*", &data).is_err());
    assert!(server.publish("/meta/connect", &data).is_err());

    // A service request: answered to the requester only.
    let r = run(
        &server,
        json!([{"channel": "/service/upper", "clientId": b, "data": "hi", "id": "u"}]),
    );
    assert_eq!(r[0]["successful"], true);
    let connect = |id: &str| json!([{"channel": "/meta/connect", "clientId": id, "connectionType": "long-polling"}]);
    let got_b = run(&server, connect(&b));
    assert_eq!(got_b[0], json!({"channel": "/service/upper", "data": "HI"}));
    let got_a = run(&server, connect(&a));
    assert_eq!(
        got_a[0],
        json!({"channel": "/news/today", "data": {"headline": "x"}})
    );
    assert_eq!(got_a.len(), 2, "no service reply leaked to another session");

    let s = server.session(&a).expect("lookup");
    assert_eq!(s.subscriptions().len(), 1);
    server.disconnect(&s);
    assert!(server.session(&a).is_none());
    assert_eq!(removed.load(Ordering::SeqCst), 1);
    assert_eq!(
        server.channel_count(),
        0,
        "the removed session's subscriptions are gone"
    );
    assert_eq!(server.session_count(), 1);

    // Counted: what came in and went out, by kind, and what is left.
    let stats = server.stats();
    assert_eq!((stats.handshakes, stats.handshakes_refused), (2, 0));
    // Two handshakes, a subscribe, two connects; one service request.
    assert_eq!(stats.messages_in, [5, 0, 1]);
    // Five meta replies, one broadcast queued, one service answer.
    assert_eq!(stats.messages_out, [5, 1, 1]);
    assert_eq!(stats.deliveries, 2);
    assert_eq!(stats.removed(RemoveReason::Server), 1);
    assert_eq!(stats.sessions(Transport::LongPolling), 1);
    assert_eq!(stats.held_connects, 0);
}

#[tokio::test]
async fn every_connect_of_a_batch_gets_a_reply() {
    let server = Bayeux::new(BayeuxConfig::default());
    let id = session(&server);
    let connect =
        json!({"channel": "/meta/connect", "clientId": id, "connectionType": "long-polling"});
    let mut first = connect.clone();
    first["id"] = json!("1");
    let mut second = connect;
    second["id"] = json!("2");
    let r = run(&server, json!([first, second]));
    let ids: Vec<&Value> = r.iter().map(|m| &m["id"]).collect();
    assert_eq!(ids, vec!["1", "2"]);
    assert!(r.iter().all(|m| m["successful"] == true), "{r:?}");
}

#[tokio::test]
async fn subscriptions_per_session_are_a_bounded_set() {
    let server = Bayeux::new(BayeuxConfig {
        max_subscriptions: 3,
        ..BayeuxConfig::default()
    });
    let id = session(&server);
    let subscribe = |channels: Value| {
        run(
            &server,
            json!([{"channel": "/meta/subscribe", "clientId": id, "subscription": channels}]),
        )
    };
    assert_eq!(subscribe(json!(["/a", "/b", "/a"]))[0]["successful"], true);
    // Subscribing again to what the session holds costs nothing.
    assert_eq!(subscribe(json!("/a"))[0]["successful"], true);
    assert_eq!(subscribe(json!("/c"))[0]["successful"], true);
    // All or none: /d and /e would make five.
    let r = subscribe(json!(["/d", "/e"]));
    assert_eq!(r[0]["error"], "403::too_many_subscriptions");
    let s = server.session(&id).unwrap();
    assert_eq!(s.subscriptions().len(), 3);
    run(
        &server,
        json!([{"channel": "/meta/unsubscribe", "clientId": id, "subscription": "/a"}]),
    );
    assert_eq!(subscribe(json!("/d"))[0]["successful"], true);
}

#[tokio::test]
async fn a_handshake_ext_is_kept_as_sent_and_bounded() {
    let server = Bayeux::new(BayeuxConfig {
        max_handshake_ext: 100,
        ..BayeuxConfig::default()
    });
    let handshake = |ext: Value| {
        run(
            &server,
            json!([{"channel": "/meta/handshake", "version": "1.0",
                    "supportedConnectionTypes": ["long-polling"], "ext": ext}]),
        )
    };
    let big = handshake(json!({"pad": "x".repeat(100)}));
    assert_eq!(big[0]["successful"], false);
    assert_eq!(big[0]["error"], "403:ext_too_large:handshake_denied");
    let small = handshake(json!({"token": "t"}));
    let s = server
        .session(small[0]["clientId"].as_str().unwrap())
        .unwrap();
    assert_eq!(s.handshake_ext().unwrap().get(), r#"{"token":"t"}"#);
}

#[tokio::test]
async fn a_publishers_ext_reaches_subscribers_only_when_configured() {
    for forward in [true, false] {
        let server = Bayeux::new(BayeuxConfig {
            forward_publisher_ext: forward,
            ..BayeuxConfig::default()
        });
        let id = session(&server);
        run(
            &server,
            json!([{"channel": "/meta/subscribe", "clientId": id, "subscription": "/room"}]),
        );
        run(
            &server,
            json!([{"channel": "/room", "clientId": id, "data": 1, "ext": {"role": "admin"}}]),
        );
        let r = run(
            &server,
            json!([{"channel": "/meta/connect", "clientId": id, "connectionType": "long-polling"}]),
        );
        assert_eq!(r[0]["channel"], "/room");
        assert_eq!(r[0].get("ext").is_some(), forward, "{}", r[0]);
    }
}

#[tokio::test]
async fn a_batch_carries_at_most_max_batch_publishes() {
    let server = Bayeux::new(BayeuxConfig {
        max_batch_publishes: 3,
        ..BayeuxConfig::default()
    });
    let id = session(&server);
    let mut batch: Vec<Value> = (0..5)
        .map(|i| json!({"channel": "/a", "clientId": id, "data": i, "id": format!("p{i}")}))
        .collect();
    // Meta messages do not count.
    batch.insert(
        0,
        json!({"channel": "/meta/subscribe", "clientId": id, "subscription": "/a"}),
    );
    let r = run(&server, Value::Array(batch));
    let refused: Vec<&Value> = r
        .iter()
        .filter(|m| m["error"] == "403::too_many_publishes")
        .collect();
    assert_eq!(refused.len(), 2, "{r:?}");
    assert_eq!(
        (refused[0]["id"].as_str(), refused[1]["id"].as_str()),
        (Some("p3"), Some("p4"))
    );
    let accepted = r
        .iter()
        .filter(|m| m["channel"] == "/a" && m["successful"] == true);
    assert_eq!(accepted.count(), 3);
}

/// As in CometD, any message of a session other than a connect keeps it
/// alive for another `maxInterval`: a session that only publishes over its
/// socket (connects answered and never renewed) is not swept while it talks.
#[tokio::test]
async fn a_session_that_talks_without_connecting_lives_on() {
    let server = Bayeux::new(BayeuxConfig {
        max_interval: std::time::Duration::from_millis(300),
        ..BayeuxConfig::default()
    });
    let id = session(&server);
    let publish = json!([{"channel": "/talk", "clientId": id, "data": {}}]);
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert_eq!(run(&server, publish.clone())[0]["successful"], true);
        server.sweep();
    }
    assert!(server.session(&id).is_some(), "swept while it published");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    server.sweep();
    assert!(server.session(&id).is_none(), "silent, it expires");
}

#[tokio::test]
async fn a_spread_shutdown_ends_sessions_in_slices_and_refuses_handshakes_at_once() {
    let server = Bayeux::new(BayeuxConfig::default());
    let ids: Vec<String> = (0..20).map(|_| session(&server)).collect();
    let left = |server: &Arc<Bayeux>| ids.iter().filter(|id| server.session(id).is_some()).count();
    let stopping = {
        let server = server.clone();
        tokio::spawn(async move {
            server
                .shutdown_over(std::time::Duration::from_millis(500))
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    let hello = json!([{"channel": "/meta/handshake", "version": "1.0",
                        "supportedConnectionTypes": ["long-polling"]}]);
    assert_eq!(
        run(&server, hello)[0]["successful"],
        false,
        "refused from the start"
    );
    let midway = left(&server);
    assert!(midway > 0 && midway < 20, "{midway} of 20 left midway");
    stopping.await.unwrap();
    assert_eq!(left(&server), 0);
}
