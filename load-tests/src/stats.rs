//! Counters and latency histograms, the report written as JSON, and
//! process CPU and memory read from /proc.

use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::wire::Scan;

/// Deliveries and errors seen by one client (or merged from many).
pub struct Recorder {
    pub latency_us: Histogram<u64>,
    pub received: u64,
    pub errors: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            // 1 µs .. 120 s at 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds"),
            received: 0,
            errors: 0,
        }
    }
}

impl Recorder {
    pub fn record_scan(&mut self, scan: &Scan, now_us: u64) {
        for t in &scan.stamps {
            self.received += 1;
            let _ = self
                .latency_us
                .record(now_us.saturating_sub(*t).clamp(1, 120_000_000));
        }
        self.errors += scan.failures as u64;
    }

    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.latency_us.add(&other.latency_us);
        self.received += other.received;
        self.errors += other.errors;
    }

    /// The form a worker process sends its figures to the parent in.
    pub fn to_wire(&self) -> WireRecorder {
        WireRecorder {
            received: self.received,
            errors: self.errors,
            hist: self
                .latency_us
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        }
    }

    pub fn from_wire(w: &WireRecorder) -> Self {
        let mut r = Recorder {
            received: w.received,
            errors: w.errors,
            ..Recorder::default()
        };
        for (value, count) in &w.hist {
            let _ = r.latency_us.record_n(*value, *count);
        }
        r
    }
}

#[derive(Serialize, Deserialize)]
pub struct WireRecorder {
    pub received: u64,
    pub errors: u64,
    pub hist: Vec<(u64, u64)>,
}

/// A recorder shared between a client task and whoever collects from it;
/// the client locks it once per frame, the collector once per step.
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<Recorder>>);

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Recorder> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes what was recorded so far, leaving an empty recorder.
    pub fn take(&self) -> Recorder {
        std::mem::take(&mut *self.lock())
    }
}

/// One publish rate held for a while.
#[derive(Debug, Default, Serialize)]
pub struct Step {
    pub rate: u64,
    pub seconds: f64,
    pub published: u64,
    pub expected: u64,
    pub received: u64,
    pub missed: i64,
    pub errors: u64,
    pub delivered_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub server_cpu_percent: Option<f64>,
    pub generator_cpu_percent: Option<f64>,
}

impl Step {
    pub fn latency(&mut self, h: &Histogram<u64>) {
        let ms = |q| quantile_ms(h, q);
        self.p50_ms = ms(0.5);
        self.p90_ms = ms(0.9);
        self.p99_ms = ms(0.99);
        self.p999_ms = ms(0.999);
        self.max_ms = h.max() as f64 / 1000.0;
    }

    pub fn print(&self) {
        eprintln!(
            "  rate {:>6}/s  delivered {:>9.0}/s  p50 {:>7.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  missed {:>6}  errors {:>4}  server cpu {:>5}%  generator cpu {:>5}%",
            self.rate,
            self.delivered_per_sec,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.missed,
            self.errors,
            percent(self.server_cpu_percent),
            percent(self.generator_cpu_percent),
        );
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

/// A latency quantile of a microsecond histogram, in milliseconds.
pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

#[derive(Debug, Default, Serialize)]
pub struct Churn {
    pub seconds: f64,
    pub cycles: u64,
    pub cycles_per_sec: f64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The whole run, as written to `--json`.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub label: String,
    pub scenario: String,
    pub transport: String,
    pub clients: usize,
    pub rooms: usize,
    pub rooms_per_client: usize,
    pub size: usize,
    pub connected: usize,
    pub failed: usize,
    pub ramp_up_seconds: f64,
    pub server_rss_kb_before: Option<u64>,
    pub server_rss_kb_after_ramp: Option<u64>,
    pub server_peak_rss_kb: Option<u64>,
    pub rss_kb_per_session: Option<f64>,
    pub steps: Vec<Step>,
    pub churn: Option<Churn>,
    pub chat: Option<crate::chat::ChatReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<crate::callback::CallbackReport>,
}

/// Resident and peak memory (kB) and CPU seconds (user + system) of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub rss_kb: Option<u64>,
    pub peak_rss_kb: Option<u64>,
    pub cpu_seconds: Option<f64>,
}

pub fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok();
    let field = |name: &str| -> Option<u64> {
        status
            .as_deref()?
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start after ')'.
            let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        });
    Usage {
        rss_kb: field("VmRSS:"),
        peak_rss_kb: field("VmHWM:"),
        cpu_seconds: cpu,
    }
}

/// The usage of several processes (the nodes of a cluster) added up; none
/// for an empty list.
pub fn usage_of(pids: &[u32]) -> Option<Usage> {
    if pids.is_empty() {
        return None;
    }
    let all: Vec<Usage> = pids.iter().map(|p| usage(*p)).collect();
    Some(Usage {
        rss_kb: all.iter().map(|u| u.rss_kb).sum(),
        peak_rss_kb: all.iter().map(|u| u.peak_rss_kb).sum(),
        cpu_seconds: all.iter().map(|u| u.cpu_seconds).sum(),
    })
}

/// CPU used by a set of processes between two readings, in percent of one core.
pub fn cpu_percent(before: &[Usage], after: &[Usage], seconds: f64) -> Option<f64> {
    let sum = |u: &[Usage]| u.iter().map(|u| u.cpu_seconds).sum::<Option<f64>>();
    Some((sum(after)? - sum(before)?) / seconds * 100.0)
}
