//! The REST APIs: GMS's under `/genesys/1` and `/genesys/2` (chat), the
//! agent API under `/gmshub/agent`; request bodies, and the classic-API
//! error shape.

pub mod agent;
pub mod callback;
pub mod chat_v1;
pub mod chat_v2;
pub mod form;
pub mod node;
pub mod notification;
pub mod storage;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// A classic GMS API error: `{"message": ..., "exception": ...}` with an
/// HTTP status. The exception names follow GMS's own pattern
/// (`com.genesyslab.gsg.services.<api>.exceptions.<Name>`).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub exception: &'static str,
}

impl ApiError {
    pub fn new(status: StatusCode, exception: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            exception,
        }
    }

    /// The store failed: the request may be retried.
    pub fn unavailable(e: &channels::store::StoreError) -> Self {
        // The store's message names the backend, never the data.
        tracing::warn!("store: {e}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "com.genesyslab.gsg.services.storage.exceptions.StorageExceptionUnavailable",
            "the store is unavailable; try again",
        )
    }
}

/// A request body that must be one JSON object; the error says what it is
/// instead.
pub fn object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("the body must be a JSON object".into()),
        Err(e) => Err(format!("the body is not JSON: {e}")),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.message, "exception": self.exception });
        (self.status, Json(body)).into_response()
    }
}
