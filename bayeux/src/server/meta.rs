//! The meta channels but `/meta/connect`: a request's batch is handled
//! here, message by message (handshake, subscribe, unsubscribe,
//! disconnect; publishes go to [`publish`](super::publish), connects to
//! [`connect`](super::connect)).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::connect::HeldConnect;
use super::core::Bayeux;
use crate::channel::{
    ChannelName, META_CONNECT, META_DISCONNECT, META_HANDSHAKE, META_SUBSCRIBE, META_UNSUBSCRIBE,
};
use crate::client::Refusal;
use crate::clock::now_ms;
use crate::error;
use crate::ext::ack;
use crate::id::random_hex;
use crate::message::{Advice, Incoming, Parsed, Reply};
use crate::request::RequestContext;
use crate::session::{RemoveReason, Session};
use crate::stats::Kind;

/// How long a client whose address or browser has all the live sessions
/// it may is advised to wait before handshaking again.
const CLIENT_FULL_RETRY_MS: i64 = 5_000;

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

impl Bayeux {
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
        let mut publishes = 0;
        for parsed in batch {
            match parsed {
                Parsed::Ok(message) if !is_meta(&message) => {
                    publishes += 1;
                    if publishes > self.config.max_batch_publishes {
                        let reply = Reply::new(message.channel.as_deref(), message.id.as_deref())
                            .failure(error::PUBLISHES_TOO_MANY);
                        out.replies.push(reply.encode());
                    } else {
                        self.handle_message(message, len, ctx, &mut out);
                    }
                }
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
        // As in CometD, every message but a connect (which holds expiry
        // itself) keeps a session alive for another maxInterval: a client
        // that publishes over its socket between connects is not swept.
        if let Some(s) = &session {
            if message.channel.as_deref() != Some(META_CONNECT) {
                s.delay_expiry(now_ms() + self.config.max_interval.as_millis() as u64);
            }
        }
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
        let kind = Kind::of(channel);
        self.counters.received(kind);
        if kind == Kind::Meta {
            // Every meta message is answered once (a held connect later).
            self.counters.queued(Kind::Meta, 1);
        }
        match channel {
            META_HANDSHAKE => self.handshake(&message, ctx, out),
            META_CONNECT => match self.connect(message, session, batch_len, ctx) {
                // Two connects in one batch: the first is superseded, answered now.
                Ok(held) => {
                    if let Some(previous) = out.connect.replace(held) {
                        previous.complete(&mut out.replies);
                    }
                }
                Err(refusal) => out.replies.push(refusal),
            },
            META_SUBSCRIBE => self.subscribe(&message, session, out),
            META_UNSUBSCRIBE => self.unsubscribe(&message, session, out),
            META_DISCONNECT => self.disconnect_meta(&message, session, out),
            _ => out
                .replies
                .push(self.publish_message(channel, &message, session)),
        }
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
        } else if message
            .ext
            .as_ref()
            .is_some_and(|ext| ext.get().len() > self.config.max_handshake_ext)
        {
            Some((error::handshake_denied("ext_too_large"), Advice::none()))
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
        // Counted last, so that a handshake refused for another reason
        // takes no place.
        let counted_as = self.census.key_of(ctx.peer.map(|p| p.ip()));
        let refusal = refusal.or_else(|| {
            let refused = self.census.admit(counted_as?, ctx.browser).err()?;
            let mut advice = Advice::handshake();
            Some(match refused {
                Refusal::TooFast(wait) => {
                    advice.interval = Some(wait.as_millis().max(1) as i64);
                    (error::handshake_denied("too_many_handshakes"), advice)
                }
                Refusal::TooMany => {
                    advice.interval = Some(CLIENT_FULL_RETRY_MS);
                    (error::handshake_denied("too_many_sessions"), advice)
                }
            })
        });
        self.counters.handshake(refusal.is_none());
        if let Some((err, advice)) = refusal {
            reply = reply.failure(err);
            reply.advice = Some(advice);
            out.replies.push(self.finish_reply(None, message, reply));
            return;
        }

        let ext = message.ext_object();
        let id = format!("{}{}", self.config.client_id_prefix, random_hex::<20>());
        let session = Arc::new(
            Session::new(
                self.next_key.fetch_add(1, Ordering::Relaxed),
                id.into(),
                ctx.browser.map(Into::into),
                ctx.user.map(Into::into),
                message.ext.clone(),
                now_ms() + self.config.max_interval.as_millis() as u64,
            )
            .counted_as(counted_as),
        );
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
                let broadcast: Vec<ChannelName> = patterns
                    .iter()
                    .filter(|p| !p.is_service())
                    .cloned()
                    .collect();
                let new = session
                    .add_subscriptions(&broadcast, self.config.max_subscriptions)
                    .map_err(|()| error::SUBSCRIPTIONS_TOO_MANY.to_owned())?;
                for p in &new {
                    self.index.subscribe(p, session);
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
}

/// A message on a `/meta` channel (or on none, which gets its own error).
fn is_meta(message: &Incoming) -> bool {
    message
        .channel
        .as_deref()
        .is_none_or(|c| c.starts_with("/meta/"))
}
