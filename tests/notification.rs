//! The Notification API and push delivery end to end: subscriptions over
//! the API, events published, and the exact requests the HTTP providers'
//! receivers get (customhttp, httpcb), the CometD delivery on `/_genesys`,
//! retries for retryable answers only, dead targets removed, debug and named
//! providers, unsubscribe-delay, and every bad input as a GMS error.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::receiver::Receiver;
use common::{call, Browser, Server};
use serde_json::{json, Value};

/// gmshub with customhttp (a production and a debug URL, and a named
/// provider `acme`), httpcb and comet on.
fn server(base: &str, dir: &tempfile::TempDir, extra: &[(&str, &str)]) -> Server {
    let config = format!(
        "[push]\npushEnabled = comet,customhttp,httpcb,orscb\ncustomhttp.url = {base}/custom\norscb.url = {base}/ors\nhttpcb.allowed-urls = {base}/*\n\
         debug.customhttp.url = {base}/custom-debug\n\
         [push.provider.acme]\ncustomhttp.url = {base}/acme\n"
    );
    common::with_config(dir, &config, extra)
}

async fn subscribe(s: &Server, filter: &str, kind: &str, device: &str, extra: Value) -> String {
    let mut body = json!({
        "subscriberId": "app-42",
        "filter": filter,
        "notificationDetails": {"deviceId": device, "type": kind},
    });
    for (k, v) in extra.as_object().unwrap() {
        if k == "properties" {
            body["notificationDetails"]["properties"] = v.clone();
        } else {
            body[k] = v.clone();
        }
    }
    let (status, v) = call(
        s,
        "POST",
        "/genesys/1/notification/subscription",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn publish(s: &Server, tag: &str, message: Value) -> Value {
    let (status, v) = call(
        s,
        "POST",
        "/genesys/1/notification/publish",
        Some(json!({"tag": tag, "message": message})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn customhttp_debug_and_named_providers_get_the_exact_request() {
    let (r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(&base, &dir, &[]);
    let filter = "ors.contact.1";
    subscribe(
        &s,
        filter,
        "customhttp",
        "user-42",
        json!({"authorization": "Basic ZGVtbzo="}),
    )
    .await;
    subscribe(
        &s,
        filter,
        "customhttp",
        "user-debug",
        json!({"properties": {"debug": "true"}}),
    )
    .await;
    subscribe(
        &s,
        filter,
        "customhttp",
        "user-acme",
        json!({"providerName": "acme"}),
    )
    .await;
    subscribe(&s, "other.tag", "customhttp", "not-me", json!({})).await;

    let v = publish(&s, filter, json!("New message from agent")).await;
    assert_eq!(
        (v["subscriptions"].as_u64(), v["queued"].as_u64()),
        (Some(3), Some(3)),
        "{v}"
    );
    let prod = r.wait("/custom", 1).await;
    assert_eq!(
        serde_json::from_str::<Value>(&prod[0].body).unwrap(),
        json!({"deviceId": "user-42", "message": "New message from agent"})
    );
    assert_eq!(prod[0].authorization.as_deref(), Some("Basic ZGVtbzo="));
    assert!(prod[0]
        .content_type
        .as_deref()
        .unwrap()
        .starts_with("application/json"));
    let debug = r.wait("/custom-debug", 1).await;
    assert!(debug[0].body.contains("user-debug") && debug[0].authorization.is_none());
    let acme = r.wait("/acme", 1).await;
    assert!(acme[0].body.contains("user-acme"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(r.at("/custom").len(), 1, "once, and nothing for other tags");
    // A JSON message is passed as its text.
    publish(&s, filter, json!({"agent": "Ann", "text": "hi"})).await;
    let prod = r.wait("/custom", 2).await;
    let body: Value = serde_json::from_str(&prod[1].body).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(body["message"].as_str().unwrap()).unwrap(),
        json!({"agent": "Ann", "text": "hi"})
    );
}

#[tokio::test]
async fn httpcb_retries_only_what_may_succeed_and_drops_dead_urls() {
    let (r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(&base, &dir, &[]);
    let tag = "ors.callback.7";
    subscribe(&s, tag, "httpcb", &format!("{base}/cb/ok"), json!({})).await;
    subscribe(&s, tag, "httpcb", &format!("{base}/cb/flaky"), json!({})).await;
    subscribe(&s, tag, "httpcb", &format!("{base}/cb/bad"), json!({})).await;
    subscribe(&s, tag, "httpcb", &format!("{base}/cb/created"), json!({})).await;
    let gone = subscribe(&s, tag, "httpcb", &format!("{base}/cb/gone"), json!({})).await;

    publish(&s, tag, json!("it is time")).await;
    let ok = r.wait("/cb/ok", 1).await;
    assert_eq!(ok[0].body, "it is time", "the message as it is");
    assert_eq!(r.wait("/cb/flaky", 3).await.len(), 3, "503 twice, then 200");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(r.at("/cb/flaky").len(), 3, "delivered: no more tries");
    assert_eq!(r.at("/cb/bad").len(), 1, "400 is not retried");
    assert_eq!(
        r.at("/cb/created").len(),
        1,
        "201 is not 200, and not retried"
    );
    assert_eq!(r.at("/cb/gone").len(), 1);
    // The dead target lost its subscription.
    let (status, body) = call(
        &s,
        "GET",
        &format!("/genesys/1/notification/subscription/{gone}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// Subscribes `device` as an httpcb target of `tag`: the status and body.
async fn try_subscribe(s: &Server, tag: &str, device: &str) -> (StatusCode, Value) {
    let body = json!({"subscriberId": "x", "filter": tag,
                      "notificationDetails": {"deviceId": device, "type": "httpcb"}});
    call(
        s,
        "POST",
        "/genesys/1/notification/subscription",
        Some(body),
    )
    .await
}

#[tokio::test]
async fn httpcb_targets_cannot_reach_what_only_gmshub_reaches() {
    let (r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Patterns set ({base}/*): only they may be reached.
    let s = server(&base, &dir, &[]);
    for url in [
        "mailto:someone",
        "http://127.0.0.1:1/other",
        "http://169.254.169.254/latest/meta-data",
        "https://example.com/x",
    ] {
        let (status, body) = try_subscribe(&s, "t1", url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
    }
    // A redirect is not followed.
    subscribe(
        &s,
        "t2",
        "httpcb",
        &format!("{base}/cb/redirect"),
        json!({}),
    )
    .await;
    publish(&s, "t2", json!("x")).await;
    r.wait("/cb/redirect", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(r.at("/cb/redirected").is_empty(), "redirect followed");

    // No patterns: public URLs only, by the address a name resolves to.
    let dir = tempfile::tempdir().unwrap();
    let open = common::with_config(&dir, "[push]\npushEnabled = httpcb\n", &[]);
    let port = base.rsplit(':').next().unwrap();
    let (status, body) =
        try_subscribe(&open, "t3", &format!("http://127.0.0.1:{port}/cb/literal")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) =
        try_subscribe(&open, "t3", &format!("http://localhost:{port}/cb/by-name")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a name is checked when it is resolved: {body}"
    );
    let id = body["id"].as_str().unwrap().to_owned();
    publish(&open, "t3", json!("x")).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(r.at("/cb/by-name").is_empty(), "localhost reached");
    // Unreachable for good: the subscription is gone, not retried.
    let path = format!("/genesys/1/notification/subscription/{id}");
    assert_eq!(
        call(&open, "GET", &path, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn comet_subscribers_get_the_genesys_envelope() {
    let (_r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(&base, &dir, &[]);
    let browser = Browser::with_headers(&s, &[("gms_user", "u-77")]);
    let client_id = browser.session().await;
    browser.subscribe(&client_id, json!("/_genesys")).await;
    subscribe(&s, "chat.42", "comet", &client_id, json!({})).await;
    subscribe(&s, "user.events", "comet", "u-77", json!({})).await;

    publish(&s, "chat.42", json!({"event": "agentJoined"})).await;
    publish(&s, "user.events", json!("by user")).await;
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 2 {
        assert!(std::time::Instant::now() < deadline, "{got:?}");
        let msgs = browser
            .send(json!([{"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling", "advice": {"timeout": 1000}}]))
            .await;
        got.extend(
            msgs.into_iter()
                .filter(|m| m["channel"] == "/_genesys")
                .map(|m| m["data"].clone()),
        );
    }
    let by_tag = |tag: &str| got.iter().find(|d| d["tag"] == tag).cloned().unwrap();
    assert_eq!(
        by_tag("chat.42")["message"],
        json!({"event": "agentJoined"})
    );
    assert_eq!(by_tag("user.events")["message"], "by user");
    assert_eq!(by_tag("chat.42")["id"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn subscriptions_read_end_and_linger_for_unsubscribe_delay() {
    let (r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        &base,
        &dir,
        &[("GMSHUB__NOTIFICATION__UNSUBSCRIBE_DELAY", "2")],
    );
    let id = subscribe(
        &s,
        "t.1",
        "customhttp",
        "dev-1",
        json!({"expire": 120, "properties": {"lang": "fr"}}),
    )
    .await;
    let (status, v) = call(
        &s,
        "GET",
        &format!("/genesys/1/notification/subscription/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["filter"], "t.1");
    assert_eq!(v["notificationDetails"]["type"], "customhttp");
    assert_eq!(v["notificationDetails"]["properties"]["lang"], "fr");
    assert!((110..=120).contains(&v["expire"].as_u64().unwrap()), "{v}");

    let (status, _) = call(
        &s,
        "DELETE",
        &format!("/genesys/1/notification/subscription/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Within the delay, a racing publish still goes out.
    publish(&s, "t.1", json!("still")).await;
    r.wait("/custom", 1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let v = publish(&s, "t.1", json!("too late")).await;
    assert_eq!(v["subscriptions"], 0);
    let (status, _) = call(
        &s,
        "GET",
        &format!("/genesys/1/notification/subscription/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_bad_request_gets_a_gms_error() {
    let (_r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(&base, &dir, &[]);
    let sub = |details: Value| json!({"subscriberId": "a", "filter": "f", "notificationDetails": details});
    let cases = [
        (
            json!({"filter": "f", "notificationDetails": {"deviceId": "d", "type": "comet"}}),
            "subscriberId",
        ),
        (
            json!({"subscriberId": "a", "notificationDetails": {"deviceId": "d", "type": "comet"}}),
            "filter",
        ),
        (
            json!({"subscriberId": "a", "filter": "f"}),
            "notificationDetails",
        ),
        (sub(json!({"type": "comet"})), "deviceId"),
        (sub(json!({"deviceId": "d"})), "type"),
        (
            sub(json!({"deviceId": "d", "type": "pager"})),
            "unknown notification type",
        ),
        (sub(json!({"deviceId": "d", "type": "ios"})), "not enabled"),
        (
            json!({"subscriberId": "a", "filter": "f", "expire": 10, "notificationDetails": {"deviceId": "d", "type": "comet"}}),
            "at least 30",
        ),
        (
            json!({"subscriberId": "a", "filter": "f", "expire": 18_000_000_000_000_000u64, "notificationDetails": {"deviceId": "d", "type": "comet"}}),
            "at most 31536000",
        ),
        (
            json!({"subscriberId": "a", "filter": "f", "providerName": "nope", "notificationDetails": {"deviceId": "d", "type": "comet"}}),
            "no configured provider",
        ),
        (json!([1, 2]), "JSON object"),
    ];
    for (body, says) in cases {
        let (status, v) = call(
            &s,
            "POST",
            "/genesys/1/notification/subscription",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(says), "{body}: {v}");
        assert!(v["exception"].as_str().unwrap().contains("Notification"));
    }
    let client = reqwest::Client::new();
    let r = client
        .post(s.url("/genesys/1/notification/subscription"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for ct in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
    ] {
        let mut req = client
            .post(s.url("/genesys/1/notification/publish"))
            .body(r#"{"tag":"t","message":"m"}"#);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].is_string() && v["exception"].is_string());
    }
    let (status, v) = call(
        &s,
        "POST",
        "/genesys/1/notification/publish",
        Some(json!({"message": "m"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, _) = call(
        &s,
        "POST",
        "/genesys/1/notification/publish",
        Some(json!({"tag": "t"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&s, "GET", "/genesys/1/notification/subscription/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &s,
        "DELETE",
        "/genesys/1/notification/subscription/nope",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_chat_in_the_background_reaches_its_push_registration() {
    let (r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(&base, &dir, &[]);
    let channel = "/service/chatV2/customer-support";
    let customer = Browser::new(&s);
    let client_id = customer.session().await;
    customer.subscribe(&client_id, json!(channel)).await;
    customer
        .send(json!([{"channel": channel, "clientId": client_id, "data": {
            "operation": "requestChat", "nickname": "Mo",
            "userData": {"push_notification_deviceid": "dev-9", "push_notification_type": "customhttp"}}}]))
        .await;
    let mut chat_id = None;
    for _ in 0..20 {
        let got = customer
            .send(json!([{"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling", "advice": {"timeout": 500}}]))
            .await;
        if let Some(d) = got
            .iter()
            .find(|m| m["channel"] == channel && m["data"]["chatId"].is_string())
        {
            chat_id = d["data"]["chatId"].as_str().map(str::to_owned);
            break;
        }
    }
    let chat_id = chat_id.expect("requestChat answered");

    let http = reqwest::Client::new();
    let login: Value = http
        .post(s.url("/gmshub/agent/login"))
        .json(&json!({"agent": "agent", "password": "agent"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let agent = |path: String, body: Value| {
        http.post(s.url(&path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    agent("/gmshub/agent/ready".into(), json!({}))
        .await
        .unwrap();
    agent(format!("/gmshub/agent/chats/{chat_id}/accept"), json!({}))
        .await
        .unwrap();

    // The app goes to the background.
    customer
        .send(json!([{"channel": "/meta/disconnect", "clientId": client_id, "ext": {"transcriptPosition": "3"}}]))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent(
        format!("/gmshub/agent/chats/{chat_id}/start-typing"),
        json!({}),
    )
    .await
    .unwrap();
    agent(
        format!("/gmshub/agent/chats/{chat_id}/send"),
        json!({"message": "are you still there?"}),
    )
    .await
    .unwrap();
    let pushed = r.wait("/custom", 1).await;
    let body: Value = serde_json::from_str(&pushed[0].body).unwrap();
    assert_eq!(
        body,
        json!({"deviceId": "dev-9", "message": "Agent: are you still there?"})
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        r.at("/custom").len(),
        1,
        "typing is filtered (filtering_chat_events)"
    );
}

#[tokio::test]
async fn orscb_sends_the_event_into_the_ors_session() {
    let (r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(&base, &dir, &[]);
    subscribe(&s, "ors.cb", "orscb", "sess 1", json!({})).await;
    let ended = subscribe(&s, "ors.cb", "orscb", "ended", json!({})).await;
    publish(&s, "ors.cb", json!("customer ready")).await;
    let got = r
        .wait("/ors/scxml/session/sess 1/event/gms.notification", 1)
        .await;
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(got[0].body.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form.get("tag").map(String::as_str), Some("ors.cb"));
    assert_eq!(
        form.get("message").map(String::as_str),
        Some("customer ready")
    );
    assert!(got[0]
        .content_type
        .as_deref()
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));
    r.wait("/ors/scxml/session/ended/event/gms.notification", 1)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = call(
        &s,
        "GET",
        &format!("/genesys/1/notification/subscription/{ended}"),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a session that is gone loses its subscription"
    );
}

#[tokio::test]
async fn tokens_and_credentials_stay_out_of_the_log() {
    let (r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(&base, &dir, &[("RUST_LOG", "debug")]);
    let device = "secret-device-token-0123456789abcdef";
    let auth = "Bearer top-secret-authorization-value";
    let gone_url = format!("{base}/cb/gone?token=secret-url-token-xyz");
    let bad_url = format!("{base}/cb/bad?token=secret-url-token-abc");
    subscribe(
        &s,
        "t.secret",
        "customhttp",
        device,
        json!({"authorization": auth}),
    )
    .await;
    subscribe(&s, "t.secret", "httpcb", &gone_url, json!({})).await;
    subscribe(&s, "t.secret", "httpcb", &bad_url, json!({})).await;
    subscribe(
        &s,
        "t.secret",
        "comet",
        "no-such-session-secret-0123456789",
        json!({}),
    )
    .await;
    publish(&s, "t.secret", json!("hello")).await;
    r.wait("/custom", 1).await;
    r.wait("/cb/gone", 1).await;
    r.wait("/cb/bad", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = s.output();
    assert!(
        log.contains("device gone"),
        "the outcomes are logged: {log}"
    );
    for secret in [
        device,
        auth,
        "top-secret",
        "secret-url-token",
        "no-such-session-secret-0123456789",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[tokio::test]
async fn subscriptions_expire() {
    let (_r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(&base, &dir, &[]);
    // 30 s is GMS's floor and the default (defaultSubscriptionExpiration).
    let explicit = subscribe(&s, "t.exp", "customhttp", "dev-e1", json!({"expire": 30})).await;
    let default = subscribe(&s, "t.exp", "customhttp", "dev-e2", json!({})).await;
    let (_, v) = call(
        &s,
        "GET",
        &format!("/genesys/1/notification/subscription/{default}"),
        None,
    )
    .await;
    assert!((28..=30).contains(&v["expire"].as_u64().unwrap()), "{v}");
    tokio::time::sleep(Duration::from_millis(31_000)).await;
    for id in [&explicit, &default] {
        let (status, _) = call(
            &s,
            "GET",
            &format!("/genesys/1/notification/subscription/{id}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "expired");
    }
    assert_eq!(
        publish(&s, "t.exp", json!("late")).await["subscriptions"],
        0
    );
}

/// A graceful stop sends what push has queued before the process exits
/// (within `[sml] suspending-wait-timeout`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_sends_what_is_queued_first() {
    let (r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = server(&base, &dir, &[]);
    // One device: its ten notifications go one after the other, 200 ms each.
    subscribe(&s, "bye", "httpcb", &format!("{base}/slow/one"), json!({})).await;
    for i in 0..10 {
        publish(&s, "bye", json!(format!("m{i}"))).await;
    }
    s.signal("TERM");
    assert!(s.wait(Duration::from_secs(15)).is_some(), "exits");
    let got = r.at("/slow/one");
    let sent: Vec<&str> = got.iter().map(|g| g.body.as_str()).collect();
    assert_eq!(sent.len(), 10, "{sent:?}");
}

#[tokio::test]
async fn a_publish_to_many_dead_subscriptions_writes_one_line() {
    let (_r, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(&base, &dir, &[]);
    for n in 0..40 {
        subscribe(&s, "dead.tag", "comet", &format!("ghost-{n}"), json!({})).await;
    }
    let published = publish(&s, "dead.tag", json!("to nobody")).await;
    assert_eq!(published["subscriptions"], 40, "{published}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !s.output().contains("publish settled with failures") {
        assert!(std::time::Instant::now() < deadline, "{}", s.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = s.output();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("dead.tag")).collect();
    assert_eq!(lines.len(), 1, "one line for the publish: {lines:?}");
    assert!(lines[0].contains("failed=40"), "{}", lines[0]);
    assert!(!log.contains("push refused"), "no line per device: {log}");
}

#[tokio::test]
async fn a_listed_type_without_its_mandatory_option_is_refused_by_that_options_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::with_config(&dir, "[push]\npushEnabled = comet,ios\n", &[]);
    let (status, v) = call(
        &s,
        "POST",
        "/genesys/1/notification/subscription",
        Some(json!({"subscriberId": "app", "filter": "t",
                    "notificationDetails": {"deviceId": "abc123", "type": "ios"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["message"], "push type ios is off: [push] apple.topicName is not set",
        "{v}"
    );
    assert!(s.output().contains(
        "[push] pushEnabled lists ios, but [push] apple.topicName is not set: it is off"
    ));
}
