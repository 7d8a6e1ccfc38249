//! What the customer's app is told: the dialog objects GMS returns from a
//! callback request and from continuing a dialog (`ConfirmationDialog`,
//! `DisplayMenu`, `DialNumber`, `StartChat`), and the event pushed on each
//! state change (`_id`, `_action`, `_text`, ...), whose `_action` the app
//! posts back to `/genesys/1/service/{_id}/{_action}` to get the dialog.

use serde_json::{json, Map, Value};

use super::model::{iso, Callback, ChatLink, Direction, State};

/// Where the app reaches gmshub: `[server] external_url_base`, or paths
/// relative to the host the app called.
#[derive(Debug, Clone, Default)]
pub struct Urls {
    pub base: String,
}

impl Urls {
    pub fn new(external_url_base: Option<&str>) -> Self {
        Self {
            base: external_url_base
                .unwrap_or("")
                .trim_end_matches('/')
                .to_owned(),
        }
    }

    pub fn record(&self, service: &str, id: &str) -> String {
        format!("{}/genesys/1/service/callback/{service}/{id}", self.base)
    }

    pub fn action(&self, id: &str, action: &str) -> String {
        format!("{}/genesys/1/service/{id}/{action}", self.base)
    }
}

/// Whether the customer must say "ready" when an agent is available: the
/// app starts the call or chat itself, or was asked to confirm.
pub fn needs_customer(cb: &Callback) -> bool {
    cb.direction == Direction::Useroriginated || cb.wait_for_user_confirm || cb.media_type == "chat"
}

fn dialog(id: &str, cb: &Callback, action: &str) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("_id".into(), json!(id));
    d.insert("_action".into(), json!(action));
    d.insert("_dialogId".into(), json!(cb.history.len().to_string()));
    d.insert("_callback_state".into(), json!(cb.state.name()));
    d
}

pub fn confirmation(id: &str, cb: &Callback, text: &str) -> Map<String, Value> {
    let mut d = dialog(id, cb, "ConfirmationDialog");
    d.insert("_text".into(), json!(text));
    d.insert("_okTitle".into(), json!("OK"));
    d
}

/// "An agent is available": ready, or cancel.
pub fn ready_menu(id: &str, cb: &Callback, urls: &Urls) -> Map<String, Value> {
    let mut d = dialog(id, cb, "DisplayMenu");
    let ready = if cb.media_type == "chat" {
        "Yes, I am ready to chat"
    } else {
        "Yes, I am ready to talk"
    };
    d.insert("_text".into(), json!(state_text(cb)));
    d.insert(
        "_content".into(),
        json!([{
            "_group_name": "An agent is available",
            "_group_content": [
                {"_label": ready, "_user_action_url": urls.action(id, "ready")},
                {"_label": "Cancel my callback", "_user_action_url": urls.action(id, "cancel")},
            ],
        }]),
    );
    d
}

pub fn dial_number(id: &str, cb: &Callback, number: &str) -> Map<String, Value> {
    let mut d = dialog(id, cb, "DialNumber");
    let digits: String = number
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+' || *c == '#' || *c == '*')
        .collect();
    d.insert("_tel_url".into(), json!(format!("tel:{digits}")));
    d.insert("_label".into(), json!(format!("Call {number}")));
    d.insert("_text".into(), json!("Please call us now."));
    d
}

pub fn start_chat(id: &str, cb: &Callback, chat: &ChatLink, urls: &Urls) -> Map<String, Value> {
    let mut d = dialog(id, cb, "StartChat");
    let subject = cb
        .properties
        .get("_chat_subject")
        .or_else(|| cb.properties.get("subject"))
        .cloned()
        .unwrap_or_else(|| "Callback".into());
    d.insert(
        "_start_chat_url".into(),
        json!(format!("{}/genesys/2/chat/{}", urls.base, chat.service)),
    );
    d.insert(
        "_comet_url".into(),
        json!(format!("{}/genesys/cometd", urls.base)),
    );
    d.insert("_chat_parameters".into(), json!({ "subject": subject }));
    // The chat is already open on gmshub: these let the app drive it with
    // Chat API v2 (refresh, send) without requesting another.
    d.insert("_chat_service".into(), json!(chat.service));
    d.insert("_chat_id".into(), json!(chat.chat_id));
    d.insert("_user_id".into(), json!(chat.user_id));
    d.insert("_secure_key".into(), json!(chat.secure_key));
    d.insert("_alias".into(), json!(crate::chat::ALIAS));
    d
}

/// The text that says where a callback stands.
pub fn state_text(cb: &Callback) -> String {
    match cb.state {
        State::Scheduled => format!("Your callback is scheduled for {}.", iso(cb.desired_time)),
        State::Queued if cb.wait_for_agent => {
            "You will be notified when an agent is available.".into()
        }
        State::Queued => "Your callback is in the queue.".into(),
        State::Routing if cb.chat.is_some() => {
            "Your chat is open: an agent will join it shortly.".into()
        }
        State::Routing if needs_customer(cb) => "An agent is available. Are you ready?".into(),
        State::Routing => "You will receive the call shortly.".into(),
        State::Processing => "You are connected to an agent.".into(),
        State::Paused => "Your callback is on hold.".into(),
        State::Completed => match cb.reason.as_deref() {
            Some("CANCELLED") | Some("CANCELLED_BY_ADMIN") => "Your callback is cancelled.".into(),
            Some(r) if r.starts_with("FAIL") => "We could not complete your callback.".into(),
            _ => "Your callback is complete.".into(),
        },
    }
}

/// The dialog for a callback where it stands: the ready menu while an agent
/// waits for the customer, a confirmation otherwise.
pub fn current(id: &str, cb: &Callback, urls: &Urls) -> Map<String, Value> {
    if cb.state == State::Routing && needs_customer(cb) && cb.chat.is_none() {
        ready_menu(id, cb, urls)
    } else {
        confirmation(id, cb, &state_text(cb))
    }
}

/// The event sent to the customer's app when the callback enters a state.
pub fn event(id: &str, cb: &Callback) -> Value {
    let action = if cb.state == State::Routing && needs_customer(cb) && cb.chat.is_none() {
        "DisplayMenu"
    } else {
        "ConfirmationDialog"
    };
    let mut e = json!({
        "_id": id,
        "_action": action,
        "_service_name": cb.service,
        "_callback_state": cb.state.name(),
        "_text": state_text(cb),
        "_desired_time": iso(cb.desired_time),
        "_event_seq": cb.history.len(),
    });
    if let Some(r) = &cb.reason {
        e["_callback_reason"] = json!(r);
    }
    e
}
