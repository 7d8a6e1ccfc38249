//! The ScyllaDB/Cassandra store, shared by the nodes of a cluster, through
//! the `scylla` driver.
//!
//! Four tables in the keyspace named by `[cassandra] keyspace-prefix` (`gsg`,
//! as in GMS): `gmshub_records` (one row per record, partitioned by
//! collection and id), `gmshub_index` (one row per index entry,
//! partitioned by collection, name and value), `gmshub_ordered` (the
//! entries with an order, clustered by it) and `gmshub_logs` (one row per
//! log entry, partitioned by collection and log, clustered by index; an
//! append is a lightweight transaction that claims the next index, so two
//! appends never share one). As in GMS since 8.5.303 the
//! schema is created by an administrator, never at start: `gmshub schema
//! cassandra` prints it, `--apply` runs it, and a node refuses to start when
//! a table is missing.
//!
//! Writes are lightweight transactions on the record's version (Paxos at
//! `serial-consistency`), so compare-and-set holds across nodes. Rows carry
//! Cassandra's own TTL, and `expires_at` (milliseconds) is checked on every
//! read, since Cassandra's TTL counts whole seconds. An index row is written
//! before its record and removed after it; `find` checks each hit against
//! the record, so an index row left behind by a crash finds nothing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use channels::store::{
    check_key, entries_after, expiry, now_ms, IndexEntry, LogEntry, Record, Result, Store,
    StoreError, Version, Write,
};
use futures_util::future::try_join_all;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::response::query_result::QueryResult;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlValue, Row};

const BACKEND: &str = "cassandra";
const RECORDS: &str = "gmshub_records";
const INDEX: &str = "gmshub_index";
const ORDERED: &str = "gmshub_ordered";
const LOGS: &str = "gmshub_logs";
/// How many times a write retries when another writer won the race for the
/// same record in between its read and its transaction.
const CAS_ATTEMPTS: usize = 32;

/// `[cassandra]` and `[cassandra-authentication-security]` options.
#[derive(Debug, Clone)]
pub struct CassandraConfig {
    /// `nodes`: contact points of the local datacenter.
    pub nodes: Vec<String>,
    /// `native-port`: 9042, or 9142 with `secured`.
    pub port: u16,
    /// `secured`: TLS to the nodes, trusting the CA in `ca-file` (PEM).
    pub secured: bool,
    pub ca_file: Option<String>,
    /// `keyspace-prefix`: the keyspace (default `gsg`).
    pub keyspace: String,
    /// `strategy-class` and `strategy-option`: the keyspace's replication,
    /// used by `gmshub schema cassandra`.
    pub strategy_class: String,
    pub strategy_option: String,
    /// `consistency` (LOCAL_QUORUM) and `serial-consistency` (LOCAL_SERIAL).
    pub consistency: Consistency,
    pub serial_consistency: SerialConsistency,
    pub username: Option<String>,
    /// Redacted in `Debug`.
    pub password: Option<secrecy::SecretString>,
    /// `request-timeout` (ms): a statement that takes longer fails.
    pub request_timeout: Duration,
}

impl Default for CassandraConfig {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            port: 9042,
            secured: false,
            ca_file: None,
            keyspace: "gsg".into(),
            strategy_class: "NetworkTopologyStrategy".into(),
            strategy_option: "datacenter1:3".into(),
            consistency: Consistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            username: None,
            password: None,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Reads a consistency level by its CQL name (`LOCAL_QUORUM`, `QUORUM`, ...).
pub fn parse_consistency(name: &str) -> Option<Consistency> {
    Some(
        match name.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "ANY" => Consistency::Any,
            "ONE" => Consistency::One,
            "TWO" => Consistency::Two,
            "THREE" => Consistency::Three,
            "QUORUM" => Consistency::Quorum,
            "ALL" => Consistency::All,
            "LOCAL_QUORUM" => Consistency::LocalQuorum,
            "EACH_QUORUM" => Consistency::EachQuorum,
            "LOCAL_ONE" => Consistency::LocalOne,
            _ => return None,
        },
    )
}

pub fn parse_serial_consistency(name: &str) -> Option<SerialConsistency> {
    match name.trim().to_ascii_uppercase().replace('-', "_").as_str() {
        "SERIAL" => Some(SerialConsistency::Serial),
        "LOCAL_SERIAL" => Some(SerialConsistency::LocalSerial),
        _ => None,
    }
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        backend: BACKEND,
        message: e.to_string(),
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        backend: BACKEND,
        message: e.to_string(),
    }
}

/// A keyspace name is written into CQL: letters, digits and `_` only.
fn check_keyspace(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 48
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(StoreError::Invalid(format!(
            "[cassandra] keyspace-prefix {name:?}: letters, digits and '_' only, at most 48"
        )));
    }
    Ok(())
}

/// The replication map of `strategy-class` / `strategy-option`
/// (`DC1:2;DC2:2`, or `replication_factor:3` for SimpleStrategy).
fn replication(config: &CassandraConfig) -> Result<String> {
    let class = config.strategy_class.trim();
    if class.is_empty() || !class.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
        return Err(StoreError::Invalid(format!(
            "[cassandra] strategy-class {class:?}"
        )));
    }
    let mut map = format!("'class': '{class}'");
    for pair in config
        .strategy_option
        .split([';', ','])
        .filter(|p| !p.trim().is_empty())
    {
        let (k, v) = pair.split_once(':').ok_or_else(|| {
            StoreError::Invalid(format!("[cassandra] strategy-option {pair:?}: NAME:FACTOR"))
        })?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            || v.parse::<u16>().is_err()
        {
            return Err(StoreError::Invalid(format!(
                "[cassandra] strategy-option {pair:?}: NAME:FACTOR"
            )));
        }
        map.push_str(&format!(", '{k}': {v}"));
    }
    Ok(map)
}

/// The CQL that creates what the store needs, in order.
pub fn schema(config: &CassandraConfig) -> Result<Vec<String>> {
    check_keyspace(&config.keyspace)?;
    let ks = &config.keyspace;
    Ok(vec![
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{{}}} AND durable_writes = true",
            replication(config)?
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.{RECORDS} (collection text, id text, value blob, version bigint, \
             expires_at bigint, indexes list<text>, PRIMARY KEY ((collection, id)))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.{INDEX} (collection text, name text, value text, id text, \
             PRIMARY KEY ((collection, name, value), id))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.{ORDERED} (collection text, name text, value text, ord bigint, \
             id text, PRIMARY KEY ((collection, name, value), ord, id))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.{LOGS} (collection text, log text, idx bigint, value blob, \
             expires_at bigint, PRIMARY KEY ((collection, log), idx))"
        ),
    ])
}

async fn connect(config: &CassandraConfig) -> Result<Session> {
    if config.nodes.is_empty() {
        return Err(StoreError::Invalid(
            "[cassandra] nodes: no contact point configured".into(),
        ));
    }
    let profile = ExecutionProfile::builder()
        .consistency(config.consistency)
        .serial_consistency(Some(config.serial_consistency))
        .request_timeout(Some(config.request_timeout))
        .build();
    let nodes: Vec<String> = config
        .nodes
        .iter()
        .map(|n| {
            if n.contains(':') {
                n.clone()
            } else {
                format!("{n}:{}", config.port)
            }
        })
        .collect();
    let mut builder = SessionBuilder::new()
        .known_nodes(&nodes)
        .connection_timeout(Duration::from_secs(5))
        .default_execution_profile_handle(profile.into_handle());
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        builder = builder.user(user, secrecy::ExposeSecret::expose_secret(password));
    }
    if config.secured {
        builder = builder.tls_context(Some(tls(config)?));
    }
    builder
        .build()
        .await
        .map_err(|e| failed(format!("cannot connect to {}: {e}", nodes.join(","))))
}

fn tls(config: &CassandraConfig) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let path = config.ca_file.as_deref().ok_or_else(|| {
        StoreError::Invalid("[cassandra] secured=true needs ca-file (the nodes' CA, PEM)".into())
    })?;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| StoreError::Invalid(format!("[cassandra] ca-file {path}: {e}")))?;
    for cert in certs {
        let cert =
            cert.map_err(|e| StoreError::Invalid(format!("[cassandra] ca-file {path}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| StoreError::Invalid(format!("[cassandra] ca-file {path}: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

/// Runs the schema on the cluster (`gmshub schema cassandra --apply`).
pub async fn apply_schema(config: &CassandraConfig) -> Result<()> {
    let session = connect(config).await?;
    for statement in schema(config)? {
        session.query_unpaged(statement, ()).await.map_err(failed)?;
    }
    Ok(())
}

struct Statements {
    read: PreparedStatement,
    insert: PreparedStatement,
    update: PreparedStatement,
    delete: PreparedStatement,
    add_index: PreparedStatement,
    remove_index: PreparedStatement,
    find: PreparedStatement,
    count: PreparedStatement,
    add_ordered: PreparedStatement,
    remove_ordered: PreparedStatement,
    find_ordered: PreparedStatement,
    last_entry: PreparedStatement,
    append: PreparedStatement,
    write_log: PreparedStatement,
    read_log: PreparedStatement,
    delete_log: PreparedStatement,
}

/// How a record's row lists an entry: `name:value`, and for one with an
/// order also `:ORDER:name:value` (a name never holds ':', so a leading
/// one marks the ordered row).
fn entry_names(ix: &IndexEntry) -> [Option<String>; 2] {
    [
        Some(format!("{}:{}", ix.name, ix.value)),
        ix.order.map(|o| ordered_entry(o, &ix.name, &ix.value)),
    ]
}

fn ordered_entry(order: impl std::fmt::Display, name: &str, value: &str) -> String {
    format!(":{order}:{name}:{value}")
}

/// An entry's row: `(name, value, order)` (order for the ordered row).
fn parse_entry(entry: &str) -> Option<(&str, &str, Option<i64>)> {
    match entry.strip_prefix(':') {
        Some(rest) => {
            let (order, rest) = rest.split_once(':')?;
            let (name, value) = rest.split_once(':')?;
            Some((name, value, Some(order.parse().ok()?)))
        }
        None => entry.split_once(':').map(|(n, v)| (n, v, None)),
    }
}

pub struct Cassandra {
    session: Session,
    st: Statements,
}

/// A record row as read for a write: its version, expiry and index entries.
struct Current {
    value: Vec<u8>,
    version: i64,
    expires_at: Option<i64>,
    indexes: Vec<String>,
}

impl Current {
    fn live(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|t| t > now as i64)
    }
}

impl Cassandra {
    /// Connects, checks that the schema is there, and prepares statements.
    pub async fn open(config: &CassandraConfig) -> Result<Arc<Self>> {
        check_keyspace(&config.keyspace)?;
        let session = connect(config).await?;
        let ks = &config.keyspace;
        let tables = session
            .query_unpaged(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
                (ks,),
            )
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(corrupt)?
            .rows::<(String,)>()
            .map_err(corrupt)?
            .map(|r| r.map(|(name,)| name))
            .collect::<std::result::Result<Vec<String>, _>>()
            .map_err(corrupt)?;
        for table in [RECORDS, INDEX, ORDERED, LOGS] {
            if !tables.iter().any(|t| t == table) {
                return Err(StoreError::Invalid(format!(
                    "Cassandra table {ks}.{table} is missing: create the schema with \
                     `gmshub schema cassandra --apply` (or print it with `gmshub schema cassandra`)"
                )));
            }
        }
        let prepare = |cql: String| {
            let session = &session;
            async move { session.prepare(cql).await.map_err(failed) }
        };
        let mut read = prepare(format!(
            "SELECT value, version, expires_at, indexes FROM {ks}.{RECORDS} WHERE collection = ? AND id = ?"
        ))
        .await?;
        // Reads that decide a compare-and-set see every Paxos round that
        // completed before them.
        read.set_consistency(match config.serial_consistency {
            SerialConsistency::Serial => Consistency::Serial,
            SerialConsistency::LocalSerial => Consistency::LocalSerial,
        });
        let st = Statements {
            read,
            insert: prepare(format!(
                "INSERT INTO {ks}.{RECORDS} (collection, id, value, version, expires_at, indexes) \
                 VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?"
            ))
            .await?,
            update: prepare(format!(
                "UPDATE {ks}.{RECORDS} USING TTL ? SET value = ?, version = ?, expires_at = ?, indexes = ? \
                 WHERE collection = ? AND id = ? IF version = ?"
            ))
            .await?,
            delete: prepare(format!(
                "DELETE FROM {ks}.{RECORDS} WHERE collection = ? AND id = ? IF version = ?"
            ))
            .await?,
            add_index: prepare(format!(
                "INSERT INTO {ks}.{INDEX} (collection, name, value, id) VALUES (?, ?, ?, ?) USING TTL ?"
            ))
            .await?,
            remove_index: prepare(format!(
                "DELETE FROM {ks}.{INDEX} WHERE collection = ? AND name = ? AND value = ? AND id = ?"
            ))
            .await?,
            count: prepare(format!(
                "SELECT COUNT(*) FROM {ks}.{INDEX} WHERE collection = ? AND name = ? AND value = ?"
            ))
            .await?,
            find: prepare(format!(
                "SELECT id FROM {ks}.{INDEX} WHERE collection = ? AND name = ? AND value = ? LIMIT ?"
            ))
            .await?,
            add_ordered: prepare(format!(
                "INSERT INTO {ks}.{ORDERED} (collection, name, value, ord, id) VALUES (?, ?, ?, ?, ?) USING TTL ?"
            ))
            .await?,
            remove_ordered: prepare(format!(
                "DELETE FROM {ks}.{ORDERED} WHERE collection = ? AND name = ? AND value = ? AND ord = ? AND id = ?"
            ))
            .await?,
            find_ordered: prepare(format!(
                "SELECT ord, id FROM {ks}.{ORDERED} WHERE collection = ? AND name = ? AND value = ? \
                 AND ord <= ? LIMIT ?"
            ))
            .await?,
            last_entry: {
                let mut last = prepare(format!(
                    "SELECT idx FROM {ks}.{LOGS} WHERE collection = ? AND log = ? ORDER BY idx DESC LIMIT 1"
                ))
                .await?;
                // It sees every append (a Paxos round) that completed before it.
                last.set_consistency(match config.serial_consistency {
                    SerialConsistency::Serial => Consistency::Serial,
                    SerialConsistency::LocalSerial => Consistency::LocalSerial,
                });
                last
            },
            append: prepare(format!(
                "INSERT INTO {ks}.{LOGS} (collection, log, idx, value, expires_at) VALUES (?, ?, ?, ?, ?) \
                 IF NOT EXISTS USING TTL ?"
            ))
            .await?,
            write_log: prepare(format!(
                "INSERT INTO {ks}.{LOGS} (collection, log, idx, value, expires_at) VALUES (?, ?, ?, ?, ?) \
                 USING TTL ?"
            ))
            .await?,
            read_log: prepare(format!(
                "SELECT idx, value, expires_at FROM {ks}.{LOGS} WHERE collection = ? AND log = ? \
                 AND idx >= ? LIMIT ?"
            ))
            .await?,
            delete_log: prepare(format!(
                "DELETE FROM {ks}.{LOGS} WHERE collection = ? AND log = ?"
            ))
            .await?,
        };
        Ok(Arc::new(Self { session, st }))
    }

    async fn current(&self, collection: &str, id: &str) -> Result<Option<Current>> {
        let rows = self
            .session
            .execute_unpaged(&self.st.read, (collection, id))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(corrupt)?;
        let row = rows
            .maybe_first_row::<(Vec<u8>, i64, Option<i64>, Option<Vec<String>>)>()
            .map_err(corrupt)?;
        Ok(row.map(|(value, version, expires_at, indexes)| Current {
            value,
            version,
            expires_at,
            indexes: indexes.unwrap_or_default(),
        }))
    }

    /// Writes a record over `current` (none: a new row) as `version`.
    async fn write(
        &self,
        collection: &str,
        id: &str,
        w: &Write<'_>,
        current: Option<&Current>,
        version: i64,
    ) -> Result<bool> {
        let (expires_at, ttl) = cell_ttl(w.ttl);
        let entries: Vec<String> = w.indexes.iter().flat_map(entry_names).flatten().collect();
        for ix in w.indexes {
            self.session
                .execute_unpaged(
                    &self.st.add_index,
                    (collection, &ix.name, &ix.value, id, ttl),
                )
                .await
                .map_err(failed)?;
            if let Some(order) = ix.order {
                let order = order.min(i64::MAX as u64) as i64;
                self.session
                    .execute_unpaged(
                        &self.st.add_ordered,
                        (collection, &ix.name, &ix.value, order, id, ttl),
                    )
                    .await
                    .map_err(failed)?;
            }
        }
        let expires = expires_at.map(|t| t as i64);
        let result = match current {
            None => self
                .session
                .execute_unpaged(
                    &self.st.insert,
                    (collection, id, w.value, version, expires, &entries, ttl),
                )
                .await
                .map_err(failed)?,
            Some(cur) => self
                .session
                .execute_unpaged(
                    &self.st.update,
                    (
                        ttl,
                        w.value,
                        version,
                        expires,
                        &entries,
                        collection,
                        id,
                        cur.version,
                    ),
                )
                .await
                .map_err(failed)?,
        };
        let applied = applied(result)?;
        if applied {
            if let Some(cur) = current {
                let stale = cur.indexes.iter().filter(|e| !entries.contains(e));
                self.remove_entries(collection, id, stale).await?;
            }
        }
        Ok(applied)
    }

    async fn remove_entries(
        &self,
        collection: &str,
        id: &str,
        entries: impl Iterator<Item = &String>,
    ) -> Result<()> {
        for entry in entries {
            let result = match parse_entry(entry) {
                Some((name, value, None)) => {
                    self.session
                        .execute_unpaged(&self.st.remove_index, (collection, name, value, id))
                        .await
                }
                Some((name, value, Some(order))) => {
                    self.session
                        .execute_unpaged(
                            &self.st.remove_ordered,
                            (collection, name, value, order, id),
                        )
                        .await
                }
                None => continue,
            };
            result.map_err(failed)?;
        }
        Ok(())
    }

    /// The live records of `hits` (an id, and the entry its record must
    /// still list), read at once.
    async fn live_with(
        &self,
        collection: &str,
        hits: Vec<(String, String)>,
        limit: usize,
    ) -> Result<Vec<(String, Record)>> {
        let reads = hits.iter().map(|(id, _)| self.current(collection, id));
        let now = now_ms();
        Ok(try_join_all(reads)
            .await?
            .into_iter()
            .zip(hits)
            .filter_map(|(cur, (id, entry))| {
                let cur = cur?;
                (cur.live(now) && cur.indexes.contains(&entry)).then(|| {
                    let record = Record {
                        value: cur.value,
                        version: cur.version as Version,
                        expires_at: cur.expires_at.map(|t| t as u64),
                    };
                    (id, record)
                })
            })
            .take(limit)
            .collect())
    }

    /// The index of the log's last entry (0 if it has none), as of every
    /// append that completed before.
    async fn last_entry(&self, collection: &str, log: &str) -> Result<u64> {
        let last: Option<(i64,)> = self
            .session
            .execute_unpaged(&self.st.last_entry, (collection, log))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(corrupt)?
            .maybe_first_row::<(i64,)>()
            .map_err(corrupt)?;
        Ok(last.map_or(0, |(i,)| i as u64))
    }

    /// The log's live rows from `from` on: (index, value, expiry).
    async fn read_log_rows(
        &self,
        collection: &str,
        log: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<u8>, Option<i64>)>> {
        let from = from.min(i64::MAX as u64) as i64;
        let fetch = i32::try_from(limit).unwrap_or(i32::MAX);
        if fetch == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms() as i64;
        let rows = self
            .session
            .execute_unpaged(&self.st.read_log, (collection, log, from, fetch))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(corrupt)?;
        rows.rows::<(i64, Vec<u8>, Option<i64>)>()
            .map_err(corrupt)?
            .filter(|row| !matches!(row, Ok((_, _, Some(t))) if *t <= now))
            .map(|row| row.map_err(corrupt))
            .collect()
    }
}

/// A cell's expiry (ms since the epoch) and its TTL in seconds (0: none)
/// for a time to live from now: Cassandra's TTL is in whole seconds, so it
/// is rounded up, and the expiry kept beside it is exact.
fn cell_ttl(ttl: Option<Duration>) -> (Option<u64>, i32) {
    let now = now_ms();
    let expires_at = expiry(ttl, now);
    let seconds = expires_at.map_or(0, |t| (t - now).div_ceil(1000).min(i32::MAX as u64) as i32);
    (expires_at, seconds)
}

/// The `[applied]` column of a lightweight transaction's answer (Cassandra
/// sends it alone or with the row's columns; Scylla always with them).
fn applied(result: QueryResult) -> Result<bool> {
    let rows = result.into_rows_result().map_err(corrupt)?;
    let row: Row = rows.first_row::<Row>().map_err(corrupt)?;
    match row.columns.first() {
        Some(Some(CqlValue::Boolean(b))) => Ok(*b),
        other => Err(corrupt(format!("unexpected [applied] cell: {other:?}"))),
    }
}

fn check_write(collection: &str, id: &str, w: &Write<'_>) -> Result<()> {
    check_key("a collection", collection)?;
    check_key("an id", id)?;
    for ix in w.indexes {
        check_key("an index name", &ix.name)?;
        check_key("an index value", &ix.value)?;
        if ix.name.contains(':') {
            return Err(StoreError::Invalid(format!(
                "index name {:?} contains ':'",
                ix.name
            )));
        }
    }
    Ok(())
}

fn contended(id: &str) -> StoreError {
    failed(format!("too many concurrent writers on {id}"))
}

#[async_trait]
impl Store for Cassandra {
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
        check_write(collection, id, &write)?;
        for _ in 0..CAS_ATTEMPTS {
            let current = self.current(collection, id).await?;
            match &current {
                Some(cur) if cur.live(now_ms()) => return Ok(None),
                // Expired to the millisecond, not yet by Cassandra's TTL.
                Some(cur) => {
                    if self.write(collection, id, &write, Some(cur), 1).await? {
                        return Ok(Some(1));
                    }
                }
                None => {
                    if self.write(collection, id, &write, None, 1).await? {
                        return Ok(Some(1));
                    }
                }
            }
        }
        Err(contended(id))
    }

    async fn put(&self, collection: &str, id: &str, write: Write<'_>) -> Result<Version> {
        check_write(collection, id, &write)?;
        for _ in 0..CAS_ATTEMPTS {
            let current = self.current(collection, id).await?;
            let version = match &current {
                Some(cur) if cur.live(now_ms()) => cur.version + 1,
                _ => 1,
            };
            if self
                .write(collection, id, &write, current.as_ref(), version)
                .await?
            {
                return Ok(version as Version);
            }
        }
        Err(contended(id))
    }

    async fn update(
        &self,
        collection: &str,
        id: &str,
        expected: Version,
        write: Write<'_>,
    ) -> Result<Option<Version>> {
        check_write(collection, id, &write)?;
        let Some(cur) = self.current(collection, id).await? else {
            return Ok(None);
        };
        if !cur.live(now_ms()) || cur.version as Version != expected {
            return Ok(None);
        }
        let next = cur.version + 1;
        Ok(self
            .write(collection, id, &write, Some(&cur), next)
            .await?
            .then_some(next as Version))
    }

    async fn get(&self, collection: &str, id: &str) -> Result<Option<Record>> {
        let Some(cur) = self.current(collection, id).await? else {
            return Ok(None);
        };
        Ok(cur.live(now_ms()).then(|| Record {
            value: cur.value,
            version: cur.version as Version,
            expires_at: cur.expires_at.map(|t| t as u64),
        }))
    }

    async fn delete(&self, collection: &str, id: &str) -> Result<bool> {
        for _ in 0..CAS_ATTEMPTS {
            let Some(cur) = self.current(collection, id).await? else {
                return Ok(false);
            };
            let result = self
                .session
                .execute_unpaged(&self.st.delete, (collection, id, cur.version))
                .await
                .map_err(failed)?;
            if applied(result)? {
                self.remove_entries(collection, id, cur.indexes.iter())
                    .await?;
                return Ok(cur.live(now_ms()));
            }
        }
        Err(contended(id))
    }

    async fn count(&self, collection: &str, name: &str, value: &str) -> Result<u64> {
        let n: i64 = self
            .session
            .execute_unpaged(&self.st.count, (collection, name, value))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(corrupt)?
            .single_row::<(i64,)>()
            .map_err(corrupt)?
            .0;
        Ok(n.max(0) as u64)
    }

    async fn find(
        &self,
        collection: &str,
        name: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<(String, Record)>> {
        let entry = format!("{name}:{value}");
        // Index rows may outnumber live records (a crash between writes, or
        // a record whose TTL ran out first): read a margin more.
        let fetch = i32::try_from(limit.saturating_mul(2).saturating_add(16)).unwrap_or(i32::MAX);
        let ids: Vec<String> = self
            .session
            .execute_unpaged(&self.st.find, (collection, name, value, fetch))
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(corrupt)?
            .rows::<(String,)>()
            .map_err(corrupt)?
            .map(|r| r.map(|(id,)| id))
            .collect::<std::result::Result<_, _>>()
            .map_err(corrupt)?;
        let hits = ids.into_iter().map(|id| (id, entry.clone())).collect();
        self.live_with(collection, hits, limit).await
    }

    async fn find_ordered(
        &self,
        collection: &str,
        name: &str,
        value: &str,
        until: u64,
        limit: usize,
    ) -> Result<Vec<(String, Record)>> {
        let until = until.min(i64::MAX as u64) as i64;
        let fetch = i32::try_from(limit.saturating_mul(2).saturating_add(16)).unwrap_or(i32::MAX);
        let rows: Vec<(i64, String)> = self
            .session
            .execute_unpaged(
                &self.st.find_ordered,
                (collection, name, value, until, fetch),
            )
            .await
            .map_err(failed)?
            .into_rows_result()
            .map_err(corrupt)?
            .rows::<(i64, String)>()
            .map_err(corrupt)?
            .collect::<std::result::Result<_, _>>()
            .map_err(corrupt)?;
        let hits = rows
            .into_iter()
            .map(|(order, id)| (id, ordered_entry(order, name, value)))
            .collect();
        self.live_with(collection, hits, limit).await
    }

    async fn append(
        &self,
        collection: &str,
        log: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<u64> {
        check_key("a collection", collection)?;
        check_key("a log id", log)?;
        let (expires_at, ttl) = cell_ttl(ttl);
        let first = self.last_entry(collection, log).await? as i64 + 1;
        // The insert claims the index; one that another append took sends
        // this one to the next.
        for index in first..first + CAS_ATTEMPTS as i64 {
            let result = self
                .session
                .execute_unpaged(
                    &self.st.append,
                    (
                        collection,
                        log,
                        index,
                        value,
                        expires_at.map(|t| t as i64),
                        ttl,
                    ),
                )
                .await
                .map_err(failed)?;
            if applied(result)? {
                return Ok(index as u64);
            }
        }
        Err(contended(log))
    }

    async fn write_log(
        &self,
        collection: &str,
        log: &str,
        entries: &[LogEntry],
        ttl: Option<Duration>,
    ) -> Result<()> {
        check_key("a collection", collection)?;
        check_key("a log id", log)?;
        if entries.is_empty() {
            return Ok(());
        }
        let last = self.last_entry(collection, log).await?;
        let (expires_at, ttl) = cell_ttl(ttl);
        // Writers racing with the same entries write the same cells: plain
        // inserts, no Paxos round.
        for e in entries_after(entries, last)? {
            self.session
                .execute_unpaged(
                    &self.st.write_log,
                    (
                        collection,
                        log,
                        e.index as i64,
                        &e.value,
                        expires_at.map(|t| t as i64),
                        ttl,
                    ),
                )
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    async fn keep_log(&self, collection: &str, log: &str, ttl: Duration) -> Result<()> {
        // Cells carry their own TTL: the live ones that expire are written
        // again, a page at a time.
        let (expires_at, cell) = cell_ttl(Some(ttl));
        let mut from = 1;
        loop {
            let page = self.read_log_rows(collection, log, from, 1000).await?;
            let Some(&(last, _, _)) = page.last() else {
                return Ok(());
            };
            for (index, value, until) in page {
                if until.is_some_and(|t| Some(t as u64) < expires_at) {
                    self.session
                        .execute_unpaged(
                            &self.st.write_log,
                            (
                                collection,
                                log,
                                index,
                                value,
                                expires_at.map(|t| t as i64),
                                cell,
                            ),
                        )
                        .await
                        .map_err(failed)?;
                }
            }
            from = last as u64 + 1;
        }
    }

    async fn read_log(
        &self,
        collection: &str,
        log: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>> {
        Ok(self
            .read_log_rows(collection, log, from, limit)
            .await?
            .into_iter()
            .map(|(index, value, _)| LogEntry {
                index: index as u64,
                value,
            })
            .collect())
    }

    async fn delete_log(&self, collection: &str, log: &str) -> Result<bool> {
        let live = !self.read_log(collection, log, 0, 1).await?.is_empty();
        self.session
            .execute_unpaged(&self.st.delete_log, (collection, log))
            .await
            .map_err(failed)?;
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_follows_the_replication_options() {
        let mut c = CassandraConfig {
            strategy_option: "DC1:2;DC2:2".into(),
            ..Default::default()
        };
        let cql = schema(&c).unwrap();
        assert!(cql[0].starts_with("CREATE KEYSPACE IF NOT EXISTS gsg WITH replication = {'class': 'NetworkTopologyStrategy', 'DC1': 2, 'DC2': 2}"));
        assert!(cql[1].contains("gsg.gmshub_records"));
        c.strategy_class = "SimpleStrategy".into();
        c.strategy_option = "replication_factor:1".into();
        assert!(
            schema(&c).unwrap()[0].contains("{'class': 'SimpleStrategy', 'replication_factor': 1}")
        );
        c.strategy_option = "DC1:x".into();
        assert!(schema(&c).is_err());
        c.strategy_option = "DC1:1".into();
        c.keyspace = "gsg; DROP".into();
        assert!(schema(&c).is_err(), "nothing but a name reaches the CQL");
    }

    #[test]
    fn consistency_names() {
        assert_eq!(
            parse_consistency("local_quorum"),
            Some(Consistency::LocalQuorum)
        );
        assert_eq!(parse_consistency("QUORUM"), Some(Consistency::Quorum));
        assert_eq!(parse_consistency("most"), None);
        assert_eq!(
            parse_serial_consistency("SERIAL"),
            Some(SerialConsistency::Serial)
        );
    }
}
