//! Everything CometD-facing beyond the Bayeux engine itself: the services
//! on `/service/**` (Chat API v2's, the agent side's, echo), the
//! `/_genesys` channel of GMS's classic APIs (its users registry and
//! extension, the `comet` push provider), the extension that sends an app's
//! chats to the background, and the notifier that pushes chat changes to
//! customers and agents. May use: `wire`, `config`, `cluster` (the bus).
//!
//! # Layout
//! - [`reach`]: a session on this node or, through the bus, on another.
//! - [`users`], [`genesys`], [`push`]: who listens on `/_genesys`, and the
//!   `comet` push type that delivers there.
//! - [`background`]: `/meta/disconnect` with `ext.transcriptPosition`.
//! - [`chat_v2`], [`agent`], [`echo`]: the `/service` channels.
//! - [`notifier`]: the chat engine's changes, told to whoever follows them.
//! - [`policy`]: what clients may publish and subscribe to.

pub mod agent;
pub mod background;
pub mod chat_v2;
pub mod echo;
pub mod genesys;
pub mod notifier;
pub mod offers;
pub mod policy;
pub mod push;
pub mod reach;
pub mod users;
