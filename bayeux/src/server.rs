//! The Bayeux server: the session registry, the five meta channels,
//! publishing with fan-out to subscribers, `/service` dispatch, the API that
//! services built on top use, and the sweeper that expires sessions.
//!
//! Transports turn requests into [`Parsed`] batches, call
//! [`Bayeux::handle_batch`], and, when the batch held a `/meta/connect`, wait
//! on it ([`Bayeux::hold`] or their own loop) before calling
//! [`HeldConnect::complete`] to collect what goes back.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::RwLock;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::channel::{
    ChannelError, ChannelName, Family, Wildcard, META_CONNECT, META_DISCONNECT, META_HANDSHAKE,
    META_SUBSCRIBE, META_UNSUBSCRIBE,
};
use crate::config::BayeuxConfig;
use crate::error;
use crate::ext::{ack, Broadcast, Extension};
use crate::message::{encode_delivery, encode_service_reply, Advice, Incoming, Parsed, Reply};
use crate::relay::Relay;
use crate::security::{AllowAll, SecurityPolicy};
use crate::session::{now_ms, random_hex, Enqueued, RemoveReason, Session};
use crate::subscriptions::{Subscribers, SubscriptionIndex};

/// The transport a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    LongPolling,
    CallbackPolling,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::LongPolling => "long-polling",
            Transport::CallbackPolling => "callback-polling",
        }
    }
}

/// What the server knows about the request a batch arrived in.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    pub transport: Transport,
    /// The BAYEUX_BROWSER id of the request (cookie, or the one being set).
    pub browser: Option<&'a str>,
    /// The session the WebSocket connection carrying this batch belongs to.
    pub bound: Option<&'a Arc<Session>>,
    /// The end user the request names (`BayeuxConfig::identity_header`).
    pub user: Option<&'a str>,
}

/// What handling a batch produced.
#[derive(Default)]
pub struct Outcome {
    /// Encoded replies, in request order (a `/meta/connect` reply excepted).
    pub replies: Vec<Bytes>,
    /// The batch's `/meta/connect`, to be held and then completed.
    pub connect: Option<HeldConnect>,
    /// The session a handshake in this batch created.
    pub handshaken: Option<Arc<Session>>,
}

/// A `/meta/connect` waiting for its reply. Dropping it without completing
/// (a client that went away) still releases what it held.
pub struct HeldConnect {
    server: Arc<Bayeux>,
    session: Arc<Session>,
    request: Box<Incoming>,
    gen: u64,
    timeout: Duration,
    advice: Advice,
    /// The browser whose held-connect count includes this connect.
    browser: Option<Box<str>>,
}

impl HeldConnect {
    /// How long the connect may be held; zero means "answer now".
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Whether the connect should be answered now: messages are waiting, the
    /// session ended, or a newer connect took its place.
    pub fn is_ready(&self) -> bool {
        self.session.is_removed()
            || self.session.connect_gen() != self.gen
            || self.session.has_pending()
    }

    /// Builds the answer: the messages this connect carries, then its reply.
    pub fn complete(self, out: &mut Vec<Bytes>) {
        let server = self.server.clone();
        let mut reply = Reply::new(Some(META_CONNECT), self.request.id.as_deref());
        match self.session.removed_reason() {
            Some(RemoveReason::Disconnected) => {
                reply = reply.success();
                reply.advice = Some(Advice::none());
            }
            Some(reason) => {
                reply = reply.failure(error::SESSION_UNKNOWN);
                let mut advice = Advice::handshake();
                if reason == RemoveReason::Shutdown {
                    // Spread the herd of clients re-handshaking elsewhere.
                    advice.interval = Some(rand::random_range(0..2000));
                }
                reply.advice = Some(advice);
            }
            None => {
                if self.session.connect_gen() == self.gen {
                    if self.session.ack_enabled() {
                        let batch = self.session.drain_acked(out);
                        ack::connect_reply(&mut reply.ext, batch);
                    } else {
                        self.session.drain(out);
                    }
                }
                reply = reply.success();
                reply.advice = Some(self.advice.clone());
            }
        }
        out.push(server.finish_reply(Some(&self.session), &self.request, reply));
    }
}

impl Drop for HeldConnect {
    fn drop(&mut self) {
        if let Some(browser) = self.browser.take() {
            self.server.release_browser(&browser, self.session.key());
        }
        // The session's expiry clock restarts when its latest connect ends.
        if self.session.connect_gen() == self.gen {
            let cfg = &self.server.config;
            self.session
                .set_expires_at(now_ms() + (cfg.interval + cfg.max_interval).as_millis() as u64);
        }
    }
}

/// A message published by a client to a `/service/**` channel.
pub struct ServiceRequest<'a> {
    pub channel: &'a ChannelName,
    pub data: &'a RawValue,
    pub ext: Option<&'a RawValue>,
    pub id: Option<&'a RawValue>,
}

/// Server-side code answering `/service/**` channels. It runs on the
/// request's task: anything slow must be spawned.
pub trait ServiceHandler: Send + Sync + 'static {
    fn handle(&self, server: &Arc<Bayeux>, session: &Arc<Session>, request: &ServiceRequest<'_>);
}

pub type RemovalListener = Arc<dyn Fn(&Arc<Session>, RemoveReason) + Send + Sync>;

/// Why a server-side publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("invalid channel: {0}")]
    Channel(#[from] ChannelError),
    #[error("only plain broadcast or service channels can carry messages")]
    NotBroadcast,
}

pub struct Bayeux {
    config: BayeuxConfig,
    sessions: DashMap<Box<str>, Arc<Session>>,
    index: SubscriptionIndex,
    /// Per browser, the sessions holding a long-poll connect (a session
    /// appears once per connect it holds).
    held_by_browser: DashMap<Box<str>, Vec<u64>>,
    services: RwLock<Vec<(ChannelName, Arc<dyn ServiceHandler>)>>,
    policy: RwLock<Arc<dyn SecurityPolicy>>,
    extensions: RwLock<Vec<Arc<dyn Extension>>>,
    removal_listeners: RwLock<Vec<RemovalListener>>,
    relay: std::sync::OnceLock<Arc<dyn Relay>>,
    next_key: AtomicU64,
    shutdown: watch::Sender<bool>,
}

impl Bayeux {
    pub fn new(config: BayeuxConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            sessions: DashMap::new(),
            index: SubscriptionIndex::default(),
            held_by_browser: DashMap::new(),
            services: RwLock::new(Vec::new()),
            policy: RwLock::new(Arc::new(AllowAll)),
            extensions: RwLock::new(Vec::new()),
            removal_listeners: RwLock::new(Vec::new()),
            relay: std::sync::OnceLock::new(),
            next_key: AtomicU64::new(1),
            shutdown: watch::channel(false).0,
        })
    }

    pub fn config(&self) -> &BayeuxConfig {
        &self.config
    }

    // ---- configuration by the services built on top ----

    pub fn set_security_policy(&self, policy: Arc<dyn SecurityPolicy>) {
        *self.policy.write() = policy;
    }

    pub fn add_extension(&self, extension: Arc<dyn Extension>) {
        self.extensions.write().push(extension);
    }

    /// Routes publishes on channels matching `pattern` (a `/service/**`
    /// channel or wildcard) to `handler`.
    pub fn add_service(
        &self,
        pattern: &str,
        handler: Arc<dyn ServiceHandler>,
    ) -> Result<(), PublishError> {
        let pattern = ChannelName::parse(pattern)?;
        if pattern.family() != Family::Service {
            return Err(PublishError::NotBroadcast);
        }
        self.services.write().push((pattern, handler));
        Ok(())
    }

    /// Hands every broadcast to `relay` too (the cluster bus). Set once, at
    /// startup; a second relay is refused (returns false).
    pub fn set_relay(&self, relay: Arc<dyn Relay>) -> bool {
        self.relay.set(relay).is_ok()
    }

    /// Calls `listener` whenever a session ends, whatever the reason.
    pub fn on_session_removed(&self, listener: RemovalListener) {
        self.removal_listeners.write().push(listener);
    }

    // ---- server-side API ----

    pub fn session(&self, client_id: &str) -> Option<Arc<Session>> {
        self.sessions.get(client_id).map(|s| s.clone())
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Channels and patterns that have at least one subscriber.
    pub fn channel_count(&self) -> usize {
        self.index.len()
    }

    /// Publishes `data` (a JSON value) on a broadcast channel from the server;
    /// returns how many sessions it was queued for.
    pub fn publish(&self, channel: &str, data: &RawValue) -> Result<usize, PublishError> {
        let name = ChannelName::parse(channel)?;
        if name.family() != Family::Broadcast || name.is_wildcard() {
            return Err(PublishError::NotBroadcast);
        }
        let message = encode_delivery(channel, data, None);
        self.relay(channel, &message);
        Ok(self.fan_out(channel, message, None))
    }

    /// Fans out a broadcast another server of the cluster relayed here (an
    /// encoded delivery), to this server's subscribers only.
    pub fn fan_out_relayed(&self, channel: &str, message: Bytes) -> Result<usize, PublishError> {
        let name = ChannelName::parse(channel)?;
        if name.family() != Family::Broadcast || name.is_wildcard() {
            return Err(PublishError::NotBroadcast);
        }
        Ok(self.fan_out(channel, message, None))
    }

    fn relay(&self, channel: &str, message: &Bytes) {
        if let Some(relay) = self.relay.get() {
            relay.broadcast(channel, message);
        }
    }

    /// Delivers `data` on `channel` to one session only.
    pub fn deliver(
        &self,
        session: &Arc<Session>,
        channel: &str,
        data: &RawValue,
    ) -> Result<bool, PublishError> {
        let name = ChannelName::parse(channel)?;
        if name.is_meta() || name.is_wildcard() {
            return Err(PublishError::NotBroadcast);
        }
        Ok(self.deliver_encoded(session, encode_delivery(channel, data, None)))
    }

    /// Answers a `/service` request with `data`, to the requesting session
    /// only, on the request's channel and with its `id` (a CometD client's
    /// `remoteCall` waits for exactly that).
    pub fn reply(
        &self,
        session: &Arc<Session>,
        request: &ServiceRequest<'_>,
        data: &RawValue,
    ) -> bool {
        let message = encode_service_reply(request.channel.as_str(), request.id, data);
        self.deliver_encoded(session, message)
    }

    fn deliver_encoded(&self, session: &Arc<Session>, message: Bytes) -> bool {
        let mut overflow = Vec::new();
        let queued = self.push(session, &message, &mut overflow);
        for s in overflow {
            self.remove_session(&s, RemoveReason::QueueFull);
        }
        queued
    }

    /// Ends a session from the server side.
    pub fn disconnect(&self, session: &Arc<Session>) {
        self.remove_session(session, RemoveReason::Server);
    }

    /// Tells every client to go elsewhere: held connects are answered with
    /// `402::session_unknown` and `reconnect: handshake`, WebSockets close,
    /// and new handshakes are refused.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let all: Vec<Arc<Session>> = self.sessions.iter().map(|s| s.clone()).collect();
        for session in all {
            self.remove_session(&session, RemoveReason::Shutdown);
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Starts the sweeper: one task that removes sessions whose `maxInterval`
    /// passed without a `/meta/connect`. It stops when the server is dropped.
    pub fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        let period = self.config.sweep_period;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(server) = weak.upgrade() else { return };
                server.sweep();
            }
        })
    }

    /// One sweeper pass.
    pub fn sweep(&self) {
        let now = now_ms();
        let expired: Vec<Arc<Session>> = self
            .sessions
            .iter()
            .filter(|s| s.expires_at() < now)
            .map(|s| s.clone())
            .collect();
        for session in expired {
            tracing::debug!(session = session.key(), "session expired");
            self.remove_session(&session, RemoveReason::Expired);
        }
    }

    // ---- request handling ----

    /// Handles one request's messages.
    pub fn handle_batch(self: &Arc<Self>, batch: Vec<Parsed>, ctx: &RequestContext<'_>) -> Outcome {
        let mut out = Outcome::default();
        let len = batch.len();
        // A handshake must travel alone; whatever came with it is ignored.
        let handshake = batch.iter().position(
            |p| matches!(p, Parsed::Ok(m) if m.channel.as_deref() == Some(META_HANDSHAKE)),
        );
        let batch: Vec<Parsed> = match handshake {
            Some(i) if len > 1 => batch.into_iter().skip(i).take(1).collect(),
            _ => batch,
        };
        for parsed in batch {
            match parsed {
                Parsed::Ok(message) => self.handle_message(message, len, ctx, &mut out),
                Parsed::Invalid { id } => {
                    let reply = Reply::new(None, id.as_deref()).failure(error::MESSAGE_INVALID);
                    out.replies.push(reply.encode());
                }
            }
        }
        out
    }

    fn handle_message(
        self: &Arc<Self>,
        mut message: Box<Incoming>,
        batch_len: usize,
        ctx: &RequestContext<'_>,
        out: &mut Outcome,
    ) {
        let session = self.lookup(message.client_id.as_deref(), ctx);
        // Extensions are registered at startup; reading them under the
        // lock costs nothing and spares a clone per message.
        let deleted = self
            .extensions
            .read()
            .iter()
            .any(|ext| !ext.incoming(session.as_deref(), &mut message));
        if deleted {
            let reply = Reply::new(message.channel.as_deref(), message.id.as_deref())
                .failure(error::MESSAGE_DELETED);
            out.replies
                .push(self.finish_reply(session.as_deref(), &message, reply));
            return;
        }
        let Some(channel) = message.channel.as_deref() else {
            let reply = Reply::new(None, message.id.as_deref()).failure(error::CHANNEL_MISSING);
            out.replies
                .push(self.finish_reply(session.as_deref(), &message, reply));
            return;
        };
        if !message.id_is_valid() {
            let reply = Reply::new(Some(channel), None).failure(error::MESSAGE_ID_INVALID);
            out.replies.push(reply.encode());
            return;
        }
        match channel {
            META_HANDSHAKE => self.handshake(&message, ctx, out),
            META_CONNECT => self.connect(message, session, batch_len, ctx, out),
            META_SUBSCRIBE => self.subscribe(&message, session, out),
            META_UNSUBSCRIBE => self.unsubscribe(&message, session, out),
            META_DISCONNECT => self.disconnect_meta(&message, session, out),
            _ => self.publish_message(channel, &message, session, out),
        }
    }

    /// Finds the session a message names, if the request may act for it:
    /// over HTTP the BAYEUX_BROWSER cookie must match the one the session was
    /// created with (unless `trustClientSession`), and a WebSocket may always
    /// act for the session it carries.
    fn lookup(&self, client_id: Option<&str>, ctx: &RequestContext<'_>) -> Option<Arc<Session>> {
        let id = client_id?;
        if let Some(bound) = ctx.bound {
            if bound.id() == id && !bound.is_removed() {
                return Some(bound.clone());
            }
        }
        let session = self.sessions.get(id)?.clone();
        if !self.config.trust_client_session && session.browser() != ctx.browser {
            return None;
        }
        Some(session)
    }

    /// Runs outgoing extensions on a reply and encodes it.
    fn finish_reply(
        &self,
        session: Option<&Session>,
        request: &Incoming,
        mut reply: Reply<'_>,
    ) -> Bytes {
        for ext in self.extensions.read().iter() {
            ext.outgoing_reply(session, request, &mut reply);
        }
        reply.encode()
    }

    fn connect_advice(&self) -> Advice {
        Advice {
            reconnect: Some("retry"),
            interval: Some(self.config.interval.as_millis() as i64),
            timeout: Some(self.config.timeout.as_millis() as u64),
            max_interval: Some(self.config.max_interval.as_millis() as u64),
            multiple_clients: None,
        }
    }

    fn supports(&self, connection_type: &str) -> bool {
        self.config.allowed_transports.contains(&connection_type)
    }

    fn handshake(&self, message: &Incoming, ctx: &RequestContext<'_>, out: &mut Outcome) {
        let mut reply = Reply::new(Some(META_HANDSHAKE), message.id.as_deref());
        reply.version = Some(crate::VERSION);
        reply.minimum_version = Some(crate::VERSION);
        reply.supported_connection_types = Some(&self.config.allowed_transports);

        let refusal = if self.is_shutting_down() {
            Some((
                error::handshake_denied("shutting_down"),
                Advice::handshake(),
            ))
        } else if message
            .supported_connection_types
            .as_ref()
            .is_some_and(|types| !types.iter().any(|t| self.supports(t)))
        {
            Some((
                error::CONNECTION_TYPE_UNSUPPORTED.to_owned(),
                Advice::none(),
            ))
        } else if self.sessions.len() >= self.config.max_sessions {
            let mut advice = Advice::handshake();
            advice.interval = Some(1000);
            Some((error::handshake_denied("too_many_sessions"), advice))
        } else {
            let policy = self.policy.read().clone();
            policy
                .can_handshake(message, ctx)
                .err()
                .map(|reason| (error::handshake_denied(&reason), Advice::none()))
        };
        if let Some((err, advice)) = refusal {
            reply = reply.failure(err);
            reply.advice = Some(advice);
            out.replies.push(self.finish_reply(None, message, reply));
            return;
        }

        let ext = message.ext_object();
        let id = format!("{}{}", self.config.client_id_prefix, random_hex::<20>());
        let session = Arc::new(Session::new(
            self.next_key.fetch_add(1, Ordering::Relaxed),
            id.into(),
            ctx.browser.map(Into::into),
            ctx.user.map(Into::into),
            ext.clone(),
            now_ms() + self.config.max_interval.as_millis() as u64,
        ));
        if ack::requested(ext.as_ref()) {
            session.enable_ack();
            ack::handshake_reply(&mut reply.ext);
        }
        self.sessions.insert(session.id().into(), session.clone());
        reply.client_id = Some(session.id());
        reply.advice = Some(self.connect_advice());
        reply = reply.success();
        out.replies
            .push(self.finish_reply(Some(&session), message, reply));
        out.handshaken = Some(session);
    }

    fn connect(
        self: &Arc<Self>,
        message: Box<Incoming>,
        session: Option<Arc<Session>>,
        batch_len: usize,
        ctx: &RequestContext<'_>,
        out: &mut Outcome,
    ) {
        let unsupported = message
            .connection_type
            .as_deref()
            .is_some_and(|t| !self.supports(t));
        let session = match session {
            Some(session) if !unsupported => session,
            other => {
                let (error, advice) = match other {
                    None => (error::SESSION_UNKNOWN, Some(Advice::handshake())),
                    Some(_) => (error::CONNECTION_TYPE_UNSUPPORTED, None),
                };
                let mut reply =
                    Reply::new(Some(META_CONNECT), message.id.as_deref()).failure(error);
                reply.advice = advice;
                out.replies.push(self.finish_reply(None, &message, reply));
                return;
            }
        };
        if session.ack_enabled() {
            if let Some(acked) = ack::acknowledged(message.ext_object().as_ref()) {
                session.acknowledge(acked);
            }
        }
        let gen = session.next_connect_gen();
        // A connect this one supersedes is answered now.
        session.wake();
        session.set_expires_at(u64::MAX);

        // CometD answers a session's first connect at once, and never holds
        // a connect that shares its request with other messages.
        let mut timeout = if session.first_connect() || batch_len > 1 {
            Duration::ZERO
        } else {
            self.config.timeout
        };
        if let Some(t) = message.advice.as_ref().and_then(|a| a.timeout) {
            timeout = timeout.min(Duration::from_millis(t.max(0) as u64));
        }
        let mut advice = self.connect_advice();
        let mut browser = None;
        if !timeout.is_zero() && ctx.transport != Transport::WebSocket {
            if let Some(b) = ctx.browser {
                let mut held = self.held_by_browser.entry(b.into()).or_default();
                let others = held.iter().filter(|k| **k != session.key()).count();
                if others >= self.config.max_sessions_per_browser {
                    timeout = Duration::ZERO;
                    advice.multiple_clients = Some(true);
                    advice.interval = Some(self.config.multi_session_interval.as_millis() as i64);
                } else {
                    held.push(session.key());
                    browser = Some(b.into());
                }
            }
        }
        // Two connects in one batch: the first is superseded, answered now.
        if let Some(previous) = out.connect.take() {
            previous.complete(&mut out.replies);
        }
        // A held connect may live for `timeout` on every session at once:
        // keep only what its reply and the extensions still read.
        let mut message = message;
        message.client_id = None;
        message.connection_type = None;
        message.data = None;
        message.subscription = None;
        out.connect = Some(HeldConnect {
            server: self.clone(),
            session,
            request: message,
            gen,
            timeout,
            advice,
            browser,
        });
    }

    fn release_browser(&self, browser: &str, key: u64) {
        self.held_by_browser.remove_if_mut(browser, |_, held| {
            if let Some(i) = held.iter().position(|k| *k == key) {
                held.swap_remove(i);
            }
            held.is_empty()
        });
    }

    /// Waits until a held connect should be answered: something to deliver,
    /// the session gone or superseded, or its timeout reached.
    pub async fn hold(&self, held: &HeldConnect) {
        if held.timeout.is_zero() {
            return;
        }
        let deadline = Instant::now() + held.timeout;
        loop {
            let notified = held.session.signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if held.is_ready() {
                return;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// Validates the `subscription` field of a subscribe or unsubscribe.
    fn subscription_patterns(&self, message: &Incoming) -> Result<Vec<ChannelName>, &'static str> {
        let list = message
            .subscription
            .as_ref()
            .map(|s| s.as_slice())
            .filter(|s| !s.is_empty())
            .ok_or(error::SUBSCRIPTION_MISSING)?;
        list.iter()
            .map(|name| match ChannelName::parse(name) {
                Ok(c) if !c.is_meta() => Ok(c),
                _ => Err(error::SUBSCRIPTION_INVALID),
            })
            .collect()
    }

    fn subscription_reply<'a>(&self, channel: &'a str, message: &'a Incoming) -> Reply<'a> {
        let mut reply = Reply::new(Some(channel), message.id.as_deref());
        reply.subscription = message.subscription.as_ref().map(|s| match s {
            crate::message::OneOrMany::One(c) => Value::from(c.as_str()),
            crate::message::OneOrMany::Many(v) => Value::from(v.clone()),
        });
        reply
    }

    fn subscribe(&self, message: &Incoming, session: Option<Arc<Session>>, out: &mut Outcome) {
        let reply = self.subscription_reply(META_SUBSCRIBE, message);
        let result = session
            .as_ref()
            .ok_or(error::SESSION_UNKNOWN.to_owned())
            .and_then(|session| {
                let patterns = self.subscription_patterns(message).map_err(str::to_owned)?;
                let policy = self.policy.read().clone();
                for p in &patterns {
                    if !self.index.contains(p) && !policy.can_create(session, p) {
                        return Err(error::denied("channel_create_denied"));
                    }
                    if !policy.can_subscribe(session, p) {
                        return Err(error::denied("subscribe_denied"));
                    }
                }
                for p in patterns.iter().filter(|p| !p.is_service()) {
                    if session.add_subscription(p) {
                        self.index.subscribe(p, session);
                    }
                }
                // A disconnect racing this subscribe took the session's list
                // before we added to it: undo, so nothing dangles in the index.
                if session.is_removed() {
                    for p in &patterns {
                        self.index.unsubscribe(p, session.key());
                    }
                    return Err(error::SESSION_UNKNOWN.to_owned());
                }
                Ok(())
            });
        let reply = reply.result(result);
        out.replies
            .push(self.finish_reply(session.as_deref(), message, reply));
    }

    fn unsubscribe(&self, message: &Incoming, session: Option<Arc<Session>>, out: &mut Outcome) {
        let reply = self.subscription_reply(META_UNSUBSCRIBE, message);
        let result = session
            .as_ref()
            .ok_or(error::SESSION_UNKNOWN)
            .and_then(|session| {
                for p in self.subscription_patterns(message)? {
                    if session.remove_subscription(&p) {
                        self.index.unsubscribe(&p, session.key());
                    }
                }
                Ok(())
            });
        let reply = reply.result(result);
        out.replies
            .push(self.finish_reply(session.as_deref(), message, reply));
    }

    fn disconnect_meta(
        &self,
        message: &Incoming,
        session: Option<Arc<Session>>,
        out: &mut Outcome,
    ) {
        let reply = Reply::new(Some(META_DISCONNECT), message.id.as_deref());
        let reply = match &session {
            Some(session) => {
                self.remove_session(session, RemoveReason::Disconnected);
                reply.success()
            }
            None => reply.failure(error::SESSION_UNKNOWN),
        };
        out.replies
            .push(self.finish_reply(session.as_deref(), message, reply));
    }

    fn publish_message(
        self: &Arc<Self>,
        channel: &str,
        message: &Incoming,
        session: Option<Arc<Session>>,
        out: &mut Outcome,
    ) {
        let reply = Reply::new(Some(channel), message.id.as_deref());
        let reply = reply.result(self.try_publish(channel, message, session.as_ref()));
        out.replies
            .push(self.finish_reply(session.as_deref(), message, reply));
    }

    fn try_publish(
        self: &Arc<Self>,
        channel: &str,
        message: &Incoming,
        session: Option<&Arc<Session>>,
    ) -> Result<(), String> {
        let name = ChannelName::parse(channel).map_err(|_| error::CHANNEL_INVALID.to_owned())?;
        if name.wildcard() != Wildcard::None {
            return Err(error::CHANNEL_INVALID.to_owned());
        }
        if name.is_meta() {
            return Err(error::publish_denied("meta_channel"));
        }
        let session = session.ok_or(error::SESSION_UNKNOWN)?;
        let data = message.data.as_ref().ok_or(error::DATA_MISSING)?;
        let policy = self.policy.read().clone();
        if !policy.can_publish(session, &name, message) {
            return Err(error::publish_denied("denied_by_security_policy"));
        }
        if name.is_service() {
            let request = ServiceRequest {
                channel: &name,
                data,
                ext: message.ext.as_deref(),
                id: message.id.as_deref(),
            };
            let handlers: Vec<Arc<dyn ServiceHandler>> = self
                .services
                .read()
                .iter()
                .filter(|(p, _)| p.matches(channel))
                .map(|(_, h)| h.clone())
                .collect();
            for handler in handlers {
                handler.handle(self, session, &request);
            }
            return Ok(());
        }
        if !self.index.contains(&name) && !policy.can_create(session, &name) {
            return Err(error::denied("channel_create_denied"));
        }
        let mut replaced: Option<Box<RawValue>> = None;
        for ext in self.extensions.read().iter() {
            match ext.outgoing_broadcast(channel, replaced.as_deref().unwrap_or(data)) {
                Broadcast::Keep => {}
                Broadcast::Replace(new) => replaced = Some(new),
                Broadcast::Drop => return Ok(()),
            }
        }
        let data = replaced.as_deref().unwrap_or(data);
        let skip = (!self.config.broadcast_to_publisher).then(|| session.key());
        let encoded = encode_delivery(channel, data, message.ext.as_deref());
        self.relay(channel, &encoded);
        self.fan_out(channel, encoded, skip);
        Ok(())
    }

    /// Queues an encoded message for every session subscribed to `channel`
    /// (once per session, however many of its patterns match).
    fn fan_out(&self, channel: &str, message: Bytes, skip: Option<u64>) -> usize {
        let mut lists: Vec<Subscribers> = Vec::new();
        self.index.matching(channel, &mut lists);
        let mut overflow = Vec::new();
        let mut count = 0;
        let mut seen = HashSet::new();
        let dedup = lists.len() > 1;
        for list in &lists {
            for (key, session) in list.read().iter() {
                if Some(*key) == skip || (dedup && !seen.insert(*key)) {
                    continue;
                }
                if self.push(session, &message, &mut overflow) {
                    count += 1;
                }
            }
        }
        for session in overflow {
            self.remove_session(&session, RemoveReason::QueueFull);
        }
        count
    }

    fn push(
        &self,
        session: &Arc<Session>,
        message: &Bytes,
        overflow: &mut Vec<Arc<Session>>,
    ) -> bool {
        match session.enqueue(
            message.clone(),
            self.config.max_queue,
            self.config.queue_full_policy,
        ) {
            Enqueued::Yes(wake) => {
                if wake {
                    session.wake();
                }
                true
            }
            Enqueued::Overflow => {
                overflow.push(session.clone());
                false
            }
            Enqueued::Gone => false,
        }
    }

    fn remove_session(&self, session: &Arc<Session>, reason: RemoveReason) {
        if !session.mark_removed(reason) {
            return;
        }
        if reason == RemoveReason::QueueFull {
            tracing::info!(
                session = session.key(),
                "session removed: outbound queue full"
            );
        }
        self.sessions
            .remove_if(session.id(), |_, s| s.key() == session.key());
        for pattern in session.take_subscriptions() {
            self.index.unsubscribe(&pattern, session.key());
        }
        session.wake();
        let listeners = self.removal_listeners.read().clone();
        for listener in listeners {
            listener(session, reason);
        }
    }
}
