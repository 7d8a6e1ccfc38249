//! A callback as the store keeps it: its state, the customer's request, and
//! the history of every state it went through. Also the record GMS returns
//! for it (`_id`, `_callback_state`, `_desired_time`, ...).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// GMS's callback states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Waiting for its desired time.
    Scheduled,
    /// Waiting for an agent (or for the router to take it).
    Queued,
    /// Taken by a router: the customer is being reached, or told it is time.
    Routing,
    /// The customer is talking (or chatting) with an agent.
    Processing,
    /// Final, with a reason.
    Completed,
    /// Held: the router stopped serving it for now.
    Paused,
}

pub const STATES: [State; 6] = [
    State::Scheduled,
    State::Queued,
    State::Routing,
    State::Processing,
    State::Completed,
    State::Paused,
];

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Scheduled => "SCHEDULED",
            State::Queued => "QUEUED",
            State::Routing => "ROUTING",
            State::Processing => "PROCESSING",
            State::Completed => "COMPLETED",
            State::Paused => "PAUSED",
        }
    }

    pub fn parse(name: &str) -> Option<State> {
        STATES
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The moves the state machine allows. A callback is rescheduled
    /// (back to SCHEDULED) only before an agent has it; nothing leaves
    /// COMPLETED.
    pub fn may_become(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Scheduled, Queued | Scheduled | Completed | Paused)
                | (Queued, Routing | Scheduled | Completed | Paused)
                | (Routing, Processing | Queued | Scheduled | Completed)
                | (Processing, Completed)
                | (Paused, Queued | Scheduled | Completed)
        )
    }

    pub fn is_final(self) -> bool {
        self == State::Completed
    }
}

/// GMS's `_call_direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    /// The contact centre calls the customer.
    Userterminated,
    /// The customer's app is told it is time and the customer calls (or chats).
    Useroriginated,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Userterminated => "USERTERMINATED",
            Direction::Useroriginated => "USERORIGINATED",
        }
    }
}

/// One state the callback entered, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Milliseconds since the epoch.
    pub at: u64,
    /// Who moved it: `customer`, `scheduler`, `admin`, or the router's name.
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    pub service: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub customer_number: String,
    /// When the customer wants the call (ms); the creation time when immediate.
    pub desired_time: u64,
    /// Whether the customer chose the time (a booked slot counts against
    /// the bucket's capacity).
    pub scheduled: bool,
    /// The start (ms) of the time bucket a scheduled callback holds a slot in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// After it, a callback still waiting completes with `FAIL_TIMEOUT_TTL`.
    pub expiration_time: u64,
    pub created_at: u64,
    pub direction: Direction,
    /// `voice` or `chat`.
    pub media_type: String,
    pub wait_for_agent: bool,
    pub wait_for_user_confirm: bool,
    /// The push registration events go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_notification_id: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_name: String,
    /// The router (or agent) that took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The chat opened for it (StartChat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<ChatLink>,
    /// Every parameter of the request, user data included, after the
    /// service's options were applied.
    pub properties: BTreeMap<String, String>,
    pub history: Vec<Step>,
}

/// What the customer's app needs to drive the chat a callback opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLink {
    pub service: String,
    pub chat_id: String,
    pub user_id: String,
    pub secure_key: String,
}

impl Callback {
    /// Enters `state`, recording when and by whom.
    pub fn enter(&mut self, state: State, reason: Option<String>, by: &str, at: u64) {
        self.state = state;
        self.reason = reason.clone();
        self.history.push(Step {
            state,
            reason,
            at,
            by: by.to_owned(),
        });
    }

    /// The next time something must happen to it without anyone asking: a
    /// scheduled callback is queued at its time, a waiting one expires.
    pub fn next_deadline(&self) -> Option<u64> {
        match self.state {
            State::Scheduled => Some(self.desired_time),
            State::Queued | State::Paused => Some(self.expiration_time),
            _ => None,
        }
    }

    /// The record GMS's query returns: the keys it always returns, then the
    /// `[callback] returned-keys` found among the request's properties.
    pub fn view(&self, id: &str, url: &str, returned_keys: &[String]) -> Map<String, Value> {
        let mut out = Map::new();
        for key in returned_keys {
            if let Some(v) = self.properties.get(key) {
                out.insert(key.clone(), json!(v));
            }
        }
        out.insert("_id".into(), json!(id));
        out.insert("_service_name".into(), json!(self.service));
        out.insert("_callback_state".into(), json!(self.state.name()));
        out.insert("_desired_time".into(), json!(iso(self.desired_time)));
        out.insert("_expiration_time".into(), json!(iso(self.expiration_time)));
        out.insert("_customer_number".into(), json!(self.customer_number));
        out.insert("_url".into(), json!(url));
        if let Some(reason) = &self.reason {
            out.insert("_callback_reason".into(), json!(reason));
        }
        out
    }

    /// Everything, for the router and the admin: the GMS record, every
    /// property and the history.
    pub fn full_view(&self, id: &str, url: &str) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, v) in &self.properties {
            out.insert(k.clone(), json!(v));
        }
        out.extend(self.view(id, url, &[]));
        out.insert("_call_direction".into(), json!(self.direction.name()));
        out.insert("_media_type".into(), json!(self.media_type));
        if let Some(agent) = &self.agent {
            out.insert("_agent".into(), json!(agent));
        }
        if let Some(chat) = &self.chat {
            out.insert("_chat_id".into(), json!(chat.chat_id));
        }
        let history: Vec<Value> = self
            .history
            .iter()
            .map(|s| {
                let mut step = json!({"state": s.state.name(), "time": iso(s.at), "by": s.by});
                if let Some(r) = &s.reason {
                    step["reason"] = json!(r);
                }
                step
            })
            .collect();
        out.insert("_history".into(), Value::Array(history));
        out
    }
}

/// `2017-05-10T10:00:00.000Z`, the form GMS writes times in.
pub fn iso(ms: u64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An ISO-8601 time with its offset (`Z` or `+02:00`), to ms since the epoch.
pub fn parse_iso(text: &str) -> Option<u64> {
    let t = DateTime::parse_from_rfc3339(text.trim()).ok()?;
    u64::try_from(t.timestamp_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        let t = parse_iso("2017-05-10T10:00:00.000Z").unwrap();
        assert_eq!(iso(t), "2017-05-10T10:00:00.000Z");
        assert_eq!(parse_iso("2017-05-10T12:00:00+02:00"), Some(t));
        assert_eq!(parse_iso("2017-05-10 10:00"), None);
        assert_eq!(parse_iso("tomorrow"), None);
    }

    #[test]
    fn nothing_leaves_completed_and_rescheduling_stops_at_the_agent() {
        for to in STATES {
            assert!(!State::Completed.may_become(to), "COMPLETED -> {to:?}");
        }
        assert!(State::Queued.may_become(State::Scheduled));
        assert!(!State::Processing.may_become(State::Scheduled));
        assert!(!State::Scheduled.may_become(State::Processing));
        assert!(State::Routing.may_become(State::Queued));
        assert_eq!(State::parse("queued"), Some(State::Queued));
        assert_eq!(State::parse("DONE"), None);
    }
}
