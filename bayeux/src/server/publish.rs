//! Publishing: a client's broadcast or `/service` request, the server's own
//! publishes and deliveries to one session, and the fan-out that queues one
//! encoded message for every subscriber.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::core::{Bayeux, PublishError, ServiceHandler, ServiceRequest};
use crate::channel::{ChannelName, Family, Wildcard};
use crate::error;
use crate::ext::Broadcast;
use crate::message::{encode_delivery, encode_service_reply, Incoming, Reply};
use crate::session::{RemoveReason, Session};
use crate::stats::Kind;
use crate::subscriptions::Subscribers;

/// A delivery to one session, encoded: any channel but a meta or wildcard one.
fn for_one_session(channel: &str, data: &RawValue) -> Result<Bytes, PublishError> {
    let name = ChannelName::parse(channel)?;
    if name.is_meta() || name.is_wildcard() {
        return Err(PublishError::NotBroadcast);
    }
    Ok(encode_delivery(channel, data, None))
}

impl Bayeux {
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

    pub(super) fn relay(&self, channel: &str, message: &Bytes) {
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
        let queued = self.deliver_encoded(session, for_one_session(channel, data)?);
        self.counters.queued(Kind::of(channel), usize::from(queued));
        Ok(queued)
    }

    /// Delivers `data` on `channel` to one session without ever overflowing
    /// its queue: waits (at most `wait`) for the client to take what it has,
    /// so a large server-side answer, sent in parts, never costs the client
    /// its session. Whether it was queued.
    pub async fn deliver_with_room(
        &self,
        session: &Arc<Session>,
        channel: &str,
        data: &RawValue,
        wait: Duration,
    ) -> Result<bool, PublishError> {
        let message = for_one_session(channel, data)?;
        match session
            .enqueue_with_room(message, self.config.max_queue, wait)
            .await
        {
            Some(wake) => {
                if wake {
                    session.wake();
                }
                self.counters.queued(Kind::of(channel), 1);
                Ok(true)
            }
            None => Ok(false),
        }
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
        let queued = self.deliver_encoded(session, message);
        self.counters.queued(Kind::Service, usize::from(queued));
        queued
    }

    pub(super) fn deliver_encoded(&self, session: &Arc<Session>, message: Bytes) -> bool {
        let mut overflow = Vec::new();
        let queued = self.enqueue(session, &message, &mut overflow);
        for s in overflow {
            self.remove_session(&s, RemoveReason::QueueFull);
        }
        queued
    }

    /// A client's publish, answered with its encoded reply.
    pub(super) fn publish_message(
        self: &Arc<Self>,
        channel: &str,
        message: &Incoming,
        session: Option<Arc<Session>>,
    ) -> Bytes {
        let reply = Reply::new(Some(channel), message.id.as_deref());
        let reply = reply.result(self.try_publish(channel, message, session.as_ref()));
        self.finish_reply(session.as_deref(), message, reply)
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
        let ext = message
            .ext
            .as_deref()
            .filter(|_| self.config.forward_publisher_ext);
        let encoded = encode_delivery(channel, data, ext);
        self.relay(channel, &encoded);
        self.fan_out(channel, encoded, skip);
        Ok(())
    }

    /// Queues an encoded message for every session subscribed to `channel`
    /// (once per session, however many of its patterns match).
    pub(super) fn fan_out(&self, channel: &str, message: Bytes, skip: Option<u64>) -> usize {
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
                if self.enqueue(session, &message, &mut overflow) {
                    count += 1;
                }
            }
        }
        for session in overflow {
            self.remove_session(&session, RemoveReason::QueueFull);
        }
        self.counters.queued(Kind::Broadcast, count);
        count
    }
}
