//! The ack extension's negotiation and wire fields. Its delivery side (the
//! unacknowledged queue and redelivery) belongs to the session.
//!
//! Handshake: the client sends `ext.ack: true`; the reply says
//! `ext.ack: {"enabled": true, "batch": 0}` (the object form current CometD
//! clients read; older clients read a plain `true` and also accept this).
//! Every `/meta/connect` then carries `ext.ack: <last batch received>` and its
//! reply `ext.ack: <batch id of the messages it carries>`.

use serde_json::{json, Map, Value};

/// Whether a handshake `ext` asks for the ack extension.
pub fn requested(ext: Option<&Map<String, Value>>) -> bool {
    ext.and_then(|e| e.get("ack")) == Some(&Value::Bool(true))
}

pub fn handshake_reply(ext: &mut Map<String, Value>) {
    ext.insert("ack".to_owned(), json!({ "enabled": true, "batch": 0 }));
}

/// The batch id a `/meta/connect` acknowledges, if it carries one.
pub fn acknowledged(ext: Option<&Map<String, Value>>) -> Option<u64> {
    ext?.get("ack")?.as_u64()
}

pub fn connect_reply(ext: &mut Map<String, Value>, batch: u64) {
    ext.insert("ack".to_owned(), Value::from(batch));
}
