//! The Callback Services API end to end against the real binary: booking
//! (JSON and form), every check (numbers, dates, office hours, capacity per
//! time bucket, queue limits, customers already in queue), the scheduler,
//! query with negation, reschedule and cancel rules, the dialog (ready menu,
//! DialNumber, StartChat into a real chat), the router's API driving a
//! callback to COMPLETED, the admin views, the events each state change
//! sends (to an HTTP push receiver and to a CometD session, in order, once),
//! and two nodes on one Redis where the scheduling node dies.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use common::redis::RedisServer;
use common::{call, deliveries, Browser, Server};
use parking_lot::Mutex;
use serde_json::{json, Value};

const NUMBER: &str = "+1 650 253 0000";

/// Stands in for an app's httpcb push URL: keeps every event body.
#[derive(Clone, Default)]
struct App {
    events: Arc<Mutex<Vec<Value>>>,
}

impl App {
    async fn start() -> (App, String) {
        let app = App::default();
        async fn got(State(app): State<App>, body: Bytes) -> StatusCode {
            app.events
                .lock()
                .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            StatusCode::OK
        }
        let router = axum::Router::new()
            .route("/app", post(got))
            .with_state(app.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/app", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (app, url)
    }

    /// The states of the events received so far for one callback.
    fn states(&self, id: &str) -> Vec<String> {
        self.events
            .lock()
            .iter()
            .filter(|e| e["_id"] == id)
            .map(|e| e["_callback_state"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    async fn wait_states(&self, id: &str, n: usize) -> Vec<String> {
        for _ in 0..500 {
            if self.states(id).len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Anything extra (a duplicate) would have arrived by now.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.states(id)
    }
}

const CONFIG: &str = "\
[push]
pushEnabled = comet,httpcb
# The app that hears the callback's events listens on loopback.
httpcb.allowed-urls = http://127.0.0.1:*
[callback]
scheduler-interval = 100
allowed-device-os = comet,httpcb
[service.cb]
_service = callback
_type = ors
[service.cb-hours]
_service = callback
_type = ors
_business_hours_service = hours
_max_request_by_time_bucket = 2
_request_time_bucket = 15
[service.cb-small]
_service = callback
_type = ors
_max_queued_callbacks_per_service = 3
_enable_in_queue_checking = false
[service.cb-origin]
_service = callback
_type = ors
_call_direction = USERORIGINATED
_wait_for_agent = true
_access_number = +1 800 555 0100
_overwritable_options = _media_type
[service.hours]
_type = builtin
_service = office-hours
_timezone = UTC
_bh_regular1 = Mon-Sun 9:00-17:00
";

fn server(dir: &tempfile::TempDir, extra: &[(&str, &str)]) -> Server {
    common::with_config(dir, CONFIG, extra)
}

async fn book(s: &Server, service: &str, body: Value) -> String {
    let (status, dialog) = call(
        s,
        "POST",
        &format!("/genesys/1/service/callback/{service}"),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{dialog}");
    dialog["_id"].as_str().expect("_id").to_owned()
}

fn exception(v: &Value) -> &str {
    v["exception"]
        .as_str()
        .unwrap_or("")
        .rsplit('.')
        .next()
        .unwrap_or("")
}

/// Tomorrow at `hh:mm` UTC.
fn tomorrow_at(hh: u32, mm: u32) -> String {
    let day = chrono::Utc::now().date_naive() + chrono::Days::new(1);
    format!("{day}T{hh:02}:{mm:02}:00.000Z")
}

#[tokio::test]
async fn only_the_back_office_queries_without_naming_the_customer() {
    let dir = tempfile::tempdir().unwrap();
    // Loopback is not the back office here; [admin] credentials are.
    let s = server(
        &dir,
        &[
            ("GMSHUB__SERVER__ADMIN_NETWORKS", "10.9.9.9/32"),
            ("GMSHUB__ADMIN__USERNAME", "au"),
            ("GMSHUB__ADMIN__PASSWORD", "ap"),
        ],
    );
    let id = book(
        &s,
        "cb",
        json!({"_customer_number": NUMBER, "_call_direction": "USERTERMINATED"}),
    )
    .await;
    let http = reqwest::Client::new();
    let query = |q: &str, admin: bool| {
        let mut r = http.get(s.url(&format!("/genesys/1/service/callback?{q}")));
        if admin {
            r = r.basic_auth("au", Some("ap"));
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for listing in [
        "_service_name=cb",
        "_callback_state=!X",
        "_customer_number=!1",
    ] {
        let (status, v) = query(listing, false).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{listing}: {v}");
        assert!(v["message"].as_str().unwrap().contains("name the customer"));
        let (status, v) = query(listing, true).await;
        assert_eq!(status, StatusCode::OK, "{listing} as the back office: {v}");
        assert_eq!(v.as_array().unwrap().len(), 1, "{listing}");
    }
    let (status, v) = query(&format!("_id={id}"), false).await;
    assert_eq!((status, v.as_array().unwrap().len()), (StatusCode::OK, 1));
    let (status, v) = query("_customer_number=%2B1%20650%20253%200000", false).await;
    assert_eq!((status, v.as_array().unwrap().len()), (StatusCode::OK, 1));
}

#[tokio::test]
async fn a_callback_from_booking_to_completion_driven_by_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, &[]);
    let (app, url) = App::start().await;
    let (status, dialog) = call(
        &s,
        "POST",
        "/genesys/1/service/callback/cb",
        Some(
            json!({"_customer_number": NUMBER, "_call_direction": "USERTERMINATED",
                    "_device_os": "httpcb", "_device_notification_id": url,
                    "first_name": "Ann"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{dialog}");
    assert_eq!(dialog["_action"], "ConfirmationDialog");
    assert_eq!(dialog["_text"], "Your callback is in the queue.");
    let id = dialog["_id"].as_str().unwrap().to_owned();

    // The customer's view: its record, its place in the queue.
    let (_, found) = call(
        &s,
        "GET",
        &format!("/genesys/1/service/callback?_id={id}"),
        None,
    )
    .await;
    assert_eq!(found[0]["_callback_state"], "QUEUED");
    assert_eq!(found[0]["_customer_number"], NUMBER);
    assert_eq!(found[0]["_service_name"], "cb");
    assert!(found[0]["_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/cb/{id}")));
    let (_, position) = call(
        &s,
        "GET",
        &format!("/genesys/1/service/{id}/check-queue-position"),
        None,
    )
    .await;
    assert_eq!(
        (
            position["_position"].as_u64(),
            position["_total_waiting"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // The router takes it, connects it, completes it.
    let (status, taken) = call(
        &s,
        "POST",
        "/gmshub/callback/cb/next",
        Some(json!({"router": "ors-1"})),
    )
    .await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(
        (taken["_id"].as_str(), taken["_callback_state"].as_str()),
        (Some(id.as_str()), Some("ROUTING"))
    );
    let (status, _) = call(&s, "POST", "/gmshub/callback/cb/next", None).await;
    assert_eq!(status, 204, "nothing else waits");
    let state = |body: Value| {
        let s = &s;
        let path = format!("/gmshub/callback/{id}/state");
        async move { call(s, "POST", &path, Some(body)).await }
    };
    let (status, body) = state(json!({"state": "PROCESSING", "router": "ors-1"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = state(json!({"state": "COMPLETED"})).await;
    assert_eq!(
        (status, exception(&body)),
        (StatusCode::BAD_REQUEST, "CallbackExceptionBadRequest"),
        "a reason is required"
    );
    let (status, done) = state(
        json!({"state": "COMPLETED", "reason": "AGENT_CONNECTED", "router": "ors-1",
                                      "properties": {"_agent_id": "agent7"}}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["_callback_reason"], "AGENT_CONNECTED");
    let history: Vec<(&str, &str)> = done["_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["state"].as_str().unwrap(), h["by"].as_str().unwrap()))
        .collect();
    assert_eq!(
        history,
        [
            ("QUEUED", "customer"),
            ("ROUTING", "ors-1"),
            ("PROCESSING", "ors-1"),
            ("COMPLETED", "ors-1")
        ]
    );
    // Illegal moves are refused, and say why.
    let (status, body) = state(json!({"state": "QUEUED"})).await;
    assert_eq!(
        (status, exception(&body)),
        (StatusCode::CONFLICT, "CallbackExceptionInvalidState")
    );
    let (status, body) = state(json!({"state": "WAITING"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = state(json!({"state": "COMPLETED", "reason": "done!"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(
        &s,
        "POST",
        "/gmshub/callback/nope/state",
        Some(json!({"state": "QUEUED"})),
    )
    .await;
    assert_eq!(
        (status, exception(&body)),
        (StatusCode::NOT_FOUND, "CallbackExceptionNotFound")
    );

    // The app heard every step, in order, once.
    assert_eq!(
        app.wait_states(&id, 4).await,
        ["QUEUED", "ROUTING", "PROCESSING", "COMPLETED"]
    );
    let last = app.events.lock().last().cloned().unwrap();
    assert_eq!(last["_callback_reason"], "AGENT_CONNECTED");
    assert_eq!(last["_text"], "Your callback is complete.");
    assert_eq!(last["_action"], "ConfirmationDialog");
}

#[tokio::test]
async fn a_scheduled_callback_is_queued_at_its_time_and_a_cometd_session_hears_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, &[("GMSHUB__COMETD__TIMEOUT", "500")]);
    let browser = Browser::new(&s);
    let client_id = browser.session().await;
    browser.subscribe(&client_id, json!("/_genesys")).await;

    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (status, dialog) = call(
        &s,
        "POST",
        "/genesys/1/service/callback/cb",
        Some(json!({"_customer_number": NUMBER, "_desired_time": at,
                    "_device_os": "comet", "_device_notification_id": client_id})),
    )
    .await;
    assert_eq!(status, 200, "{dialog}");
    assert_eq!(dialog["_callback_state"], "SCHEDULED", "{dialog} at {at}");
    let id = dialog["_id"].as_str().unwrap().to_owned();

    let mut events = Vec::new();
    for _ in 0..10 {
        for d in deliveries(&browser.connect(&client_id).await) {
            assert_eq!(d["channel"], "/_genesys");
            assert!(d["data"]["tag"]
                .as_str()
                .unwrap()
                .starts_with("service.callback."));
            events.push(d["data"]["message"].clone());
        }
        if events.len() >= 2 {
            break;
        }
    }
    let states: Vec<&str> = events
        .iter()
        .map(|e| e["_callback_state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["SCHEDULED", "QUEUED"]);
    assert!(events.iter().all(|e| e["_id"] == id.as_str()));
    let (_, cb) = call(&s, "GET", &format!("/gmshub/callback/{id}"), None).await;
    assert_eq!(cb["_callback_state"], "QUEUED");
    assert_eq!(cb["_history"][1]["by"], "scheduler");
    assert_eq!(cb["_desired_time"], at.as_str());

    // The router drives it to the end: the session hears every step once.
    let (status, _) = call(&s, "POST", "/gmshub/callback/cb/next", None).await;
    assert_eq!(status, 200);
    for state in [
        json!({"state": "PROCESSING"}),
        json!({"state": "COMPLETED", "reason": "AGENT_CONNECTED"}),
    ] {
        let (status, body) = call(
            &s,
            "POST",
            &format!("/gmshub/callback/{id}/state"),
            Some(state),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    // Connects are held 500 ms here: an empty one means nothing more came.
    loop {
        let batch = deliveries(&browser.connect(&client_id).await);
        if batch.is_empty() && events.len() >= 5 {
            break;
        }
        assert!(events.len() <= 5, "{events:?}");
        events.extend(batch.into_iter().map(|d| d["data"]["message"].clone()));
    }
    let states: Vec<&str> = events
        .iter()
        .map(|e| e["_callback_state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["SCHEDULED", "QUEUED", "ROUTING", "PROCESSING", "COMPLETED"]
    );
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["_event_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn office_hours_capacity_and_queue_limits() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, &[]);
    // Tomorrow 8:30-9:30: 9:00 and 9:15 are open (9-17 UTC), 15-minute buckets.
    let (status, slots) = call(
        &s,
        "GET",
        &format!(
            "/genesys/1/service/callback/cb-hours/availability?start={}&end={}",
            tomorrow_at(8, 30),
            tomorrow_at(9, 30)
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{slots}");
    let keys: Vec<&String> = slots.as_object().unwrap().keys().collect();
    assert_eq!(keys, [&tomorrow_at(9, 0), &tomorrow_at(9, 15)]);
    assert_eq!(slots[tomorrow_at(9, 0)], 2);

    let book_at = |time: String, number: &'static str| {
        let s = &s;
        async move {
            call(
                s,
                "POST",
                "/genesys/1/service/callback/cb-hours",
                Some(json!({"_customer_number": number, "_desired_time": time})),
            )
            .await
        }
    };
    let (status, body) = book_at(tomorrow_at(20, 0), "+1 650 253 0001").await;
    assert_eq!(
        (status, exception(&body)),
        (StatusCode::BAD_REQUEST, "CallbackExceptionNotAvailable"),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("office hours"));
    for (minute, number) in [(0, "+1 650 253 0001"), (10, "+1 650 253 0002")] {
        let (status, body) = book_at(tomorrow_at(9, minute), number).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = book_at(tomorrow_at(9, 5), "+1 650 253 0003").await;
    assert_eq!(
        (status, exception(&body)),
        (StatusCode::BAD_REQUEST, "CallbackExceptionNotAvailable"),
        "the 9:00 bucket is full: {body}"
    );
    let (_, slots) = call(
        &s,
        "GET",
        &format!(
            "/genesys/1/service/callback/cb-hours/availability?timestamp={}&max-time-slots=2",
            tomorrow_at(9, 0)
        ),
        None,
    )
    .await;
    assert_eq!(
        (
            slots[tomorrow_at(9, 0)].as_u64(),
            slots[tomorrow_at(9, 15)].as_u64()
        ),
        (Some(0), Some(2))
    );

    // A number may wait at most twice in a service (GMS's in-queue check).
    for _ in 0..2 {
        book(&s, "cb", json!({"_customer_number": NUMBER})).await;
    }
    let (status, body) = call(
        &s,
        "POST",
        "/genesys/1/service/callback/cb",
        Some(json!({"_customer_number": NUMBER})),
    )
    .await;
    assert_eq!(
        (status, exception(&body)),
        (StatusCode::BAD_REQUEST, "CallbackExceptionNotAvailable"),
        "{body}"
    );

    // The queue limit: GMS's 503 and message.
    for i in 0..3 {
        book(
            &s,
            "cb-small",
            json!({"_customer_number": format!("+1 650 253 001{i}")}),
        )
        .await;
    }
    let (status, body) = call(
        &s,
        "POST",
        "/genesys/1/service/callback/cb-small",
        Some(json!({"_customer_number": "+1 650 253 0019"})),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(exception(&body), "CallbackExceptionServiceUnavailable");
    assert_eq!(
        body["message"],
        "Limit of queued callbacks for cb-small is reached."
    );
    let (_, marks) = call(
        &s,
        "GET",
        "/genesys/1/admin/callback/watermarks?service_name=cb-small",
        None,
    )
    .await;
    assert_eq!(marks["cb-small"]["QUEUED"], 3);
    assert_eq!(marks["cb-small"]["watermark"], 100);
}

#[tokio::test]
async fn query_reschedule_cancel_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, &[]);
    let number = "+1 650 253 0042";
    // Form-encoded, as the Genesys samples send it.
    let form = reqwest::Client::new()
        .post(s.url("/genesys/1/service/callback/cb"))
        .form(&[
            ("_customer_number", number),
            ("_desired_time", &tomorrow_at(10, 0)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let first: Value = form.json().await.unwrap();
    let first = first["_id"].as_str().unwrap().to_owned();
    let second = book(&s, "cb", json!({"_customer_number": number})).await;

    let (status, _) = call(
        &s,
        "DELETE",
        &format!("/genesys/1/service/callback/cb/{second}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &s,
        "DELETE",
        &format!("/genesys/1/service/callback/cb/{second}"),
        None,
    )
    .await;
    assert_eq!(
        (status, exception(&body)),
        (StatusCode::CONFLICT, "CallbackExceptionInvalidState"),
        "cancelled once"
    );
    let (status, body) = call(
        &s,
        "PUT",
        &format!("/genesys/1/service/callback/cb/{second}"),
        Some(json!({"_desired_time": tomorrow_at(11, 0)})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a completed callback is not rescheduled: {body}"
    );

    let q = |query: &str| {
        let s = &s;
        let path = format!("/genesys/1/service/callback?{query}");
        async move { call(s, "GET", &path, None).await }
    };
    let enc = "%2B1%20650%20253%200042";
    let (_, all) = q(&format!("_customer_number={enc}")).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, open) = q(&format!(
        "_customer_number={enc}&_callback_state=!COMPLETED"
    ))
    .await;
    assert_eq!(open.as_array().unwrap().len(), 1);
    assert_eq!(open[0]["_id"], first.as_str());
    let (_, cancelled) = q(&format!(
        "_customer_number={enc}&_callback_reason=CANCELLED"
    ))
    .await;
    assert_eq!(cancelled[0]["_id"], second.as_str());
    let (status, body) = q("_customer_number=1&secret_key=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not a filter key: {body}");

    // Reschedule: a new time, and the rules for it.
    let (status, moved) = call(
        &s,
        "PUT",
        &format!("/genesys/1/service/callback/cb/{first}"),
        Some(json!({"_desired_time": tomorrow_at(12, 30), "note": "after lunch"})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["_desired_time"], tomorrow_at(12, 30));
    assert_eq!(moved["_callback_state"], "SCHEDULED");
    for (body, what) in [
        (json!({}), "no time"),
        (json!({"_desired_time": "soon"}), "not a time"),
        (
            json!({"_desired_time": "2001-01-01T00:00:00Z"}),
            "in the past",
        ),
    ] {
        let (status, e) = call(
            &s,
            "PUT",
            &format!("/genesys/1/service/callback/cb/{first}"),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {e}");
    }
    let (status, _) = call(
        &s,
        "PUT",
        &format!("/genesys/1/service/callback/cb-small/{first}"),
        Some(json!({"_desired_time": tomorrow_at(13, 0)})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another service's callback");

    // Bad bookings: each with GMS's error shape.
    for (service, body, code, name) in [
        ("cb", json!({}), 400, "CallbackExceptionBadRequest"),
        (
            "cb",
            json!({"_customer_number": "12"}),
            400,
            "CallbackExceptionNumber",
        ),
        (
            "cb",
            json!({"_customer_number": "1-900-976-1234"}),
            400,
            "CallbackExceptionNumber",
        ),
        (
            "cb",
            json!({"_customer_number": NUMBER, "_desired_time": "tomorrow"}),
            400,
            "CallbackExceptionBadRequest",
        ),
        (
            "cb",
            json!({"_customer_number": NUMBER, "_desired_time": "2001-01-01T00:00:00Z"}),
            400,
            "CallbackExceptionBadRequest",
        ),
        (
            "nope",
            json!({"_customer_number": NUMBER}),
            404,
            "ServiceNotFoundException",
        ),
    ] {
        let (status, e) = call(
            &s,
            "POST",
            &format!("/genesys/1/service/callback/{service}"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status.as_u16(), exception(&e)),
            (code, name),
            "{body}: {e}"
        );
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let bad_json = reqwest::Client::new()
        .post(s.url("/genesys/1/service/callback/cb"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    let (status, _) = call(&s, "GET", "/genesys/1/service/callback/cb/unknown-id", None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &s,
        "GET",
        "/genesys/1/service/unknown-id/check-queue-position",
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_dialog_when_an_agent_is_free_dial_number_and_start_chat() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, &[]);
    let (app, url) = App::start().await;
    // USERORIGINATED, wait for agent (from the service's options).
    let voice = book(
        &s,
        "cb-origin",
        json!({"_customer_number": NUMBER, "_device_os": "httpcb", "_device_notification_id": url}),
    )
    .await;
    let (_, taken) = call(&s, "POST", "/gmshub/callback/cb-origin/next", None).await;
    assert_eq!(taken["_id"], voice.as_str());
    app.wait_states(&voice, 2).await;
    let pushed = app.events.lock().last().cloned().unwrap();
    assert_eq!(pushed["_action"], "DisplayMenu", "it is time: {pushed}");
    // The app continues the dialog the event names.
    let (status, menu) = call(
        &s,
        "POST",
        &format!("/genesys/1/service/{voice}/DisplayMenu"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{menu}");
    assert_eq!(menu["_action"], "DisplayMenu");
    let ready_url = menu["_content"][0]["_group_content"][0]["_user_action_url"]
        .as_str()
        .unwrap();
    assert!(ready_url.ends_with(&format!("/genesys/1/service/{voice}/ready")));
    let (status, dial) = call(&s, "POST", ready_url, None).await;
    assert_eq!(status, 200, "{dial}");
    assert_eq!(dial["_action"], "DialNumber");
    assert_eq!(dial["_tel_url"], "tel:+18005550100");
    let (status, _) = call(&s, "POST", &format!("/genesys/1/service/{voice}/fly"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Chat (an overwritable option): "ready" opens a chat on gmshub's engine.
    let chat = book(
        &s,
        "cb-origin",
        json!({"_customer_number": "+1 650 253 0077", "_media_type": "chat", "first_name": "Ann"}),
    )
    .await;
    let (status, _) = call(
        &s,
        "POST",
        &format!("/genesys/1/service/{chat}/ready"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "no agent is waiting yet");
    call(&s, "POST", "/gmshub/callback/cb-origin/next", None).await;
    let (status, start) = call(
        &s,
        "POST",
        &format!("/genesys/1/service/{chat}/ready"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{start}");
    assert_eq!(start["_action"], "StartChat");
    assert_eq!(start["_start_chat_url"], "/genesys/2/chat/customer-support");
    let chat_id = start["_chat_id"].as_str().unwrap();
    let refresh = reqwest::Client::new()
        .post(s.url(&format!(
            "/genesys/2/chat/customer-support/{chat_id}/refresh"
        )))
        .form(&[
            ("userId", start["_user_id"].as_str().unwrap()),
            ("secureKey", start["_secure_key"].as_str().unwrap()),
            ("alias", start["_alias"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let refresh: Value = refresh.json().await.unwrap();
    assert_eq!(refresh["statusCode"], 0, "{refresh}");
    assert_eq!(refresh["messages"][0]["type"], "ParticipantJoined");
    assert_eq!(refresh["messages"][0]["from"]["nickname"], "Ann");
    let (_, cb) = call(&s, "GET", &format!("/gmshub/callback/{chat}"), None).await;
    assert_eq!(
        (cb["_callback_state"].as_str(), cb["_chat_id"].as_str()),
        (Some("PROCESSING"), Some(chat_id))
    );
}

#[tokio::test]
async fn admin_queues_bulk_cancel_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, &[]);
    let a = book(
        &s,
        "cb",
        json!({"_customer_number": "+1 650 253 0101", "first_name": "Ann"}),
    )
    .await;
    let b = book(
        &s,
        "cb",
        json!({"_customer_number": "+1 650 253 0102", "_desired_time": tomorrow_at(10, 0)}),
    )
    .await;
    // The default window ends a day from now: tomorrow 10:00 may be later.
    let window = format!("target=cb&end_time={}", tomorrow_at(23, 0));
    let (_, queues) = call(
        &s,
        "GET",
        &format!("/genesys/1/admin/callback/queues?{window}"),
        None,
    )
    .await;
    let ids: Vec<&str> = queues["cb"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.as_str(), b.as_str()], "ordered by desired time");
    let (_, scheduled) = call(
        &s,
        "GET",
        &format!("/genesys/1/admin/callback/queues?{window}&states=SCHEDULED"),
        None,
    )
    .await;
    assert_eq!(scheduled["cb"].as_array().unwrap().len(), 1);
    let (status, _) = call(
        &s,
        "GET",
        "/genesys/1/admin/callback/queues?states=LOST",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, result) = call(
        &s,
        "POST",
        "/genesys/1/admin/callback/cancel",
        Some(json!({"ids": [a, b, "missing"]})),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["cancelled"], json!([a, b]));
    assert!(result["failed"]["missing"].is_string());
    let export = reqwest::Client::new()
        .post(s.url("/genesys/1/admin/callback/reportcancelled"))
        .json(&json!({"callback_reason": "CANCELLED_BY_ADMIN", "exported_properties": ["_customer_number", "first_name"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    assert!(export.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = export.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "_id,_service_name,_customer_number,first_name");
    assert!(
        lines.contains(&format!("{a},cb,+1 650 253 0101,Ann").as_str()),
        "{csv}"
    );
    assert_eq!(lines.len(), 3, "{csv}");
}

#[tokio::test]
async fn a_callback_scheduled_on_a_node_that_dies_fires_once_on_another() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let node = || {
        server(
            &dir,
            &[
                ("GMSHUB__STORE__TYPE", "redis"),
                ("GMSHUB__REDIS__URL", &url),
                ("GMSHUB__CLUSTER__ENABLED", "true"),
            ],
        )
    };
    let mut first = node();
    let second = node();
    let third = node();
    let (app, url) = App::start().await;
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(2500);
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let id = book(
        &first,
        "cb",
        json!({"_customer_number": NUMBER, "_desired_time": at,
                                       "_device_os": "httpcb", "_device_notification_id": url}),
    )
    .await;
    // Its first event is out (pushed after the answer) before the node dies.
    assert_eq!(app.wait_states(&id, 1).await, ["SCHEDULED"]);
    first.signal("KILL");
    first.wait(Duration::from_secs(10)).expect("killed");
    // Both survivors run the scheduler: the callback is queued once.
    assert_eq!(app.wait_states(&id, 2).await, ["SCHEDULED", "QUEUED"]);
    let (_, cb) = call(&second, "GET", &format!("/gmshub/callback/{id}"), None).await;
    let history: Vec<&str> = cb["_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["SCHEDULED", "QUEUED"]);
    let (_, seen) = call(
        &third,
        "GET",
        &format!("/genesys/1/service/callback?_id={id}"),
        None,
    )
    .await;
    assert_eq!(seen[0]["_callback_state"], "QUEUED");
}

#[tokio::test]
async fn a_callback_cannot_be_booked_or_moved_beyond_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, &[("GMSHUB__CALLBACK__BOOKING_HORIZON", "86400")]);
    let at = |hours: i64| {
        (chrono::Utc::now() + chrono::Duration::hours(hours))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    for far in ["9999-12-31T10:00:00.000Z".to_owned(), at(25)] {
        let (status, body) = call(
            &s,
            "POST",
            "/genesys/1/service/callback/cb",
            Some(json!({"_customer_number": NUMBER, "_desired_time": far})),
        )
        .await;
        beyond_horizon(status, &body);
    }
    let id = book(
        &s,
        "cb",
        json!({"_customer_number": NUMBER, "_desired_time": at(23)}),
    )
    .await;
    let (status, body) = call(
        &s,
        "PUT",
        &format!("/genesys/1/service/callback/cb/{id}"),
        Some(json!({"_desired_time": at(30)})),
    )
    .await;
    beyond_horizon(status, &body);
}

/// A 400 that names the option.
fn beyond_horizon(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("booking-horizon"), "{body}");
}
