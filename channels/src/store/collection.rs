//! Typed access to one collection of the store: values are serialised as
//! JSON (readable with `redis-cli` or `cqlsh` when something needs looking
//! at), and each type says which index entries find it. Every
//! read-modify-write of the services goes through [`Collection::modify`]
//! (one retry policy), and every record under a random id through
//! [`Collection::create_fresh`]. [`Logs`] are the same for the store's
//! logs: values of one type, as JSON. May use: the store interface.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{IndexEntry, LogEntry, Record, Result, Store, StoreError, Version, Write};

/// How many times a read-modify-write is tried: each lost compare-and-set
/// means another writer made progress, so a loser retries at once; this
/// many losses in a row is contention the caller should hear of.
pub const WRITE_ATTEMPTS: usize = 32;

/// How many random ids [`Collection::create_fresh`] tries. Ids carry 128
/// random bits: a second attempt already means a broken store, not chance.
const FRESH_ID_ATTEMPTS: usize = 4;

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
        Ok((to_json(self.name, value)?, (self.indexes)(value)))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T> {
        from_json(self.name, bytes)
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

    /// Stores `value` under a new id from `new_id` (tried again, a few
    /// times, if the id is taken); returns the id.
    pub async fn create_fresh(
        &self,
        value: &T,
        ttl: Option<Duration>,
        new_id: fn() -> String,
    ) -> Result<String> {
        let (bytes, indexes) = self.encode(value)?;
        let write = Write::new(&bytes).ttl(ttl).indexes(&indexes);
        let mut id = String::new();
        for _ in 0..FRESH_ID_ATTEMPTS {
            id = new_id();
            if self.store.create(self.name, &id, write).await?.is_some() {
                return Ok(id);
            }
        }
        Err(self.contended(&id))
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

    /// Changes the live record `id` in place: reads it, applies `change`,
    /// and writes it back with the TTL `ttl` gives for the new value, if no
    /// other writer got in between; else reads it again and retries (at most
    /// [`WRITE_ATTEMPTS`] times). `None` when there is no such record.
    /// `change` may run several times: it must only compute.
    pub async fn modify<R, E: From<StoreError>>(
        &self,
        id: &str,
        ttl: impl Fn(&T) -> Option<Duration>,
        change: impl FnMut(&mut T) -> std::result::Result<R, E>,
    ) -> std::result::Result<Option<(T, R)>, E> {
        self.modify_from(id, None, ttl, change).await
    }

    /// [`modify`](Self::modify), starting from a copy already read (read
    /// again only if it has changed since).
    pub async fn modify_from<R, E: From<StoreError>>(
        &self,
        id: &str,
        read: Option<Versioned<T>>,
        ttl: impl Fn(&T) -> Option<Duration>,
        mut change: impl FnMut(&mut T) -> std::result::Result<R, E>,
    ) -> std::result::Result<Option<(T, R)>, E> {
        self.write_back(id, read, ttl, |current| match current {
            None => Ok(None),
            Some(mut value) => {
                let out = change(&mut value)?;
                Ok(Some((value, out)))
            }
        })
        .await
    }

    /// The one retry loop under [`modify`](Self::modify), which also creates:
    /// `decide` gets the live value (`None`: there is none) and returns the
    /// value to write, or `None` to write nothing. A new value is created
    /// (if the id is still free), a changed one compare-and-set.
    pub async fn write_back<R, E: From<StoreError>>(
        &self,
        id: &str,
        mut read: Option<Versioned<T>>,
        ttl: impl Fn(&T) -> Option<Duration>,
        mut decide: impl FnMut(Option<T>) -> std::result::Result<Option<(T, R)>, E>,
    ) -> std::result::Result<Option<(T, R)>, E> {
        for _ in 0..WRITE_ATTEMPTS {
            let current = match read.take() {
                Some(r) => Some(r),
                None => self.get(id).await?,
            };
            let version = current.as_ref().map(|c| c.version);
            let Some((value, out)) = decide(current.map(|c| c.value))? else {
                return Ok(None);
            };
            let written = match version {
                None => self.create(id, &value, ttl(&value)).await?,
                Some(v) => self.update(id, v, &value, ttl(&value)).await?,
            };
            if written.is_some() {
                return Ok(Some((value, out)));
            }
        }
        Err(self.contended(id).into())
    }

    fn contended(&self, id: &str) -> StoreError {
        StoreError::Contended {
            collection: self.name.to_owned(),
            id: id.to_owned(),
        }
    }

    /// How many live records have the index entry `name = value`.
    pub async fn count(&self, name: &str, value: &str) -> Result<u64> {
        self.store.count(self.name, name, value).await
    }

    pub async fn delete(&self, id: &str) -> Result<bool> {
        self.store.delete(self.name, id).await
    }

    /// The values whose entry `name = value` has an order of at most
    /// `until`, lowest first, at most `limit` (see `Store::find_ordered`).
    pub async fn find_ordered(
        &self,
        name: &str,
        value: &str,
        until: u64,
        limit: usize,
    ) -> Result<Vec<(String, Versioned<T>)>> {
        let found = self
            .store
            .find_ordered(self.name, name, value, until, limit)
            .await?;
        self.decode_all(found)
    }

    pub async fn find(
        &self,
        name: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<(String, Versioned<T>)>> {
        let found = self.store.find(self.name, name, value, limit).await?;
        self.decode_all(found)
    }

    fn decode_all(&self, found: Vec<(String, Record)>) -> Result<Vec<(String, Versioned<T>)>> {
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

fn to_json<T: Serialize>(collection: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Encode {
        collection: collection.to_owned(),
        message: e.to_string(),
    })
}

fn from_json<T: DeserializeOwned>(collection: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        collection: collection.to_owned(),
        message: e.to_string(),
    })
}

/// The logs of one collection, each a sequence of `E` values by index.
pub struct Logs<E> {
    store: Arc<dyn Store>,
    name: &'static str,
    _values: PhantomData<fn() -> E>,
}

impl<E> Clone for Logs<E> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            name: self.name,
            _values: PhantomData,
        }
    }
}

impl<E: Serialize + DeserializeOwned> Logs<E> {
    pub fn new(store: Arc<dyn Store>, name: &'static str) -> Self {
        Self {
            store,
            name,
            _values: PhantomData,
        }
    }

    /// [`Store::write_log`] of `values` at their indexes.
    pub async fn write<'a>(
        &self,
        log: &str,
        values: impl IntoIterator<Item = (u64, &'a E)>,
        ttl: Option<Duration>,
    ) -> Result<()>
    where
        E: 'a,
    {
        let entries = values
            .into_iter()
            .map(|(index, value)| {
                Ok(LogEntry {
                    index,
                    value: to_json(self.name, value)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.store.write_log(self.name, log, &entries, ttl).await
    }

    /// The log's values from index `from` on, at most `limit`.
    pub async fn read(&self, log: &str, from: u64, limit: usize) -> Result<Vec<E>> {
        let entries = self.store.read_log(self.name, log, from, limit).await?;
        entries
            .iter()
            .map(|e| from_json(self.name, &e.value))
            .collect()
    }

    /// [`Store::keep_log`].
    pub async fn keep(&self, log: &str, ttl: Duration) -> Result<()> {
        self.store.keep_log(self.name, log, ttl).await
    }
}
