//! A server session: the state the server keeps for one handshaken client.
//!
//! It owns the outbound queue (bounded in bytes), the messages sent but not
//! yet acknowledged when the ack extension is on, the list of its
//! subscriptions (so they can be dropped with it), and the signal that wakes
//! whichever transport currently carries it.
//! May use: channels, the configuration.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::value::RawValue;
use tokio::sync::Notify;

use crate::channel::ChannelName;
use crate::config::QueueFullPolicy;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RemoveReason {
    /// The client sent `/meta/disconnect`.
    Disconnected = 1,
    /// No `/meta/connect` within `maxInterval`.
    Expired = 2,
    /// The outbound queue overflowed under the `disconnect` policy.
    QueueFull = 3,
    /// The server is shutting down.
    Shutdown = 4,
    /// A server-side service ended it.
    Server = 5,
}

impl RemoveReason {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Disconnected,
            2 => Self::Expired,
            3 => Self::QueueFull,
            4 => Self::Shutdown,
            5 => Self::Server,
            _ => return None,
        })
    }

    /// The reason as the metrics name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disconnected => "disconnected",
            Self::Expired => "expired",
            Self::QueueFull => "queue-full",
            Self::Shutdown => "shutdown",
            Self::Server => "server",
        }
    }
}

/// Outcome of putting a message on a session's queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// Queued; `wake` when the queue was empty, so a waiting transport
    /// must be woken; `dropped` older messages made room for it
    /// (`drop-oldest`).
    Queued { wake: bool, dropped: usize },
    /// Not queued (`drop-oldest`): it could not fit even with every pending
    /// message dropped (larger than the bound, or unacknowledged messages
    /// fill it), so the queue is left as it was and this one is dropped.
    Dropped,
    /// The queue is full and the policy says the session must go.
    Overflow,
    /// The session is already gone.
    Gone,
}

#[derive(Default)]
struct Queues {
    /// Messages waiting to be sent.
    pending: VecDeque<Bytes>,
    /// Ack extension: messages sent in batch `.0` and not acknowledged yet.
    unacked: VecDeque<(u64, Bytes)>,
    /// Bytes held in `pending` and `unacked` together.
    bytes: usize,
    /// Ack extension: the id of the next batch.
    next_batch: u64,
    subscriptions: HashSet<ChannelName>,
}

/// One client session. Shared as `Arc<Session>` by the registry, the
/// subscription index and the transport that currently carries it.
pub struct Session {
    key: u64,
    id: Box<str>,
    browser: Option<Box<str>>,
    identity: Option<Box<str>>,
    handshake_ext: Option<Box<RawValue>>,
    /// The client address key the per-client limits counted this session
    /// under (none when exempt).
    counted_as: Option<IpAddr>,
    queues: Mutex<Queues>,
    /// Woken when the queue turns non-empty, when a new `/meta/connect`
    /// supersedes a held one, and when the session is removed.
    pub(crate) signal: Notify,
    /// Session-clock time after which the sweeper removes the session;
    /// `u64::MAX` while a `/meta/connect` is held.
    expires_at: AtomicU64,
    /// Bumped by every `/meta/connect`, so a held connect knows it was superseded.
    connect_gen: AtomicU64,
    connected: AtomicBool,
    ack: AtomicBool,
    removed: AtomicU8,
    /// Woken when the queue shrinks, for a server-side delivery waiting for
    /// room; only while one waits (`room_wanted`), so draining costs nothing
    /// otherwise.
    room: Notify,
    room_wanted: AtomicUsize,
    /// The transport of the latest connect, as `Transport`'s code (the
    /// request module, above this one, names them); long-polling until then.
    transport: AtomicU8,
}

impl Session {
    pub(crate) fn new(
        key: u64,
        id: Box<str>,
        browser: Option<Box<str>>,
        identity: Option<Box<str>>,
        handshake_ext: Option<Box<RawValue>>,
        expires_at: u64,
    ) -> Self {
        Self {
            key,
            id,
            browser,
            identity,
            handshake_ext,
            counted_as: None,
            queues: Mutex::new(Queues {
                next_batch: 1,
                ..Queues::default()
            }),
            signal: Notify::new(),
            expires_at: AtomicU64::new(expires_at),
            connect_gen: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            ack: AtomicBool::new(false),
            removed: AtomicU8::new(0),
            room: Notify::new(),
            room_wanted: AtomicUsize::new(0),
            transport: AtomicU8::new(1),
        }
    }

    /// Counted by the per-client limits under `key`.
    pub(crate) fn counted_as(mut self, key: Option<IpAddr>) -> Self {
        self.counted_as = key;
        self
    }

    /// The client address key the session is counted under, if it is.
    pub fn client_key(&self) -> Option<IpAddr> {
        self.counted_as
    }

    /// The `clientId`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A small number unique to this session within the process.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// The end user its handshake named (`BayeuxConfig::identity_header`).
    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    /// The BAYEUX_BROWSER id the session was created under.
    pub fn browser(&self) -> Option<&str> {
        self.browser.as_deref()
    }

    /// The `ext` the client sent with its handshake (authentication data
    /// and the like), as sent (at most `maxHandshakeExt` bytes), for
    /// services to read.
    pub fn handshake_ext(&self) -> Option<&RawValue> {
        self.handshake_ext.as_deref()
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire) != 0
    }

    pub fn removed_reason(&self) -> Option<RemoveReason> {
        RemoveReason::from_u8(self.removed.load(Ordering::Acquire))
    }

    /// Marks the session removed; only the first caller wins.
    pub(crate) fn mark_removed(&self, reason: RemoveReason) -> bool {
        let first = self
            .removed
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        self.room.notify_waiters();
        first
    }

    pub fn ack_enabled(&self) -> bool {
        self.ack.load(Ordering::Relaxed)
    }

    pub(crate) fn enable_ack(&self) {
        self.ack.store(true, Ordering::Relaxed);
    }

    /// Records the first `/meta/connect`; returns whether this was it.
    pub(crate) fn first_connect(&self) -> bool {
        !self.connected.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn next_connect_gen(&self) -> u64 {
        self.connect_gen.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub(crate) fn connect_gen(&self) -> u64 {
        self.connect_gen.load(Ordering::Acquire)
    }

    pub(crate) fn set_transport_code(&self, code: u8) {
        self.transport.store(code, Ordering::Relaxed);
    }

    pub(crate) fn transport_code(&self) -> u8 {
        self.transport.load(Ordering::Relaxed)
    }

    /// Whether a `/meta/connect` of this session is held open now.
    pub(crate) fn holds_connect(&self) -> bool {
        self.expires_at() == u64::MAX
    }

    pub(crate) fn expires_at(&self) -> u64 {
        self.expires_at.load(Ordering::Acquire)
    }

    pub(crate) fn set_expires_at(&self, at: u64) {
        self.expires_at.store(at, Ordering::Release);
    }

    /// Moves expiry to `at` if that is later; a held connect (`u64::MAX`)
    /// stays held.
    pub(crate) fn delay_expiry(&self, at: u64) {
        self.expires_at.fetch_max(at, Ordering::AcqRel);
    }

    /// Queues one encoded message.
    pub(crate) fn enqueue(&self, message: Bytes, max: usize, policy: QueueFullPolicy) -> Enqueued {
        if self.is_removed() {
            return Enqueued::Gone;
        }
        let mut q = self.queues.lock();
        let len = message.len();
        let mut dropped = 0;
        if q.bytes + len > max {
            match policy {
                QueueFullPolicy::Disconnect => return Enqueued::Overflow,
                QueueFullPolicy::DropOldest => {
                    // Unacknowledged messages are kept for redelivery: only
                    // pending ones may make room, and as few as will do.
                    let pending: usize = q.pending.iter().map(Bytes::len).sum();
                    if q.bytes - pending + len > max {
                        return Enqueued::Dropped;
                    }
                    while q.bytes + len > max {
                        let Some(old) = q.pending.pop_front() else {
                            break;
                        };
                        q.bytes -= old.len();
                        dropped += 1;
                    }
                }
            }
        }
        let was_empty = q.pending.is_empty();
        q.bytes += len;
        q.pending.push_back(message);
        Enqueued::Queued {
            wake: was_empty,
            dropped,
        }
    }

    /// Whether a `/meta/connect` reply would carry messages now.
    pub(crate) fn has_pending(&self) -> bool {
        let q = self.queues.lock();
        !q.pending.is_empty() || (self.ack_enabled() && !q.unacked.is_empty())
    }

    /// Takes every pending message (no ack extension, or a WebSocket that
    /// delivers as messages come).
    pub(crate) fn drain(&self, out: &mut Vec<Bytes>) {
        let mut q = self.queues.lock();
        let n: usize = q.pending.iter().map(Bytes::len).sum();
        q.bytes -= n;
        out.extend(q.pending.drain(..));
        drop(q);
        self.made_room();
    }

    /// Ack extension: forgets the batches up to `acked`, the last one the
    /// client says it received. What stays unacknowledged was lost on the way
    /// and goes out again with the next connect reply.
    pub(crate) fn acknowledge(&self, acked: u64) {
        let mut q = self.queues.lock();
        while q.unacked.front().is_some_and(|(b, _)| *b <= acked) {
            if let Some((_, m)) = q.unacked.pop_front() {
                q.bytes -= m.len();
            }
        }
        drop(q);
        self.made_room();
    }

    fn made_room(&self) {
        if self.room_wanted.load(Ordering::Acquire) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Queues `message` once the queue has room for it within `max`,
    /// waiting at most `wait` for the client to drain it; never overflows
    /// and never drops. `Some(wake)` when queued (`wake`: the queue was
    /// empty); `None` when the session went, the wait ran out, or the
    /// message is larger than `max` itself.
    pub(crate) async fn enqueue_with_room(
        &self,
        message: Bytes,
        max: usize,
        wait: std::time::Duration,
    ) -> Option<bool> {
        if message.len() > max {
            return None;
        }
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.room_wanted.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.room_wanted);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.is_removed() {
                return None;
            }
            {
                let mut q = self.queues.lock();
                if q.bytes + message.len() <= max {
                    let was_empty = q.pending.is_empty();
                    q.bytes += message.len();
                    q.pending.push_back(message);
                    return Some(was_empty);
                }
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return None;
            }
        }
    }

    /// Ack extension: returns every unacknowledged message (resent, in
    /// order) followed by the pending ones, which join a new batch; returns
    /// the batch's id and how many messages were resent.
    pub(crate) fn drain_acked(&self, out: &mut Vec<Bytes>) -> (u64, usize) {
        let mut q = self.queues.lock();
        let batch = q.next_batch;
        q.next_batch += 1;
        let resent = q.unacked.len();
        out.extend(q.unacked.iter().map(|(_, m)| m.clone()));
        let pending = std::mem::take(&mut q.pending);
        for m in pending {
            out.push(m.clone());
            q.unacked.push_back((batch, m));
        }
        (batch, resent)
    }

    /// Bytes currently queued or awaiting acknowledgement.
    pub fn queued_bytes(&self) -> usize {
        self.queues.lock().bytes
    }

    /// Adds the channels not yet subscribed to, all or none: `Err` when
    /// they would take the session past `max` subscriptions. `Ok` holds
    /// the ones that are new.
    pub(crate) fn add_subscriptions(
        &self,
        channels: &[ChannelName],
        max: usize,
    ) -> Result<Vec<ChannelName>, ()> {
        let mut q = self.queues.lock();
        let mut new: Vec<ChannelName> = Vec::new();
        for c in channels {
            if !q.subscriptions.contains(c) && !new.contains(c) {
                new.push(c.clone());
            }
        }
        if q.subscriptions.len() + new.len() > max {
            return Err(());
        }
        q.subscriptions.extend(new.iter().cloned());
        Ok(new)
    }

    pub(crate) fn remove_subscription(&self, channel: &ChannelName) -> bool {
        self.queues.lock().subscriptions.remove(channel)
    }

    pub(crate) fn take_subscriptions(&self) -> Vec<ChannelName> {
        std::mem::take(&mut self.queues.lock().subscriptions)
            .into_iter()
            .collect()
    }

    /// The channels and patterns the session is subscribed to.
    pub fn subscriptions(&self) -> Vec<ChannelName> {
        self.queues.lock().subscriptions.iter().cloned().collect()
    }

    pub(crate) fn wake(&self) {
        self.signal.notify_waiters();
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The clientId is a bearer credential: logs get the process-local key only.
        f.debug_struct("Session").field("key", &self.key).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn session() -> Session {
        Session::new(1, "c".into(), None, None, None, u64::MAX)
    }

    #[test]
    fn queue_is_bounded_in_bytes() {
        let s = session();
        let m = Bytes::from_static(b"0123456789");
        assert_eq!(
            s.enqueue(m.clone(), 25, QueueFullPolicy::Disconnect),
            Enqueued::Queued {
                wake: true,
                dropped: 0
            }
        );
        assert_eq!(
            s.enqueue(m.clone(), 25, QueueFullPolicy::Disconnect),
            Enqueued::Queued {
                wake: false,
                dropped: 0
            }
        );
        assert_eq!(
            s.enqueue(m.clone(), 25, QueueFullPolicy::Disconnect),
            Enqueued::Overflow
        );
        assert_eq!(
            s.enqueue(m.clone(), 25, QueueFullPolicy::DropOldest),
            Enqueued::Queued {
                wake: false,
                dropped: 1
            }
        );
        assert_eq!(s.queued_bytes(), 20);
    }

    fn pending(s: &Session) -> Vec<Bytes> {
        let mut out = Vec::new();
        s.drain(&mut out);
        out
    }

    #[test]
    fn drop_oldest_drops_as_few_of_the_oldest_as_make_room() {
        let s = session();
        for m in [&b"aaaa"[..], b"bb", b"cc"] {
            s.enqueue(Bytes::copy_from_slice(m), 10, QueueFullPolicy::DropOldest);
        }
        // 8 bytes queued; 5 more need 3 bytes of room: "aaaa" goes, only it.
        assert_eq!(
            s.enqueue(
                Bytes::from_static(b"ddddd"),
                10,
                QueueFullPolicy::DropOldest
            ),
            Enqueued::Queued {
                wake: false,
                dropped: 1
            }
        );
        assert_eq!(pending(&s), vec![&b"bb"[..], b"cc", b"ddddd"]);
    }

    #[test]
    fn a_message_larger_than_the_bound_is_dropped_and_the_queue_kept() {
        let s = session();
        s.enqueue(Bytes::from_static(b"keep"), 10, QueueFullPolicy::DropOldest);
        let big = Bytes::from_static(b"eleven byte");
        assert_eq!(
            s.enqueue(big, 10, QueueFullPolicy::DropOldest),
            Enqueued::Dropped
        );
        assert_eq!(pending(&s), vec![&b"keep"[..]], "nothing emptied for it");
    }

    #[test]
    fn unacknowledged_messages_are_never_dropped_for_new_ones() {
        let s = session();
        s.enable_ack();
        s.enqueue(
            Bytes::from_static(b"12345678"),
            10,
            QueueFullPolicy::DropOldest,
        );
        s.drain_acked(&mut Vec::new()); // sent, not acknowledged yet
        s.enqueue(Bytes::from_static(b"p"), 10, QueueFullPolicy::DropOldest);
        assert_eq!(
            s.enqueue(Bytes::from_static(b"xyz"), 10, QueueFullPolicy::DropOldest),
            Enqueued::Dropped,
            "reported, not claimed queued"
        );
        assert_eq!(
            s.queued_bytes(),
            9,
            "the unacknowledged and the pending stay"
        );
    }

    #[tokio::test]
    async fn a_delivery_with_room_waits_for_the_client_and_never_overflows() {
        let s = std::sync::Arc::new(session());
        s.enqueue(
            Bytes::from_static(b"12345678"),
            10,
            QueueFullPolicy::Disconnect,
        );
        let waiting = tokio::spawn({
            let s = s.clone();
            async move {
                s.enqueue_with_room(Bytes::from_static(b"abcde"), 10, Duration::from_secs(5))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(s.queued_bytes(), 8, "no room yet: it waits");
        assert_eq!(pending(&s), vec![&b"12345678"[..]]);
        assert_eq!(waiting.await.unwrap(), Some(true), "queued once drained");
        assert_eq!(pending(&s), vec![&b"abcde"[..]]);
        let big = s.enqueue_with_room(Bytes::from_static(b"eleven byte"), 10, Duration::ZERO);
        assert_eq!(big.await, None, "larger than the bound: refused at once");
        s.enqueue(
            Bytes::from_static(b"1234567890"),
            10,
            QueueFullPolicy::Disconnect,
        );
        let late = s.enqueue_with_room(Bytes::from_static(b"x"), 10, Duration::from_millis(20));
        assert_eq!(late.await, None, "the wait ran out");
        assert!(!s.is_removed(), "never removed for it");
    }

    #[test]
    fn unacknowledged_batches_are_resent_in_order() {
        let s = session();
        s.enable_ack();
        for m in [&b"1"[..], b"2"] {
            s.enqueue(Bytes::copy_from_slice(m), 100, QueueFullPolicy::Disconnect);
        }
        let mut out = Vec::new();
        s.acknowledge(0);
        let (b1, resent) = s.drain_acked(&mut out);
        assert_eq!((out.len(), resent), (2, 0));
        s.enqueue(Bytes::from_static(b"3"), 100, QueueFullPolicy::Disconnect);
        // The reply carrying batch b1 was lost: the client still acks 0.
        s.acknowledge(0);
        assert!(s.has_pending());
        out.clear();
        let (b2, resent) = s.drain_acked(&mut out);
        assert!(b2 > b1);
        assert_eq!(resent, 2);
        assert_eq!(out, vec![&b"1"[..], b"2", b"3"]);
        s.acknowledge(b2);
        assert!(!s.has_pending());
        assert_eq!(s.queued_bytes(), 0);
    }
}
