//! What participants ask of a chat: a customer's request to start one,
//! the credentials every customer call carries, and the actions of
//! customers and agents. May use: the chat model.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::model::{CometLink, V1Link};

/// The longest nickname, subject or email address a participant may give.
pub const MAX_FIELD: usize = 256;

/// What a customer gives to start a chat.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub nickname: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub subject: Option<String>,
    pub email: Option<String>,
    pub user_data: BTreeMap<String, String>,
    /// The customer's CometD session, for Chat API v2 over CometD.
    pub comet: Option<CometLink>,
    /// For Chat API v1: the service instance it is requested through.
    pub v1: Option<V1Link>,
    /// The client address the per-address rate counts it under; `None`
    /// when it is exempt (or unknown).
    pub from: Option<IpAddr>,
}

/// The customer's credentials, checked on every call; `None` is "not
/// given" (not "empty").
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub user_id: Option<String>,
    pub secure_key: Option<String>,
    pub alias: Option<String>,
}

/// What a participant does in a chat.
#[derive(Debug, Clone)]
pub enum Action {
    Send {
        text: String,
        message_type: Option<String>,
    },
    StartTyping(Option<String>),
    StopTyping(Option<String>),
    PushUrl(String),
    CustomNotice(String),
    UpdateNickname(String),
    UpdateData(BTreeMap<String, String>),
    /// A customer's disconnect ends the chat; an agent's only removes them.
    Leave,
    /// An agent ends the chat for everyone.
    End,
    /// An agent hands the chat back to a queue (leaves it, the chat waits).
    Transfer(String),
    /// Nothing: read the transcript.
    Refresh,
}
