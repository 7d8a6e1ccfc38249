//! The GMS services built on the Bayeux engine, push delivery and a store:
//! Chat API v1 and v2, the agent side, notifications, callbacks and the
//! Storage API. The store they keep their state in is defined here
//! ([`store`]) and implemented by the binary.
//! Its rooms, lowest first: `id`, `password`, `store`, `storage`, `service`, `chat`,
//! `notification`, `callback`; each may use those before it (checked by
//! `tests/architecture.rs` in the workspace root).

pub mod callback;
pub mod chat;
pub mod id;
pub mod notification;
pub mod password;
pub mod service;
pub mod storage;
pub mod store;
