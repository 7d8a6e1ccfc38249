//! How a delivery reaches a CometD session wherever it lives: on this
//! node's engine, or through the cluster bus to the node that holds it
//! (clientIds name their node). May use: `cluster` (the bus).

use std::sync::{Arc, Weak};

use bayeux::Bayeux;
use serde_json::value::RawValue;

use crate::cluster::RedisBus;

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

    pub fn bus(&self) -> Option<&Arc<RedisBus>> {
        self.bus.as_ref()
    }

    /// Delivers `data` on `channel` to the session `client_id`: locally, or
    /// through the bus to its node.
    pub fn deliver(&self, client_id: &str, channel: &str, data: &RawValue) {
        if let Some(bus) = &self.bus {
            bus.deliver(client_id, channel, data);
            return;
        }
        let Some(bayeux) = self.bayeux() else {
            return;
        };
        if let Some(session) = bayeux.session(client_id) {
            let _ = bayeux.deliver(&session, channel, data);
        }
    }
}
