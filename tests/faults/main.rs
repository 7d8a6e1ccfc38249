//! The fault-injection suite: real gmshub processes and a real
//! `redis-server`, real clients, and faults injected while they work; every
//! message is accounted for (what was published against what each client
//! received). One module per fault:
//!
//! - `redis_restart`: Redis SIGKILLed and started again under load on two
//!   nodes;
//! - `disconnects`: a thousand sockets of ack-extension clients cut at
//!   random points of the exchange;
//! - `node_kill`: a node SIGKILLed in the middle of each service's work;
//! - `partition`: a node cut off from Redis and its clients in its own
//!   network namespace, then healed;
//! - `tarpit`: a push endpoint that never answers, beside healthy ones;
//! - `full_disk`: the SQLite file on a file system that fills up.
//!
//! `clients` and `proxy` are the test's own parts.

#[path = "../common/mod.rs"]
mod common;

mod clients;
mod disconnects;
mod full_disk;
mod node_kill;
mod partition;
mod proxy;
mod redis_restart;
mod tarpit;
