//! Session expiry: one task for the whole server removes the sessions whose
//! `maxInterval` passed without a `/meta/connect`.

use std::sync::{Arc, Weak};

use super::core::Bayeux;
use crate::clock::now_ms;
use crate::session::{RemoveReason, Session};

impl Bayeux {
    /// Starts the sweeper: one task that removes sessions whose `maxInterval`
    /// passed without a `/meta/connect`. It stops when the server is dropped.
    pub fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        let period = self.config.sweep_period;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(server) = weak.upgrade() else { return };
                server.sweep();
            }
        })
    }

    /// One sweeper pass.
    pub fn sweep(&self) {
        let now = now_ms();
        let expired: Vec<Arc<Session>> = self
            .sessions
            .iter()
            .filter(|s| s.expires_at() < now)
            .map(|s| s.clone())
            .collect();
        for session in expired {
            tracing::debug!(session = session.key(), "session expired");
            self.remove_session(&session, RemoveReason::Expired);
        }
    }
}
