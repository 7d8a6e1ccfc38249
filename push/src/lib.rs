//! Push delivery for gmshub: what a notification to one device is, the
//! provider interface every delivery channel implements (CometD, APNs, FCM,
//! custom HTTP, HTTP callback, ORS callback, WNS), and the dispatcher that
//! queues notifications (bounded), hands them to per-type workers, retries
//! what may succeed later and reports devices that are gone; and where a
//! target a subscriber chose may be (`target`). It knows nothing of where
//! notifications come from.

pub mod dispatcher;
pub mod format;
pub mod providers;
pub mod target;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

pub use dispatcher::{Counters, Dispatcher, DispatcherConfig, GoneListener};
pub use format::Formats;

/// The delivery channel a subscription names (`notificationDetails.type`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PushType {
    Comet,
    Ios,
    Fcm,
    /// Served by the FCM provider (Google retired GCM and C2DM).
    Gcm,
    /// Served by the FCM provider (Google retired C2DM).
    Android,
    Httpcb,
    Orscb,
    Customhttp,
    Wns,
}

impl PushType {
    pub const ALL: [PushType; 9] = [
        PushType::Comet,
        PushType::Ios,
        PushType::Fcm,
        PushType::Gcm,
        PushType::Android,
        PushType::Httpcb,
        PushType::Orscb,
        PushType::Customhttp,
        PushType::Wns,
    ];

    pub fn parse(name: &str) -> Option<PushType> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn name(self) -> &'static str {
        match self {
            PushType::Comet => "comet",
            PushType::Ios => "ios",
            PushType::Fcm => "fcm",
            PushType::Gcm => "gcm",
            PushType::Android => "android",
            PushType::Httpcb => "httpcb",
            PushType::Orscb => "orscb",
            PushType::Customhttp => "customhttp",
            PushType::Wns => "wns",
        }
    }
}

/// One notification for one device.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The subscription it comes from (removed when the device is gone).
    pub subscription_id: String,
    pub kind: PushType,
    /// `providerName`: the named credential set; empty for `[push]` itself.
    pub provider: String,
    /// The debug (sandbox) channel of the provider.
    pub debug: bool,
    /// Device token, URL (httpcb), custom id (customhttp), session (comet).
    pub device_id: String,
    /// The subscription's `authorization`, for customhttp.
    pub authorization: Option<String>,
    /// The event: its tag and message (text, often JSON), shared by every
    /// device one publish reaches (a large message to many subscriptions
    /// is held once).
    pub tag: Arc<str>,
    pub message: Arc<str>,
    /// The subscription's free properties.
    pub properties: BTreeMap<String, String>,
    /// The publish this notification is one of, when it is: its outcomes
    /// are logged once for all of them.
    pub tally: Option<Arc<Tally>>,
}

/// What became of one publish's notifications, logged in one line when the
/// last of them is settled (a publish to thousands of dead subscriptions
/// writes one line, not thousands).
#[derive(Debug)]
pub struct Tally {
    tag: Arc<str>,
    delivered: AtomicUsize,
    gone: AtomicUsize,
    failed: AtomicUsize,
}

/// One outcome of a notification, as a tally counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Delivered,
    Gone,
    Failed,
}

impl Tally {
    pub fn new(tag: Arc<str>) -> Arc<Self> {
        Arc::new(Self {
            tag,
            delivered: AtomicUsize::new(0),
            gone: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        })
    }

    pub fn count(&self, outcome: Settled) {
        let counter = match outcome {
            Settled::Delivered => &self.delivered,
            Settled::Gone => &self.gone,
            Settled::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let delivered = *self.delivered.get_mut();
        let gone = *self.gone.get_mut();
        let failed = *self.failed.get_mut();
        if failed > 0 {
            tracing::warn!(tag = %self.tag, delivered, gone, failed, "publish settled with failures");
        } else {
            tracing::debug!(tag = %self.tag, delivered, gone, "publish settled");
        }
    }
}

/// The property of a notification that holds the text to show the user when
/// its message is data for the app (a callback's event, say): APNs and FCM use
/// it as the alert or notification body when nothing configured says
/// otherwise.
pub const TEXT: &str = "text";

/// What a provider made of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// May work later (5xx, 429, a connection that failed): retried with
    /// back-off.
    Retry(String),
    /// The device is gone: its subscription is removed.
    Gone(String),
    /// Refused for good (a bad request, no configuration): not retried.
    Failed(String),
}

/// A delivery channel.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    async fn send(&self, n: &Notification) -> Outcome;

    /// Whether `device_id` is a target this provider may send to (checked
    /// when a subscription or registration names it, before anything is
    /// sent); the reason when not.
    fn check_device(&self, _device_id: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Shows a device token or key in logs without giving it away.
pub fn redact(secret: &str) -> String {
    let n = secret.chars().count();
    if n <= 8 {
        return "***".into();
    }
    let head: String = secret.chars().take(4).collect();
    format!("{head}…({n} chars)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_name() {
        assert_eq!(PushType::parse("FCM"), Some(PushType::Fcm));
        assert_eq!(PushType::parse(" customhttp "), Some(PushType::Customhttp));
        assert_eq!(PushType::parse("pager"), None);
        for t in PushType::ALL {
            assert_eq!(PushType::parse(t.name()), Some(t));
        }
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact("abc"), "***");
        let r = redact("0123456789abcdef0123456789abcdef");
        assert!(r.starts_with("0123") && !r.contains("abcdef0123"), "{r}");
    }
}
