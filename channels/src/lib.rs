//! The GMS services built on the Bayeux engine, push delivery and a store:
//! Chat API v1 and v2, the agent side, notifications, callbacks and the
//! Storage API. The store they keep their state in is defined here
//! ([`store`]) and implemented by the binary.

pub mod callback;
pub mod chat;
pub mod id;
pub mod notification;
pub mod service;
pub mod storage;
pub mod store;
