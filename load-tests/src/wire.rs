//! What the generator reads and writes on the wire, kept cheap: deliveries
//! are found by scanning for the send timestamp the publishers embed
//! (`{"t":<µs>,...}`), not by parsing every message as JSON.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use memchr::memmem;

/// Wall-clock microseconds. Publishers and subscribers may live in
/// different generator processes; on one machine they share this clock.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// What one received frame or response body held.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    /// Send timestamps of the deliveries in it.
    pub stamps: Vec<u64>,
    /// It holds a `/meta/connect` reply.
    pub connect_reply: bool,
    /// Replies that said `"successful":false`.
    pub failures: u32,
}

/// The patterns `scan` looks for, each built once.
struct Finders {
    stamp: memmem::Finder<'static>,
    connect: memmem::Finder<'static>,
    failure: memmem::Finder<'static>,
}

fn finders() -> &'static Finders {
    static FINDERS: OnceLock<Finders> = OnceLock::new();
    FINDERS.get_or_init(|| Finders {
        stamp: memmem::Finder::new(b"{\"t\":"),
        connect: memmem::Finder::new(b"\"/meta/connect\""),
        failure: memmem::Finder::new(b"\"successful\":false"),
    })
}

pub fn scan(text: &[u8]) -> Scan {
    let f = finders();
    let mut out = Scan::default();
    for i in f.stamp.find_iter(text) {
        let digits = &text[i + 5..];
        let end = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len());
        if let Some(t) = std::str::from_utf8(&digits[..end])
            .ok()
            .and_then(|s| s.parse().ok())
        {
            out.stamps.push(t);
        }
    }
    out.connect_reply = f.connect.find(text).is_some();
    out.failures = f.failure.find_iter(text).count() as u32;
    out
}

/// Pulls a string field out of the first message of a reply (handshake
/// replies are small and rare: a real parse is fine there).
pub fn field(reply: &[u8], name: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(reply).ok()?;
    let first = match &v {
        serde_json::Value::Array(a) => a.first()?.clone(),
        other => other.clone(),
    };
    first.get(name)?.as_str().map(str::to_owned)
}

pub fn handshake(connection_type: &str) -> String {
    format!(
        r#"[{{"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":["{connection_type}"]}}]"#
    )
}

pub fn connect(client_id: &str, connection_type: &str) -> String {
    format!(
        r#"[{{"channel":"/meta/connect","clientId":"{client_id}","connectionType":"{connection_type}"}}]"#
    )
}

/// The first connect of a session asks to be answered at once, as the CometD
/// client does: Faye and CometD's Node server otherwise hold it.
pub fn first_connect(client_id: &str, connection_type: &str) -> String {
    format!(
        r#"[{{"channel":"/meta/connect","clientId":"{client_id}","connectionType":"{connection_type}","advice":{{"timeout":0}}}}]"#
    )
}

pub fn subscribe(client_id: &str, channels: &[String]) -> String {
    let list = serde_json::to_string(channels).unwrap_or_default();
    format!(r#"[{{"channel":"/meta/subscribe","clientId":"{client_id}","subscription":{list}}}]"#)
}

pub fn disconnect(client_id: &str) -> String {
    format!(r#"[{{"channel":"/meta/disconnect","clientId":"{client_id}"}}]"#)
}

/// A batch of publishes, each stamped now.
pub fn publishes(client_id: &str, channels: &[&str], pad: &str) -> String {
    let mut out = String::with_capacity(channels.len() * (80 + pad.len()));
    out.push('[');
    for (i, channel) in channels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"channel":"{channel}","clientId":"{client_id}","data":{{"t":{},"p":"{pad}"}}}}"#,
            now_us()
        ));
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_stamps_connect_replies_and_failures() {
        let frame = br#"[{"channel":"/r/1","data":{"t":123,"p":"xx"}},{"channel":"/r/2","data":{"t":456,"p":"y"},"id":"9"},
            {"channel":"/meta/connect","successful":true},{"channel":"/x","successful":false}]"#;
        let s = scan(frame);
        assert_eq!(s.stamps, vec![123, 456]);
        assert!(s.connect_reply);
        assert_eq!(s.failures, 1);
        assert_eq!(scan(b"[]"), Scan::default());
    }

    #[test]
    fn publishes_are_valid_json() {
        let batch = publishes("abc", &["/a", "/b"], "pad");
        let v: serde_json::Value = serde_json::from_str(&batch).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1]["channel"], "/b");
    }
}
