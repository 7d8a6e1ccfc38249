//! Chat API v1 (deprecated in GMS, still served): `POST
//! /genesys/1/service/request-chat` creates a service instance holding the
//! customer's data, `POST /genesys/1/service/{id}/ixn/chat` starts the chat,
//! and `.../ixn/chat/{send,refresh,startTyping,stopTyping,disconnect}` act on
//! it. Answers are the chat interaction resource (`chatIxnState`,
//! `transcriptToShow`, `transcriptPosition`, ...); errors the classic
//! `{message, exception}`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use channels::chat::{
    Action, ChatError, ChatRequest, ChatSession, Chats, Credentials, EventType, PartyType, V1Link,
};
use channels::service::{ServiceInstance, Services};
use channels::storage::{Item, Storage};
use serde_json::{json, Value};

use super::chat_v2::Params;
use super::{form, ApiError};

/// The built-in chat service of Chat API v1, and the chat service its
/// chats belong to (options from `[service.request-chat]`, then `[chat]`).
pub const SERVICE: &str = "request-chat";

/// `[chat] enable-fast-chat-transcript-refresh` (GMS 8.5.107.19): each
/// `transcriptToShow` entry carries its transcript index as a sixth element,
/// so a client can refresh from exactly the next one. Set once at startup.
pub static FAST_TRANSCRIPT_REFRESH: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

const EXCEPTION: &str = "com.genesyslab.gsg.services.chat.exceptions.ChatException";

pub struct V1 {
    pub chats: Chats,
    pub services: Services,
    pub storage: Storage,
    pub max_upload: usize,
    /// `[service.request-chat] _ttl`: how long a requested service waits
    /// for its chat to start.
    pub service_ttl: Duration,
}

pub fn router(v1: V1) -> Router {
    Router::new()
        .route("/genesys/1/service/{name}", post(request_service))
        .route("/genesys/1/service/{id}/ixn/chat", post(start_chat))
        .route(
            "/genesys/1/service/{id}/ixn/chat/{operation}",
            post(operation),
        )
        .with_state(Arc::new(v1))
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::new(status, EXCEPTION, message)
}

fn chat_error(e: ChatError) -> ApiError {
    match e {
        ChatError::NotFound(_) => error(StatusCode::NOT_FOUND, e.to_string()),
        ChatError::Forbidden(_) => error(StatusCode::FORBIDDEN, e.to_string()),
        ChatError::Ended(_) => error(StatusCode::GONE, e.to_string()),
        ChatError::TooLarge(_) => error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        ChatError::BadRequest(_) | ChatError::UnknownService(_) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        ChatError::Store(e) => ApiError::unavailable(&e),
    }
}

fn gms_user(req: &Request) -> Option<String> {
    req.headers()
        .get("gms_user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn request_service(
    State(v1): State<Arc<V1>>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    if name != SERVICE {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "com.genesyslab.gsg.services.exceptions.ServiceNotFoundException",
            format!("service {name} is not configured"),
        ));
    }
    let items = form::items(req, v1.max_upload).await?;
    // Keys starting with '_' are for GMS; the rest is the customer's data.
    let data: std::collections::BTreeMap<String, Item> = items
        .into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .collect();
    let data_id = if data.is_empty() {
        None
    } else {
        Some(
            v1.storage
                .create(data, v1.service_ttl)
                .await
                .map_err(ApiError::from)?,
        )
    };
    let instance = ServiceInstance {
        service: SERVICE.into(),
        data_id,
    };
    let id = v1
        .services
        .create(&instance, v1.service_ttl)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(json!({ "_id": id, "_expiration_time": v1.service_ttl.as_secs() })).into_response())
}

async fn start_chat(
    State(v1): State<Arc<V1>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let user = gms_user(&req);
    let p = Params::from_items(form::items(req, v1.max_upload).await?);
    let Some(instance) = v1
        .services
        .get(&id)
        .await
        .map_err(|e| ApiError::unavailable(&e))?
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("service {id} not found or expired"),
        ));
    };
    if let Some((chat_id, chat)) = v1.chats.by_v1_service(&id).await.map_err(chat_error)? {
        // Asked twice: the chat already started.
        return Ok(Json(resource(
            &chat_id,
            &chat,
            1,
            p.get("_verbose").as_deref() == Some("true"),
        ))
        .into_response());
    }
    let mut user_data = std::collections::BTreeMap::new();
    if let Some(data_id) = &instance.data_id {
        if let Ok(area) = v1.storage.read(data_id, None).await {
            for (k, item) in area.items {
                if let Item::Text { value } = item {
                    user_data.insert(k, value);
                }
            }
        }
    }
    let nickname = p
        .get("userDisplayName")
        .filter(|n| !n.trim().is_empty())
        .or_else(|| {
            let name = format!(
                "{} {}",
                p.get("firstName").unwrap_or_default(),
                p.get("lastName").unwrap_or_default()
            );
            Some(name.trim().to_owned()).filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| "Customer".into());
    let request = ChatRequest {
        nickname: Some(nickname),
        subject: p.get("subject"),
        email: p.get("email"),
        user_data,
        v1: Some(V1Link {
            service_id: id.clone(),
            gms_user: user,
        }),
        ..Default::default()
    };
    let (chat_id, chat) = v1
        .chats
        .request(SERVICE, request)
        .await
        .map_err(chat_error)?;
    Ok(Json(resource(
        &chat_id,
        &chat,
        1,
        p.get("_verbose").as_deref() == Some("true"),
    ))
    .into_response())
}

async fn operation(
    State(v1): State<Arc<V1>>,
    Path((id, operation)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let user = gms_user(&req);
    let p = Params::from_items(form::items(req, v1.max_upload).await?);
    let Some((chat_id, chat)) = v1.chats.by_v1_service(&id).await.map_err(chat_error)? else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no chat for service {id}"),
        ));
    };
    // The gms_user that started the chat, if it gave one, owns it.
    if let Some(owner) = chat.v1.as_ref().and_then(|l| l.gms_user.as_deref()) {
        if user.as_deref() != Some(owner) {
            return Err(error(
                StatusCode::FORBIDDEN,
                "gms_user does not match the chat's",
            ));
        }
    }
    let position = p
        .position()
        .map_err(|m| error(StatusCode::BAD_REQUEST, m))?
        .unwrap_or(1);
    let action = match operation.as_str() {
        "send" => Action::Send {
            text: p.get("message").unwrap_or_default(),
            message_type: None,
        },
        // A refresh may carry a message to send first.
        "refresh" => match p.get("message").filter(|m| !m.is_empty()) {
            Some(text) => Action::Send {
                text,
                message_type: None,
            },
            None => Action::Refresh,
        },
        "startTyping" => Action::StartTyping(p.get("message")),
        "stopTyping" => Action::StopTyping(p.get("message")),
        "disconnect" => Action::Leave,
        other => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("unknown chat request {other:?}"),
            ))
        }
    };
    let creds = Credentials {
        user_id: None,
        secure_key: Some(chat.secure_key.clone()),
        alias: None,
    };
    let chat = v1
        .chats
        .client(SERVICE, &chat_id, &creds, action)
        .await
        .map_err(chat_error)?;
    Ok(Json(resource(
        &chat_id,
        &chat,
        position,
        p.get("_verbose").as_deref() == Some("true"),
    ))
    .into_response())
}

/// GMS's name of a chat event (`Message.Text`, `Notice.Joined`, ...), as v1
/// transcripts and `filtering_chat_events` write it.
pub fn event_name(kind: EventType) -> &'static str {
    match kind {
        EventType::ParticipantJoined => "Notice.Joined",
        EventType::ParticipantLeft => "Notice.Left",
        EventType::Message => "Message.Text",
        EventType::TypingStarted => "Notice.TypingStarted",
        EventType::TypingStopped => "Notice.TypingStopped",
        EventType::PushUrl => "Notice.PushUrl",
        EventType::FileUploaded => "Notice.FileUploaded",
        EventType::FileDeleted => "Notice.FileDeleted",
        EventType::CustomNotice | EventType::Notice | EventType::NicknameUpdated => "Notice.Custom",
    }
}

/// The chat interaction resource, with the events from `position` on.
pub fn resource(chat_id: &str, chat: &ChatSession, position: u32, verbose: bool) -> Value {
    let started = chat.created_at;
    let transcript: Vec<Value> = chat
        .since(position)
        .iter()
        .filter_map(|e| {
            let default_text = match e.kind {
                EventType::FileUploaded | EventType::FileDeleted => return None,
                EventType::ParticipantJoined => "has joined the session",
                EventType::ParticipantLeft => "has left the session",
                EventType::TypingStarted => "is typing",
                EventType::TypingStopped => "stopped typing",
                _ => "",
            };
            let kind = event_name(e.kind);
            let party = match e.from.kind {
                PartyType::Client => "CLIENT",
                PartyType::Agent => "AGENT",
                PartyType::External => "EXTERNAL",
                PartyType::System => "SYSTEM",
            };
            let seconds = e.utc_time.saturating_sub(started) / 1000;
            Some(json!([
                kind,
                e.from.nickname,
                e.text.clone().unwrap_or_else(|| default_text.to_owned()),
                seconds.to_string(),
                party
            ]))
            .map(|mut entry| {
                if FAST_TRANSCRIPT_REFRESH.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(list) = entry.as_array_mut() {
                        list.push(json!(e.index.to_string()));
                    }
                }
                entry
            })
        })
        .collect();
    let mut body = json!({
        "chatIxnState": if chat.ended() { "DISCONNECTED" } else { "TRANSCRIPT" },
        "chatSessionId": chat_id,
        "transcriptPosition": chat.next_position(),
        "chatServiceMessage": "Chat service is available",
        "startedAt": utc(started),
        "transcriptToShow": transcript,
    });
    if verbose {
        body["userId"] = json!(chat.user_id);
        body["secureKey"] = json!(chat.secure_key);
    }
    body
}

/// `YYYY-MM-DDTHH:MM:SSZ` from milliseconds since the epoch.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(1_423_607_963_000), "2015-02-10T22:39:23Z");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
