//! Chat API v2 over CometD: customers publish `{"operation": ...}` requests
//! on `/service/chatV2/{serviceName}` and get every answer and every chat
//! event as a delivery on that channel, to their session only. The
//! [`CometNotifier`] pushes the events of any change, made on any node, to
//! the session the chat is linked to (through the cluster bus when that
//! session lives on another node).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use bayeux::{Bayeux, ServiceHandler, ServiceRequest, Session};
use channels::chat::{Agents, ChatError, ChatNotifier, ChatRequest, ChatSession, Chats, CometLink};
use gmshub::cluster::RedisBus;
use parking_lot::Mutex;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::api::chat_v2::{action, code, ChatV2Response, Params};
use crate::genesys_channel::{GenesysUsers, CHANNEL as GENESYS};

pub const PATTERN: &str = "/service/chatV2/*";
const PREFIX: &str = "/service/chatV2/";

pub struct ChatV2Comet {
    chats: Chats,
    notifier: Arc<CometNotifier>,
}

impl ChatV2Comet {
    pub fn new(chats: Chats, notifier: Arc<CometNotifier>) -> Self {
        Self { chats, notifier }
    }
}

/// A request's `data` as parameters: top-level scalars by name, `userData`
/// (an object here, not `userData[k]` keys) as strings.
fn params(data: &Value) -> Params {
    let mut p = Params::default();
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    if let Some(object) = data.as_object() {
        for (k, v) in object {
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
    }
    p
}

fn send(server: &Bayeux, session: &Arc<Session>, channel: &str, response: &ChatV2Response) {
    match serde_json::value::to_raw_value(response) {
        Ok(raw) => {
            let _ = server.deliver(session, channel, &raw);
        }
        Err(e) => tracing::warn!("chat over CometD: cannot encode an answer: {e}"),
    }
}

impl ServiceHandler for ChatV2Comet {
    fn handle(&self, server: &Arc<Bayeux>, session: &Arc<Session>, request: &ServiceRequest<'_>) {
        let channel = request.channel.as_str().to_owned();
        let service = channel.strip_prefix(PREFIX).unwrap_or_default().to_owned();
        let data: Value = serde_json::from_str(request.data.get()).unwrap_or(Value::Null);
        let (chats, server, session) = (self.chats.clone(), server.clone(), session.clone());
        let notifier = self.notifier.clone();
        tokio::spawn(async move {
            let response = answer(&chats, &service, &channel, session.id(), &data).await;
            // What an answer carries is not pushed again.
            if let (Some(id), Some(last)) = (&response.chat_id, response.messages.last()) {
                if response.status_code == 0 && !response.chat_ended {
                    notifier.sent_up_to(id, last.index);
                }
            }
            send(&server, &session, &channel, &response);
        });
    }
}

async fn answer(
    chats: &Chats,
    service: &str,
    channel: &str,
    client_id: &str,
    data: &Value,
) -> ChatV2Response {
    let p = params(data);
    let fail = |chat_id: Option<&str>, e: ChatError| ChatV2Response::error(chat_id, &e).1;
    let Some(operation) = p.get("operation") else {
        return ChatV2Response::bad(None, code::BAD_REQUEST, "operation is required".into());
    };
    let link = CometLink {
        client_id: client_id.to_owned(),
        channel: channel.to_owned(),
    };
    if operation == "requestChat" {
        let request = ChatRequest {
            nickname: p.get("nickname"),
            first_name: p.get("firstName"),
            last_name: p.get("lastName"),
            subject: p.get("subject"),
            email: p.get("emailAddress"),
            user_data: p.user_data.clone(),
            comet: Some(link),
            v1: None,
        };
        return match chats.request(service, request).await {
            Ok((id, chat)) => ChatV2Response::ok(&id, &chat, Some(1)),
            Err(e) => fail(None, e),
        };
    }
    if chats.services().get(service).is_none() {
        return fail(None, ChatError::UnknownService(service.to_owned()));
    }
    let creds = p.credentials(false);
    let Some(key) = creds.secure_key.clone().filter(|k| !k.is_empty()) else {
        return ChatV2Response::bad(None, code::BAD_REQUEST, "secureKey is required".into());
    };
    let (chat_id, _) = match chats.by_key(&key).await {
        Ok(Some(found)) => found,
        Ok(None) => return fail(None, ChatError::NotFound("for this secureKey".into())),
        Err(e) => return fail(None, e),
    };
    let position = match p.position() {
        Ok(position) => position,
        Err(advice) => return ChatV2Response::bad(Some(&chat_id), code::BAD_REQUEST, advice),
    };
    if operation == "requestNotifications" {
        // Resume on this connection: the events from the position given (all
        // of them without one), then everything new as it happens.
        return match chats.link(service, &chat_id, &creds, link).await {
            Ok(chat) => ChatV2Response::ok(&chat_id, &chat, Some(position.unwrap_or(1))),
            Err(e) => fail(Some(&chat_id), e),
        };
    }
    let act = match action(&operation, &p) {
        Ok(a) => a,
        Err((code, advice)) => return ChatV2Response::bad(Some(&chat_id), code, advice),
    };
    // The events themselves arrive through the notifier; the answer
    // acknowledges the request (with the events asked for by position).
    match chats.client(service, &chat_id, &creds, act).await {
        Ok(chat) => ChatV2Response::ok(&chat_id, &chat, position),
        Err(e) => fail(Some(&chat_id), e),
    }
}

/// Pushes new chat events to the customer's CometD session.
///
/// Two writers of one chat can finish their compare-and-sets in one order
/// and call the notifier in the other. So the notifier remembers, per chat,
/// the last index it pushed, and pushes from there to the end of the record
/// it is given (a later record holds the earlier writer's events too):
/// events go out once and in order. That memory is per node; across nodes,
/// two writers racing within microseconds may still deliver out of order,
/// and a client resyncs with `requestNotifications`.
pub struct CometNotifier {
    bayeux: Weak<Bayeux>,
    bus: OnceLock<Arc<RedisBus>>,
    agents: OnceLock<Agents>,
    genesys: OnceLock<Arc<GenesysUsers>>,
    push: OnceLock<BackgroundPush>,
    pushed: Mutex<HashMap<String, u32>>,
}

impl CometNotifier {
    pub fn new(bayeux: &Arc<Bayeux>) -> Arc<Self> {
        Arc::new(Self {
            bayeux: Arc::downgrade(bayeux),
            bus: OnceLock::new(),
            agents: OnceLock::new(),
            genesys: OnceLock::new(),
            push: OnceLock::new(),
            pushed: Mutex::new(HashMap::new()),
        })
    }

    /// The client has been sent the chat's events up to `index` (in an
    /// answer to requestChat or requestNotifications).
    pub fn sent_up_to(&self, chat_id: &str, index: u32) {
        let mut pushed = self.pushed.lock();
        let entry = pushed.entry(chat_id.to_owned()).or_insert(index);
        *entry = (*entry).max(index);
    }

    /// In a cluster, sessions on other nodes are reached through the bus.
    pub fn set_bus(&self, bus: Arc<RedisBus>) {
        let _ = self.bus.set(bus);
    }

    /// Agents' CometD sessions get pings about their chats and offers.
    pub fn set_agents(&self, agents: Agents) {
        let _ = self.agents.set(agents);
    }

    fn deliver(&self, link: &CometLink, data: &RawValue) {
        deliver_to(
            &self.bayeux,
            self.bus.get(),
            &link.client_id,
            &link.channel,
            data,
        );
    }

    /// Sends `ping` to the CometD sessions of `logins` (looked up in the
    /// store, off the caller's path).
    fn ping_agents(&self, logins: Vec<String>, ping: Value) {
        let Some(agents) = self.agents.get().cloned() else {
            return;
        };
        if logins.is_empty() {
            return;
        }
        let (bayeux, bus) = (self.bayeux.clone(), self.bus.get().cloned());
        tokio::spawn(async move {
            let Ok(raw) = serde_json::value::to_raw_value(&ping) else {
                return;
            };
            for login in logins {
                if let Ok(Some(client_id)) = agents.comet(&login).await {
                    deliver_to(&bayeux, bus.as_ref(), &client_id, AGENT_CHANNEL, &raw);
                }
            }
        });
    }
}

/// Delivers to a session on this node, or through the bus to its node.
pub(crate) fn deliver_to(
    bayeux: &Weak<Bayeux>,
    bus: Option<&Arc<RedisBus>>,
    client_id: &str,
    channel: &str,
    data: &RawValue,
) {
    if let Some(bus) = bus {
        bus.deliver(client_id, channel, data);
        return;
    }
    let Some(bayeux) = bayeux.upgrade() else {
        return;
    };
    if let Some(session) = bayeux.session(client_id) {
        let _ = bayeux.deliver(&session, channel, data);
    }
}

impl ChatNotifier for CometNotifier {
    fn queued(&self, chat_id: &str, chat: &ChatSession) {
        let Some(agents) = self.agents.get() else {
            return;
        };
        let logins = agents
            .serving(&chat.queue)
            .map(|a| a.login.clone())
            .collect();
        self.ping_agents(
            logins,
            json!({"event": "offers", "queue": chat.queue, "chatId": chat_id}),
        );
    }

    fn changed(&self, chat_id: &str, chat: &ChatSession, from: u32) {
        // Agents in the chat (and any who just left it) hear that it moved;
        // they read the events through the agent API.
        let logins: Vec<String> = chat
            .participants
            .iter()
            .filter_map(|p| p.agent.clone())
            .collect();
        self.ping_agents(
            logins,
            json!({"event": "chat", "chatId": chat_id, "nextPosition": chat.next_position(), "state": chat.state}),
        );
        let v1_user = chat.v1.as_ref().and_then(|v| v.gms_user.clone());
        if chat.background {
            self.push_in_background(chat_id, chat, from);
            return;
        }
        if chat.comet.is_none() && v1_user.is_none() {
            return; // nobody to push to: the client reads the transcript when back
        }
        let last = chat.next_position() - 1;
        let from = {
            let mut pushed = self.pushed.lock();
            let from = pushed
                .get(chat_id)
                .map_or(from, |&p| p + 1)
                .max(chat.resume_from.unwrap_or(0));
            if from > last {
                return; // a later record already carried these
            }
            if chat.ended() {
                pushed.remove(chat_id);
            } else {
                pushed.insert(chat_id.to_owned(), last);
            }
            from
        };
        if let Some(link) = &chat.comet {
            let response = ChatV2Response::ok(chat_id, chat, Some(from));
            match serde_json::value::to_raw_value(&response) {
                Ok(raw) => self.deliver(link, &raw),
                Err(e) => tracing::warn!("chat over CometD: cannot encode events: {e}"),
            }
        }
        if let (Some(user), Some(users)) = (v1_user, self.genesys.get()) {
            self.deliver_v1(users, &user, chat_id, chat, from);
        }
    }
}

impl CometNotifier {
    /// Chat API v1 events on `/_genesys`, to the session of the chat's
    /// `gms_user`: the chat interaction resource in GMS's comet envelope.
    fn deliver_v1(
        &self,
        users: &Arc<GenesysUsers>,
        user: &str,
        chat_id: &str,
        chat: &ChatSession,
        from: u32,
    ) {
        let mut message = crate::api::chat_v1::resource(chat_id, chat, from, false);
        // Over CometD, GMS sends the position as a string.
        message["transcriptPosition"] = json!(chat.next_position().to_string());
        let id: [u8; 16] = rand::random();
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let service_id = chat
            .v1
            .as_ref()
            .map(|v| v.service_id.as_str())
            .unwrap_or_default();
        let envelope = json!({
            "message": message,
            "id": id,
            "tag": format!("service.chat.refresh.{}-{service_id}", chat.next_position()),
        });
        let Ok(raw) = serde_json::value::to_raw_value(&envelope) else {
            return;
        };
        if let Some(client_id) = users.local(user) {
            deliver_to(&self.bayeux, self.bus.get(), &client_id, GENESYS, &raw);
            return;
        }
        // Known on another node, perhaps: look it up off this path.
        let (bayeux, bus, users, user) = (
            self.bayeux.clone(),
            self.bus.get().cloned(),
            users.clone(),
            user.to_owned(),
        );
        tokio::spawn(async move {
            if let Some(client_id) = users.lookup(&user).await {
                deliver_to(&bayeux, bus.as_ref(), &client_id, GENESYS, &raw);
            }
        });
    }

    /// Chats whose app is in the background reach it by push.
    pub fn set_push(&self, push: BackgroundPush) {
        let _ = self.push.set(push);
    }

    /// The chat's app is in the background: its new events (but those
    /// `filtering_chat_events` names, and its own) go to the push
    /// registration it gave in `requestChat` (`push_notification_deviceid`,
    /// `_type`, `_provider`, `_debug`), if any.
    fn push_in_background(&self, chat_id: &str, chat: &ChatSession, from: u32) {
        let Some(push) = self.push.get() else { return };
        let data = &chat.user_data;
        let (Some(device), Some(kind)) = (
            data.get("push_notification_deviceid")
                .filter(|d| !d.is_empty()),
            data.get("push_notification_type")
                .and_then(|t| push::PushType::parse(t)),
        ) else {
            return;
        };
        for event in chat.since(from) {
            if event.from.kind == channels::chat::PartyType::Client {
                continue;
            }
            let name = crate::api::chat_v1::event_name(event.kind);
            if push.filtered.iter().any(|f| f == name) {
                continue;
            }
            // The tag names the event the way the event sections do:
            // `chat.newagentmessage` for an agent's message.
            let tag = if event.kind == channels::chat::EventType::Message {
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
                provider: data
                    .get("push_notification_provider")
                    .cloned()
                    .unwrap_or_default(),
                debug: data
                    .get("push_notification_debug")
                    .is_some_and(|d| d.eq_ignore_ascii_case("true")),
                device_id: device.clone(),
                authorization: None,
                tag,
                message,
                properties: data
                    .get("push_notification_language")
                    .map(|l| [("language".to_owned(), l.clone())].into())
                    .unwrap_or_default(),
            };
            if let Err(e) = push.dispatcher.submit(n) {
                tracing::warn!("chat push: {e}");
            }
        }
    }

    /// Chat API v1 clients listen on `/_genesys`, found by `gms_user`.
    pub fn set_genesys_users(&self, users: Arc<GenesysUsers>) {
        let _ = self.genesys.set(users);
    }
}

/// Where agents' CometD sessions get their pings, and attach with their
/// token: `{"operation": "attach", "token": "..."}`.
pub const AGENT_CHANNEL: &str = "/service/agent";

/// The agent side's CometD channel: an agent attaches its session with the
/// token of the agent API, then gets a ping on every change of its chats
/// (`{"event": "chat", "chatId", "nextPosition", "state"}`) and whenever a
/// chat waits in one of its queues (`{"event": "offers", ...}`), and reads
/// what changed through the agent API.
pub struct AgentComet {
    agents: Agents,
}

impl AgentComet {
    pub fn new(agents: Agents) -> Self {
        Self { agents }
    }
}

impl ServiceHandler for AgentComet {
    fn handle(&self, server: &Arc<Bayeux>, session: &Arc<Session>, request: &ServiceRequest<'_>) {
        let data: Value = serde_json::from_str(request.data.get()).unwrap_or(Value::Null);
        let (agents, server, session) = (self.agents.clone(), server.clone(), session.clone());
        tokio::spawn(async move {
            let answer = match (data["operation"].as_str(), data["token"].as_str()) {
                (Some("attach"), Some(token)) => match agents.authenticate(token).await {
                    Ok(account) => {
                        let login = account.login.clone();
                        match agents.set_comet(&login, session.id()).await {
                            Ok(()) => {
                                json!({"operation": "attach", "successful": true, "agent": login})
                            }
                            Err(e) => {
                                json!({"operation": "attach", "successful": false, "error": e.to_string()})
                            }
                        }
                    }
                    Err(e) => {
                        json!({"operation": "attach", "successful": false, "error": e.to_string()})
                    }
                },
                _ => {
                    json!({"successful": false, "error": "expected {\"operation\": \"attach\", \"token\": ...}"})
                }
            };
            if let Ok(raw) = serde_json::value::to_raw_value(&answer) {
                let _ = server.deliver(&session, AGENT_CHANNEL, &raw);
            }
        });
    }
}

/// Push for chats in the background: the dispatcher, `[push]
/// filtering_chat_events` (events not pushed; default the typing notices)
/// and `[chat] push_notification_include_payload` (the event itself, as
/// JSON, instead of a line of text).
pub struct BackgroundPush {
    pub dispatcher: Arc<push::Dispatcher>,
    pub filtered: Vec<String>,
    pub include_payload: bool,
}
