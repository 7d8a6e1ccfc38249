//! Which CometD session each `gms_user` listens on: remembered on this node
//! when a session of the user subscribes to `/_genesys`, and in the store
//! for the other nodes when the store is shared (on one node, what this node
//! remembers is the whole truth: a push to a user with no session costs no
//! store read). May use: `channels` (the store).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use channels::store::{check_key, Collection, Store, StoreError};
use parking_lot::Mutex;

/// How long a user's session is remembered in the store.
const TTL: Duration = Duration::from_secs(24 * 3600);

/// Which CometD session each `gms_user` listens on.
pub struct GenesysUsers {
    local: Mutex<HashMap<String, String>>,
    /// `None` on a store no other node reads.
    stored: Option<Collection<String>>,
}

impl GenesysUsers {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            local: Mutex::new(HashMap::new()),
            stored: store
                .shared()
                .then(|| Collection::by_id(store, "genesys-user")),
        })
    }

    pub fn subscribed(&self, user: &str, client_id: &str) {
        let previous = self
            .local
            .lock()
            .insert(user.to_owned(), client_id.to_owned());
        // The store hears of a new session only, not of every subscribe.
        let Some(stored) = self.stored.clone() else {
            return;
        };
        if previous.as_deref() == Some(client_id) {
            return;
        }
        let (user, client_id) = (user.to_owned(), client_id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = stored.put(&user, &client_id, Some(TTL)).await {
                tracing::warn!("/_genesys: remembering a subscriber: {e}");
            }
        });
    }

    /// The session this node knows for `user`.
    pub fn local(&self, user: &str) -> Option<String> {
        self.local.lock().get(user).cloned()
    }

    /// The session any node knows for `user`; an error is the store's,
    /// and passes (a name no store could hold is no user's).
    pub async fn lookup(&self, user: &str) -> Result<Option<String>, StoreError> {
        if let Some(found) = self.local(user) {
            return Ok(Some(found));
        }
        let Some(stored) = &self.stored else {
            return Ok(None);
        };
        if check_key("a gms_user", user).is_err() {
            return Ok(None);
        }
        Ok(stored.get(user).await?.map(|v| v.value))
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

#[cfg(test)]
mod tests {
    use channels::store::{MemoryStore, Write};

    use super::*;

    #[tokio::test]
    async fn a_shared_store_hears_of_a_new_session_not_of_every_subscribe() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::as_if_shared());
        let users = GenesysUsers::new(store.clone());
        for _ in 0..5 {
            users.subscribed("jane", "node.a");
        }
        users.subscribed("jane", "node.b");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let record = store.get("genesys-user", "jane").await.unwrap().unwrap();
        assert_eq!(record.version, 2, "one write per session");
        assert_eq!(users.local("jane").as_deref(), Some("node.b"));
    }

    #[tokio::test]
    async fn a_store_no_other_node_reads_is_neither_written_nor_read() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let users = GenesysUsers::new(store.clone());
        users.subscribed("jane", "node.a");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(store.get("genesys-user", "jane").await.unwrap().is_none());
        assert_eq!(
            users.lookup("jane").await.unwrap().as_deref(),
            Some("node.a")
        );
        // What another process once wrote is no session of this one.
        store
            .put("genesys-user", "john", Write::new(b"\"node.z\""))
            .await
            .unwrap();
        assert_eq!(users.lookup("john").await.unwrap(), None);
    }
}
