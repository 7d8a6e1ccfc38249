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
//! Redis pub/sub delivers at most once; the [`outbox`](super::outbox) holds
//! and resends broadcasts until every listening node has them, and each
//! node drops what it had already and counts what it missed (a gap in a
//! sender's numbers). Events for one session are not held: what they carry
//! is in the store, or the sender waits for a receipt.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bayeux::{Bayeux, Relay};
use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::aio::ConnectionManagerConfig;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use super::outbox::{self, Arrival, Outbox, Sequence};

/// The header line before each relayed message.
#[derive(Serialize, Deserialize)]
struct Header<'a> {
    /// The node that relayed it.
    #[serde(borrow)]
    from: &'a str,
    /// Which run of that node (its sequence numbers start again with each).
    run: u64,
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
    /// The sender stops listening (a graceful stop).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    leaving: bool,
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
    fn new(from: &'a str, run: u64, channel: &'a str) -> Self {
        Self {
            from,
            run,
            channel,
            to: None,
            ask: None,
            receipt: None,
            outcome: None,
            leaving: false,
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

/// What this node took from each other node's run, by stream.
#[derive(Default)]
struct Heard {
    run: u64,
    broadcasts: Sequence,
    events: Sequence,
}

pub struct RedisBus {
    node_id: String,
    /// This run's number, random: a restarted node's messages are told
    /// from its previous run's.
    run: u64,
    prefix: String,
    bayeux: Weak<Bayeux>,
    outbox: Outbox,
    /// Events sent with `ask`, waiting for their receipt.
    receipts: Mutex<HashMap<u64, oneshot::Sender<Receipt>>>,
    next_ask: AtomicU64,
    /// Only the receiving task takes this lock.
    heard: Mutex<HashMap<String, Heard>>,
    /// Broadcasts of other nodes that never arrived (gaps in their numbers).
    missed: AtomicU64,
}

fn frame(header: &Header<'_>, body: &[u8]) -> Vec<u8> {
    outbox::frame(|payload| {
        serde_json::to_writer(&mut *payload, header).expect("a header always encodes");
        payload.push(b'\n');
        payload.extend_from_slice(body);
    })
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
        // Bounded, so that a Redis that stopped answering (a partition) is
        // a failed pipeline, held and tried again, not a hung one.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let conn = client.get_connection_manager_with_config(config).await?;
        let channels = [broadcast_channel(prefix), node_channel(prefix, node_id)];
        let pubsub = subscribe(&client, &channels).await?;
        let bus = Arc::new(Self {
            node_id: node_id.to_owned(),
            run: rand::random(),
            prefix: prefix.to_owned(),
            bayeux: Arc::downgrade(bayeux),
            outbox: Outbox::start(conn, broadcast_channel(prefix), max_queued),
            receipts: Mutex::new(HashMap::new()),
            next_ask: AtomicU64::new(1),
            heard: Mutex::new(HashMap::new()),
            missed: AtomicU64::new(0),
        });
        tokio::spawn(receive_loop(client, channels, pubsub, Arc::downgrade(&bus)));
        Ok(bus)
    }

    fn broadcast_channel(&self) -> String {
        broadcast_channel(&self.prefix)
    }

    fn node_channel(&self, node: &str) -> String {
        node_channel(&self.prefix, node)
    }

    fn header<'a>(&'a self, channel: &'a str) -> Header<'a> {
        Header::new(&self.node_id, self.run, channel)
    }

    /// A graceful stop: waits until what this node relays has arrived, at
    /// most `bound`, then tells the other nodes it no longer listens (so
    /// their broadcasts do not wait for it); whether everything arrived.
    pub async fn leave(&self, bound: Duration) -> bool {
        let mut leaving = self.header("");
        leaving.leaving = true;
        self.outbox
            .send(self.broadcast_channel(), frame(&leaving, b""), false);
        self.outbox.drain(bound).await
    }

    /// Messages dropped at the out-queue's bound, and broadcasts of other
    /// nodes that never arrived, since start.
    pub fn losses(&self) -> (u64, u64) {
        (self.outbox.dropped(), self.missed.load(Ordering::Relaxed))
    }

    /// Bytes waiting to leave for Redis.
    pub fn queued_bytes(&self) -> usize {
        self.outbox.queued_bytes()
    }

    /// Delivers `data` on `channel` to the session `client_id`, on whichever
    /// node holds it. Returns false when the session is known to be gone
    /// (here) or `client_id` is no clientId.
    pub fn deliver(&self, client_id: &str, channel: &str, data: &RawValue) -> bool {
        match node_of(client_id) {
            None => false,
            Some(node) if node == self.node_id => self.deliver_here(client_id, channel, data),
            Some(node) => {
                let mut header = self.header(channel);
                header.to = Some(client_id);
                self.outbox.send(
                    self.node_channel(node),
                    frame(&header, data.get().as_bytes()),
                    false,
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
        let mut header = self.header(channel);
        header.to = Some(client_id);
        header.ask = Some(ask);
        self.outbox.send(
            self.node_channel(node),
            frame(&header, data.get().as_bytes()),
            false,
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
        let framed = outbox::unframe(payload).and_then(|(seq, rest)| {
            let newline = rest.iter().position(|&b| b == b'\n')?;
            let header = serde_json::from_slice::<Header>(&rest[..newline]).ok()?;
            Some((seq, header, &rest[newline + 1..]))
        });
        let Some((seq, header, body)) = framed else {
            tracing::warn!("cluster bus: a message without a readable header");
            return;
        };
        if header.from == self.node_id || !self.first_time(&header, seq) {
            return;
        }
        metrics::counter!("gmshub_bus_received_total").increment(1);
        if header.leaving {
            self.outbox.listener_left();
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
                    let mut receipt = self.header("");
                    receipt.receipt = Some(ask);
                    receipt.outcome = Some(outcome);
                    self.outbox
                        .send(self.node_channel(header.from), frame(&receipt, b""), false);
                }
            }
        }
    }

    /// Whether this message is new from its sender (one sent again after a
    /// fault is not); counts the broadcasts that never came.
    fn first_time(&self, header: &Header<'_>, seq: u64) -> bool {
        let mut heard = self.heard.lock();
        // A String only for a sender heard for the first time.
        if !heard.contains_key(header.from) {
            heard.insert(header.from.to_owned(), Heard::default());
        }
        let from = heard.get_mut(header.from).expect("just made sure");
        if from.run != header.run {
            *from = Heard {
                run: header.run,
                ..Heard::default()
            };
        }
        let broadcast = header.to.is_none() && header.receipt.is_none() && !header.leaving;
        let stream = if broadcast {
            &mut from.broadcasts
        } else {
            &mut from.events
        };
        match stream.arrive(seq) {
            Arrival::Again => false,
            Arrival::New { missed } => {
                if missed > 0 {
                    metrics::counter!("gmshub_bus_dropped_total", "reason" => "missed")
                        .increment(missed);
                    let total = self.missed.fetch_add(missed, Ordering::Relaxed) + missed;
                    tracing::warn!(
                        from = header.from,
                        missed,
                        total,
                        "cluster bus: broadcasts from another node never arrived"
                    );
                }
                true
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
        let header = self.header(channel);
        self.outbox
            .send(self.broadcast_channel(), frame(&header, message), true);
    }
}

fn broadcast_channel(prefix: &str) -> String {
    format!("{prefix}:bus:broadcast")
}

fn node_channel(prefix: &str, node: &str) -> String {
    format!("{prefix}:bus:node:{node}")
}

/// Subscribes on a new connection, within the same bound as the outbox's
/// connection (a Redis cut off must not hang the resubscription).
async fn subscribe(
    client: &redis::Client,
    channels: &[String],
) -> Result<redis::aio::PubSub, redis::RedisError> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        for channel in channels {
            pubsub.subscribe(channel).await?;
        }
        Ok(pubsub)
    };
    tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .map_err(|_| {
            redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer from Redis in 3 s",
            ))
        })?
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
            metrics::counter!("gmshub_bus_reconnects_total").increment(1);
        }
        tokio::time::sleep(backoff).await;
        // Well inside the outbox's wait for listeners, so that a Redis
        // restart loses no broadcast.
        backoff = (backoff * 2).min(Duration::from_millis(800));
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
