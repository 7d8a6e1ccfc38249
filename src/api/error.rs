//! The classic GMS APIs' error: `{"message": ..., "exception": ...}` with an
//! HTTP status, and how a store failure reads in it.

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.message, "exception": self.exception });
        (self.status, Json(body)).into_response()
    }
}
