//! Chat API v2 over REST (`/genesys/2/chat/{serviceName}`): request a chat,
//! then send, refresh, typing, pushUrl, updateNickname, updateData,
//! customNotice and disconnect on `/{chatId}/{operation}`, every call with
//! the customer's `userId`, `secureKey` and `alias`. Every answer is the one
//! Digital Channels response model: HTTP 200 with `statusCode` 0 (done), 1
//! (retry) or 2 (will not work) and `errors` saying why.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use channels::chat::{
    Action, ChatError, ChatRequest, ChatSession, Chats, Credentials, Event, ALIAS,
};
use channels::storage::Item;
use serde::Serialize;

use super::form;

/// Error codes in `errors[].code` (gmshub's own: GMS's list is not public).
pub mod code {
    pub const UNKNOWN_SERVICE: u32 = 100;
    pub const BAD_REQUEST: u32 = 101;
    pub const CHAT_NOT_FOUND: u32 = 102;
    pub const FORBIDDEN: u32 = 103;
    pub const CHAT_ENDED: u32 = 104;
    pub const TOO_LARGE: u32 = 105;
    pub const UNAVAILABLE: u32 = 106;
    pub const UNKNOWN_OPERATION: u32 = 107;
}

#[derive(Debug, Serialize)]
pub struct ErrorItem {
    pub code: u32,
    pub advice: String,
}

/// The Digital Channels response (every chat v2 answer, REST or CometD).
#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChatV2Response {
    pub status_code: u8,
    pub chat_ended: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_key: Option<String>,
    pub alias: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_position: Option<u32>,
    pub messages: Vec<Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
}

impl ChatV2Response {
    /// Success: the chat's identity and its events from `position` on.
    pub fn ok(chat_id: &str, chat: &ChatSession, position: Option<u32>) -> Self {
        Self {
            status_code: 0,
            chat_ended: chat.ended(),
            chat_id: Some(chat_id.to_owned()),
            user_id: Some(chat.user_id.clone()),
            secure_key: Some(chat.secure_key.clone()),
            alias: ALIAS,
            next_position: Some(chat.next_position()),
            messages: position.map(|p| chat.since(p).to_vec()).unwrap_or_default(),
            ..Default::default()
        }
    }

    /// Failure, with the HTTP status to answer it with.
    pub fn error(chat_id: Option<&str>, e: &ChatError) -> (StatusCode, Self) {
        let (http, status_code, code, ended) = match e {
            ChatError::UnknownService(_) => (StatusCode::NOT_FOUND, 2, code::UNKNOWN_SERVICE, true),
            ChatError::BadRequest(_) => (StatusCode::OK, 2, code::BAD_REQUEST, false),
            ChatError::NotFound(_) => (StatusCode::OK, 2, code::CHAT_NOT_FOUND, true),
            ChatError::Forbidden(_) => (StatusCode::OK, 2, code::FORBIDDEN, false),
            ChatError::Ended(_) => (StatusCode::OK, 2, code::CHAT_ENDED, true),
            ChatError::TooLarge(_) => (StatusCode::OK, 2, code::TOO_LARGE, false),
            ChatError::Store(e) => {
                tracing::warn!("chat: store: {e}");
                (StatusCode::OK, 1, code::UNAVAILABLE, false)
            }
        };
        let advice = match e {
            ChatError::Store(_) => "the service is unavailable; try again".to_owned(),
            other => other.to_string(),
        };
        (
            http,
            Self {
                status_code,
                chat_ended: ended,
                chat_id: chat_id.map(str::to_owned),
                alias: ALIAS,
                errors: vec![ErrorItem { code, advice }],
                ..Default::default()
            },
        )
    }

    pub fn bad(chat_id: Option<&str>, code: u32, advice: String) -> Self {
        Self {
            status_code: 2,
            chat_id: chat_id.map(str::to_owned),
            alias: ALIAS,
            errors: vec![ErrorItem { code, advice }],
            ..Default::default()
        }
    }
}

impl IntoResponse for ChatV2Response {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

/// Parameters of a chat request, by name; `userData[k]` keys gathered.
#[derive(Debug, Default)]
pub struct Params {
    pub fields: BTreeMap<String, String>,
    pub user_data: BTreeMap<String, String>,
}

impl Params {
    pub fn from_items(items: BTreeMap<String, Item>) -> Self {
        let mut p = Params::default();
        for (key, item) in items {
            let Item::Text { value } = item else { continue };
            match key
                .strip_prefix("userData[")
                .and_then(|k| k.strip_suffix(']'))
            {
                Some(k) if !k.is_empty() => {
                    p.user_data.insert(k.to_owned(), value);
                }
                _ => {
                    p.fields.insert(key, value);
                }
            }
        }
        p
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.fields.get(name).cloned()
    }

    /// The customer's credentials. Over REST `userId` is required (an absent
    /// one matches nothing); over CometD only `secureKey` is (clients send
    /// the others or not).
    pub fn credentials(&self, user_id_required: bool) -> Credentials {
        let user_id = self.get("userId");
        Credentials {
            user_id: if user_id_required {
                Some(user_id.unwrap_or_default())
            } else {
                user_id
            },
            secure_key: self.get("secureKey"),
            alias: self.get("alias"),
        }
    }

    /// `transcriptPosition`, which clients send as a number or a string.
    pub fn position(&self) -> Result<Option<u32>, String> {
        match self.fields.get("transcriptPosition").map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<u32>()
                .map(Some)
                .map_err(|_| format!("transcriptPosition {v:?} is not a number")),
        }
    }
}

struct Api {
    chats: Chats,
    max_upload: usize,
}

pub fn router(chats: Chats, max_upload: usize) -> Router {
    Router::new()
        .route("/genesys/2/chat/{service}", post(request_chat))
        .route(
            "/genesys/2/chat/{service}/{chat_id}/{operation}",
            post(operation),
        )
        .route(
            "/genesys/2/chat/{service}/{chat_id}/file/{what}",
            post(file_limits),
        )
        .route(
            "/genesys/2/chat/{service}/{chat_id}/file/{file_id}/{what}",
            post(file_by_id),
        )
        .route("/genesys/2/chat-ntf", post(chat_ntf))
        .with_state(Arc::new(Api { chats, max_upload }))
}

async fn params(api: &Api, req: Request) -> Result<Params, Response> {
    form::items(req, api.max_upload)
        .await
        .map(Params::from_items)
        .map_err(IntoResponse::into_response)
}

fn answer(result: Result<ChatV2Response, (StatusCode, ChatV2Response)>) -> Response {
    match result {
        Ok(r) => r.into_response(),
        Err((status, r)) => (status, r).into_response(),
    }
}

async fn request_chat(
    State(api): State<Arc<Api>>,
    Path(service): Path<String>,
    req: Request,
) -> Response {
    let p = match params(&api, req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let request = ChatRequest {
        nickname: p.get("nickname"),
        first_name: p.get("firstName"),
        last_name: p.get("lastName"),
        subject: p.get("subject"),
        email: p.get("emailAddress"),
        user_data: p.user_data,
        comet: None,
        v1: None,
    };
    answer(match api.chats.request(&service, request).await {
        Ok((id, chat)) => Ok(ChatV2Response::ok(&id, &chat, None)),
        Err(e) => Err(ChatV2Response::error(None, &e)),
    })
}

/// Reads an operation's parameters into an action on the chat.
pub fn action(operation: &str, p: &Params) -> Result<Action, (u32, String)> {
    let text = |name: &str| p.get(name).unwrap_or_default();
    Ok(match operation {
        "send" | "sendMessage" => Action::Send {
            text: text("message"),
            message_type: p.get("messageType"),
        },
        "refresh" | "readReceipt" => Action::Refresh,
        "startTyping" => Action::StartTyping(p.get("message")),
        "stopTyping" => Action::StopTyping(p.get("message")),
        "disconnect" => Action::Leave,
        "pushUrl" => Action::PushUrl(text("pushUrl")),
        "updateNickname" => Action::UpdateNickname(text("nickname")),
        "updateData" => Action::UpdateData(p.user_data.clone()),
        "customNotice" => Action::CustomNotice(text("message")),
        other => {
            return Err((
                code::UNKNOWN_OPERATION,
                format!("unknown chat operation {other:?}"),
            ));
        }
    })
}

async fn operation(
    State(api): State<Arc<Api>>,
    Path((service, chat_id, operation)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    if api.chats.services().get(&service).is_none() {
        return answer(Err(ChatV2Response::error(
            Some(&chat_id),
            &ChatError::UnknownService(service),
        )));
    }
    if operation == "file" {
        let (p, file) = match with_file(&api, req).await {
            Ok(x) => x,
            Err(r) => return r,
        };
        return file_op(&api.chats, &service, &chat_id, &p, FileOp::Upload(file)).await;
    }
    let p = match params(&api, req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let action = match action(&operation, &p) {
        Ok(a) => a,
        Err((code, advice)) => {
            return (
                StatusCode::NOT_FOUND,
                ChatV2Response::bad(Some(&chat_id), code, advice),
            )
                .into_response();
        }
    };
    let position = match p.position() {
        Ok(pos) => pos,
        Err(advice) => {
            return ChatV2Response::bad(Some(&chat_id), code::BAD_REQUEST, advice).into_response()
        }
    };
    // A refresh without a position returns the whole transcript.
    let position = position.or(matches!(action, Action::Refresh).then_some(1));
    answer(
        match api
            .chats
            .client(&service, &chat_id, &p.credentials(true), action)
            .await
        {
            Ok(chat) => Ok(ChatV2Response::ok(&chat_id, &chat, position)),
            Err(e) => Err(ChatV2Response::error(Some(&chat_id), &e)),
        },
    )
}

// ---- file transfer ------------------------------------------------------

/// A request body with one file part (`file`) and the usual parameters.
async fn with_file(
    api: &Api,
    req: Request,
) -> Result<(Params, Option<(String, String, Vec<u8>)>), Response> {
    let mut items = form::items(req, api.max_upload)
        .await
        .map_err(IntoResponse::into_response)?;
    let file = match items.remove("file") {
        Some(Item::File {
            file_name,
            content_type,
            data,
        }) => Some((file_name.unwrap_or_default(), content_type, data)),
        _ => None,
    };
    Ok((Params::from_items(items), file))
}

/// A stored file as the download answer.
pub fn file_response(file: channels::chat::ChatFile) -> Response {
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file.name.replace(['"', '\\', '\r', '\n'], "_")
    );
    let mut response = file.data.into_response();
    let h = response.headers_mut();
    if let Ok(v) = axum::http::HeaderValue::from_str(&file.content_type) {
        h.insert(axum::http::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&disposition) {
        h.insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    response
}

/// One file operation on a chat, for REST and for `chat-ntf` alike.
pub enum FileOp {
    Limits,
    Upload(Option<(String, String, Vec<u8>)>),
    Download(String),
    Delete(String),
}

pub async fn file_op(
    chats: &Chats,
    service: &str,
    chat_id: &str,
    p: &Params,
    op: FileOp,
) -> Response {
    let creds = p.credentials(true);
    let fail = |e: ChatError| answer(Err(ChatV2Response::error(Some(chat_id), &e)));
    match op {
        FileOp::Limits => match chats.file_limits(service, chat_id, &creds).await {
            Ok((chat, notice)) => {
                let mut r = ChatV2Response::ok(chat_id, &chat, None);
                r.messages = vec![notice];
                r.into_response()
            }
            Err(e) => fail(e),
        },
        FileOp::Upload(None) => ChatV2Response::bad(
            Some(chat_id),
            code::BAD_REQUEST,
            "a multipart part named file is required".into(),
        )
        .into_response(),
        FileOp::Upload(Some((name, content_type, data))) => {
            match chats
                .upload(
                    service,
                    chat_id,
                    &creds,
                    &name,
                    &content_type,
                    data,
                    p.user_data.clone(),
                )
                .await
            {
                Ok((file_id, chat)) => {
                    let mut r = ChatV2Response::ok(chat_id, &chat, None);
                    r.user_data = Some(BTreeMap::from([("file-id".to_owned(), file_id)]));
                    r.into_response()
                }
                Err(e) => fail(e),
            }
        }
        FileOp::Download(file_id) => match chats.download(service, chat_id, &creds, &file_id).await
        {
            Ok(file) => file_response(file),
            Err(e) => fail(e),
        },
        FileOp::Delete(file_id) => {
            match chats.delete_file(service, chat_id, &creds, &file_id).await {
                Ok(chat) => ChatV2Response::ok(chat_id, &chat, None).into_response(),
                Err(e) => fail(e),
            }
        }
    }
}

async fn file_limits(
    State(api): State<Arc<Api>>,
    Path((service, chat_id, what)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let p = match params(&api, req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let op = match what.as_str() {
        "limits" => FileOp::Limits,
        other => {
            return (
                StatusCode::NOT_FOUND,
                ChatV2Response::bad(
                    Some(&chat_id),
                    code::UNKNOWN_OPERATION,
                    format!("unknown file operation {other:?}"),
                ),
            )
                .into_response();
        }
    };
    file_op(&api.chats, &service, &chat_id, &p, op).await
}

async fn file_by_id(
    State(api): State<Arc<Api>>,
    Path((service, chat_id, file_id, what)): Path<(String, String, String, String)>,
    req: Request,
) -> Response {
    let p = match params(&api, req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let op = match what.as_str() {
        "download" => FileOp::Download(file_id),
        "delete" => FileOp::Delete(file_id),
        other => {
            return (
                StatusCode::NOT_FOUND,
                ChatV2Response::bad(
                    Some(&chat_id),
                    code::UNKNOWN_OPERATION,
                    format!("unknown file operation {other:?}"),
                ),
            )
                .into_response();
        }
    };
    file_op(&api.chats, &service, &chat_id, &p, op).await
}

/// `POST /genesys/2/chat-ntf`: file operations of CometD chats, found by
/// `secureKey` (`operation`: fileGetLimits, fileUpload, fileDownload,
/// fileDelete; GMSLibrary spells the first fileGetsLimits).
async fn chat_ntf(State(api): State<Arc<Api>>, req: Request) -> Response {
    let (p, file) = match with_file(&api, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let key = p.get("secureKey").unwrap_or_default();
    let (chat_id, chat) = match api.chats.by_key(&key).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return answer(Err(ChatV2Response::error(
                None,
                &ChatError::NotFound("for this secureKey".into()),
            )))
        }
        Err(e) => return answer(Err(ChatV2Response::error(None, &e))),
    };
    let mut p = p;
    // CometD clients send only the key; the REST checks want the rest too.
    p.fields.insert("userId".into(), chat.user_id.clone());
    let file_id = p.get("fileId").unwrap_or_default();
    let op = match p.get("operation").as_deref() {
        Some("fileGetLimits") | Some("fileGetsLimits") => FileOp::Limits,
        Some("fileUpload") => FileOp::Upload(file),
        Some("fileDownload") => FileOp::Download(file_id),
        Some("fileDelete") => FileOp::Delete(file_id),
        other => {
            return ChatV2Response::bad(
                Some(&chat_id),
                code::UNKNOWN_OPERATION,
                format!("unknown operation {other:?}"),
            )
            .into_response();
        }
    };
    file_op(&api.chats, &chat.service, &chat_id, &p, op).await
}
