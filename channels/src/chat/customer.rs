//! What a chat's customer does, through Chat API v1 or v2 (REST or
//! CometD): start a chat, act in it, resume it on another connection, find
//! it by its key, and send it to the background. May use: the chats, the
//! model, requests, errors, transitions and options.

use super::chats::{count_events, Chats};
use super::error::ChatError;
use super::model::{
    ChatSession, ChatState, CometLink, EventType, Participant, PartyType, CLIENT_ID,
};
use super::request::{Action, ChatRequest, Credentials, MAX_FIELD};
use super::transitions::{apply, check, user_data_within};
use crate::id::token;
use crate::store::{check_key, now_ms, StoreError};

impl Chats {
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
        for (field, value) in [
            ("nickname", Some(&nickname)),
            ("subject", req.subject.as_ref()),
            ("emailAddress", req.email.as_ref()),
        ] {
            if value.is_some_and(|v| v.len() > MAX_FIELD) {
                return Err(ChatError::TooLarge(format!(
                    "{field} is longer than {MAX_FIELD} bytes"
                )));
            }
        }
        user_data_within(&req.user_data, &options)?;
        if let Some(from) = req.from {
            self.started.check(&from).map_err(ChatError::TooMany)?;
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
            recent: Vec::new(),
            logged: 0,
            logged_text: 0,
            logged_files: Vec::new(),
            declined: Vec::new(),
            comet: req.comet,
            v1: req.v1,
            background: false,
            resume_from: None,
            kept_until: None,
            idle_due: None,
        };
        chat.push(CLIENT_ID, EventType::ParticipantJoined, None, now);
        self.stamp(&mut chat);
        let ttl = self.ttl(&chat);
        let create = self.sessions.create_fresh(&chat, Some(ttl), token);
        let id = tokio::time::timeout(self.services().request_timeout, create)
            .await
            .map_err(|_| {
                ChatError::Store(StoreError::Unavailable {
                    backend: "chat",
                    message: "the chat request took longer than chat_session_request_timeout"
                        .into(),
                })
            })??;
        // It waits in its queue; its first event goes back in the answer.
        // Its first events are counted here: the change tells of none.
        count_events(&chat.recent);
        self.changed(&id, &chat, chat.next_position(), true).await;
        Ok((id, chat))
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

    /// The chat whose customer holds `secure_key` (CometD requests
    /// carry only that).
    pub async fn by_key(
        &self,
        secure_key: &str,
    ) -> Result<Option<(String, ChatSession)>, ChatError> {
        if check_key("a secureKey", secure_key).is_err() {
            return Ok(None);
        }
        let found = self.find("key", secure_key, 2).await?;
        Ok(found.into_iter().find(|(_, c)| c.secure_key == secure_key))
    }

    /// The Chat API v1 chat requested through service instance `service_id`
    /// (ended ones included, while they can be read).
    pub async fn by_v1_service(
        &self,
        service_id: &str,
    ) -> Result<Option<(String, ChatSession)>, ChatError> {
        if check_key("a service id", service_id).is_err() {
            return Ok(None);
        }
        let found = self.find("v1", service_id, 2).await?;
        Ok(found
            .into_iter()
            .find(|(_, c)| c.v1.as_ref().is_some_and(|v| v.service_id == service_id)))
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
        if check_key("a clientId", client_id).is_ok() {
            found.extend(self.find("comet", client_id, 100).await?);
        }
        if let Some(user) = gms_user.filter(|u| check_key("a gms_user", u).is_ok()) {
            found.extend(self.find("v1user", user, 100).await?);
        }
        let mut count = 0;
        for (id, _) in found {
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
}
