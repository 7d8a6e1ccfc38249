//! The access check in front of every REST API (see `config::access` for
//! the rules): Basic authentication answered as GMS does (401, `WWW-
//! Authenticate: Basic realm="..."`, an empty body), and the back office's
//! 403 for anonymous callers from outside its networks, and its refusal of
//! requests from other sites (CSRF); the mark on a callback query of
//! whether the back office asks ([`BackOffice`]). And, in front of
//! everything (CometD too), who a request may claim to be once `[server]
//! trusted-proxies` is set ([`identify`]), and which paths each port serves
//! ([`port_refusal`]); `edge` runs those two.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::live::LiveRules;
use super::request::{is_json, peer};
use crate::config::{Access, Guard, PortRestrictions};

/// The callback query, which lists every customer's callbacks to the back
/// office only (see [`BackOffice`]).
pub const CALLBACK_QUERY: &str = "/genesys/1/service/callback";

/// Marks a callback query: whether its caller would pass the back office's
/// guard (then it may query without naming a customer).
#[derive(Debug, Clone, Copy)]
pub struct BackOffice(pub bool);

pub async fn check(State(live): State<LiveRules>, mut request: Request, next: Next) -> Response {
    let rules = live.now();
    let access = &rules.access;
    let path = request.uri().path();
    if access.is_back_office(path) {
        if let Some(refused) = cross_site_refusal(&request) {
            return refused;
        }
    }
    let (guard, query) = (access.guard(path), path == CALLBACK_QUERY);
    let caller = Caller::of(&request);
    if !satisfies(access, guard, &caller).await {
        return match guard {
            Guard::Networks => ApiError::new(
                StatusCode::FORBIDDEN,
                "com.genesyslab.gsg.services.exceptions.ForbiddenException",
                "this API answers only to the back-office networks ([server] admin-networks), \
                 or with credentials ([admin] username and password)",
            )
            .into_response(),
            _ => unauthorized(&access.realm),
        };
    }
    if query {
        let back_office = satisfies(access, access.back_office(), &caller).await;
        request.extensions_mut().insert(BackOffice(back_office));
    }
    next.run(request).await
}

/// What a request shows a guard: where it comes from, its Basic
/// credentials (taken out of the request, which is not `Sync` and so
/// cannot be borrowed across a password check).
struct Caller {
    peer: Option<std::net::IpAddr>,
    basic: Option<(String, String)>,
}

impl Caller {
    fn of(request: &Request) -> Self {
        Self {
            peer: peer(request.extensions()),
            basic: basic(request.headers()),
        }
    }
}

/// Whether `caller` shows what `guard` asks for.
async fn satisfies(access: &Access, guard: &Guard, caller: &Caller) -> bool {
    match guard {
        Guard::Open => true,
        Guard::Networks => access.admits(caller.peer),
        Guard::Basic(credentials) => match &caller.basic {
            Some((user, password)) => {
                let user_ok: bool = user.as_bytes().ct_eq(credentials.user.as_bytes()).into();
                // The password is checked even for a wrong user, so the
                // time does not tell which was wrong.
                let password_ok = credentials.password.verify(password).await;
                user_ok && password_ok
            }
            None => false,
        },
        Guard::Refuse => false,
    }
}

/// The back office answers only its own pages and tools, never another
/// site's page in an operator's browser (CSRF): a request whose `Origin` is
/// another site's, or that `Sec-Fetch-Site` says is cross-site, is refused
/// (403), and a body must be `application/json`, which a page cannot send
/// to another site without the preflight that `[cors]` does not grant it
/// (415).
fn cross_site_refusal(request: &Request) -> Option<Response> {
    let headers = request.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let foreign_origin = text(header::ORIGIN)
        .is_some_and(|origin| !super::cors::same_origin(origin, headers.get(header::HOST)));
    let fetched_across = text(HeaderName::from_static("sec-fetch-site")).is_some_and(|site| {
        site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site")
    });
    if foreign_origin || fetched_across {
        return Some(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "com.genesyslab.gsg.services.exceptions.ForbiddenException",
                "the back office refuses requests from other sites",
            )
            .into_response(),
        );
    }
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || text(header::CONTENT_LENGTH).is_some_and(|n| n.trim() != "0");
    (has_body && !is_json(headers)).then(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "com.genesyslab.gsg.services.exceptions.BadRequestException",
            "the back office takes application/json bodies",
        )
        .into_response()
    })
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
