//! The `comet` push type: a notification to a subscriber's CometD session
//! on `/_genesys`, in GMS's envelope. The subscription's device id is the
//! session's clientId, or the `gms_user` whose session listens on
//! `/_genesys`. May use: the reach, the users registry, `wire`.

use std::sync::Arc;

use serde_json::Value;

use super::reach::Reach;
use super::users::GenesysUsers;
use crate::wire::envelope::{envelope, GENESYS};

pub struct CometPush {
    reach: Reach,
    users: Arc<GenesysUsers>,
}

impl CometPush {
    pub fn new(reach: Reach, users: Arc<GenesysUsers>) -> Self {
        Self { reach, users }
    }
}

#[async_trait::async_trait]
impl push::Provider for CometPush {
    async fn send(&self, n: &push::Notification) -> push::Outcome {
        // A message that is JSON travels as JSON, anything else as text.
        let message: Value = serde_json::from_str(&n.message)
            .ok()
            .filter(|v: &Value| v.is_object() || v.is_array())
            .unwrap_or_else(|| Value::String(n.message.clone()));
        let Ok(raw) = serde_json::value::to_raw_value(&envelope(message, &n.tag)) else {
            return push::Outcome::Failed("cannot encode".into());
        };
        let Some(bayeux) = self.reach.bayeux() else {
            return push::Outcome::Retry("stopping".into());
        };
        // A clientId: this node's session, or (in a cluster) another node's.
        if let Some(session) = bayeux.session(&n.device_id) {
            return match bayeux.deliver(&session, GENESYS, &raw) {
                Ok(true) => push::Outcome::Delivered,
                _ => push::Outcome::Retry("the session's queue is full".into()),
            };
        }
        if let Some(bus) = self.reach.bus() {
            if bus.deliver(&n.device_id, GENESYS, &raw) && !bus.is_local(&n.device_id) {
                return push::Outcome::Delivered;
            }
        }
        // A gms_user: the session it listens on.
        match self.users.lookup(&n.device_id).await {
            Some(client_id) => {
                self.reach.deliver(&client_id, GENESYS, &raw);
                push::Outcome::Delivered
            }
            None => push::Outcome::Failed("no CometD session listens for this subscriber".into()),
        }
    }
}
