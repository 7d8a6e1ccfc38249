//! The cluster bus over Redis pub/sub: how the nodes of a cluster act as one
//! Bayeux server.
//!
//! - Broadcasts: each node relays every broadcast it fans out to the Redis
//!   channel `P:bus:broadcast`, encoded once as its own subscribers got it;
//!   every other node fans it out to its own subscribers (never relaying it
//!   again), so each subscriber of the cluster gets it once.
//! - Events for one session: a clientId is the id of the node that holds it,
//!   a dot and 40 hex digits (`NODE.hex`, see [`node_of`]);
//!   [`RedisBus::deliver`] delivers locally or sends the event to
//!   `P:bus:node:NODE`, which only that node listens to.
//!   [`RedisBus::deliver_confirmed`] also waits for that node's receipt
//!   (queued, or no such session), so a push is counted delivered only when
//!   it was.
//!
//! Redis pub/sub delivers at most once: what is published while a node's
//! subscription is down (a Redis restart) is not replayed to it. That is
//! the Bayeux contract too (a broadcast reaches the sessions connected when
//! it is published); what must not be lost lives in the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bayeux::{Bayeux, Relay};
use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

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
    /// The sender wants a receipt for this event, under this number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ask: Option<u64>,
    /// This message is the receipt for the sender's event of that number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receipt: Option<u64>,
    /// With a receipt: what became of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<Receipt>,
}

/// What the node holding a session did with an event for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Receipt {
    /// In the session's queue.
    Queued,
    /// The session is there, but its queue took nothing (`drop-oldest`
    /// and a message too large for it): worth trying again.
    Full,
    /// No such session (ended, expired, or never was).
    Gone,
}

impl<'a> Header<'a> {
    fn new(from: &'a str, channel: &'a str) -> Self {
        Self {
            from,
            channel,
            to: None,
            ask: None,
            receipt: None,
            outcome: None,
        }
    }
}

/// How many hex digits follow the node in a clientId (the engine's 20
/// random bytes).
const CLIENT_ID_HEX: usize = 40;

/// The node a clientId names, if it is one (`NODE.` and 40 hex digits):
/// `gms_user` names such as `jane.doe@example.com` are not.
pub fn node_of(client_id: &str) -> Option<&str> {
    let (node, random) = client_id.rsplit_once('.')?;
    let hex = random.len() == CLIENT_ID_HEX
        && random
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex && !node.is_empty()).then_some(node)
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
    /// Events sent with `ask`, waiting for their receipt.
    receipts: Mutex<HashMap<u64, oneshot::Sender<Receipt>>>,
    next_ask: AtomicU64,
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
            receipts: Mutex::new(HashMap::new()),
            next_ask: AtomicU64::new(1),
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

    /// Waits until what this node relays has left for Redis, at most
    /// `bound` (a graceful stop); whether it all did.
    pub async fn drain(&self, bound: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        while self.queued.load(Ordering::Acquire) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Delivers `data` on `channel` to the session `client_id`, on whichever
    /// node holds it. Returns false when the session is known to be gone
    /// (here) or `client_id` is no clientId.
    pub fn deliver(&self, client_id: &str, channel: &str, data: &RawValue) -> bool {
        match node_of(client_id) {
            None => false,
            Some(node) if node == self.node_id => self.deliver_here(client_id, channel, data),
            Some(node) => {
                let mut header = Header::new(&self.node_id, channel);
                header.to = Some(client_id);
                self.send(
                    self.node_channel(node),
                    frame(&header, data.get().as_bytes()),
                );
                true
            }
        }
    }

    /// Like [`deliver`](Self::deliver), and says what the session's node
    /// did with it (`Gone` for what is no clientId); `None` when no receipt
    /// came within `wait` (the node is down, cut off, or the bus is).
    pub async fn deliver_confirmed(
        &self,
        client_id: &str,
        channel: &str,
        data: &RawValue,
        wait: Duration,
    ) -> Option<Receipt> {
        let Some(node) = node_of(client_id) else {
            return Some(Receipt::Gone);
        };
        if node == self.node_id {
            return self
                .bayeux
                .upgrade()
                .map(|b| deliver_to(&b, client_id, channel, data));
        }
        let ask = self.next_ask.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.receipts.lock().insert(ask, tx);
        let mut header = Header::new(&self.node_id, channel);
        header.to = Some(client_id);
        header.ask = Some(ask);
        self.send(
            self.node_channel(node),
            frame(&header, data.get().as_bytes()),
        );
        let answer = tokio::time::timeout(wait, rx).await;
        self.receipts.lock().remove(&ask);
        answer.ok().and_then(Result::ok)
    }

    fn deliver_here(&self, client_id: &str, channel: &str, data: &RawValue) -> bool {
        self.bayeux
            .upgrade()
            .is_some_and(|b| deliver_to(&b, client_id, channel, data) == Receipt::Queued)
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
        if let Some(ask) = header.receipt {
            if let (Some(waiting), Some(outcome)) =
                (self.receipts.lock().remove(&ask), header.outcome)
            {
                let _ = waiting.send(outcome);
            }
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
                let Some(data) = data else {
                    return tracing::warn!("cluster bus: an event that is not JSON");
                };
                let outcome = deliver_to(&bayeux, client_id, header.channel, &data);
                if outcome == Receipt::Gone {
                    tracing::debug!("cluster bus: event for a session that is gone");
                }
                if let Some(ask) = header.ask {
                    let mut receipt = Header::new(&self.node_id, "");
                    receipt.receipt = Some(ask);
                    receipt.outcome = Some(outcome);
                    self.send(self.node_channel(header.from), frame(&receipt, b""));
                }
            }
        }
    }
}

/// Delivers to a session of this node's engine, and says what became of it.
pub fn deliver_to(bayeux: &Bayeux, client_id: &str, channel: &str, data: &RawValue) -> Receipt {
    match bayeux.session(client_id) {
        None => Receipt::Gone,
        Some(session) => match bayeux.deliver(&session, channel, data) {
            Ok(true) => Receipt::Queued,
            // A full queue under `disconnect` ended the session.
            _ if session.is_removed() => Receipt::Gone,
            _ => Receipt::Full,
        },
    }
}

impl Relay for RedisBus {
    fn broadcast(&self, channel: &str, message: &Bytes) {
        let header = Header::new(&self.node_id, channel);
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

#[cfg(test)]
mod tests {
    use super::node_of;

    #[test]
    fn only_clientids_name_a_node() {
        let id = format!("node-1.{}", "0123456789abcdef".repeat(3).split_at(40).0);
        assert_eq!(node_of(&id), Some("node-1"));
        for not_ids in [
            "jane.doe@example.com",
            "jane.doe",
            "no-dot",
            ".0123456789abcdef0123456789abcdef01234567",
            "n.0123456789ABCDEF0123456789ABCDEF01234567",
        ] {
            assert_eq!(node_of(not_ids), None, "{not_ids}");
        }
    }
}
