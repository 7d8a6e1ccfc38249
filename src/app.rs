//! The HTTP surface of the binary: Bayeux at `/genesys/cometd` and
//! `/cometd`, the demo page at `/`.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use bayeux::Bayeux;

use crate::page;

/// Where Bayeux is mounted: the GMS path, and CometD's usual one.
pub const MOUNTS: [&str; 2] = ["/genesys/cometd", "/cometd"];

pub fn router(bayeux: Arc<Bayeux>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/js/cometd/{file}", get(page::cometd_js))
        .merge(bayeux::transport::router(bayeux, &MOUNTS))
}
