//! The Bayeux message model: what arrives (a request body holding one message
//! or an array of them) and how replies and deliveries are encoded.
//!
//! `data` and `ext` stay raw JSON from the moment they are read: a broadcast is
//! encoded once into [`Bytes`] and that buffer is shared by every subscriber.
//! May use: the clock.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Why a request body could not be read as Bayeux messages.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("body is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("body holds no message")]
    Empty,
    #[error("body is neither a message object nor an array of them")]
    NotMessages,
    #[error("a batch holds {0} messages, more than {MAX_BATCH}")]
    TooMany(usize),
}

/// Most messages accepted in one request; a CometD client batches a few dozen.
pub const MAX_BATCH: usize = 1000;

/// `subscription` is one channel or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn as_slice(&self) -> &[String] {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        }
    }
}

/// The `advice` a client may send (only `timeout` and `interval` mean
/// anything to a server).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientAdvice {
    pub timeout: Option<i64>,
    pub interval: Option<i64>,
}

/// One message as received. Unknown fields are ignored; fields of the wrong
/// type make this one message invalid, not the whole batch.
#[derive(Debug, Default, Deserialize)]
pub struct Incoming {
    pub channel: Option<String>,
    pub id: Option<Box<RawValue>>,
    #[serde(rename = "clientId")]
    pub client_id: Option<String>,
    pub data: Option<Box<RawValue>>,
    pub ext: Option<Box<RawValue>>,
    pub advice: Option<ClientAdvice>,
    pub subscription: Option<OneOrMany>,
    #[serde(rename = "connectionType")]
    pub connection_type: Option<String>,
    #[serde(rename = "supportedConnectionTypes")]
    pub supported_connection_types: Option<Vec<String>>,
    pub version: Option<String>,
    #[serde(rename = "minimumVersion")]
    pub minimum_version: Option<String>,
    /// Wall-clock milliseconds when the message was read (for timesync).
    #[serde(skip)]
    pub received_at: i64,
}

/// A parsed element of a batch: the message, or why it could not be read
/// (with whatever `id` could still be recovered, so the error can echo it).
#[derive(Debug)]
pub enum Parsed {
    Ok(Box<Incoming>),
    Invalid { id: Option<Box<RawValue>> },
}

impl Incoming {
    /// Reads the `ext` object, if there is one and it is an object.
    pub fn ext_object(&self) -> Option<Map<String, Value>> {
        let raw = self.ext.as_ref()?;
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    }

    /// Whether the `id` is a JSON string or number, as Bayeux requires.
    pub fn id_is_valid(&self) -> bool {
        self.id
            .as_ref()
            .is_none_or(|id| matches!(id.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9')))
    }
}

/// Parses a request body: one message object or an array of them.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Parsed>, ParseError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let raws: Vec<Box<RawValue>> = match first {
        Some(b'[') => serde_json::from_slice(body)?,
        Some(b'{') => vec![serde_json::from_slice(body)?],
        _ => return Err(ParseError::NotMessages),
    };
    if raws.is_empty() {
        return Err(ParseError::Empty);
    }
    if raws.len() > MAX_BATCH {
        return Err(ParseError::TooMany(raws.len()));
    }
    Ok(raws.into_iter().map(|raw| parse_one(&raw)).collect())
}

fn parse_one(raw: &RawValue) -> Parsed {
    match serde_json::from_str::<Incoming>(raw.get()) {
        Ok(mut msg) => {
            msg.received_at = crate::clock::wall_ms();
            Parsed::Ok(Box::new(msg))
        }
        Err(_) => {
            #[derive(Deserialize)]
            struct IdOnly {
                id: Option<Box<RawValue>>,
            }
            let id = serde_json::from_str::<IdOnly>(raw.get())
                .ok()
                .and_then(|m| m.id);
            Parsed::Invalid { id }
        }
    }
}

/// The advice a server sends.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Advice {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconnect: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(rename = "maxInterval", skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<u64>,
    #[serde(rename = "multiple-clients", skip_serializing_if = "Option::is_none")]
    pub multiple_clients: Option<bool>,
}

impl Advice {
    /// `{reconnect: "handshake", interval: 0}`: the session is gone.
    pub fn handshake() -> Self {
        Self {
            reconnect: Some("handshake"),
            interval: Some(0),
            ..Self::default()
        }
    }

    /// `{reconnect: "none"}`: do not retry.
    pub fn none() -> Self {
        Self {
            reconnect: Some("none"),
            ..Self::default()
        }
    }
}

/// A reply to one incoming message. Encoded once, when it is ready to go.
#[derive(Debug, Default, Serialize)]
pub struct Reply<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a RawValue>,
    #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    pub successful: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
    #[serde(rename = "minimumVersion", skip_serializing_if = "Option::is_none")]
    pub minimum_version: Option<&'a str>,
    #[serde(
        rename = "supportedConnectionTypes",
        skip_serializing_if = "Option::is_none"
    )]
    pub supported_connection_types: Option<&'a [&'a str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<Advice>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub ext: Map<String, Value>,
}

impl<'a> Reply<'a> {
    pub fn new(channel: Option<&'a str>, id: Option<&'a RawValue>) -> Self {
        Self {
            channel,
            id,
            ..Self::default()
        }
    }

    pub fn success(mut self) -> Self {
        self.successful = true;
        self
    }

    pub fn failure(mut self, error: impl Into<String>) -> Self {
        self.successful = false;
        self.error = Some(error.into());
        self
    }

    /// Success, or failure with the error string.
    pub fn result<E: Into<String>>(self, result: Result<(), E>) -> Self {
        match result {
            Ok(()) => self.success(),
            Err(e) => self.failure(e),
        }
    }

    pub fn encode(&self) -> Bytes {
        // A reply holds only strings and numbers we built; it always encodes.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// Encodes a message delivered to subscribers: `{"channel":..,"data":..}`
/// plus the publisher's `ext`, if any. Never the publisher's `clientId` or `id`.
pub fn encode_delivery(channel: &str, data: &RawValue, ext: Option<&RawValue>) -> Bytes {
    encode_message(channel, None, data, ext)
}

/// Encodes the answer to a `/service` request, delivered to the requester
/// only: `{"channel":..,"id":..,"data":..}`. Carrying the request's `id` is
/// what lets a CometD client match it to its `remoteCall`.
pub fn encode_service_reply(channel: &str, id: Option<&RawValue>, data: &RawValue) -> Bytes {
    encode_message(channel, id, data, None)
}

fn encode_message(
    channel: &str,
    id: Option<&RawValue>,
    data: &RawValue,
    ext: Option<&RawValue>,
) -> Bytes {
    let mut out = BytesMut::with_capacity(channel.len() + data.get().len() + 48);
    out.put_slice(b"{\"channel\":");
    // Channel names are validated to plain ASCII without quotes; serde still
    // escapes for us so this stays correct whatever the validator allows.
    out.put_slice(&serde_json::to_vec(channel).unwrap_or_default());
    for (key, raw) in [
        (&b",\"id\":"[..], id),
        (b",\"data\":", Some(data)),
        (b",\"ext\":", ext),
    ] {
        if let Some(raw) = raw {
            out.put_slice(key);
            out.put_slice(raw.get().as_bytes());
        }
    }
    out.put_u8(b'}');
    out.freeze()
}

/// Joins encoded messages into one JSON array, the shape of every response
/// body and WebSocket frame.
pub fn encode_array<'a>(parts: impl IntoIterator<Item = &'a Bytes>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'[');
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(part);
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_message_or_an_array() {
        assert_eq!(parse_batch(br#"{"channel":"/a"}"#).unwrap().len(), 1);
        assert_eq!(
            parse_batch(br#" [{"channel":"/a"},{"channel":"/b","x":1}]"#)
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(parse_batch(b"[]"), Err(ParseError::Empty)));
        assert!(matches!(parse_batch(b"{nope"), Err(ParseError::Json(_))));
        assert!(matches!(parse_batch(b"42"), Err(ParseError::NotMessages)));
    }

    #[test]
    fn a_bad_field_spoils_one_message_and_keeps_its_id() {
        let batch = parse_batch(br#"[{"channel":5,"id":"7"},{"channel":"/a"}]"#).unwrap();
        match &batch[0] {
            Parsed::Invalid { id } => assert_eq!(id.as_ref().unwrap().get(), "\"7\""),
            other => panic!("{other:?}"),
        }
        assert!(matches!(batch[1], Parsed::Ok(_)));
    }

    #[test]
    fn delivery_carries_raw_data_and_nothing_of_the_publisher() {
        let data = RawValue::from_string(r#"{"text":"hi", "n":[1,2]}"#.into()).unwrap();
        let bytes = encode_delivery("/chat/a", &data, None);
        assert_eq!(
            &bytes[..],
            br#"{"channel":"/chat/a","data":{"text":"hi", "n":[1,2]}}"#
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(body in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_batch(&body);
        }

        #[test]
        fn parser_never_panics_on_json_shaped_input(body in r#"[\[\]{}",:a-z0-9 ]{0,64}"#) {
            if let Ok(batch) = parse_batch(body.as_bytes()) {
                prop_assert!(!batch.is_empty());
            }
        }
    }
}
