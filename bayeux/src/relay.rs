//! The hook through which several servers act as one: every broadcast this
//! server fans out is also handed to the [`Relay`] (encoded once, as its
//! local subscribers got it), and what other servers relay here is fanned
//! out with [`Bayeux::fan_out_relayed`](crate::Bayeux::fan_out_relayed),
//! which does not relay it again.
//! May use: nothing else in the crate.

use bytes::Bytes;

/// Carries broadcasts to the other servers of a cluster. Called on the
/// publishing path: it must not block (queue the message and return).
pub trait Relay: Send + Sync + 'static {
    /// `message` is the encoded delivery (a JSON object) on `channel`.
    fn broadcast(&self, channel: &str, message: &Bytes);
}
