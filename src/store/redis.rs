//! The Redis store, shared by the nodes of a cluster (a standalone Redis or
//! one managed by Sentinel; Redis Cluster is not supported, since each write
//! touches a record and its index keys in one script).
//!
//! Layout, under the key prefix (`[redis] key-prefix`, default `gmshub`):
//! - `P:r:C:ID` — a hash per record: `v` value, `n` version, `x` expiry
//!   (ms since the epoch), `i` its index entries (JSON); Redis expires the
//!   key itself (`PEXPIREAT`), so an expired record is gone for every reader;
//! - `P:i:C:NAME:VALUE` — a sorted set of the ids with that entry, scored by
//!   expiry, that expires with its longest-lived member; `find` drops
//!   members whose record has expired;
//! - `P:o:C:NAME:VALUE` — for entries with an order, the same ids scored by
//!   it, read a page at a time by `find_ordered` (which drops members whose
//!   record has gone);
//! - `P:l:C:LOG` — a list per log: `RPUSH` gives the next index (the list's
//!   length), `LRANGE` reads a range; the key expires with its
//!   longest-lived entry.
//!
//! Every write is one Lua script, so a record and its index entries change
//! together, and compare-and-set is atomic.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use channels::store::{
    check_consecutive, check_key, expiry, now_ms, LogEntry, Record, Result, Store, StoreError,
    Version, Write,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

const BACKEND: &str = "redis";

/// Shared by the write scripts: replace a record and its index entries.
const WRITE_LUA: &str = r#"
-- Ordered sets sit beside the index sets: P:o:C: for P:i:C: (the key
-- prefix P has no ':').
local function ordered(ixprefix)
  return (string.gsub(ixprefix, ':i:', ':o:', 1))
end
local function unindex(rec, ixprefix, id)
  local old = redis.call('HGET', rec, 'i')
  if old then
    local oprefix = ordered(ixprefix)
    for _, e in ipairs(cjson.decode(old)) do
      redis.call('ZREM', ixprefix .. e[1] .. ':' .. e[2], id)
      if e[3] then redis.call('ZREM', oprefix .. e[1] .. ':' .. e[2], id) end
    end
  end
end
-- A set's key lives as long as its longest-lived member.
local function keep(key, expires, existed)
  if expires == '' then
    redis.call('PERSIST', key)
  elseif existed == 0 then
    redis.call('PEXPIREAT', key, expires)
  else
    redis.call('PEXPIREAT', key, expires, 'GT')
  end
end
local function write(rec, ixprefix, id, version, value, expires, indexes)
  unindex(rec, ixprefix, id)
  redis.call('DEL', rec)
  redis.call('HSET', rec, 'v', value, 'n', version, 'i', indexes)
  local score = '+inf'
  if expires ~= '' then
    redis.call('HSET', rec, 'x', expires)
    redis.call('PEXPIREAT', rec, expires)
    score = expires
  end
  local oprefix = ordered(ixprefix)
  for _, e in ipairs(cjson.decode(indexes)) do
    local ik = ixprefix .. e[1] .. ':' .. e[2]
    local existed = redis.call('EXISTS', ik)
    redis.call('ZADD', ik, score, id)
    keep(ik, expires, existed)
    if e[3] then
      local ok = oprefix .. e[1] .. ':' .. e[2]
      existed = redis.call('EXISTS', ok)
      redis.call('ZADD', ok, e[3], id)
      keep(ok, expires, existed)
    end
  end
end
-- KEYS[1] record; ARGV: 1 index prefix, 2 value, 3 expiry or '', 4 index JSON, 5 id, 6 expected version
"#;

const CREATE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
write(KEYS[1], ARGV[1], ARGV[5], 1, ARGV[2], ARGV[3], ARGV[4])
return 1
"#;

const PUT_LUA: &str = r#"
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0') + 1
write(KEYS[1], ARGV[1], ARGV[5], n, ARGV[2], ARGV[3], ARGV[4])
return n
"#;

const UPDATE_LUA: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'n')
if not cur or tonumber(cur) ~= tonumber(ARGV[6]) then return false end
local n = tonumber(cur) + 1
write(KEYS[1], ARGV[1], ARGV[5], n, ARGV[2], ARGV[3], ARGV[4])
return n
"#;

const DELETE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
unindex(KEYS[1], ARGV[1], ARGV[5])
redis.call('DEL', KEYS[1])
return 1
"#;

/// Reads the records of a page of ids, dropping from `set` those whose
/// record has gone; at most `PAGES` pages of `limit` ids: the cost of a
/// call is bounded by its limit, never by the size of the set.
const PAGED_LUA: &str = r#"
local PAGES = 4
local function collect(set, page, limit, records)
  local out = {}
  local n = 0
  local offset = 0
  for _ = 1, PAGES do
    local ids = page(offset, limit)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      local r = redis.call('HMGET', records .. id, 'v', 'n', 'x')
      if r[1] then
        out[#out + 1] = id
        out[#out + 1] = r[1]
        out[#out + 1] = r[2]
        out[#out + 1] = r[3] or ''
        n = n + 1
        if n >= limit then return out end
      else
        redis.call('ZREM', set, id)
        offset = offset - 1
      end
    end
    offset = offset + #ids
  end
  return out
end
"#;

/// KEYS[1] index key; ARGV: 1 now, 2 limit, 3 record key prefix.
/// Returns id, value, version, expiry ('' for none) for each live record.
const FIND_LUA: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local limit = tonumber(ARGV[2])
return collect(KEYS[1], function(offset, n)
  return redis.call('ZRANGE', KEYS[1], offset, offset + n - 1)
end, limit, ARGV[3])
"#;

/// KEYS[1] ordered key; ARGV: 1 until, 2 limit, 3 record key prefix.
const FIND_ORDERED_LUA: &str = r#"
local limit = tonumber(ARGV[2])
return collect(KEYS[1], function(offset, n)
  return redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', offset, n)
end, limit, ARGV[3])
"#;

/// Shared by the log scripts: the list `key` lives until `expires` ('':
/// for ever), or longer if an entry already does.
const KEEP_LUA: &str = r#"
local function keep(key, expires, fresh)
  if expires == '' then
    redis.call('PERSIST', key)
  elseif fresh then
    redis.call('PEXPIREAT', key, expires)
  else
    redis.call('PEXPIREAT', key, expires, 'GT')
  end
end
"#;

/// KEYS[1] the log; ARGV: 1 value, 2 expiry or ''. Returns the index.
const APPEND_LUA: &str = r#"
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
keep(KEYS[1], ARGV[2], n == 1)
return n
"#;

/// KEYS[1] the log; ARGV: 1 the first entry's index, 2 expiry or '', 3..
/// the values. Pushes those past the list's end; returns -1 (and pushes
/// nothing) if they would leave a gap.
const WRITE_LOG_LUA: &str = r#"
local n = redis.call('LLEN', KEYS[1])
local first = tonumber(ARGV[1])
if first > n + 1 then
  return -1
end
local pushed = 0
for i = 3 + n - first + 1, #ARGV do
  redis.call('RPUSH', KEYS[1], ARGV[i])
  pushed = pushed + 1
end
if pushed > 0 then
  keep(KEYS[1], ARGV[2], n == 0)
end
return n
"#;

struct Scripts {
    create: Script,
    put: Script,
    update: Script,
    delete: Script,
    find: Script,
    find_ordered: Script,
    append: Script,
    write_log: Script,
}

pub struct Redis {
    conn: ConnectionManager,
    prefix: String,
    scripts: Scripts,
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        message: e.to_string(),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt {
        backend: BACKEND,
        message: what.to_owned(),
    }
}

impl Redis {
    /// Connects (failing at once if Redis cannot be reached); afterwards the
    /// connection is re-established by itself when it drops.
    pub async fn open(url: &str, prefix: &str) -> Result<Arc<Self>> {
        if prefix.is_empty() || prefix.contains(':') {
            return Err(StoreError::Invalid(
                "[redis] key-prefix must be non-empty, without ':'".into(),
            ));
        }
        let client = redis::Client::open(url).map_err(|e| failed(format!("[redis] url: {e}")))?;
        // One plain attempt first, so that a Redis that is not there stops
        // the start at once instead of after the manager's retries.
        let unreachable =
            |e: &dyn std::fmt::Display| failed(format!("cannot connect to {}: {e}", redact(url)));
        let probe = tokio::time::timeout(
            Duration::from_secs(3),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|e| unreachable(&e))?
        .map_err(|e| unreachable(&e))?;
        drop(probe);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| unreachable(&e))?;
        let script = |body: &str| Script::new(&format!("{WRITE_LUA}{body}"));
        Ok(Arc::new(Self {
            conn,
            prefix: prefix.to_owned(),
            scripts: Scripts {
                create: script(CREATE_LUA),
                put: script(PUT_LUA),
                update: script(UPDATE_LUA),
                delete: script(DELETE_LUA),
                find: Script::new(&format!("{PAGED_LUA}{FIND_LUA}")),
                find_ordered: Script::new(&format!("{PAGED_LUA}{FIND_ORDERED_LUA}")),
                append: Script::new(&format!("{KEEP_LUA}{APPEND_LUA}")),
                write_log: Script::new(&format!("{KEEP_LUA}{WRITE_LOG_LUA}")),
            },
        }))
    }

    /// The connection, for the cluster bus's commands.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn record_prefix(&self, collection: &str) -> String {
        format!("{}:r:{collection}:", self.prefix)
    }

    fn index_prefix(&self, collection: &str) -> String {
        format!("{}:i:{collection}:", self.prefix)
    }

    fn ordered_prefix(&self, collection: &str) -> String {
        format!("{}:o:{collection}:", self.prefix)
    }

    fn log_key(&self, collection: &str, log: &str) -> Result<String> {
        check_name(collection)?;
        check_key("a log id", log)?;
        Ok(format!("{}:l:{collection}:{log}", self.prefix))
    }

    /// Runs `find` or `find_ordered` (their answers are the same shape).
    async fn found(
        &self,
        script: &Script,
        key: String,
        bound: u64,
        limit: usize,
        collection: &str,
    ) -> Result<Vec<(String, Record)>> {
        let mut conn = self.conn.clone();
        let flat: Vec<Vec<u8>> = script
            .key(key)
            .arg(bound)
            .arg(limit.clamp(1, 100_000))
            .arg(self.record_prefix(collection))
            .invoke_async(&mut conn)
            .await
            .map_err(failed)?;
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| corrupt("non-UTF-8 id"))
        };
        let number = |b: &[u8]| -> Result<Option<u64>> {
            if b.is_empty() {
                return Ok(None);
            }
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(|| corrupt("bad number"))
        };
        flat.chunks(4)
            .map(|c| match c {
                [id, v, n, x] => Ok((
                    text(id)?,
                    Record {
                        value: v.clone(),
                        version: number(n)?.ok_or_else(|| corrupt("no version"))?,
                        expires_at: number(x)?,
                    },
                )),
                _ => Err(corrupt("find returned a partial row")),
            })
            .collect()
    }

    async fn write(
        &self,
        script: &Script,
        collection: &str,
        id: &str,
        w: Write<'_>,
        expected: Option<Version>,
    ) -> Result<Option<i64>> {
        check_name(collection)?;
        check_key("an id", id)?;
        let mut pairs = Vec::with_capacity(w.indexes.len());
        for ix in w.indexes {
            check_name(&ix.name)?;
            check_key("an index value", &ix.value)?;
            // [name, value] or [name, value, order]: never a JSON null,
            // which Lua's cjson reads as a true value.
            pairs.push(match ix.order {
                Some(order) => serde_json::json!([ix.name, ix.value, order]),
                None => serde_json::json!([ix.name, ix.value]),
            });
        }
        // cjson decodes `{}` for an empty table; send an array either way.
        let indexes = if pairs.is_empty() {
            "[]".to_owned()
        } else {
            serde_json::to_string(&pairs).map_err(failed)?
        };
        let expires = w
            .expires_at(now_ms())
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut conn = self.conn.clone();
        script
            .key(format!("{}{id}", self.record_prefix(collection)))
            .arg(self.index_prefix(collection))
            .arg(w.value)
            .arg(expires)
            .arg(indexes)
            .arg(id)
            .arg(expected.unwrap_or(0))
            .invoke_async::<Option<i64>>(&mut conn)
            .await
            .map_err(failed)
    }
}

/// Collection and index names are part of keys, separated by ':'.
fn check_name(name: &str) -> Result<()> {
    check_key("a name", name)?;
    if name.contains(':') {
        return Err(StoreError::Invalid(format!("name {name:?} contains ':'")));
    }
    Ok(())
}

/// A Redis URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn version(n: i64) -> Result<Version> {
    u64::try_from(n).map_err(|_| corrupt("negative version"))
}

#[async_trait]
impl Store for Redis {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn shared(&self) -> bool {
        true
    }

    async fn create(
        &self,
        collection: &str,
        id: &str,
        write: Write<'_>,
    ) -> Result<Option<Version>> {
        self.write(&self.scripts.create, collection, id, write, None)
            .await?
            .map(version)
            .transpose()
    }

    async fn put(&self, collection: &str, id: &str, write: Write<'_>) -> Result<Version> {
        let n = self
            .write(&self.scripts.put, collection, id, write, None)
            .await?;
        version(n.ok_or_else(|| corrupt("put returned nothing"))?)
    }

    async fn update(
        &self,
        collection: &str,
        id: &str,
        expected: Version,
        write: Write<'_>,
    ) -> Result<Option<Version>> {
        self.write(&self.scripts.update, collection, id, write, Some(expected))
            .await?
            .map(version)
            .transpose()
    }

    async fn get(&self, collection: &str, id: &str) -> Result<Option<Record>> {
        check_name(collection)?;
        let mut conn = self.conn.clone();
        let (value, n, x): (Option<Vec<u8>>, Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(format!("{}{id}", self.record_prefix(collection)))
            .arg("v")
            .arg("n")
            .arg("x")
            .query_async(&mut conn)
            .await
            .map_err(failed)?;
        let (Some(value), Some(n)) = (value, n) else {
            return Ok(None);
        };
        Ok(Some(Record {
            value,
            version: version(n)?,
            expires_at: x.map(|x| x as u64),
        }))
    }

    async fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        check_name(collection)?;
        let mut conn = self.conn.clone();
        let n: i64 = self
            .scripts
            .delete
            .key(format!("{}{id}", self.record_prefix(collection)))
            .arg(self.index_prefix(collection))
            .arg("")
            .arg("")
            .arg("")
            .arg(id)
            .invoke_async(&mut conn)
            .await
            .map_err(failed)?;
        Ok(n == 1)
    }

    async fn count(&self, collection: &str, name: &str, value: &str) -> Result<u64> {
        check_name(collection)?;
        check_name(name)?;
        let mut conn = self.conn.clone();
        // Members are scored by their record's expiry; deletes remove them.
        redis::cmd("ZCOUNT")
            .arg(format!("{}{name}:{value}", self.index_prefix(collection)))
            .arg(format!("({}", now_ms()))
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(failed)
    }

    async fn find(
        &self,
        collection: &str,
        name: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<(String, Record)>> {
        check_name(collection)?;
        check_name(name)?;
        let key = format!("{}{name}:{value}", self.index_prefix(collection));
        self.found(&self.scripts.find, key, now_ms(), limit, collection)
            .await
    }

    async fn find_ordered(
        &self,
        collection: &str,
        name: &str,
        value: &str,
        until: u64,
        limit: usize,
    ) -> Result<Vec<(String, Record)>> {
        check_name(collection)?;
        check_name(name)?;
        let key = format!("{}{name}:{value}", self.ordered_prefix(collection));
        self.found(&self.scripts.find_ordered, key, until, limit, collection)
            .await
    }

    async fn append(
        &self,
        collection: &str,
        log: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<u64> {
        let key = self.log_key(collection, log)?;
        let expires = expiry(ttl, now_ms())
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut conn = self.conn.clone();
        let n: i64 = self
            .scripts
            .append
            .key(key)
            .arg(value)
            .arg(expires)
            .invoke_async(&mut conn)
            .await
            .map_err(failed)?;
        u64::try_from(n).map_err(|_| corrupt("negative log length"))
    }

    async fn read_log(
        &self,
        collection: &str,
        log: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        let key = self.log_key(collection, log)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let from = from.max(1);
        let start = (from - 1).min(i64::MAX as u64) as i64;
        let stop = start.saturating_add(limit.min(i64::MAX as usize) as i64 - 1);
        let mut conn = self.conn.clone();
        let values: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(key)
            .arg(start)
            .arg(stop)
            .query_async(&mut conn)
            .await
            .map_err(failed)?;
        Ok(values
            .into_iter()
            .zip(from..)
            .map(|(value, index)| LogEntry { index, value })
            .collect())
    }

    async fn write_log(
        &self,
        collection: &str,
        log: &str,
        entries: &[LogEntry],
        ttl: Option<Duration>,
    ) -> Result<()> {
        let key = self.log_key(collection, log)?;
        let Some(first) = check_consecutive(entries)? else {
            return Ok(());
        };
        let expires = expiry(ttl, now_ms())
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut call = self.scripts.write_log.key(key);
        call.arg(first).arg(expires);
        for e in entries {
            call.arg(&e.value[..]);
        }
        let mut conn = self.conn.clone();
        let last: i64 = call.invoke_async(&mut conn).await.map_err(failed)?;
        if last < 0 {
            return Err(StoreError::Invalid(format!(
                "log entry {first} would leave a gap in {log}"
            )));
        }
        Ok(())
    }

    async fn keep_log(&self, collection: &str, log: &str, ttl: Duration) -> Result<()> {
        let key = self.log_key(collection, log)?;
        let until = expiry(Some(ttl), now_ms()).unwrap_or_default();
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("PEXPIREAT")
            .arg(key)
            .arg(until)
            .arg("GT")
            .query_async(&mut conn)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn delete_log(&self, collection: &str, log: &str) -> Result<bool> {
        let key = self.log_key(collection, log)?;
        let mut conn = self.conn.clone();
        let n: i64 = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .map_err(failed)?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            super::redact("redis://:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(super::redact("redis://host:6379"), "redis://host:6379");
    }
}
