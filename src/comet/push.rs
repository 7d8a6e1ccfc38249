//! The `comet` push type: a notification to a subscriber's CometD session
//! on `/_genesys`, in GMS's envelope. The subscription's device id is the
//! session's clientId, or the `gms_user` whose session listens on
//! `/_genesys`. A notification counts as delivered only when the session's
//! node says it queued it; a store error or a node that does not answer is
//! retried. May use: the reach, the users registry, `cluster`, `wire`.

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::value::RawValue;
use serde_json::Value;

use super::reach::Reach;
use super::users::GenesysUsers;
use crate::cluster::{node_of, Receipt};
use crate::wire::envelope::{envelope, GENESYS};

pub struct CometPush {
    reach: Reach,
    users: Arc<GenesysUsers>,
    /// The last event encoded, by the identity of its tag and message: the
    /// notifications of one publish share them, so its envelope is encoded
    /// once however many subscriptions it reaches.
    last: Mutex<Option<Encoded>>,
}

struct Encoded {
    tag: Arc<str>,
    message: Arc<str>,
    envelope: Arc<RawValue>,
}

impl CometPush {
    pub fn new(reach: Reach, users: Arc<GenesysUsers>) -> Self {
        Self {
            reach,
            users,
            last: Mutex::new(None),
        }
    }

    /// The event in GMS's envelope: a message that is JSON travels as JSON,
    /// anything else as text.
    fn envelope(&self, n: &push::Notification) -> Option<Arc<RawValue>> {
        if let Some(last) = &*self.last.lock() {
            if Arc::ptr_eq(&last.tag, &n.tag) && Arc::ptr_eq(&last.message, &n.message) {
                return Some(last.envelope.clone());
            }
        }
        let message: Value = serde_json::from_str(&n.message)
            .ok()
            .filter(|v: &Value| v.is_object() || v.is_array())
            .unwrap_or_else(|| Value::String(n.message.to_string()));
        let envelope: Arc<RawValue> = serde_json::value::to_raw_value(&envelope(message, &n.tag))
            .ok()?
            .into();
        *self.last.lock() = Some(Encoded {
            tag: n.tag.clone(),
            message: n.message.clone(),
            envelope: envelope.clone(),
        });
        Some(envelope)
    }
}

#[async_trait::async_trait]
impl push::Provider for CometPush {
    async fn send(&self, n: &push::Notification) -> push::Outcome {
        // A clientId, or a gms_user: the session it listens on (found
        // first: a subscription nobody listens for costs no encoding).
        let client_id = match node_of(&n.device_id) {
            Some(_) => n.device_id.clone(),
            None => match self.users.lookup(&n.device_id).await {
                Ok(Some(client_id)) => client_id,
                Ok(None) => {
                    return push::Outcome::Failed(
                        "no CometD session listens for this subscriber".into(),
                    )
                }
                Err(e) => return push::Outcome::Retry(format!("store: {e}")),
            },
        };
        let Some(raw) = self.envelope(n) else {
            return push::Outcome::Failed("cannot encode".into());
        };
        match self
            .reach
            .deliver_confirmed(&client_id, GENESYS, &raw)
            .await
        {
            Some(Receipt::Queued) => push::Outcome::Delivered,
            Some(Receipt::Full) => push::Outcome::Retry("the session's queue is full".into()),
            Some(Receipt::Gone) => push::Outcome::Failed("the CometD session is gone".into()),
            None => push::Outcome::Retry("no receipt from the session's node".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use channels::store::{LogEntry, Record, Result, Store, StoreError, Version, Write};
    use push::{Notification, Outcome, Provider, PushType};

    use super::*;

    /// A store shared between nodes that is down.
    struct Down;

    fn down<T>() -> Result<T> {
        Err(StoreError::Unavailable {
            backend: "test",
            message: "down".into(),
        })
    }

    #[async_trait]
    impl Store for Down {
        fn backend(&self) -> &'static str {
            "test"
        }
        fn shared(&self) -> bool {
            true
        }
        async fn create(&self, _: &str, _: &str, _: Write<'_>) -> Result<Option<Version>> {
            down()
        }
        async fn put(&self, _: &str, _: &str, _: Write<'_>) -> Result<Version> {
            down()
        }
        async fn update(
            &self,
            _: &str,
            _: &str,
            _: Version,
            _: Write<'_>,
        ) -> Result<Option<Version>> {
            down()
        }
        async fn get(&self, _: &str, _: &str) -> Result<Option<Record>> {
            down()
        }
        async fn delete(&self, _: &str, _: &str) -> Result<bool> {
            down()
        }
        async fn count(&self, _: &str, _: &str, _: &str) -> Result<u64> {
            down()
        }
        async fn find(&self, _: &str, _: &str, _: &str, _: usize) -> Result<Vec<(String, Record)>> {
            down()
        }
        async fn find_ordered(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: u64,
            _: usize,
        ) -> Result<Vec<(String, Record)>> {
            down()
        }
        async fn append(
            &self,
            _: &str,
            _: &str,
            _: &[u8],
            _: Option<std::time::Duration>,
        ) -> Result<u64> {
            down()
        }
        async fn read_log(&self, _: &str, _: &str, _: u64, _: usize) -> Result<Vec<LogEntry>> {
            down()
        }
        async fn write_log(
            &self,
            _: &str,
            _: &str,
            _: &[LogEntry],
            _: Option<std::time::Duration>,
        ) -> Result<()> {
            down()
        }
        async fn keep_log(&self, _: &str, _: &str, _: std::time::Duration) -> Result<()> {
            down()
        }
        async fn delete_log(&self, _: &str, _: &str) -> Result<bool> {
            down()
        }
    }

    fn to(device: &str) -> Notification {
        Notification {
            subscription_id: "s".into(),
            kind: PushType::Comet,
            provider: String::new(),
            debug: false,
            device_id: device.into(),
            authorization: None,
            tag: "t".into(),
            message: "m".into(),
            properties: Default::default(),
            tally: None,
        }
    }

    #[tokio::test]
    async fn a_store_that_is_down_makes_a_retry_not_a_failure() {
        let bayeux = bayeux::Bayeux::new(bayeux::BayeuxConfig::default());
        let comet = CometPush::new(Reach::new(&bayeux, None), GenesysUsers::new(Arc::new(Down)));
        assert!(matches!(
            comet.send(&to("jane.doe@example.com")).await,
            Outcome::Retry(_)
        ));
        // A clientId needs no store: a session that is not there is gone.
        let ghost = format!("node.{}", "ab".repeat(20));
        assert!(matches!(comet.send(&to(&ghost)).await, Outcome::Failed(_)));
    }

    #[test]
    fn the_notifications_of_one_publish_share_one_envelope() {
        let bayeux = bayeux::Bayeux::new(bayeux::BayeuxConfig::default());
        let comet = CometPush::new(Reach::new(&bayeux, None), GenesysUsers::new(Arc::new(Down)));
        let (first, mut second) = (to("a"), to("b"));
        second.tag = first.tag.clone();
        second.message = first.message.clone();
        let once = comet.envelope(&first).unwrap();
        assert!(Arc::ptr_eq(&once, &comet.envelope(&second).unwrap()));
        // Another publish of the same text is another event, with its own id.
        let other = comet.envelope(&to("c")).unwrap();
        let parse = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).unwrap();
        let (once, other) = (parse(&once), parse(&other));
        assert_eq!(
            (&once["tag"], &once["message"]),
            (&other["tag"], &other["message"])
        );
        assert_ne!(once["id"], other["id"]);
    }
}
