//! The REST APIs: GMS's under `/genesys/1` and `/genesys/2` (chat), the
//! agent API under `/gmshub/agent` and the callback router's under
//! `/gmshub/callback`. Handlers only: they read requests, call the services
//! of `channels`, and answer in each API's own shape; `/metrics`. May use:
//! `wire`, `config` (the settings they serve by), `cluster` (the Node API),
//! `observe`.

pub mod access;
pub mod agent;
pub mod callback;
pub mod chat_v1;
pub mod chat_v2;
pub mod cors;
pub mod dos_filter;
pub mod download;
pub mod edge;
pub mod error;
pub mod form;
pub mod headers;
pub mod live;
pub mod metrics;
pub mod node;
pub mod notification;
pub mod openapi;
pub mod request;
pub mod shape;
pub mod storage;
pub mod throttle;

use std::sync::Arc;

use axum::Router;
use bayeux::Bayeux;
use channels::callback::Callbacks;
use channels::chat::{Agents, Chats};
use channels::notification::Notifications;
use channels::service::Services as Instances;
use channels::storage::Storage;

use crate::cluster::{Membership, RedisBus};
use crate::config::StorageSettings;

/// The services the REST APIs reach.
pub struct Services {
    pub storage: Storage,
    pub instances: Instances,
    pub storage_settings: StorageSettings,
    pub notifications: Notifications,
    pub chats: Chats,
    pub v1: chat_v1::V1,
    pub agents: Agents,
    pub callbacks: Callbacks,
    pub status: Arc<node::NodeStatus>,
    pub membership: Arc<Membership>,
    pub bayeux: Arc<Bayeux>,
    pub bus: Option<Arc<RedisBus>>,
    pub live: live::LiveRules,
    pub scrape: crate::observe::Scrape,
}

/// Every REST API, routed.
pub fn router(services: Services) -> Router {
    let max_upload = services.storage_settings.max_upload;
    let push_counters = services.notifications.dispatcher().counters().clone();
    Router::new()
        .merge(storage::router(
            services.storage,
            services.instances,
            services.storage_settings,
        ))
        .merge(chat_v2::router(services.chats, max_upload))
        .merge(agent::router(services.agents))
        .merge(callback::router(services.callbacks))
        .merge(notification::router(services.notifications))
        .merge(chat_v1::router(services.v1))
        .merge(node::router(
            services.status,
            services.membership,
            push_counters,
            services.bayeux,
            services.bus,
        ))
        .merge(metrics::router(services.scrape))
        .merge(openapi::router())
        .layer(axum::middleware::from_fn_with_state(
            services.live,
            access::check,
        ))
        .layer(axum::middleware::from_fn(
            crate::observe::http::remember_route,
        ))
}
