//! The chat engine: every operation of customers and agents on a chat
//! session, as a read-modify-compare-and-set of its record, so any node can
//! serve any call and concurrent writers never lose an event.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::store::{now_ms, Collection, IndexEntry, Store, StoreError};

use super::model::{
    ChatSession, ChatState, CometLink, EventType, Participant, PartyType, V1Link, CLIENT_ID,
};

/// Told of every change to a chat that added events, on the node that made
/// it, so the events reach the customer's CometD session wherever it is.
pub trait ChatNotifier: Send + Sync + 'static {
    /// `chat` now holds events from index `from` on that were not there.
    fn changed(&self, chat_id: &str, chat: &ChatSession, from: u32);

    /// The chat waits in its queue (new, transferred, or still waiting):
    /// agents serving the queue may want to look at their offers.
    fn queued(&self, _chat_id: &str, _chat: &ChatSession) {}
}

/// A chat service's options (`chat.<name>`, then `chat`, then these defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatServiceOptions {
    /// `_chat_endpoint` / `chat_endpoint` (else `[chat] default_chat_endpoint`):
    /// the queue agents take the service's chats from.
    pub queue: String,
    /// `_client_timeout` (s): a chat whose customer does nothing for this long
    /// is ended.
    pub client_timeout: Duration,
    /// `max-message-size` (bytes): the longest text a participant may send.
    pub max_message_size: usize,
    /// `max-transcript-size` (bytes of text): a chat whose transcript reaches
    /// it takes no more messages.
    pub max_transcript_size: usize,
    pub files: super::files::FileLimits,
}

impl Default for ChatServiceOptions {
    fn default() -> Self {
        Self {
            queue: DEFAULT_QUEUE.into(),
            client_timeout: Duration::from_secs(900),
            max_message_size: 16 * 1024,
            max_transcript_size: 1024 * 1024,
            files: super::files::FileLimits::default(),
        }
    }
}

pub const DEFAULT_QUEUE: &str = "Environment:default";

/// Which chat service names exist: the `chat.<name>` sections, and any name
/// at all when the `[chat]` catch-all section is configured.
#[derive(Debug, Clone)]
pub struct ChatServices {
    pub named: HashMap<String, ChatServiceOptions>,
    pub catch_all: Option<ChatServiceOptions>,
    /// `[chat] chat_session_request_timeout` (30000 ms): a chat request not
    /// done by then is given up (the customer is told to try again).
    pub request_timeout: Duration,
}

impl Default for ChatServices {
    fn default() -> Self {
        Self {
            named: HashMap::new(),
            catch_all: None,
            request_timeout: Duration::from_millis(30_000),
        }
    }
}

impl ChatServices {
    pub fn get(&self, name: &str) -> Option<&ChatServiceOptions> {
        self.named.get(name).or(self.catch_all.as_ref())
    }
}

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
    #[error(transparent)]
    Store(#[from] StoreError),
}

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

/// The one Chat Server alias gmshub is.
pub const ALIAS: &str = "1";
/// How long an ended chat can still be read (its final transcript).
pub const ENDED_RETENTION: Duration = Duration::from_secs(600);
const CAS_ATTEMPTS: usize = 64;

#[derive(Clone)]
pub struct Chats {
    sessions: Collection<ChatSession>,
    services: Arc<ChatServices>,
    notifier: Option<Arc<dyn ChatNotifier>>,
}

/// How a chat is found: by its customer's key (and v1 service) while it can
/// be read at all; waiting in its queue; open (for the idle check); by the
/// agents in it.
fn indexes(c: &ChatSession) -> Vec<IndexEntry> {
    let mut v = vec![IndexEntry::new("key", &c.secure_key)];
    if let Some(v1) = &c.v1 {
        v.push(IndexEntry::new("v1", &v1.service_id));
        if let Some(user) = &v1.gms_user {
            v.push(IndexEntry::new("v1user", user));
        }
    }
    if let Some(link) = &c.comet {
        v.push(IndexEntry::new("comet", &link.client_id));
    }
    if c.ended() {
        return v;
    }
    if c.state == ChatState::Queued {
        v.push(IndexEntry::new("queued", &c.queue));
    }
    v.push(IndexEntry::new("open", "1"));
    for p in c.participants.iter().filter(|p| p.present) {
        if let Some(agent) = &p.agent {
            v.push(IndexEntry::new("agent", agent));
        }
    }
    v
}

fn token() -> String {
    let b: [u8; 16] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Chats {
    pub fn new(store: Arc<dyn Store>, services: ChatServices) -> Self {
        Self {
            sessions: Collection::new(store, "chat", indexes),
            services: Arc::new(services),
            notifier: None,
        }
    }

    /// Pushes every new event to the customer's CometD session through
    /// `notifier`.
    pub fn with_notifier(mut self, notifier: Arc<dyn ChatNotifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    pub fn services(&self) -> &ChatServices {
        &self.services
    }

    fn options(&self, service: &str) -> Result<&ChatServiceOptions, ChatError> {
        self.services
            .get(service)
            .ok_or_else(|| ChatError::UnknownService(service.to_owned()))
    }

    pub(super) fn file_options(&self, service: &str) -> super::files::FileLimits {
        self.services
            .get(service)
            .map(|o| o.files.clone())
            .unwrap_or_default()
    }

    pub(super) fn files(&self) -> Collection<super::files::ChatFile> {
        Collection::by_id(self.sessions.store().clone(), "chat-file")
    }

    pub(super) fn chat_ttl(&self, chat: &ChatSession) -> Duration {
        self.ttl(chat)
    }

    fn ttl(&self, chat: &ChatSession) -> Duration {
        if chat.ended() {
            return ENDED_RETENTION;
        }
        let timeout = self
            .options(&chat.service)
            .map_or(Duration::from_secs(900), |o| o.client_timeout);
        timeout + ENDED_RETENTION
    }

    /// Starts a chat: the customer joins, the chat waits in its queue.
    pub async fn request(
        &self,
        service: &str,
        req: ChatRequest,
    ) -> Result<(String, ChatSession), ChatError> {
        let options = self.options(service)?.clone();
        let nickname = match (
            req.nickname.filter(|n| !n.trim().is_empty()),
            req.first_name,
            req.last_name,
        ) {
            (Some(n), _, _) => n.trim().to_owned(),
            (None, Some(f), Some(l)) if !f.trim().is_empty() && !l.trim().is_empty() => {
                format!("{} {}", f.trim(), l.trim())
            }
            _ => {
                return Err(ChatError::BadRequest(
                    "nickname (or firstName and lastName) is required".into(),
                ))
            }
        };
        if nickname.len() > 256 {
            return Err(ChatError::TooLarge(
                "nickname is longer than 256 bytes".into(),
            ));
        }
        let now = now_ms();
        let mut chat = ChatSession {
            service: service.to_owned(),
            queue: options.queue.clone(),
            state: ChatState::Queued,
            created_at: now,
            client_active_at: now,
            user_id: token(),
            secure_key: token(),
            participants: vec![Participant {
                id: CLIENT_ID,
                nickname,
                kind: PartyType::Client,
                agent: None,
                present: true,
            }],
            user_data: req.user_data,
            subject: req.subject.filter(|s| !s.is_empty()),
            email: req.email.filter(|s| !s.is_empty()),
            transcript: Vec::new(),
            declined: Vec::new(),
            comet: req.comet,
            v1: req.v1,
            background: false,
            resume_from: None,
        };
        chat.push(CLIENT_ID, EventType::ParticipantJoined, None, now);
        let ttl = self.ttl(&chat);
        let create = async {
            loop {
                let id = token();
                if self.sessions.create(&id, &chat, Some(ttl)).await?.is_some() {
                    return Ok::<_, ChatError>(id);
                }
            }
        };
        let id = tokio::time::timeout(self.services.request_timeout, create)
            .await
            .map_err(|_| {
                ChatError::Store(StoreError::Unavailable {
                    backend: "chat",
                    message: "the chat request took longer than chat_session_request_timeout"
                        .into(),
                })
            })??;
        if let Some(notifier) = &self.notifier {
            notifier.queued(&id, &chat);
        }
        Ok((id, chat))
    }

    /// Reads a chat of `service` as its customer.
    pub async fn read(
        &self,
        service: &str,
        chat_id: &str,
        creds: &Credentials,
    ) -> Result<ChatSession, ChatError> {
        let chat = self.load(chat_id).await?.value;
        check(service, chat_id, &chat, creds)?;
        Ok(chat)
    }

    async fn load(
        &self,
        chat_id: &str,
    ) -> Result<crate::store::collection::Versioned<ChatSession>, ChatError> {
        if crate::store::check_key("a chat id", chat_id).is_err() {
            return Err(ChatError::NotFound(chat_id.to_owned()));
        }
        self.sessions
            .get(chat_id)
            .await?
            .ok_or_else(|| ChatError::NotFound(chat_id.to_owned()))
    }

    /// Applies `f` to the chat with compare-and-set, retrying on races.
    pub(super) async fn modify<T>(
        &self,
        chat_id: &str,
        mut f: impl FnMut(&mut ChatSession, u64) -> Result<T, ChatError>,
    ) -> Result<(T, ChatSession), ChatError> {
        for _ in 0..CAS_ATTEMPTS {
            let current = self.load(chat_id).await?;
            let before = current.value.next_position();
            let mut chat = current.value;
            let out = f(&mut chat, now_ms())?;
            let ttl = self.ttl(&chat);
            if self
                .sessions
                .update(chat_id, current.version, &chat, Some(ttl))
                .await?
                .is_some()
            {
                if let Some(notifier) = &self.notifier {
                    if chat.next_position() > before {
                        notifier.changed(chat_id, &chat, before);
                    }
                    if chat.state == ChatState::Queued {
                        notifier.queued(chat_id, &chat);
                    }
                }
                return Ok((out, chat));
            }
        }
        Err(ChatError::Store(StoreError::Unavailable {
            backend: "chat",
            message: format!("too many concurrent writers on chat {chat_id}"),
        }))
    }

    /// An action of the customer of a chat of `service`.
    pub async fn client(
        &self,
        service: &str,
        chat_id: &str,
        creds: &Credentials,
        action: Action,
    ) -> Result<ChatSession, ChatError> {
        if matches!(action, Action::Refresh) {
            // A refresh counts as activity, but writes only when it must.
            let chat = self.read(service, chat_id, creds).await?;
            // (at most every 5 s, or a quarter of a shorter timeout).
            let timeout = self.options_of(&chat).client_timeout;
            let every = (timeout.as_millis() as u64 / 4).min(5_000);
            if chat.ended()
                || (!chat.background && now_ms().saturating_sub(chat.client_active_at) < every)
            {
                return Ok(chat);
            }
        }
        let (_, chat) = self
            .modify(chat_id, |chat, now| {
                check(service, chat_id, chat, creds)?;
                if matches!(action, Action::Refresh) {
                    if !chat.ended() {
                        chat.client_active_at = now;
                        chat.back_from_background();
                    }
                    return Ok(());
                }
                if chat.ended() {
                    return Err(ChatError::Ended(chat_id.to_owned()));
                }
                chat.client_active_at = now;
                chat.back_from_background();
                let options = self.options_of(chat);
                apply(chat, CLIENT_ID, &action, &options, now)
            })
            .await?;
        Ok(chat)
    }

    /// The options of a chat's service (in memory: no store read).
    fn options_of(&self, chat: &ChatSession) -> ChatServiceOptions {
        self.services
            .get(&chat.service)
            .cloned()
            .unwrap_or_default()
    }

    /// An action of an agent (or bot) who is in the chat.
    pub async fn agent(
        &self,
        chat_id: &str,
        agent: &str,
        action: Action,
    ) -> Result<ChatSession, ChatError> {
        if matches!(action, Action::Refresh) {
            return self.read_as_agent(chat_id, agent).await;
        }
        let (_, chat) = self
            .modify(chat_id, |chat, now| {
                if chat.ended() {
                    return Err(ChatError::Ended(chat_id.to_owned()));
                }
                let me = chat
                    .agent_participant(agent)
                    .ok_or_else(|| ChatError::Forbidden(chat_id.to_owned()))?
                    .id;
                let options = self.options_of(chat);
                apply(chat, me, &action, &options, now)
            })
            .await?;
        Ok(chat)
    }

    /// The oldest chat waiting in one of `queues` that `agent` has not
    /// declined, joined by the agent (as an Agent, or an External bot).
    pub async fn take_next(
        &self,
        agent: &str,
        nickname: &str,
        kind: PartyType,
        queues: &[String],
    ) -> Result<Option<(String, ChatSession)>, ChatError> {
        for _ in 0..CAS_ATTEMPTS {
            let mut waiting = Vec::new();
            for queue in queues {
                for (id, chat) in self.sessions.find("queued", queue, 10_000).await? {
                    if chat.value.state == ChatState::Queued
                        && !chat.value.declined.iter().any(|d| d == agent)
                    {
                        waiting.push((chat.value.created_at, id));
                    }
                }
            }
            waiting.sort();
            let Some((_, id)) = waiting.into_iter().next() else {
                return Ok(None);
            };
            match self.join(&id, agent, nickname, kind, true).await {
                Ok(chat) => return Ok(Some((id, chat))),
                // Another agent took it first: look again.
                Err(ChatError::Ended(_))
                | Err(ChatError::NotFound(_))
                | Err(ChatError::Forbidden(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Adds an agent to a chat; `only_queued`: only while it waits (taking
    /// it from its queue), else also into a connected chat (an invitation).
    pub async fn join(
        &self,
        chat_id: &str,
        agent: &str,
        nickname: &str,
        kind: PartyType,
        only_queued: bool,
    ) -> Result<ChatSession, ChatError> {
        let (_, chat) = self
            .modify(chat_id, |chat, now| {
                if chat.ended() {
                    return Err(ChatError::Ended(chat_id.to_owned()));
                }
                if only_queued && chat.state != ChatState::Queued {
                    return Err(ChatError::Forbidden(chat_id.to_owned()));
                }
                if chat.agent_participant(agent).is_some() {
                    return Ok(());
                }
                let id = chat.participants.iter().map(|p| p.id).max().unwrap_or(0) + 1;
                chat.participants.push(Participant {
                    id,
                    nickname: nickname.to_owned(),
                    kind,
                    agent: Some(agent.to_owned()),
                    present: true,
                });
                chat.state = ChatState::Connected;
                chat.push(id, EventType::ParticipantJoined, None, now);
                Ok(())
            })
            .await?;
        Ok(chat)
    }

    /// An agent turns down a waiting chat: it stays queued for others.
    pub async fn decline(&self, chat_id: &str, agent: &str) -> Result<(), ChatError> {
        self.modify(chat_id, |chat, _| {
            if !chat.declined.iter().any(|d| d == agent) {
                chat.declined.push(agent.to_owned());
            }
            Ok(())
        })
        .await
        .map(drop)
    }

    /// The chat whose customer holds `secure_key` (CometD requests
    /// carry only that).
    pub async fn by_key(
        &self,
        secure_key: &str,
    ) -> Result<Option<(String, ChatSession)>, ChatError> {
        if crate::store::check_key("a secureKey", secure_key).is_err() {
            return Ok(None);
        }
        Ok(self
            .sessions
            .find("key", secure_key, 2)
            .await?
            .into_iter()
            .map(|(id, c)| (id, c.value))
            .find(|(_, c)| c.secure_key == secure_key))
    }

    /// The Chat API v1 chat requested through service instance `service_id`
    /// (ended ones included, while they can be read).
    pub async fn by_v1_service(
        &self,
        service_id: &str,
    ) -> Result<Option<(String, ChatSession)>, ChatError> {
        if crate::store::check_key("a service id", service_id).is_err() {
            return Ok(None);
        }
        if let Some(found) = self
            .sessions
            .find("v1", service_id, 2)
            .await?
            .into_iter()
            .map(|(id, c)| (id, c.value))
            .find(|(_, c)| c.v1.as_ref().is_some_and(|v| v.service_id == service_id))
        {
            return Ok(Some(found));
        }
        Ok(None)
    }

    /// Sends the chat's future events to a (new) CometD session: the
    /// customer resumed on another connection.
    pub async fn link(
        &self,
        service: &str,
        chat_id: &str,
        creds: &Credentials,
        link: CometLink,
    ) -> Result<ChatSession, ChatError> {
        let (_, chat) = self
            .modify(chat_id, |chat, now| {
                check(service, chat_id, chat, creds)?;
                chat.comet = Some(link.clone());
                chat.back_from_background();
                if !chat.ended() {
                    chat.client_active_at = now;
                }
                Ok(())
            })
            .await?;
        Ok(chat)
    }

    /// Ends every chat whose customer has done nothing for the service's
    /// `_client_timeout`, with a notice both sides see. Any node may run it
    /// at any time: the end is a compare-and-set, so a chat ends once.
    /// Returns how many it ended.
    pub async fn end_idle(&self) -> Result<usize, ChatError> {
        let now = now_ms();
        let mut ended = 0;
        for (id, chat) in self.sessions.find("open", "1", 100_000).await? {
            let timeout = self
                .services
                .get(&chat.value.service)
                .map_or(Duration::from_secs(900), |o| o.client_timeout);
            if chat.value.ended() || chat.value.client_active_at + timeout.as_millis() as u64 > now
            {
                continue;
            }
            let outcome = self
                .modify(&id, |chat, now| {
                    if chat.ended() || chat.client_active_at + timeout.as_millis() as u64 > now {
                        return Ok(false);
                    }
                    let text = format!(
                        "The chat ended: no activity from the customer for {} s.",
                        timeout.as_secs()
                    );
                    chat.push(0, EventType::Notice, Some(text), now);
                    end(chat, 0, now);
                    Ok(true)
                })
                .await;
            match outcome {
                Ok((true, _)) => ended += 1,
                Ok((false, _)) | Err(ChatError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ended)
    }

    /// How often `end_idle` should run: a quarter of the shortest timeout,
    /// between 1 and 30 seconds.
    pub fn idle_check_period(&self) -> Duration {
        self.services
            .named
            .values()
            .chain(self.services.catch_all.iter())
            .map(|o| o.client_timeout / 4)
            .min()
            .unwrap_or(Duration::from_secs(30))
            .clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// Runs `end_idle` every `idle_check_period` until the process ends.
    pub fn spawn_idle_check(&self) {
        let chats = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(chats.idle_check_period());
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match chats.end_idle().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(chats = n, "ended idle chats (_client_timeout)"),
                    Err(e) => tracing::warn!("ending idle chats: {e}"),
                }
            }
        });
    }

    /// The customer's app went to the background: its CometD session (v2) or
    /// the sessions of its `gms_user` (v1) are left alone until it is back,
    /// and the agents see a notice. Returns how many chats it concerned.
    pub async fn to_background(
        &self,
        client_id: &str,
        gms_user: Option<&str>,
    ) -> Result<usize, ChatError> {
        let mut found = Vec::new();
        if crate::store::check_key("a clientId", client_id).is_ok() {
            found.extend(
                self.sessions
                    .find("comet", client_id, 100)
                    .await?
                    .into_iter()
                    .map(|(id, _)| id),
            );
        }
        if let Some(user) = gms_user.filter(|u| crate::store::check_key("a gms_user", u).is_ok()) {
            found.extend(
                self.sessions
                    .find("v1user", user, 100)
                    .await?
                    .into_iter()
                    .map(|(id, _)| id),
            );
        }
        let mut count = 0;
        for id in found {
            let outcome = self
                .modify(&id, |chat, now| {
                    if chat.ended() || chat.background {
                        return Ok(false);
                    }
                    chat.background = true;
                    if chat
                        .comet
                        .as_ref()
                        .is_some_and(|l| l.client_id == client_id)
                    {
                        chat.comet = None;
                    }
                    let text = "The customer's app went to the background.".to_owned();
                    chat.push(CLIENT_ID, EventType::CustomNotice, Some(text), now);
                    Ok(true)
                })
                .await;
            match outcome {
                Ok((true, _)) => count += 1,
                Ok((false, _)) | Err(ChatError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(count)
    }

    /// Chats waiting in a queue.
    pub async fn queued(&self, queue: &str) -> Result<Vec<(String, ChatSession)>, ChatError> {
        Ok(self
            .sessions
            .find("queued", queue, 10_000)
            .await?
            .into_iter()
            .map(|(id, c)| (id, c.value))
            .collect())
    }

    /// Reads a chat without credentials (for the agent side, which checks
    /// its own rights).
    pub async fn read_unchecked(&self, chat_id: &str) -> Result<ChatSession, ChatError> {
        Ok(self.load(chat_id).await?.value)
    }

    /// The chats an agent is in.
    pub async fn of_agent(&self, agent: &str) -> Result<Vec<(String, ChatSession)>, ChatError> {
        Ok(self
            .sessions
            .find("agent", agent, 1000)
            .await?
            .into_iter()
            .map(|(id, c)| (id, c.value))
            .collect())
    }

    /// How many chats an agent is in, without reading them.
    pub async fn count_of_agent(&self, agent: &str) -> Result<u64, ChatError> {
        Ok(self.sessions.store().count("chat", "agent", agent).await?)
    }

    /// Reads a chat as one of its agents (present or past).
    pub async fn read_as_agent(
        &self,
        chat_id: &str,
        agent: &str,
    ) -> Result<ChatSession, ChatError> {
        let chat = self.load(chat_id).await?.value;
        if chat
            .participants
            .iter()
            .any(|p| p.agent.as_deref() == Some(agent))
        {
            Ok(chat)
        } else {
            Err(ChatError::Forbidden(chat_id.to_owned()))
        }
    }
}

/// The chat must be of the service asked for (else it is not found there),
/// and the customer's credentials must match: `secureKey` always, `userId`
/// and `alias` when given (Chat API v2 over REST always gives `userId`).
fn check(
    service: &str,
    chat_id: &str,
    chat: &ChatSession,
    creds: &Credentials,
) -> Result<(), ChatError> {
    if chat.service != service {
        return Err(ChatError::NotFound(chat_id.to_owned()));
    }
    let alias_ok = creds.alias.as_deref().is_none_or(|a| a == ALIAS);
    let user_ok = creds.user_id.as_deref().is_none_or(|u| u == chat.user_id);
    if creds.secure_key.as_deref() != Some(chat.secure_key.as_str()) || !user_ok || !alias_ok {
        return Err(ChatError::Forbidden(chat_id.to_owned()));
    }
    Ok(())
}

fn bounded(
    text: &str,
    what: &str,
    options: &ChatServiceOptions,
    chat: &ChatSession,
) -> Result<(), ChatError> {
    if text.len() > options.max_message_size {
        return Err(ChatError::TooLarge(format!(
            "{what} is longer than {} bytes (max-message-size)",
            options.max_message_size
        )));
    }
    if chat.text_bytes() + text.len() > options.max_transcript_size {
        return Err(ChatError::TooLarge(format!(
            "the transcript has reached {} bytes (max-transcript-size)",
            options.max_transcript_size
        )));
    }
    Ok(())
}

/// One participant's action on the chat.
fn apply(
    chat: &mut ChatSession,
    who: u32,
    action: &Action,
    options: &ChatServiceOptions,
    now: u64,
) -> Result<(), ChatError> {
    match action {
        Action::Send { text, message_type } => {
            if text.is_empty() {
                return Err(ChatError::BadRequest("message is required".into()));
            }
            bounded(text, "message", options, chat)?;
            chat.push(who, EventType::Message, Some(text.clone()), now);
            if let Some(event) = chat.transcript.last_mut() {
                event.message_type = message_type.clone().filter(|t| !t.is_empty());
            }
        }
        Action::StartTyping(preview) | Action::StopTyping(preview) => {
            let kind = if matches!(action, Action::StartTyping(_)) {
                EventType::TypingStarted
            } else {
                EventType::TypingStopped
            };
            let preview = preview.clone().filter(|p| !p.is_empty());
            if let Some(p) = &preview {
                bounded(p, "message", options, chat)?;
            }
            chat.push(who, kind, preview, now);
        }
        Action::PushUrl(url) => {
            if url.trim().is_empty() {
                return Err(ChatError::BadRequest("pushUrl is required".into()));
            }
            bounded(url, "pushUrl", options, chat)?;
            chat.push(who, EventType::PushUrl, Some(url.clone()), now);
        }
        Action::CustomNotice(text) => {
            bounded(text, "message", options, chat)?;
            chat.push(
                who,
                EventType::CustomNotice,
                Some(text.clone()).filter(|t| !t.is_empty()),
                now,
            );
        }
        Action::UpdateNickname(nickname) => {
            let nickname = nickname.trim();
            if nickname.is_empty() {
                return Err(ChatError::BadRequest("nickname is required".into()));
            }
            if nickname.len() > 256 {
                return Err(ChatError::TooLarge(
                    "nickname is longer than 256 bytes".into(),
                ));
            }
            if let Some(p) = chat.participant_mut(who) {
                p.nickname = nickname.to_owned();
            }
            chat.push(
                who,
                EventType::NicknameUpdated,
                Some(nickname.to_owned()),
                now,
            );
        }
        Action::UpdateData(data) => {
            let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
            if size > options.max_message_size {
                return Err(ChatError::TooLarge(format!(
                    "userData is larger than {} bytes (max-message-size)",
                    options.max_message_size
                )));
            }
            chat.user_data.extend(data.clone());
        }
        Action::Leave => {
            if who == CLIENT_ID {
                end(chat, who, now);
            } else {
                leave(chat, who, now);
                if !chat
                    .participants
                    .iter()
                    .any(|p| p.present && p.id != CLIENT_ID)
                {
                    // The last agent left: nobody answers any more.
                    end(chat, 0, now);
                }
            }
        }
        Action::End => end(chat, who, now),
        Action::Transfer(queue) => {
            if queue.trim().is_empty() {
                return Err(ChatError::BadRequest("queue is required".into()));
            }
            leave(chat, who, now);
            if !chat
                .participants
                .iter()
                .any(|p| p.present && p.id != CLIENT_ID)
            {
                chat.state = ChatState::Queued;
                chat.queue = queue.trim().to_owned();
                chat.declined.clear();
            }
        }
        Action::Refresh => {}
    }
    Ok(())
}

fn leave(chat: &mut ChatSession, who: u32, now: u64) {
    if let Some(p) = chat.participant_mut(who) {
        if p.present {
            p.present = false;
            chat.push(who, EventType::ParticipantLeft, None, now);
        }
    }
}

/// Ends the chat: `who` leaves first, then everyone else.
fn end(chat: &mut ChatSession, who: u32, now: u64) {
    leave(chat, who, now);
    let others: Vec<u32> = chat
        .participants
        .iter()
        .filter(|p| p.present)
        .map(|p| p.id)
        .collect();
    for id in others {
        leave(chat, id, now);
    }
    chat.state = ChatState::Ended;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Event;
    use crate::store::MemoryStore;

    fn chats() -> Chats {
        let mut services = ChatServices::default();
        services
            .named
            .insert("s".into(), ChatServiceOptions::default());
        Chats::new(Arc::new(MemoryStore::default()), services)
    }

    fn request(nickname: &str) -> ChatRequest {
        ChatRequest {
            nickname: Some(nickname.into()),
            ..Default::default()
        }
    }

    fn creds(chat: &ChatSession) -> Credentials {
        Credentials {
            user_id: Some(chat.user_id.clone()),
            secure_key: Some(chat.secure_key.clone()),
            alias: None,
        }
    }

    /// Two agents race for one waiting chat: exactly one gets it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_agent_wins_a_waiting_chat() {
        let chats = chats();
        let (id, _) = chats.request("s", request("c")).await.unwrap();
        let queues = vec![DEFAULT_QUEUE.to_owned()];
        let mut tasks = Vec::new();
        for agent in ["a1", "a2", "a3", "a4"] {
            let (chats, queues) = (chats.clone(), queues.clone());
            tasks.push(tokio::spawn(async move {
                chats
                    .take_next(agent, agent, PartyType::Agent, &queues)
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            if let Some((won, _)) = t.await.unwrap() {
                assert_eq!(won, id);
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
        let chat = chats.read_unchecked(&id).await.unwrap();
        assert_eq!(chat.participants.len(), 2);
        assert_eq!(
            chat.transcript.len(),
            2,
            "one join each: customer, one agent"
        );
    }

    /// Customer and agent write at once: every event lands, indexes in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_messages_all_land_in_order() {
        let chats = chats();
        let (id, chat) = chats.request("s", request("c")).await.unwrap();
        chats
            .take_next("a", "A", PartyType::Agent, &[DEFAULT_QUEUE.to_owned()])
            .await
            .unwrap();
        let c = creds(&chat);
        let (c1, c2) = (chats.clone(), chats.clone());
        let (id1, id2) = (id.clone(), id.clone());
        let customer = tokio::spawn(async move {
            for i in 0..20 {
                let send = Action::Send {
                    text: format!("c{i}"),
                    message_type: None,
                };
                c1.client("s", &id1, &c, send).await.unwrap();
            }
        });
        let agent = tokio::spawn(async move {
            for i in 0..20 {
                let send = Action::Send {
                    text: format!("a{i}"),
                    message_type: None,
                };
                c2.agent(&id2, "a", send).await.unwrap();
            }
        });
        customer.await.unwrap();
        agent.await.unwrap();
        let chat = chats.read_unchecked(&id).await.unwrap();
        let messages: Vec<&Event> = chat
            .transcript
            .iter()
            .filter(|e| e.kind == EventType::Message)
            .collect();
        assert_eq!(messages.len(), 40);
        for (i, e) in chat.transcript.iter().enumerate() {
            assert_eq!(e.index as usize, i + 1);
        }
        let customer_order: Vec<&str> = messages
            .iter()
            .filter(|e| e.from.kind == PartyType::Client)
            .map(|e| e.text.as_deref().unwrap())
            .collect();
        let expected: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        assert_eq!(customer_order, expected);
    }

    #[tokio::test]
    async fn the_last_agent_leaving_ends_the_chat() {
        let chats = chats();
        let (id, _) = chats.request("s", request("c")).await.unwrap();
        chats
            .take_next("a", "A", PartyType::Agent, &[DEFAULT_QUEUE.to_owned()])
            .await
            .unwrap();
        let chat = chats.agent(&id, "a", Action::Leave).await.unwrap();
        assert!(chat.ended());
        assert!(chats.of_agent("a").await.unwrap().is_empty());
    }
}
