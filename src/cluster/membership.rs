//! Node membership: every node keeps a record of itself in the store's
//! `node` collection, renewed every heartbeat (`[cluster]
//! heartbeat-interval`, 5 s) with a TTL of three heartbeats. The live records are the cluster; nothing else has to notice
//! that a node died.

use std::sync::Arc;
use std::time::Duration;

use channels::store::{Collection, IndexEntry, Store, StoreError};
use serde::{Deserialize, Serialize};

/// What a node says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    /// The address its HTTP server listens on.
    pub address: String,
    pub cluster: String,
    /// Milliseconds since the Unix epoch.
    pub started_at: u64,
    pub last_seen: u64,
    /// Random, per process: tells a node from another started with its id.
    #[serde(default)]
    pub instance: String,
}

/// Why a node may not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(
        "another node with node id {id} is alive at {address} (its membership record is being \
         renewed): give every node its own [server] node-id"
    )]
    Taken { id: String, address: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Membership {
    me: NodeInfo,
    clustered: bool,
    heartbeat: Duration,
    nodes: Collection<NodeInfo>,
}

impl Membership {
    pub fn new(
        store: Arc<dyn Store>,
        id: String,
        address: String,
        cluster: String,
        clustered: bool,
        heartbeat: Duration,
    ) -> Self {
        let now = channels::store::now_ms();
        Self {
            me: NodeInfo {
                id,
                address,
                cluster,
                started_at: now,
                last_seen: now,
                instance: channels::id::token(),
            },
            clustered,
            heartbeat,
            nodes: Collection::new(store, "node", |n: &NodeInfo| {
                vec![IndexEntry::new("cluster", &n.cluster)]
            }),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.me.id
    }

    pub fn clustered(&self) -> bool {
        self.clustered
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        self.nodes.store()
    }

    /// Takes this node's place in the membership: refused while another
    /// live process renews a record under the same id. A record left by a
    /// previous run of this node (a crash) is told apart by not being renewed
    /// within a heartbeat, so a restart waits that long, and only then. A
    /// node alone (no cluster) has nothing to check.
    pub async fn join(&self) -> Result<(), JoinError> {
        let found = match self.clustered {
            true => self.nodes.get(&self.me.id).await?,
            false => None,
        };
        if let Some(found) = found {
            if found.value.instance != self.me.instance {
                tokio::time::sleep(self.heartbeat + self.heartbeat / 2).await;
                if let Some(again) = self.nodes.get(&self.me.id).await? {
                    if again.value.last_seen != found.value.last_seen {
                        return Err(JoinError::Taken {
                            id: self.me.id.clone(),
                            address: again.value.address,
                        });
                    }
                }
            }
        }
        Ok(self.beat().await?)
    }

    /// Writes this node's record once.
    pub async fn beat(&self) -> Result<(), StoreError> {
        let mut me = self.me.clone();
        me.last_seen = channels::store::now_ms();
        self.nodes
            .put(&me.id, &me, Some(self.heartbeat * 3))
            .await
            .map(drop)
    }

    /// Renews this node's record until it is dropped.
    pub fn spawn_heartbeat(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::downgrade(self);
        let mut every = tokio::time::interval(self.heartbeat);
        tokio::spawn(async move {
            loop {
                every.tick().await;
                let Some(this) = this.upgrade() else { return };
                if let Err(e) = this.beat().await {
                    tracing::warn!("node heartbeat: {e}");
                }
            }
        })
    }

    /// Removes this node's record (a clean stop), so others see it go at once.
    pub async fn leave(&self) {
        if let Err(e) = self.nodes.delete(&self.me.id).await {
            tracing::warn!("leaving the cluster: {e}");
        }
    }

    /// The live nodes of this cluster, this one included, as the store has
    /// them: an error is the store's (and means this node cannot serve).
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        let found = self.nodes.find("cluster", &self.me.cluster, 1000).await?;
        let mut nodes: Vec<NodeInfo> = found.into_iter().map(|(_, n)| n.value).collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }
}
