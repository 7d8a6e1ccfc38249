//! `/meta/connect`: the connect a transport holds until there is something
//! to deliver, the session ends or a newer connect supersedes it, and the
//! per-browser count of held long-poll connects.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::core::Bayeux;
use crate::channel::META_CONNECT;
use crate::clock::now_ms;
use crate::error;
use crate::ext::ack;
use crate::message::{Advice, Incoming, Reply};
use crate::request::{RequestContext, Transport};
use crate::session::{RemoveReason, Session};

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

    /// Which of its session's connects this is: a later connect, on any
    /// transport, has a higher number.
    pub fn generation(&self) -> u64 {
        self.gen
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
                    let before = out.len();
                    if self.session.ack_enabled() {
                        let (batch, resent) = self.session.drain_acked(out);
                        ack::connect_reply(&mut reply.ext, batch);
                        server.counters.redelivered(resent);
                    } else {
                        self.session.drain(out);
                    }
                    server.counters.delivered(out.len() - before);
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

impl Bayeux {
    /// A `/meta/connect`: the connect to hold, or the reply refusing it.
    pub(super) fn connect(
        self: &Arc<Self>,
        message: Box<Incoming>,
        session: Option<Arc<Session>>,
        batch_len: usize,
        ctx: &RequestContext<'_>,
    ) -> Result<HeldConnect, Bytes> {
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
                return Err(self.finish_reply(None, &message, reply));
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
        session.set_transport_code(ctx.transport as u8);

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
        // A held connect may live for `timeout` on every session at once:
        // keep only what its reply and the extensions still read.
        let mut message = message;
        message.client_id = None;
        message.connection_type = None;
        message.data = None;
        message.subscription = None;
        Ok(HeldConnect {
            server: self.clone(),
            session,
            request: message,
            gen,
            timeout,
            advice,
            browser,
        })
    }

    pub(super) fn release_browser(&self, browser: &str, key: u64) {
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
}
