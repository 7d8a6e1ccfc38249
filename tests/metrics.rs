//! `/metrics` after a scripted run against the real binary: a broadcast
//! over CometD, a chat, an agent made ready, a callback booked and pushes to
//! a stand-in receiver (delivered, retried, gone). The exposition is read
//! with a Prometheus text-format parser, every counter the run moved has the
//! exact value the run implies, and no label value is an id the run made.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::chat::{Agent, Customer};
use common::receiver::Receiver;
use common::{call, Browser, Server};
use serde_json::{json, Value};

const CONFIG: &str = "\
[push]
pushEnabled = comet,httpcb
httpcb.allowed-urls = http://127.0.0.1:*
[callback]
scheduler-interval = 100
[service.cb]
_service = callback
_type = ors
[chat]
_client_timeout = 8
";

/// The exposition, parsed: series name and sorted labels to value.
struct Scraped {
    text: String,
    values: BTreeMap<String, f64>,
}

impl Scraped {
    async fn from(s: &Server) -> Scraped {
        let r = reqwest::get(s.url("/metrics")).await.expect("scrape");
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        let text = r.text().await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let parsed = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
        let mut values = BTreeMap::new();
        for sample in parsed.samples {
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.last().map_or(0.0, |b| b.count)
                }
                prometheus_parse::Value::Summary(_) => continue,
            };
            let mut labels: Vec<String> = sample
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.sort();
            values.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
        }
        Scraped { text, values }
    }

    /// The value of `name{labels}` (labels as `k=v`, in any order).
    fn get(&self, name: &str, labels: &[&str]) -> f64 {
        let mut labels: Vec<&str> = labels.to_vec();
        labels.sort();
        let key = format!("{name}{{{}}}", labels.join(","));
        *self
            .values
            .get(&key)
            .unwrap_or_else(|| panic!("no series {key} in\n{}", self.text))
    }
}

/// Scrapes until `ready` holds (a background task's figure), at most 15 s.
async fn scrape_until(s: &Server, ready: impl Fn(&Scraped) -> bool) -> Scraped {
    for _ in 0..150 {
        let scraped = Scraped::from(s).await;
        if ready(&scraped) {
            return scraped;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("metrics never settled:\n{}", Scraped::from(s).await.text);
}

#[tokio::test]
async fn a_scripted_run_gives_exact_counts_and_no_ids() {
    let (receiver, base) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = common::with_config(&dir, CONFIG, &[]);

    // A broadcast: A subscribes, B publishes, A's connect takes it.
    let (a, b) = (Browser::new(&s), Browser::new(&s));
    let a_id = a.session().await;
    a.subscribe(&a_id, json!("/demo/news")).await;
    let b_id = b.handshake().await;
    b.publish(&b_id, "/demo/news", json!({"n": 1})).await;
    assert_eq!(common::deliveries(&a.connect(&a_id).await).len(), 1);

    // A chat, with a message, and the development agent ready.
    let customer = Customer::start(&s, "Ann").await;
    customer.op("send", &[("message", "hello")]).await;
    let agent = Agent::login(&s, "agent", "agent").await;
    agent.post("/ready", json!({})).await;

    // A callback booked now: QUEUED at once.
    let (status, dialog) = call(
        &s,
        "POST",
        "/genesys/1/service/callback/cb",
        Some(json!({"_customer_number": "+1 650 253 0000", "_call_direction": "USERTERMINATED"})),
    )
    .await;
    assert_eq!(status, 200, "{dialog}");

    // Pushes: one delivered, one delivered after two retries, one gone.
    let mut ids = vec![a_id.clone(), b_id.clone(), customer.chat_id.clone()];
    ids.push(customer.secure_key.clone());
    ids.push(dialog["_id"].as_str().unwrap().to_owned());
    for target in ["ok", "flaky", "gone"] {
        let (status, v) = call(
            &s,
            "POST",
            "/genesys/1/notification/subscription",
            Some(json!({"subscriberId": "app", "filter": "t.1",
                        "notificationDetails": {"deviceId": format!("{base}/cb/{target}"), "type": "httpcb"}})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let (status, _) = call(
        &s,
        "POST",
        "/genesys/1/notification/publish",
        Some(json!({"tag": "t.1", "message": "hi"})),
    )
    .await;
    assert_eq!(status, 200);
    receiver.wait("/cb/flaky", 3).await;

    // The transcript says which events the chat wrote.
    let transcript = customer.op("refresh", &[]).await;
    let mut events: BTreeMap<String, f64> = BTreeMap::new();
    for m in transcript["messages"].as_array().unwrap() {
        *events
            .entry(m["type"].as_str().unwrap().to_owned())
            .or_default() += 1.0;
    }

    let m = scrape_until(&s, |m| {
        m.values.get("gmshub_push_queue_depth{}") == Some(&0.0)
            && m.values.get("gmshub_chats{state=queued}") == Some(&1.0)
    })
    .await;

    // Bayeux: two handshakes; A's handshake, subscribe and two connects,
    // B's handshake; one broadcast in, queued once, delivered once.
    assert_eq!(
        m.get("gmshub_bayeux_handshakes_total", &["outcome=accepted"]),
        2.0
    );
    assert_eq!(
        m.get("gmshub_bayeux_handshakes_total", &["outcome=refused"]),
        0.0
    );
    assert_eq!(
        m.get("gmshub_bayeux_messages_in_total", &["kind=meta"]),
        5.0
    );
    assert_eq!(
        m.get("gmshub_bayeux_messages_in_total", &["kind=broadcast"]),
        1.0
    );
    assert_eq!(
        m.get("gmshub_bayeux_messages_out_total", &["kind=meta"]),
        5.0
    );
    assert_eq!(
        m.get("gmshub_bayeux_messages_out_total", &["kind=broadcast"]),
        1.0
    );
    assert_eq!(m.get("gmshub_bayeux_deliveries_total", &[]), 1.0);
    assert_eq!(
        m.get("gmshub_bayeux_sessions", &["transport=long-polling"]),
        2.0
    );
    assert_eq!(
        m.get("gmshub_bayeux_sessions", &["transport=websocket"]),
        0.0
    );
    assert_eq!(m.get("gmshub_bayeux_held_connects", &[]), 0.0);
    assert_eq!(
        m.get("gmshub_bayeux_sessions_removed_total", &["reason=expired"]),
        0.0
    );

    // Push by type and outcome.
    let push = |outcome: &str| {
        m.get(
            "gmshub_push_notifications_total",
            &["type=httpcb", &format!("outcome={outcome}")],
        )
    };
    assert_eq!(
        (push("delivered"), push("retried"), push("gone")),
        (2.0, 2.0, 1.0)
    );
    // Each attempt timed: three first tries and two retries.
    assert_eq!(
        m.get("gmshub_push_duration_seconds_count", &["type=httpcb"]),
        5.0
    );

    // Chat events as the transcript has them; the open chat is queued.
    for (kind, n) in &events {
        assert_eq!(
            m.get("gmshub_chat_events_total", &[&format!("type={kind}")]),
            *n,
            "{kind}"
        );
    }
    assert!(events["Message"] >= 1.0);
    assert_eq!(m.get("gmshub_agents_ready", &[]), 1.0);
    assert_eq!(
        m.get("gmshub_callbacks_total", &["service=cb", "state=QUEUED"]),
        1.0
    );

    // HTTP by route template and status.
    let http = |route: &str, method: &str, status: &str| {
        m.get(
            "gmshub_http_requests_total",
            &[
                &format!("route={route}"),
                &format!("method={method}"),
                &format!("status={status}"),
            ],
        )
    };
    assert_eq!(
        http("/genesys/1/notification/subscription", "POST", "200"),
        3.0
    );
    assert_eq!(http("/genesys/1/notification/publish", "POST", "200"), 1.0);
    assert_eq!(http("/genesys/cometd", "POST", "200"), 6.0);
    assert_eq!(http("/gmshub/agent/login", "POST", "200"), 1.0);

    // The store: operations counted, none failed.
    assert!(
        m.get(
            "gmshub_store_operations_total",
            &["backend=sqlite", "operation=update"]
        ) >= 1.0
    );
    assert!(!m.text.contains("gmshub_store_errors_total{"), "{}", m.text);
    // The process.
    assert!(m.get("process_resident_memory_bytes", &[]) > 1e6);
    assert!(m.get("process_open_fds", &[]) > 0.0);

    // No label value is an id this run made, or a path that holds one.
    for id in &ids {
        assert!(!m.text.contains(id.as_str()), "{id} is in the exposition");
    }
    assert!(
        !m.text.contains("/cb/"),
        "a device URL is in the exposition"
    );
}

#[tokio::test]
async fn metrics_are_the_back_offices() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::with_config(&dir, "[server]\nadmin-networks = 192.0.2.0/24\n", &[]);
    let r = reqwest::get(s.url("/metrics")).await.unwrap();
    assert_eq!(
        r.status(),
        403,
        "loopback is not a back-office network here"
    );
    let body: Value = r.json().await.unwrap();
    assert!(body["exception"].as_str().unwrap().contains("Forbidden"));
}

/// The names a text uses that look like gmshub's series.
fn series_named_in(text: &str) -> std::collections::BTreeSet<String> {
    let re = regex::Regex::new(r"gmshub_[a-z_]+").unwrap();
    re.find_iter(text)
        .map(|m| {
            let name = m.as_str();
            // A histogram's series are its name plus these.
            ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name)
                .to_owned()
        })
        .collect()
}

#[test]
fn the_dashboard_and_the_readme_name_exactly_the_exported_series() {
    let exported: std::collections::BTreeSet<String> = gmshub::observe::SERIES
        .iter()
        .map(|(name, ..)| name.to_string())
        .collect();
    let root = env!("CARGO_MANIFEST_DIR");
    let dashboard =
        std::fs::read_to_string(format!("{root}/deploy/grafana-dashboard.json")).unwrap();
    let parsed: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().unwrap().len() >= 10);
    let unknown: Vec<_> = series_named_in(&dashboard)
        .difference(&exported)
        .cloned()
        .collect();
    assert!(
        unknown.is_empty(),
        "the dashboard uses {unknown:?}, which gmshub does not export"
    );
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let in_readme = series_named_in(&readme);
    let undocumented: Vec<_> = exported.difference(&in_readme).collect();
    assert!(
        undocumented.is_empty(),
        "README.md does not list {undocumented:?}"
    );
    let unknown: Vec<_> = in_readme.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "README.md lists {unknown:?}, which gmshub does not export"
    );
}
