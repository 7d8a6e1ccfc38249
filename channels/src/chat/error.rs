//! What can go wrong with a chat operation, in terms the three faces (REST,
//! CometD, the agent API) each turn into their own error shape. May use: the
//! store.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("chat service {0} is not configured")]
    UnknownService(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("chat {0} not found")]
    NotFound(String),
    #[error("the credentials do not match chat {0}")]
    Forbidden(String),
    #[error("chat {0} has ended")]
    Ended(String),
    #[error("{0}")]
    TooLarge(String),
    /// The client started too many chats lately: try again after this long.
    #[error("too many chats started from this address; try again in {} s", .0.as_secs().max(1))]
    TooMany(std::time::Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}
