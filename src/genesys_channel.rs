//! `/_genesys`, the channel GMS delivers to CometD clients of its classic
//! APIs (Chat API v1 now, notifications with push): each delivery is
//! `{"message": ..., "id": <32 hex>, "tag": ...}`. A client names its user
//! with the `gms_user` header, so when a session with a user subscribes to
//! `/_genesys`, that user's deliveries go to it (remembered on this node and
//! in the store, for the other nodes).
//!
//! The same extension handles `/meta/disconnect` with
//! `ext.transcriptPosition`: the app goes to the background, its chats stop
//! pushing to it and tell the agents (push delivery comes with push).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bayeux::ext::Extension;
use bayeux::message::Incoming;
use bayeux::Session;
use channels::chat::Chats;
use channels::store::{Collection, Store};
use parking_lot::Mutex;

pub const CHANNEL: &str = "/_genesys";
/// How long a user's session is remembered in the store.
const TTL: Duration = Duration::from_secs(24 * 3600);

/// Which CometD session each `gms_user` listens on.
pub struct GenesysUsers {
    local: Mutex<HashMap<String, String>>,
    stored: Collection<String>,
}

impl GenesysUsers {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            local: Mutex::new(HashMap::new()),
            stored: Collection::by_id(store, "genesys-user"),
        })
    }

    fn subscribed(self: &Arc<Self>, user: &str, client_id: &str) {
        self.local
            .lock()
            .insert(user.to_owned(), client_id.to_owned());
        let (this, user, client_id) = (self.clone(), user.to_owned(), client_id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = this.stored.put(&user, &client_id, Some(TTL)).await {
                tracing::warn!("/_genesys: remembering a subscriber: {e}");
            }
        });
    }

    /// The session this node knows for `user`.
    pub fn local(&self, user: &str) -> Option<String> {
        self.local.lock().get(user).cloned()
    }

    /// The session any node knows for `user`.
    pub async fn lookup(&self, user: &str) -> Option<String> {
        if let Some(found) = self.local(user) {
            return Some(found);
        }
        self.stored.get(user).await.ok().flatten().map(|v| v.value)
    }

    /// A session of `user` ended: forget it here (unless the user has
    /// moved to another session already).
    pub fn removed(&self, user: &str, client_id: &str) {
        let mut local = self.local.lock();
        if local.get(user).is_some_and(|c| c == client_id) {
            local.remove(user);
        }
    }
}

pub struct GenesysChannel {
    users: Arc<GenesysUsers>,
    chats: Chats,
}

impl GenesysChannel {
    pub fn new(users: Arc<GenesysUsers>, chats: Chats) -> Self {
        Self { users, chats }
    }
}

fn names_genesys(message: &Incoming) -> bool {
    match &message.subscription {
        Some(bayeux::message::OneOrMany::One(c)) => c == CHANNEL,
        Some(bayeux::message::OneOrMany::Many(list)) => list.iter().any(|c| c == CHANNEL),
        None => false,
    }
}

impl Extension for GenesysChannel {
    fn incoming(&self, session: Option<&Session>, message: &mut Incoming) -> bool {
        let Some(session) = session else { return true };
        match message.channel.as_deref() {
            Some("/meta/subscribe") if names_genesys(message) => {
                if let Some(user) = session.identity() {
                    self.users.subscribed(user, session.id());
                }
            }
            Some("/meta/disconnect") => {
                let background = message
                    .ext_object()
                    .is_some_and(|ext| ext.contains_key("transcriptPosition"));
                if background {
                    let chats = self.chats.clone();
                    let client_id = session.id().to_owned();
                    let user = session.identity().map(str::to_owned);
                    tokio::spawn(async move {
                        if let Err(e) = chats.to_background(&client_id, user.as_deref()).await {
                            tracing::warn!("chat to background: {e}");
                        }
                    });
                }
            }
            _ => {}
        }
        true
    }
}

/// The `comet` push type: an event to a subscriber's CometD session on
/// `/_genesys`, as `{message, id, tag}`. The subscription's device id is the
/// session's clientId, or the `gms_user` whose session listens on
/// `/_genesys`.
pub struct CometPush {
    bayeux: std::sync::Weak<bayeux::Bayeux>,
    bus: Arc<std::sync::OnceLock<Arc<gmshub::cluster::RedisBus>>>,
    users: Arc<GenesysUsers>,
}

impl CometPush {
    pub fn new(
        bayeux: &Arc<bayeux::Bayeux>,
        bus: Arc<std::sync::OnceLock<Arc<gmshub::cluster::RedisBus>>>,
        users: Arc<GenesysUsers>,
    ) -> Self {
        Self {
            bayeux: Arc::downgrade(bayeux),
            bus,
            users,
        }
    }
}

#[async_trait::async_trait]
impl push::Provider for CometPush {
    async fn send(&self, n: &push::Notification) -> push::Outcome {
        // A message that is JSON travels as JSON, anything else as text.
        let message: serde_json::Value = serde_json::from_str(&n.message)
            .ok()
            .filter(|v: &serde_json::Value| v.is_object() || v.is_array())
            .unwrap_or_else(|| serde_json::Value::String(n.message.clone()));
        let id: [u8; 16] = rand::random();
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let envelope = serde_json::json!({"message": message, "id": id, "tag": n.tag});
        let Ok(raw) = serde_json::value::to_raw_value(&envelope) else {
            return push::Outcome::Failed("cannot encode".into());
        };
        let bus = self.bus.get();
        let Some(bayeux) = self.bayeux.upgrade() else {
            return push::Outcome::Retry("stopping".into());
        };
        // A clientId: this node's session, or (in a cluster) another node's.
        if let Some(session) = bayeux.session(&n.device_id) {
            return match bayeux.deliver(&session, CHANNEL, &raw) {
                Ok(true) => push::Outcome::Delivered,
                _ => push::Outcome::Retry("the session's queue is full".into()),
            };
        }
        if let Some(bus) = bus {
            if bus.deliver(&n.device_id, CHANNEL, &raw) && !bus.is_local(&n.device_id) {
                return push::Outcome::Delivered;
            }
        }
        // A gms_user: the session it listens on.
        match self.users.lookup(&n.device_id).await {
            Some(client_id) => {
                crate::chat_comet::deliver_to(&self.bayeux, bus, &client_id, CHANNEL, &raw);
                push::Outcome::Delivered
            }
            None => push::Outcome::Failed("no CometD session listens for this subscriber".into()),
        }
    }
}
