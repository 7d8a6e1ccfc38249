//! Server parameters, named and defaulted as CometD names and defaults them
//! (`timeout` 30 s, `interval` 0, `maxInterval` 10 s, `maxSessionsPerBrowser`
//! 1, `multiSessionInterval` 2 s), plus the bounds CometD leaves open
//! (`maxQueue`, `maxMessageSize`, `maxSessions`, `maxSubscriptions`,
//! `maxHandshakeExt`, `maxBatchPublishes`), which here always have a finite default,
//! and the per-client limits CometD does not have.
//! May use: nothing else in the crate.

use std::time::Duration;

use ipnet::IpNet;

/// Per-client limits on sessions (see `client`).
#[derive(Debug, Clone)]
pub struct ClientLimits {
    /// Live sessions one client address (an IPv6 /64) may hold.
    pub sessions_per_address: usize,
    /// Live sessions one browser (BAYEUX_BROWSER) may hold.
    pub sessions_per_browser: usize,
    /// Handshakes per second one address, or one browser, may make (in
    /// bursts of five seconds' worth).
    pub handshakes_per_second: u32,
    /// Networks none of this applies to (the site's own proxies or
    /// gateways, a load generator).
    pub exempt: Vec<IpNet>,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            sessions_per_address: 500,
            sessions_per_browser: 32,
            handshakes_per_second: 20,
            exempt: Vec::new(),
        }
    }
}

/// What happens when a session's outbound queue would grow past `max_queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFullPolicy {
    /// Remove the session: its next `/meta/connect` gets `402::session_unknown`
    /// and the client handshakes again, so the loss is visible to it.
    Disconnect,
    /// Drop the oldest queued messages to make room (lossy, silent to the client).
    DropOldest,
}

#[derive(Debug, Clone)]
pub struct BayeuxConfig {
    /// How long a `/meta/connect` is held when there is nothing to deliver.
    pub timeout: Duration,
    /// Pause the client makes between two connects (advice `interval`).
    pub interval: Duration,
    /// A session with no `/meta/connect` for this long after the last reply expires.
    pub max_interval: Duration,
    /// Held long-poll connects per browser (BAYEUX_BROWSER cookie) before
    /// extra sessions are told `multiple-clients` and made to poll.
    pub max_sessions_per_browser: usize,
    /// Poll interval advised to the extra sessions of one browser.
    pub multi_session_interval: Duration,
    /// Bytes queued (and, with the ack extension, sent but unacknowledged) per session.
    pub max_queue: usize,
    pub queue_full_policy: QueueFullPolicy,
    /// Largest request body or WebSocket message accepted, in bytes.
    pub max_message_size: usize,
    /// Sessions the server holds at most; further handshakes are refused.
    pub max_sessions: usize,
    /// Sessions and handshakes per client address and per browser.
    pub clients: ClientLimits,
    /// Publishes (service requests included) one batch may carry; each one
    /// beyond gets `403::too_many_publishes` (so one message cannot, say,
    /// create a thousand chats).
    pub max_batch_publishes: usize,
    /// Channels and patterns one session may be subscribed to at once.
    pub max_subscriptions: usize,
    /// Largest handshake `ext` (bytes of JSON) a session keeps; a larger
    /// one is refused with `403:ext_too_large:handshake_denied`.
    pub max_handshake_ext: usize,
    /// Pass a publisher's `ext` on to the subscribers (CometD does; a
    /// server facing anonymous clients may not want to relay it).
    pub forward_publisher_ext: bool,
    /// Deliver a session's own broadcasts back to it.
    pub broadcast_to_publisher: bool,
    /// Accept a `clientId` sent without its BAYEUX_BROWSER cookie.
    pub trust_client_session: bool,
    pub browser_cookie_name: String,
    /// Query parameter carrying the JSONP callback name.
    pub callback_parameter: String,
    /// How often the sweeper looks for expired sessions.
    pub sweep_period: Duration,
    /// Server-initiated WebSocket ping period (keeps proxies from closing idle sockets).
    pub ws_ping_interval: Duration,
    /// A WebSocket that sends nothing (not even a pong) for this long is closed.
    pub ws_idle_timeout: Duration,
    /// Transports offered at handshake, in the server's order of preference.
    pub allowed_transports: Vec<&'static str>,
    /// Put before every clientId this server hands out, so that the server
    /// of a cluster holding a session can be told from its id.
    pub client_id_prefix: String,
    /// A request header naming the end user (GMS: `gms_user`); the value a
    /// handshake carries is kept on the session it creates.
    pub identity_header: Option<String>,
}

impl Default for BayeuxConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(30_000),
            interval: Duration::ZERO,
            max_interval: Duration::from_millis(10_000),
            max_sessions_per_browser: 1,
            multi_session_interval: Duration::from_millis(2_000),
            max_queue: 1024 * 1024,
            queue_full_policy: QueueFullPolicy::Disconnect,
            max_message_size: 64 * 1024,
            max_sessions: 100_000,
            clients: ClientLimits::default(),
            max_batch_publishes: 32,
            max_subscriptions: 1000,
            max_handshake_ext: 8 * 1024,
            forward_publisher_ext: true,
            broadcast_to_publisher: true,
            trust_client_session: false,
            browser_cookie_name: "BAYEUX_BROWSER".to_owned(),
            callback_parameter: "jsonp".to_owned(),
            sweep_period: Duration::from_millis(997),
            ws_ping_interval: Duration::from_secs(25),
            ws_idle_timeout: Duration::from_millis(300_000),
            allowed_transports: crate::TRANSPORTS.to_vec(),
            client_id_prefix: String::new(),
            identity_header: None,
        }
    }
}
