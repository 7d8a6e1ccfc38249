//! The GMS Storage API (`/genesys/1/storage`): create an area with a TTL
//! (random or custom id), update it and renew its TTL, read it whole or one
//! key, delete it; and the area of a service instance,
//! `/genesys/1/service/{id}/storage`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use channels::service::Services;
use channels::storage::{parse_ttl, Area, Item, Storage, StorageError};

use super::download;
use super::error::ApiError;
use super::form::{self, BodyLimit};
use super::request::gms_user;
use crate::config::StorageSettings;

struct Api {
    storage: Storage,
    services: Services,
    settings: StorageSettings,
}

const NOT_FOUND: &str = "com.genesyslab.gsg.services.storage.exceptions.StorageExceptionNotFound";
const BAD_REQUEST: &str =
    "com.genesyslab.gsg.services.storage.exceptions.StorageExceptionBadRequest";
const CONFLICT: &str = "com.genesyslab.gsg.services.storage.exceptions.StorageExceptionConflict";

pub fn router(storage: Storage, services: Services, settings: StorageSettings) -> Router {
    let api = Arc::new(Api {
        storage,
        services,
        settings,
    });
    Router::new()
        // POST takes a TTL where GET and DELETE take an id (one route, as
        // the router needs one name per position).
        .route(
            "/genesys/1/storage/{id_or_ttl}",
            post(create).get(read).delete(delete),
        )
        .route("/genesys/1/storage/custom/{id}/{ttl}", post(create_custom))
        .route(
            "/genesys/1/storage/{id}/{key_or_ttl}",
            post(update).get(read_key),
        )
        .route(
            "/genesys/1/service/{id}/storage",
            post(write_service).get(read_service).delete(delete_service),
        )
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(api)
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(id) => ApiError::new(
                StatusCode::NOT_FOUND,
                NOT_FOUND,
                format!("storage data {id} not found"),
            ),
            StorageError::UserRequired => {
                ApiError::new(StatusCode::BAD_REQUEST, BAD_REQUEST, e.to_string())
            }
            StorageError::Taken(_) => ApiError::new(StatusCode::CONFLICT, CONFLICT, e.to_string()),
            StorageError::Store(e) => ApiError::unavailable(&e),
        }
    }
}

impl Api {
    /// A TTL path segment read the GMS way (anything but a positive number
    /// of seconds is 30 s), refused over `[storage] max-ttl`.
    fn ttl(&self, segment: &str) -> Result<Duration, ApiError> {
        let ttl = parse_ttl(segment);
        if ttl > self.settings.max_ttl {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                BAD_REQUEST,
                format!(
                    "ttl must be at most {} seconds ([storage] max-ttl)",
                    self.settings.max_ttl.as_secs()
                ),
            ));
        }
        Ok(ttl)
    }

    async fn items(&self, req: Request<Body>) -> Result<BTreeMap<String, Item>, ApiError> {
        let limit = BodyLimit::max_file_upload(self.settings.max_upload);
        let items = form::items(req, limit).await?;
        if let Some(allowed) = &self.settings.allowed_mime_types {
            for (key, item) in &items {
                if let Item::File { content_type, .. } = item {
                    let essence = super::request::essence(content_type);
                    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(essence)) {
                        return Err(ApiError::new(
                            StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            BAD_REQUEST,
                            format!("file {key}: type {essence} is not allowed"),
                        ));
                    }
                }
            }
        }
        Ok(items)
    }
}

async fn create(
    State(api): State<Arc<Api>>,
    Path(ttl): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let items = api.items(req).await?;
    let id = api.storage.create(items, api.ttl(&ttl)?).await?;
    Ok(Json(serde_json::json!({ "id": id })).into_response())
}

async fn create_custom(
    State(api): State<Arc<Api>>,
    Path((id, ttl)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let user = gms_user(req.headers()).map(str::to_owned);
    let items = api.items(req).await?;
    api.storage
        .create_custom(&id, user.as_deref(), items, api.ttl(&ttl)?)
        .await?;
    Ok(Json(serde_json::json!({ "id": id })).into_response())
}

async fn update(
    State(api): State<Arc<Api>>,
    Path((id, ttl)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let user = gms_user(req.headers()).map(str::to_owned);
    let items = api.items(req).await?;
    api.storage
        .update(&id, user.as_deref(), items, api.ttl(&ttl)?)
        .await?;
    Ok(Json(serde_json::json!({ "id": id })).into_response())
}

async fn read(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let area = api.storage.read(&id, gms_user(&headers)).await?;
    Ok(api.render(&id, area, &headers))
}

impl Api {
    /// An area as JSON: text values as they are; a file as the URL it is
    /// read from, built from external_url_base as GMS builds it.
    fn render(&self, data_id: &str, area: Area, headers: &HeaderMap) -> Response {
        let base = match &self.settings.external_url_base {
            Some(base) => base.trim_end_matches('/').to_owned(),
            None => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("localhost");
                format!("http://{host}")
            }
        };
        let body: serde_json::Map<String, serde_json::Value> = area
            .items
            .into_iter()
            .map(|(key, item)| {
                let value = match item {
                    Item::Text { value } => value,
                    Item::File { .. } => format!(
                        "{base}/genesys/1/storage/{}/{}",
                        encode(data_id),
                        encode(&key)
                    ),
                };
                (key, serde_json::Value::String(value))
            })
            .collect();
        Json(body).into_response()
    }
}

async fn read_service(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let area = api.services.read_storage(&id).await?;
    let instance = api
        .services
        .get(&id)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let data_id = instance.and_then(|i| i.data_id).unwrap_or_default();
    Ok(api.render(&data_id, area, &headers))
}

async fn write_service(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let items = api.items(req).await?;
    api.services.write_storage(&id, items).await?;
    Ok(Json(serde_json::json!({ "id": id })).into_response())
}

async fn delete_service(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    api.services.delete_storage(&id).await?;
    Ok(StatusCode::OK.into_response())
}

async fn read_key(
    State(api): State<Arc<Api>>,
    Path((id, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut area = api.storage.read(&id, gms_user(&headers)).await?;
    match area.items.remove(&key) {
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            NOT_FOUND,
            format!("storage data {id} has no key {key}"),
        )),
        Some(Item::Text { value }) => {
            Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], value).into_response())
        }
        Some(Item::File {
            file_name,
            content_type,
            data,
        }) => Ok(download::file(file_name.as_deref(), &content_type, data)),
    }
}

async fn delete(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    api.storage.delete(&id, gms_user(&headers)).await?;
    Ok(StatusCode::OK.into_response())
}

fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
