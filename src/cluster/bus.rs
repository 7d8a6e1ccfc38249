//! The cluster bus over Redis pub/sub: how the nodes of a cluster act as one
//! Bayeux server.
//!
//! - Broadcasts: each node relays every broadcast it fans out to the Redis
//!   channel `P:bus:broadcast`, encoded once as its own subscribers got it;
//!   every other node fans it out to its own subscribers (never relaying it
//!   again), so each subscriber of the cluster gets it once.
//! - Events for one session: a clientId starts with the id of the node that
//!   holds it (`NODE.hex`); [`RedisBus::deliver`] delivers locally or sends
//!   the event to `P:bus:node:NODE`, which only that node listens to.
//!
//! Redis pub/sub delivers at most once: what is published while a node's
//! subscription is down (a Redis restart) is not replayed to it. That is
//! the Bayeux contract too (a broadcast reaches the sessions connected when
//! it is published); what must not be lost lives in the store.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bayeux::{Bayeux, Relay};
use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

/// The header line before each relayed message.
#[derive(Serialize, Deserialize)]
struct Header<'a> {
    /// The node that relayed it.
    #[serde(borrow)]
    from: &'a str,
    #[serde(borrow)]
    channel: &'a str,
    /// For an event to one session: its clientId.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
}

struct Outgoing {
    redis_channel: String,
    payload: Vec<u8>,
}

pub struct RedisBus {
    node_id: String,
    prefix: String,
    bayeux: Weak<Bayeux>,
    out: mpsc::UnboundedSender<Outgoing>,
    /// Bytes waiting to be published, bounded by `max_queued`.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    dropped: AtomicU64,
}

fn frame(header: &Header<'_>, body: &[u8]) -> Vec<u8> {
    let mut payload = serde_json::to_vec(header).expect("a header always encodes");
    payload.push(b'\n');
    payload.extend_from_slice(body);
    payload
}

impl RedisBus {
    /// Connects both directions and subscribes before returning, so that
    /// nothing published after the node starts serving is missed.
    pub async fn start(
        url: &str,
        prefix: &str,
        node_id: &str,
        bayeux: &Arc<Bayeux>,
        max_queued: usize,
    ) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let bus = Arc::new(Self {
            node_id: node_id.to_owned(),
            prefix: prefix.to_owned(),
            bayeux: Arc::downgrade(bayeux),
            out: tx,
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued,
            dropped: AtomicU64::new(0),
        });
        let channels = [bus.broadcast_channel(), bus.node_channel(node_id)];
        let pubsub = subscribe(&client, &channels).await?;
        tokio::spawn(publish_loop(conn, rx, bus.queued.clone()));
        tokio::spawn(receive_loop(client, channels, pubsub, Arc::downgrade(&bus)));
        Ok(bus)
    }

    fn broadcast_channel(&self) -> String {
        format!("{}:bus:broadcast", self.prefix)
    }

    fn node_channel(&self, node: &str) -> String {
        format!("{}:bus:node:{node}", self.prefix)
    }

    fn send(&self, redis_channel: String, payload: Vec<u8>) {
        let size = payload.len();
        if self.queued.fetch_add(size, Ordering::Relaxed) + size > self.max_queued {
            self.queued.fetch_sub(size, Ordering::Relaxed);
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n + 1,
                    "cluster bus queue full ([cluster] bus-queue): messages dropped"
                );
            }
            return;
        }
        if self
            .out
            .send(Outgoing {
                redis_channel,
                payload,
            })
            .is_err()
        {
            self.queued.fetch_sub(size, Ordering::Relaxed);
        }
    }

    /// Whether `client_id` names a session of this node.
    pub fn is_local(&self, client_id: &str) -> bool {
        client_id
            .rsplit_once('.')
            .is_some_and(|(node, _)| node == self.node_id)
    }

    /// Delivers `data` on `channel` to the session `client_id`, on whichever
    /// node holds it. Returns false when the session is known to be gone
    /// (here) or its node cannot be told from the id.
    pub fn deliver(&self, client_id: &str, channel: &str, data: &RawValue) -> bool {
        let Some((node, _)) = client_id.rsplit_once('.') else {
            return false;
        };
        if node == self.node_id {
            let Some(bayeux) = self.bayeux.upgrade() else {
                return false;
            };
            return match bayeux.session(client_id) {
                Some(session) => bayeux.deliver(&session, channel, data).unwrap_or(false),
                None => false,
            };
        }
        let header = Header {
            from: &self.node_id,
            channel,
            to: Some(client_id),
        };
        self.send(
            self.node_channel(node),
            frame(&header, data.get().as_bytes()),
        );
        true
    }

    fn receive(&self, payload: &[u8]) {
        let Some(newline) = payload.iter().position(|&b| b == b'\n') else {
            tracing::warn!("cluster bus: a message without header");
            return;
        };
        let Ok(header) = serde_json::from_slice::<Header>(&payload[..newline]) else {
            tracing::warn!("cluster bus: a message with a bad header");
            return;
        };
        if header.from == self.node_id {
            return;
        }
        let Some(bayeux) = self.bayeux.upgrade() else {
            return;
        };
        let body = &payload[newline + 1..];
        match header.to {
            None => {
                if let Err(e) = bayeux.fan_out_relayed(header.channel, Bytes::copy_from_slice(body))
                {
                    tracing::warn!(channel = header.channel, "cluster bus: {e}");
                }
            }
            Some(client_id) => {
                let data = std::str::from_utf8(body)
                    .ok()
                    .and_then(|s| RawValue::from_string(s.to_owned()).ok());
                match (data, bayeux.session(client_id)) {
                    (Some(data), Some(session)) => {
                        let _ = bayeux.deliver(&session, header.channel, &data);
                    }
                    (None, _) => tracing::warn!("cluster bus: an event that is not JSON"),
                    (_, None) => tracing::debug!("cluster bus: event for a session that is gone"),
                }
            }
        }
    }
}

impl Relay for RedisBus {
    fn broadcast(&self, channel: &str, message: &Bytes) {
        let header = Header {
            from: &self.node_id,
            channel,
            to: None,
        };
        self.send(self.broadcast_channel(), frame(&header, message));
    }
}

async fn subscribe(
    client: &redis::Client,
    channels: &[String],
) -> Result<redis::aio::PubSub, redis::RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    for channel in channels {
        pubsub.subscribe(channel).await?;
    }
    Ok(pubsub)
}

/// Publishes what the node relays, in order, each time as one pipeline of
/// everything that is waiting.
async fn publish_loop(
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    queued: Arc<AtomicUsize>,
) {
    const BATCH: usize = 512;
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        let mut size = 0;
        for m in batch.drain(..) {
            size += m.payload.len();
            pipe.cmd("PUBLISH")
                .arg(m.redis_channel)
                .arg(m.payload)
                .ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!("cluster bus: publishing failed: {e}");
        }
        queued.fetch_sub(size, Ordering::Relaxed);
    }
}

/// Hands what other nodes relay to this node's sessions; resubscribes when
/// the connection to Redis drops.
async fn receive_loop(
    client: redis::Client,
    channels: [String; 2],
    first: redis::aio::PubSub,
    bus: Weak<RedisBus>,
) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        if let Some(conn) = pubsub.take() {
            backoff = Duration::from_millis(100);
            let mut messages = conn.into_on_message();
            while let Some(msg) = messages.next().await {
                let Some(bus) = bus.upgrade() else { return };
                bus.receive(msg.get_payload_bytes());
            }
            tracing::warn!("cluster bus: subscription to Redis lost; reconnecting");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        if bus.strong_count() == 0 {
            return;
        }
        match subscribe(&client, &channels).await {
            Ok(conn) => {
                tracing::info!("cluster bus: subscribed to Redis again");
                pubsub = Some(conn);
            }
            Err(e) => tracing::warn!("cluster bus: cannot subscribe to Redis: {e}"),
        }
    }
}
