//! `/service/echo`: a diagnostic service that sends each request's `data`
//! back to the one session that published it, on the same channel. It lets
//! an operator (or a test) check the `/service` request/response path end to
//! end without any GMS service behind it.

use std::sync::Arc;

use bayeux::{Bayeux, ServiceHandler, ServiceRequest, Session};

pub const CHANNEL: &str = "/service/echo";

pub struct Echo;

impl ServiceHandler for Echo {
    fn handle(&self, server: &Arc<Bayeux>, session: &Arc<Session>, request: &ServiceRequest<'_>) {
        if let Err(e) = server.deliver(session, request.channel.as_str(), request.data) {
            tracing::warn!(error = %e, "echo reply not delivered");
        }
    }
}
