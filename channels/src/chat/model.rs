//! A chat session as it is stored: a header record (participants, state,
//! user data, counters) with the chat's latest events in it, every change
//! one compare-and-set of it; older events are in the chat's log, which
//! the chats ([`Chats`](super::Chats)) keep as long as the header. A
//! write's cost is that of the header, however long the chat.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Who a participant is (`from.type` in Chat API v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartyType {
    Client,
    Agent,
    External,
    System,
}

/// Transcript event types of Chat API v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    ParticipantJoined,
    ParticipantLeft,
    Message,
    PushUrl,
    TypingStarted,
    TypingStopped,
    NicknameUpdated,
    FileUploaded,
    FileDeleted,
    CustomNotice,
    Notice,
}

impl EventType {
    /// The type as the wire writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::ParticipantJoined => "ParticipantJoined",
            Self::ParticipantLeft => "ParticipantLeft",
            Self::Message => "Message",
            Self::PushUrl => "PushUrl",
            Self::TypingStarted => "TypingStarted",
            Self::TypingStopped => "TypingStopped",
            Self::NicknameUpdated => "NicknameUpdated",
            Self::FileUploaded => "FileUploaded",
            Self::FileDeleted => "FileDeleted",
            Self::CustomNotice => "CustomNotice",
            Self::Notice => "Notice",
        }
    }
}

/// `from` of a transcript event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct From {
    pub nickname: String,
    pub participant_id: u32,
    #[serde(rename = "type")]
    pub kind: PartyType,
}

/// One transcript event, in Chat API v2's shape (`messages[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub from: From,
    /// From 1, in order.
    pub index: u32,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Milliseconds since the Unix epoch.
    pub utc_time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub id: u32,
    pub nickname: String,
    pub kind: PartyType,
    /// For agents and bots: their login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub present: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatState {
    /// Waiting in its queue for an agent.
    Queued,
    /// An agent (or bot) has it.
    Connected,
    Ended,
}

impl ChatState {
    /// The state as the record writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Connected => "connected",
            Self::Ended => "ended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSession {
    pub service: String,
    /// The queue (chat endpoint) agents take it from.
    pub queue: String,
    pub state: ChatState,
    pub created_at: u64,
    /// The customer's last request: the idle timeout counts from it.
    pub client_active_at: u64,
    /// The customer's credentials: `userId` and `secureKey` of every call.
    pub user_id: String,
    pub secure_key: String,
    pub participants: Vec<Participant>,
    pub user_data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The latest events, not yet in the chat's log: a write adds its
    /// events here, and a later one moves them to the log once they are
    /// enough (`Chats::modify`). Indexes from `logged + 1`. Records written
    /// before the log existed hold their whole transcript here.
    #[serde(rename = "transcript")]
    pub recent: Vec<Event>,
    /// How many events are in the log (indexes 1 to `logged`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub logged: u32,
    /// The text bytes of the logged events, for the size bound.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub logged_text: usize,
    /// The chat's files as of its logged events: (file-id, size).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logged_files: Vec<(String, usize)>,
    /// Agents who declined it (not offered to them again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declined: Vec<String>,
    /// The customer's CometD session, when events are pushed to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comet: Option<CometLink>,
    /// For a Chat API v1 chat: the service instance it was requested through
    /// and the `gms_user` that requested it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1: Option<V1Link>,
    /// The customer's app went to the background (`/meta/disconnect` with
    /// `ext.transcriptPosition`): nothing is pushed to it until it is back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background: bool,
    /// Back from the background at this index: the client read what came
    /// before by itself, so pushes start here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_from: Option<u32>,
    /// When the chat's log and files expire (ms since the epoch): renewed,
    /// with them, by a write of the chat that would outlive them.
    #[serde(
        default,
        alias = "files_until",
        skip_serializing_if = "Option::is_none"
    )]
    pub kept_until: Option<u64>,
    /// When the idle check is due (ms since the epoch): the customer's last
    /// activity plus the service's `_client_timeout`, set by every write,
    /// so that the check finds due chats through an index instead of
    /// reading every open one. None in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_due: Option<u64>,
}

impl ChatSession {
    /// Leaves the background (if in it): pushes start at the next event.
    pub fn back_from_background(&mut self) {
        if self.background {
            self.background = false;
            self.resume_from = Some(self.next_position());
        }
    }
}

/// How a Chat API v1 chat is reached: `/genesys/1/service/{service_id}/ixn/chat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Link {
    pub service_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gms_user: Option<String>,
}

/// Where a chat's events go in real time: a CometD session and channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CometLink {
    pub client_id: String,
    pub channel: String,
}

/// The customer is always participant 1.
pub const CLIENT_ID: u32 = 1;

/// The one Chat Server alias gmshub is (`alias` in Chat API v2).
pub const ALIAS: &str = "1";

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

fn text_of(events: &[Event]) -> usize {
    events
        .iter()
        .map(|e| e.text.as_ref().map_or(0, String::len))
        .sum()
}

/// Applies `events`' uploads and deletions to the list of live `files`.
fn files_after(files: &mut Vec<(String, usize)>, events: &[Event]) {
    for e in events {
        let Some(data) = &e.user_data else { continue };
        let Some(id) = data.get("file-id") else {
            continue;
        };
        match e.kind {
            EventType::FileUploaded => {
                let size = data
                    .get("file-size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                files.push((id.clone(), size));
            }
            EventType::FileDeleted => files.retain(|(f, _)| f != id),
            _ => {}
        }
    }
}

impl ChatSession {
    pub fn next_position(&self) -> u32 {
        self.logged + self.recent.len() as u32 + 1
    }

    pub fn participant(&self, id: u32) -> Option<&Participant> {
        self.participants.iter().find(|p| p.id == id)
    }

    pub fn participant_mut(&mut self, id: u32) -> Option<&mut Participant> {
        self.participants.iter_mut().find(|p| p.id == id)
    }

    /// The present participant an agent login speaks as.
    pub fn agent_participant(&self, agent: &str) -> Option<&Participant> {
        self.participants
            .iter()
            .find(|p| p.present && p.agent.as_deref() == Some(agent))
    }

    /// Appends an event from participant `from`; returns its index.
    pub fn push(&mut self, from: u32, kind: EventType, text: Option<String>, now: u64) -> u32 {
        let who = self.participant(from).map_or(
            From {
                nickname: "system".into(),
                participant_id: 0,
                kind: PartyType::System,
            },
            |p| From {
                nickname: p.nickname.clone(),
                participant_id: p.id,
                kind: p.kind,
            },
        );
        let index = self.next_position();
        self.recent.push(Event {
            from: who,
            index,
            kind,
            utc_time: now,
            text,
            message_type: None,
            user_data: None,
        });
        index
    }

    /// The event just pushed.
    pub fn last_event_mut(&mut self) -> Option<&mut Event> {
        self.recent.last_mut()
    }

    /// The recent events from `position` on, if the record holds them all
    /// (positions start at 1; 0 means all); `None` when some are only in
    /// the log.
    pub fn recent_since(&self, position: u32) -> Option<&[Event]> {
        let position = position.max(1);
        if position <= self.logged {
            return None;
        }
        let start = ((position - self.logged - 1) as usize).min(self.recent.len());
        Some(&self.recent[start..])
    }

    /// The log holds the events up to `index`: they leave the record,
    /// their text and files counted in its totals.
    pub fn logged_up_to(&mut self, index: u32) {
        let n = (index.saturating_sub(self.logged) as usize).min(self.recent.len());
        if n == 0 {
            return;
        }
        let moved: Vec<Event> = self.recent.drain(..n).collect();
        self.logged += n as u32;
        self.logged_text += text_of(&moved);
        files_after(&mut self.logged_files, &moved);
    }

    /// Bytes the transcript holds in text, for the size bound.
    pub fn text_bytes(&self) -> usize {
        self.logged_text + self.recent_text()
    }

    /// Bytes of text in the recent events.
    pub fn recent_text(&self) -> usize {
        text_of(&self.recent)
    }

    /// What the chat's size limit counts: its transcript's text, and what
    /// participants put in it besides (user data, nicknames, subject, email).
    pub fn size(&self) -> usize {
        let given = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        self.text_bytes()
            + user_data_size(&self.user_data)
            + self
                .participants
                .iter()
                .map(|p| p.nickname.len())
                .sum::<usize>()
            + given(&self.subject)
            + given(&self.email)
    }

    /// Files of the chat still there: (file-id, size).
    pub fn live_files(&self) -> Vec<(String, usize)> {
        let mut files = self.logged_files.clone();
        files_after(&mut files, &self.recent);
        files
    }

    /// Whether the chat waits in its queue for `agent` (who has not
    /// declined it).
    pub fn waits_for(&self, agent: &str) -> bool {
        self.state == ChatState::Queued && !self.declined.iter().any(|d| d == agent)
    }

    pub fn ended(&self) -> bool {
        self.state == ChatState::Ended
    }
}

/// An uploaded file, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatFile {
    pub chat_id: String,
    pub name: String,
    pub content_type: String,
    pub uploader: u32,
    #[serde(with = "crate::storage::base64_bytes")]
    pub data: Vec<u8>,
}

/// The bytes of user data (keys and values) a size limit counts.
pub fn user_data_size(data: &std::collections::BTreeMap<String, String>) -> usize {
    data.iter().map(|(k, v)| k.len() + v.len()).sum()
}
