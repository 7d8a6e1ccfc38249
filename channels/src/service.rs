//! Service instances: what `POST /genesys/1/service/{name}` (and the chat
//! v1 request, and callbacks) create, kept in the store for their TTL. An
//! instance may own a storage area (its `_data_id`), read and written
//! through `/genesys/1/service/{id}/storage`.
//! May use: the store, storage, ids.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::storage::{Area, Item, Storage, StorageError};
use crate::store::{now_ms, Collection, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInstance {
    /// The configured service it is an instance of.
    pub service: String,
    /// Its storage area, if it has one (`_data_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_id: Option<String>,
}

#[derive(Clone)]
pub struct Services {
    instances: Collection<ServiceInstance>,
    storage: Storage,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, storage: Storage) -> Self {
        Self {
            instances: Collection::by_id(store, "service"),
            storage,
        }
    }

    /// Creates an instance that lives for `ttl`; returns its id.
    pub async fn create(
        &self,
        instance: &ServiceInstance,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        self.instances
            .create_fresh(instance, Some(ttl), crate::id::uuid)
            .await
    }

    pub async fn get(&self, id: &str) -> Result<Option<ServiceInstance>, StoreError> {
        if crate::store::check_key("a service id", id).is_err() {
            return Ok(None);
        }
        Ok(self.instances.get(id).await?.map(|v| v.value))
    }

    /// The instance's storage area (empty if it has none yet).
    pub async fn read_storage(&self, id: &str) -> Result<Area, StorageError> {
        let instance = self
            .get(id)
            .await?
            .ok_or_else(|| StorageError::NotFound(id.to_owned()))?;
        match instance.data_id {
            None => Ok(Area::default()),
            Some(data_id) => match self.storage.read(&data_id, None).await {
                Err(StorageError::NotFound(_)) => Ok(Area::default()),
                other => other,
            },
        }
    }

    /// Adds items to the instance's area, creating the area (with the
    /// instance's remaining lifetime) on first use.
    pub async fn write_storage(
        &self,
        id: &str,
        items: BTreeMap<String, Item>,
    ) -> Result<(), StorageError> {
        let not_found = || StorageError::NotFound(id.to_owned());
        let current = self.instances.get(id).await?.ok_or_else(not_found)?;
        let ttl = current
            .expires_at
            .map(|t| Duration::from_millis(t.saturating_sub(now_ms()).max(1)))
            .unwrap_or(crate::storage::MAX_TTL);
        let stale = current.value.data_id.clone();
        if let Some(data_id) = &stale {
            match self.storage.update(data_id, None, items.clone(), ttl).await {
                Err(StorageError::NotFound(_)) => {} // expired: make a new one
                other => return other,
            }
        }
        let data_id = self.storage.create(items.clone(), ttl).await?;
        // Link it, unless another writer linked an area first.
        let linked = self
            .instances
            .modify_from(
                id,
                Some(current),
                |_| Some(ttl),
                |instance| {
                    let theirs = instance
                        .data_id
                        .clone()
                        .filter(|d| Some(d) != stale.as_ref());
                    if theirs.is_none() {
                        instance.data_id = Some(data_id.clone());
                    }
                    Ok::<_, StorageError>(theirs)
                },
            )
            .await?;
        match linked {
            Some((_, None)) => Ok(()),
            other => {
                self.storage.delete(&data_id, None).await?;
                match other {
                    Some((_, Some(theirs))) => self.storage.update(&theirs, None, items, ttl).await,
                    _ => Err(not_found()),
                }
            }
        }
    }

    /// Removes the instance's area (the instance stays).
    pub async fn delete_storage(&self, id: &str) -> Result<(), StorageError> {
        let instance = self
            .get(id)
            .await?
            .ok_or_else(|| StorageError::NotFound(id.to_owned()))?;
        if let Some(data_id) = instance.data_id {
            match self.storage.delete(&data_id, None).await {
                Err(StorageError::NotFound(_)) | Ok(()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn text(v: &str) -> Item {
        Item::Text { value: v.into() }
    }

    #[tokio::test]
    async fn an_instance_owns_a_storage_area() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let storage = Storage::new(store.clone());
        let services = Services::new(store, storage.clone());
        let instance = ServiceInstance {
            service: "request-chat".into(),
            data_id: None,
        };
        let id = services
            .create(&instance, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(services.read_storage(&id).await.unwrap().items.is_empty());

        services
            .write_storage(&id, BTreeMap::from([("a".into(), text("1"))]))
            .await
            .unwrap();
        services
            .write_storage(&id, BTreeMap::from([("b".into(), text("2"))]))
            .await
            .unwrap();
        let area = services.read_storage(&id).await.unwrap();
        assert_eq!(
            area.items,
            BTreeMap::from([("a".into(), text("1")), ("b".into(), text("2"))])
        );
        // The area is a Storage API area like any other (its `_data_id`).
        let data_id = services.get(&id).await.unwrap().unwrap().data_id.unwrap();
        assert_eq!(storage.read(&data_id, None).await.unwrap(), area);

        services.delete_storage(&id).await.unwrap();
        assert!(services.read_storage(&id).await.unwrap().items.is_empty());
        assert!(matches!(
            services.read_storage("unknown").await,
            Err(StorageError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn the_area_lives_as_long_as_its_instance() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let services = Services::new(store.clone(), Storage::new(store));
        let instance = ServiceInstance {
            service: "s".into(),
            data_id: None,
        };
        let id = services
            .create(&instance, Duration::from_millis(300))
            .await
            .unwrap();
        services
            .write_storage(&id, BTreeMap::from([("k".into(), text("v"))]))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(matches!(
            services.read_storage(&id).await,
            Err(StorageError::NotFound(_))
        ));
    }
}
