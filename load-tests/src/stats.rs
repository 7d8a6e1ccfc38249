//! Latency and delivery counters. Each client records into its own
//! histogram; the run merges them at the end, so recording never contends.

use hdrhistogram::Histogram;
use serde::Serialize;

pub struct Recorder {
    pub latency_us: Histogram<u64>,
    pub received: u64,
    pub errors: u64,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            // 1 µs .. 60 s at 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            received: 0,
            errors: 0,
        }
    }

    pub fn record(&mut self, micros: u64) {
        self.received += 1;
        let _ = self.latency_us.record(micros.clamp(1, 60_000_000));
    }

    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.latency_us.add(&other.latency_us);
        self.received += other.received;
        self.errors += other.errors;
    }
}

/// What one run reports, in the JSON file and the table.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub transport: String,
    pub clients: usize,
    pub publish_rate: u64,
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
    pub server_peak_rss_kb: Option<u64>,
    pub server_cpu_seconds: Option<f64>,
}

impl Report {
    pub fn latency(&mut self, h: &Histogram<u64>) {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        self.p50_ms = ms(0.5);
        self.p90_ms = ms(0.9);
        self.p99_ms = ms(0.99);
        self.p999_ms = ms(0.999);
        self.max_ms = h.max() as f64 / 1000.0;
    }

    pub fn print(&self) {
        println!(
            "{:<8} {:<10} clients={:<6} rate={:<7} delivered/s={:<10.0} p50={:.2}ms p90={:.2}ms p99={:.2}ms p99.9={:.2}ms max={:.2}ms expected={} received={} missed={} errors={} rss={}KB cpu={}s",
            self.scenario,
            self.transport,
            self.clients,
            self.publish_rate,
            self.delivered_per_sec,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.expected,
            self.received,
            self.missed,
            self.errors,
            self.server_peak_rss_kb.map_or("-".into(), |v| v.to_string()),
            self.server_cpu_seconds.map_or("-".into(), |v| format!("{v:.2}")),
        );
    }
}

/// Peak RSS (kB) and CPU seconds of a process, from /proc.
pub fn process_usage(pid: u32) -> (Option<u64>, Option<f64>) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        });
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may contain spaces) start after ')'.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        });
    (rss, cpu)
}
