//! End to end over HTTP long-polling and callback-polling: the real binary,
//! raw Bayeux JSON, every meta channel and advice field, the errors, session
//! expiry, the ack extension, and several tabs of one browser.

mod common;

use std::time::{Duration, Instant};

use common::{deliveries, reply, Browser, Server};
use serde_json::{json, Value};

/// A short hold so the tests run in seconds; sessions still live 3 s
/// without a connect, so a slow machine does not expire them mid-test.
const FAST: &[(&str, &str)] = &[
    ("GMSHUB__COMETD__TIMEOUT", "1500"),
    ("GMSHUB__COMETD__MAXINTERVAL", "3000"),
    ("GMSHUB__COMETD__SWEEPPERIOD", "100"),
];

#[tokio::test]
async fn handshake_reply_has_every_field_and_sets_the_browser_cookie() {
    let server = Server::start(FAST);
    let browser = Browser::new(&server);
    let a = browser
        .post_raw(
            "/genesys/cometd/handshake",
            "application/json",
            json!([{
                "channel": "/meta/handshake", "version": "1.0", "minimumVersion": "1.0",
                "supportedConnectionTypes": ["websocket", "long-polling", "callback-polling"],
                "id": "42", "unknownField": {"tolerated": true}
            }])
            .to_string(),
        )
        .await;
    assert_eq!(a.status, 200);
    let r = &a.json[0];
    assert_eq!(r["channel"], "/meta/handshake");
    assert_eq!(r["successful"], true);
    assert_eq!(r["id"], "42");
    assert_eq!(r["version"], "1.0");
    assert_eq!(r["minimumVersion"], "1.0");
    assert_eq!(
        r["supportedConnectionTypes"],
        json!(["websocket", "long-polling", "callback-polling"])
    );
    let id = r["clientId"].as_str().unwrap();
    assert!(
        id.len() >= 32,
        "clientId carries at least 128 random bits: {id}"
    );
    assert_eq!(
        r["advice"],
        json!({"reconnect": "retry", "interval": 0, "timeout": 1500, "maxInterval": 3000})
    );
    let cookie = a.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("BAYEUX_BROWSER="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/"),
        "{cookie}"
    );
    // A second handshake from the same browser keeps its cookie.
    let again = browser
        .post_raw(
            "/cometd",
            "application/json",
            r#"{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}"#,
        )
        .await;
    assert_eq!(again.json[0]["successful"], true);
    assert!(again.headers.get("set-cookie").is_none());
    assert_ne!(again.json[0]["clientId"], r["clientId"]);
}

#[tokio::test]
async fn connect_is_answered_at_once_first_then_held_until_timeout_or_message() {
    let server = Server::start(FAST);
    let alice = Browser::new(&server);
    let bob = Browser::new(&server);
    let a = alice.handshake().await;

    let started = Instant::now();
    let first = alice.connect(&a).await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "first connect is not held"
    );
    let r = reply(&first, "/meta/connect");
    assert_eq!(r["successful"], true);
    assert_eq!(r["id"], "c");
    assert_eq!(
        r["advice"],
        json!({"reconnect": "retry", "interval": 0, "timeout": 1500, "maxInterval": 3000})
    );

    // Nothing to deliver: held for `timeout`.
    let started = Instant::now();
    let held = alice.connect(&a).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "held only {waited:?}"
    );
    assert!(waited < Duration::from_millis(3000), "held {waited:?}");
    assert_eq!(reply(&held, "/meta/connect")["successful"], true);

    // A message wakes a held connect early (bob's session is made now, so it
    // cannot expire while alice's connects are held).
    let b = bob.session().await;
    let r = alice.subscribe(&a, json!("/room/1")).await;
    assert_eq!(r["successful"], true, "{r}");
    let waiting = {
        let alice = alice.clone();
        let a = a.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            (alice.connect(&a).await, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        bob.publish(&b, "/room/1", json!({"n": 1})).await["successful"],
        true
    );
    let (got, waited) = waiting.await.unwrap();
    assert!(
        waited < Duration::from_millis(1200),
        "not woken early: {waited:?}"
    );
    assert_eq!(
        deliveries(&got),
        vec![json!({"channel": "/room/1", "data": {"n": 1}})]
    );

    // A client may ask for a shorter hold.
    let started = Instant::now();
    let quick = alice
        .send(
            json!([{"channel": "/meta/connect", "clientId": a, "connectionType": "long-polling",
                      "advice": {"timeout": 0}}]),
        )
        .await;
    assert!(started.elapsed() < Duration::from_millis(1000));
    assert_eq!(reply(&quick, "/meta/connect")["successful"], true);
}

#[tokio::test]
async fn subscribe_publish_unsubscribe_with_wildcards_and_no_client_id_leak() {
    let server = Server::start(FAST);
    let alice = Browser::new(&server);
    let bob = Browser::new(&server);
    let a = alice.session().await;
    let b = bob.session().await;

    // One channel or a list; the reply echoes what was sent.
    let r = alice.subscribe(&a, json!("/chat/room1")).await;
    assert_eq!(r["successful"], true);
    assert_eq!(r["subscription"], "/chat/room1");
    assert_eq!(r["id"], "s");
    let r = alice.subscribe(&a, json!(["/news/*", "/deep/**"])).await;
    assert_eq!(r["successful"], true);
    assert_eq!(r["subscription"], json!(["/news/*", "/deep/**"]));
    // Overlapping patterns: one delivery, not two.
    alice.subscribe(&a, json!("/chat/*")).await;

    let p = bob.publish(&b, "/chat/room1", json!({"text": "hi"})).await;
    assert_eq!(
        p,
        json!({"channel": "/chat/room1", "id": "p", "successful": true})
    );
    bob.publish(&b, "/news/today", json!(1)).await;
    bob.publish(&b, "/news/today/late", json!("not for /news/*"))
        .await;
    bob.publish(&b, "/deep/a/b/c", json!([1, 2])).await;

    let got = deliveries(&alice.connect(&a).await);
    assert_eq!(
        got,
        vec![
            json!({"channel": "/chat/room1", "data": {"text": "hi"}}),
            json!({"channel": "/news/today", "data": 1}),
            json!({"channel": "/deep/a/b/c", "data": [1, 2]}),
        ]
    );
    // Nothing of the publisher travels with a delivery.
    for m in &got {
        assert!(m.get("clientId").is_none() && m.get("id").is_none(), "{m}");
        assert!(
            !m.to_string().contains(&b),
            "publisher's clientId leaked: {m}"
        );
    }

    let r = alice
        .send(json!([{"channel": "/meta/unsubscribe", "clientId": a,
                      "subscription": ["/chat/room1", "/chat/*"], "id": "u"}]))
        .await;
    assert_eq!(r[0]["successful"], true);
    assert_eq!(r[0]["subscription"], json!(["/chat/room1", "/chat/*"]));
    bob.publish(&b, "/chat/room1", json!("gone")).await;
    bob.publish(&b, "/news/x", json!("kept")).await;
    let got = deliveries(&alice.connect(&a).await);
    assert_eq!(got, vec![json!({"channel": "/news/x", "data": "kept"})]);
}

#[tokio::test]
async fn a_publisher_receives_its_own_broadcast_and_a_batch_is_answered_in_order() {
    let server = Server::start(FAST);
    let alice = Browser::new(&server);
    let a = alice.session().await;
    let replies = alice
        .send(json!([
            {"channel": "/meta/subscribe", "clientId": a, "subscription": "/self", "id": "1"},
            {"channel": "/self", "clientId": a, "data": "one", "id": "2"},
            {"channel": "/self", "clientId": a, "data": "two", "id": "3"},
            {"channel": "/meta/connect", "clientId": a, "connectionType": "long-polling", "id": "4"},
        ]))
        .await;
    let ids: Vec<&Value> = replies.iter().filter_map(|m| m.get("id")).collect();
    assert_eq!(ids, vec!["1", "2", "3", "4"]);
    assert!(replies
        .iter()
        .filter(|m| m.get("successful").is_some())
        .all(|m| m["successful"] == true));
    // A connect batched with other messages is answered at once, carrying them.
    assert_eq!(
        deliveries(&replies),
        vec![
            json!({"channel": "/self", "data": "one"}),
            json!({"channel": "/self", "data": "two"})
        ]
    );
}

#[tokio::test]
async fn disconnect_ends_the_session_and_releases_its_held_connect() {
    let server = Server::start(FAST);
    let alice = Browser::new(&server);
    let a = alice.session().await;
    let held = {
        let alice = alice.clone();
        let a = a.clone();
        tokio::spawn(async move { alice.connect(&a).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = alice
        .send(json!([{"channel": "/meta/disconnect", "clientId": a, "id": "d"}]))
        .await;
    assert_eq!(
        r[0],
        json!({"channel": "/meta/disconnect", "id": "d", "successful": true})
    );
    let released = held.await.unwrap();
    let c = reply(&released, "/meta/connect");
    assert_eq!(c["successful"], true);
    assert_eq!(c["advice"]["reconnect"], "none");
    // Gone for good: a connect now must handshake again.
    let after = alice.connect(&a).await;
    let c = reply(&after, "/meta/connect");
    assert_eq!(c["successful"], false);
    assert_eq!(c["error"], "402::session_unknown");
    assert_eq!(
        c["advice"],
        json!({"reconnect": "handshake", "interval": 0})
    );
}

#[tokio::test]
async fn errors_use_cometd_strings() {
    let server = Server::start(FAST);
    let alice = Browser::new(&server);
    let a = alice.session().await;
    let one = |m: Value| {
        let alice = alice.clone();
        async move { alice.send(json!([m])).await[0].clone() }
    };

    // Unknown clientId: 402 everywhere; handshake advice on connect only.
    let r = one(
        json!({"channel": "/meta/connect", "clientId": "nope", "connectionType": "long-polling"}),
    )
    .await;
    assert_eq!(
        (r["successful"].clone(), r["error"].clone()),
        (json!(false), json!("402::session_unknown"))
    );
    assert_eq!(
        r["advice"],
        json!({"reconnect": "handshake", "interval": 0})
    );
    let r =
        one(json!({"channel": "/meta/subscribe", "clientId": "nope", "subscription": "/a"})).await;
    assert_eq!(r["error"], "402::session_unknown");
    assert!(r.get("advice").is_none());
    let r = one(json!({"channel": "/a", "clientId": "nope", "data": 1})).await;
    assert_eq!(r["error"], "402::session_unknown");
    let r = one(json!({"channel": "/a", "data": 1})).await;
    assert_eq!(
        r["error"], "402::session_unknown",
        "publish without handshake"
    );

    let cases = [
        (
            json!({"clientId": a, "data": 1, "id": "x"}),
            "400::channel_missing",
        ),
        (
            json!({"channel": "/a//b", "clientId": a, "data": 1}),
            "405::channel_invalid",
        ),
        (
            json!({"channel": "no-slash", "clientId": a, "data": 1}),
            "405::channel_invalid",
        ),
        (
            json!({"channel": "/a/*", "clientId": a, "data": 1}),
            "405::channel_invalid",
        ),
        (
            json!({"channel": "/meta/foo", "clientId": a, "data": 1}),
            "403:meta_channel:publish_denied",
        ),
        (json!({"channel": "/a", "clientId": a}), "400::data_missing"),
        (
            json!({"channel": "/a", "clientId": a, "data": 1, "id": {"no": 1}}),
            "405::message_id_invalid",
        ),
        (json!({"channel": 5, "id": "bad"}), "400::message_invalid"),
        (
            json!({"channel": "/meta/subscribe", "clientId": a}),
            "403::subscription_missing",
        ),
        (
            json!({"channel": "/meta/subscribe", "clientId": a, "subscription": []}),
            "403::subscription_missing",
        ),
        (
            json!({"channel": "/meta/subscribe", "clientId": a, "subscription": "/foo/*/bar"}),
            "403::subscription_invalid",
        ),
        (
            json!({"channel": "/meta/subscribe", "clientId": a, "subscription": "/**/foo"}),
            "403::subscription_invalid",
        ),
        (
            json!({"channel": "/meta/subscribe", "clientId": a, "subscription": "/meta/connect"}),
            "403::subscription_invalid",
        ),
        (
            json!({"channel": "/meta/unsubscribe", "clientId": a, "subscription": "bad"}),
            "403::subscription_invalid",
        ),
        (
            json!({"channel": "/meta/connect", "clientId": a, "connectionType": "flash"}),
            "400::connection_type_unsupported",
        ),
    ];
    for (message, error) in cases {
        let r = one(message.clone()).await;
        assert_eq!(r["successful"], false, "{message}");
        assert_eq!(r["error"], error, "{message} gave {r}");
    }
    // The id of a message that could not be read is still echoed.
    assert_eq!(one(json!({"channel": 5, "id": "bad"})).await["id"], "bad");

    // A handshake offering only transports the server lacks.
    let r = one(json!({"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["flash", "iframe"]})).await;
    assert_eq!(r["successful"], false);
    assert_eq!(r["error"], "400::connection_type_unsupported");
    assert_eq!(r["advice"]["reconnect"], "none");
    assert_eq!(
        r["supportedConnectionTypes"],
        json!(["websocket", "long-polling", "callback-polling"])
    );

    // Bodies that are not Bayeux at all.
    for (body, status) in [("{not json", 400), ("[]", 400), ("", 400), ("42", 400)] {
        let a = alice
            .post_raw("/genesys/cometd", "application/json", body)
            .await;
        assert_eq!(a.status, status, "{body:?}");
        assert_eq!(a.json[0]["error"], "400::message_invalid", "{body:?}");
    }
    let big = format!(
        r#"[{{"channel":"/a","clientId":"{a}","data":"{}"}}]"#,
        "x".repeat(70 * 1024)
    );
    let r = alice
        .post_raw("/genesys/cometd", "application/json", big)
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json[0]["error"], "413::message_too_large");
    // And the session survived all of it.
    assert_eq!(
        alice.publish(&a, "/still/alive", json!(true)).await["successful"],
        true
    );
}

#[tokio::test]
async fn a_handshake_travels_alone() {
    let server = Server::start(FAST);
    let alice = Browser::new(&server);
    let replies = alice
        .send(json!([
            {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]},
            {"channel": "/meta/subscribe", "subscription": "/x"},
        ]))
        .await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["channel"], "/meta/handshake");
}

#[tokio::test]
async fn sessions_expire_after_max_interval_without_connect() {
    let server = Server::start(&[
        ("GMSHUB__COMETD__TIMEOUT", "1500"),
        ("GMSHUB__COMETD__MAXINTERVAL", "1000"),
        ("GMSHUB__COMETD__SWEEPPERIOD", "100"),
    ]);
    let alice = Browser::new(&server);
    let idle = alice.handshake().await;
    let active = alice.session().await;
    // `active` keeps connecting (each connect is held 1.5 s, past the 1 s
    // maxInterval), `idle` never connects.
    let keep = {
        let alice = alice.clone();
        let active = active.clone();
        tokio::spawn(async move {
            for _ in 0..2 {
                let r = alice.connect(&active).await;
                assert_eq!(reply(&r, "/meta/connect")["successful"], true);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let r = Browser::clone(&alice).connect(&idle).await;
    assert_eq!(reply(&r, "/meta/connect")["error"], "402::session_unknown");
    keep.await.unwrap();
    let r = alice.publish(&active, "/x", json!(1)).await;
    assert_eq!(r["successful"], true, "a connecting session stays alive");
}

#[tokio::test]
async fn ack_extension_redelivers_what_a_lost_response_carried() {
    let server = Server::start(FAST);
    let alice = Browser::new(&server);
    let bob = Browser::new(&server);
    let b = bob.session().await;
    let hs = alice
        .send(json!([{"channel": "/meta/handshake", "version": "1.0",
                      "supportedConnectionTypes": ["long-polling"], "ext": {"ack": true}}]))
        .await;
    assert_eq!(hs[0]["ext"]["ack"], json!({"enabled": true, "batch": 0}));
    let a = hs[0]["clientId"].as_str().unwrap().to_owned();
    let connect = |ack: u64| {
        let alice = alice.clone();
        let a = a.clone();
        async move {
            alice
                .send(json!([{"channel": "/meta/connect", "clientId": a, "connectionType": "long-polling",
                              "ext": {"ack": ack}, "advice": {"timeout": 0}}]))
                .await
        }
    };
    let first = connect(0).await;
    let b1 = reply(&first, "/meta/connect")["ext"]["ack"]
        .as_u64()
        .unwrap();
    alice.subscribe(&a, json!("/acked")).await;
    for n in 1..=2 {
        bob.publish(&b, "/acked", json!(n)).await;
    }
    let carried = connect(b1).await;
    let b2 = reply(&carried, "/meta/connect")["ext"]["ack"]
        .as_u64()
        .unwrap();
    assert!(b2 > b1);
    assert_eq!(deliveries(&carried).len(), 2);
    // That response never reached the client: it acknowledges b1 again.
    bob.publish(&b, "/acked", json!(3)).await;
    let again = connect(b1).await;
    let b3 = reply(&again, "/meta/connect")["ext"]["ack"]
        .as_u64()
        .unwrap();
    let data: Vec<Value> = deliveries(&again)
        .iter()
        .map(|m| m["data"].clone())
        .collect();
    assert_eq!(
        data,
        vec![json!(1), json!(2), json!(3)],
        "resent in order, then the new one"
    );
    // Acknowledged: nothing comes twice.
    let after = connect(b3).await;
    assert!(deliveries(&after).is_empty(), "{after:?}");
}

#[tokio::test]
async fn two_tabs_of_one_browser_share_the_cookie_and_the_second_polls() {
    let server = Server::start(FAST);
    let browser = Browser::new(&server);
    let other = Browser::new(&server);
    let tab1 = browser.session().await;
    let tab2 = browser.session().await;
    let o = other.session().await;
    for tab in [&tab1, &tab2] {
        browser.subscribe(tab, json!("/tabs")).await;
    }
    // Tab 1 holds the browser's one long-poll.
    let held = {
        let browser = browser.clone();
        let tab1 = tab1.clone();
        tokio::spawn(async move { browser.connect(&tab1).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let r = browser.connect(&tab2).await;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "second tab is not held"
    );
    let c = reply(&r, "/meta/connect");
    assert_eq!(c["successful"], true);
    assert_eq!(c["advice"]["multiple-clients"], true);
    assert_eq!(c["advice"]["interval"], 2000);
    assert_eq!(c["advice"]["reconnect"], "retry");
    // Both tabs still get every message.
    other.publish(&o, "/tabs", json!("to both")).await;
    let got1 = deliveries(&held.await.unwrap());
    let got2 = deliveries(&browser.connect(&tab2).await);
    assert_eq!(got1, vec![json!({"channel": "/tabs", "data": "to both"})]);
    assert_eq!(got2, got1);
}

#[tokio::test]
async fn a_client_id_without_its_browser_cookie_is_unknown() {
    let server = Server::start(FAST);
    let owner = Browser::new(&server);
    let thief = Browser::new(&server);
    let id = owner.session().await;
    let r = thief.connect(&id).await;
    assert_eq!(reply(&r, "/meta/connect")["error"], "402::session_unknown");
    let r = thief.publish(&id, "/x", json!(1)).await;
    assert_eq!(r["error"], "402::session_unknown");
}

#[tokio::test]
async fn a_full_queue_ends_the_session_visibly() {
    let mut env = FAST.to_vec();
    env.push(("GMSHUB__COMETD__MAXQUEUE", "400"));
    let server = Server::start(&env);
    let slow = Browser::new(&server);
    let fast = Browser::new(&server);
    let s = slow.session().await;
    let f = fast.session().await;
    slow.subscribe(&s, json!("/flood")).await;
    for n in 0..20 {
        fast.publish(&f, "/flood", json!({"n": n, "pad": "0123456789"}))
            .await;
    }
    let r = slow.connect(&s).await;
    assert_eq!(reply(&r, "/meta/connect")["error"], "402::session_unknown");
    assert_eq!(
        reply(&r, "/meta/connect")["advice"]["reconnect"],
        "handshake"
    );
}

#[tokio::test]
async fn form_encoded_messages_sub_paths_and_the_echo_service() {
    let server = Server::start(FAST);
    let alice = Browser::new(&server);
    let hs = json!([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}]);
    let body = format!("message={}", urlencode(&hs.to_string()));
    let a = alice
        .post_raw(
            "/cometd/handshake",
            "application/x-www-form-urlencoded",
            body,
        )
        .await;
    assert_eq!(a.json[0]["successful"], true, "{}", a.text);
    let id = a.json[0]["clientId"].as_str().unwrap().to_owned();
    // Two `message` fields, one an object and one an array, in one request.
    let m1 = json!({"channel": "/meta/connect", "clientId": id, "connectionType": "long-polling"});
    let m2 = json!([{"channel": "/service/echo", "clientId": id, "data": {"ping": 7}, "id": "e"}]);
    let body = format!(
        "message={}&message={}",
        urlencode(&m1.to_string()),
        urlencode(&m2.to_string())
    );
    let r = alice
        .post_raw(
            "/genesys/cometd/connect",
            "application/x-www-form-urlencoded",
            body,
        )
        .await;
    let msgs = r.json.as_array().unwrap();
    assert_eq!(reply(msgs, "/service/echo")["successful"], true);
    assert_eq!(reply(msgs, "/meta/connect")["successful"], true);
    // The echo is delivered to this session only, on the service channel.
    let echoed = deliveries(msgs);
    let echoed = if echoed.is_empty() {
        deliveries(&alice.connect(&id).await)
    } else {
        echoed
    };
    // It carries the request's id, so a CometD remoteCall matches it.
    assert_eq!(
        echoed,
        vec![json!({"channel": "/service/echo", "id": "e", "data": {"ping": 7}})]
    );
}

#[tokio::test]
async fn callback_polling_wraps_replies_in_the_named_function() {
    let server = Server::start(FAST);
    let alice = Browser::new(&server);
    let hs = json!([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["callback-polling"]}]);
    let a = alice
        .get(&format!(
            "/genesys/cometd?jsonp=cb_1&message={}",
            urlencode(&hs.to_string())
        ))
        .await;
    assert_eq!(a.status, 200);
    assert!(a.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let inner = a
        .text
        .strip_prefix("/**/cb_1(")
        .and_then(|t| t.strip_suffix(");"))
        .expect(&a.text);
    let r: Value = serde_json::from_str(inner).unwrap();
    assert_eq!(r[0]["successful"], true);
    // Default callback name, per Bayeux.
    let a = alice
        .get(&format!(
            "/genesys/cometd/handshake?message={}",
            urlencode(&hs.to_string())
        ))
        .await;
    assert!(a.text.starts_with("/**/jsonpcallback(["), "{}", a.text);
    // A callback that is not a plain name is refused.
    let a = alice
        .get(&format!(
            "/genesys/cometd?jsonp=alert(1)&message={}",
            urlencode(&hs.to_string())
        ))
        .await;
    assert_eq!(a.status, 400);
    // A GET that is neither WebSocket nor JSONP.
    assert_eq!(alice.get("/genesys/cometd").await.status, 400);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
