//! What the REST APIs read off a request besides its path and form body:
//! the `gms_user` header GMS clients name their end user in, and JSON
//! object bodies.

use axum::http::HeaderMap;

use crate::wire::GMS_USER;

/// The end user a request names in its `gms_user` header.
pub fn gms_user(headers: &HeaderMap) -> Option<&str> {
    headers.get(GMS_USER).and_then(|v| v.to_str().ok())
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
