//! The rules of a chat as pure functions of its record: whether a
//! customer's credentials open it, what each action does to participants,
//! transcript and state, and the size bounds. No store and no clock here
//! (the time is an argument), so unit tests drive a chat through every
//! transition directly. May use: the chat model, options, requests, errors.

use super::error::ChatError;
use super::model::{user_data_size, ChatSession, ChatState, EventType, ALIAS, CLIENT_ID};
use super::options::ChatServiceOptions;
use super::request::{Action, Credentials, MAX_FIELD};

/// The chat must be of the service asked for (else it is not found there),
/// and the customer's credentials must match: `secureKey` always, `userId`
/// and `alias` when given (Chat API v2 over REST always gives `userId`).
pub(super) fn check(
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

/// One request's user data is at most `max-message-size` bytes.
pub(super) fn user_data_within(
    data: &std::collections::BTreeMap<String, String>,
    options: &ChatServiceOptions,
) -> Result<(), ChatError> {
    if user_data_size(data) > options.max_message_size {
        return Err(ChatError::TooLarge(format!(
            "userData is larger than {} bytes (max-message-size)",
            options.max_message_size
        )));
    }
    Ok(())
}

pub(super) fn bounded(
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
    if chat.size() + text.len() > options.max_transcript_size {
        return Err(ChatError::TooLarge(format!(
            "the transcript has reached {} bytes (max-transcript-size)",
            options.max_transcript_size
        )));
    }
    Ok(())
}

/// One participant's action on the chat.
pub(super) fn apply(
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
            if let Some(event) = chat.last_event_mut() {
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
            if nickname.len() > MAX_FIELD {
                return Err(ChatError::TooLarge(format!(
                    "nickname is longer than {MAX_FIELD} bytes"
                )));
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
            user_data_within(data, options)?;
            // What the chat holds once merged counts against its limit.
            let replaced: usize = data
                .keys()
                .filter_map(|k| chat.user_data.get_key_value(k))
                .map(|(k, v)| k.len() + v.len())
                .sum();
            if chat.size() - replaced + user_data_size(data) > options.max_transcript_size {
                return Err(ChatError::TooLarge(format!(
                    "the chat has reached {} bytes (max-transcript-size)",
                    options.max_transcript_size
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

pub(super) fn leave(chat: &mut ChatSession, who: u32, now: u64) {
    if let Some(p) = chat.participant_mut(who) {
        if p.present {
            p.present = false;
            chat.push(who, EventType::ParticipantLeft, None, now);
        }
    }
}

/// Ends the chat: `who` leaves first, then everyone else.
pub(super) fn end(chat: &mut ChatSession, who: u32, now: u64) {
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
    use crate::chat::model::{Participant, PartyType};

    /// A chat of service `s` with its customer and one agent `a` in it.
    fn connected() -> ChatSession {
        let party = |id, nickname: &str, kind, agent: Option<&str>| Participant {
            id,
            nickname: nickname.into(),
            kind,
            agent: agent.map(Into::into),
            present: true,
        };
        let mut chat = ChatSession {
            service: "s".into(),
            queue: "q".into(),
            state: ChatState::Connected,
            created_at: 0,
            client_active_at: 0,
            user_id: "u".into(),
            secure_key: "k".into(),
            participants: vec![
                party(CLIENT_ID, "Customer", PartyType::Client, None),
                party(2, "Agent", PartyType::Agent, Some("a")),
            ],
            user_data: Default::default(),
            subject: None,
            email: None,
            recent: Vec::new(),
            logged: 0,
            logged_text: 0,
            logged_files: Vec::new(),
            declined: vec!["b".into()],
            comet: None,
            v1: None,
            background: false,
            resume_from: None,
            kept_until: None,
            idle_due: None,
        };
        chat.push(CLIENT_ID, EventType::ParticipantJoined, None, 0);
        chat.push(2, EventType::ParticipantJoined, None, 0);
        chat
    }

    fn send(text: &str) -> Action {
        Action::Send {
            text: text.into(),
            message_type: None,
        }
    }

    fn kinds(chat: &ChatSession) -> Vec<EventType> {
        chat.recent.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn credentials_open_only_their_chat() {
        let chat = connected();
        let creds = |key: &str, user: Option<&str>, alias: Option<&str>| Credentials {
            user_id: user.map(Into::into),
            secure_key: Some(key.into()),
            alias: alias.map(Into::into),
        };
        assert!(check("s", "c", &chat, &creds("k", None, None)).is_ok());
        assert!(check("s", "c", &chat, &creds("k", Some("u"), Some(ALIAS))).is_ok());
        assert!(matches!(
            check("other", "c", &chat, &creds("k", None, None)),
            Err(ChatError::NotFound(_))
        ));
        for wrong in [
            creds("x", None, None),
            creds("k", Some("v"), None),
            creds("k", None, Some("2")),
        ] {
            assert!(matches!(
                check("s", "c", &chat, &wrong),
                Err(ChatError::Forbidden(_))
            ));
        }
    }

    #[test]
    fn a_customer_leaving_ends_the_chat_for_everyone() {
        let mut chat = connected();
        let options = ChatServiceOptions::default();
        apply(&mut chat, CLIENT_ID, &Action::Leave, &options, 5).unwrap();
        assert!(chat.ended());
        assert!(chat.participants.iter().all(|p| !p.present));
        assert_eq!(
            kinds(&chat)[2..],
            [EventType::ParticipantLeft, EventType::ParticipantLeft]
        );
        assert_eq!(chat.recent[2].from.participant_id, CLIENT_ID);
    }

    #[test]
    fn the_last_agent_leaving_ends_it_and_one_of_two_does_not() {
        let options = ChatServiceOptions::default();
        let mut chat = connected();
        chat.participants.push(Participant {
            id: 3,
            nickname: "Other".into(),
            kind: PartyType::Agent,
            agent: Some("o".into()),
            present: true,
        });
        apply(&mut chat, 2, &Action::Leave, &options, 1).unwrap();
        assert_eq!(chat.state, ChatState::Connected);
        apply(&mut chat, 3, &Action::Leave, &options, 2).unwrap();
        assert!(chat.ended());
        assert!(!chat.participants[0].present, "the customer is let go too");
    }

    #[test]
    fn a_transfer_puts_the_chat_back_in_a_queue() {
        let options = ChatServiceOptions::default();
        let mut chat = connected();
        let blank = apply(&mut chat, 2, &Action::Transfer(" ".into()), &options, 1);
        assert!(matches!(blank, Err(ChatError::BadRequest(_))));
        apply(&mut chat, 2, &Action::Transfer(" vip ".into()), &options, 1).unwrap();
        assert_eq!(chat.state, ChatState::Queued);
        assert_eq!(chat.queue, "vip");
        assert!(
            chat.declined.is_empty(),
            "every agent of the queue may take it"
        );
        assert_eq!(kinds(&chat).last(), Some(&EventType::ParticipantLeft));
    }

    #[test]
    fn messages_and_transcripts_are_bounded() {
        let mut chat = connected();
        // The participants' nicknames count too: 25 bytes more than them.
        let options = ChatServiceOptions {
            max_message_size: 10,
            max_transcript_size: chat.size() + 25,
            ..ChatServiceOptions::default()
        };
        assert!(matches!(
            apply(&mut chat, CLIENT_ID, &send(""), &options, 1),
            Err(ChatError::BadRequest(_))
        ));
        assert!(matches!(
            apply(&mut chat, CLIENT_ID, &send("eleven char"), &options, 1),
            Err(ChatError::TooLarge(_))
        ));
        for _ in 0..2 {
            apply(&mut chat, CLIENT_ID, &send("ten chars."), &options, 1).unwrap();
        }
        assert!(matches!(
            apply(&mut chat, 2, &send("ten chars."), &options, 1),
            Err(ChatError::TooLarge(_))
        ));
        assert_eq!(chat.text_bytes(), 20, "a refused message leaves no trace");
    }
}
