//! The scheduler: on every node, a loop that finds the callbacks whose time
//! has come (through their `due` index entry, one per 10-second bucket) and
//! moves them: a scheduled callback to QUEUED, one that waited past its
//! expiration to COMPLETED with `FAIL_TIMEOUT_TTL`. At start it first moves
//! every open callback already overdue, however old (all nodes down for a
//! day lose nothing). The move is a
//! compare-and-set, so when every node finds the same callback exactly one
//! moves it; nothing is held in memory, so a node that dies loses nothing.

use std::time::Duration;

use super::engine::{check_move, CallbackError, Callbacks, BY_SCHEDULER, DUE_BUCKET_MS, MAX_READ};
use futures_util::StreamExt;

use super::model::{Callback, State};
use crate::store::collection::Versioned;
use crate::store::now_ms;

/// Callbacks moved at the same time by one node.
const CONCURRENT_MOVES: usize = 32;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub queued: usize,
    pub expired: usize,
}

impl Callbacks {
    /// Moves the callbacks of one due bucket whose deadline has passed;
    /// returns what it did and whether the bucket may hold more than it read.
    pub async fn fire_bucket(&self, bucket: u64) -> Result<(Pass, bool), CallbackError> {
        let found = self
            .records()
            .find("due", &bucket.to_string(), MAX_READ)
            .await?;
        let more = found.len() >= MAX_READ;
        Ok((self.fire(found).await?, more))
    }

    /// Moves every open callback whose deadline has passed, however long
    /// ago: what came due while no node ran, whatever `scheduler-lookback`
    /// says. Each service's open callbacks are bounded by its own limits.
    pub async fn fire_overdue(&self) -> Result<Pass, CallbackError> {
        let mut total = Pass::default();
        let services: Vec<String> = self.settings().services.keys().cloned().collect();
        for service in services {
            loop {
                let found = self.records().find("open", &service, MAX_READ).await?;
                let more = found.len() >= MAX_READ;
                let pass = self.fire(found).await?;
                total.queued += pass.queued;
                total.expired += pass.expired;
                // A full read that moved something may hide more behind it.
                if !more || pass.queued + pass.expired == 0 {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Moves those of `found` whose deadline has passed.
    async fn fire(&self, found: Vec<(String, Versioned<Callback>)>) -> Result<Pass, CallbackError> {
        let now = now_ms();
        let due = found.into_iter().filter(|(_, v)| {
            let deadline = v.value.next_deadline();
            if let Some(d) = deadline.filter(|d| *d <= now) {
                // How late the scheduler moves what came due.
                metrics::histogram!("gmshub_callback_scheduler_lag_seconds")
                    .record((now - d) as f64 / 1000.0);
            }
            deadline.is_some_and(|d| d <= now)
        });
        // Several moves at once: each is a store round trip, and a burst of
        // callbacks due together should not wait on each other's.
        let moves = futures_util::stream::iter(due)
            .map(|(id, v)| async move {
                let moved = self
                    .update_from(&id, Some(v), |cb| {
                        let now = now_ms();
                        match cb.state {
                            State::Scheduled if cb.desired_time <= now => {
                                cb.enter(State::Queued, None, BY_SCHEDULER, now);
                            }
                            State::Queued | State::Paused if cb.expiration_time <= now => {
                                check_move(&id, cb.state, State::Completed)?;
                                cb.enter(
                                    State::Completed,
                                    Some("FAIL_TIMEOUT_TTL".into()),
                                    BY_SCHEDULER,
                                    now,
                                );
                            }
                            // Moved by someone else since it was read.
                            _ => return Err(CallbackError::NotFound(id.clone())),
                        }
                        Ok(())
                    })
                    .await;
                moved.map(|cb| cb.state)
            })
            .buffer_unordered(CONCURRENT_MOVES);
        futures_util::pin_mut!(moves);
        let mut pass = Pass::default();
        while let Some(moved) = moves.next().await {
            match moved {
                Ok(State::Queued) => pass.queued += 1,
                Ok(_) => pass.expired += 1,
                Err(CallbackError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(pass)
    }

    /// Runs the scheduler until the process ends.
    pub fn spawn_scheduler(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let interval = this
            .settings()
            .scheduler_interval
            .max(Duration::from_millis(10));
        let lookback = this.settings().lookback.as_millis() as u64;
        tokio::spawn(async move {
            // What came due while no node ran, first (retried until the
            // store answers).
            loop {
                match this.fire_overdue().await {
                    Ok(pass) => {
                        if pass.queued + pass.expired > 0 {
                            tracing::info!(?pass, "callbacks overdue at start moved");
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("callback scheduler, overdue callbacks: {e}");
                        tokio::time::sleep(interval).await;
                    }
                }
            }
            // The first bucket not known to be empty.
            let mut next = now_ms().saturating_sub(lookback) / DUE_BUCKET_MS;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let current = now_ms() / DUE_BUCKET_MS;
                // The previous bucket is always looked at again: a node whose
                // clock is behind may still be writing into it.
                next = next.min(current.saturating_sub(1));
                let mut bucket = next;
                while bucket <= current {
                    match this.fire_bucket(bucket).await {
                        Ok((pass, more)) => {
                            if pass.queued + pass.expired > 0 {
                                tracing::debug!(bucket, ?pass, "callbacks moved");
                            }
                            if bucket == next && bucket < current && !more {
                                next = bucket + 1;
                            }
                        }
                        Err(e) => {
                            tracing::warn!("callback scheduler: {e}");
                            break;
                        }
                    }
                    bucket += 1;
                }
            }
        })
    }
}
