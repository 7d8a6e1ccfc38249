//! The security policy: may this client handshake, create a channel,
//! subscribe, publish. The server consults it after its own protocol rules
//! (no subscribing to `/meta/**`, no publishing to wildcards), so a policy
//! only decides what the application cares about.
//! May use: channels, messages, sessions, the request.

use crate::channel::ChannelName;
use crate::message::Incoming;
use crate::request::RequestContext;
use crate::session::Session;

/// Decides what each client may do. Every method defaults to "yes", the
/// CometD default policy for handshaken sessions.
pub trait SecurityPolicy: Send + Sync + 'static {
    /// `Err(reason)` refuses the handshake with `403:<reason>:handshake_denied`.
    fn can_handshake(&self, _message: &Incoming, _ctx: &RequestContext<'_>) -> Result<(), String> {
        Ok(())
    }

    /// Called when a publish or subscribe names a channel nobody uses yet.
    fn can_create(&self, _session: &Session, _channel: &ChannelName) -> bool {
        true
    }

    fn can_subscribe(&self, _session: &Session, _channel: &ChannelName) -> bool {
        true
    }

    fn can_publish(&self, _session: &Session, _channel: &ChannelName, _message: &Incoming) -> bool {
        true
    }
}

/// The policy used when none is set: everything the protocol allows.
pub struct AllowAll;

impl SecurityPolicy for AllowAll {}
