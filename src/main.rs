//! gmshub: a real-time messaging hub speaking the public APIs of Genesys
//! Mobile Services. This binary reads the configuration, assembles the
//! services, serves HTTP, and shuts down gracefully.

mod api;
mod app;
mod chat_comet;
mod config;
mod echo;
mod genesys_channel;
mod page;
mod push_setup;
mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use axum::serve::ListenerExt;
use bayeux::Bayeux;
use clap::Parser;
use tokio::net::{TcpListener, TcpSocket};
use tracing_subscriber::EnvFilter;

use gmshub::cluster::{Membership, RedisBus};
use gmshub::store::StoreConfig;

use crate::api::node::NodeStatus;
use crate::config::Options;
use crate::settings::Settings;

/// A real-time messaging hub speaking the public APIs of Genesys Mobile
/// Services: Bayeux/CometD at /genesys/cometd.
///
/// Options are read from the INI file given with --config, using GMS section
/// and option names; any option can be overridden by an environment variable
/// GMSHUB__<SECTION>__<OPTION> (upper case, other characters as '_').
/// Logging follows RUST_LOG (default: info).
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Configuration file (INI: [section] and option = value lines).
    #[arg(long, short, env = "GMSHUB_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on; overrides [server] listen (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Print the schema a store needs (CQL for cassandra), or apply it.
    Schema {
        #[arg(value_enum)]
        store: SchemaStore,
        /// Run the statements on the cluster named by [cassandra] nodes.
        #[arg(long)]
        apply: bool,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SchemaStore {
    Cassandra,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("gmshub: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    // Installed first, so a signal that arrives as soon as the port answers
    // still shuts down gracefully instead of killing the process.
    let signals = Signals::install()?;
    let options = Options::load(cli.config.as_deref())?;
    if let Some(Command::Schema {
        store: SchemaStore::Cassandra,
        apply,
    }) = cli.command
    {
        let config = settings::cassandra_config(&options);
        if apply {
            gmshub::store::cassandra::apply_schema(&config).await?;
            tracing::info!(keyspace = config.keyspace, "schema applied");
        } else {
            for statement in gmshub::store::cassandra::schema(&config)? {
                println!("{statement};");
            }
        }
        return Ok(());
    }
    let mut settings = Settings::from_options(&options);
    if let Some(listen) = cli.listen {
        settings.listen = listen;
    }

    let store = gmshub::store::open(&settings.store).await?;
    if settings.clustered && !store.shared() {
        return Err(format!(
            "[cluster] enabled needs a store that several nodes share ([store] type = redis or cassandra); \
             the {} store serves a single node",
            store.backend()
        )
        .into());
    }

    let bayeux = Bayeux::new(settings.bayeux.clone());
    bayeux.add_extension(Arc::new(bayeux::ext::timesync::Timesync));
    bayeux.add_service(echo::CHANNEL, Arc::new(echo::Echo))?;
    bayeux.spawn_sweeper();
    api::chat_v1::FAST_TRANSCRIPT_REFRESH.store(
        options.flag("chat", "enable-fast-chat-transcript-refresh", false),
        std::sync::atomic::Ordering::Relaxed,
    );
    let notifier = chat_comet::CometNotifier::new(&bayeux);
    // The bus, once joined, for those that reach sessions on other nodes.
    let bus_cell: Arc<std::sync::OnceLock<Arc<RedisBus>>> = Arc::new(std::sync::OnceLock::new());
    if settings.clustered {
        let bus = join_bus(&settings, &bayeux).await?;
        notifier.set_bus(bus.clone());
        let _ = bus_cell.set(bus);
    }

    let listener = bind(settings.listen, settings.backlog)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let local = listener.local_addr()?;
    let membership = Arc::new(Membership::new(
        store.clone(),
        settings.node_id.clone(),
        local.to_string(),
        settings.cluster_name.clone(),
        settings.clustered,
        settings.heartbeat,
    ));
    membership.beat().await?;
    membership.spawn_heartbeat();
    let status = Arc::new(NodeStatus::default());
    let storage = channels::storage::Storage::new(store.clone());
    let chats = channels::chat::Chats::new(store.clone(), settings.chat.clone())
        .with_notifier(notifier.clone());
    let notifier_agents = notifier.clone();
    bayeux.add_service(
        chat_comet::PATTERN,
        Arc::new(chat_comet::ChatV2Comet::new(chats.clone(), notifier)),
    )?;
    chats.spawn_idle_check();
    let agents = channels::chat::Agents::new(
        store.clone(),
        settings::agent_accounts(&options, &settings.chat),
        chats.clone(),
    );
    bayeux.add_service(
        chat_comet::AGENT_CHANNEL,
        Arc::new(chat_comet::AgentComet::new(agents.clone())),
    )?;
    notifier_agents.set_agents(agents.clone());
    let genesys_users = genesys_channel::GenesysUsers::new(store.clone());
    notifier_agents.set_genesys_users(genesys_users.clone());
    bayeux.add_extension(Arc::new(genesys_channel::GenesysChannel::new(
        genesys_users.clone(),
        chats.clone(),
    )));
    let removed_users = genesys_users.clone();
    bayeux.on_session_removed(Arc::new(move |session, _| {
        if let Some(user) = session.identity() {
            removed_users.removed(user, session.id());
        }
    }));
    // Push: the providers the configuration describes, and the
    // notifications that use them.
    let comet_push = Arc::new(genesys_channel::CometPush::new(
        &bayeux,
        bus_cell.clone(),
        genesys_users.clone(),
    ));
    let providers = push_setup::providers(&options, comet_push);
    let gone: Arc<std::sync::OnceLock<channels::notification::Notifications>> =
        Arc::new(std::sync::OnceLock::new());
    let gone_sink = gone.clone();
    let dispatcher = push::Dispatcher::start(
        providers,
        push::DispatcherConfig {
            workers: options.value::<usize>("push", "workers", 32).clamp(1, 1000),
            queue: options.value::<usize>("push", "queue", 100_000).max(1),
            ..push::DispatcherConfig::default()
        },
        Arc::new(move |n: &push::Notification| {
            if let Some(notifications) = gone_sink.get().cloned() {
                let id = n.subscription_id.clone();
                tokio::spawn(async move { notifications.remove(&id).await });
            }
        }),
    );
    let notifications = channels::notification::Notifications::new(
        store.clone(),
        dispatcher,
        settings.notifications.clone(),
    );
    let _ = gone.set(notifications.clone());
    notifier_agents.set_push(chat_comet::BackgroundPush {
        dispatcher: notifications.dispatcher().clone(),
        filtered: options
            .get("push", "filtering_chat_events")
            .unwrap_or("Notice.TypingStarted,Notice.TypingStopped")
            .split(',')
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect(),
        include_payload: options.flag("chat", "push_notification_include_payload", false),
    });
    let callbacks = channels::callback::Callbacks::new(
        store.clone(),
        settings.callbacks.clone(),
        notifications.dispatcher().clone(),
        chats.clone(),
    );
    callbacks.spawn_scheduler();
    let services = app::Services {
        callbacks,
        notifications,
        v1: api::chat_v1::V1 {
            chats: chats.clone(),
            services: channels::service::Services::new(store.clone(), storage.clone()),
            storage: storage.clone(),
            max_upload: settings.storage.max_upload,
            service_ttl: options.seconds(
                "service.request-chat",
                "_ttl",
                std::time::Duration::from_secs(3600),
            ),
        },
        chats,
        agents,
        services: channels::service::Services::new(store.clone(), storage.clone()),
        storage,
        storage_settings: settings.storage.clone(),
        status: status.clone(),
        membership: membership.clone(),
    };
    tracing::info!(
        node = membership.node_id(),
        store = store.backend(),
        "gmshub listening on http://{local} (Bayeux at http://{local}{})",
        app::MOUNTS[0]
    );

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown_bayeux = bayeux.clone();
    // Bayeux replies are small and latency-bound: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serve =
        axum::serve(listener, app::router(bayeux, services)).with_graceful_shutdown(async move {
            signals.recv().await;
            tracing::info!("shutting down: telling clients to reconnect elsewhere");
            status.set_online(false);
            shutdown_bayeux.shutdown();
            let _ = stopping_tx.send(());
        });
    let bound = settings.shutdown_timeout;
    tokio::select! {
        result = std::future::IntoFuture::into_future(serve) => result?,
        _ = async { if stopping_rx.await.is_ok() { tokio::time::sleep(bound).await } else { std::future::pending().await } } => {
            tracing::warn!(seconds = bound.as_secs(), "requests still open at the shutdown bound; exiting anyway");
        }
    }
    membership.leave().await;
    tracing::info!("stopped");
    Ok(())
}

/// Starts the cluster bus (Redis pub/sub) and makes it the engine's relay.
async fn join_bus(
    settings: &Settings,
    bayeux: &Arc<Bayeux>,
) -> Result<Arc<RedisBus>, Box<dyn std::error::Error>> {
    let (url, prefix) = match (&settings.bus_url, &settings.store) {
        (Some(url), StoreConfig::Redis { key_prefix, .. }) => (url.clone(), key_prefix.clone()),
        (Some(url), _) => (url.clone(), "gmshub".to_owned()),
        (None, StoreConfig::Redis { url, key_prefix }) => (url.clone(), key_prefix.clone()),
        (None, _) => {
            return Err(
                "[cluster] enabled: the cluster bus runs over Redis; set [cluster] bus-url".into(),
            )
        }
    };
    let bus = RedisBus::start(&url, &prefix, &settings.node_id, bayeux, settings.bus_queue)
        .await
        .map_err(|e| format!("cluster bus: cannot reach Redis: {e}"))?;
    bayeux.set_relay(bus.clone());
    Ok(bus)
}

fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// SIGINT and SIGTERM, listened for from startup on.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
