//! The agent side: who may log in (the `[agent.<login>]` sections), their
//! sessions (bearer tokens in the store, so any node accepts them), whether
//! they are ready and for how many chats, and the chats offered to them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::chats::Chats;
use super::error::ChatError;
use super::model::{ChatSession, PartyType};
use crate::password::Password;
use crate::store::{Collection, Store, StoreError};

/// One configured agent or bot.
#[derive(Clone)]
pub struct AgentAccount {
    pub login: String,
    pub password: Arc<Password>,
    pub nickname: String,
    /// The queues (chat endpoints) it serves.
    pub queues: Vec<String>,
    /// `Agent`, or `External` for a bot.
    pub kind: PartyType,
}

impl std::fmt::Debug for AgentAccount {
    /// Without the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentAccount")
            .field("login", &self.login)
            .field("nickname", &self.nickname)
            .field("queues", &self.queues)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A logged-in agent's state, shared by every node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub ready: bool,
    /// How many chats at once, when ready.
    pub capacity: u32,
}

/// A waiting chat as an agent is offered it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    pub chat_id: String,
    pub queue: String,
    pub service: String,
    pub waiting_since: u64,
    pub nickname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("unknown login or wrong password")]
    BadLogin,
    #[error("not logged in, or the session expired")]
    NotLoggedIn,
    #[error("not ready, or already at capacity")]
    NotReady,
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long an agent's token lives unused, by default (`[agent]
/// session-idle-timeout`); each use renews it.
pub const SESSION_IDLE: Duration = Duration::from_secs(3600);
/// How long a token lives at most, however much it is used, by default
/// (`[agent] session-max-lifetime`): a work shift, after which the desk
/// logs in again (a stolen token does not live for ever).
pub const SESSION_MAX: Duration = Duration::from_secs(12 * 3600);
/// How long an agent's presence and desk session are remembered.
const STATE_TTL: Duration = Duration::from_secs(12 * 3600);
/// The most chats an agent may take at once.
pub const MAX_CAPACITY: u32 = 100;

#[derive(Clone)]
pub struct Agents {
    accounts: Arc<HashMap<String, AgentAccount>>,
    tokens: Collection<Token>,
    presence: Collection<Presence>,
    comet: Collection<String>,
    chats: Chats,
    lifetime: TokenLifetime,
}

/// How long an agent's bearer token lives.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetime {
    /// Unused (each use renews it).
    pub idle: Duration,
    /// At most, from the login.
    pub most: Duration,
}

/// A bearer token's record: whose it is and when it was issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Token {
    login: String,
    /// Milliseconds since the epoch.
    issued: u64,
}

impl Token {
    /// How long it may live from `now`: its idle time, within its lifetime.
    fn ttl(&self, lifetime: TokenLifetime, now: u64) -> Duration {
        let end = self.issued + lifetime.most.as_millis() as u64;
        lifetime
            .idle
            .min(Duration::from_millis(end.saturating_sub(now)))
    }
}

impl Agents {
    pub fn new(
        store: Arc<dyn Store>,
        accounts: Vec<AgentAccount>,
        chats: Chats,
        lifetime: TokenLifetime,
    ) -> Self {
        Self {
            lifetime,
            accounts: Arc::new(accounts.into_iter().map(|a| (a.login.clone(), a)).collect()),
            tokens: Collection::by_id(store.clone(), "agent-token"),
            presence: Collection::by_id(store.clone(), "agent-presence"),
            comet: Collection::by_id(store, "agent-comet"),
            chats,
        }
    }

    /// The agent's CometD session, where its event pings go.
    pub async fn set_comet(&self, login: &str, client_id: &str) -> Result<(), AgentError> {
        self.comet
            .put(login, &client_id.to_owned(), Some(STATE_TTL))
            .await?;
        Ok(())
    }

    pub async fn comet(&self, login: &str) -> Result<Option<String>, AgentError> {
        Ok(self.comet.get(login).await?.map(|v| v.value))
    }

    /// The accounts that serve `queue`.
    pub fn serving(&self, queue: &str) -> impl Iterator<Item = &AgentAccount> {
        let queue = queue.to_owned();
        self.accounts
            .values()
            .filter(move |a| a.queues.contains(&queue))
    }

    pub fn chats(&self) -> &Chats {
        &self.chats
    }

    pub fn account(&self, login: &str) -> Option<&AgentAccount> {
        self.accounts.get(login)
    }

    /// Every configured account, by login.
    pub fn accounts(&self) -> impl Iterator<Item = &AgentAccount> {
        let mut all: Vec<_> = self.accounts.values().collect();
        all.sort_by(|a, b| a.login.cmp(&b.login));
        all.into_iter()
    }

    /// Checks the password; returns a new bearer token.
    pub async fn login(
        &self,
        login: &str,
        password: &str,
    ) -> Result<(String, &AgentAccount), AgentError> {
        let account = self.accounts.get(login).ok_or(AgentError::BadLogin)?;
        if !account.password.verify(password).await {
            return Err(AgentError::BadLogin);
        }
        let token = crate::id::secret();
        let now = crate::store::now_ms();
        let record = Token {
            login: account.login.clone(),
            issued: now,
        };
        let ttl = record.ttl(self.lifetime, now);
        self.tokens.put(&token, &record, Some(ttl)).await?;
        Ok((token, account))
    }

    /// The account a token belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<&AgentAccount, AgentError> {
        if crate::store::check_key("a token", token).is_err() {
            return Err(AgentError::NotLoggedIn);
        }
        let session = self
            .tokens
            .get(token)
            .await?
            .ok_or(AgentError::NotLoggedIn)?;
        // Renewed once half its idle time is gone, not on every call, and
        // never past its lifetime (the store's TTL ends it there).
        let now = crate::store::now_ms();
        let left = session.expires_at.map_or(0, |at| at.saturating_sub(now));
        let ttl = session.value.ttl(self.lifetime, now);
        if left < self.lifetime.idle.as_millis() as u64 / 2 && ttl.as_millis() as u64 > left {
            self.tokens.put(token, &session.value, Some(ttl)).await?;
        }
        self.accounts
            .get(&session.value.login)
            .ok_or(AgentError::NotLoggedIn)
    }

    pub async fn logout(&self, token: &str, login: &str) -> Result<(), AgentError> {
        self.tokens.delete(token).await?;
        self.set_presence(login, false, 0).await
    }

    pub async fn set_presence(
        &self,
        login: &str,
        ready: bool,
        capacity: u32,
    ) -> Result<(), AgentError> {
        let presence = Presence {
            ready,
            capacity: capacity.min(MAX_CAPACITY),
        };
        self.presence.put(login, &presence, Some(STATE_TTL)).await?;
        Ok(())
    }

    pub async fn presence(&self, login: &str) -> Result<Presence, AgentError> {
        Ok(self
            .presence
            .get(login)
            .await?
            .map(|p| p.value)
            .unwrap_or_default())
    }

    /// How many agents are ready now: a read per configured account, for
    /// a scrape, not a hot path.
    pub async fn ready_count(&self) -> Result<usize, AgentError> {
        let reads = self.accounts.keys().map(|login| self.presence(login));
        let presences = futures_util::future::try_join_all(reads).await?;
        Ok(presences.iter().filter(|p| p.ready).count())
    }

    /// The chats the agent is in and has not left.
    pub async fn active_chats(
        &self,
        login: &str,
    ) -> Result<Vec<(String, ChatSession)>, AgentError> {
        Ok(self.chats.of_agent(login).await?)
    }

    async fn has_room(&self, account: &AgentAccount) -> Result<bool, AgentError> {
        let presence = self.presence(&account.login).await?;
        if !presence.ready {
            return Ok(false);
        }
        let busy = self.chats.count_of_agent(&account.login).await?;
        Ok(busy < u64::from(presence.capacity))
    }

    /// Waiting chats of the agent's queues, oldest first; none unless the
    /// agent is ready and below capacity.
    pub async fn offers(&self, account: &AgentAccount) -> Result<Vec<Offer>, AgentError> {
        if !self.has_room(account).await? {
            return Ok(Vec::new());
        }
        let mut offers = Vec::new();
        for queue in &account.queues {
            for (id, chat) in self.chats.queued(queue).await? {
                if chat.waits_for(&account.login) {
                    offers.push(Offer {
                        chat_id: id,
                        queue: chat.queue.clone(),
                        service: chat.service.clone(),
                        waiting_since: chat.created_at,
                        nickname: chat
                            .participants
                            .first()
                            .map(|p| p.nickname.clone())
                            .unwrap_or_default(),
                        subject: chat.subject.clone(),
                    });
                }
            }
        }
        offers.sort_by_key(|o| o.waiting_since);
        Ok(offers)
    }

    /// Accepts one offered chat.
    pub async fn accept(
        &self,
        account: &AgentAccount,
        chat_id: &str,
    ) -> Result<ChatSession, AgentError> {
        if !self.has_room(account).await? {
            return Err(AgentError::NotReady);
        }
        let chat = self.chats.read_unchecked(chat_id).await?;
        if !account.queues.contains(&chat.queue) {
            return Err(AgentError::Chat(ChatError::Forbidden(chat_id.to_owned())));
        }
        Ok(self
            .chats
            .join(
                chat_id,
                &account.login,
                &account.nickname,
                account.kind,
                true,
            )
            .await?)
    }

    /// Accepts the oldest offered chat, if any.
    pub async fn accept_next(
        &self,
        account: &AgentAccount,
    ) -> Result<Option<(String, ChatSession)>, AgentError> {
        if !self.has_room(account).await? {
            return Err(AgentError::NotReady);
        }
        Ok(self
            .chats
            .take_next(
                &account.login,
                &account.nickname,
                account.kind,
                &account.queues,
            )
            .await?)
    }

    /// Invites another agent into a chat this agent is in.
    pub async fn invite(
        &self,
        account: &AgentAccount,
        chat_id: &str,
        other: &str,
    ) -> Result<ChatSession, AgentError> {
        let chat = self.chats.read_as_agent(chat_id, &account.login).await?;
        if chat.agent_participant(&account.login).is_none() {
            return Err(AgentError::Chat(ChatError::Forbidden(chat_id.to_owned())));
        }
        let invited = self.accounts.get(other).ok_or_else(|| {
            AgentError::Chat(ChatError::BadRequest(format!("no agent {other:?}")))
        })?;
        Ok(self
            .chats
            .join(
                chat_id,
                &invited.login,
                &invited.nickname,
                invited.kind,
                false,
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::password::Password;

    #[test]
    fn an_account_debugs_without_its_password() {
        let account = super::AgentAccount {
            login: "ada".into(),
            password: Arc::new(Password::from_config("s3cret-pass").unwrap()),
            nickname: "Ada".into(),
            queues: vec!["q".into()],
            kind: super::PartyType::Agent,
        };
        let shown = format!("{account:?}");
        assert!(
            shown.contains("ada") && !shown.contains("s3cret-pass"),
            "{shown}"
        );
    }
}
