//! Chat API v1's wire shapes, shared by its REST face and the `/_genesys`
//! deliveries: the chat interaction resource (`chatIxnState`,
//! `transcriptToShow`, `transcriptPosition`, ...), GMS's event names, and
//! its dates. May use: the chat engine's model.

use channels::chat::{ChatSession, Event, EventType, PartyType};
use serde_json::{json, Value};

/// The built-in chat service of Chat API v1, and the chat service its
/// chats belong to (options from `[service.request-chat]`, then `[chat]`).
pub const SERVICE: &str = "request-chat";

/// GMS's name of a chat event (`Message.Text`, `Notice.Joined`, ...), as v1
/// transcripts and `filtering_chat_events` write it.
pub fn event_name(kind: EventType) -> &'static str {
    match kind {
        EventType::ParticipantJoined => "Notice.Joined",
        EventType::ParticipantLeft => "Notice.Left",
        EventType::Message => "Message.Text",
        EventType::TypingStarted => "Notice.TypingStarted",
        EventType::TypingStopped => "Notice.TypingStopped",
        EventType::PushUrl => "Notice.PushUrl",
        EventType::FileUploaded => "Notice.FileUploaded",
        EventType::FileDeleted => "Notice.FileDeleted",
        EventType::CustomNotice | EventType::Notice | EventType::NicknameUpdated => "Notice.Custom",
    }
}

/// How transcripts are written: `[chat] enable-fast-chat-transcript-refresh`
/// (GMS 8.5.107.19) gives each `transcriptToShow` entry its transcript index
/// as a sixth element, so a client can refresh from exactly the next one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranscriptFormat {
    pub fast_refresh: bool,
}

/// The chat interaction resource, with the events given.
pub fn resource(
    chat_id: &str,
    chat: &ChatSession,
    events: &[Event],
    verbose: bool,
    format: TranscriptFormat,
) -> Value {
    let started = chat.created_at;
    let transcript: Vec<Value> = events
        .iter()
        .filter_map(|e| {
            let default_text = match e.kind {
                EventType::FileUploaded | EventType::FileDeleted => return None,
                EventType::ParticipantJoined => "has joined the session",
                EventType::ParticipantLeft => "has left the session",
                EventType::TypingStarted => "is typing",
                EventType::TypingStopped => "stopped typing",
                _ => "",
            };
            let kind = event_name(e.kind);
            let party = match e.from.kind {
                PartyType::Client => "CLIENT",
                PartyType::Agent => "AGENT",
                PartyType::External => "EXTERNAL",
                PartyType::System => "SYSTEM",
            };
            let seconds = e.utc_time.saturating_sub(started) / 1000;
            Some(json!([
                kind,
                e.from.nickname,
                e.text.clone().unwrap_or_else(|| default_text.to_owned()),
                seconds.to_string(),
                party
            ]))
            .map(|mut entry| {
                if format.fast_refresh {
                    if let Some(list) = entry.as_array_mut() {
                        list.push(json!(e.index.to_string()));
                    }
                }
                entry
            })
        })
        .collect();
    let mut body = json!({
        "chatIxnState": if chat.ended() { "DISCONNECTED" } else { "TRANSCRIPT" },
        "chatSessionId": chat_id,
        "transcriptPosition": chat.next_position(),
        "chatServiceMessage": "Chat service is available",
        "startedAt": utc(started),
        "transcriptToShow": transcript,
    });
    if verbose {
        body["userId"] = json!(chat.user_id);
        body["secureKey"] = json!(chat.secure_key);
    }
    body
}

/// `YYYY-MM-DDTHH:MM:SSZ` from milliseconds since the epoch.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(1_423_607_963_000), "2015-02-10T22:39:23Z");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
