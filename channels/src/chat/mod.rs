//! Chat sessions hosted by gmshub: the engine that customers (Chat API v1
//! and v2, over REST or CometD) and agents or bots (gmshub's agent API) act
//! on, with its state in the store.
//!
//! # Layout
//! - [`model`]: the stored record (participants, transcript, state).
//! - [`options`], [`request`], [`error`]: a service's options, what
//!   participants ask, what goes wrong.
//! - [`transitions`]: the rules, as pure functions of the record.
//! - [`chats`]: the store, the compare-and-set every change is, and the
//!   [`ChatChange`]s it sends; [`customer`], [`routing`], [`idle`],
//!   [`files`] add the operations; [`agents`] the agent side's accounts,
//!   presence and offers.

pub mod agents;
pub mod chats;
pub mod customer;
pub mod error;
pub mod files;
pub mod idle;
pub mod model;
pub mod options;
pub mod request;
pub mod routing;
#[cfg(test)]
mod tests;
pub mod transitions;

pub use agents::{
    AgentAccount, AgentError, Agents, Offer, Presence, TokenLifetime, SESSION_IDLE, SESSION_MAX,
};
pub use chats::{ChatChange, ChatChanges, Chats, CHANGE_QUEUE, ENDED_RETENTION};
pub use error::ChatError;
pub use model::{
    ChatFile, ChatSession, ChatState, CometLink, Event, EventType, From, Participant, PartyType,
    V1Link, ALIAS,
};
pub use options::{ChatServiceOptions, ChatServices, FileLimits, DEFAULT_QUEUE};
pub use request::{Action, ChatRequest, Credentials};
