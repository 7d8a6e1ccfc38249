//! The GMS Storage API's data: named key/value areas with a time to live,
//! whose values are text or files. The HTTP surface is in the binary; this
//! module owns the rules (TTL fallback, owners of custom ids, merging on
//! update) and keeps the data in the store, where it expires.
//! May use: the store, ids.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::id::uuid;
use crate::store::{Collection, Store, StoreError};

/// The TTL GMS applies when the one asked for is not a positive number of
/// seconds.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// The longest TTL kept: Cassandra's limit (20 years), applied everywhere so
/// every backend keeps data for the same time.
pub const MAX_TTL: Duration = Duration::from_secs(630_720_000);

/// Reads a TTL path segment the GMS way: seconds, more than zero, anything
/// else gives [`DEFAULT_TTL`].
pub fn parse_ttl(segment: &str) -> Duration {
    match segment.trim().parse::<u64>() {
        Ok(0) | Err(_) => DEFAULT_TTL,
        Ok(secs) => Duration::from_secs(secs).min(MAX_TTL),
    }
}

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Item {
    Text {
        value: String,
    },
    File {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file_name: Option<String>,
        content_type: String,
        #[serde(with = "base64_bytes")]
        data: Vec<u8>,
    },
}

/// A storage area: its items by key, and for custom ids the `gms_user` that
/// created it (only that user reads it back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Area {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub items: BTreeMap<String, Item>,
}

impl Area {
    fn readable_by(&self, user: Option<&str>) -> bool {
        match &self.owner {
            None => true,
            Some(owner) => user == Some(owner.as_str()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No such area, expired, or owned by another `gms_user`: the three look
    /// the same from outside, so custom ids cannot be probed.
    #[error("storage data {0} not found")]
    NotFound(String),
    #[error("the gms_user header is required for storage with a custom id")]
    UserRequired,
    #[error("custom id {0} is in use by another user")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The Storage API over a store.
#[derive(Clone)]
pub struct Storage {
    areas: Collection<Area>,
}

impl Storage {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            areas: Collection::by_id(store, "storage"),
        }
    }

    /// Creates an area under a new random id.
    pub async fn create(
        &self,
        items: BTreeMap<String, Item>,
        ttl: Duration,
    ) -> Result<String, StorageError> {
        let area = Area { owner: None, items };
        Ok(self.areas.create_fresh(&area, Some(ttl), uuid).await?)
    }

    /// Creates (or, for its owner, replaces) the area with a custom id.
    pub async fn create_custom(
        &self,
        id: &str,
        user: Option<&str>,
        items: BTreeMap<String, Item>,
        ttl: Duration,
    ) -> Result<(), StorageError> {
        let user = user
            .filter(|u| !u.is_empty())
            .ok_or(StorageError::UserRequired)?;
        crate::store::check_key("a custom id", id)?;
        let area = Area {
            owner: Some(user.to_owned()),
            items,
        };
        self.areas
            .write_back(
                id,
                None,
                |_| Some(ttl),
                |old| match old {
                    Some(old) if !old.readable_by(Some(user)) => {
                        Err(StorageError::Taken(id.to_owned()))
                    }
                    _ => Ok(Some((area.clone(), ()))),
                },
            )
            .await?;
        Ok(())
    }

    /// Adds or replaces items of an existing area and gives it a new TTL.
    pub async fn update(
        &self,
        id: &str,
        user: Option<&str>,
        items: BTreeMap<String, Item>,
        ttl: Duration,
    ) -> Result<(), StorageError> {
        let not_found = || StorageError::NotFound(id.to_owned());
        if crate::store::check_key("a storage id", id).is_err() {
            return Err(not_found());
        }
        self.areas
            .modify(
                id,
                |_| Some(ttl),
                |area| {
                    if !area.readable_by(user) {
                        return Err(not_found());
                    }
                    area.items.extend(items.clone());
                    Ok(())
                },
            )
            .await?
            .ok_or_else(not_found)
            .map(drop)
    }

    pub async fn read(&self, id: &str, user: Option<&str>) -> Result<Area, StorageError> {
        Ok(self.readable(id, user).await?.value)
    }

    pub async fn delete(&self, id: &str, user: Option<&str>) -> Result<(), StorageError> {
        self.readable(id, user).await?;
        self.areas.delete(id).await?;
        Ok(())
    }

    async fn readable(
        &self,
        id: &str,
        user: Option<&str>,
    ) -> Result<crate::store::collection::Versioned<Area>, StorageError> {
        if crate::store::check_key("a storage id", id).is_err() {
            return Err(StorageError::NotFound(id.to_owned()));
        }
        match self.areas.get(id).await? {
            Some(area) if area.value.readable_by(user) => Ok(area),
            _ => Err(StorageError::NotFound(id.to_owned())),
        }
    }
}

pub(crate) mod base64_bytes {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_falls_back_to_thirty_seconds() {
        assert_eq!(parse_ttl("3600"), Duration::from_secs(3600));
        for bad in ["0", "-5", "abc", "", "1.5", "99999999999999999999999"] {
            assert_eq!(parse_ttl(bad), DEFAULT_TTL, "{bad}");
        }
        assert_eq!(parse_ttl("999999999999"), MAX_TTL);
    }

    #[test]
    fn files_round_trip_through_json() {
        let area = Area {
            owner: Some("u".into()),
            items: BTreeMap::from([
                ("t".into(), Item::Text { value: "v".into() }),
                (
                    "f".into(),
                    Item::File {
                        file_name: Some("a.bin".into()),
                        content_type: "application/octet-stream".into(),
                        data: vec![0, 255, 1],
                    },
                ),
            ]),
        };
        let json = serde_json::to_vec(&area).unwrap();
        assert_eq!(serde_json::from_slice::<Area>(&json).unwrap(), area);
    }
}
