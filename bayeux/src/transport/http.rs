//! HTTP transports: long-polling (POST with a JSON body, or a form with one
//! or more `message` fields) and callback-polling (GET with `message` and a
//! JSONP callback name). A request's batch is handled, its `/meta/connect`
//! held if it may be, and everything goes back in one JSON array.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, RawQuery, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::cookie::{browser_cookie, browser_id, identity};
use super::websocket;
use crate::error;
use crate::message::{encode_array, parse_batch, Parsed};
use crate::request::{RequestContext, Transport};
use crate::server::Bayeux;

const JSON: &str = "application/json;charset=UTF-8";

/// The client's address, as the embedding put it on the request (after
/// its proxies named the client).
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

fn peer_of(peer: Peer) -> Option<SocketAddr> {
    peer.map(|Extension(ConnectInfo(addr))| addr)
}

/// GET: a WebSocket upgrade, or a callback-polling request.
pub(super) async fn get(
    State(server): State<Arc<Bayeux>>,
    peer: Peer,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let peer = peer_of(peer);
    if let Ok(upgrade) = upgrade {
        return websocket::upgrade(server, upgrade, &headers, peer);
    }
    let query = query.unwrap_or_default();
    let mut messages = Vec::new();
    let mut callback = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key == "message" {
            messages.push(value.into_owned());
        } else if key == server.config().callback_parameter {
            callback = Some(value.into_owned());
        }
    }
    if messages.is_empty() {
        return error_response(StatusCode::BAD_REQUEST, error::BODY_INVALID);
    }
    // Without a callback parameter, Bayeux names the function `jsonpcallback`.
    let callback = callback.unwrap_or_else(|| "jsonpcallback".to_owned());
    if !valid_callback(&callback) {
        return error_response(StatusCode::BAD_REQUEST, error::BODY_INVALID);
    }
    let size: usize = messages.iter().map(String::len).sum();
    if size > server.config().max_message_size {
        return error_response(StatusCode::PAYLOAD_TOO_LARGE, error::MESSAGE_TOO_LARGE);
    }
    let Some(batch) = parse_fields(messages.iter().map(String::as_bytes)) else {
        return error_response(StatusCode::BAD_REQUEST, error::BODY_INVALID);
    };
    let (body, cookie) = exchange(&server, batch, &headers, Transport::CallbackPolling, peer).await;
    // The leading comment keeps the body from being read as anything but
    // script (the "Rosetta Flash" class of attacks).
    let mut script = format!("/**/{callback}(").into_bytes();
    script.extend_from_slice(&body);
    script.extend_from_slice(b");");
    respond(script, "text/javascript;charset=UTF-8", cookie)
}

/// POST: long-polling.
pub(super) async fn long_polling(
    State(server): State<Arc<Bayeux>>,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = server.config().max_message_size;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(_) => return error_response(StatusCode::PAYLOAD_TOO_LARGE, error::MESSAGE_TOO_LARGE),
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let batch = if is_form {
        let fields: Vec<Vec<u8>> = form_urlencoded::parse(&body)
            .filter(|(k, _)| k == "message")
            .map(|(_, v)| v.into_owned().into_bytes())
            .collect();
        parse_fields(fields.iter().map(Vec::as_slice))
    } else {
        parse_batch(&body).ok()
    };
    let Some(batch) = batch else {
        return error_response(StatusCode::BAD_REQUEST, error::BODY_INVALID);
    };
    let (body, cookie) = exchange(
        &server,
        batch,
        &headers,
        Transport::LongPolling,
        peer_of(peer),
    )
    .await;
    respond(body, JSON, cookie)
}

/// Parses form fields, each one message or an array, into one batch.
fn parse_fields<'a>(fields: impl Iterator<Item = &'a [u8]>) -> Option<Vec<Parsed>> {
    let mut batch = Vec::new();
    for field in fields {
        batch.extend(parse_batch(field).ok()?);
    }
    (!batch.is_empty()).then_some(batch)
}

/// Handles a batch, holds its connect if there is one, and returns the
/// response array plus the cookie to set, if any.
async fn exchange(
    server: &Arc<Bayeux>,
    batch: Vec<Parsed>,
    headers: &HeaderMap,
    transport: Transport,
    peer: Option<SocketAddr>,
) -> (Vec<u8>, Option<HeaderValue>) {
    let cookie_name = &server.config().browser_cookie_name;
    let (browser, is_new) = browser_id(headers, cookie_name);
    let user = identity(headers, server.config());
    let ctx = RequestContext {
        transport,
        browser: Some(&browser),
        bound: None,
        user: user.as_deref(),
        peer,
    };
    let outcome = server.handle_batch(batch, &ctx);
    let cookie =
        (is_new && outcome.handshaken.is_some()).then(|| browser_cookie(cookie_name, &browser));
    let mut parts = outcome.replies;
    if let Some(held) = outcome.connect {
        server.hold(&held).await;
        held.complete(&mut parts);
    }
    (encode_array(&parts), cookie)
}

fn respond(body: Vec<u8>, content_type: &'static str, cookie: Option<HeaderValue>) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache, no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Bytes::from(body),
    )
        .into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// A request that is not Bayeux at all: the HTTP status says so, and the
/// body says it in Bayeux's words for a person reading it.
fn error_response(status: StatusCode, error: &str) -> Response {
    let body = serde_json::json!([{ "successful": false, "error": error }]).to_string();
    (status, [(header::CONTENT_TYPE, JSON)], body).into_response()
}

/// A JSONP callback must be a plain JavaScript name, or the response would
/// run whatever script the query carried.
fn valid_callback(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$'))
        && name.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::valid_callback;

    #[test]
    fn callback_names() {
        assert!(valid_callback("jsonpcallback"));
        assert!(valid_callback("_cometd.cb_12"));
        assert!(!valid_callback("alert(1)//"));
        assert!(!valid_callback("1abc"));
        assert!(!valid_callback(""));
    }
}
