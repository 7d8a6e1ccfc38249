//! Extensions: code that sees every incoming message and every reply.
//!
//! Deliveries to subscribers do not pass through extensions one session at a
//! time: a broadcast is encoded once for all of them. An extension that must
//! change broadcasts does it once, in [`Extension::outgoing_broadcast`].

pub mod ack;
pub mod timesync;

use serde_json::value::RawValue;

use crate::message::{Incoming, Reply};
use crate::session::Session;

pub trait Extension: Send + Sync + 'static {
    /// Sees (and may change) a message before the server acts on it.
    /// Returning `false` deletes it; the client gets `404::message_deleted`.
    fn incoming(&self, _session: Option<&Session>, _message: &mut Incoming) -> bool {
        true
    }

    /// Sees (and may change) the reply to `request` before it is encoded.
    fn outgoing_reply(
        &self,
        _session: Option<&Session>,
        _request: &Incoming,
        _reply: &mut Reply<'_>,
    ) {
    }

    /// Sees a client's broadcast once, before it is encoded for every
    /// subscriber: keep it, replace its `data`, or drop it.
    fn outgoing_broadcast(&self, _channel: &str, _data: &RawValue) -> Broadcast {
        Broadcast::Keep
    }
}

/// What an extension does with a broadcast. Data is only copied when an
/// extension replaces it, so the publish path allocates nothing for the
/// (usual) extensions that leave broadcasts alone.
pub enum Broadcast {
    Keep,
    Replace(Box<RawValue>),
    Drop,
}
