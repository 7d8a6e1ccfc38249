//! Callbacks: a customer asks to be called back (now, when an agent is free,
//! or at a chosen time); gmshub keeps the callback in the store, moves it
//! through GMS's states (SCHEDULED, QUEUED, ROUTING, PROCESSING, COMPLETED,
//! PAUSED) for the router that drives it, and tells the customer's app about
//! every step through its push registration or CometD session.

pub mod dialog;
pub mod engine;
pub mod model;
pub mod office_hours;
pub mod options;
pub mod query;
pub mod scheduler;
#[cfg(test)]
mod tests;

pub use engine::{CallbackError, Callbacks};
pub use model::{Callback, State};
pub use office_hours::OfficeHours;
pub use options::{CallbackSettings, DEFAULT_SERVICE};
