//! The callback engine: booking (with every check GMS makes), the state
//! machine (each move a compare-and-set in the store, so two nodes cannot
//! both make it, and each recorded in the callback's history), the router's
//! moves, the customer's dialog, and the event each move sends the
//! customer's app.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bayeux::KeyedRate;

use push::{Dispatcher, Notification, PushType};
use serde_json::{json, Map, Value};

use super::dialog::{self, Urls};
use super::model::{iso, parse_iso, Callback, ChatLink, State};
use super::options::{
    check_number, resolve, CallbackSettings, Effective, InQueueCheck, NumberProblem,
};
use crate::chat::{ChatError, ChatRequest, Chats};
use crate::store::collection::Versioned;
use crate::store::{check_key, now_ms, Collection, IndexEntry, Store, StoreError};

/// Width of the buckets the scheduler finds due callbacks by.
pub const DUE_BUCKET_MS: u64 = 10_000;
/// The most callbacks one lookup reads.
pub const MAX_READ: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("{0}")]
    BadRequest(String),
    /// Allowed to the back office only.
    #[error("{0}")]
    Forbidden(String),
    /// `CallbackExceptionNumber`: an impossible or premium number.
    #[error("{0}")]
    Number(String),
    #[error("callback service {0} is not configured")]
    UnknownService(String),
    #[error("callback {0} not found")]
    NotFound(String),
    /// `CallbackExceptionServiceUnavailable`.
    #[error("Limit of queued callbacks for {0} is reached.")]
    QueueFull(String),
    /// The client booked too many callbacks lately: retry after this long.
    #[error("too many callbacks booked from this address; try again in {} s", .0.as_secs().max(1))]
    TooMany(std::time::Duration),
    /// The time asked for cannot be booked: closed, or its bucket is full.
    #[error("{0}")]
    Unavailable(String),
    #[error("callback {id} is {from}: it cannot become {to}")]
    IllegalTransition {
        id: String,
        from: &'static str,
        to: &'static str,
    },
    #[error("chat: {0}")]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, CallbackError>;

fn indexes(cb: &Callback) -> Vec<IndexEntry> {
    let svc = &cb.service;
    let mut v = vec![
        IndexEntry::new("service", svc),
        IndexEntry::new("number", &cb.customer_number),
        IndexEntry::new("svcstate", format!("{svc}:{}", cb.state.name())),
    ];
    if cb.state.is_final() {
        let reason = cb.reason.as_deref().unwrap_or("");
        v.push(IndexEntry::new("reason", format!("{svc}:{reason}")));
    } else {
        v.push(IndexEntry::new("open", svc));
        v.push(IndexEntry::new(
            "inqueue",
            format!("{svc}:{}", cb.customer_number),
        ));
        if let Some(slot) = cb.slot {
            v.push(IndexEntry::new("slot", format!("{svc}:{slot}")));
        }
    }
    if let Some(deadline) = cb.next_deadline() {
        v.push(IndexEntry::new(
            "due",
            (deadline / DUE_BUCKET_MS).to_string(),
        ));
    }
    v
}

/// Who moves a callback (kept in its history).
pub const BY_CUSTOMER: &str = "customer";
pub const BY_SCHEDULER: &str = "scheduler";
pub const BY_ADMIN: &str = "admin";

#[derive(Clone)]
pub struct Callbacks {
    inner: Arc<Inner>,
}

struct Inner {
    records: Collection<Callback>,
    /// Bookings per client address.
    booked: KeyedRate<IpAddr>,
    settings: CallbackSettings,
    urls: Urls,
    dispatcher: Arc<Dispatcher>,
    chats: Chats,
}

impl Callbacks {
    pub fn new(
        store: Arc<dyn Store>,
        settings: CallbackSettings,
        dispatcher: Arc<Dispatcher>,
        chats: Chats,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                records: Collection::new(store, "callback", indexes),
                booked: KeyedRate::per_minute(settings.bookings_per_minute_per_address),
                urls: Urls::new(settings.external_url_base.as_deref()),
                settings,
                dispatcher,
                chats,
            }),
        }
    }

    pub fn settings(&self) -> &CallbackSettings {
        &self.inner.settings
    }

    /// Counts a booking from the client address `from` (a key; `None` when
    /// exempt): `TooMany` past `max-bookings-per-minute-per-address`.
    pub fn admit_booking(&self, from: Option<IpAddr>) -> Result<()> {
        let Some(from) = from else { return Ok(()) };
        self.inner
            .booked
            .check(&from)
            .map_err(CallbackError::TooMany)
    }

    /// A time more than `booking-horizon` ahead cannot be booked.
    fn within_horizon(&self, desired: u64, now: u64) -> Result<()> {
        let horizon = self.inner.settings.horizon;
        if desired > now.saturating_add(horizon.as_millis() as u64) {
            return Err(CallbackError::BadRequest(format!(
                "_desired_time {} is more than {} days ahead ([callback] booking-horizon)",
                iso(desired),
                horizon.as_secs() / 86_400
            )));
        }
        Ok(())
    }

    pub fn urls(&self) -> &Urls {
        &self.inner.urls
    }

    pub(super) fn records(&self) -> &Collection<Callback> {
        &self.inner.records
    }

    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.inner.settings.services.keys().map(String::as_str)
    }

    fn service(&self, name: &str) -> Result<&HashMap<String, String>> {
        self.inner
            .settings
            .services
            .get(name)
            .ok_or_else(|| CallbackError::UnknownService(name.to_owned()))
    }

    /// Whether the service's office is open at `at` (no office hours: always).
    fn open_at(&self, options: &Effective, at: u64) -> Result<bool> {
        match &options.business_hours {
            None => Ok(true),
            Some(name) => match self.inner.settings.office_hours.get(name) {
                Some(hours) => Ok(hours.is_open(at)),
                None => Err(CallbackError::BadRequest(format!(
                    "office hours service {name} is not configured"
                ))),
            },
        }
    }

    fn ttl(&self, cb: &Callback) -> Duration {
        let until = if cb.state.is_final() {
            now_ms()
        } else {
            cb.expiration_time
        };
        Duration::from_millis(until.saturating_sub(now_ms()).max(1)) + self.inner.settings.retention
    }

    /// Books a callback; returns its id and the dialog the app shows.
    pub async fn create(
        &self,
        service: &str,
        request: BTreeMap<String, String>,
    ) -> Result<(String, Map<String, Value>)> {
        let options = resolve(self.service(service)?, &request, &self.inner.settings);
        for key in &options.mandatory_keys {
            if options.params.get(key).is_none_or(|v| v.trim().is_empty()) {
                return Err(CallbackError::BadRequest(format!(
                    "the mandatory parameter {key} is missing"
                )));
            }
        }
        let number = options
            .params
            .get("_customer_number")
            .map(|n| n.trim().to_owned())
            .unwrap_or_default();
        if !number.is_empty() {
            check_key("_customer_number", &number)
                .map_err(|e| CallbackError::BadRequest(e.to_string()))?;
            match check_number(&number, &options) {
                Ok(()) => {}
                Err(NumberProblem::Impossible) => {
                    return Err(CallbackError::Number(format!(
                        "{number} is not a valid phone number for {}",
                        options.default_country
                    )))
                }
                Err(NumberProblem::Premium) => {
                    return Err(CallbackError::Number(format!(
                        "{number} is a premium-rate number"
                    )))
                }
            }
        }
        let now = now_ms();
        let desired = match options.params.get("_desired_time") {
            None => None,
            Some(t) if t.trim().is_empty() => None,
            Some(t) => Some(parse_iso(t).ok_or_else(|| {
                CallbackError::BadRequest(format!(
                    "_desired_time {t:?} is not an ISO 8601 time (2026-12-01T10:00:00.000Z)"
                ))
            })?),
        };
        let bucket_ms = options.bucket.as_millis() as u64;
        // A time already past (by up to a bucket: clocks and networks) is
        // "now"; further back is a mistake.
        let scheduled = match desired {
            Some(t) if t + bucket_ms < now => {
                return Err(CallbackError::BadRequest(format!(
                    "_desired_time {} is in the past",
                    iso(t)
                )))
            }
            Some(t) if t > now => Some(t),
            _ => None,
        };
        if let Some(t) = scheduled {
            self.within_horizon(t, now)?;
        }
        match scheduled {
            Some(t) if !self.open_at(&options, t)? => {
                return Err(CallbackError::Unavailable(format!(
                    "{} is outside office hours",
                    iso(t)
                )))
            }
            None if options.reject_out_of_hours && !self.open_at(&options, now)? => {
                return Err(CallbackError::Unavailable(
                    "the office is closed: schedule the callback for a later time".into(),
                ))
            }
            _ => {}
        }
        let desired_time = scheduled.unwrap_or(now);
        let device_os = options
            .params
            .get("_device_os")
            .filter(|v| !v.is_empty())
            .cloned();
        if let Some(os) = &device_os {
            let Some(kind) = PushType::parse(os) else {
                return Err(CallbackError::BadRequest(format!(
                    "_device_os {os} is not a push type"
                )));
            };
            // httpcb and orscb deliver to a URL or session the request
            // names: from a customer's request, that is gmshub posting
            // wherever it is told. Off unless configured.
            if !self.inner.settings.allowed_device_os.contains(&kind) {
                return Err(CallbackError::BadRequest(format!(
                    "_device_os {os} is not allowed for callbacks ([callback] allowed-device-os)"
                )));
            }
        }
        let mut cb = Callback {
            service: service.to_owned(),
            state: State::Queued,
            reason: None,
            customer_number: number,
            desired_time,
            scheduled: scheduled.is_some(),
            slot: scheduled.map(|t| t - t % bucket_ms),
            expiration_time: desired_time + options.ttl.as_millis() as u64,
            created_at: now,
            direction: options.direction,
            media_type: options.media_type.clone(),
            wait_for_agent: options.wait_for_agent,
            wait_for_user_confirm: options.wait_for_user_confirm,
            device_os,
            device_notification_id: options
                .params
                .get("_device_notification_id")
                .filter(|v| !v.is_empty())
                .cloned(),
            provider_name: options.provider_name.clone(),
            agent: None,
            chat: None,
            properties: options.params.clone(),
            history: Vec::new(),
        };
        let first = if scheduled.is_some() {
            State::Scheduled
        } else {
            State::Queued
        };
        cb.enter(first, None, BY_CUSTOMER, now);
        let id = self
            .inner
            .records
            .create_fresh(&cb, Some(self.ttl(&cb)), crate::id::uuid)
            .await?;
        // The limits are checked once the callback is in: two bookings racing
        // for the last place cannot both get it (both may lose it, and retry).
        if let Err(e) = self.check_limits(service, &cb, &options).await {
            self.inner.records.delete(&id).await?;
            return Err(e);
        }
        self.emit(&id, &cb);
        let dialog = if cb.media_type == "chat" && !cb.wait_for_agent && scheduled.is_none() {
            // CHAT-NOW: the chat opens at once.
            match self.customer_ready(&id).await {
                Ok(d) => d,
                Err(e) => {
                    let _ = self
                        .move_to(
                            &id,
                            State::Completed,
                            Some("FAIL_ERROR".into()),
                            BY_CUSTOMER,
                        )
                        .await;
                    return Err(e);
                }
            }
        } else if cb.direction == super::model::Direction::Useroriginated
            && !cb.wait_for_agent
            && scheduled.is_none()
            && options.access_number.is_some()
        {
            dialog::dial_number(&id, &cb, options.access_number.as_deref().unwrap_or(""))
        } else {
            dialog::confirmation(&id, &cb, &dialog::state_text(&cb))
        };
        let mut out = dialog;
        out.insert("_desired_time".into(), json!(iso(cb.desired_time)));
        Ok((id, out))
    }

    async fn check_limits(&self, service: &str, cb: &Callback, options: &Effective) -> Result<()> {
        let store = self.inner.records.store();
        let open = store.count("callback", "open", service).await?;
        if open > options.max_queued {
            return Err(CallbackError::QueueFull(service.to_owned()));
        }
        let most = match options.in_queue {
            InQueueCheck::Off => u64::MAX,
            InQueueCheck::On => 2,
            InQueueCheck::Strict => 1,
        };
        let key = format!("{service}:{}", cb.customer_number);
        if !cb.customer_number.is_empty() && store.count("callback", "inqueue", &key).await? > most
        {
            return Err(CallbackError::Unavailable(format!(
                "{} already has {most} callback(s) waiting in {service}",
                cb.customer_number
            )));
        }
        if let Some(slot) = cb.slot {
            let key = format!("{service}:{slot}");
            if store.count("callback", "slot", &key).await? > options.max_per_bucket {
                return Err(CallbackError::Unavailable(format!(
                    "no callback can be booked at {}: the time slot is full",
                    iso(slot)
                )));
            }
        }
        Ok(())
    }

    /// Reads a callback.
    pub async fn get(&self, id: &str) -> Result<Callback> {
        if check_key("a callback id", id).is_err() {
            return Err(CallbackError::NotFound(id.to_owned()));
        }
        self.inner
            .records
            .get(id)
            .await?
            .map(|v| v.value)
            .ok_or_else(|| CallbackError::NotFound(id.to_owned()))
    }

    /// Applies `change` to a callback with compare-and-set, retrying on a
    /// concurrent write; sends the event when its state changed.
    pub async fn update(
        &self,
        id: &str,
        change: impl Fn(&mut Callback) -> Result<()>,
    ) -> Result<Callback> {
        self.update_from(id, None, change).await
    }

    /// `update`, starting from a copy already read (it is read again only
    /// if it has changed since).
    pub(super) async fn update_from(
        &self,
        id: &str,
        read: Option<Versioned<Callback>>,
        change: impl Fn(&mut Callback) -> Result<()>,
    ) -> Result<Callback> {
        if check_key("a callback id", id).is_err() {
            return Err(CallbackError::NotFound(id.to_owned()));
        }
        let (cb, moved) = self
            .inner
            .records
            .modify_from(
                id,
                read,
                |cb| Some(self.ttl(cb)),
                |cb| {
                    let steps = cb.history.len();
                    change(cb)?;
                    Ok::<_, CallbackError>(cb.history.len() != steps)
                },
            )
            .await?
            .ok_or_else(|| CallbackError::NotFound(id.to_owned()))?;
        if moved {
            self.emit(id, &cb);
        }
        Ok(cb)
    }

    /// Moves a callback to `to`, if the state machine allows it.
    pub async fn move_to(
        &self,
        id: &str,
        to: State,
        reason: Option<String>,
        by: &str,
    ) -> Result<Callback> {
        self.update(id, |cb| {
            check_move(id, cb.state, to)?;
            cb.enter(to, reason.clone(), by, now_ms());
            Ok(())
        })
        .await
    }

    /// The customer cancels (`DELETE .../callback/{service}/{id}`, or the
    /// dialog's cancel): only before an agent has the call.
    pub async fn cancel(&self, service: Option<&str>, id: &str) -> Result<Callback> {
        self.update(id, |cb| {
            if service.is_some_and(|s| s != cb.service) {
                return Err(CallbackError::NotFound(id.to_owned()));
            }
            if cb.state == State::Processing {
                return Err(CallbackError::IllegalTransition {
                    id: id.to_owned(),
                    from: cb.state.name(),
                    to: "cancelled (an agent has the call)",
                });
            }
            check_move(id, cb.state, State::Completed)?;
            cb.enter(
                State::Completed,
                Some("CANCELLED".into()),
                BY_CUSTOMER,
                now_ms(),
            );
            Ok(())
        })
        .await
    }

    /// The customer picks another time (and may change its properties).
    pub async fn reschedule(
        &self,
        service: &str,
        id: &str,
        changes: BTreeMap<String, String>,
    ) -> Result<Callback> {
        let raw = self.service(service)?;
        let current = self.get(id).await?;
        if current.service != service {
            return Err(CallbackError::NotFound(id.to_owned()));
        }
        let options = resolve(raw, &current.properties, &self.inner.settings);
        let text = changes
            .get("_desired_time")
            .ok_or_else(|| CallbackError::BadRequest("_desired_time is required".into()))?;
        let desired = parse_iso(text).ok_or_else(|| {
            CallbackError::BadRequest(format!("_desired_time {text:?} is not an ISO 8601 time"))
        })?;
        let now = now_ms();
        if desired <= now {
            return Err(CallbackError::BadRequest(format!(
                "_desired_time {} is in the past",
                iso(desired)
            )));
        }
        self.within_horizon(desired, now)?;
        if !self.open_at(&options, desired)? {
            return Err(CallbackError::Unavailable(format!(
                "{} is outside office hours",
                iso(desired)
            )));
        }
        let bucket_ms = options.bucket.as_millis() as u64;
        let slot = desired - desired % bucket_ms;
        if current.slot != Some(slot) {
            let taken = self
                .inner
                .records
                .store()
                .count("callback", "slot", &format!("{service}:{slot}"))
                .await?;
            if taken >= options.max_per_bucket {
                return Err(CallbackError::Unavailable(format!(
                    "no callback can be booked at {}: the time slot is full",
                    iso(slot)
                )));
            }
        }
        let ttl = options.ttl.as_millis() as u64;
        self.update(id, move |cb| {
            check_move(id, cb.state, State::Scheduled)?;
            for (k, v) in &changes {
                cb.properties.insert(k.clone(), v.clone());
            }
            cb.desired_time = desired;
            cb.scheduled = true;
            cb.slot = Some(slot);
            cb.expiration_time = desired + ttl;
            cb.agent = None;
            cb.enter(State::Scheduled, None, BY_CUSTOMER, now_ms());
            Ok(())
        })
        .await
    }

    /// The router takes the oldest waiting callback of a service (optionally
    /// only those of one virtual queue): it becomes ROUTING.
    pub async fn take_next(
        &self,
        service: &str,
        router: &str,
        vq: Option<&str>,
    ) -> Result<Option<(String, Callback)>> {
        self.service(service)?;
        let mut waiting = self.in_state(service, State::Queued).await?;
        if let Some(vq) = vq {
            waiting.retain(|(_, cb)| {
                ["_urs_virtual_queue", "_vq"]
                    .iter()
                    .any(|k| cb.properties.get(*k).is_some_and(|v| v == vq))
            });
        }
        for (id, _) in waiting {
            let taken = self
                .update(&id, |cb| {
                    check_move(&id, cb.state, State::Routing)?;
                    cb.agent = Some(router.to_owned());
                    cb.enter(State::Routing, None, router, now_ms());
                    Ok(())
                })
                .await;
            match taken {
                Ok(cb) => return Ok(Some((id, cb))),
                // Taken by another router meanwhile: try the next one.
                Err(CallbackError::IllegalTransition { .. }) | Err(CallbackError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// The callbacks of a service in one state, oldest (by desired time) first.
    pub async fn in_state(&self, service: &str, state: State) -> Result<Vec<(String, Callback)>> {
        let key = format!("{service}:{}", state.name());
        let mut found: Vec<(String, Callback)> = self
            .inner
            .records
            .find("svcstate", &key, MAX_READ)
            .await?
            .into_iter()
            .map(|(id, v)| (id, v.value))
            .filter(|(_, cb)| cb.state == state)
            .collect();
        found.sort_by(|a, b| {
            (a.1.desired_time, a.1.created_at, &a.0).cmp(&(b.1.desired_time, b.1.created_at, &b.0))
        });
        Ok(found)
    }

    /// `check-queue-position`: where a waiting callback stands in its queue.
    pub async fn position(&self, id: &str) -> Result<Value> {
        let cb = self.get(id).await?;
        let waiting = self.in_state(&cb.service, State::Queued).await?;
        let position = waiting
            .iter()
            .position(|(other, _)| other == id)
            .map_or(0, |p| p + 1);
        // No Stat Server here to estimate a wait from: GMS answers 0 then.
        Ok(json!({
            "_id": id,
            "_callback_state": cb.state.name(),
            "_position": position,
            "_total_waiting": waiting.len(),
            "_eta": 0,
            "ewt": 0,
            "_agent_ready_threshold_passed": cb.state == State::Routing,
        }))
    }

    /// Continues the dialog (`POST /genesys/1/service/{id}/{action}`).
    pub async fn continue_dialog(&self, id: &str, action: &str) -> Result<Map<String, Value>> {
        let urls = &self.inner.urls;
        match action {
            "DisplayMenu" | "ConfirmationDialog" | "get-dialog" | "dialog" => {
                let cb = self.get(id).await?;
                Ok(dialog::current(id, &cb, urls))
            }
            "ready" => self.customer_ready(id).await,
            "cancel" => {
                let cb = self.cancel(None, id).await?;
                Ok(dialog::confirmation(id, &cb, &dialog::state_text(&cb)))
            }
            other => Err(CallbackError::BadRequest(format!(
                "unknown dialog action {other}: use ready, cancel or get-dialog"
            ))),
        }
    }

    /// The customer is ready: the call is placed (voice, contact centre
    /// dials), the number to dial is given, or the chat opens.
    async fn customer_ready(&self, id: &str) -> Result<Map<String, Value>> {
        let cb = self.get(id).await?;
        let urls = &self.inner.urls;
        let chat_now = cb.media_type == "chat" && cb.state == State::Queued && !cb.wait_for_agent;
        if cb.state != State::Routing && !chat_now {
            return Err(CallbackError::IllegalTransition {
                id: id.to_owned(),
                from: cb.state.name(),
                to: "ready (no agent is waiting for the customer)",
            });
        }
        if cb.media_type == "chat" {
            if let Some(chat) = &cb.chat {
                return Ok(dialog::start_chat(id, &cb, chat, urls));
            }
            let options = resolve(
                self.service(&cb.service)?,
                &cb.properties,
                &self.inner.settings,
            );
            let link = self.open_chat(&options.chat_service, &cb).await?;
            let cb = self
                .update(id, |c| {
                    if c.chat.is_some() {
                        return Ok(()); // opened by a concurrent "ready"
                    }
                    // Taken by a router (an agent is free): the chat is the
                    // conversation. Booked for now: the chat waits for an
                    // agent in the chat queue, as the customer would.
                    let to = if c.state == State::Routing {
                        State::Processing
                    } else {
                        State::Routing
                    };
                    check_move(id, c.state, to)?;
                    c.chat = Some(link.clone());
                    c.enter(to, None, BY_CUSTOMER, now_ms());
                    Ok(())
                })
                .await?;
            let chat = cb.chat.clone().unwrap_or(link);
            return Ok(dialog::start_chat(id, &cb, &chat, urls));
        }
        let cb = self
            .update(id, |c| {
                c.properties
                    .insert("_customer_ready_time".into(), iso(now_ms()));
                Ok(())
            })
            .await?;
        let options = resolve(
            self.service(&cb.service)?,
            &cb.properties,
            &self.inner.settings,
        );
        match (cb.direction, options.access_number) {
            (super::model::Direction::Useroriginated, Some(number)) => {
                Ok(dialog::dial_number(id, &cb, &number))
            }
            _ => Ok(dialog::confirmation(
                id,
                &cb,
                "You will receive the call shortly.",
            )),
        }
    }

    async fn open_chat(&self, chat_service: &str, cb: &Callback) -> Result<ChatLink> {
        let p = &cb.properties;
        let nickname = p
            .get("_nickname")
            .or_else(|| p.get("nickname"))
            .or_else(|| p.get("first_name"))
            .or_else(|| p.get("firstName"))
            .cloned()
            .unwrap_or_else(|| cb.customer_number.clone());
        let user_data = p
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain([("_customer_number".to_owned(), cb.customer_number.clone())])
            .collect();
        let request = ChatRequest {
            nickname: Some(if nickname.is_empty() {
                "Customer".into()
            } else {
                nickname
            }),
            subject: p.get("_chat_subject").or_else(|| p.get("subject")).cloned(),
            user_data,
            ..ChatRequest::default()
        };
        let (chat_id, chat) = self.inner.chats.request(chat_service, request).await?;
        Ok(ChatLink {
            service: chat_service.to_owned(),
            chat_id,
            user_id: chat.user_id,
            secure_key: chat.secure_key,
        })
    }

    /// Sends the customer's app the event for the state the callback is in.
    fn emit(&self, id: &str, cb: &Callback) {
        // Services are configured names (a booking for another is refused).
        metrics::counter!(
            "gmshub_callbacks_total",
            "service" => cb.service.clone(),
            "state" => cb.state.name()
        )
        .increment(1);
        let (Some(os), Some(device)) = (&cb.device_os, &cb.device_notification_id) else {
            return;
        };
        let Some(kind) = PushType::parse(os) else {
            return;
        };
        let n = Notification {
            // Not a subscription: a device reported gone removes nothing.
            subscription_id: format!("callback:{id}"),
            kind,
            provider: cb.provider_name.clone(),
            debug: cb
                .properties
                .get("_debug")
                .is_some_and(|d| d.eq_ignore_ascii_case("true")),
            device_id: device.clone(),
            authorization: None,
            tag: format!("service.callback.{}", cb.state.name()).into(),
            message: dialog::event(id, cb).to_string().into(),
            // The text APNs and FCM show; the message is the app's data.
            properties: BTreeMap::from([(push::TEXT.to_owned(), dialog::state_text(cb))]),
            tally: None,
        };
        if let Err(e) = self.inner.dispatcher.submit(n) {
            tracing::warn!(callback = id, "callback event not sent: {e}");
        }
    }
}

/// Refuses a move the state machine does not allow.
pub fn check_move(id: &str, from: State, to: State) -> Result<()> {
    if from.may_become(to) {
        Ok(())
    } else {
        Err(CallbackError::IllegalTransition {
            id: id.to_owned(),
            from: from.name(),
            to: to.name(),
        })
    }
}
