//! The bus's way out to Redis: what this node relays, numbered and published
//! in order, in pipelines of everything waiting, and kept until it has
//! arrived.
//!
//! Redis pub/sub forgets a message as soon as it is published: a pipeline
//! that fails with the connection (Redis restarting) may or may not have
//! reached it, and a node whose subscription is down at that moment never
//! sees it. So nothing leaves this outbox on the word of a socket:
//! - a pipeline that fails is sent again, whole, when Redis is back;
//! - a broadcast is done when `PUBLISH` says it reached as many nodes as
//!   were listening before; one that reached fewer is held, with everything
//!   after it, until they are listening again (at most [`LISTENER_WAIT`],
//!   after which the missing ones count as gone), and then sent again.
//!
//! Sending again may deliver a message twice; each message carries its
//! stream's sequence number (broadcasts and events to one node are counted
//! apart, per run of the sender) so that receivers drop what they had, and
//! see what they missed ([`Sequence`]). Events for one session are not held
//! (their node may be gone for good; what they carry is in the store, or
//! the sender waits for a receipt).
//!
//! May use: redis.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

/// How long broadcasts wait for a node that stopped listening to listen
/// again (a Redis restart, a node resubscribing) before it counts as gone.
pub const LISTENER_WAIT: Duration = Duration::from_secs(3);

/// The longest wait between two tries while Redis cannot be reached.
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Messages per pipeline.
const BATCH: usize = 512;

/// Each message starts with its sequence number: 16 hex digits and a newline.
const SEQ_LEN: usize = 17;

/// A message on the bus: its sequence line, then what the bus put in it.
pub fn frame(rest: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut payload = Vec::with_capacity(256);
    payload.extend_from_slice(b"0000000000000000\n");
    rest(&mut payload);
    payload
}

/// A message's sequence number and the rest of it.
pub fn unframe(payload: &[u8]) -> Option<(u64, &[u8])> {
    let seq = std::str::from_utf8(payload.get(..SEQ_LEN - 1)?).ok()?;
    let seq = u64::from_str_radix(seq, 16).ok()?;
    (payload.get(SEQ_LEN - 1) == Some(&b'\n')).then(|| (seq, &payload[SEQ_LEN..]))
}

/// What a receiver knows of one sender's stream: the last number it took.
#[derive(Default)]
pub struct Sequence {
    last: u64,
}

/// What became of a message on a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    /// New: take it (and this many before it never came).
    New { missed: u64 },
    /// Had already: a message sent again.
    Again,
}

impl Sequence {
    pub fn arrive(&mut self, seq: u64) -> Arrival {
        if seq <= self.last {
            return Arrival::Again;
        }
        // The first message seen from a sender says nothing of what came
        // before it (this node joined later).
        let missed = if self.last == 0 {
            0
        } else {
            seq - self.last - 1
        };
        self.last = seq;
        Arrival::New { missed }
    }
}

struct Outgoing {
    redis_channel: String,
    payload: Vec<u8>,
    broadcast: bool,
}

/// The sending half: bounded in bytes (what waits plus what is held).
pub struct Outbox {
    tx: mpsc::UnboundedSender<Outgoing>,
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    dropped: AtomicU64,
    /// How many subscribers broadcasts reach when every node listens.
    listeners: Arc<AtomicUsize>,
}

impl Outbox {
    pub fn start(conn: ConnectionManager, broadcast_channel: String, max_queued: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = Self {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued,
            dropped: AtomicU64::new(0),
            listeners: Arc::new(AtomicUsize::new(0)),
        };
        let publisher = Publisher {
            conn,
            broadcast_channel,
            queued: outbox.queued.clone(),
            listeners: outbox.listeners.clone(),
            pending: VecDeque::new(),
            next: [1, 1],
        };
        tokio::spawn(publisher.run(rx));
        outbox
    }

    /// Queues a message built with [`frame`]; drops it (counted, logged) when
    /// the bound is reached.
    pub fn send(&self, redis_channel: String, payload: Vec<u8>, broadcast: bool) {
        let size = payload.len();
        if self.queued.fetch_add(size, Ordering::Relaxed) + size > self.max_queued {
            self.queued.fetch_sub(size, Ordering::Relaxed);
            metrics::counter!("gmshub_bus_dropped_total", "reason" => "queue-full").increment(1);
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n + 1,
                    "cluster bus queue full ([cluster] bus-queue): messages dropped"
                );
            }
            return;
        }
        let message = Outgoing {
            redis_channel,
            payload,
            broadcast,
        };
        if self.tx.send(message).is_err() {
            self.queued.fetch_sub(size, Ordering::Relaxed);
            return;
        }
        metrics::counter!("gmshub_bus_published_total").increment(1);
    }

    /// Bytes waiting to leave for Redis.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Messages dropped at the bound since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A node said it stops listening: broadcasts need not wait for it.
    pub fn listener_left(&self) {
        let _ = self
            .listeners
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Waits until everything queued has arrived, at most `bound`; whether
    /// it all did.
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
}

struct Publisher {
    conn: ConnectionManager,
    broadcast_channel: String,
    queued: Arc<AtomicUsize>,
    listeners: Arc<AtomicUsize>,
    /// Numbered, not yet known to have arrived, in order.
    pending: VecDeque<Outgoing>,
    /// The next sequence number of each stream: events, broadcasts.
    next: [u64; 2],
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
        let mut retry = Duration::from_millis(50);
        let mut failing = false;
        loop {
            if self.pending.is_empty() {
                match rx.recv().await {
                    Some(m) => self.number(m),
                    None => return,
                }
            }
            while self.pending.len() < BATCH {
                match rx.try_recv() {
                    Ok(m) => self.number(m),
                    Err(_) => break,
                }
            }
            let sent = self.pending.len().min(BATCH);
            let mut pipe = redis::pipe();
            for m in self.pending.iter().take(sent) {
                pipe.cmd("PUBLISH").arg(&m.redis_channel).arg(&m.payload);
            }
            let reached = match pipe.query_async::<Vec<usize>>(&mut self.conn).await {
                Ok(reached) => reached,
                Err(e) => {
                    if !failing {
                        tracing::warn!("cluster bus: publishing failed, holding messages: {e}");
                        failing = true;
                    }
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                    continue;
                }
            };
            if failing {
                tracing::info!("cluster bus: publishing again");
                failing = false;
                retry = Duration::from_millis(50);
            }
            if self.settle(&reached) < sent {
                self.wait_for_listeners().await;
            }
        }
    }

    fn number(&mut self, mut m: Outgoing) {
        use std::io::Write as _;
        let next = &mut self.next[usize::from(m.broadcast)];
        // Written in place: every relayed message passes here.
        let _ = write!(&mut m.payload[..SEQ_LEN - 1], "{:016x}", *next);
        *next += 1;
        self.pending.push_back(m);
    }

    /// Removes what arrived (up to the first broadcast that reached fewer
    /// nodes than listen) and returns how many.
    fn settle(&mut self, reached: &[usize]) -> usize {
        let listeners = self.listeners.load(Ordering::Relaxed);
        let mut most = listeners;
        let mut done = 0;
        for (m, &n) in self.pending.iter().zip(reached) {
            if m.broadcast {
                if n < listeners {
                    break;
                }
                most = most.max(n);
            }
            done += 1;
        }
        // More listen than before: a node joined.
        self.listeners.fetch_max(most, Ordering::Relaxed);
        let size: usize = self.pending.drain(..done).map(|m| m.payload.len()).sum();
        self.queued.fetch_sub(size, Ordering::Release);
        done
    }

    /// Waits until as many listen to broadcasts as before, at most
    /// [`LISTENER_WAIT`]; then those still missing count as gone.
    async fn wait_for_listeners(&mut self) {
        let deadline = tokio::time::Instant::now() + LISTENER_WAIT;
        loop {
            let listening = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&self.broadcast_channel)
                .query_async::<(String, usize)>(&mut self.conn)
                .await
                .map_or(0, |(_, n)| n);
            let expected = self.listeners.load(Ordering::Relaxed);
            if listening >= expected {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    expected,
                    listening,
                    "cluster bus: nodes stopped listening; broadcasts go on without them"
                );
                self.listeners.store(listening, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_carries_its_number() {
        let mut payload = frame(|p| p.extend_from_slice(b"{}\nbody"));
        payload[..16].copy_from_slice(b"00000000000000ff");
        assert_eq!(unframe(&payload), Some((255, &b"{}\nbody"[..])));
        assert_eq!(unframe(b"short"), None);
        assert_eq!(unframe(b"zz00000000000000\nx"), None);
    }

    #[test]
    fn a_sequence_drops_repeats_and_counts_gaps() {
        let mut s = Sequence::default();
        assert_eq!(s.arrive(7), Arrival::New { missed: 0 });
        assert_eq!(s.arrive(8), Arrival::New { missed: 0 });
        assert_eq!(s.arrive(8), Arrival::Again);
        assert_eq!(s.arrive(5), Arrival::Again);
        assert_eq!(s.arrive(11), Arrival::New { missed: 2 });
    }
}
