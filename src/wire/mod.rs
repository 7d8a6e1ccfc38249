//! The GMS wire shapes that more than one face of gmshub speaks: Chat API
//! v2's response and parameters (REST and CometD), Chat API v1's chat
//! resource (REST and `/_genesys`), GMS's comet envelope, and the pieces
//! every GMS request has (the `gms_user` header, values read as text).
//! May use: `channels` (the models it renders), nothing of the binary.

pub mod chat_v1;
pub mod chat_v2;
pub mod envelope;

use serde_json::Value;

/// The header GMS clients name their end user in, on every request (REST
/// and CometD alike).
pub const GMS_USER: &str = "gms_user";

/// A JSON scalar as the text GMS APIs take it: strings as they are, numbers
/// and booleans as written; `None` for null, arrays and objects, which each
/// caller either refuses or keeps as their JSON text.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Any JSON value as text: a scalar as [`text`] reads it, anything else as
/// its JSON (nested user data kept whole).
pub fn text_or_json(value: &Value) -> String {
    text(value).unwrap_or_else(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn scalars_read_as_text() {
        assert_eq!(super::text(&json!("a")).as_deref(), Some("a"));
        assert_eq!(super::text(&json!(12)).as_deref(), Some("12"));
        assert_eq!(super::text(&json!(true)).as_deref(), Some("true"));
        for other in [json!(null), json!([1]), json!({"a": 1})] {
            assert_eq!(super::text(&other), None);
        }
        assert_eq!(super::text_or_json(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(super::text_or_json(&json!(7)), "7");
    }
}
