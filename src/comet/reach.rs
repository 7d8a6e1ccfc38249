//! How a delivery reaches a CometD session wherever it lives: on this
//! node's engine, or through the cluster bus to the node that holds it
//! (clientIds name their node). May use: `cluster` (the bus).

use std::sync::{Arc, Weak};

use bayeux::Bayeux;
use serde_json::value::RawValue;

use crate::cluster::{deliver_to, Receipt, RedisBus};

/// How long a delivery to another node's session waits for its receipt.
pub const RECEIPT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// This node's engine and, in a cluster, the bus to the others.
#[derive(Clone)]
pub struct Reach {
    /// Weak: the engine owns the services that hold a `Reach`.
    bayeux: Weak<Bayeux>,
    bus: Option<Arc<RedisBus>>,
}

impl Reach {
    pub fn new(bayeux: &Arc<Bayeux>, bus: Option<Arc<RedisBus>>) -> Self {
        Self {
            bayeux: Arc::downgrade(bayeux),
            bus,
        }
    }

    /// The engine, unless it is gone (the node is stopping).
    pub fn bayeux(&self) -> Option<Arc<Bayeux>> {
        self.bayeux.upgrade()
    }

    /// Delivers to the session `client_id` and says what became of it: the
    /// session's node answers (this one at once, another within
    /// [`RECEIPT_WAIT`], else `None`).
    pub async fn deliver_confirmed(
        &self,
        client_id: &str,
        channel: &str,
        data: &RawValue,
    ) -> Option<Receipt> {
        match &self.bus {
            Some(bus) => {
                bus.deliver_confirmed(client_id, channel, data, RECEIPT_WAIT)
                    .await
            }
            None => Some(deliver_to(&*self.bayeux()?, client_id, channel, data)),
        }
    }

    /// Delivers `data` on `channel` to the session `client_id`: locally, or
    /// through the bus to its node.
    pub fn deliver(&self, client_id: &str, channel: &str, data: &RawValue) {
        if let Some(bus) = &self.bus {
            bus.deliver(client_id, channel, data);
            return;
        }
        if let Some(bayeux) = self.bayeux() {
            deliver_to(&bayeux, client_id, channel, data);
        }
    }
}
