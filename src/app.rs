//! The HTTP surface of the binary: Bayeux at `/genesys/cometd` and
//! `/cometd`, the demo page at `/`, the GMS REST APIs under `/genesys/1`.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use bayeux::Bayeux;

use channels::storage::Storage;
use gmshub::cluster::Membership;

use crate::api;
use crate::api::node::NodeStatus;
use crate::api::storage::StorageSettings;
use crate::page;

/// Where Bayeux is mounted: the GMS path, and CometD's usual one.
pub const MOUNTS: [&str; 2] = ["/genesys/cometd", "/cometd"];

/// The GMS services the HTTP routes reach.
pub struct Services {
    pub storage: Storage,
    pub services: channels::service::Services,
    pub storage_settings: StorageSettings,
    pub notifications: channels::notification::Notifications,
    pub chats: channels::chat::Chats,
    pub v1: api::chat_v1::V1,
    pub agents: channels::chat::Agents,
    pub callbacks: channels::callback::Callbacks,
    pub status: Arc<NodeStatus>,
    pub membership: Arc<Membership>,
}

pub fn router(bayeux: Arc<Bayeux>, services: Services) -> Router {
    let max_upload = services.storage_settings.max_upload;
    let push_counters = services.notifications.dispatcher().counters().clone();
    Router::new()
        .route("/", get(page::index))
        .route("/js/cometd/{file}", get(page::cometd_js))
        .route("/chat", get(page::chat))
        .route("/agent", get(page::agent))
        .route("/callback", get(page::callback))
        .merge(bayeux::transport::router(bayeux, &MOUNTS))
        .merge(api::storage::router(
            services.storage,
            services.services,
            services.storage_settings,
        ))
        .merge(api::chat_v2::router(services.chats, max_upload))
        .merge(api::agent::router(services.agents))
        .merge(api::callback::router(services.callbacks))
        .merge(api::notification::router(services.notifications))
        .merge(api::chat_v1::router(services.v1))
        .merge(api::node::router(
            services.status,
            services.membership,
            push_counters,
        ))
}
