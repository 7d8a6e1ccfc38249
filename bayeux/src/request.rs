//! What the engine knows about the request a batch of messages arrived
//! in: its transport, its browser, the session its connection carries and
//! the end user it names, the client's address. May use: the session.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::session::Session;

/// The transport a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket = 0,
    LongPolling = 1,
    CallbackPolling = 2,
}

impl Transport {
    pub const ALL: [Transport; 3] = [
        Transport::WebSocket,
        Transport::LongPolling,
        Transport::CallbackPolling,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::LongPolling => "long-polling",
            Transport::CallbackPolling => "callback-polling",
        }
    }
}

/// What the server knows about the request a batch arrived in.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    pub transport: Transport,
    /// The BAYEUX_BROWSER id of the request (cookie, or the one being set).
    pub browser: Option<&'a str>,
    /// The session the WebSocket connection carrying this batch belongs to.
    pub bound: Option<&'a Arc<Session>>,
    /// The end user the request names (`BayeuxConfig::identity_header`).
    pub user: Option<&'a str>,
    /// The client's address (as the embedding's proxies name it), when known.
    pub peer: Option<SocketAddr>,
}
