//! The error strings of replies, in the `code:args:message` grammar of
//! Bayeux and with the texts of CometD 5 and later. Clients (the CometD
//! JavaScript client, GMS samples) act on the numeric code, so a `402` makes
//! any of them handshake again.
//! May use: nothing else in the crate.

pub const SESSION_UNKNOWN: &str = "402::session_unknown";
pub const CHANNEL_MISSING: &str = "400::channel_missing";
pub const MESSAGE_INVALID: &str = "400::message_invalid";
pub const DATA_MISSING: &str = "400::data_missing";
pub const CONNECTION_TYPE_UNSUPPORTED: &str = "400::connection_type_unsupported";
pub const SUBSCRIPTION_MISSING: &str = "403::subscription_missing";
pub const SUBSCRIPTION_INVALID: &str = "403::subscription_invalid";
/// A publish beyond `maxBatchPublishes` in one batch (each such message).
pub const PUBLISHES_TOO_MANY: &str = "403::too_many_publishes";
/// A subscribe that would take a session past `maxSubscriptions`.
pub const SUBSCRIPTIONS_TOO_MANY: &str = "403::too_many_subscriptions";
pub const MESSAGE_DELETED: &str = "404::message_deleted";
pub const CHANNEL_INVALID: &str = "405::channel_invalid";
pub const MESSAGE_ID_INVALID: &str = "405::message_id_invalid";
/// Body of an HTTP 400 answer to a request that is not Bayeux JSON at all.
pub const BODY_INVALID: &str = "400::message_invalid";
/// Body of an HTTP 413 answer to a request over `maxMessageSize`.
pub const MESSAGE_TOO_LARGE: &str = "413::message_too_large";

pub fn handshake_denied(reason: &str) -> String {
    format!("403:{reason}:handshake_denied")
}

pub fn publish_denied(reason: &str) -> String {
    format!("403:{reason}:publish_denied")
}

/// A refusal by the security policy: `403:denied_by_security_policy:<what>`.
pub fn denied(what: &str) -> String {
    format!("403:denied_by_security_policy:{what}")
}
