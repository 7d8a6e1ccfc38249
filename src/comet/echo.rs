//! `/service/echo`: a diagnostic service that sends each request's `data`
//! back to the one session that published it, on the same channel and with
//! the request's `id`, so it answers both a subscriber and a CometD
//! `remoteCall("/echo", ...)`. It lets an operator (or a test) check the
//! `/service` request/response path without any GMS service behind it. May
//! use: the engine only.

use std::sync::Arc;

use bayeux::{Bayeux, ServiceHandler, ServiceRequest, Session};

pub const CHANNEL: &str = "/service/echo";

pub struct Echo;

impl ServiceHandler for Echo {
    fn handle(&self, server: &Arc<Bayeux>, session: &Arc<Session>, request: &ServiceRequest<'_>) {
        if !server.reply(session, request, request.data) {
            tracing::debug!(
                session = session.key(),
                "echo reply not queued: session gone or full"
            );
        }
    }
}
