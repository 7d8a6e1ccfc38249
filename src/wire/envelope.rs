//! `/_genesys`, the channel GMS delivers to CometD clients of its classic
//! APIs (Chat API v1, notifications of type `comet`), and the envelope each
//! delivery travels in: `{"message": ..., "id": <32 hex>, "tag": ...}`.
//! May use: `channels` (ids).

use serde_json::{json, Value};

/// The channel classic-API deliveries arrive on.
pub const GENESYS: &str = "/_genesys";

/// `message` in GMS's comet envelope, under a fresh id.
pub fn envelope(message: Value, tag: &str) -> Value {
    json!({"message": message, "id": channels::id::token(), "tag": tag})
}
