//! Chat sessions hosted by gmshub: the engine that customers (Chat API v1
//! and v2, over REST or CometD) and agents or bots (gmshub's agent API) act
//! on, with its state in the store.

pub mod agents;
mod engine;
pub mod files;
pub mod model;

pub use agents::{AgentAccount, AgentError, Agents, Offer, Presence};
pub use engine::{
    Action, ChatError, ChatNotifier, ChatRequest, ChatServiceOptions, ChatServices, Chats,
    Credentials, ALIAS, DEFAULT_QUEUE, ENDED_RETENTION,
};
pub use files::{ChatFile, FileLimits};
pub use model::{
    ChatSession, ChatState, CometLink, Event, EventType, From, Participant, PartyType, V1Link,
};
