//! The Bayeux server's state and the API the services built on top use:
//! the session registry, the subscription index, the registered services,
//! extensions, security policy and relay, and how a session is queued to
//! and removed. The other files of this module add the meta channels
//! ([`meta`](super::meta)), held connects ([`connect`](super::connect)),
//! publishing ([`publish`](super::publish)) and expiry
//! ([`sweeper`](super::sweeper)) to the same [`Bayeux`].

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::RwLock;
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::channel::{ChannelError, ChannelName, Family};
use crate::client::{Census, Pacer};
use crate::config::BayeuxConfig;
use crate::ext::Extension;
use crate::message::{Advice, Incoming, Reply};
use crate::relay::Relay;
use crate::request::RequestContext;
use crate::security::{AllowAll, SecurityPolicy};
use crate::session::{Enqueued, RemoveReason, Session};
use crate::stats::{Counters, Stats};
use crate::subscriptions::SubscriptionIndex;

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
    pub(super) config: BayeuxConfig,
    pub(super) sessions: DashMap<Box<str>, Arc<Session>>,
    pub(super) index: SubscriptionIndex,
    /// Per browser, the sessions holding a long-poll connect (a session
    /// appears once per connect it holds).
    pub(super) held_by_browser: DashMap<Box<str>, Vec<u64>>,
    pub(super) services: RwLock<Vec<(ChannelName, Arc<dyn ServiceHandler>)>>,
    pub(super) policy: RwLock<Arc<dyn SecurityPolicy>>,
    pub(super) extensions: RwLock<Vec<Arc<dyn Extension>>>,
    pub(super) removal_listeners: RwLock<Vec<RemovalListener>>,
    pub(super) relay: std::sync::OnceLock<Arc<dyn Relay>>,
    pub(super) next_key: AtomicU64,
    pub(super) shutdown: watch::Sender<bool>,
    /// What the engine has done, for `stats`.
    pub(crate) counters: Counters,
    /// Live sessions and handshakes per client address and browser.
    pub(super) census: Census,
    pub(super) pacer: std::sync::OnceLock<Arc<dyn Pacer>>,
}

impl Bayeux {
    pub fn new(config: BayeuxConfig) -> Arc<Self> {
        Arc::new(Self {
            census: Census::new(config.clients.clone()),
            pacer: std::sync::OnceLock::new(),
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
            counters: Counters::default(),
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

    /// Paces every WebSocket's frames with `pacer`. Set once, at startup; a
    /// second one is refused (returns false).
    pub fn set_pacer(&self, pacer: Arc<dyn Pacer>) -> bool {
        self.pacer.set(pacer).is_ok()
    }

    pub(crate) fn pacer(&self) -> Option<Arc<dyn Pacer>> {
        self.pacer.get().cloned()
    }

    /// Calls `listener` whenever a session ends, whatever the reason.
    pub fn on_session_removed(&self, listener: RemovalListener) {
        self.removal_listeners.write().push(listener);
    }

    // ---- server-side API ----

    /// Live sessions counted for the client address `ip` (by its key).
    pub fn sessions_from(&self, ip: std::net::IpAddr) -> usize {
        self.census.sessions_of(crate::client::client_key(ip))
    }

    pub fn session(&self, client_id: &str) -> Option<Arc<Session>> {
        self.sessions.get(client_id).map(|s| s.clone())
    }

    /// Messages dropped under `maxQueuePolicy = drop-oldest` since start:
    /// the oldest pending ones that made room, and the ones that could not
    /// fit at all.
    pub fn dropped_messages(&self) -> u64 {
        self.counters.dropped_total()
    }

    /// The engine's counters, with its live sessions by transport and its
    /// held connects counted now (a walk of the sessions: for a scrape, not
    /// for a hot path).
    pub fn stats(&self) -> Stats {
        let mut stats = self.counters.snapshot();
        for session in self.sessions.iter() {
            let transport = (session.transport_code() as usize).min(2);
            stats.sessions[transport] += 1;
            stats.held_connects += u64::from(session.holds_connect());
        }
        stats
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Channels and patterns that have at least one subscriber.
    pub fn channel_count(&self) -> usize {
        self.index.len()
    }

    /// Ends a session from the server side.
    pub fn disconnect(&self, session: &Arc<Session>) {
        self.remove_session(session, RemoveReason::Server);
    }

    /// Tells every client to go elsewhere: held connects are answered with
    /// `402::session_unknown` and `reconnect: handshake`, WebSockets close,
    /// and new handshakes are refused from the start. The sessions end in
    /// ten slices over `spread`, so that their clients' new handshakes do
    /// not reach the other nodes all at once.
    pub async fn shutdown_over(&self, spread: Duration) {
        const SLICES: u32 = 10;
        self.shutdown.send_replace(true);
        let all: Vec<Arc<Session>> = self.sessions.iter().map(|s| s.clone()).collect();
        let per_slice = all.len().div_ceil(SLICES as usize).max(1);
        for (i, slice) in all.chunks(per_slice).enumerate() {
            if i > 0 {
                tokio::time::sleep(spread / SLICES).await;
            }
            for session in slice {
                self.remove_session(session, RemoveReason::Shutdown);
            }
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Finds the session a message names, if the request may act for it:
    /// over HTTP the BAYEUX_BROWSER cookie must match the one the session was
    /// created with (unless `trustClientSession`), and a WebSocket may always
    /// act for the session it carries.
    pub(super) fn lookup(
        &self,
        client_id: Option<&str>,
        ctx: &RequestContext<'_>,
    ) -> Option<Arc<Session>> {
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
    pub(super) fn finish_reply(
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

    pub(super) fn connect_advice(&self) -> Advice {
        Advice {
            reconnect: Some("retry"),
            interval: Some(self.config.interval.as_millis() as i64),
            timeout: Some(self.config.timeout.as_millis() as u64),
            max_interval: Some(self.config.max_interval.as_millis() as u64),
            multiple_clients: None,
        }
    }

    pub(super) fn supports(&self, connection_type: &str) -> bool {
        self.config.allowed_transports.contains(&connection_type)
    }

    pub(super) fn enqueue(
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
            Enqueued::Queued { wake, dropped } => {
                self.counters.dropped(dropped);
                if wake {
                    session.wake();
                }
                true
            }
            Enqueued::Dropped => {
                self.counters.dropped(1);
                false
            }
            Enqueued::Overflow => {
                overflow.push(session.clone());
                false
            }
            Enqueued::Gone => false,
        }
    }

    pub(super) fn remove_session(&self, session: &Arc<Session>, reason: RemoveReason) {
        if !session.mark_removed(reason) {
            return;
        }
        self.counters.removed(reason);
        if reason == RemoveReason::QueueFull {
            tracing::info!(
                session = session.key(),
                "session removed: outbound queue full"
            );
        }
        self.sessions
            .remove_if(session.id(), |_, s| s.key() == session.key());
        if let Some(key) = session.client_key() {
            self.census.release(key, session.browser());
        }
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
