//! The chats in the store, and the one way a chat changes: a
//! read-modify-compare-and-set of its record (`Chats::modify`), so any node
//! can serve any call and concurrent writers never lose an event. Every
//! change that someone may have to hear of (new events, a chat waiting in
//! its queue) goes out as a [`ChatChange`] on a bounded channel, after the
//! write: whoever pushes events to clients reads them there, off the
//! compare-and-set path. The operations themselves are in
//! [`customer`](super::customer), [`routing`](super::routing),
//! [`idle`](super::idle) and [`files`](super::files). May use: the store,
//! the chat model, options, requests, errors and transitions.

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use bayeux::KeyedRate;

use tokio::sync::mpsc;

use super::error::ChatError;
use super::model::{ChatFile, ChatSession, ChatState, Event};
use super::options::{ChatServiceOptions, ChatServices};
use super::request::Credentials;
use super::transitions::check;
use crate::store::{check_key, now_ms, Collection, IndexEntry, Logs, Store};

/// How long an ended chat can still be read (its final transcript).
pub const ENDED_RETENTION: Duration = Duration::from_secs(600);

/// Changes waiting for their reader before writers wait for it.
pub const CHANGE_QUEUE: usize = 4096;

/// A record's recent events go to the log once they are this many, or
/// hold this many bytes of text: the bound on what a write rewrites.
pub const FLUSH_EVENTS: usize = 8;
pub const FLUSH_BYTES: usize = 8 * 1024;

/// A chat that changed in a way someone may have to hear of: it has new
/// events (from index `from`), or it entered, left or changed its queue.
#[derive(Debug, Clone)]
pub struct ChatChange {
    pub chat_id: String,
    /// The record as this change left it.
    pub chat: Arc<ChatSession>,
    /// The index of its first new event (`chat.next_position()` when it
    /// has none).
    pub from: u32,
    /// Whether the chat entered a queue, left it, or moved to another: what
    /// changes agents' offers (a message in a waiting chat does not).
    pub queue_moved: bool,
}

/// The queue a chat waits in, if it waits.
fn waiting_in(chat: &ChatSession) -> Option<&str> {
    (chat.state == ChatState::Queued).then_some(chat.queue.as_str())
}

impl ChatChange {
    /// The events this change added (all in its record).
    pub fn new_events(&self) -> &[Event] {
        self.chat.recent_since(self.from).unwrap_or_default()
    }
}

/// Where [`Chats`] sends its changes, in the order their writes finished.
pub type ChatChanges = mpsc::Receiver<ChatChange>;

#[derive(Clone)]
pub struct Chats {
    pub(super) sessions: Collection<ChatSession>,
    /// Each chat's events that left its record, under its id.
    events: Logs<Event>,
    services: Arc<ChatServices>,
    changes: mpsc::Sender<ChatChange>,
    /// Chats started per client address.
    pub(super) started: Arc<KeyedRate<IpAddr>>,
    /// Whether this process's idle check has swept the chats written before
    /// the due index existed.
    pub(super) swept: Arc<AtomicBool>,
}

/// How a chat is found: by its customer's key (and v1 service) while it can
/// be read at all; waiting in its queue, oldest first; open, by state (a
/// count per state is the census) and by when its idle check is due; by
/// the agents in it.
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
        v.push(IndexEntry::ordered("queued", &c.queue, c.created_at));
    }
    v.push(IndexEntry::new("open", "1"));
    v.push(IndexEntry::new("state", c.state.name()));
    if let Some(due) = c.idle_due {
        v.push(IndexEntry::ordered("idle", "due", due));
    }
    for p in c.participants.iter().filter(|p| p.present) {
        if let Some(agent) = &p.agent {
            v.push(IndexEntry::new("agent", agent));
        }
    }
    v
}

impl Chats {
    /// The chats of `store`, and the changes they will go through. A reader
    /// that stops reading makes writers wait; one dropped makes them stop
    /// sending.
    pub fn new(store: Arc<dyn Store>, services: ChatServices) -> (Self, ChatChanges) {
        let (changes, receiver) = mpsc::channel(CHANGE_QUEUE);
        let chats = Self {
            events: Logs::new(store.clone(), "chat"),
            sessions: Collection::new(store, "chat", indexes),
            started: Arc::new(KeyedRate::per_minute(services.chats_per_minute_per_address)),
            swept: Arc::default(),
            services: Arc::new(services),
            changes,
        };
        (chats, receiver)
    }

    pub fn services(&self) -> &ChatServices {
        &self.services
    }

    pub(super) fn options(&self, service: &str) -> Result<&ChatServiceOptions, ChatError> {
        self.services
            .get(service)
            .ok_or_else(|| ChatError::UnknownService(service.to_owned()))
    }

    pub(super) fn ttl(&self, chat: &ChatSession) -> Duration {
        if chat.ended() {
            return ENDED_RETENTION;
        }
        let timeout = self
            .options(&chat.service)
            .map_or(Duration::from_secs(900), |o| o.client_timeout);
        timeout + ENDED_RETENTION
    }

    /// Sets when the chat's idle check is due, for the index that finds it:
    /// rounded up to a sixteenth of the timeout (at most 10 s), so that a
    /// customer's messages move the index entry once per grain, not each
    /// time (an index row rewritten is most of a small write's pages). A
    /// chat is ended at most a grain after its timeout.
    pub(super) fn stamp(&self, chat: &mut ChatSession) {
        let timeout = self.options_of(chat).client_timeout.as_millis() as u64;
        let grain = (timeout / 16).clamp(1, 10_000);
        let due = chat.client_active_at + timeout;
        chat.idle_due = Some(due.div_ceil(grain) * grain);
    }

    /// The options of a chat's service (in memory: no store read).
    pub(super) fn options_of(&self, chat: &ChatSession) -> ChatServiceOptions {
        self.services
            .get(&chat.service)
            .cloned()
            .unwrap_or_default()
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

    /// Reads a chat without credentials (for the agent side, which checks
    /// its own rights).
    pub async fn read_unchecked(&self, chat_id: &str) -> Result<ChatSession, ChatError> {
        Ok(self.load(chat_id).await?.value)
    }

    pub(super) async fn load(
        &self,
        chat_id: &str,
    ) -> Result<crate::store::collection::Versioned<ChatSession>, ChatError> {
        if check_key("a chat id", chat_id).is_err() {
            return Err(ChatError::NotFound(chat_id.to_owned()));
        }
        self.sessions
            .get(chat_id)
            .await?
            .ok_or_else(|| ChatError::NotFound(chat_id.to_owned()))
    }

    /// Applies `f` to the chat with compare-and-set, retrying on races, and
    /// tells of the change. The record's recent events go to the log first
    /// when they are enough ([`FLUSH_EVENTS`], [`FLUSH_BYTES`]), so the
    /// record stays small: writers racing to do so write the same entries,
    /// and each removes from the record only what it wrote.
    pub(super) async fn modify<T>(
        &self,
        chat_id: &str,
        mut f: impl FnMut(&mut ChatSession, u64) -> Result<T, ChatError>,
    ) -> Result<(T, ChatSession), ChatError> {
        let read = self.load(chat_id).await?;
        let logged = self.flush(chat_id, &read.value).await?;
        let (chat, (out, before, renew)) = self
            .sessions
            .modify_from(
                chat_id,
                Some(read),
                |chat| Some(self.ttl(chat)),
                |chat| {
                    chat.logged_up_to(logged);
                    let before = (chat.next_position(), waiting_in(chat).map(str::to_owned));
                    let now = now_ms();
                    let out = f(chat, now)?;
                    self.stamp(chat);
                    Ok::<_, ChatError>((out, before, self.kept_outlived(chat, now)))
                },
            )
            .await?
            .ok_or_else(|| ChatError::NotFound(chat_id.to_owned()))?;
        if renew {
            self.renew_kept(chat_id, &chat).await;
        }
        let (from, queue) = before;
        let queue_moved = queue.as_deref() != waiting_in(&chat);
        self.changed(chat_id, &chat, from, queue_moved).await;
        Ok((out, chat))
    }

    /// Writes the record's recent events to the log if they are enough;
    /// returns the index the log then holds up to (0: nothing written).
    async fn flush(&self, chat_id: &str, chat: &ChatSession) -> Result<u32, ChatError> {
        let recent = &chat.recent;
        if recent.len() < FLUSH_EVENTS && chat.recent_text() < FLUSH_BYTES {
            return Ok(0);
        }
        // As long as the record's log is kept, and at least as long as the
        // record's next lifetime after its next renewal.
        let ttl = self.ttl(chat) * 2;
        let kept = Duration::from_millis(chat.kept_until.unwrap_or(0).saturating_sub(now_ms()));
        let values = recent.iter().map(|e| (e.index.into(), e));
        self.events
            .write(chat_id, values, Some(ttl.max(kept)))
            .await?;
        Ok(recent.last().map_or(0, |e| e.index))
    }

    /// The chat's events from `position` on (positions start at 1; 0 means
    /// all): from its log, then its record. A reader that got the record
    /// first finds every event it counts in the log, since events leave
    /// the record only once they are there.
    pub async fn transcript(
        &self,
        chat_id: &str,
        chat: &ChatSession,
        position: u32,
    ) -> Result<Vec<Event>, ChatError> {
        if let Some(recent) = chat.recent_since(position) {
            return Ok(recent.to_vec());
        }
        let position = position.max(1);
        let wanted = (chat.logged + 1 - position) as usize;
        let mut events = self.events.read(chat_id, position.into(), wanted).await?;
        if events.len() < wanted {
            tracing::warn!(
                chat = chat_id,
                "{} of the chat's logged events are gone",
                wanted - events.len()
            );
        }
        events.extend_from_slice(&chat.recent);
        Ok(events)
    }

    /// The chat's files, kept for as long as the chat.
    pub(super) fn files(&self) -> Collection<ChatFile> {
        Collection::by_id(self.sessions.store().clone(), "chat-file")
    }

    /// Whether this write makes the chat outlive its log or files; if so,
    /// their new expiry goes into the record (twice the chat's lifetime
    /// from now).
    fn kept_outlived(&self, chat: &mut ChatSession, now: u64) -> bool {
        let ttl = self.ttl(chat).as_millis() as u64;
        let keeps = chat.logged > 0 || !chat.live_files().is_empty();
        let outlived = chat.kept_until.is_none_or(|until| until < now + ttl);
        if keeps && outlived {
            chat.kept_until = Some(now + 2 * ttl);
        }
        keeps && outlived
    }

    /// Keeps the chat's log and files until the expiry the record now
    /// gives them. A failure is logged: those expire at their old time.
    async fn renew_kept(&self, chat_id: &str, chat: &ChatSession) {
        let until = chat.kept_until.unwrap_or_default();
        let ttl = Duration::from_millis(until.saturating_sub(now_ms()).max(1));
        if chat.logged > 0 {
            if let Err(e) = self.events.keep(chat_id, ttl).await {
                tracing::warn!(chat = chat_id, "keeping a chat's log: {e}");
            }
        }
        let files = self.files();
        for (file_id, _) in chat.live_files() {
            let renewed = match files.get(&file_id).await {
                Ok(Some(file)) => files.put(&file_id, &file.value, Some(ttl)).await.map(drop),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = renewed {
                tracing::warn!(chat = chat_id, "keeping a chat's file: {e}");
            }
        }
    }

    /// The live chats whose entry `name = value` has an order of at most
    /// `until`, lowest first, at most `limit`.
    pub(super) async fn find_ordered(
        &self,
        name: &str,
        value: &str,
        until: u64,
        limit: usize,
    ) -> Result<Vec<(String, ChatSession)>, ChatError> {
        let found = self
            .sessions
            .find_ordered(name, value, until, limit)
            .await?;
        Ok(found.into_iter().map(|(id, c)| (id, c.value)).collect())
    }

    /// The live chats with the index entry `name = value`, at most `limit`.
    pub(super) async fn find(
        &self,
        name: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<(String, ChatSession)>, ChatError> {
        let found = self.sessions.find(name, value, limit).await?;
        Ok(found.into_iter().map(|(id, c)| (id, c.value)).collect())
    }

    /// Sends the change a write made, if anyone may have to hear of it.
    pub(super) async fn changed(
        &self,
        chat_id: &str,
        chat: &ChatSession,
        from: u32,
        queue_moved: bool,
    ) {
        count_events(chat.recent_since(from).unwrap_or_default());
        // Nobody reads changes (a test, a tool): nothing to copy or tell.
        let heard = !self.changes.is_closed();
        if heard && (chat.next_position() > from || queue_moved) {
            let change = ChatChange {
                chat_id: chat_id.to_owned(),
                chat: Arc::new(chat.clone()),
                from,
                queue_moved,
            };
            let _ = self.changes.send(change).await;
        }
    }
}

/// Counts events written, by type, in the process's metrics.
pub(super) fn count_events(events: &[Event]) {
    for event in events {
        metrics::counter!("gmshub_chat_events_total", "type" => event.kind.name()).increment(1);
    }
}
