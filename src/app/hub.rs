//! The whole hub, built from its settings in dependency order, with no late
//! binding: the store, the Bayeux engine and (in a cluster) the bus, the
//! services of `channels`, the CometD side of them, push, and the HTTP
//! routes over all of it. [`Hub::serve`] runs it until asked to stop, then
//! stops in GMS's order: out of the load balancer, clients told to go
//! elsewhere, requests given `[sml] suspending-wait-timeout` to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use axum::Router;
use bayeux::server::PublishError;
use bayeux::Bayeux;
use channels::callback::Callbacks;
use channels::chat::{Agents, Chats, ENDED_RETENTION};
use channels::notification::Notifications;
use channels::service::Services as Instances;
use channels::storage::Storage;
use channels::store::{Store, StoreError};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::reload::{self, Reloader};
use super::{connections, tls};
use crate::api::chat_v1::V1;
use crate::api::edge::{self, Served};
use crate::api::live::{LiveRules, Rules};
use crate::api::node::NodeStatus;
use crate::cluster::{JoinError, Membership, RedisBus};
use crate::comet::agent::{self, AgentComet};
use crate::comet::background::Background;
use crate::comet::chat_v2::{self, ChatV2Comet};
use crate::comet::echo::{self, Echo};
use crate::comet::genesys::GenesysChannel;
use crate::comet::notifier::{BackgroundPush, ChatNotifier, Pushed};
use crate::comet::policy::ChannelPolicy;
use crate::comet::push::CometPush;
use crate::comet::reach::Reach;
use crate::comet::users::GenesysUsers;
use crate::config::{ConfigReport, Settings};
use crate::observe::http::remember_route;
use crate::observe::store::Metered;
use crate::observe::Scrape;
use crate::store::StoreConfig;
use crate::{api, pages};

/// Where Bayeux is mounted: the GMS path, and CometD's usual one.
pub const MOUNTS: [&str; 2] = ["/genesys/cometd", "/cometd"];

/// Over how long a stopping node ends its sessions, so that their clients'
/// handshakes reach the other nodes spread out rather than at once.
const MOVE_SPREAD: Duration = Duration::from_secs(1);

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "[cluster] enabled needs a store that several nodes share ([store] type = redis or \
         cassandra); the {0} store serves a single node"
    )]
    NotShared(&'static str),
    #[error("[cluster] enabled: the cluster bus runs over Redis; set [cluster] bus-url")]
    NoBus,
    #[error("cluster bus: cannot reach Redis: {0}")]
    Bus(#[from] redis::RedisError),
    #[error(transparent)]
    Join(#[from] JoinError),
    #[error("a CometD service: {0}")]
    Service(#[from] PublishError),
    #[error(transparent)]
    Serve(#[from] std::io::Error),
    /// A listen address or the TLS settings, as written, cannot be used.
    #[error("{0}")]
    Settings(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// The background tasks a hub owns; aborted when it goes.
#[derive(Default)]
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A built hub: its routes, and what its stop needs.
pub struct Hub {
    /// The routes; each listener serves them behind the edge.
    router: Router,
    edge: edge::Edge,
    /// Open connections, against `[server]`'s limits (all listeners share them).
    gate: Arc<connections::Gate>,
    bayeux: Arc<Bayeux>,
    /// Drained on a graceful stop, like the bus.
    dispatcher: Arc<push::Dispatcher>,
    bus: Option<Arc<RedisBus>>,
    status: Arc<NodeStatus>,
    membership: Arc<Membership>,
    store: Arc<dyn Store>,
    shutdown_timeout: Duration,
    /// What SIGHUP reads again and replaces (taken when serving starts).
    reloader: Option<Reloader>,
    _tasks: Tasks,
}

/// The configuration's errors, as the start's.
fn refuse_errors(report: &ConfigReport) -> Result<(), StartError> {
    let errors = report.errors();
    if errors.is_empty() {
        return Ok(());
    }
    Err(StartError::Settings(errors.join("; ")))
}

/// Binds every listener of `settings` (with its backlog), builds the hub and
/// serves it until `stop` resolves.
pub async fn run(
    settings: Settings,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let bind_all = |addresses: &[SocketAddr]| {
        addresses
            .iter()
            .map(|&address| {
                bind(address, settings.backlog)
                    .map_err(|source| StartError::Listen { address, source })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let listeners = bind_all(
        settings
            .listen
            .as_deref()
            .map_err(|e| StartError::Settings(e.clone()))?,
    )?;
    let tls = match settings.tls.clone().map_err(StartError::Settings)? {
        None => None,
        Some(t) => Some(Tls {
            tcp: bind_all(&t.listen)?,
            certificates: tls::Certificates::load(t.source.clone())?,
            hsts: t.hsts,
            same_site: t.same_site.into(),
            redirect_http: t.redirect_http,
        }),
    };
    let hub = Hub::build(settings, listeners[0].local_addr()?).await?;
    hub.serve_all(listeners, tls, stop).await
}

/// The TLS listeners of a hub, bound, with their certificate loaded.
pub struct Tls {
    pub tcp: Vec<TcpListener>,
    pub certificates: Arc<tls::Certificates>,
    /// The `Strict-Transport-Security` its answers carry.
    pub hsts: Option<String>,
    /// The `SameSite` of the (`Secure`) cookies it sets.
    pub same_site: Arc<str>,
    /// The plain listeners only redirect to the first of these.
    pub redirect_http: bool,
}

/// A listening socket with an explicit backlog (the kernel's default, 128,
/// makes bursts of connects wait on SYN retries).
pub fn bind(address: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(backlog)
}

impl Hub {
    /// Builds every part of the hub for a node reached at `address`, and
    /// starts its background tasks.
    pub async fn build(settings: Settings, address: SocketAddr) -> Result<Self, StartError> {
        // A value outside its option's set stops the start before anything
        // is opened.
        refuse_errors(&settings.report)?;
        let mut tasks = Tasks::default();
        if let Some(line) = settings.access.summary() {
            tracing::info!("{line}");
        }
        tracing::info!("{}", settings.cors.summary());
        tracing::info!("{}", settings.channel_rules.summary());
        // First, so that every counter made from here on is recorded.
        crate::observe::recorder();
        crate::observe::log::log_parameters(
            settings
                .log
                .parameters
                .then(|| settings.log.filters.clone()),
        );
        let store: Arc<dyn Store> = Arc::new(Metered(crate::store::open(&settings.store).await?));
        if settings.clustered && !store.shared() {
            return Err(StartError::NotShared(store.backend()));
        }

        let bayeux = Bayeux::new(settings.bayeux.clone());
        bayeux.set_security_policy(Arc::new(ChannelPolicy::new(settings.channel_rules.clone())));
        bayeux.add_extension(Arc::new(bayeux::ext::timesync::Timesync));
        bayeux.add_service(echo::CHANNEL, Arc::new(Echo))?;
        tasks.0.push(bayeux.spawn_sweeper());
        let bus = match settings.clustered {
            true => Some(join_bus(&settings, &bayeux).await?),
            false => None,
        };
        let reach = Reach::new(&bayeux, bus.clone());

        let membership = Arc::new(Membership::new(
            store.clone(),
            settings.node_id.clone(),
            address.to_string(),
            settings.cluster_name.clone(),
            settings.clustered,
            settings.heartbeat,
        ));
        membership.join().await?;
        tasks.0.push(membership.spawn_heartbeat());

        let storage = Storage::new(store.clone());
        let (chats, changes) = Chats::new(store.clone(), settings.chat.clone());
        tasks.0.push(chats.spawn_idle_check());
        let agents = Agents::new(
            store.clone(),
            settings.agent_accounts(),
            chats.clone(),
            settings.agent_tokens,
        );

        // `/_genesys` and the comet push type reach sessions by gms_user.
        let users = GenesysUsers::new(store.clone());
        bayeux.add_extension(Arc::new(GenesysChannel::new(users.clone())));
        bayeux.add_extension(Arc::new(Background::new(chats.clone())));
        let removed = users.clone();
        bayeux.on_session_removed(Arc::new(move |session, _| {
            if let Some(user) = session.identity() {
                removed.removed(user, session.id());
            }
        }));
        let comet = Arc::new(CometPush::new(reach.clone(), users.clone()));
        let dispatcher = push::Dispatcher::start(
            settings.push.providers(comet),
            push::DispatcherConfig {
                workers: settings.push.workers,
                queue: settings.push.queue,
                in_flight: settings.push.in_flight,
                ..push::DispatcherConfig::default()
            },
            Notifications::forget_gone(store.clone()),
        );
        let notifications = Notifications::new(
            store.clone(),
            dispatcher.clone(),
            settings.notifications.clone(),
        );

        // Forgetting a chat only costs the dedup of two racing writers, so
        // a chat silent for its longest possible life may be forgotten.
        let longest_idle = settings
            .chat
            .all()
            .map(|o| o.client_timeout)
            .max()
            .unwrap_or_default();
        let pushed = Arc::new(Pushed::new(longest_idle + ENDED_RETENTION));
        bayeux.add_service(
            chat_v2::PATTERN,
            Arc::new(ChatV2Comet::new(chats.clone(), pushed.clone())),
        )?;
        bayeux.add_service(agent::CHANNEL, Arc::new(AgentComet::new(agents.clone())))?;
        let notifier = ChatNotifier {
            reach,
            agents: agents.clone(),
            users,
            push: BackgroundPush::new(
                dispatcher.clone(),
                &settings.push,
                settings.callbacks.allowed_device_os.clone(),
            ),
            pushed,
            format: settings.v1.format,
            offer_pings: Arc::default(),
        };
        tasks.0.push(notifier.spawn(changes));

        let callbacks = Callbacks::new(
            store.clone(),
            settings.callbacks.clone(),
            dispatcher.clone(),
            chats.clone(),
        );
        tasks.0.push(callbacks.spawn_scheduler());

        // What SIGHUP may replace: access, CORS, the DoS filter (which
        // paces WebSocket frames too), the access log switch.
        let live = LiveRules::new(Rules::of(&settings));
        bayeux.set_pacer(Arc::new(live.clone()));
        let status = Arc::new(NodeStatus::default());
        let instances = Instances::new(store.clone(), storage.clone());
        let services = api::Services {
            v1: V1 {
                chats: chats.clone(),
                services: instances.clone(),
                storage: storage.clone(),
                max_upload: settings.storage.max_upload,
                service_ttl: settings.v1.service_ttl,
                format: settings.v1.format,
            },
            storage,
            instances,
            storage_settings: settings.storage.clone(),
            notifications,
            chats,
            agents: agents.clone(),
            callbacks,
            status: status.clone(),
            membership: membership.clone(),
            bayeux: bayeux.clone(),
            bus: bus.clone(),
            live: live.clone(),
            scrape: Scrape {
                bayeux: bayeux.clone(),
                dispatcher: dispatcher.clone(),
                bus: bus.clone(),
                agents: agents.clone(),
            },
        };
        let pages = pages::PageOptions {
            enabled: settings.pages_enabled,
            widget: settings.widget_enabled,
            frame_ancestors: settings.frame_ancestors.clone(),
        };
        let router = pages::router(&pages)
            .layer(axum::middleware::from_fn(remember_route))
            .merge(bayeux::transport::router(bayeux.clone(), &MOUNTS))
            .merge(api::router(services));
        let reloader = Reloader::new(settings.report.options().clone(), live.clone());
        let edge = api::edge::Edge {
            ports: settings.port_restrictions.clone(),
            rules: settings.header_rules.clone(),
            live,
            bayeux: &MOUNTS,
        };
        // Every option has been read by now (the push providers last).
        settings.report.log();
        refuse_errors(&settings.report)?;
        Ok(Self {
            router,
            edge,
            gate: connections::Gate::new(settings.connections),
            bayeux,
            dispatcher,
            bus,
            status,
            membership,
            store,
            shutdown_timeout: settings.shutdown_timeout,
            reloader: Some(reloader),
            _tasks: tasks,
        })
    }

    /// Every route of the hub without the edge (no DoS filter, access
    /// groups or connection limits): what the REST fuzz target drives.
    pub fn routes(&self) -> Router {
        self.router.clone()
    }

    /// Serves on `listener` until `stop` resolves, then stops gracefully:
    /// the node leaves the load balancer (`/genesys/1/node` answers 503),
    /// held connects are told to handshake again elsewhere, sockets close,
    /// and within `[sml] suspending-wait-timeout` in all, requests still
    /// open finish, queued push notifications go out and the bus's queue
    /// leaves for Redis.
    pub async fn serve(
        self,
        listener: TcpListener,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        self.serve_all(vec![listener], None, stop).await
    }

    /// Like [`serve`](Self::serve), on several plain listeners and the TLS
    /// ones (all stop together).
    pub async fn serve_all(
        mut self,
        listeners: Vec<TcpListener>,
        tls: Option<Tls>,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop_all, stopping) = tokio::sync::watch::channel(false);
        let redirect = tls.as_ref().filter(|t| t.redirect_http);
        let redirect_port = match redirect.and_then(|t| t.tcp.first()) {
            Some(first) => Some(first.local_addr()?.port()),
            None => None,
        };
        let mut serving = Vec::new();
        for listener in listeners {
            let local = listener.local_addr()?;
            tracing::info!(
                node = self.membership.node_id(),
                store = self.store.backend(),
                "gmshub listening on http://{local} (Bayeux at http://{local}{})",
                MOUNTS[0]
            );
            // Bayeux replies are small and latency-bound: no Nagle delay.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let app = match redirect_port {
                Some(port) => Served::new(tls::redirect_to(port)),
                None => edge::serve(self.router.clone(), &self.edge, local.port(), None),
            };
            serving.push(spawn_serving(
                listener,
                app,
                self.gate.clone(),
                stopping.clone(),
            ));
        }
        let mut reloader = self.reloader.take().expect("a hub is served once");
        if let Some(tls) = tls {
            reloader.certificates = Some(tls.certificates.clone());
            serving.extend(self.serve_tls(tls, &stopping)?);
        }
        let hangup = reload::on_hangup(reloader);

        stop.await;
        // GMS's graceful stop, within `[sml] suspending-wait-timeout`: OFFLINE
        // first, serving on for half the wait while the load balancer's
        // check moves new clients away; then the clients still here are
        // told to handshake elsewhere (spread over a second), the listeners
        // close, and what is queued for push and the bus goes out.
        let begun = Instant::now();
        self.status.set_online(false);
        let offline = self.shutdown_timeout / 2;
        tracing::info!(
            seconds = offline.as_secs_f32(),
            "stopping: OFFLINE, serving on while the load balancer moves new clients"
        );
        tokio::time::sleep(offline).await;
        tracing::info!("stopping: telling clients to reconnect elsewhere");
        self.bayeux.shutdown_over(MOVE_SPREAD).await;
        let _ = stop_all.send(true);
        if tokio::time::timeout(
            self.shutdown_timeout.saturating_sub(begun.elapsed()),
            futures_util::future::join_all(serving),
        )
        .await
        .is_err()
        {
            tracing::warn!(
                seconds = self.shutdown_timeout.as_secs(),
                "requests still open at the shutdown bound; exiting anyway"
            );
        }
        hangup.abort();
        let left = self.shutdown_timeout.saturating_sub(begun.elapsed());
        if !self.dispatcher.drain(left).await {
            tracing::warn!(
                left = self.dispatcher.pending(),
                "push notifications still queued at the shutdown bound"
            );
        }
        if let Some(bus) = &self.bus {
            bus.leave(self.shutdown_timeout.saturating_sub(begun.elapsed()))
                .await;
        }
        self.membership.leave().await;
        tracing::info!("stopped");
        Ok(())
    }

    /// Serves each TLS listener (with HSTS on its answers) until `stopping`
    /// turns true.
    fn serve_tls(
        &self,
        tls: Tls,
        stopping: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<Vec<JoinHandle<()>>, StartError> {
        let over_tls = edge::OverTls {
            same_site: tls.same_site.clone(),
            hsts: tls.hsts.as_deref().and_then(|h| h.parse().ok()),
        };
        let mut serving = Vec::new();
        for tcp in tls.tcp {
            let local = tcp.local_addr()?;
            tracing::info!("gmshub listening on https://{local} (TLS 1.2 and 1.3; h2, http/1.1)");
            // Tapped (with nothing to do) for axum's connect info.
            let listener = tls::TlsListener::new(tcp, tls.certificates.clone())?.tap_io(|_| {});
            let app = edge::serve(
                self.router.clone(),
                &self.edge,
                local.port(),
                Some(over_tls.clone()),
            );
            serving.push(spawn_serving(
                listener,
                app,
                self.gate.clone(),
                stopping.clone(),
            ));
        }
        Ok(serving)
    }
}

/// Serves `app` on `listener` (within `gate`'s limits) until `stopping`
/// turns true, then lets the requests under way finish.
fn spawn_serving<L>(
    listener: L,
    app: Served,
    gate: Arc<connections::Gate>,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> JoinHandle<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    tokio::spawn(connections::serve(listener, app, gate, stopping))
}

/// Starts the cluster bus (Redis pub/sub) and makes it the engine's relay.
async fn join_bus(settings: &Settings, bayeux: &Arc<Bayeux>) -> Result<Arc<RedisBus>, StartError> {
    let (url, prefix) = match (&settings.bus_url, Some(&settings.store)) {
        (Some(url), Some(StoreConfig::Redis { key_prefix, .. })) => {
            (url.clone(), key_prefix.clone())
        }
        (Some(url), _) => (url.clone(), "gmshub".to_owned()),
        (None, Some(StoreConfig::Redis { url, key_prefix })) => (url.clone(), key_prefix.clone()),
        (None, _) => return Err(StartError::NoBus),
    };
    let bus = RedisBus::start(&url, &prefix, &settings.node_id, bayeux, settings.bus_queue).await?;
    bayeux.set_relay(bus.clone());
    Ok(bus)
}
