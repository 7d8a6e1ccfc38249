//! How chats reach agents and bots: the oldest waiting chat of a queue
//! taken (one winner however many race for it), joins and invitations,
//! declines, the chats of an agent, and what an agent does in a chat. May
//! use: the chats, the model, requests, errors and transitions.

use super::chats::Chats;
use super::error::ChatError;
use super::model::{ChatSession, ChatState, EventType, Participant, PartyType};
use super::request::Action;
use super::transitions::apply;
use crate::store::collection::WRITE_ATTEMPTS;

/// How many of a queue's oldest chats an agent is offered, and looks at to
/// take the next one (past them, chats it declined could hide others).
pub const QUEUE_PAGE: usize = 100;

impl Chats {
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
        for _ in 0..WRITE_ATTEMPTS {
            let mut waiting = Vec::new();
            for queue in queues {
                for (id, chat) in self.queued(queue).await? {
                    if chat.waits_for(agent) {
                        waiting.push((chat.created_at, id));
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

    /// The oldest chats waiting in a queue, at most [`QUEUE_PAGE`]: what an
    /// agent is offered and takes from, read through the queue's ordered
    /// index at the cost of the page, however long the queue.
    pub async fn queued(&self, queue: &str) -> Result<Vec<(String, ChatSession)>, ChatError> {
        self.find_ordered("queued", queue, u64::MAX, QUEUE_PAGE)
            .await
    }

    /// The chats an agent is in.
    pub async fn of_agent(&self, agent: &str) -> Result<Vec<(String, ChatSession)>, ChatError> {
        self.find("agent", agent, 1000).await
    }

    /// How many chats an agent is in, without reading them.
    pub async fn count_of_agent(&self, agent: &str) -> Result<u64, ChatError> {
        Ok(self.sessions.count("agent", agent).await?)
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
