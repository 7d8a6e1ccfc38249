//! `_client_timeout`: chats whose customer went quiet are ended, with a
//! notice both sides see, by a check any node may run at any time (the end
//! is a compare-and-set, so a chat ends once). The check reads only the
//! chats that are due, through an index ordered by when they are (every
//! write sets it); the census counts index entries. May use: the chats,
//! the model and transitions.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::chats::Chats;
use super::error::ChatError;
use super::model::{ChatSession, ChatState, EventType};
use super::transitions::end;
use crate::store::now_ms;

/// Due chats one check reads at most; the next check takes the rest.
const DUE_PAGE: usize = 500;
/// Open chats the one sweep after an upgrade reads (records written before
/// the due index existed have no entry in it).
const SWEEP_LIMIT: usize = 100_000;

impl Chats {
    /// Ends every chat whose customer has done nothing for the service's
    /// `_client_timeout`, with a notice both sides see. Any node may run it
    /// at any time: the end is a compare-and-set, so a chat ends once.
    /// Returns how many it ended.
    pub async fn end_idle(&self) -> Result<usize, ChatError> {
        let now = now_ms();
        for state in [ChatState::Queued, ChatState::Connected] {
            let n = self.sessions.count("state", state.name()).await?;
            metrics::gauge!("gmshub_chats", "state" => state.name()).set(n as f64);
        }
        // Once per process: chats written before the due index existed.
        let due = if self.swept.swap(true, Ordering::AcqRel) {
            self.find_ordered("idle", "due", now, DUE_PAGE).await?
        } else {
            let open = self.find("open", "1", SWEEP_LIMIT).await;
            let open = open.inspect_err(|_| self.swept.store(false, Ordering::Release))?;
            open.into_iter()
                .filter(|(_, c)| c.idle_due.is_none_or(|t| t <= now))
                .collect()
        };
        let mut ended = 0;
        for (id, chat) in due {
            let timeout = self
                .services()
                .get(&chat.service)
                .map_or(Duration::from_secs(900), |o| o.client_timeout);
            let idle = |chat: &ChatSession, now: u64| {
                !chat.ended() && chat.client_active_at + timeout.as_millis() as u64 <= now
            };
            // Not idle after all (a longer timeout since, or an old record):
            // rewritten, which sets its due time again.
            let outcome = self
                .modify(&id, |chat, now| {
                    if !idle(chat, now) {
                        return Ok(false);
                    }
                    let text = format!(
                        "The chat ended: no activity from the customer for {} s.",
                        timeout.as_secs()
                    );
                    chat.push(0, EventType::Notice, Some(text), now);
                    end(chat, 0, now);
                    Ok(true)
                })
                .await;
            match outcome {
                Ok((true, _)) => ended += 1,
                Ok((false, _)) | Err(ChatError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ended)
    }

    /// How often `end_idle` should run: a quarter of the shortest timeout,
    /// between 1 and 30 seconds.
    pub fn idle_check_period(&self) -> Duration {
        self.services()
            .all()
            .map(|o| o.client_timeout / 4)
            .min()
            .unwrap_or(Duration::from_secs(30))
            .clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// Runs `end_idle` every `idle_check_period` until aborted.
    pub fn spawn_idle_check(&self) -> tokio::task::JoinHandle<()> {
        let chats = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(chats.idle_check_period());
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match chats.end_idle().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(chats = n, "ended idle chats (_client_timeout)"),
                    Err(e) => tracing::warn!("ending idle chats: {e}"),
                }
            }
        })
    }
}
