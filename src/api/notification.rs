//! The Notification API (`/genesys/1/notification`): subscribe a device to
//! a tag, read or end the subscription, publish an event to every
//! subscription of its tag. JSON only, as in GMS (anything else is 415).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use channels::notification::{NotificationError, Notifications, Subscription};
use push::PushType;
use serde_json::{json, Value};

use super::error::ApiError;
use crate::wire::{text, text_or_json};

const EXCEPTION: &str = "com.genesyslab.gsg.services.notification.exceptions.NotificationException";
const NOT_FOUND: &str =
    "com.genesyslab.gsg.services.notification.exceptions.SubscriptionNotFoundException";
/// The largest request body: an event or a subscription, not a file.
const MAX_BODY: usize = 64 * 1024;

pub fn router(notifications: Notifications) -> Router {
    Router::new()
        .route("/genesys/1/notification/subscription", post(subscribe))
        .route(
            "/genesys/1/notification/subscription/{id}",
            get(read).delete(unsubscribe),
        )
        .route("/genesys/1/notification/publish", post(publish))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(notifications)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, EXCEPTION, message)
}

impl From<NotificationError> for ApiError {
    fn from(e: NotificationError) -> Self {
        match e {
            NotificationError::BadRequest(m) => bad(m),
            NotificationError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, NOT_FOUND, e.to_string())
            }
            NotificationError::Store(e) => ApiError::unavailable(&e),
        }
    }
}

/// The body as a JSON object; 415 unless it says it is JSON.
fn json_body(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    if !super::request::is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "com.genesyslab.gsg.services.exceptions.UnsupportedMediaTypeException",
            "the Notification API takes application/json",
        ));
    }
    super::request::object(body).map_err(bad)
}

/// A field as text (numbers and booleans as written).
fn field(map: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    map.get(name).and_then(text)
}

fn required(map: &serde_json::Map<String, Value>, name: &str) -> Result<String, ApiError> {
    field(map, name)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| bad(format!("{name} is required")))
}

async fn subscribe(
    State(n): State<Notifications>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = json_body(&headers, &body)?;
    let details = match map.get("notificationDetails") {
        Some(Value::Object(d)) => d.clone(),
        _ => {
            return Err(bad(
                "notificationDetails (an object with deviceId and type) is required",
            ))
        }
    };
    let type_name = required(&details, "type")?;
    let kind = PushType::parse(&type_name)
        .ok_or_else(|| bad(format!("unknown notification type {type_name:?}")))?;
    let kind = match kind {
        PushType::Gcm | PushType::Android => {
            tracing::warn!(
                kind = kind.name(),
                "Google retired GCM and C2DM: this subscription is served by FCM"
            );
            PushType::Fcm
        }
        other => other,
    };
    let properties: BTreeMap<String, String> = match details.get("properties") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(p)) => p
            .iter()
            .map(|(k, v)| (k.clone(), text_or_json(v)))
            .collect(),
        Some(_) => return Err(bad("notificationDetails.properties must be an object")),
    };
    let expire = match map.get("expire") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Duration::from_secs(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| bad("expire must be a number of seconds"))?,
        )),
    };
    let sub = Subscription {
        subscriber_id: required(&map, "subscriberId")?,
        filter: required(&map, "filter")?,
        provider_name: field(&map, "providerName").unwrap_or_default(),
        kind,
        device_id: required(&details, "deviceId")?,
        properties,
        authorization: field(&map, "authorization").filter(|a| !a.is_empty()),
        created_at: channels::store::now_ms(),
    };
    let id = n.subscribe(sub, expire).await?;
    Ok(Json(json!({ "id": id })).into_response())
}

async fn read(
    State(n): State<Notifications>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (sub, expires_at) = n.get(&id).await?;
    let expire = expires_at.map(|t| t.saturating_sub(channels::store::now_ms()) / 1000);
    Ok(Json(json!({
        "id": id,
        "subscriberId": sub.subscriber_id,
        "filter": sub.filter,
        "providerName": sub.provider_name,
        "notificationDetails": {"deviceId": sub.device_id, "type": sub.kind, "properties": sub.properties},
        "expire": expire,
    }))
    .into_response())
}

async fn unsubscribe(
    State(n): State<Notifications>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    n.unsubscribe(&id).await?;
    Ok(StatusCode::OK.into_response())
}

async fn publish(
    State(n): State<Notifications>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = json_body(&headers, &body)?;
    let tag = required(&map, "tag")?;
    // A text message travels as it is; any other JSON as its text.
    let message = match map.get("message") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => return Err(bad("message is required")),
        Some(other) => other.to_string(),
    };
    let published = n.publish(&tag, &message).await?;
    Ok(Json(json!({ "tag": tag, "subscriptions": published.matched, "queued": published.queued, "refused": published.refused }))
        .into_response())
}
