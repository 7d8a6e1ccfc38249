//! The Bayeux server: the session registry, the five meta channels,
//! publishing with fan-out to subscribers, `/service` dispatch, the API that
//! services built on top use, and the sweeper that expires sessions.
//!
//! Transports turn requests into [`Parsed`](crate::message::Parsed)
//! batches, call [`Bayeux::handle_batch`], and, when the batch held a
//! `/meta/connect`, wait on it ([`Bayeux::hold`] or their own loop) before
//! calling [`HeldConnect::complete`] to collect what goes back.

mod connect;
mod core;
mod meta;
mod publish;
mod sweeper;

pub use self::connect::HeldConnect;
pub use self::core::{Bayeux, PublishError, RemovalListener, ServiceHandler, ServiceRequest};
pub use self::meta::Outcome;
