//! The `callback` scenario (gmshub only: Faye has no callbacks). Two
//! phases against one callback service:
//!
//! 1. bookings: immediate callbacks booked over the Callback Services API,
//!    `concurrency` at a time: bookings per second and their latency;
//! 2. due at once: `due` callbacks booked for one instant, each with the
//!    generator's CometD session as its device (`_device_os = comet`); the
//!    delay from that instant to each callback's QUEUED event arriving on
//!    `/_genesys` is the scheduler's lateness as the customer sees it.
//!
//! The service must allow the load: `_max_queued_callbacks_per_service`,
//! `_max_request_by_time_bucket` and `_enable_in_queue_checking = false`
//! (load-tests/callback-bench.py writes that configuration).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::chat::Session;
use crate::stats::quantile_ms;
use crate::target::{ClientError, Target};

#[derive(Debug, Clone)]
pub struct CallbackArgs {
    pub bookings: usize,
    pub concurrency: usize,
    pub due: usize,
    pub service: String,
}

#[derive(Debug, Default, Serialize)]
pub struct CallbackReport {
    pub service: String,
    pub concurrency: usize,
    pub bookings: usize,
    pub booked: u64,
    pub failed: u64,
    pub seconds: f64,
    pub bookings_per_sec: f64,
    pub book_p50_ms: f64,
    pub book_p99_ms: f64,
    pub book_max_ms: f64,
    pub server_cpu_percent: Option<f64>,
    pub due: usize,
    pub due_booked: u64,
    /// How long booking them took, and whether it ran past their time (the
    /// delays then include the overrun).
    pub due_booking_seconds: f64,
    pub booking_overran: bool,
    /// From the callbacks' time to their QUEUED event at the customer.
    pub queued_p50_ms: f64,
    pub queued_p99_ms: f64,
    pub queued_max_ms: f64,
    pub queued_events: u64,
    pub missed: u64,
    pub duplicates: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn iso(ms: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A customer number per booking (valid US numbers, distinct up to 10 000).
fn number(i: usize) -> String {
    format!("+1 650 253 {:04}", i % 10_000)
}

/// Books `count` callbacks, `concurrency` at a time; returns the ids booked,
/// each booking's latency (µs), and the failures.
async fn book_all(
    url: &str,
    count: usize,
    concurrency: usize,
    body: impl Fn(usize) -> Value,
) -> (Vec<String>, Vec<u64>, u64, Option<String>) {
    let http = reqwest::Client::new();
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let permit = gate.clone().acquire_owned().await.expect("semaphore");
        let (http, url, body) = (http.clone(), url.to_owned(), body(i));
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = http.post(&url).json(&body).send().await;
            drop(permit);
            let r = r.map_err(|e| e.to_string())?;
            let status = r.status();
            let v: Value = r.json().await.map_err(|e| e.to_string())?;
            match v["_id"].as_str() {
                Some(id) if status == 200 => Ok((id.to_owned(), t.elapsed().as_micros() as u64)),
                _ => Err(format!("{status}: {v}")),
            }
        }));
    }
    let (mut ids, mut took, mut failed, mut first) = (Vec::new(), Vec::new(), 0, None);
    let mut last = Instant::now();
    for (done, t) in tasks.into_iter().enumerate() {
        match t.await {
            Ok(Ok((id, us))) => {
                ids.push(id);
                took.push(us);
            }
            Ok(Err(e)) => {
                failed += 1;
                first.get_or_insert(e);
            }
            Err(e) => {
                failed += 1;
                first.get_or_insert(e.to_string());
            }
        }
        if last.elapsed() > Duration::from_secs(1) {
            eprintln!("callback: {}/{count} booked", done + 1);
            last = Instant::now();
        }
    }
    (ids, took, failed, first)
}

pub async fn run(target: &Target, args: &CallbackArgs, server_pids: &[u32]) -> CallbackReport {
    let url = format!(
        "http://{}/genesys/1/service/callback/{}",
        target.authority, args.service
    );
    let mut report = CallbackReport {
        service: args.service.clone(),
        concurrency: args.concurrency,
        bookings: args.bookings,
        due: args.due,
        ..Default::default()
    };

    // 1. Bookings per second.
    let before = crate::stats::usage_of(server_pids);
    let started = Instant::now();
    let (ids, took, failed, first) = book_all(
        &url,
        args.bookings,
        args.concurrency,
        |i| json!({"_customer_number": number(i), "first_name": "Load"}),
    )
    .await;
    report.seconds = started.elapsed().as_secs_f64();
    let after = crate::stats::usage_of(server_pids);
    if let (Some(b), Some(a)) = (before, after) {
        report.server_cpu_percent = crate::stats::cpu_percent(&[b], &[a], report.seconds);
    }
    if let Some(e) = first {
        eprintln!("callback: first failure: {e}");
    }
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for us in took {
        let _ = h.record(us);
    }
    report.booked = ids.len() as u64;
    report.failed = failed;
    report.bookings_per_sec = report.booked as f64 / report.seconds;
    report.book_p50_ms = quantile_ms(&h, 0.5);
    report.book_p99_ms = quantile_ms(&h, 0.99);
    report.book_max_ms = quantile_ms(&h, 1.0);
    eprintln!(
        "callback: {} booked in {:.1} s ({:.0}/s, p50 {:.1} p99 {:.1} ms), {} failed",
        report.booked,
        report.seconds,
        report.bookings_per_sec,
        report.book_p50_ms,
        report.book_p99_ms,
        report.failed
    );

    // Phase 1's callbacks are cancelled (as an admin would), so phase 2
    // books into an empty service.
    let http = reqwest::Client::new();
    for chunk in ids.chunks(10_000) {
        let r = http
            .post(format!(
                "http://{}/genesys/1/admin/callback/cancel",
                target.authority
            ))
            .json(&json!({"ids": chunk}))
            .send()
            .await;
        if let Err(e) = r {
            eprintln!("callback: bulk cancel failed: {e}");
        }
    }

    // 2. Many callbacks due at one instant, far enough ahead to book them all.
    if args.due > 0 {
        if let Err(e) = due_at_once(target, &url, args, &mut report).await {
            eprintln!("callback: due phase failed: {e}");
        }
    }
    report
}

async fn due_at_once(
    target: &Target,
    url: &str,
    args: &CallbackArgs,
    report: &mut CallbackReport,
) -> Result<(), ClientError> {
    let mut session = Session::open(target).await?;
    session.subscribe("/_genesys").await?;
    let client_id = session.id.clone();
    let rate = report.bookings_per_sec.max(50.0);
    // Room for booking at a third of the first phase's pace (each booking
    // here also counts its time slot and sends an event).
    let lead_ms = (args.due as f64 / rate * 3000.0) as u64 + 3000;
    let at = now_ms() + lead_ms;
    eprintln!(
        "callback: booking {} callbacks due in {:.1} s",
        args.due,
        lead_ms as f64 / 1000.0
    );
    // Read the session while booking: SCHEDULED events arrive meanwhile.
    // `expect` is set once the bookings are done: the reader stops when it
    // has that many QUEUED events.
    let expect = Arc::new(AtomicUsize::new(0));
    let want = expect.clone();
    let reader = tokio::spawn(async move {
        let mut queued: HashMap<String, u64> = HashMap::new();
        let mut duplicates = 0u64;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(lead_ms + 60_000);
        loop {
            let Ok(batch) = session.next(deadline).await else {
                break;
            };
            let now = now_ms();
            for m in batch {
                let msg = &m["data"]["message"];
                if m["channel"] != "/_genesys" || msg["_callback_state"] != "QUEUED" {
                    continue;
                }
                let id = msg["_id"].as_str().unwrap_or_default().to_owned();
                if queued.insert(id, now).is_some() {
                    duplicates += 1;
                }
            }
            let n = want.load(Ordering::SeqCst);
            if n > 0 && queued.len() >= n {
                break;
            }
        }
        (queued, duplicates)
    });
    let when = iso(at);
    let (ids, _, _, first) = book_all(url, args.due, args.concurrency, |i| {
        json!({"_customer_number": number(i), "_desired_time": when,
               "_device_os": "comet", "_device_notification_id": client_id})
    })
    .await;
    if let Some(e) = first {
        eprintln!("callback: first failure booking the due ones: {e}");
    }
    report.due_booked = ids.len() as u64;
    report.due_booking_seconds = (now_ms() + lead_ms).saturating_sub(at) as f64 / 1000.0;
    if now_ms() > at {
        report.booking_overran = true;
        eprintln!("callback: booking took past the callbacks' time: delays include it");
    }
    // Wait for every QUEUED event (or give up a minute after the time).
    let expected: std::collections::HashSet<String> = ids.into_iter().collect();
    expect.store(expected.len().max(1), Ordering::SeqCst);
    let progress = tokio::spawn({
        let n = expected.len();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                eprintln!("callback: waiting for {n} QUEUED events");
            }
        }
    });
    let (queued, duplicates) = reader
        .await
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    progress.abort();
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for id in &expected {
        match queued.get(id) {
            Some(t) => {
                let _ = h.record(t.saturating_sub(at) * 1000);
            }
            None => report.missed += 1,
        }
    }
    report.queued_events = queued.len() as u64;
    report.duplicates = duplicates;
    report.queued_p50_ms = quantile_ms(&h, 0.5);
    report.queued_p99_ms = quantile_ms(&h, 0.99);
    report.queued_max_ms = quantile_ms(&h, 1.0);
    eprintln!(
        "callback: {} due at once, QUEUED at the customer after p50 {:.0} p99 {:.0} max {:.0} ms, {} missed, {} duplicates",
        report.due_booked, report.queued_p50_ms, report.queued_p99_ms, report.queued_max_ms, report.missed, report.duplicates
    );
    Ok(())
}
