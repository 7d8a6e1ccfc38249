//! Chat API v2's wire shapes, shared by its REST and CometD faces: the
//! Digital Channels response every answer is (`statusCode` 0 done, 1 retry,
//! 2 will not work, with `errors` saying why), the error codes, and a
//! request's parameters with the operation they name. May use: the chat
//! engine (its model; its chats, to read the events an answer carries),
//! and [`text`](super::text()).

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::http::StatusCode;
use channels::chat::{
    Action, ChatError, ChatRequest, ChatSession, Chats, CometLink, Credentials, Event, ALIAS,
};
use channels::storage::Item;
use serde::Serialize;
use serde_json::Value;

use super::text;

/// Error codes in `errors[].code` (gmshub's own: GMS's list is not public).
pub mod code {
    pub const UNKNOWN_SERVICE: u32 = 100;
    pub const BAD_REQUEST: u32 = 101;
    pub const CHAT_NOT_FOUND: u32 = 102;
    pub const FORBIDDEN: u32 = 103;
    pub const CHAT_ENDED: u32 = 104;
    pub const TOO_LARGE: u32 = 105;
    pub const UNAVAILABLE: u32 = 106;
    pub const UNKNOWN_OPERATION: u32 = 107;
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorItem {
    pub code: u32,
    pub advice: String,
}

/// The Digital Channels response (every chat v2 answer, REST or CometD).
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChatV2Response {
    pub status_code: u8,
    pub chat_ended: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_key: Option<String>,
    pub alias: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_position: Option<u32>,
    pub messages: Vec<Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
}

impl ChatV2Response {
    /// Success: the chat's identity and the events given.
    pub fn ok(chat_id: &str, chat: &ChatSession, messages: Vec<Event>) -> Self {
        Self {
            status_code: 0,
            chat_ended: chat.ended(),
            chat_id: Some(chat_id.to_owned()),
            user_id: Some(chat.user_id.clone()),
            secure_key: Some(chat.secure_key.clone()),
            alias: ALIAS,
            next_position: Some(chat.next_position()),
            messages,
            ..Default::default()
        }
    }

    /// Success with the chat's events from `position` on (none without
    /// one), read from its log; failure if they cannot be.
    pub async fn read(
        chats: &Chats,
        chat_id: &str,
        chat: &ChatSession,
        position: Option<u32>,
    ) -> Result<Self, (StatusCode, Self)> {
        let messages = match position {
            Some(p) => chats
                .transcript(chat_id, chat, p)
                .await
                .map_err(|e| Self::error(Some(chat_id), &e))?,
            None => Vec::new(),
        };
        Ok(Self::ok(chat_id, chat, messages))
    }

    /// Failure, with the HTTP status to answer it with.
    pub fn error(chat_id: Option<&str>, e: &ChatError) -> (StatusCode, Self) {
        let (http, status_code, code, ended) = match e {
            ChatError::UnknownService(_) => (StatusCode::NOT_FOUND, 2, code::UNKNOWN_SERVICE, true),
            ChatError::BadRequest(_) => (StatusCode::OK, 2, code::BAD_REQUEST, false),
            ChatError::NotFound(_) => (StatusCode::OK, 2, code::CHAT_NOT_FOUND, true),
            ChatError::Forbidden(_) => (StatusCode::OK, 2, code::FORBIDDEN, false),
            ChatError::Ended(_) => (StatusCode::OK, 2, code::CHAT_ENDED, true),
            ChatError::TooLarge(_) => (StatusCode::OK, 2, code::TOO_LARGE, false),
            // Status 1: the customer may try again (later).
            ChatError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, 1, code::UNAVAILABLE, false),
            ChatError::Store(e) => {
                tracing::warn!("chat: store: {e}");
                (StatusCode::OK, 1, code::UNAVAILABLE, false)
            }
        };
        let advice = match e {
            ChatError::Store(_) => "the service is unavailable; try again".to_owned(),
            other => other.to_string(),
        };
        (
            http,
            Self {
                status_code,
                chat_ended: ended,
                chat_id: chat_id.map(str::to_owned),
                alias: ALIAS,
                errors: vec![ErrorItem { code, advice }],
                ..Default::default()
            },
        )
    }

    /// The same answer in parts of at most about `max_bytes` of events each
    /// (at least one event a part), in order, each with the `nextPosition`
    /// that follows its last event: a client that reads them one by one is
    /// always consistent, and none has to hold a whole long transcript.
    pub fn in_parts(mut self, max_bytes: usize) -> Vec<Self> {
        let messages = std::mem::take(&mut self.messages);
        let mut parts: Vec<Vec<Event>> = vec![Vec::new()];
        let mut size = 0;
        for event in messages {
            let len = serde_json::to_vec(&event).map_or(0, |b| b.len() + 1);
            let current = parts.last_mut().expect("one part at least");
            if !current.is_empty() && size + len > max_bytes {
                parts.push(Vec::new());
                size = 0;
            }
            size += len;
            parts.last_mut().expect("one part at least").push(event);
        }
        let last = parts.len() - 1;
        parts
            .into_iter()
            .enumerate()
            .map(|(i, messages)| {
                let mut part = self.clone();
                if i != last {
                    part.next_position = messages.last().map(|e| e.index + 1);
                }
                part.messages = messages;
                part
            })
            .collect()
    }

    pub fn bad(chat_id: Option<&str>, code: u32, advice: String) -> Self {
        Self {
            status_code: 2,
            chat_id: chat_id.map(str::to_owned),
            alias: ALIAS,
            errors: vec![ErrorItem { code, advice }],
            ..Default::default()
        }
    }
}

/// Parameters of a chat request, by name; `userData[k]` keys gathered.
#[derive(Debug, Default)]
pub struct Params {
    pub fields: BTreeMap<String, String>,
    pub user_data: BTreeMap<String, String>,
}

impl Params {
    pub fn from_items(items: BTreeMap<String, Item>) -> Self {
        let mut p = Params::default();
        for (key, item) in items {
            let Item::Text { value } = item else { continue };
            match key
                .strip_prefix("userData[")
                .and_then(|k| k.strip_suffix(']'))
            {
                Some(k) if !k.is_empty() => {
                    p.user_data.insert(k.to_owned(), value);
                }
                _ => {
                    p.fields.insert(key, value);
                }
            }
        }
        p
    }

    /// A CometD request's `data`: top-level scalars by name, and `userData`
    /// (an object there, not `userData[k]` keys) as text.
    pub fn from_json(data: &Value) -> Self {
        let mut p = Params::default();
        for (k, v) in data.as_object().into_iter().flatten() {
            if k == "userData" {
                for (dk, dv) in v.as_object().into_iter().flatten() {
                    if let Some(t) = text(dv) {
                        p.user_data.insert(dk.clone(), t);
                    }
                }
            } else if let Some(t) = text(v) {
                p.fields.insert(k.clone(), t);
            }
        }
        p
    }

    /// A request for a new chat (`requestChat`), its events going to
    /// `comet` when it comes over CometD.
    pub fn chat_request(&self, comet: Option<CometLink>, from: Option<IpAddr>) -> ChatRequest {
        ChatRequest {
            nickname: self.get("nickname"),
            first_name: self.get("firstName"),
            last_name: self.get("lastName"),
            subject: self.get("subject"),
            email: self.get("emailAddress"),
            user_data: self.user_data.clone(),
            comet,
            v1: None,
            from,
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.fields.get(name).cloned()
    }

    /// The customer's credentials. Over REST `userId` is required (an absent
    /// one matches nothing); over CometD only `secureKey` is (clients send
    /// the others or not).
    pub fn credentials(&self, user_id_required: bool) -> Credentials {
        let user_id = self.get("userId");
        Credentials {
            user_id: if user_id_required {
                Some(user_id.unwrap_or_default())
            } else {
                user_id
            },
            secure_key: self.get("secureKey"),
            alias: self.get("alias"),
        }
    }

    /// `transcriptPosition`, which clients send as a number or a string.
    pub fn position(&self) -> Result<Option<u32>, String> {
        match self.fields.get("transcriptPosition").map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<u32>()
                .map(Some)
                .map_err(|_| format!("transcriptPosition {v:?} is not a number")),
        }
    }
}

/// Reads an operation's parameters into an action on the chat.
pub fn action(operation: &str, p: &Params) -> Result<Action, (u32, String)> {
    let text = |name: &str| p.get(name).unwrap_or_default();
    Ok(match operation {
        "send" | "sendMessage" => Action::Send {
            text: text("message"),
            message_type: p.get("messageType"),
        },
        "refresh" | "readReceipt" => Action::Refresh,
        "startTyping" => Action::StartTyping(p.get("message")),
        "stopTyping" => Action::StopTyping(p.get("message")),
        "disconnect" => Action::Leave,
        "pushUrl" => Action::PushUrl(text("pushUrl")),
        "updateNickname" => Action::UpdateNickname(text("nickname")),
        "updateData" => Action::UpdateData(p.user_data.clone()),
        "customNotice" => Action::CustomNotice(text("message")),
        other => {
            return Err((
                code::UNKNOWN_OPERATION,
                format!("unknown chat operation {other:?}"),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use channels::chat::{EventType, From, PartyType};

    use super::*;

    fn event(index: u32, text: &str) -> Event {
        Event {
            from: From {
                nickname: "n".into(),
                participant_id: 1,
                kind: PartyType::Client,
            },
            index,
            kind: EventType::Message,
            utc_time: 0,
            text: Some(text.into()),
            message_type: None,
            user_data: None,
        }
    }

    #[test]
    fn a_long_answer_goes_in_parts_each_consistent() {
        let answer = ChatV2Response {
            chat_id: Some("c".into()),
            next_position: Some(6),
            messages: (1..=5).map(|i| event(i, &"x".repeat(100))).collect(),
            ..Default::default()
        };
        let one = serde_json::to_vec(&answer.messages[0]).unwrap().len();
        let parts = answer.in_parts(2 * one + 2);
        let indexes: Vec<Vec<u32>> = parts
            .iter()
            .map(|p| p.messages.iter().map(|e| e.index).collect())
            .collect();
        assert_eq!(indexes, [vec![1, 2], vec![3, 4], vec![5]]);
        let next: Vec<Option<u32>> = parts.iter().map(|p| p.next_position).collect();
        assert_eq!(next, [Some(3), Some(5), Some(6)]);
        assert!(parts.iter().all(|p| p.chat_id.as_deref() == Some("c")));
        // An event larger than a part still goes, alone; errors are kept.
        let failed = ChatV2Response::bad(None, code::BAD_REQUEST, "no".into());
        let parts = failed.in_parts(1);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].errors.len(), 1);
    }
}
