//! The access check in front of every REST API (see `config::access` for
//! the rules): Basic authentication answered as GMS does (401, `WWW-
//! Authenticate: Basic realm="..."`, an empty body), and the back office's
//! 403 for anonymous callers from outside its networks. And, in front of
//! everything (CometD too), who a request may claim to be once `[server]
//! trusted-proxies` is set ([`identify`]), and which paths each port serves
//! ([`port_refusal`]); `edge` runs those two.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::request::peer;
use crate::config::{Access, Guard, PortRestrictions};

pub async fn check(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    match access.guard(request.uri().path()) {
        Guard::Open => next.run(request).await,
        Guard::Networks if access.admits(peer(request.extensions())) => next.run(request).await,
        Guard::Networks => ApiError::new(
            StatusCode::FORBIDDEN,
            "com.genesyslab.gsg.services.exceptions.ForbiddenException",
            "this API answers only to the back-office networks ([server] admin-networks), \
             or with credentials ([admin] username and password)",
        )
        .into_response(),
        Guard::Basic(credentials) => {
            let admitted = match basic(request.headers()) {
                Some((user, password)) => {
                    let user_ok: bool = user.as_bytes().ct_eq(credentials.user.as_bytes()).into();
                    // The password is checked even for a wrong user, so
                    // the time does not tell which was wrong.
                    let password_ok = credentials.password.verify(&password).await;
                    user_ok && password_ok
                }
                None => false,
            };
            if admitted {
                next.run(request).await
            } else {
                unauthorized(&access.realm)
            }
        }
        Guard::Refuse => unauthorized(&access.realm),
    }
}

/// Through a trusted proxy, the client is the one `X-Forwarded-For` names
/// (for the back office's networks and login throttling); from anywhere
/// else, with trusted proxies set, `gms_user` is removed: only the proxies
/// (which authenticate users) may name one. Without trusted proxies GMS's
/// rule holds (anyone may name a user): nothing to do.
pub fn identify(access: &Access, request: &mut Request) {
    if !access.has_trusted_proxies() {
        return;
    }
    let from = peer(request.extensions());
    if !access.trusts(from) {
        request.headers_mut().remove(crate::wire::GMS_USER);
    } else if let Some(client) = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| access.forwarded_client(v))
    {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, 0)));
    }
}

/// `[port_restrictions]`: a 403 for a listed path on a port not listed for
/// it (`port`: the local port the request came in on).
pub fn port_refusal(
    restrictions: &PortRestrictions,
    port: u16,
    request: &Request,
) -> Option<Response> {
    (!restrictions.allows(request.uri().path(), port)).then(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "com.genesyslab.gsg.services.exceptions.ForbiddenException",
            format!("this path is not served on port {port} ([port_restrictions])"),
        )
        .into_response()
    })
}

/// The user and password of an `Authorization: Basic` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// GMS's 401: the challenge and an empty body.
fn unauthorized(realm: &str) -> Response {
    let challenge = HeaderValue::from_str(&format!("Basic realm=\"{}\"", realm.replace('"', "")))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_basic_header_reads_user_and_password() {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("ann:pa:ss");
        h.insert(header::AUTHORIZATION, format!("Basic {v}").parse().unwrap());
        assert_eq!(basic(&h), Some(("ann".into(), "pa:ss".into())));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic(&h), None);
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic(&h), None);
    }
}
