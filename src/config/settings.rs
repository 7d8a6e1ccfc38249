//! The typed settings gmshub runs with, read from [`Options`] by their GMS
//! and CometD names. Every option, its section and default is listed in
//! `docs/configuration.md`. May use: the options, push settings, the store's
//! configuration, `wire` (names GMS fixes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bayeux::{BayeuxConfig, ClientLimits, QueueFullPolicy};
use channels::callback::{CallbackSettings, OfficeHours};
use channels::chat::{
    AgentAccount, ChatServiceOptions, ChatServices, FileLimits, PartyType, TokenLifetime,
    SESSION_IDLE, SESSION_MAX,
};
use channels::notification::NotificationSettings;
use channels::password::Password;

use super::access::Access;
use super::channels::ChannelRules;
use super::cors::CorsSettings;
use super::dos::DosSettings;
use super::headers::{header_rules, HeaderRule};
use super::log::LogSettings;
use super::options::{ConfigReport, Options};
use super::ports::PortRestrictions;
use super::push::PushSettings;
use super::tls::TlsSettings;
use crate::store::cassandra::{self, CassandraConfig};
use crate::store::StoreConfig;
use crate::wire::chat_v1::{TranscriptFormat, SERVICE as V1_SERVICE};
use crate::wire::GMS_USER;

/// Storage API settings.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// `[server] max-file-upload`: the largest request body, in bytes.
    pub max_upload: usize,
    /// `[storage] allow-file-control` with `allowed-mime-types`: when set,
    /// only files of these types are accepted.
    pub allowed_mime_types: Option<Vec<String>>,
    /// `[server] external_url_base`: where file values are fetched from;
    /// without it, the request's own host.
    pub external_url_base: Option<String>,
    /// `[storage] max-ttl`: the longest TTL a client may ask for.
    pub max_ttl: Duration,
}

/// Chat API v1's own settings.
#[derive(Debug, Clone)]
pub struct V1Settings {
    /// `[chat] enable-fast-chat-transcript-refresh`.
    pub format: TranscriptFormat,
    /// `[service.request-chat] _ttl` (s, 3600): how long a requested
    /// service waits for its chat to start.
    pub service_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// What reading the configuration found (wrong values, what nothing
    /// read), logged once the hub is built (every reader has run by then);
    /// an error in it refuses the start.
    pub report: ConfigReport,
    /// `[server] listen`: the addresses the plain HTTP listeners bind
    /// (`127.0.0.1:8080`), or why they cannot be read.
    pub listen: Result<Vec<SocketAddr>, String>,
    /// `[server] backlog`: the listen queue (the kernel default, 128, makes
    /// bursts of connects wait on SYN retries).
    pub backlog: u32,
    /// `[server]` bounds on connections.
    pub connections: ConnectionLimits,
    /// `[sml] suspending-wait-timeout` (seconds): on SIGTERM/SIGINT, how long
    /// in-flight requests may take to finish before the process exits.
    pub shutdown_timeout: Duration,
    pub bayeux: BayeuxConfig,
    /// `[store] type` and the chosen backend's section (a type gmshub
    /// does not have is an error of the report: the start stops rather
    /// than run on another store).
    pub store: StoreConfig,
    pub storage: StorageSettings,
    /// `[cluster] enabled`: run as one node of several (needs a shared store).
    pub clustered: bool,
    /// `[cluster] name`: nodes sharing a store and a name form one cluster.
    pub cluster_name: String,
    /// `[server] node-id`: this node's name in the cluster (default: random).
    pub node_id: String,
    /// `[cluster] bus-url`: the Redis the cluster bus runs over (default: the
    /// store's, with `[store] type = redis`).
    pub bus_url: Option<String>,
    /// `[cluster] bus-queue`: bytes waiting to be relayed to Redis before
    /// further broadcasts are dropped from the bus (default 16 MiB).
    pub bus_queue: usize,
    /// `[cluster] heartbeat-interval` (ms): how often a node renews its
    /// membership record; it drops out three intervals after its last one.
    pub heartbeat: Duration,
    pub chat: ChatServices,
    /// `[agent.<login>]`: who may log in to the agent API (see
    /// [`Settings::agent_accounts`] for the development account).
    pub agents: Vec<AgentAccount>,
    /// Who may call which REST API (Basic authentication per group, the
    /// back office's networks).
    pub access: Arc<Access>,
    /// `[cors]`: cross-origin access.
    pub cors: Arc<CorsSettings>,
    /// `[dos-filter]`.
    pub dos: Arc<DosSettings>,
    /// `[port_restrictions]`: which paths each local port serves.
    pub port_restrictions: Arc<PortRestrictions>,
    /// `[tls]`: the TLS listener, if any (or why its settings are wrong).
    pub tls: Result<Option<TlsSettings>, String>,
    /// `[header.<name>]`: extra response headers by path.
    pub header_rules: Arc<Vec<HeaderRule>>,
    /// What CometD clients may do with channels.
    pub channel_rules: ChannelRules,
    /// `[lab] enable-sample` (default true): serve the pages (`/`,
    /// `/chat`, `/agent`, `/callback`).
    pub pages_enabled: bool,
    /// `[log]`, `[log-filter]`, `[log-filter-data]`.
    pub log: LogSettings,
    /// `[pages] frame-ancestors` (default `'self'`): who may frame the pages.
    pub frame_ancestors: String,
    /// `[pages] widget` (default true): serve the embeddable chat widget
    /// (`/widget/v1/`), with or without the sample pages.
    pub widget_enabled: bool,
    /// `[agent] session-idle-timeout` (s, 3600): how long an agent's token
    /// lives unused; `session-max-lifetime` (s, 43200): how long at most.
    pub agent_tokens: TokenLifetime,
    pub v1: V1Settings,
    pub notifications: NotificationSettings,
    pub push: PushSettings,
    pub callbacks: CallbackSettings,
}

/// The stores `[store] type` names.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Redis,
    Cassandra,
}

/// Reads `[store] type` and the options of the backend it names.
fn store_config(o: &Options) -> StoreConfig {
    let backends = [
        ("sqlite", Backend::Sqlite),
        ("redis", Backend::Redis),
        ("cassandra", Backend::Cassandra),
        ("scylla", Backend::Cassandra),
        ("scylladb", Backend::Cassandra),
    ];
    match o.choice("store", "type", &backends, "sqlite") {
        Backend::Sqlite => StoreConfig::Sqlite {
            path: o.text("sqlite", "path", "data/gmshub.db").into(),
        },
        Backend::Redis => StoreConfig::Redis {
            url: o.text("redis", "url", "redis://127.0.0.1:6379/").to_owned(),
            key_prefix: o.text("redis", "key-prefix", "gmshub").to_owned(),
        },
        Backend::Cassandra => StoreConfig::Cassandra(cassandra_config(o)),
    }
}

impl Settings {
    pub fn from_options(o: &Options) -> Self {
        let default_listen: SocketAddr = ([127, 0, 0, 1], 8080).into();
        let d = BayeuxConfig::default();
        let dos = DosSettings::from_options(o);
        let transports: Vec<&'static str> = match o.get("cometd", "allowedTransports") {
            Some(list) if !list.is_empty() => bayeux::TRANSPORTS
                .into_iter()
                .filter(|t| list.split(',').any(|x| x.trim() == *t))
                .collect(),
            _ => d.allowed_transports.clone(),
        };
        let queue_full_policy = o.choice(
            "cometd",
            "maxQueuePolicy",
            &[
                ("disconnect", QueueFullPolicy::Disconnect),
                ("drop-oldest", QueueFullPolicy::DropOldest),
            ],
            "disconnect",
        );
        let positive = |option: &str, default: usize| positive_in(o, "cometd", option, default);
        // `suspending-wait-timeout` is bounded to 5..=600 s in GMS.
        let shutdown_timeout =
            Duration::from_secs(o.ranged("sml", "suspending-wait-timeout", 10, 5, 600));
        let allowed_mime_types = o.flag("storage", "allow-file-control", false).then(|| {
            o.get("storage", "allowed-mime-types")
                .unwrap_or("")
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect()
        });
        let node_id = o
            .get("server", "node-id")
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("node-{:08x}", rand::random::<u32>()));
        let client_id_prefix = format!("{node_id}.");
        let pages_enabled = o.flag("lab", "enable-sample", true);
        let chat = chat_services(o);
        Self {
            store: store_config(o),
            report: ConfigReport::of(o),
            storage: StorageSettings {
                max_upload: positive_in(o, "server", "max-file-upload", 5_000_000),
                allowed_mime_types,
                external_url_base: o
                    .get("server", "external_url_base")
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
                max_ttl: o
                    .seconds("storage", "max-ttl", Duration::from_secs(30 * 24 * 3600))
                    .clamp(Duration::from_secs(1), channels::storage::MAX_TTL),
            },
            clustered: o.flag("cluster", "enabled", false),
            cluster_name: o
                .get("cluster", "name")
                .filter(|v| !v.is_empty())
                .unwrap_or("gmshub")
                .to_owned(),
            bus_url: o
                .get("cluster", "bus-url")
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            bus_queue: positive_in(o, "cluster", "bus-queue", 16 * 1024 * 1024),
            agents: agent_accounts(o, &chat),
            access: Arc::new(Access::from_options(o)),
            cors: Arc::new(CorsSettings::from_options(o)),
            dos: Arc::new(dos.clone()),
            header_rules: Arc::new(header_rules(o)),
            channel_rules: ChannelRules::from_options(o, pages_enabled),
            tls: TlsSettings::from_options(o),
            port_restrictions: Arc::new(PortRestrictions::from_options(o)),
            pages_enabled,
            log: LogSettings::from_options(o),
            frame_ancestors: o
                .get("pages", "frame-ancestors")
                .filter(|v| !v.is_empty())
                .unwrap_or("'self'")
                .to_owned(),
            widget_enabled: o.flag("pages", "widget", true),
            agent_tokens: TokenLifetime {
                idle: o
                    .seconds("agent", "session-idle-timeout", SESSION_IDLE)
                    .max(Duration::from_secs(1)),
                most: o
                    .seconds("agent", "session-max-lifetime", SESSION_MAX)
                    .max(Duration::from_secs(1)),
            },
            chat,
            v1: V1Settings {
                format: TranscriptFormat {
                    fast_refresh: o.flag("chat", "enable-fast-chat-transcript-refresh", false),
                },
                service_ttl: o.seconds("service.request-chat", "_ttl", Duration::from_secs(3600)),
            },
            push: PushSettings::from_options(o),
            callbacks: callback_settings(o),
            notifications: NotificationSettings {
                // GMS: at least 30 s; unset or invalid gives 30.
                default_expiration: match o.value::<u64>(
                    "push",
                    "defaultSubscriptionExpiration",
                    30,
                ) {
                    n if n >= 30 => Duration::from_secs(n),
                    _ => Duration::from_secs(30),
                },
                unsubscribe_delay: o.seconds("notification", "unsubscribe-delay", Duration::ZERO),
                unavailable: super::push::unavailable(o),
                ..NotificationSettings::default()
            },
            heartbeat: o
                .millis("cluster", "heartbeat-interval", Duration::from_secs(5))
                .max(Duration::from_millis(100)),
            node_id,
            listen: o
                .addresses("server", "listen")
                .map(|a| a.unwrap_or_else(|| vec![default_listen])),
            backlog: o.value("server", "backlog", 4096),
            connections: ConnectionLimits::from_options(o),
            shutdown_timeout,
            bayeux: BayeuxConfig {
                timeout: o.millis("cometd", "timeout", d.timeout),
                interval: o.millis("cometd", "interval", d.interval),
                max_interval: o.millis("cometd", "maxInterval", d.max_interval),
                // As in CometD, a negative value means no limit.
                max_sessions_per_browser: usize::try_from(o.value::<i64>(
                    "cometd",
                    "maxSessionsPerBrowser",
                    d.max_sessions_per_browser as i64,
                ))
                .unwrap_or(usize::MAX),
                multi_session_interval: o.millis(
                    "cometd",
                    "multiSessionInterval",
                    d.multi_session_interval,
                ),
                max_queue: positive("maxQueue", d.max_queue),
                queue_full_policy,
                max_message_size: positive("maxMessageSize", d.max_message_size),
                max_sessions: positive("maxSessions", d.max_sessions),
                clients: ClientLimits {
                    sessions_per_address: positive(
                        "maxSessionsPerAddress",
                        d.clients.sessions_per_address,
                    ),
                    sessions_per_browser: positive(
                        "maxLiveSessionsPerBrowser",
                        d.clients.sessions_per_browser,
                    ),
                    handshakes_per_second: positive(
                        "maxHandshakesPerSecond",
                        d.clients.handshakes_per_second as usize,
                    ) as u32,
                    exempt: dos.ip_whitelist,
                },
                max_subscriptions: positive("maxSubscriptions", d.max_subscriptions),
                max_batch_publishes: positive("maxBatchPublishes", d.max_batch_publishes),
                max_handshake_ext: positive("maxHandshakeExt", d.max_handshake_ext),
                // Off unless asked: a subscriber would otherwise receive
                // whatever an anonymous publisher put in `ext`.
                forward_publisher_ext: o.flag("cometd", "forwardPublisherExt", false),
                broadcast_to_publisher: o.flag(
                    "cometd",
                    "broadcastToPublisher",
                    d.broadcast_to_publisher,
                ),
                trust_client_session: o.flag(
                    "cometd",
                    "trustClientSession",
                    d.trust_client_session,
                ),
                browser_cookie_name: o
                    .get("cometd", "browserCookieName")
                    .filter(|v| !v.is_empty())
                    .unwrap_or(&d.browser_cookie_name)
                    .to_owned(),
                callback_parameter: o
                    .get("cometd", "callbackParameter")
                    .filter(|v| !v.is_empty())
                    .unwrap_or(&d.callback_parameter)
                    .to_owned(),
                sweep_period: o
                    .millis("cometd", "sweepPeriod", d.sweep_period)
                    .max(Duration::from_millis(10)),
                ws_ping_interval: o
                    .millis("cometd", "ws.pingInterval", d.ws_ping_interval)
                    .max(Duration::from_millis(100)),
                ws_idle_timeout: o.millis("cometd", "ws.idleTimeout", d.ws_idle_timeout),
                allowed_transports: if transports.is_empty() {
                    d.allowed_transports
                } else {
                    transports
                },
                client_id_prefix,
                // GMS clients name their user in this header on every request,
                // the CometD ones included (Chat API v1, notifications).
                identity_header: Some(GMS_USER.to_owned()),
            },
        }
    }
}

/// The callback services (`service.<name>` sections with `_service =
/// callback`), the office-hours services they name, and `[callback]`. With
/// no callback service configured, `default` exists (GMS's defaults).
fn callback_settings(o: &Options) -> CallbackSettings {
    let d = CallbackSettings::default();
    let mut services = std::collections::BTreeMap::new();
    let mut office_hours = HashMap::new();
    for section in o.section_names() {
        let Some(name) = section.strip_prefix("service.").filter(|n| !n.is_empty()) else {
            continue;
        };
        let Some(options) = o.section(section) else {
            continue;
        };
        let kind = options
            .get("_service")
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if kind == "callback" {
            services.insert(name.to_owned(), options.clone());
        } else if kind == "office-hours" {
            match OfficeHours::from_options(options) {
                Ok(hours) => {
                    office_hours.insert(name.to_owned(), hours);
                }
                // The callback services naming it refuse bookings, saying so.
                Err(e) => tracing::error!("[{section}] {e}: office hours ignored"),
            }
        }
    }
    if services.is_empty() {
        services = d.services.clone();
    }
    let list = |option: &str, default: &[String]| match o.get("callback", option) {
        Some(v) => channels::callback::options::split_list(v),
        None => default.to_vec(),
    };
    CallbackSettings {
        returned_keys: list("returned-keys", &d.returned_keys),
        filter_keys: list("filter-keys", &d.filter_keys),
        max_queued: o
            .value("callback", "max_queued_callbacks_per_service", d.max_queued)
            .max(1),
        scheduler_interval: o
            .millis("callback", "scheduler-interval", d.scheduler_interval)
            .max(Duration::from_millis(10)),
        lookback: o.seconds("callback", "scheduler-lookback", d.lookback),
        retention: o.seconds("callback", "completed-retention", d.retention),
        horizon: o.seconds("callback", "booking-horizon", d.horizon),
        bookings_per_minute_per_address: o
            .value(
                "callback",
                "max-bookings-per-minute-per-address",
                d.bookings_per_minute_per_address,
            )
            .max(1),
        external_url_base: o
            .get("server", "external_url_base")
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        allowed_device_os: match o.get("callback", "allowed-device-os") {
            None => d.allowed_device_os.clone(),
            Some(list) => channels::callback::options::split_list(list)
                .iter()
                .filter_map(|t| {
                    let kind = push::PushType::parse(t);
                    if kind.is_none() {
                        tracing::warn!(value = t, "[callback] allowed-device-os: not a push type");
                    }
                    kind
                })
                .collect(),
        },
        services,
        office_hours,
    }
}

/// The chat services: one per `chat.<name>` section, any name when the
/// `[chat]` catch-all is configured, and `customer-support` (the guide's
/// example) when neither is, so the widget works with no configuration.
/// Options are looked up in the service's section, then `[chat]`, then the
/// default; an option present but empty stops the lookup (GMS's rule).
fn chat_services(o: &Options) -> ChatServices {
    let options = |section: Option<&str>| -> ChatServiceOptions {
        let d = ChatServiceOptions::default();
        let get = |names: &[&str]| -> Option<String> {
            for section in section.into_iter().chain(["chat"]) {
                for name in names {
                    if let Some(v) = o.get(section, name) {
                        return Some(v.to_owned());
                    }
                }
            }
            None
        };
        let number = |names: &[&str], default: u64| -> u64 {
            match get(names).as_deref().map(str::parse::<u64>) {
                None => default,
                Some(Ok(n)) if n > 0 => n,
                Some(_) => {
                    tracing::warn!(
                        option = names[0],
                        "wrong value for a chat option, using the default"
                    );
                    default
                }
            }
        };
        let queue = get(&["_chat_endpoint", "chat_endpoint"])
            .filter(|q| !q.is_empty())
            .or_else(|| {
                o.get("chat", "default_chat_endpoint")
                    .filter(|q| !q.is_empty())
                    .map(str::to_owned)
            })
            .unwrap_or(d.queue);
        ChatServiceOptions {
            queue,
            client_timeout: Duration::from_secs(number(
                &["_client_timeout"],
                d.client_timeout.as_secs(),
            )),
            max_message_size: number(&["max-message-size"], d.max_message_size as u64) as usize,
            max_transcript_size: number(&["max-transcript-size"], d.max_transcript_size as u64)
                as usize,
            files: FileLimits {
                max_file_size: number(&["upload-max-file-size"], d.files.max_file_size as u64)
                    as usize,
                max_total_size: number(&["upload-max-total-size"], d.files.max_total_size as u64)
                    as usize,
                max_files: number(&["upload-max-files"], d.files.max_files as u64) as usize,
                file_types: get(&["upload-file-types"])
                    .map(|t| {
                        t.split(':')
                            .map(|x| x.trim().to_ascii_lowercase())
                            .filter(|x| !x.is_empty())
                            .collect()
                    })
                    .unwrap_or(d.files.file_types),
            },
        }
    };
    let named: std::collections::BTreeMap<String, ChatServiceOptions> = o
        .section_names()
        .filter_map(|s| {
            s.strip_prefix("chat.")
                .filter(|n| !n.is_empty())
                .map(|n| (n.to_owned(), s.to_owned()))
        })
        .map(|(name, section)| (name, options(Some(&section))))
        .collect();
    let configured = o.section_names().any(|s| s == "chat");
    let mut services = ChatServices {
        catch_all: configured.then(|| options(None)),
        named,
        request_timeout: o
            .millis(
                "chat",
                "chat_session_request_timeout",
                Duration::from_millis(30_000),
            )
            .max(Duration::from_millis(100)),
        chats_per_minute_per_address: o
            .value("chat", "max-chats-per-minute-per-address", 30u32)
            .max(1),
    };
    if services.named.is_empty() && services.catch_all.is_none() {
        services
            .named
            .insert("customer-support".into(), options(None));
    }
    // The chats of Chat API v1's built-in service (its options in
    // [service.request-chat], then [chat]).
    services
        .named
        .insert(V1_SERVICE.into(), options(Some("service.request-chat")));
    services
}

impl Settings {
    /// Who may log in to the agent API: the configured accounts, or, with
    /// none, the development account `agent`/`agent` serving every queue,
    /// and that only when every listener (plain and TLS) is on loopback
    /// (nobody else can reach it).
    pub fn agent_accounts(&self) -> Vec<AgentAccount> {
        if !self.agents.is_empty() {
            return self.agents.clone();
        }
        let plain = self.listen.iter().flatten();
        let tls = self.tls.iter().flatten().flat_map(|t| t.listen.iter());
        if !plain.chain(tls).all(|a| a.ip().is_loopback()) {
            tracing::warn!(
                "no [agent.<login>] accounts: the agent API has none (the development \
                 account agent/agent exists only on a loopback listener)"
            );
            return Vec::new();
        }
        tracing::warn!(
            "development agent account agent/agent enabled (loopback listener, no [agent.<login>] \
             sections)"
        );
        vec![AgentAccount {
            login: "agent".into(),
            password: Arc::new(Password::from_config("agent").expect("a plain password")),
            nickname: "Agent".into(),
            queues: all_queues(&self.chat),
            kind: PartyType::Agent,
        }]
    }
}

/// Every chat queue: the services' and the default one.
fn all_queues(chat: &ChatServices) -> Vec<String> {
    let mut all: Vec<String> = chat
        .all()
        .map(|s| s.queue.clone())
        .chain([channels::chat::DEFAULT_QUEUE.to_owned()])
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The agents and bots who may log in to the agent API, one
/// `[agent.<login>]` section each (`password`, plain or an argon2id hash,
/// `nickname`, `queues`, `type` = `agent` or `bot`).
fn agent_accounts(o: &Options, chat: &ChatServices) -> Vec<AgentAccount> {
    let all_queues = all_queues(chat);
    o.section_names()
        .filter_map(|s| {
            s.strip_prefix("agent.")
                .filter(|l| !l.is_empty())
                .map(|l| (l.to_owned(), s.to_owned()))
        })
        .filter_map(|(login, section)| {
            let Some(password) = o.get(&section, "password").filter(|p| !p.is_empty()) else {
                tracing::warn!(
                    agent = login,
                    "[{section}] has no password: the agent cannot log in"
                );
                return None;
            };
            let password = match Password::from_config(password) {
                Ok(p) => Arc::new(p),
                Err(e) => {
                    tracing::error!(
                        agent = login,
                        "[{section}] password: {e}; the agent cannot log in"
                    );
                    return None;
                }
            };
            let queues: Vec<String> = match o.get(&section, "queues") {
                Some(list) if !list.is_empty() => list
                    .split(',')
                    .map(|q| q.trim().to_owned())
                    .filter(|q| !q.is_empty())
                    .collect(),
                _ => all_queues.clone(),
            };
            let kind = match o
                .get(&section, "type")
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("bot") | Some("external") => PartyType::External,
                _ => PartyType::Agent,
            };
            Some(AgentAccount {
                nickname: o
                    .get(&section, "nickname")
                    .filter(|n| !n.is_empty())
                    .unwrap_or(&login)
                    .to_owned(),
                login,
                password,
                queues,
                kind,
            })
        })
        .collect()
}

/// A size or count option, where 0 means the default.
/// `[server] max-connections`, `max-connections-per-address`,
/// `header-read-timeout` (see `app::connections`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_address: usize,
    pub header_read_timeout: Duration,
}

/// Descriptors kept free of connections: the store, logs, outbound
/// requests (push, callbacks), and the listeners themselves.
const FILES_RESERVED: u64 = 1024;

impl ConnectionLimits {
    fn from_options(o: &Options) -> Self {
        let (files, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((20_000, 20_000));
        let bound = files.saturating_sub(FILES_RESERVED).max(64) as usize;
        let total = positive_in(o, "server", "max-connections", bound);
        if total > bound {
            tracing::warn!(
                total,
                bound,
                "[server] max-connections is over the open-files limit less {FILES_RESERVED}: using {bound}"
            );
        }
        Self {
            total: total.min(bound),
            per_address: positive_in(o, "server", "max-connections-per-address", 1000),
            header_read_timeout: o
                .seconds("server", "header-read-timeout", Duration::from_secs(30))
                .max(Duration::from_secs(1)),
        }
    }
}

fn positive_in(o: &Options, section: &str, option: &str, default: usize) -> usize {
    o.at_least(section, option, default, 1)
}

/// `[cassandra]` with GMS's option names, and the login from
/// `[cassandra-authentication-security]`.
pub fn cassandra_config(o: &Options) -> CassandraConfig {
    let d = CassandraConfig::default();
    let secured = o.flag("cassandra", "secured", d.secured);
    let text = |section: &str, option: &str| {
        o.get(section, option)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let consistency = text("cassandra", "consistency").map_or(d.consistency, |name| {
        cassandra::parse_consistency(&name).unwrap_or_else(|| {
            tracing::warn!(
                value = name,
                "[cassandra] consistency: unknown level, using LOCAL_QUORUM"
            );
            d.consistency
        })
    });
    let serial_consistency =
        text("cassandra", "serial-consistency").map_or(d.serial_consistency, |name| {
            cassandra::parse_serial_consistency(&name).unwrap_or_else(|| {
                tracing::warn!(
                    value = name,
                    "[cassandra] serial-consistency: unknown level, using LOCAL_SERIAL"
                );
                d.serial_consistency
            })
        });
    CassandraConfig {
        nodes: o
            .get("cassandra", "nodes")
            .unwrap_or("")
            .split(',')
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect(),
        port: o.value(
            "cassandra",
            "native-port",
            if secured { 9142 } else { 9042 },
        ),
        secured,
        ca_file: text("cassandra", "ca-file"),
        keyspace: text("cassandra", "keyspace-prefix").unwrap_or(d.keyspace),
        strategy_class: text("cassandra", "strategy-class").unwrap_or(d.strategy_class),
        strategy_option: text("cassandra", "strategy-option").unwrap_or(d.strategy_option),
        consistency,
        serial_consistency,
        username: text("cassandra-authentication-security", "username"),
        password: text("cassandra-authentication-security", "password").map(Into::into),
        request_timeout: o.millis("cassandra", "request-timeout", d.request_timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_secret_shows_in_the_settings_debug() {
        let o = Options::from_ini(
            "[server]\nusername = u\npassword = server-secret-1\n\
             [storage]\npassword = storage-secret-2\n[admin]\nusername = a\npassword = admin-secret-3\n\
             [agent.ada]\npassword = agent-secret-4\n\
             [store]\ntype = cassandra\n[cassandra]\nnodes = 127.0.0.1\n\
             [cassandra-authentication-security]\nusername = c\npassword = cassandra-secret-5\n\
             [push]\npushEnabled = wns\nwns.sid = sid\nwns.clientSecret = wns-secret-6\n",
            &[],
        )
        .unwrap();
        let shown = format!("{:?}", Settings::from_options(&o));
        assert!(
            shown.contains("Cassandra"),
            "the settings are shown: {shown}"
        );
        for secret in 1..=6 {
            assert!(
                !shown.contains(&format!("secret-{secret}")),
                "secret {secret} in {shown}"
            );
        }
    }

    #[test]
    fn listen_takes_a_list_and_refuses_what_is_not_an_address() {
        let listen =
            |ini: &str| Settings::from_options(&Options::from_ini(ini, &[]).unwrap()).listen;
        let default = Ok(vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(listen(""), default);
        assert_eq!(
            listen("[server]\nlisten = ,\n"),
            default,
            "no address: the default"
        );
        assert_eq!(
            listen("[server]\nlisten = 0.0.0.0:8080, [::1]:8081 10.0.0.5:8082\n"),
            Ok(["0.0.0.0:8080", "[::1]:8081", "10.0.0.5:8082"]
                .map(|a| a.parse().unwrap())
                .to_vec())
        );
        let e = listen("[server]\nlisten = 0.0.0.0:8080, internal:8081\n").unwrap_err();
        assert!(
            e.contains("[server] listen") && e.contains("internal:8081"),
            "{e}"
        );
    }

    #[test]
    fn development_agent_only_when_every_listener_is_on_loopback() {
        let logins = |ini: &str| {
            Settings::from_options(&Options::from_ini(ini, &[]).unwrap())
                .agent_accounts()
                .into_iter()
                .map(|a| a.login)
                .collect::<Vec<_>>()
        };
        assert_eq!(logins(""), ["agent"]);
        assert_eq!(
            logins("[server]\nlisten = 127.0.0.1:8080, [::1]:8080\n"),
            ["agent"]
        );
        assert!(logins("[server]\nlisten = 127.0.0.1:8080, 0.0.0.0:8081\n").is_empty());
        let tls = "[tls]\nlisten = 0.0.0.0:8443\ncertificate = c\nprivate-key = k\n";
        assert!(logins(tls).is_empty(), "a public TLS listener");
    }

    #[test]
    fn gms_and_cometd_names_map_to_settings() {
        let o = Options::from_ini(
            "[server]\nlisten = 0.0.0.0:9090\n[cometd]\nmaxSessionsPerBrowser = -1\nmaxQueue = 0\n\
             allowedTransports = long-polling, websocket\nmaxQueuePolicy = drop-oldest\n\
             [sml]\nsuspending-wait-timeout = 1\n",
            &[],
        )
        .unwrap();
        let s = Settings::from_options(&o);
        assert_eq!(s.listen, Ok(vec!["0.0.0.0:9090".parse().unwrap()]));
        assert_eq!(
            s.bayeux.max_sessions_per_browser,
            usize::MAX,
            "negative: unlimited"
        );
        assert_eq!(
            s.bayeux.max_queue,
            BayeuxConfig::default().max_queue,
            "0 is not a bound"
        );
        assert_eq!(
            s.bayeux.allowed_transports,
            vec!["websocket", "long-polling"]
        );
        assert_eq!(s.bayeux.queue_full_policy, QueueFullPolicy::DropOldest);
        assert_eq!(
            s.shutdown_timeout,
            Duration::from_secs(10),
            "outside GMS's 5-600 s: the default"
        );
        let problems: Vec<String> = o.problems().iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "[sml] suspending-wait-timeout = 1 (the configuration line 9): out of range \
                 (5 to 600); using the default 10",
                "[cometd] maxQueue = 0 (the configuration line 5): out of range (at least 1); \
                 using the default 1048576",
            ]
        );
    }

    #[test]
    fn wrong_values_are_reported_once_with_where_and_what_is_allowed() {
        let o = Options::from_ini(
            "[push]
workers = many
[cometd]
maxQueuePolicy = drop-newest
             [lab]
enable-sample = maybe
",
            &[("GMSHUB__PUSH__QUEUE", "0")],
        )
        .unwrap();
        let s = Settings::from_options(&o);
        Settings::from_options(&o);
        assert_eq!(s.push.workers, 32);
        let report: Vec<(bool, String)> = s
            .report
            .findings()
            .into_iter()
            .map(|p| (p.fatal, p.text))
            .collect();
        assert_eq!(
            report,
            [
                (
                    true,
                    "[cometd] maxQueuePolicy = drop-newest (the configuration line 4): \
                     not one of disconnect, drop-oldest"
                        .to_owned()
                ),
                (
                    false,
                    "[lab] enable-sample = maybe (the configuration line 6): not true or false; \
                     using the default true"
                        .to_owned()
                ),
                (
                    false,
                    "[push] workers = many (the configuration line 2): not a whole number, 0 or \
                     more; using the default 32"
                        .to_owned()
                ),
                (
                    false,
                    "[push] queue = 0 (environment GMSHUB__PUSH__QUEUE): out of range (at least \
                     1); using the default 100000"
                        .to_owned()
                ),
            ]
        );
        assert_eq!(s.report.errors().len(), 1);
    }
}
