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
use channels::chat::{Action, ChatError, ChatRequest, Chats, Credentials, V1Link};
use channels::service::{ServiceInstance, Services};
use channels::storage::{Item, Storage};
use serde_json::json;

use super::error::ApiError;
use super::form::{self, BodyLimit};
use super::request::gms_user;
use crate::wire::chat_v1::{resource, TranscriptFormat, SERVICE};
use crate::wire::chat_v2::Params;

const EXCEPTION: &str = "com.genesyslab.gsg.services.chat.exceptions.ChatException";

pub struct V1 {
    pub chats: Chats,
    pub services: Services,
    pub storage: Storage,
    pub max_upload: usize,
    /// `[service.request-chat] _ttl`: how long a requested service waits
    /// for its chat to start.
    pub service_ttl: Duration,
    pub format: TranscriptFormat,
}

pub fn router(v1: V1) -> Router {
    Router::new()
        .route("/genesys/1/service/{name}", post(request_service))
        .route("/genesys/1/service/{id}/ixn/chat", post(start_chat))
        .route(
            "/genesys/1/service/{id}/ixn/chat/{operation}",
            post(operation),
        )
        .layer(axum::extract::DefaultBodyLimit::disable())
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
        ChatError::TooMany(_) => error(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        ChatError::BadRequest(_) | ChatError::UnknownService(_) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        ChatError::Store(e) => ApiError::unavailable(&e),
    }
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
    let items = form::items(req, BodyLimit::max_file_upload(v1.max_upload)).await?;
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
    let user = gms_user(req.headers()).map(str::to_owned);
    let from = super::request::client_key(req.extensions());
    let p = Params::from_items(form::items(req, BodyLimit::max_file_upload(v1.max_upload)).await?);
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
        let events = v1
            .chats
            .transcript(&chat_id, &chat, 1)
            .await
            .map_err(chat_error)?;
        return Ok(Json(resource(
            &chat_id,
            &chat,
            &events,
            p.get("_verbose").as_deref() == Some("true"),
            v1.format,
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
        from,
        ..Default::default()
    };
    let (chat_id, chat) = v1
        .chats
        .request(SERVICE, request)
        .await
        .map_err(chat_error)?;
    // A new chat: its events are all in its record.
    let events = v1
        .chats
        .transcript(&chat_id, &chat, 1)
        .await
        .map_err(chat_error)?;
    Ok(Json(resource(
        &chat_id,
        &chat,
        &events,
        p.get("_verbose").as_deref() == Some("true"),
        v1.format,
    ))
    .into_response())
}

async fn operation(
    State(v1): State<Arc<V1>>,
    Path((id, operation)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let user = gms_user(req.headers()).map(str::to_owned);
    let p = Params::from_items(form::items(req, BodyLimit::max_file_upload(v1.max_upload)).await?);
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
    let events = v1
        .chats
        .transcript(&chat_id, &chat, position)
        .await
        .map_err(chat_error)?;
    Ok(Json(resource(
        &chat_id,
        &chat,
        &events,
        p.get("_verbose").as_deref() == Some("true"),
        v1.format,
    ))
    .into_response())
}
