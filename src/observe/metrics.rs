//! Prometheus metrics: the process's one recorder (the `metrics` facade has
//! one per process; the libraries count through it where things happen),
//! the series it exports with their help texts ([`SERIES`], which the
//! operator's documentation is checked against), and a scrape: what the
//! engines keep as plain counters (the Bayeux engine's, which a hot path
//! cannot afford to look up in a registry) and the gauges read at that
//! moment, then the text exposition.
//!
//! Label values are bounded: kinds, states, outcomes, push types,
//! configured service names and route templates, never an id or anything a
//! client chose.

use std::sync::{Arc, OnceLock};

use bayeux::{Bayeux, Kind, RemoveReason, Transport};
use channels::chat::Agents;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::cluster::RedisBus;

/// What a series is, for its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

/// Every series gmshub exports (the process's `process_*` aside), with its
/// type, labels and help.
#[rustfmt::skip]
pub const SERIES: &[(&str, Type, &str, &str)] = &[
    ("gmshub_bayeux_sessions", Type::Gauge, "transport", "Live Bayeux sessions, by the transport of their latest connect"),
    ("gmshub_bayeux_held_connects", Type::Gauge, "", "/meta/connect requests held open now"),
    ("gmshub_bayeux_handshakes_total", Type::Counter, "outcome", "Handshakes, accepted or refused"),
    ("gmshub_bayeux_messages_in_total", Type::Counter, "kind", "Bayeux messages received, by kind (meta, broadcast, service)"),
    ("gmshub_bayeux_messages_out_total", Type::Counter, "kind", "Meta replies, and broadcast and service messages queued to sessions"),
    ("gmshub_bayeux_deliveries_total", Type::Counter, "", "Queued messages written to a transport"),
    ("gmshub_bayeux_queue_drops_total", Type::Counter, "policy", "Messages dropped (drop-oldest) or sessions removed (disconnect) for a full queue"),
    ("gmshub_bayeux_ack_redeliveries_total", Type::Counter, "", "Messages the ack extension sent again"),
    ("gmshub_bayeux_sessions_removed_total", Type::Counter, "reason", "Sessions ended, by reason (expired: no connect within maxInterval)"),
    ("gmshub_connections", Type::Gauge, "", "Open TCP connections, all listeners"),
    ("gmshub_connections_refused_total", Type::Counter, "", "Connections closed as accepted, over a [server] limit"),
    ("gmshub_http_requests_total", Type::Counter, "route,method,status", "HTTP requests, by route template, method and status"),
    ("gmshub_http_request_duration_seconds", Type::Histogram, "route", "HTTP request time to the response head, by route template"),
    ("gmshub_push_notifications_total", Type::Counter, "type,outcome", "Push notifications by type and outcome (delivered, retried, gone, failed)"),
    ("gmshub_push_duration_seconds", Type::Histogram, "type", "Time of one push attempt, by type"),
    ("gmshub_push_queue_depth", Type::Gauge, "", "Push notifications queued or under way, retries included"),
    ("gmshub_push_queue_full_total", Type::Counter, "type", "Push notifications refused for a full queue"),
    ("gmshub_chats", Type::Gauge, "state", "Open chats by state, as of the last idle check (store-wide)"),
    ("gmshub_chat_events_total", Type::Counter, "type", "Chat transcript events written, by type"),
    ("gmshub_agents_ready", Type::Gauge, "", "Configured agents whose presence is ready"),
    ("gmshub_callbacks_total", Type::Counter, "service,state", "Callbacks entering a state, by service"),
    ("gmshub_callback_scheduler_lag_seconds", Type::Histogram, "", "How late the scheduler found a callback that came due"),
    ("gmshub_store_operations_total", Type::Counter, "backend,operation", "Store operations, by backend and operation"),
    ("gmshub_store_errors_total", Type::Counter, "backend,operation", "Store operations that failed"),
    ("gmshub_store_operation_duration_seconds", Type::Histogram, "backend,operation", "Store operation time"),
    ("gmshub_bus_published_total", Type::Counter, "", "Messages this node put on the cluster bus"),
    ("gmshub_bus_received_total", Type::Counter, "", "Messages from other nodes taken off the cluster bus"),
    ("gmshub_bus_dropped_total", Type::Counter, "reason", "Bus messages lost: queue-full here, missed from another node"),
    ("gmshub_bus_reconnects_total", Type::Counter, "", "Times the bus's subscription to Redis was lost and made again"),
    ("gmshub_bus_queued_bytes", Type::Gauge, "", "Bytes waiting to leave for the cluster bus"),
];

/// Histogram buckets in seconds: 100 µs to 10 s.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. Hubs built in one
/// process (tests) share it: their figures add up.
pub fn recorder() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_ok() {
            describe();
        }
        handle
    })
}

fn describe() {
    for &(name, kind, _, help) in SERIES {
        match kind {
            Type::Counter => metrics::describe_counter!(name, help),
            Type::Gauge => metrics::describe_gauge!(name, help),
            Type::Histogram => {
                metrics::describe_histogram!(name, metrics::Unit::Seconds, help)
            }
        }
    }
    metrics_process::Collector::default().describe();
}

/// What a scrape reads besides the recorder.
#[derive(Clone)]
pub struct Scrape {
    pub bayeux: Arc<Bayeux>,
    pub dispatcher: Arc<push::Dispatcher>,
    pub bus: Option<Arc<RedisBus>>,
    pub agents: Agents,
}

impl Scrape {
    /// The exposition, with every gauge read now.
    pub async fn render(&self) -> String {
        let recorder = recorder();
        self.engine();
        gauge!("gmshub_push_queue_depth").set(self.dispatcher.pending() as f64);
        if let Some(bus) = &self.bus {
            gauge!("gmshub_bus_queued_bytes").set(bus.queued_bytes() as f64);
        }
        match self.agents.ready_count().await {
            Ok(n) => gauge!("gmshub_agents_ready").set(n as f64),
            Err(e) => tracing::debug!("metrics: agents' presence unread: {e}"),
        }
        metrics_process::Collector::default().collect();
        recorder.render()
    }

    /// The Bayeux engine's counters, as they stand.
    fn engine(&self) {
        let stats = self.bayeux.stats();
        for transport in Transport::ALL {
            gauge!("gmshub_bayeux_sessions", "transport" => transport.name())
                .set(stats.sessions(transport) as f64);
        }
        gauge!("gmshub_bayeux_held_connects").set(stats.held_connects as f64);
        counter!("gmshub_bayeux_handshakes_total", "outcome" => "accepted")
            .absolute(stats.handshakes);
        counter!("gmshub_bayeux_handshakes_total", "outcome" => "refused")
            .absolute(stats.handshakes_refused);
        for kind in Kind::ALL {
            counter!("gmshub_bayeux_messages_in_total", "kind" => kind.name())
                .absolute(stats.messages_in(kind));
            counter!("gmshub_bayeux_messages_out_total", "kind" => kind.name())
                .absolute(stats.messages_out(kind));
        }
        counter!("gmshub_bayeux_deliveries_total").absolute(stats.deliveries);
        counter!("gmshub_bayeux_queue_drops_total", "policy" => "drop-oldest")
            .absolute(stats.dropped);
        counter!("gmshub_bayeux_queue_drops_total", "policy" => "disconnect")
            .absolute(stats.removed(RemoveReason::QueueFull));
        counter!("gmshub_bayeux_ack_redeliveries_total").absolute(stats.redelivered);
        for reason in bayeux::stats::REMOVE_REASONS {
            counter!("gmshub_bayeux_sessions_removed_total", "reason" => reason.name())
                .absolute(stats.removed(reason));
        }
    }
}
