//! The engine against the in-memory store: booking checks, the state
//! machine, the scheduler, routers racing, and the events each move sends.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use push::dispatcher::Providers;
use push::{Dispatcher, DispatcherConfig, Notification, Outcome, Provider, PushType};
use serde_json::Value;

use super::engine::DUE_BUCKET_MS;
use super::model::iso;
use super::*;
use crate::chat::{ChatServiceOptions, ChatServices, Chats};
use crate::store::{now_ms, MemoryStore, Store};

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Value>>,
}

#[async_trait]
impl Provider for Recorder {
    async fn send(&self, n: &Notification) -> Outcome {
        self.seen
            .lock()
            .push(serde_json::from_str(&n.message).unwrap());
        Outcome::Delivered
    }
}

fn setup(service: &[(&str, &str)]) -> (Callbacks, Arc<Recorder>) {
    setup_with(service, true)
}

/// `allow_httpcb`: whether bookings may name an httpcb URL as their device.
fn setup_with(service: &[(&str, &str)], allow_httpcb: bool) -> (Callbacks, Arc<Recorder>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let recorder = Arc::new(Recorder::default());
    let mut providers: Providers = HashMap::new();
    providers.insert((PushType::Httpcb, String::new(), false), recorder.clone());
    let dispatcher = Dispatcher::start(providers, DispatcherConfig::default(), Arc::new(|_| {}));
    let mut chat_services = ChatServices::default();
    chat_services
        .named
        .insert("customer-support".into(), ChatServiceOptions::default());
    let (chats, _) = Chats::new(store.clone(), chat_services);
    let mut settings = CallbackSettings::default();
    if allow_httpcb {
        settings.allowed_device_os.push(PushType::Httpcb);
    }
    settings.services.insert(
        "svc".into(),
        service
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    (Callbacks::new(store, settings, dispatcher, chats), recorder)
}

fn request(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut r: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    r.entry("_customer_number".into())
        .or_insert_with(|| "+1 650 253 0000".into());
    r
}

async fn events(recorder: &Recorder, n: usize) -> Vec<(String, String)> {
    for _ in 0..200 {
        if recorder.seen.lock().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    recorder
        .seen
        .lock()
        .iter()
        .map(|e| {
            (
                e["_callback_state"].as_str().unwrap().to_owned(),
                e["_action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_callback_from_booking_to_completion_tells_the_app_each_step() {
    let (callbacks, recorder) = setup(&[]);
    let (id, dialog) = callbacks
        .create(
            "svc",
            request(&[
                ("_device_os", "httpcb"),
                ("_device_notification_id", "http://app.example/cb"),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(dialog["_action"], "ConfirmationDialog");
    assert_eq!(dialog["_callback_state"], "QUEUED");
    let (taken, cb) = callbacks
        .take_next("svc", "router-1", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken.as_str(), cb.state), (id.as_str(), State::Routing));
    assert!(callbacks
        .take_next("svc", "router-2", None)
        .await
        .unwrap()
        .is_none());
    callbacks
        .move_to(&id, State::Processing, None, "router-1")
        .await
        .unwrap();
    let done = callbacks
        .move_to(
            &id,
            State::Completed,
            Some("AGENT_CONNECTED".into()),
            "router-1",
        )
        .await
        .unwrap();
    let states: Vec<State> = done.history.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            State::Queued,
            State::Routing,
            State::Processing,
            State::Completed
        ]
    );
    // Nothing leaves COMPLETED.
    assert!(matches!(
        callbacks
            .move_to(&id, State::Queued, None, "router-1")
            .await,
        Err(CallbackError::IllegalTransition { .. })
    ));
    let seen = events(&recorder, 4).await;
    let names: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names, ["QUEUED", "ROUTING", "PROCESSING", "COMPLETED"]);
}

#[tokio::test]
async fn a_scheduled_callback_is_queued_once_at_its_time() {
    let (callbacks, _) = setup(&[]);
    let at = now_ms() + 300;
    let (id, dialog) = callbacks
        .create("svc", request(&[("_desired_time", &iso(at))]))
        .await
        .unwrap();
    assert_eq!(dialog["_callback_state"], "SCHEDULED");
    let bucket = at / DUE_BUCKET_MS;
    let (early, _) = callbacks.fire_bucket(bucket).await.unwrap();
    assert_eq!(early.queued, 0, "not yet");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Two nodes' schedulers find it at once: one moves it.
    let (a, b) = tokio::join!(callbacks.fire_bucket(bucket), callbacks.fire_bucket(bucket));
    assert_eq!(a.unwrap().0.queued + b.unwrap().0.queued, 1);
    let cb = callbacks.get(&id).await.unwrap();
    assert_eq!(cb.state, State::Queued);
    assert_eq!(cb.history.len(), 2);
    assert_eq!(cb.history[1].by, "scheduler");
}

#[tokio::test]
async fn callbacks_due_long_before_a_start_fire_at_the_start() {
    let (callbacks, _) = setup(&[]);
    let (id, _) = callbacks
        .create(
            "svc",
            request(&[("_desired_time", &iso(now_ms() + 60_000))]),
        )
        .await
        .unwrap();
    // As if every node had been down for a day since it came due: far
    // behind `scheduler-lookback` (one hour).
    let day = 24 * 3600 * 1000;
    callbacks
        .update(&id, |cb| {
            cb.desired_time = now_ms() - day;
            cb.expiration_time = now_ms() + day;
            Ok(())
        })
        .await
        .unwrap();
    let scheduler = callbacks.spawn_scheduler();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while callbacks.get(&id).await.unwrap().state != State::Queued {
        assert!(tokio::time::Instant::now() < deadline, "never fired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    scheduler.abort();
    let cb = callbacks.get(&id).await.unwrap();
    assert_eq!(cb.history.last().unwrap().by, "scheduler");
}

#[tokio::test]
async fn routers_racing_never_take_one_callback_twice() {
    let (callbacks, _) = setup(&[("_enable_in_queue_checking", "false")]);
    for _ in 0..20 {
        callbacks.create("svc", request(&[])).await.unwrap();
    }
    let mut tasks = Vec::new();
    for r in 0..4 {
        let c = callbacks.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some((id, _)) = c.take_next("svc", &format!("r{r}"), None).await.unwrap() {
                mine.push(id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!((n, all.len()), (20, 20));
}

#[tokio::test]
async fn limits_and_bad_input() {
    let (callbacks, _) = setup(&[
        ("_max_queued_callbacks_per_service", "2"),
        ("_max_request_by_time_bucket", "1"),
    ]);
    let at = iso(now_ms() + 3_600_000);
    callbacks
        .create("svc", request(&[("_desired_time", &at)]))
        .await
        .unwrap();
    let full = callbacks
        .create(
            "svc",
            request(&[
                ("_desired_time", &at),
                ("_customer_number", "+1 650 253 0001"),
            ]),
        )
        .await;
    assert!(
        matches!(full, Err(CallbackError::Unavailable(_))),
        "{full:?}"
    );
    callbacks
        .create("svc", request(&[("_customer_number", "+1 650 253 0002")]))
        .await
        .unwrap();
    let over = callbacks
        .create("svc", request(&[("_customer_number", "+1 650 253 0003")]))
        .await;
    assert!(matches!(over, Err(CallbackError::QueueFull(_))), "{over:?}");

    let (callbacks, _) = setup(&[("_enable_in_queue_checking", "strict")]);
    callbacks.create("svc", request(&[])).await.unwrap();
    assert!(matches!(
        callbacks.create("svc", request(&[])).await,
        Err(CallbackError::Unavailable(_))
    ));
    for (bad, want) in [
        (request(&[("_customer_number", "")]), "mandatory"),
        (
            request(&[("_customer_number", "1-900-976-1234")]),
            "premium",
        ),
        (request(&[("_customer_number", "12")]), "not a valid"),
        (request(&[("_desired_time", "next tuesday")]), "ISO 8601"),
        (
            request(&[("_desired_time", "2001-01-01T00:00:00Z")]),
            "past",
        ),
        (request(&[("_device_os", "pigeon")]), "push type"),
    ] {
        let e = callbacks.create("svc", bad).await.unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
    assert!(matches!(
        callbacks.create("nope", request(&[])).await,
        Err(CallbackError::UnknownService(_))
    ));
}

#[tokio::test]
async fn the_customer_is_asked_when_an_agent_is_free_and_a_chat_opens() {
    let (callbacks, recorder) = setup(&[("_media_type", "chat"), ("_wait_for_agent", "true")]);
    let (id, _) = callbacks
        .create(
            "svc",
            request(&[
                ("_device_os", "httpcb"),
                ("_device_notification_id", "http://app.example/cb"),
                ("first_name", "Ann"),
            ]),
        )
        .await
        .unwrap();
    callbacks
        .take_next("svc", "router", None)
        .await
        .unwrap()
        .unwrap();
    let seen = events(&recorder, 2).await;
    assert_eq!(seen[1], ("ROUTING".into(), "DisplayMenu".into()));
    let menu = callbacks.continue_dialog(&id, "DisplayMenu").await.unwrap();
    assert_eq!(menu["_action"], "DisplayMenu");
    let chat = callbacks.continue_dialog(&id, "ready").await.unwrap();
    assert_eq!(chat["_action"], "StartChat");
    assert!(chat["_chat_id"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(callbacks.get(&id).await.unwrap().state, State::Processing);
    assert!(matches!(
        callbacks.continue_dialog(&id, "cancel").await,
        Err(CallbackError::IllegalTransition { .. })
    ));
}

#[tokio::test]
async fn a_booking_names_no_url_to_post_to_unless_allowed() {
    let (callbacks, _) = setup_with(&[], false);
    let e = callbacks
        .create(
            "svc",
            request(&[
                ("_device_os", "httpcb"),
                ("_device_notification_id", "http://169.254.169.254/latest"),
            ]),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("allowed-device-os"), "{e}");
    callbacks
        .create(
            "svc",
            request(&[
                ("_device_os", "comet"),
                ("_device_notification_id", "client-1"),
            ]),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_chat_booked_for_now_opens_at_once_and_waits_for_an_agent() {
    let (callbacks, recorder) = setup(&[("_media_type", "chat")]);
    let (id, dialog) = callbacks
        .create(
            "svc",
            request(&[
                ("_device_os", "httpcb"),
                ("_device_notification_id", "http://app.example/cb"),
                ("first_name", "Ann"),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(dialog["_action"], "StartChat");
    assert!(dialog["_chat_id"].as_str().is_some_and(|c| !c.is_empty()));
    let cb = callbacks.get(&id).await.unwrap();
    assert_eq!(cb.state, State::Routing);
    assert!(cb.chat.is_some());
    // Nothing left for a router to take; the customer can still cancel.
    assert!(callbacks
        .take_next("svc", "r", None)
        .await
        .unwrap()
        .is_none());
    let seen = events(&recorder, 2).await;
    assert_eq!(
        seen,
        [
            ("QUEUED".to_owned(), "ConfirmationDialog".to_owned()),
            ("ROUTING".to_owned(), "ConfirmationDialog".to_owned())
        ]
    );
    let current = callbacks.continue_dialog(&id, "get-dialog").await.unwrap();
    assert_eq!(
        current["_text"],
        "Your chat is open: an agent will join it shortly."
    );
}

#[tokio::test]
async fn a_customer_originated_call_now_gets_the_number_to_dial() {
    let (callbacks, _) = setup(&[
        ("_call_direction", "USERORIGINATED"),
        ("_access_number", "+1 800 555 0100"),
    ]);
    let (_, dialog) = callbacks.create("svc", request(&[])).await.unwrap();
    assert_eq!(dialog["_action"], "DialNumber");
    assert_eq!(dialog["_tel_url"], "tel:+18005550100");
}

#[tokio::test]
async fn a_callback_waiting_past_its_expiry_completes_and_a_paused_one_resumes() {
    let (callbacks, _) = setup(&[("_enable_in_queue_checking", "false")]);
    let (late, _) = callbacks.create("svc", request(&[])).await.unwrap();
    let (paused, _) = callbacks.create("svc", request(&[])).await.unwrap();
    // As if a day had passed: its expiry is behind us.
    let expired = now_ms() - 1;
    callbacks
        .update(&late, |cb| {
            cb.expiration_time = expired;
            Ok(())
        })
        .await
        .unwrap();
    let (pass, _) = callbacks
        .fire_bucket(expired / DUE_BUCKET_MS)
        .await
        .unwrap();
    assert_eq!(pass.expired, 1);
    let cb = callbacks.get(&late).await.unwrap();
    assert_eq!(
        (cb.state, cb.reason.as_deref()),
        (State::Completed, Some("FAIL_TIMEOUT_TTL"))
    );

    callbacks
        .move_to(&paused, State::Paused, None, "router")
        .await
        .unwrap();
    assert!(callbacks
        .take_next("svc", "r", None)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        callbacks
            .move_to(&paused, State::Processing, None, "router")
            .await,
        Err(CallbackError::IllegalTransition { .. })
    ));
    callbacks
        .move_to(&paused, State::Queued, None, "router")
        .await
        .unwrap();
    let (taken, _) = callbacks
        .take_next("svc", "r", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken, paused);
}
