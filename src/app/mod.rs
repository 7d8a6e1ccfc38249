//! The top room: the hub assembled from its settings ([`hub`]), served and
//! stopped ([`shutdown`]), the configuration's check and defaults
//! ([`check`]), SIGHUP's reload ([`reload`]), and the store schema command. May use every
//! other room; none uses it.

pub mod check;
pub mod connections;
pub mod hub;
pub mod reload;
pub mod shutdown;
pub mod tls;

pub use hub::{bind, run, Hub, StartError, Tls, MOUNTS};
pub use shutdown::Signals;

use crate::config::{cassandra_config, Options};

/// `gmshub schema cassandra`: prints the CQL the `[cassandra]` options call
/// for, or (`apply`) runs it on the cluster they name.
pub async fn cassandra_schema(options: &Options, apply: bool) -> Result<(), StartError> {
    let config = cassandra_config(options);
    if apply {
        crate::store::cassandra::apply_schema(&config).await?;
        tracing::info!(keyspace = config.keyspace, "schema applied");
    } else {
        for statement in crate::store::cassandra::schema(&config)? {
            println!("{statement};");
        }
    }
    Ok(())
}
