//! gmshub: a real-time messaging hub speaking the public APIs of Genesys
//! Mobile Services. The binary (`main.rs`) is its command line; everything
//! else is this library, so tests can build a hub in-process.
//!
//! # Rooms
//! Each may use the rooms above it in this list, never one below:
//! - [`wire`]: GMS's wire shapes shared by REST and CometD.
//! - [`store`]: the store backends (SQLite, Redis, Cassandra).
//! - [`cluster`]: membership and the bus between nodes.
//! - [`config`]: the INI options and the typed settings.
//! - [`observe`]: metrics, and the request counts and access log.
//! - [`comet`]: the CometD side of the services (`/service/**`,
//!   `/_genesys`, the `comet` push type, the chat notifier).
//! - [`api`]: the REST handlers.
//! - [`pages`]: the pages and the embedded CometD client.
//! - [`app`]: the hub assembled, served and stopped.

pub mod api;
pub mod app;
pub mod cluster;
pub mod comet;
pub mod config;
pub mod observe;
pub mod pages;
pub mod store;
pub mod wire;
