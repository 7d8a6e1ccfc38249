//! Configuration in GMS's own shape: the INI reader with its environment
//! overrides ([`options`]), the typed settings every room runs with
//! ([`settings`]), and push's ([`push`]). May use: `wire` (names GMS
//! fixes), `store` (its configuration).

pub mod access;
pub mod channels;
pub mod cors;
pub mod dos;
pub mod headers;
pub mod log;
pub mod options;
pub mod pattern;
pub mod ports;
pub mod push;
pub mod settings;
pub mod tls;

pub use access::{Access, Guard};
pub use channels::ChannelRules;
pub use cors::CorsSettings;
pub use dos::{DosSettings, OverLimit};
pub use headers::HeaderRule;
pub use log::{LogFilters, LogSettings};
pub use options::{ConfigError, ConfigReport, Options, Problem, Unread};
pub use ports::PortRestrictions;
pub use push::PushSettings;
pub use settings::{cassandra_config, ConnectionLimits, Settings, StorageSettings, V1Settings};
