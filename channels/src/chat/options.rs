//! A chat service's options, by GMS's names and with its defaults: which
//! services exist (`chat.<name>` sections, the `[chat]` catch-all), their
//! queue, idle timeout, size limits and file-transfer limits. May use:
//! nothing else in the module.

use std::collections::BTreeMap;
use std::time::Duration;

/// A chat service's options (`chat.<name>`, then `chat`, then these defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatServiceOptions {
    /// `_chat_endpoint` / `chat_endpoint` (else `[chat] default_chat_endpoint`):
    /// the queue agents take the service's chats from.
    pub queue: String,
    /// `_client_timeout` (s): a chat whose customer does nothing for this long
    /// is ended.
    pub client_timeout: Duration,
    /// `max-message-size` (bytes): the longest text a participant may send.
    pub max_message_size: usize,
    /// `max-transcript-size` (bytes of text): a chat whose transcript reaches
    /// it takes no more messages.
    pub max_transcript_size: usize,
    pub files: FileLimits,
}

impl Default for ChatServiceOptions {
    fn default() -> Self {
        Self {
            queue: DEFAULT_QUEUE.into(),
            client_timeout: Duration::from_secs(900),
            max_message_size: 16 * 1024,
            max_transcript_size: 1024 * 1024,
            files: FileLimits::default(),
        }
    }
}

pub const DEFAULT_QUEUE: &str = "Environment:default";

/// Which chat service names exist: the `chat.<name>` sections, and any name
/// at all when the `[chat]` catch-all section is configured.
#[derive(Debug, Clone)]
pub struct ChatServices {
    pub named: BTreeMap<String, ChatServiceOptions>,
    pub catch_all: Option<ChatServiceOptions>,
    /// `[chat] chat_session_request_timeout` (30000 ms): a chat request not
    /// done by then is given up (the customer is told to try again).
    pub request_timeout: Duration,
    /// `[chat] max-chats-per-minute-per-address` (30): chats one client
    /// address may start per minute (in bursts of as many).
    pub chats_per_minute_per_address: u32,
}

impl Default for ChatServices {
    fn default() -> Self {
        Self {
            named: BTreeMap::new(),
            catch_all: None,
            request_timeout: Duration::from_millis(30_000),
            chats_per_minute_per_address: 30,
        }
    }
}

impl ChatServices {
    pub fn get(&self, name: &str) -> Option<&ChatServiceOptions> {
        self.named.get(name).or(self.catch_all.as_ref())
    }

    /// Every service's options, the catch-all's included.
    pub fn all(&self) -> impl Iterator<Item = &ChatServiceOptions> {
        self.named.values().chain(self.catch_all.iter())
    }
}

/// A service's file-transfer limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLimits {
    /// `upload-max-file-size` (bytes, 2097152).
    pub max_file_size: usize,
    /// `upload-max-total-size` (bytes, 5242880): all files of one chat.
    pub max_total_size: usize,
    /// `upload-max-files` (3): files of one chat.
    pub max_files: usize,
    /// `upload-file-types`: allowed extensions, colon-separated.
    pub file_types: Vec<String>,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            max_file_size: 2_097_152,
            max_total_size: 5_242_880,
            max_files: 3,
            file_types: "jpeg:jpg:png:gif:pdf:txt:zip"
                .split(':')
                .map(str::to_owned)
                .collect(),
        }
    }
}
