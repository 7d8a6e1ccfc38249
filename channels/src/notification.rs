//! The Notification API's subscriptions and events: a device (or URL, or
//! CometD session) subscribes to a tag for a while; an event published with
//! that tag goes to every live subscription through the push dispatcher.
//! Subscriptions live in the store and expire there.
//! May use: the store, ids, `push`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use push::{Dispatcher, GoneListener, Notification, PushType, Tally};
use serde::{Deserialize, Serialize};

use crate::store::{check_key, now_ms, Collection, IndexEntry, Store, StoreError};

/// GMS's floor and default for a subscription's lifetime.
pub const MIN_EXPIRATION: Duration = Duration::from_secs(30);

/// The longest lifetime a subscription may ask for (a year; GMS sets
/// none): an app renews its subscription, it does not hold one forever.
pub const MAX_EXPIRATION: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub subscriber_id: String,
    pub filter: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_name: String,
    pub kind: PushType,
    pub device_id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: u64,
}

impl Subscription {
    /// `properties.debug` selects the provider's debug (sandbox) channel.
    pub fn debug(&self) -> bool {
        self.properties
            .get("debug")
            .is_some_and(|d| d.eq_ignore_ascii_case("true"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("{0}")]
    BadRequest(String),
    #[error("subscription {0} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct NotificationSettings {
    /// `[push] defaultSubscriptionExpiration` (s, at least 30).
    pub default_expiration: Duration,
    /// `[notification] unsubscribe-delay` (s): an unsubscribed subscription
    /// still gets events this long (a publish racing the delete goes out).
    pub unsubscribe_delay: Duration,
    /// The most subscriptions one publish reaches.
    pub max_fan_out: usize,
    /// Why a push type that `pushEnabled` lists has no provider (the
    /// mandatory option that is not set), for the subscription's refusal.
    pub unavailable: BTreeMap<PushType, String>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            default_expiration: MIN_EXPIRATION,
            unsubscribe_delay: Duration::ZERO,
            max_fan_out: 100_000,
            unavailable: Default::default(),
        }
    }
}

/// The subscriptions in a store, found by their filter.
fn subscriptions(store: Arc<dyn Store>) -> Collection<Subscription> {
    Collection::new(store, "subscription", |s: &Subscription| {
        vec![IndexEntry::new("filter", &s.filter)]
    })
}

#[derive(Clone)]
pub struct Notifications {
    subscriptions: Collection<Subscription>,
    dispatcher: Arc<Dispatcher>,
    settings: NotificationSettings,
}

/// What publishing an event did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Published {
    /// Subscriptions whose filter matched.
    pub matched: usize,
    /// Notifications queued for delivery.
    pub queued: usize,
    /// Refused: push type off, or its queue full.
    pub refused: usize,
}

impl Notifications {
    pub fn new(
        store: Arc<dyn Store>,
        dispatcher: Arc<Dispatcher>,
        settings: NotificationSettings,
    ) -> Self {
        Self {
            subscriptions: subscriptions(store),
            dispatcher,
            settings,
        }
    }

    /// What the push dispatcher calls when a provider reports a device
    /// gone: the subscription is removed, off the dispatcher's worker.
    pub fn forget_gone(store: Arc<dyn Store>) -> GoneListener {
        let subscriptions = subscriptions(store);
        Arc::new(move |n: &Notification| {
            // Chats in the background push with no subscription behind them.
            if n.subscription_id.is_empty() {
                return;
            }
            let (subscriptions, id) = (subscriptions.clone(), n.subscription_id.clone());
            tokio::spawn(async move {
                if let Err(e) = subscriptions.delete(&id).await {
                    tracing::warn!("removing a subscription: {e}");
                }
            });
        })
    }

    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// Stores a subscription for `expire` (default: the configured one);
    /// returns its id.
    pub async fn subscribe(
        &self,
        sub: Subscription,
        expire: Option<Duration>,
    ) -> Result<String, NotificationError> {
        let expire = expire.unwrap_or(self.settings.default_expiration);
        if expire < MIN_EXPIRATION {
            return Err(NotificationError::BadRequest(format!(
                "expire must be at least {} seconds",
                MIN_EXPIRATION.as_secs()
            )));
        }
        if expire > MAX_EXPIRATION {
            return Err(NotificationError::BadRequest(format!(
                "expire must be at most {} seconds",
                MAX_EXPIRATION.as_secs()
            )));
        }
        for (what, value) in [
            ("subscriberId", &sub.subscriber_id),
            ("filter", &sub.filter),
            ("deviceId", &sub.device_id),
        ] {
            if check_key(what, value).is_err() {
                return Err(NotificationError::BadRequest(format!(
                    "{what} must be 1 to 512 characters"
                )));
            }
        }
        if !self.dispatcher.serves(sub.kind) {
            return Err(NotificationError::BadRequest(
                match self.settings.unavailable.get(&sub.kind) {
                    Some(why) => format!("push type {} is off: {why}", sub.kind.name()),
                    None => format!(
                        "push type {} is not enabled ([push] pushEnabled)",
                        sub.kind.name()
                    ),
                },
            ));
        }
        if !self
            .dispatcher
            .has_provider(sub.kind, &sub.provider_name, sub.debug())
        {
            return Err(NotificationError::BadRequest(format!(
                "providerName {:.64} names no configured provider for {} ([push.provider.<name>])",
                sub.provider_name,
                sub.kind.name()
            )));
        }
        if let Err(why) =
            self.dispatcher
                .check_device(sub.kind, &sub.provider_name, sub.debug(), &sub.device_id)
        {
            return Err(NotificationError::BadRequest(format!("deviceId: {why}")));
        }
        Ok(self
            .subscriptions
            .create_fresh(&sub, Some(expire), crate::id::uuid)
            .await?)
    }

    pub async fn get(&self, id: &str) -> Result<(Subscription, Option<u64>), NotificationError> {
        if check_key("a subscription id", id).is_err() {
            return Err(NotificationError::NotFound(id.to_owned()));
        }
        let found = self
            .subscriptions
            .get(id)
            .await?
            .ok_or_else(|| NotificationError::NotFound(id.to_owned()))?;
        Ok((found.value, found.expires_at))
    }

    /// Ends a subscription, after `unsubscribe-delay` when one is set.
    pub async fn unsubscribe(&self, id: &str) -> Result<(), NotificationError> {
        let (sub, expires_at) = self.get(id).await?;
        let delay = self.settings.unsubscribe_delay;
        if delay.is_zero() {
            self.subscriptions.delete(id).await?;
            return Ok(());
        }
        // Keep it `delay` longer at most: a sooner expiry stays.
        let left = expires_at.map(|t| Duration::from_millis(t.saturating_sub(now_ms())));
        let ttl = left.map_or(delay, |l| l.min(delay));
        self.subscriptions
            .put(id, &sub, Some(ttl.max(Duration::from_millis(1))))
            .await?;
        Ok(())
    }

    /// Sends an event to every live subscription whose filter is its tag.
    pub async fn publish(&self, tag: &str, message: &str) -> Result<Published, NotificationError> {
        if check_key("tag", tag).is_err() {
            return Err(NotificationError::BadRequest(
                "tag must be 1 to 512 characters".into(),
            ));
        }
        let found = self
            .subscriptions
            .find("filter", tag, self.settings.max_fan_out)
            .await?;
        let mut out = Published {
            matched: found.len(),
            ..Published::default()
        };
        // One copy of the event for every device, and one log line for the
        // publish (the tally's, once every notification has settled).
        let (tag, message): (Arc<str>, Arc<str>) = (tag.into(), message.into());
        let tally = Tally::new(tag.clone());
        let mut first_refusal = None;
        for (id, sub) in found {
            let sub = sub.value;
            let n = Notification {
                subscription_id: id,
                kind: sub.kind,
                debug: sub.debug(),
                provider: sub.provider_name,
                device_id: sub.device_id,
                authorization: sub.authorization,
                tag: tag.clone(),
                message: message.clone(),
                properties: sub.properties,
                tally: Some(tally.clone()),
            };
            match self.dispatcher.submit(n) {
                Ok(()) => out.queued += 1,
                Err(e) => {
                    first_refusal.get_or_insert(e);
                    out.refused += 1;
                }
            }
        }
        if let Some(e) = first_refusal {
            tracing::warn!(%tag, refused = out.refused, queued = out.queued, "publish: {e}");
        }
        Ok(out)
    }
}
