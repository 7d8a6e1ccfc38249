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
use channels::chat::{Action, ChatError, Chats};
use channels::storage::Item;

use super::error::ApiError;
use super::form::{self, BodyLimit};
use super::shape;
use crate::wire::chat_v2::{action, code, ChatV2Response, Params};

impl IntoResponse for ChatV2Response {
    fn into_response(self) -> Response {
        Json(self).into_response()
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
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(Arc::new(Api { chats, max_upload }))
}

async fn params(api: &Api, req: Request) -> Result<Params, Response> {
    form::items(req, BodyLimit::max_file_upload(api.max_upload))
        .await
        .map(Params::from_items)
        .map_err(in_v2_shape)
}

/// A form the classic reader refused (not UTF-8, a type that is not a
/// form, over its limit), in the Digital Channels shape.
fn in_v2_shape(e: ApiError) -> Response {
    shape::chat_v2(e.status, e.message)
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
    let from = super::request::client_key(req.extensions());
    let p = match params(&api, req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    answer(
        match api
            .chats
            .request(&service, p.chat_request(None, from))
            .await
        {
            Ok((id, chat)) => Ok(ChatV2Response::ok(&id, &chat, Vec::new())),
            Err(e) => Err(ChatV2Response::error(None, &e)),
        },
    )
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
        let (p, file) = match with_file(&api, Some(&service), req).await {
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
            Ok(chat) => ChatV2Response::read(&api.chats, &chat_id, &chat, position).await,
            Err(e) => Err(ChatV2Response::error(Some(&chat_id), &e)),
        },
    )
}

// ---- file transfer ------------------------------------------------------

/// Room in an upload's body for the form around the file.
const FORM_OVERHEAD: usize = 64 * 1024;

/// A request body with one file part (`file`) and the usual parameters, at
/// most the file size `service` allows (any service's, if `None`) and the
/// form around it.
async fn with_file(
    api: &Api,
    service: Option<&str>,
    req: Request,
) -> Result<(Params, Option<(String, String, Vec<u8>)>), Response> {
    let services = api.chats.services();
    let largest = match service.and_then(|s| services.get(s)) {
        Some(options) => options.files.max_file_size,
        None => services
            .all()
            .map(|o| o.files.max_file_size)
            .max()
            .unwrap_or_default(),
    };
    let limit = BodyLimit {
        bytes: largest + FORM_OVERHEAD,
        option: "upload-max-file-size, and the form around the file",
    };
    let mut items = form::items(req, limit).await.map_err(in_v2_shape)?;
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
    super::download::file(Some(&file.name), &file.content_type, file.data)
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
                let mut r = ChatV2Response::ok(chat_id, &chat, Vec::new());
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
                    let mut r = ChatV2Response::ok(chat_id, &chat, Vec::new());
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
                Ok(chat) => ChatV2Response::ok(chat_id, &chat, Vec::new()).into_response(),
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
    let (p, file) = match with_file(&api, None, req).await {
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
