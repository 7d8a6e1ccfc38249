//! The dispatcher: a few workers per push type, each with its own bounded
//! queue; a device's notifications always go through the same worker, one
//! at a time, so they arrive in the order they were sent, while the worker
//! has up to `in_flight` devices' notifications under way at once (a device
//! whose endpoint never answers stalls only itself). The provider each
//! notification names, retries with exponential back-off and jitter for
//! answers that may succeed later, a listener told when a device is gone,
//! and a drain for a graceful stop. Counters per provider and outcome say
//! what happened.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::{redact, Notification, Outcome, Provider, PushType, Settled};

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Notifications waiting per push type (shared out evenly between its
    /// workers); past it, `submit` refuses.
    pub queue: usize,
    /// Workers per push type (a device always has the same one).
    pub workers: usize,
    /// Deliveries one worker has under way at once, each to another device.
    pub in_flight: usize,
    /// Attempts in all for a notification whose answers say "retry".
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            queue: 100_000,
            workers: 8,
            in_flight: 16,
            max_attempts: 5,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Told when a provider reports a device gone (the subscription goes).
pub type GoneListener = Arc<dyn Fn(&Notification) + Send + Sync>;

/// Deliveries by provider (`type/name[/debug]`) and outcome.
#[derive(Debug, Default)]
pub struct Counters {
    map: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Counters {
    /// Counts one outcome, here by provider and in the process's metrics
    /// by push type only (a provider is named by its subscriber).
    fn add(&self, n: &Notification, outcome: &'static str) {
        metrics::counter!(
            "gmshub_push_notifications_total",
            "type" => n.kind.name(),
            "outcome" => outcome
        )
        .increment(1);
        let mut label = n.kind.name().to_owned();
        if !n.provider.is_empty() {
            label = format!("{label}/{}", n.provider);
        }
        if n.debug {
            label.push_str("/debug");
        }
        *self.map.lock().entry((label, outcome)).or_default() += 1;
    }

    /// `{"ios/acme": {"delivered": 10, "retried": 1}, ...}`
    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<&'static str, u64>> {
        let mut out: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
        for ((label, outcome), n) in self.map.lock().iter() {
            out.entry(label.clone()).or_default().insert(outcome, *n);
        }
        out
    }

    pub fn get(&self, label: &str, outcome: &str) -> u64 {
        self.map
            .lock()
            .iter()
            .filter(|((l, o), _)| l == label && *o == outcome)
            .map(|(_, n)| *n)
            .sum()
    }
}

struct Job {
    n: Notification,
    attempt: u32,
}

/// The providers by (type, provider name, debug).
pub type Providers = HashMap<(PushType, String, bool), Arc<dyn Provider>>;

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the {0} push queue is full")]
    Full(&'static str),
    #[error("push type {0} is not enabled ([push] pushEnabled)")]
    Disabled(&'static str),
}

pub struct Dispatcher {
    /// One queue per worker, per push type.
    queues: HashMap<PushType, Vec<mpsc::Sender<Job>>>,
    /// The providers configured, by type, name (`""` for `[push]`'s), debug.
    providers: Arc<Providers>,
    counters: Arc<Counters>,
    /// Notifications accepted and not yet settled (delivered, gone, failed
    /// or given up), retries included.
    pending: Arc<AtomicUsize>,
}

impl Dispatcher {
    /// Starts workers for every push type that has a provider.
    pub fn start(providers: Providers, config: DispatcherConfig, gone: GoneListener) -> Arc<Self> {
        let providers = Arc::new(providers);
        let counters = Arc::new(Counters::default());
        let pending = Arc::new(AtomicUsize::new(0));
        let mut queues = HashMap::new();
        let mut types: Vec<PushType> = providers.keys().map(|(t, _, _)| *t).collect();
        types.sort();
        types.dedup();
        for kind in types {
            let workers = config.workers.max(1);
            let mut senders = Vec::with_capacity(workers);
            for _ in 0..workers {
                let (tx, rx) = mpsc::channel::<Job>((config.queue / workers).max(1));
                senders.push(tx.clone());
                let worker = Worker {
                    tx,
                    providers: providers.clone(),
                    counters: counters.clone(),
                    gone: gone.clone(),
                    config: config.clone(),
                    pending: pending.clone(),
                };
                tokio::spawn(worker.run(rx));
            }
            queues.insert(kind, senders);
        }
        Arc::new(Self {
            queues,
            providers,
            counters,
            pending,
        })
    }

    /// Notifications accepted and not settled yet.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Waits until every accepted notification is settled, at most `bound`
    /// (a graceful stop); whether they all were.
    pub async fn drain(&self, bound: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        while self.pending() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Whether a push type has a provider (so `pushEnabled` names it and
    /// its configuration is complete).
    pub fn serves(&self, kind: PushType) -> bool {
        self.queues.contains_key(&kind)
    }

    /// Whether `name` (`""`: `[push]`'s own) is a provider of `kind`, in
    /// its debug or production form.
    pub fn has_provider(&self, kind: PushType, name: &str, debug: bool) -> bool {
        self.providers.contains_key(&(kind, name.to_owned(), debug))
    }

    /// Whether that provider may send to `device_id` (an `httpcb` URL, a
    /// WNS channel URI); the reason when not.
    pub fn check_device(
        &self,
        kind: PushType,
        name: &str,
        debug: bool,
        device_id: &str,
    ) -> Result<(), String> {
        match self.providers.get(&(kind, name.to_owned(), debug)) {
            Some(provider) => provider.check_device(device_id),
            None => Ok(()),
        }
    }

    /// Queues one notification; refuses when its type is off or its queue full.
    pub fn submit(&self, n: Notification) -> Result<(), SubmitError> {
        let kind = n.kind.name();
        let Some(queues) = self.queues.get(&n.kind) else {
            return Err(SubmitError::Disabled(kind));
        };
        let queue = &queues[worker_for(&n.device_id, queues.len())];
        self.pending.fetch_add(1, Ordering::AcqRel);
        queue.try_send(Job { n, attempt: 1 }).map_err(|_| {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("gmshub_push_queue_full_total", "type" => kind).increment(1);
            SubmitError::Full(kind)
        })
    }
}

/// The worker that carries a device's notifications.
fn worker_for(device_id: &str, workers: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    device_id.hash(&mut h);
    (h.finish() % workers as u64) as usize
}

struct Worker {
    tx: mpsc::Sender<Job>,
    providers: Arc<Providers>,
    counters: Arc<Counters>,
    gone: GoneListener,
    config: DispatcherConfig,
    pending: Arc<AtomicUsize>,
}

impl Worker {
    /// Takes jobs while fewer than `in_flight` deliveries are under way; a
    /// job for a device already under way waits behind it (its order), the
    /// others start at once.
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let in_flight_max = self.config.in_flight.max(1);
        let mut in_flight = FuturesUnordered::new();
        // Devices under way, with their jobs waiting behind.
        let mut waiting: HashMap<String, VecDeque<Job>> = HashMap::new();
        let mut open = true;
        loop {
            tokio::select! {
                job = rx.recv(), if open && in_flight.len() < in_flight_max => match job {
                    Some(job) => match waiting.get_mut(&job.n.device_id) {
                        Some(behind) => behind.push_back(job),
                        None => {
                            waiting.insert(job.n.device_id.clone(), VecDeque::new());
                            in_flight.push(self.deliver(job));
                        }
                    },
                    None => open = false,
                },
                Some(device) = in_flight.next() => {
                    match waiting.get_mut(&device).and_then(VecDeque::pop_front) {
                        Some(next) => in_flight.push(self.deliver(next)),
                        None => {
                            waiting.remove(&device);
                        }
                    }
                }
                else => return,
            }
        }
    }

    /// A job settled: it is no longer pending.
    fn settled(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// Sends one job; returns its device, whose next job may go.
    async fn deliver(&self, job: Job) -> String {
        self.attempt(&job).await;
        job.n.device_id
    }

    async fn attempt(&self, job: &Job) {
        let n = &job.n;
        let key = (n.kind, n.provider.clone(), n.debug);
        let Some(provider) = self.providers.get(&key) else {
            return self.settle(n, Settled::Failed, "no such push provider configured");
        };
        let started = std::time::Instant::now();
        let outcome = provider.send(n).await;
        metrics::histogram!("gmshub_push_duration_seconds", "type" => n.kind.name())
            .record(started.elapsed());
        match outcome {
            Outcome::Delivered => {
                self.counters.add(n, "delivered");
                if let Some(tally) = &n.tally {
                    tally.count(Settled::Delivered);
                }
                self.settled();
            }
            Outcome::Gone(why) => {
                (self.gone)(n);
                self.settle(
                    n,
                    Settled::Gone,
                    &format!("device gone ({why}): subscription removed"),
                );
            }
            Outcome::Failed(why) => {
                self.settle(n, Settled::Failed, &format!("push refused: {why}"))
            }
            Outcome::Retry(why) if job.attempt < self.config.max_attempts => {
                self.counters.add(n, "retried");
                let delay = backoff(&self.config, job.attempt);
                tracing::debug!(
                    kind = n.kind.name(),
                    attempt = job.attempt,
                    ?delay,
                    why,
                    "push retried"
                );
                let (tx, pending) = (self.tx.clone(), self.pending.clone());
                let next = Job {
                    n: job.n.clone(),
                    attempt: job.attempt + 1,
                };
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if tx.send(next).await.is_err() {
                        pending.fetch_sub(1, Ordering::AcqRel);
                    }
                });
            }
            Outcome::Retry(why) => self.settle(
                n,
                Settled::Failed,
                &format!("push given up after {} attempts: {why}", job.attempt),
            ),
        }
    }

    /// A notification that was not delivered: counted, and logged — on its
    /// own line, or (one of a publish's) in its publish's one line, with
    /// only a debug line here.
    fn settle(&self, n: &Notification, outcome: Settled, what: &str) {
        self.counters.add(
            n,
            if outcome == Settled::Gone {
                "gone"
            } else {
                "failed"
            },
        );
        let (kind, device) = (n.kind.name(), redact(&n.device_id));
        match (&n.tally, outcome) {
            (Some(tally), _) => {
                tally.count(outcome);
                tracing::debug!(kind, device, provider = n.provider, "{what}");
            }
            (None, Settled::Gone) => tracing::info!(kind, device, "{what}"),
            (None, _) => tracing::warn!(kind, device, provider = n.provider, "{what}"),
        }
        self.settled();
    }
}

/// Exponential back-off with full jitter: a random delay up to
/// first × 2^(attempt-1), capped.
fn backoff(config: &DispatcherConfig, attempt: u32) -> Duration {
    let ceiling = config
        .first_backoff
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(config.max_backoff);
    let ms = ceiling.as_millis().max(1) as u64;
    Duration::from_millis(rand::random_range(ms / 2..=ms))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;

    use super::*;

    /// Answers from a script: one outcome per attempt.
    struct Scripted {
        answers: Vec<Outcome>,
        calls: AtomicU32,
    }

    #[async_trait]
    impl Provider for Scripted {
        async fn send(&self, _: &Notification) -> Outcome {
            let i = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
            self.answers.get(i).cloned().unwrap_or(Outcome::Delivered)
        }
    }

    fn notification(kind: PushType) -> Notification {
        Notification {
            subscription_id: "s1".into(),
            kind,
            provider: String::new(),
            debug: false,
            device_id: "device-token-0123456789".into(),
            authorization: None,
            tag: "t".into(),
            message: "m".into(),
            properties: BTreeMap::new(),
            tally: None,
        }
    }

    fn fast() -> DispatcherConfig {
        DispatcherConfig {
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_attempts: 3,
            ..Default::default()
        }
    }

    async fn settle(counters: &Counters, label: &str, outcome: &str, n: u64) {
        for _ in 0..200 {
            if counters.get(label, outcome) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{label} {outcome}: {:?}", counters.snapshot());
    }

    #[tokio::test]
    async fn retries_only_what_may_succeed_and_reports_gone_devices() {
        let flaky = Arc::new(Scripted {
            answers: vec![Outcome::Retry("503".into()), Outcome::Retry("429".into())],
            calls: AtomicU32::new(0),
        });
        let gone_device = Arc::new(Scripted {
            answers: vec![Outcome::Gone("410".into())],
            calls: AtomicU32::new(0),
        });
        let mut providers: Providers = HashMap::new();
        providers.insert((PushType::Ios, String::new(), false), flaky.clone());
        providers.insert((PushType::Fcm, String::new(), false), gone_device.clone());
        let gone_seen = Arc::new(AtomicU32::new(0));
        let seen = gone_seen.clone();
        let d = Dispatcher::start(
            providers,
            fast(),
            Arc::new(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            }),
        );
        d.submit(notification(PushType::Ios)).unwrap();
        d.submit(notification(PushType::Fcm)).unwrap();
        settle(d.counters(), "ios", "delivered", 1).await;
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            3,
            "two retries, then delivered"
        );
        assert_eq!(d.counters().get("ios", "retried"), 2);
        settle(d.counters(), "fcm", "gone", 1).await;
        assert_eq!(
            gone_device.calls.load(Ordering::SeqCst),
            1,
            "gone is not retried"
        );
        assert_eq!(gone_seen.load(Ordering::SeqCst), 1);
        assert!(matches!(
            d.submit(notification(PushType::Wns)),
            Err(SubmitError::Disabled("wns"))
        ));
    }

    #[tokio::test]
    async fn gives_up_after_the_last_attempt() {
        let down = Arc::new(Scripted {
            answers: vec![Outcome::Retry("500".into()); 10],
            calls: AtomicU32::new(0),
        });
        let mut providers: Providers = HashMap::new();
        providers.insert((PushType::Customhttp, String::new(), false), down.clone());
        let d = Dispatcher::start(providers, fast(), Arc::new(|_| {}));
        d.submit(notification(PushType::Customhttp)).unwrap();
        settle(d.counters(), "customhttp", "failed", 1).await;
        assert_eq!(down.calls.load(Ordering::SeqCst), 3);
    }

    /// Records what it was sent, taking longer for early messages, so that
    /// concurrent delivery would reorder them.
    struct Recorder {
        seen: Mutex<Vec<(String, String)>>,
    }

    #[async_trait]
    impl Provider for Recorder {
        async fn send(&self, n: &Notification) -> Outcome {
            let i: u64 = n.message.parse().unwrap();
            tokio::time::sleep(Duration::from_millis(20u64.saturating_sub(i))).await;
            self.seen
                .lock()
                .push((n.device_id.clone(), n.message.to_string()));
            Outcome::Delivered
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_devices_notifications_arrive_in_order() {
        let recorder = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
        });
        let mut providers: Providers = HashMap::new();
        providers.insert((PushType::Httpcb, String::new(), false), recorder.clone());
        let d = Dispatcher::start(providers, fast(), Arc::new(|_| {}));
        let devices = ["a", "b", "c"];
        for i in 0..20 {
            for device in devices {
                let mut n = notification(PushType::Httpcb);
                n.device_id = device.into();
                n.message = i.to_string().into();
                d.submit(n).unwrap();
            }
        }
        settle(d.counters(), "httpcb", "delivered", 60).await;
        let seen = recorder.seen.lock();
        for device in devices {
            let order: Vec<&str> = seen
                .iter()
                .filter(|(d, _)| d == device)
                .map(|(_, m)| m.as_str())
                .collect();
            let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
            assert_eq!(order, expected, "device {device}");
        }
    }

    /// Never answers for one device (a tarpit), at once for the others.
    struct Tarpit;

    #[async_trait]
    impl Provider for Tarpit {
        async fn send(&self, n: &Notification) -> Outcome {
            if n.device_id == "tarpit" {
                std::future::pending::<()>().await;
            }
            Outcome::Delivered
        }
    }

    #[tokio::test]
    async fn a_device_that_never_answers_stalls_only_itself() {
        let mut providers: Providers = HashMap::new();
        providers.insert((PushType::Httpcb, String::new(), false), Arc::new(Tarpit));
        // One worker: every device shares it.
        let config = DispatcherConfig {
            workers: 1,
            ..fast()
        };
        let d = Dispatcher::start(providers, config, Arc::new(|_| {}));
        for device in ["tarpit", "tarpit", "a", "b", "a", "c"] {
            let mut n = notification(PushType::Httpcb);
            n.device_id = device.into();
            d.submit(n).unwrap();
        }
        settle(d.counters(), "httpcb", "delivered", 4).await;
        assert_eq!(d.pending(), 2, "the tarpit's two wait, in order");
    }

    /// Takes 50 ms a delivery.
    struct Slow;

    #[async_trait]
    impl Provider for Slow {
        async fn send(&self, _: &Notification) -> Outcome {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Outcome::Delivered
        }
    }

    #[tokio::test]
    async fn drain_waits_for_what_is_queued_within_its_bound() {
        let mut providers: Providers = HashMap::new();
        providers.insert((PushType::Httpcb, String::new(), false), Arc::new(Slow));
        let d = Dispatcher::start(providers, fast(), Arc::new(|_| {}));
        for i in 0..10 {
            let mut n = notification(PushType::Httpcb);
            n.device_id = "one device".into();
            n.message = i.to_string().into();
            d.submit(n).unwrap();
        }
        assert!(
            !d.drain(Duration::from_millis(100)).await,
            "the bound ends it"
        );
        assert!(d.drain(Duration::from_secs(5)).await, "all sent");
        assert_eq!(d.counters().get("httpcb", "delivered"), 10);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = DispatcherConfig::default();
        for attempt in 1..10 {
            let d = backoff(&c, attempt);
            assert!(d <= c.max_backoff, "{d:?}");
        }
        assert!(backoff(&c, 1) <= Duration::from_millis(200));
    }
}
