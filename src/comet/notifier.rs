//! The chat notifier: one task reads the chat engine's changes, in the order
//! their writes finished, and tells everyone who follows the chat: the
//! customer's CometD session (Chat API v2, or v1 on `/_genesys`), its app by
//! push while it is in the background, and the agents (a ping on
//! `/service/agent`; they read what changed through the agent API).
//!
//! Two writers of one chat can finish their compare-and-sets in one order
//! and reach this task's queue in the other. So [`Pushed`] remembers, per
//! chat, the last index its customer was sent, and a push goes from there
//! to the end of the record it was given (a later record holds the earlier
//! writer's events too): events go out once and in order. That memory is
//! per node; across nodes, two writers racing within microseconds may still
//! deliver out of order, and a client resyncs with `requestNotifications`.
//!
//! May use: the reach, the users registry, the agent channel's name,
//! `wire`, `config` (push settings).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use channels::chat::{Agents, ChatChange, ChatChanges, ChatSession, Event, EventType, PartyType};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::agent::CHANNEL as AGENT_CHANNEL;
use super::offers::{OfferPings, WINDOW};
use super::reach::Reach;
use super::users::GenesysUsers;
use crate::config::PushSettings;
use crate::wire::chat_v1::{event_name, resource, TranscriptFormat};
use crate::wire::chat_v2::ChatV2Response;
use crate::wire::envelope::{envelope, GENESYS};

/// Per chat, the last event index its customer's session has been sent,
/// by a push or in an answer. A chat that ends here is forgotten at once;
/// one that ended or expired elsewhere is forgotten once untouched for
/// `stale_after` (no live chat goes that long without a change).
pub struct Pushed {
    up_to: Mutex<PushedMap>,
    stale_after: Duration,
}

#[derive(Default)]
struct PushedMap {
    /// Chat id to (last index sent, when it last changed).
    chats: HashMap<String, (u32, Instant)>,
    swept_at: Option<Instant>,
}

impl Pushed {
    pub fn new(stale_after: Duration) -> Self {
        Self {
            up_to: Mutex::new(PushedMap::default()),
            stale_after,
        }
    }

    /// How many chats are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.up_to.lock().chats.len()
    }

    /// The map, swept of stale chats when a quarter of `stale_after` has
    /// passed since the last sweep.
    fn map(&self) -> parking_lot::MutexGuard<'_, PushedMap> {
        let mut map = self.up_to.lock();
        let now = Instant::now();
        if map
            .swept_at
            .is_none_or(|at| now.duration_since(at) >= self.stale_after / 4)
        {
            let stale_after = self.stale_after;
            map.chats
                .retain(|_, (_, touched)| now.duration_since(*touched) < stale_after);
            map.swept_at = Some(now);
        }
        map
    }

    /// The client has been sent the chat's events up to `index` (in an
    /// answer to requestChat or requestNotifications).
    pub fn sent_up_to(&self, chat_id: &str, index: u32) {
        let mut map = self.map();
        let entry = map
            .chats
            .entry(chat_id.to_owned())
            .or_insert((index, Instant::now()));
        *entry = (entry.0.max(index), Instant::now());
    }

    /// Where a push of `chat`'s events from `from` starts, and that it is
    /// sent up to the chat's end; `None` when a later record already
    /// carried them all.
    fn claim(&self, chat_id: &str, chat: &ChatSession, from: u32) -> Option<u32> {
        let last = chat.next_position() - 1;
        let mut map = self.map();
        let from = map
            .chats
            .get(chat_id)
            .map_or(from, |&(p, _)| p + 1)
            .max(chat.resume_from.unwrap_or(0));
        if from > last {
            return None;
        }
        if chat.ended() {
            map.chats.remove(chat_id);
        } else {
            map.chats.insert(chat_id.to_owned(), (last, Instant::now()));
        }
        Some(from)
    }
}

/// Push for chats in the background: the dispatcher, and which events go.
pub struct BackgroundPush {
    pub dispatcher: Arc<push::Dispatcher>,
    /// `[push] filtering_chat_events`: events not pushed.
    pub filtered: Vec<String>,
    /// `[chat] push_notification_include_payload`: the event itself, as
    /// JSON, instead of a line of text.
    pub include_payload: bool,
    /// `[callback] allowed-device-os`: the push types a customer's own
    /// registration may name (as for a callback's `_device_os`).
    pub allowed: Vec<push::PushType>,
}

impl BackgroundPush {
    pub fn new(
        dispatcher: Arc<push::Dispatcher>,
        settings: &PushSettings,
        allowed: Vec<push::PushType>,
    ) -> Self {
        Self {
            dispatcher,
            filtered: settings.filtered_chat_events.clone(),
            include_payload: settings.chat_payload,
            allowed,
        }
    }
}

pub struct ChatNotifier {
    pub reach: Reach,
    pub agents: Agents,
    pub users: Arc<GenesysUsers>,
    pub push: BackgroundPush,
    pub pushed: Arc<Pushed>,
    pub format: TranscriptFormat,
    pub offer_pings: Arc<OfferPings>,
}

impl ChatNotifier {
    /// Reads `changes` until the chat engine is gone.
    pub fn spawn(self, mut changes: ChatChanges) -> JoinHandle<()> {
        let notifier = Arc::new(self);
        tokio::spawn(async move {
            while let Some(change) = changes.recv().await {
                notifier.notify(&change);
            }
        })
    }

    fn notify(self: &Arc<Self>, change: &ChatChange) {
        let (chat_id, chat) = (change.chat_id.as_str(), change.chat.as_ref());
        if !change.new_events().is_empty() {
            self.changed(change);
        }
        if change.queue_moved {
            // The chat entered or left the queue: agents serving it may want
            // to look at their offers (a message in a waiting chat changes
            // none of them, and tells none): at once if they were quiet, then
            // once per window at most while changes go on.
            let serving = self.agents.serving(&chat.queue).map(|a| a.login.clone());
            let now = self.offer_pings.claim(serving, chat_id);
            if now.is_empty() {
                return;
            }
            let (pings, queue) = (self.offer_pings.clone(), chat.queue.clone());
            let (agents, reach) = (self.agents.clone(), self.reach.clone());
            tokio::spawn(async move {
                let mut due = now;
                loop {
                    let window: Vec<String> = due.iter().map(|(l, _)| l.clone()).collect();
                    for (login, covered) in due {
                        // `chatId`: the first chat of the ping, as one change's ping says.
                        let offers = json!({
                            "event": "offers",
                            "queue": queue,
                            "chatId": covered.chats.first(),
                            "chatIds": covered.chats,
                            "more": covered.more,
                        });
                        ping(&agents, &reach, vec![login], &offers).await;
                    }
                    tokio::time::sleep(WINDOW).await;
                    due = pings.release(window);
                    if due.is_empty() {
                        return;
                    }
                }
            });
        }
    }

    fn changed(self: &Arc<Self>, change: &ChatChange) {
        let (chat_id, chat) = (change.chat_id.as_str(), change.chat.as_ref());
        // Agents in the chat (and any who just left it) hear that it moved,
        // with the change's events: one that missed a ping sees a gap in the
        // indexes and reads the rest through the agent API.
        let logins: Vec<String> = chat
            .participants
            .iter()
            .filter_map(|p| p.agent.clone())
            .collect();
        self.ping_agents(
            logins,
            json!({
                "event": "chat",
                "chatId": chat_id,
                "nextPosition": chat.next_position(),
                "state": chat.state,
                "messages": change.new_events(),
            }),
        );
        if chat.background {
            self.push_in_background(chat_id, chat, change.new_events());
            return;
        }
        if chat.comet.is_none() && v1_user(chat).is_none() {
            return; // nobody to push to: the client reads the transcript when back
        }
        let Some(from) = self.pushed.claim(chat_id, chat, change.from) else {
            return;
        };
        if let Some(events) = chat.recent_since(from) {
            self.deliver(chat_id, chat, events);
            return;
        }
        // Events this node has not pushed went to the chat's log meanwhile
        // (another node wrote them): read them off this task.
        let (notifier, chat_id, chat) = (self.clone(), chat_id.to_owned(), change.chat.clone());
        tokio::spawn(async move {
            match notifier
                .agents
                .chats()
                .transcript(&chat_id, &chat, from)
                .await
            {
                Ok(events) => notifier.deliver(&chat_id, &chat, &events),
                Err(e) => tracing::warn!(chat = %chat_id, "pushing a chat's events: {e}"),
            }
        });
    }

    /// Sends `events` (the chat's newest) to the customer's CometD
    /// session and its v1 user's.
    fn deliver(&self, chat_id: &str, chat: &ChatSession, events: &[Event]) {
        if let Some(link) = &chat.comet {
            let response = ChatV2Response::ok(chat_id, chat, events.to_vec());
            match serde_json::value::to_raw_value(&response) {
                Ok(raw) => self.reach.deliver(&link.client_id, &link.channel, &raw),
                Err(e) => tracing::warn!("chat over CometD: cannot encode events: {e}"),
            }
        }
        if let Some(user) = v1_user(chat) {
            self.deliver_v1(user, chat_id, chat, events);
        }
    }

    /// Sends `ping` to the CometD sessions of `logins` (looked up in the
    /// store, off this task).
    fn ping_agents(&self, logins: Vec<String>, message: Value) {
        if logins.is_empty() {
            return;
        }
        let (agents, reach) = (self.agents.clone(), self.reach.clone());
        tokio::spawn(async move { ping(&agents, &reach, logins, &message).await });
    }

    /// Chat API v1 events on `/_genesys`, to the session of the chat's
    /// `gms_user`: the chat interaction resource in GMS's comet envelope.
    fn deliver_v1(&self, user: &str, chat_id: &str, chat: &ChatSession, events: &[Event]) {
        let mut message = resource(chat_id, chat, events, false, self.format);
        // Over CometD, GMS sends the position as a string.
        message["transcriptPosition"] = json!(chat.next_position().to_string());
        let service_id = chat
            .v1
            .as_ref()
            .map(|v| v.service_id.as_str())
            .unwrap_or_default();
        let tag = format!("service.chat.refresh.{}-{service_id}", chat.next_position());
        let Ok(raw) = serde_json::value::to_raw_value(&envelope(message, &tag)) else {
            return;
        };
        if let Some(client_id) = self.users.local(user) {
            self.reach.deliver(&client_id, GENESYS, &raw);
            return;
        }
        // Known on another node, perhaps: look it up off this task.
        let (reach, users, user) = (self.reach.clone(), self.users.clone(), user.to_owned());
        tokio::spawn(async move {
            if let Ok(Some(client_id)) = users.lookup(&user).await {
                reach.deliver(&client_id, GENESYS, &raw);
            }
        });
    }

    /// The chat's app is in the background: its new events (but those
    /// `filtering_chat_events` names, and its own) go to the push
    /// registration it gave in `requestChat` (`push_notification_deviceid`,
    /// `_type`, `_provider`, `_debug`), if any.
    fn push_in_background(&self, chat_id: &str, chat: &ChatSession, events: &[Event]) {
        let push = &self.push;
        let data = &chat.user_data;
        let (Some(device), Some(kind)) = (
            data.get("push_notification_deviceid")
                .filter(|d| !d.is_empty()),
            data.get("push_notification_type")
                .and_then(|t| push::PushType::parse(t)),
        ) else {
            return;
        };
        // The registration is the customer's: it passes the checks a
        // callback's `_device_os` and a subscription's target pass.
        let provider = data
            .get("push_notification_provider")
            .map_or("", String::as_str);
        let debug = data
            .get("push_notification_debug")
            .is_some_and(|d| d.eq_ignore_ascii_case("true"));
        let refused = if !push.allowed.contains(&kind) {
            Some(format!(
                "{} is not in [callback] allowed-device-os",
                kind.name()
            ))
        } else {
            push.dispatcher
                .check_device(kind, provider, debug, device)
                .err()
        };
        if let Some(why) = refused {
            tracing::debug!(
                chat = chat_id,
                "background push registration ignored: {why}"
            );
            return;
        }
        for event in events {
            if event.from.kind == PartyType::Client {
                continue;
            }
            let name = event_name(event.kind);
            if push.filtered.iter().any(|f| f == name) {
                continue;
            }
            // The tag names the event the way the event sections do:
            // `chat.newagentmessage` for an agent's message.
            let tag = if event.kind == EventType::Message {
                "chat.newagentmessage".to_owned()
            } else {
                format!("chat.{}", name.to_ascii_lowercase())
            };
            let message = if push.include_payload {
                json!({"chatId": chat_id, "event": event}).to_string()
            } else {
                match &event.text {
                    Some(text) => format!("{}: {text}", event.from.nickname),
                    None => format!("{} {}", event.from.nickname, name),
                }
            };
            let n = push::Notification {
                subscription_id: String::new(),
                kind,
                provider: provider.to_owned(),
                debug,
                device_id: device.clone(),
                authorization: None,
                tag: tag.into(),
                message: message.into(),
                properties: data
                    .get("push_notification_language")
                    .map(|l| [("language".to_owned(), l.clone())].into())
                    .unwrap_or_default(),
                tally: None,
            };
            if let Err(e) = push.dispatcher.submit(n) {
                tracing::warn!("chat push: {e}");
            }
        }
    }
}

/// The `gms_user` a Chat API v1 chat's events go to.
fn v1_user(chat: &ChatSession) -> Option<&str> {
    chat.v1.as_ref().and_then(|v| v.gms_user.as_deref())
}

/// Sends `message` to the CometD sessions of `logins` (looked up in the
/// store) on the agent channel.
async fn ping(agents: &Agents, reach: &Reach, logins: Vec<String>, message: &Value) {
    let Ok(raw) = serde_json::value::to_raw_value(message) else {
        return;
    };
    for login in logins {
        if let Ok(Some(client_id)) = agents.comet(&login).await {
            reach.deliver(&client_id, AGENT_CHANNEL, &raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chats_that_ended_elsewhere_are_forgotten() {
        let pushed = Pushed::new(Duration::from_millis(40));
        pushed.sent_up_to("ended-on-another-node", 3);
        pushed.sent_up_to("ended-on-another-node", 2);
        assert_eq!(pushed.len(), 1);
        std::thread::sleep(Duration::from_millis(60));
        pushed.sent_up_to("live", 1);
        assert_eq!(pushed.len(), 1, "only the chat still changing stays");
    }
}
