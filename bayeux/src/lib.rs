//! A Bayeux 1.0 / CometD server engine. It knows nothing of the services
//! built on it.
//!
//! # Layout
//! - [`clock`], [`id`]: the session and wall clocks; random hex ids.
//! - [`channel`]: channel names, families, wildcard patterns.
//! - [`message`]: the wire model; `data` and `ext` stay raw JSON.
//! - [`session`]: one client's queue (bounded in bytes), ack state, expiry.
//! - `subscriptions`: the index answering "who gets a message on this channel".
//! - [`request`]: what a batch's request was (transport, browser, user,
//!   client address).
//! - [`stats`]: the engine's counters, read by whoever exports them.
//! - [`client`]: per-client limits (sessions and handshakes per address and
//!   per browser) and the pacing of a WebSocket's frames.
//! - [`server`]: the registry and server-side API, the meta channels, held
//!   connects, publish and fan-out, `/service` dispatch, the sweeper.
//! - [`security`], [`ext`]: the policy and extension interfaces, with the
//!   ack and timesync extensions.
//! - [`relay`]: the hook that carries broadcasts between the servers of a
//!   cluster.
//! - [`transport`]: WebSocket, long-polling and callback-polling (JSONP) as an
//!   axum router.
//!
//! Each module may use only those before it in this order: clock, id,
//! channel, error, config, message, session, request, stats, client, subscriptions,
//! security, ext, relay, server, transport (checked by
//! `tests/architecture.rs` in the workspace root).

pub mod channel;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod ext;
pub mod id;
pub mod message;
pub mod relay;
pub mod request;
pub mod security;
pub mod server;
pub mod session;
pub mod stats;
mod subscriptions;
pub mod transport;

pub use channel::ChannelName;
pub use client::{client_key, KeyedRate, Pacer};
pub use config::{BayeuxConfig, ClientLimits, QueueFullPolicy};
pub use relay::Relay;
pub use request::{RequestContext, Transport};
pub use server::{Bayeux, HeldConnect, Outcome, ServiceHandler, ServiceRequest};
pub use session::{RemoveReason, Session};
pub use stats::{Kind, Stats};

/// The protocol version spoken and required.
pub const VERSION: &str = "1.0";

/// Every connection type this server can carry, in order of preference.
pub const TRANSPORTS: [&str; 3] = ["websocket", "long-polling", "callback-polling"];
