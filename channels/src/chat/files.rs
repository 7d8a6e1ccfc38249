//! File transfer in a chat: the service's limits (Chat Server's
//! `client-file-transfer` names and defaults), uploads kept in the store for
//! as long as their chat (renewed with it, see `Chats::modify`), `FileUploaded` / `FileDeleted` events in the
//! transcript. May use: the chats, the model, options, requests, errors.

use std::collections::BTreeMap;

use super::chats::Chats;
use super::error::ChatError;
use super::model::{ChatFile, ChatSession, Event, EventType, From, PartyType, CLIENT_ID};
use super::options::FileLimits;
use super::request::Credentials;
use crate::id::token;
use crate::store::now_ms;

impl Chats {
    fn file_options(&self, service: &str) -> FileLimits {
        self.services()
            .get(service)
            .map(|o| o.files.clone())
            .unwrap_or_default()
    }

    /// The limits, as the `Notice` event (`text` "file-client-cfg-get") Chat
    /// Server answers with; not added to the transcript.
    pub async fn file_limits(
        &self,
        service: &str,
        chat_id: &str,
        creds: &Credentials,
    ) -> Result<(ChatSession, Event), ChatError> {
        let chat = self.read(service, chat_id, creds).await?;
        let limits = self.file_options(&chat.service);
        let used = chat.live_files();
        let data = BTreeMap::from([
            (
                "upload-max-file-size".to_owned(),
                limits.max_file_size.to_string(),
            ),
            (
                "upload-max-total-size".to_owned(),
                limits.max_total_size.to_string(),
            ),
            (
                "used-upload-max-total-size".to_owned(),
                used.iter().map(|(_, s)| s).sum::<usize>().to_string(),
            ),
            ("upload-max-files".to_owned(), limits.max_files.to_string()),
            ("used-upload-max-files".to_owned(), used.len().to_string()),
            ("upload-file-types".to_owned(), limits.file_types.join(":")),
            ("upload-need-agent".to_owned(), "false".to_owned()),
            ("delete-file".to_owned(), "enabled".to_owned()),
        ]);
        let event = Event {
            from: From {
                nickname: "system".into(),
                participant_id: 0,
                kind: PartyType::System,
            },
            index: chat.next_position(),
            kind: EventType::Notice,
            utc_time: now_ms(),
            text: Some("file-client-cfg-get".into()),
            message_type: None,
            user_data: Some(data),
        };
        Ok((chat, event))
    }

    /// The customer uploads a file; returns its file-id.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload(
        &self,
        service: &str,
        chat_id: &str,
        creds: &Credentials,
        name: &str,
        content_type: &str,
        data: Vec<u8>,
        user_data: BTreeMap<String, String>,
    ) -> Result<(String, ChatSession), ChatError> {
        let chat = self.read(service, chat_id, creds).await?;
        if chat.ended() {
            return Err(ChatError::Ended(chat_id.to_owned()));
        }
        let limits = self.file_options(&chat.service);
        let name = name
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let extension = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        if name.is_empty()
            || !limits
                .file_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&extension))
        {
            return Err(ChatError::BadRequest(format!(
                "file type {extension:?} is not allowed (upload-file-types: {})",
                limits.file_types.join(":")
            )));
        }
        if data.len() > limits.max_file_size {
            return Err(ChatError::TooLarge(format!(
                "the file is larger than {} bytes",
                limits.max_file_size
            )));
        }
        let size = data.len();
        let file = ChatFile {
            chat_id: chat_id.to_owned(),
            name: name.clone(),
            content_type: content_type.to_owned(),
            uploader: CLIENT_ID,
            data,
        };
        let file_id = token();
        // Twice the chat's lifetime; each write of the chat that outlives
        // it renews every file (`Chats::modify`).
        let file_until = now_ms() + 2 * self.ttl(&chat).as_millis() as u64;
        self.files()
            .put(&file_id, &file, Some(self.ttl(&chat) * 2))
            .await?;
        let description = user_data.get("file-description").cloned();
        let result = self
            .modify(chat_id, |chat, now| {
                if chat.ended() {
                    return Err(ChatError::Ended(chat_id.to_owned()));
                }
                let used = chat.live_files();
                if used.len() >= limits.max_files {
                    return Err(ChatError::TooLarge(format!(
                        "a chat holds at most {} files",
                        limits.max_files
                    )));
                }
                if used.iter().map(|(_, s)| s).sum::<usize>() + size > limits.max_total_size {
                    return Err(ChatError::TooLarge(format!(
                        "a chat holds at most {} bytes of files",
                        limits.max_total_size
                    )));
                }
                chat.client_active_at = now;
                chat.kept_until = Some(chat.kept_until.map_or(file_until, |t| t.min(file_until)));
                chat.push(CLIENT_ID, EventType::FileUploaded, None, now);
                let mut data = user_data.clone();
                data.insert("file-id".into(), file_id.clone());
                data.insert("file-name".into(), name.clone());
                data.insert("file-size".into(), size.to_string());
                data.insert("file-type".into(), content_type.to_owned());
                if let Some(d) = &description {
                    data.insert("file-description".into(), d.clone());
                }
                if let Some(e) = chat.last_event_mut() {
                    e.user_data = Some(data);
                }
                Ok(())
            })
            .await;
        match result {
            Ok((_, chat)) => Ok((file_id, chat)),
            Err(e) => {
                let _ = self.files().delete(&file_id).await;
                Err(e)
            }
        }
    }

    /// A file of the chat, for its customer.
    pub async fn download(
        &self,
        service: &str,
        chat_id: &str,
        creds: &Credentials,
        file_id: &str,
    ) -> Result<ChatFile, ChatError> {
        let chat = self.read(service, chat_id, creds).await?;
        self.file_of(&chat, chat_id, file_id).await
    }

    /// A file of the chat, for one of its agents.
    pub async fn download_as_agent(
        &self,
        agent: &str,
        chat_id: &str,
        file_id: &str,
    ) -> Result<ChatFile, ChatError> {
        let chat = self.read_as_agent(chat_id, agent).await?;
        self.file_of(&chat, chat_id, file_id).await
    }

    async fn file_of(
        &self,
        chat: &ChatSession,
        chat_id: &str,
        file_id: &str,
    ) -> Result<ChatFile, ChatError> {
        let missing = || ChatError::BadRequest(format!("no file {file_id} in chat {chat_id}"));
        if !chat.live_files().iter().any(|(f, _)| f == file_id) {
            return Err(missing());
        }
        let file = self.files().get(file_id).await?.ok_or_else(missing)?.value;
        if file.chat_id != chat_id {
            return Err(missing());
        }
        Ok(file)
    }

    /// The customer deletes a file it uploaded.
    pub async fn delete_file(
        &self,
        service: &str,
        chat_id: &str,
        creds: &Credentials,
        file_id: &str,
    ) -> Result<ChatSession, ChatError> {
        let chat = self.read(service, chat_id, creds).await?;
        self.file_of(&chat, chat_id, file_id).await?;
        let (_, chat) = self
            .modify(chat_id, |chat, now| {
                if chat.ended() {
                    return Err(ChatError::Ended(chat_id.to_owned()));
                }
                if !chat.live_files().iter().any(|(f, _)| f == file_id) {
                    return Err(ChatError::BadRequest(format!(
                        "no file {file_id} in chat {chat_id}"
                    )));
                }
                chat.client_active_at = now;
                chat.push(CLIENT_ID, EventType::FileDeleted, None, now);
                if let Some(e) = chat.last_event_mut() {
                    e.user_data =
                        Some(BTreeMap::from([("file-id".to_owned(), file_id.to_owned())]));
                }
                Ok(())
            })
            .await?;
        self.files().delete(file_id).await?;
        Ok(chat)
    }
}
