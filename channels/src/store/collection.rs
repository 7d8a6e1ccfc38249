//! Typed access to one collection of the store: values are serialised as
//! JSON (readable with `redis-cli` or `cqlsh` when something needs looking
//! at), and each type says which index entries find it.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{IndexEntry, Result, Store, StoreError, Version, Write};

/// A value read from a collection, with the version to update it against.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: Version,
    pub expires_at: Option<u64>,
}

/// One collection of `T` values.
pub struct Collection<T> {
    store: Arc<dyn Store>,
    name: &'static str,
    indexes: fn(&T) -> Vec<IndexEntry>,
    _values: PhantomData<fn() -> T>,
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            name: self.name,
            indexes: self.indexes,
            _values: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Collection<T> {
    /// `indexes` names the entries `find` looks a value up by.
    pub fn new(
        store: Arc<dyn Store>,
        name: &'static str,
        indexes: fn(&T) -> Vec<IndexEntry>,
    ) -> Self {
        Self {
            store,
            name,
            indexes,
            _values: PhantomData,
        }
    }

    /// A collection whose values are only found by id.
    pub fn by_id(store: Arc<dyn Store>, name: &'static str) -> Self {
        Self::new(store, name, |_| Vec::new())
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn encode(&self, value: &T) -> Result<(Vec<u8>, Vec<IndexEntry>)> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Encode {
            collection: self.name.to_owned(),
            message: e.to_string(),
        })?;
        Ok((bytes, (self.indexes)(value)))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
            collection: self.name.to_owned(),
            message: e.to_string(),
        })
    }

    pub async fn create(
        &self,
        id: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>> {
        let (bytes, indexes) = self.encode(value)?;
        let write = Write::new(&bytes).ttl(ttl).indexes(&indexes);
        self.store.create(self.name, id, write).await
    }

    pub async fn put(&self, id: &str, value: &T, ttl: Option<Duration>) -> Result<Version> {
        let (bytes, indexes) = self.encode(value)?;
        let write = Write::new(&bytes).ttl(ttl).indexes(&indexes);
        self.store.put(self.name, id, write).await
    }

    pub async fn update(
        &self,
        id: &str,
        expected: Version,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>> {
        let (bytes, indexes) = self.encode(value)?;
        let write = Write::new(&bytes).ttl(ttl).indexes(&indexes);
        self.store.update(self.name, id, expected, write).await
    }

    pub async fn get(&self, id: &str) -> Result<Option<Versioned<T>>> {
        match self.store.get(self.name, id).await? {
            None => Ok(None),
            Some(r) => Ok(Some(Versioned {
                value: self.decode(&r.value)?,
                version: r.version,
                expires_at: r.expires_at,
            })),
        }
    }

    pub async fn delete(&self, id: &str) -> Result<bool> {
        self.store.delete(self.name, id).await
    }

    pub async fn find(
        &self,
        name: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<(String, Versioned<T>)>> {
        let found = self.store.find(self.name, name, value, limit).await?;
        found
            .into_iter()
            .map(|(id, r)| {
                Ok((
                    id,
                    Versioned {
                        value: self.decode(&r.value)?,
                        version: r.version,
                        expires_at: r.expires_at,
                    },
                ))
            })
            .collect()
    }
}
