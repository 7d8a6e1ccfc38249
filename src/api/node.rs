//! The Node API: `/genesys/1/admin/node/status` (`ONLINE` or `OFFLINE`, as
//! text), `POST /genesys/1/admin/node/changestatus/{ONLINE|OFFLINE}`, and the
//! 8.1 `/genesys/1/node` that load balancers probe (200 while online, 503
//! once the node is offline, stopping, or cannot reach its store), which
//! also tells the node's id, its store and the cluster it sees.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use bayeux::Bayeux;

use super::error::ApiError;
use crate::cluster::{Membership, RedisBus};

/// Whether this node takes work; OFFLINE tells load balancers to send
/// traffic elsewhere (an operator's drain, or a shutdown under way).
#[derive(Debug, Default)]
pub struct NodeStatus {
    offline: AtomicBool,
}

impl NodeStatus {
    pub fn online(&self) -> bool {
        !self.offline.load(Ordering::Relaxed)
    }

    pub fn set_online(&self, online: bool) {
        self.offline.store(!online, Ordering::Relaxed);
    }

    fn text(&self) -> &'static str {
        if self.online() {
            "ONLINE"
        } else {
            "OFFLINE"
        }
    }
}

#[derive(Clone)]
struct Node {
    status: Arc<NodeStatus>,
    membership: Arc<Membership>,
    push: Arc<push::Counters>,
    bayeux: Arc<Bayeux>,
    bus: Option<Arc<RedisBus>>,
}

pub fn router(
    status: Arc<NodeStatus>,
    membership: Arc<Membership>,
    push: Arc<push::Counters>,
    bayeux: Arc<Bayeux>,
    bus: Option<Arc<RedisBus>>,
) -> Router {
    Router::new()
        .route("/genesys/1/admin/node/status", get(status_text))
        .route(
            "/genesys/1/admin/node/changestatus/{status}",
            post(change_status),
        )
        .route("/genesys/1/node", get(node))
        .with_state(Node {
            status,
            membership,
            push,
            bayeux,
            bus,
        })
}

async fn status_text(State(node): State<Node>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        node.status.text(),
    )
        .into_response()
}

async fn change_status(
    State(node): State<Node>,
    Path(status): Path<String>,
) -> Result<Response, ApiError> {
    match status.to_ascii_uppercase().as_str() {
        "ONLINE" => node.status.set_online(true),
        "OFFLINE" => node.status.set_online(false),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "com.genesyslab.gsg.services.exceptions.BadRequestException",
                format!("unknown node status {status:?}: ONLINE or OFFLINE"),
            ))
        }
    }
    tracing::info!(
        status = node.status.text(),
        "node status changed by the Node API"
    );
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        node.status.text(),
    )
        .into_response())
}

/// How long `/genesys/1/node` waits for the store before it says the node
/// cannot serve.
const STORE_CHECK: Duration = Duration::from_secs(2);

async fn node(State(node): State<Node>) -> Response {
    let m = &node.membership;
    // A node that cannot reach its store serves nothing: load balancers
    // must take it out, as they do an OFFLINE one.
    let nodes = match tokio::time::timeout(STORE_CHECK, m.nodes()).await {
        Ok(Ok(nodes)) => Some(nodes),
        Ok(Err(e)) => {
            tracing::warn!("node status: the store cannot be read: {e}");
            None
        }
        Err(_) => {
            tracing::warn!(
                seconds = STORE_CHECK.as_secs(),
                "node status: the store does not answer"
            );
            None
        }
    };
    let code = if node.status.online() && nodes.is_some() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // What the bus lost: dropped at its out-queue's bound, and broadcasts
    // of other nodes that never came.
    let bus = node.bus.as_ref().map(|bus| {
        let (dropped, missed) = bus.losses();
        serde_json::json!({ "dropped": dropped, "missed": missed })
    });
    let body = serde_json::json!({
        "id": m.node_id(),
        "status": node.status.text(),
        "store": m.store().backend(),
        "storeReachable": nodes.is_some(),
        "cluster": m.clustered(),
        "nodes": nodes,
        "bus": bus,
        // Deliveries by push type/provider and outcome, since start.
        "push": node.push.snapshot(),
        // This node's CometD sessions, and the messages `drop-oldest`
        // dropped from their queues since start.
        "cometd": {
            "sessions": node.bayeux.session_count(),
            "dropped": node.bayeux.dropped_messages(),
        },
    });
    (code, Json(body)).into_response()
}
