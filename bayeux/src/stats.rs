//! What the engine has done since it started, kept as plain counters that
//! an embedding reads ([`Bayeux::stats`](crate::Bayeux::stats)) and exports
//! as it likes: the engine keeps no metrics registry, so two engines in one
//! process never mix their figures and the counting costs one relaxed
//! atomic add where it happens (per message received, per fan-out and per
//! drained batch, never per subscriber). May use: the session, the request.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::request::Transport;
use crate::session::RemoveReason;

/// What a message is, by its channel: the kinds the counters split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Meta = 0,
    Broadcast = 1,
    Service = 2,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Meta, Kind::Broadcast, Kind::Service];

    pub fn of(channel: &str) -> Kind {
        if channel.starts_with("/meta/") {
            Kind::Meta
        } else if channel.starts_with("/service/") {
            Kind::Service
        } else {
            Kind::Broadcast
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Meta => "meta",
            Kind::Broadcast => "broadcast",
            Kind::Service => "service",
        }
    }
}

/// Why sessions ended, in the order of [`RemoveReason`]'s values.
pub const REMOVE_REASONS: [RemoveReason; 5] = [
    RemoveReason::Disconnected,
    RemoveReason::Expired,
    RemoveReason::QueueFull,
    RemoveReason::Shutdown,
    RemoveReason::Server,
];

/// The engine's running counts.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    handshakes: AtomicU64,
    handshakes_refused: AtomicU64,
    messages_in: [AtomicU64; 3],
    messages_out: [AtomicU64; 3],
    deliveries: AtomicU64,
    dropped: AtomicU64,
    redelivered: AtomicU64,
    removed: [AtomicU64; 5],
}

fn add(counter: &AtomicU64, n: usize) {
    if n > 0 {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Counters {
    pub(crate) fn handshake(&self, accepted: bool) {
        let counter = if accepted {
            &self.handshakes
        } else {
            &self.handshakes_refused
        };
        add(counter, 1);
    }

    pub(crate) fn received(&self, kind: Kind) {
        add(&self.messages_in[kind as usize], 1);
    }

    pub(crate) fn queued(&self, kind: Kind, n: usize) {
        add(&self.messages_out[kind as usize], n);
    }

    pub(crate) fn delivered(&self, n: usize) {
        add(&self.deliveries, n);
    }

    pub(crate) fn dropped(&self, n: usize) {
        add(&self.dropped, n);
    }

    pub(crate) fn redelivered(&self, n: usize) {
        add(&self.redelivered, n);
    }

    pub(crate) fn removed(&self, reason: RemoveReason) {
        add(&self.removed[reason as usize - 1], 1);
    }

    pub(crate) fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            handshakes: load(&self.handshakes),
            handshakes_refused: load(&self.handshakes_refused),
            messages_in: self.messages_in.each_ref().map(load),
            messages_out: self.messages_out.each_ref().map(load),
            deliveries: load(&self.deliveries),
            dropped: load(&self.dropped),
            redelivered: load(&self.redelivered),
            removed: self.removed.each_ref().map(load),
            sessions: [0; 3],
            held_connects: 0,
        }
    }
}

/// A reading of the engine's counters, and of its sessions at that moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Handshakes answered with a session.
    pub handshakes: u64,
    /// Handshakes refused (limits, policy, shutdown, bad requests).
    pub handshakes_refused: u64,
    /// Messages received from clients, by [`Kind`].
    pub messages_in: [u64; 3],
    /// Messages sent: meta replies (a held connect's when it is taken),
    /// and broadcast and service messages queued to sessions, by [`Kind`].
    pub messages_out: [u64; 3],
    /// Queued messages written to a transport (each resent one again).
    pub deliveries: u64,
    /// Messages dropped under `maxQueuePolicy = drop-oldest`.
    pub dropped: u64,
    /// Messages the ack extension sent again (unacknowledged at the next
    /// connect).
    pub redelivered: u64,
    /// Sessions ended, by reason (in the order of [`REMOVE_REASONS`]).
    pub removed: [u64; 5],
    /// Live sessions by the transport of their latest connect (in the order
    /// of [`Transport::ALL`]); a session not connected yet counts as
    /// long-polling, the transport every client starts with.
    pub sessions: [u64; 3],
    /// Connects held open now.
    pub held_connects: u64,
}

impl Stats {
    pub fn messages_in(&self, kind: Kind) -> u64 {
        self.messages_in[kind as usize]
    }

    pub fn messages_out(&self, kind: Kind) -> u64 {
        self.messages_out[kind as usize]
    }

    pub fn removed(&self, reason: RemoveReason) -> u64 {
        self.removed[reason as usize - 1]
    }

    pub fn sessions(&self, transport: Transport) -> u64 {
        self.sessions[transport as usize]
    }
}
