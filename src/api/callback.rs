//! The Callback Services API (`/genesys/1/service/callback/...`, the dialog
//! and queue position under `/genesys/1/service/{id}/...`, the admin views
//! under `/genesys/1/admin/callback/...`) and the router's API, gmshub's own
//! (`/gmshub/callback/...`, documented in `docs/callback-api.md`).
//! Errors are GMS's `{message, exception}`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use channels::callback::model::parse_iso;
use channels::callback::{CallbackError, Callbacks, State as CbState};
use channels::storage::Item;
use channels::store::now_ms;
use serde_json::{Map, Value};

use super::access::{BackOffice, CALLBACK_QUERY};
use super::error::ApiError;
use super::form::{self, BodyLimit, Utf8Query};
use crate::observe::log::Asked;
use crate::wire::text_or_json;

/// GMS's exception name for a callback error.
macro_rules! exception {
    ($name:literal) => {
        concat!("com.genesyslab.gsg.services.callback.exceptions.", $name)
    };
}

/// The largest request body the callback API reads.
const MAX_BODY: usize = 64 * 1024;

pub fn router(callbacks: Callbacks) -> Router {
    Router::new()
        .route(CALLBACK_QUERY, get(query))
        .route("/genesys/1/service/callback/{service}", post(create))
        .route(
            "/genesys/1/service/callback/{service}/availability",
            get(availability),
        )
        .route(
            "/genesys/1/service/callback/{service}/{id}",
            get(read).put(reschedule).delete(cancel),
        )
        .route(
            "/genesys/1/service/{id}/check-queue-position",
            get(position),
        )
        .route("/genesys/1/service/{id}/{action}", post(continue_dialog))
        .route("/genesys/1/admin/callback/queues", get(admin_queues))
        .route("/genesys/1/admin/callback/watermarks", get(watermarks))
        .route("/genesys/1/admin/callback/cancel", post(bulk_cancel))
        .route(
            "/genesys/1/admin/callback/reportcancelled",
            post(report_cancelled),
        )
        .route("/gmshub/callback/{id}", get(router_read))
        .route("/gmshub/callback/{service}/next", post(take_next))
        .route("/gmshub/callback/{id}/state", post(set_state))
        .with_state(callbacks)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        exception!("CallbackExceptionBadRequest"),
        message,
    )
}

impl From<CallbackError> for ApiError {
    fn from(e: CallbackError) -> Self {
        let (status, name) = match &e {
            CallbackError::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                exception!("CallbackExceptionBadRequest"),
            ),
            CallbackError::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "com.genesyslab.gsg.services.exceptions.ForbiddenException",
            ),
            CallbackError::Number(_) => (
                StatusCode::BAD_REQUEST,
                exception!("CallbackExceptionNumber"),
            ),
            CallbackError::UnknownService(_) => (
                StatusCode::NOT_FOUND,
                "com.genesyslab.gsg.services.exceptions.ServiceNotFoundException",
            ),
            CallbackError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                exception!("CallbackExceptionNotFound"),
            ),
            CallbackError::TooMany(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                exception!("CallbackExceptionServiceUnavailable"),
            ),
            CallbackError::QueueFull(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                exception!("CallbackExceptionServiceUnavailable"),
            ),
            CallbackError::Unavailable(_) => (
                StatusCode::BAD_REQUEST,
                exception!("CallbackExceptionNotAvailable"),
            ),
            CallbackError::IllegalTransition { .. } => (
                StatusCode::CONFLICT,
                exception!("CallbackExceptionInvalidState"),
            ),
            CallbackError::Chat(_) => {
                (StatusCode::BAD_REQUEST, exception!("CallbackExceptionChat"))
            }
            CallbackError::Store(s) => return ApiError::unavailable(s),
        };
        ApiError::new(status, name, e.to_string())
    }
}

/// A request's parameters: a JSON object (values taken as text), or a form
/// (urlencoded or multipart; files are not callback parameters).
async fn params(req: Request<Body>) -> Result<BTreeMap<String, String>, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        let limit = BodyLimit {
            bytes: MAX_BODY,
            option: "the callback API's bound",
        };
        let items = form::items(req, limit).await?;
        return Ok(items
            .into_iter()
            .filter_map(|(k, v)| match v {
                Item::Text { value } => Some((k, value)),
                Item::File { .. } => None,
            })
            .collect());
    }
    let asked = Asked::of(&req);
    let map = json_object(req).await?;
    let mut out = BTreeMap::new();
    for (k, v) in map {
        if !v.is_null() {
            // Nested user data is kept as its JSON text.
            out.insert(k, text_or_json(&v));
        }
    }
    asked.parameters(out.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Ok(out)
}

/// A JSON body for the router and admin calls (empty: `{}`).
async fn json_object(req: Request<Body>) -> Result<Map<String, Value>, ApiError> {
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| bad(format!("the request body is larger than {MAX_BODY} bytes")))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    super::request::object(&body).map_err(bad)
}

fn time_param(q: &BTreeMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    q.get(name)
        .filter(|v| !v.is_empty())
        .map(|v| parse_iso(v).ok_or_else(|| bad(format!("{name} {v:?} is not an ISO 8601 time"))))
        .transpose()
}

fn record(callbacks: &Callbacks, id: &str, cb: &channels::callback::Callback) -> Value {
    Value::Object(cb.view(
        id,
        &callbacks.urls().record(&cb.service, id),
        &callbacks.settings().returned_keys,
    ))
}

async fn create(
    State(callbacks): State<Callbacks>,
    Path(service): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    callbacks.admit_booking(super::request::client_key(req.extensions()))?;
    let request = params(req).await?;
    let (_, dialog) = callbacks.create(&service, request).await?;
    Ok(Json(Value::Object(dialog)))
}

async fn read(
    State(callbacks): State<Callbacks>,
    Path((service, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let cb = callbacks.get(&id).await?;
    if cb.service != service {
        return Err(CallbackError::NotFound(id).into());
    }
    Ok(Json(record(&callbacks, &id, &cb)))
}

async fn cancel(
    State(callbacks): State<Callbacks>,
    Path((service, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let cb = callbacks.cancel(Some(&service), &id).await?;
    Ok(Json(record(&callbacks, &id, &cb)))
}

async fn reschedule(
    State(callbacks): State<Callbacks>,
    Path((service, id)): Path<(String, String)>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let changes = params(req).await?;
    let cb = callbacks.reschedule(&service, &id, changes).await?;
    Ok(Json(record(&callbacks, &id, &cb)))
}

async fn query(
    State(callbacks): State<Callbacks>,
    back_office: Option<Extension<BackOffice>>,
    Utf8Query(q): Utf8Query,
) -> Result<Json<Value>, ApiError> {
    let back_office = back_office.is_some_and(|Extension(BackOffice(b))| b);
    Ok(Json(Value::Array(callbacks.query(&q, back_office).await?)))
}

async fn availability(
    State(callbacks): State<Callbacks>,
    Path(service): Path<String>,
    q: Utf8Query,
) -> Result<Json<Value>, ApiError> {
    let q = q.by_name();
    let start = match time_param(&q, "start")? {
        Some(t) => Some(t),
        None => time_param(&q, "timestamp")?,
    };
    let mut end = time_param(&q, "end")?;
    if let Some(days) = q.get("number-of-days") {
        let days: u64 = days
            .parse()
            .ok()
            .filter(|d| (1..=31).contains(d))
            .ok_or_else(|| bad("number-of-days must be 1 to 31"))?;
        end = Some(start.unwrap_or_else(now_ms) + days * 24 * 3600 * 1000);
    }
    let max = match q.get("max-time-slots") {
        None => None,
        Some(m) => Some(
            m.parse::<usize>()
                .map_err(|_| bad("max-time-slots must be a number"))?,
        ),
    };
    let slots = callbacks.availability(&service, start, end, max).await?;
    Ok(Json(Value::Object(slots)))
}

async fn position(
    State(callbacks): State<Callbacks>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(callbacks.position(&id).await?))
}

async fn continue_dialog(
    State(callbacks): State<Callbacks>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(Value::Object(
        callbacks.continue_dialog(&id, &action).await?,
    )))
}

async fn admin_queues(
    State(callbacks): State<Callbacks>,
    q: Utf8Query,
) -> Result<Json<Value>, ApiError> {
    let q = q.by_name();
    let now = now_ms();
    let start = time_param(&q, "start_time")?.unwrap_or(now.saturating_sub(15 * 60 * 1000));
    let end = time_param(&q, "end_time")?.unwrap_or(now + 24 * 3600 * 1000);
    let states = match q.get("states").filter(|s| !s.is_empty()) {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|s| {
                    CbState::parse(s).ok_or_else(|| bad(format!("{s} is not a callback state")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let max = match q.get("max") {
        None => 1000,
        Some(m) => m.parse().map_err(|_| bad("max must be a number"))?,
    };
    let target = q.get("target").filter(|t| !t.is_empty());
    let out = callbacks
        .admin_queues(target.map(String::as_str), (start, end), states, max)
        .await?;
    Ok(Json(Value::Object(out)))
}

async fn watermarks(
    State(callbacks): State<Callbacks>,
    q: Utf8Query,
) -> Result<Json<Value>, ApiError> {
    let q = q.by_name();
    let service = q.get("service_name").filter(|s| !s.is_empty());
    Ok(Json(Value::Object(
        callbacks.watermarks(service.map(String::as_str)).await?,
    )))
}

fn strings(body: &Map<String, Value>, name: &str) -> Result<Vec<String>, ApiError> {
    match body.get(name) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("{name} must be an array of strings")))
            })
            .collect(),
        Some(_) => Err(bad(format!("{name} must be an array of strings"))),
    }
}

async fn bulk_cancel(
    State(callbacks): State<Callbacks>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let body = json_object(req).await?;
    let ids = strings(&body, "ids")?;
    if ids.is_empty() {
        return Err(bad("ids must list the callbacks to cancel"));
    }
    if ids.len() > 10_000 {
        return Err(bad("at most 10000 ids at once"));
    }
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or("CANCELLED_BY_ADMIN");
    Ok(Json(callbacks.bulk_cancel(&ids, reason).await))
}

async fn report_cancelled(
    State(callbacks): State<Callbacks>,
    req: Request,
) -> Result<Response, ApiError> {
    let body = json_object(req).await?;
    let reason = body
        .get("callback_reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or("CANCELLED");
    let properties = strings(&body, "exported_properties")?;
    let csv = callbacks.export_completed(reason, &properties).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"callbacks.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

async fn router_read(
    State(callbacks): State<Callbacks>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cb = callbacks.get(&id).await?;
    Ok(Json(Value::Object(cb.full_view(
        &id,
        &callbacks.urls().record(&cb.service, &id),
    ))))
}

/// `POST /gmshub/callback/{service}/next`: the router takes the oldest
/// waiting callback (204 when none waits).
async fn take_next(
    State(callbacks): State<Callbacks>,
    Path(service): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let body = json_object(req).await?;
    let router = body
        .get("router")
        .or_else(|| body.get("agent"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or("router");
    let vq = body.get("vq").and_then(Value::as_str);
    match callbacks.take_next(&service, router, vq).await? {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some((id, cb)) => Ok(Json(Value::Object(
            cb.full_view(&id, &callbacks.urls().record(&cb.service, &id)),
        ))
        .into_response()),
    }
}

/// `POST /gmshub/callback/{id}/state`: `{"state", "reason", "router",
/// "properties"}`; the move must be one the state machine allows.
async fn set_state(
    State(callbacks): State<Callbacks>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let body = json_object(req).await?;
    let state = body
        .get("state")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("state is required"))?;
    let to =
        CbState::parse(state).ok_or_else(|| bad(format!("{state} is not a callback state")))?;
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if to == CbState::Completed && reason.as_deref().is_none_or(str::is_empty) {
        return Err(bad(
            "a completed callback needs a reason (AGENT_CONNECTED, ...)",
        ));
    }
    // GMS's reasons are upper-case words (AGENT_CONNECTED, FAIL_TIMEOUT_TTL,
    // AGENT_PREVIEW_CANCEL_AFTER_3REJECTS): anything else is a mistake.
    if let Some(r) = &reason {
        let word = !r.is_empty()
            && r.len() <= 64
            && r.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !word {
            return Err(bad(format!(
                "reason {r:?}: GMS reasons are upper-case words (AGENT_CONNECTED, ...)"
            )));
        }
    }
    if to == CbState::Scheduled {
        return Err(bad(
            "rescheduling takes a time: PUT /genesys/1/service/callback/{service}/{id}",
        ));
    }
    let by = body
        .get("router")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or("router")
        .to_owned();
    let properties: BTreeMap<String, String> = match body.get("properties") {
        None => BTreeMap::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| (k.clone(), text_or_json(v)))
            .collect(),
        Some(_) => return Err(bad("properties must be an object")),
    };
    let cb = callbacks
        .update(&id, |cb| {
            channels::callback::engine::check_move(&id, cb.state, to)?;
            cb.properties.extend(properties.clone());
            cb.enter(to, reason.clone(), &by, now_ms());
            Ok(())
        })
        .await?;
    Ok(Json(Value::Object(cb.full_view(
        &id,
        &callbacks.urls().record(&cb.service, &id),
    ))))
}
