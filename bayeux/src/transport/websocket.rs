//! The WebSocket transport: one socket carries any number of batches; the
//! session handshaken on it is bound to it. Deliveries are written as they
//! come (every message waiting goes out in one frame), except under the ack
//! extension, where they ride on `/meta/connect` replies so each batch is
//! acknowledged. One task per connection reads, writes and keeps time.
//!
//! A socket drains its session only while it carries the session's latest
//! `/meta/connect`: once the client connects again on another socket or over
//! long-polling, this one lets the session go and closes, so a half-open old
//! socket cannot swallow what the new carrier is waiting for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use bytes::Bytes;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use super::cookie::{browser_cookie, browser_id, identity};
use crate::channel::META_CONNECT;
use crate::error;
use crate::message::{encode_array, parse_batch, Advice, ParseError, Reply};
use crate::request::{RequestContext, Transport};
use crate::server::{Bayeux, HeldConnect};
use crate::session::{RemoveReason, Session};

/// tungstenite zero-fills its whole read buffer before every read attempt,
/// including those that find nothing to read, so it is kept small: client
/// frames are mostly `/meta/connect`s of a hundred bytes, and a larger
/// message is read in several steps.
const READ_BUFFER: usize = 512;

/// Close codes (RFC 6455).
const NORMAL: u16 = 1000;
const GOING_AWAY: u16 = 1001;
/// A text frame that is not UTF-8.
const NOT_UTF8: u16 = 1007;
const TOO_BIG: u16 = 1009;

pub(super) fn upgrade(
    server: Arc<Bayeux>,
    upgrade: WebSocketUpgrade,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Response {
    let cfg = server.config();
    let (browser, is_new) = browser_id(headers, &cfg.browser_cookie_name);
    let cookie = is_new.then(|| browser_cookie(&cfg.browser_cookie_name, &browser));
    let user = identity(headers, cfg);
    // tungstenite's default buffers are 128 KiB each way, per socket. Every
    // frame we write is a whole batch already, so nothing is gained by
    // buffering writes.
    let mut response = upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(cfg.max_message_size)
        .max_frame_size(cfg.max_message_size)
        .protocols(["cometd"])
        .on_upgrade(move |socket| Connection::new(server, browser, user, peer).run(socket));
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

struct Connection {
    server: Arc<Bayeux>,
    browser: String,
    /// The end user the upgrade request named, if any.
    user: Option<String>,
    peer: Option<SocketAddr>,
    /// The session this socket carries, once a handshake (or a connect for a
    /// session of the same browser) has named it.
    bound: Option<Arc<Session>>,
    /// The generation of the bound session's connect this socket carries
    /// (the session's at handshake, then each connect's).
    carrier: u64,
    held: Option<(HeldConnect, Instant)>,
    out: Vec<Bytes>,
}

enum Step {
    Continue,
    Close(Option<u16>),
}

/// What woke the connection's task.
enum Event {
    Frame(Option<Result<Message, axum::Error>>),
    /// A pause in reading the client's frames is over.
    Resume,
    Woken,
    ConnectDue,
    Ping,
    Idle,
}

impl Connection {
    fn new(
        server: Arc<Bayeux>,
        browser: String,
        user: Option<String>,
        peer: Option<SocketAddr>,
    ) -> Self {
        Self {
            server,
            browser,
            user,
            peer,
            bound: None,
            carrier: 0,
            held: None,
            out: Vec::new(),
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        let cfg = self.server.config().clone();
        let mut shutdown = self.server.shutdown_signal();
        let mut ping =
            tokio::time::interval_at(Instant::now() + cfg.ws_ping_interval, cfg.ws_ping_interval);
        // Timers live across iterations and are reset only when their
        // deadline moves: registering a timer per wake-up costs more than
        // the delivery it wakes for.
        let mut last_read = Instant::now();
        let idle = tokio::time::sleep(cfg.ws_idle_timeout);
        let connect_due = tokio::time::sleep(Duration::ZERO);
        // A frame the pacer holds; while there is one, nothing more is read.
        let resume = tokio::time::sleep(Duration::ZERO);
        let mut held_frame = None;
        let pacer = self.server.pacer().zip(self.peer);
        let hold = || pacer.as_ref().and_then(|(p, peer)| p.hold_frame(*peer));
        tokio::pin!(idle, connect_due, resume);
        let close = loop {
            let session = self.bound.clone();
            let notified = session.as_deref().map(|s| s.signal.notified());
            tokio::pin!(notified);
            if let Some(n) = notified.as_mut().as_pin_mut() {
                n.enable();
            }
            // With the wake-up armed, collect whatever is due now.
            if let Some(code) = self.collect() {
                break Some(code);
            }
            if !self.out.is_empty() {
                let frame = encode_array(&self.out);
                self.out.clear();
                if socket.send(text(frame)).await.is_err() {
                    break None;
                }
                continue;
            }
            if let Some((_, deadline)) = &self.held {
                if connect_due.deadline() != *deadline {
                    connect_due.as_mut().reset(*deadline);
                }
            }
            let woken = async {
                match notified.as_mut().as_pin_mut() {
                    Some(n) => n.await,
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                incoming = socket.recv(), if held_frame.is_none() => Event::Frame(incoming),
                _ = &mut resume, if held_frame.is_some() => Event::Resume,
                _ = woken => Event::Woken,
                _ = &mut connect_due, if self.held.is_some() => Event::ConnectDue,
                _ = ping.tick() => Event::Ping,
                _ = &mut idle => Event::Idle,
                _ = shutdown.changed(), if self.bound.is_none() => break Some(GOING_AWAY),
            };
            match event {
                Event::Frame(incoming) => {
                    last_read = Instant::now();
                    let data = matches!(incoming, Some(Ok(Message::Text(_) | Message::Binary(_))));
                    match hold().filter(|_| data) {
                        Some(wait) => {
                            resume.as_mut().reset(last_read + wait);
                            held_frame = Some(incoming);
                        }
                        None => {
                            if let Step::Close(code) = self.on_frame(incoming) {
                                break code;
                            }
                        }
                    }
                }
                Event::Resume => match hold() {
                    Some(wait) => resume.as_mut().reset(Instant::now() + wait),
                    None => {
                        if let Step::Close(code) = self.on_frame(held_frame.take().flatten()) {
                            break code;
                        }
                    }
                },
                Event::Woken => {}
                Event::ConnectDue => {
                    if let Some((held, _)) = self.held.take() {
                        held.complete(&mut self.out);
                    }
                }
                Event::Ping => {
                    if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                        break None;
                    }
                }
                Event::Idle => {
                    let due = last_read + cfg.ws_idle_timeout;
                    if due <= Instant::now() {
                        break Some(GOING_AWAY);
                    }
                    idle.as_mut().reset(due);
                }
            }
        };
        if !self.out.is_empty() {
            let _ = socket.send(text(encode_array(&self.out))).await;
        }
        if let Some(code) = close {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(""),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
        }
        // Dropping a held connect restarts the session's expiry clock: the
        // client has `maxInterval` to come back on another socket.
    }

    /// Moves what is due onto `out`: deliveries (unless they must wait for a
    /// connect reply), a connect reply that is ready, the end of a session.
    /// Returns a close code when the socket should close.
    fn collect(&mut self) -> Option<u16> {
        let session = self.bound.as_ref()?;
        if session.connect_gen() != self.carrier && !session.is_removed() {
            // The client connects elsewhere now: answer what this socket
            // still holds (superseded, so without messages) and let go.
            if let Some((held, _)) = self.held.take() {
                held.complete(&mut self.out);
            }
            self.bound = None;
            return Some(NORMAL);
        }
        if !session.ack_enabled() && !session.is_removed() {
            let before = self.out.len();
            session.drain(&mut self.out);
            self.server.counters.delivered(self.out.len() - before);
        }
        let ready = self
            .held
            .as_ref()
            .is_some_and(|(held, deadline)| held.is_ready() || *deadline <= Instant::now());
        let mut answered = false;
        if ready {
            if let Some((held, _)) = self.held.take() {
                held.complete(&mut self.out);
                answered = true;
            }
        }
        match session.removed_reason() {
            Some(reason) if self.held.is_none() => {
                self.bound = None;
                match reason {
                    RemoveReason::Shutdown => Some(GOING_AWAY),
                    // The client asked for it, or heard of it in the reply
                    // to its held connect (and may handshake again here).
                    RemoveReason::Disconnected => None,
                    _ if answered => None,
                    // Gone while no connect was held (it expired: the client
                    // kept the socket but stopped connecting): tell it, as a
                    // connect reply would, and close.
                    _ => {
                        let mut reply =
                            Reply::new(Some(META_CONNECT), None).failure(error::SESSION_UNKNOWN);
                        reply.advice = Some(Advice::handshake());
                        self.out.push(reply.encode());
                        Some(NORMAL)
                    }
                }
            }
            _ => None,
        }
    }

    fn on_frame(&mut self, incoming: Option<Result<Message, axum::Error>>) -> Step {
        let payload = match incoming {
            Some(Ok(Message::Text(text))) => Bytes::from(text),
            Some(Ok(Message::Binary(bytes))) => bytes,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Step::Continue,
            Some(Ok(Message::Close(_))) | None => return Step::Close(None),
            Some(Err(e)) => {
                // tungstenite reports a message or frame over the limits
                // as a capacity error: that one gets "message too big"; a
                // text frame that is not UTF-8, "invalid payload data".
                let code = match e.into_inner().downcast_ref::<tungstenite::Error>() {
                    Some(tungstenite::Error::Capacity(_)) => Some(TOO_BIG),
                    Some(tungstenite::Error::Utf8(_)) => Some(NOT_UTF8),
                    _ => None,
                };
                return Step::Close(code);
            }
        };
        let batch = match parse_batch(&payload) {
            Ok(batch) => batch,
            // Old Faye clients send `[]` as a keep-alive.
            Err(ParseError::Empty) => return Step::Continue,
            Err(_) => {
                let body = serde_json::json!({ "successful": false, "error": error::BODY_INVALID });
                self.out.push(Bytes::from(body.to_string()));
                return Step::Continue;
            }
        };
        let ctx = RequestContext {
            transport: Transport::WebSocket,
            browser: Some(&self.browser),
            bound: self.bound.as_ref(),
            user: self.user.as_deref(),
            peer: self.peer,
        };
        let outcome = self.server.handle_batch(batch, &ctx);
        self.out.extend(outcome.replies);
        if let Some(session) = outcome.handshaken {
            self.carrier = session.connect_gen();
            self.bound = Some(session);
        }
        if let Some(held) = outcome.connect {
            // A socket carries one session: a connect for another one (same
            // browser, after a socket was replaced) rebinds it.
            self.bound = Some(held.session().clone());
            self.carrier = held.generation();
            if let Some((previous, _)) = self.held.take() {
                previous.complete(&mut self.out);
            }
            let deadline = Instant::now() + held.timeout();
            self.held = Some((held, deadline));
        }
        Step::Continue
    }
}

fn text(frame: Vec<u8>) -> Message {
    // Frames are built from validated JSON and our own ASCII; never invalid.
    match String::from_utf8(frame) {
        Ok(s) => Message::Text(Utf8Bytes::from(s)),
        Err(e) => Message::Binary(Bytes::from(e.into_bytes())),
    }
}
