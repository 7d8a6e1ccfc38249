//! Cross-origin requests (see `config::cors` for the options): tower-http's
//! `CorsLayer` answers preflights; the answer to an actual request from a
//! listed origin gets its headers here, from values made once at start
//! (`CorsLayer` clones its whole configuration and builds a header map per
//! request: +17 % of a long-poll's CPU, for three constant headers).
//! Requests and WebSocket upgrades from origins that are not listed are
//! refused with 403 (unless `[cors]` says to deliver them), and so are
//! cross-site callback-polling (JSONP) loads, which carry no `Origin`.
//! Other requests without `Origin`, and same-origin ones (the `Origin`
//! names the `Host` asked), pass untouched.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::error::ApiError;
use crate::config::CorsSettings;

/// The headers of an answer to an actual request from a listed origin.
#[derive(Clone)]
pub struct Actual {
    credentials: bool,
    exposed: Option<HeaderValue>,
}

impl Actual {
    /// `None` when no origin is listed (then no answer carries CORS headers).
    pub fn new(cors: &CorsSettings) -> Option<Self> {
        if !cors.any_origin && cors.origins.is_empty() {
            return None;
        }
        let exposed = (!cors.exposed.is_empty())
            .then(|| cors.exposed.join(", ").parse().ok())
            .flatten();
        Some(Self {
            credentials: cors.credentials,
            exposed,
        })
    }

    /// Adds them for `origin` (listed, or `None` for a request without one
    /// that gets only `Vary`).
    pub fn apply(&self, origin: Option<HeaderValue>, response: &mut Response) {
        let headers = response.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        let Some(origin) = origin else { return };
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(exposed) = &self.exposed {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
        }
    }
}

/// Whether `request` is a CORS preflight (for [`preflights`]).
pub fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// tower-http's layer that answers preflights from the listed origins;
/// `None` when none is listed.
pub fn preflights(cors: &Arc<CorsSettings>) -> Option<CorsLayer> {
    Actual::new(cors)?;
    let parse = |names: &[String]| -> Vec<HeaderName> {
        names.iter().filter_map(|n| n.parse().ok()).collect()
    };
    let methods: Vec<Method> = cors.methods.iter().filter_map(|m| m.parse().ok()).collect();
    let allowed = cors.clone();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                origin.to_str().is_ok_and(|o| allowed.allows(o))
            }))
            .allow_methods(methods)
            .allow_headers(parse(&cors.headers))
            .expose_headers(parse(&cors.exposed))
            .allow_credentials(cors.credentials)
            .max_age(cors.max_age),
    )
}

/// Whether `origin` is the site that was asked (`Host`).
pub(super) fn same_origin(origin: &str, host: Option<&HeaderValue>) -> bool {
    let authority = origin.split_once("://").map_or("", |(_, a)| a);
    host.and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case(authority))
}

/// The origin of a cross-site request that carries no `Origin`: a
/// `<script>` load, which is how callback-polling (JSONP) crosses origins
/// without asking CORS. The browser's Fetch Metadata says it is cross-site;
/// the `Referer` names the page (`null` when the page sent none).
fn script_origin(headers: &axum::http::HeaderMap) -> Option<HeaderValue> {
    let site = headers.get("sec-fetch-site")?.to_str().ok()?;
    if !matches!(site, "cross-site" | "same-site") {
        return None;
    }
    let referer = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok()?.parse::<axum::http::Uri>().ok());
    let origin = referer
        .and_then(|uri| Some(format!("{}://{}", uri.scheme()?, uri.authority()?)))
        .unwrap_or_else(|| "null".to_owned());
    HeaderValue::from_str(&origin).ok()
}

/// What a request's `Origin` asks for: `Ok(Some(origin))` for a listed
/// one (its answer gets CORS headers), `Ok(None)` when none is needed, and
/// the 403 for an origin that is not listed (unless `[cors]` says to
/// deliver it anyway). On the Bayeux endpoint (`bayeux`), a cross-site
/// script load counts as a request from the page that made it, so that
/// callback-polling is held to the same list as everything else.
pub fn check(
    cors: &CorsSettings,
    request: &Request,
    bayeux: bool,
) -> Result<Option<HeaderValue>, ApiError> {
    let headers = request.headers();
    let derived;
    let value = match headers.get(header::ORIGIN) {
        Some(value) => value,
        None if bayeux => match script_origin(headers) {
            Some(origin) => {
                derived = origin;
                &derived
            }
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    let Ok(origin) = value.to_str() else {
        return Ok(None);
    };
    if same_origin(origin, headers.get(header::HOST)) {
        return Ok(None);
    }
    if cors.allows(origin) {
        return Ok(Some(value.clone()));
    }
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|u| u.to_str().ok())
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let deliver = if upgrade {
        cors.deliver_not_allowed_websocket
    } else {
        cors.deliver_not_allowed
    };
    if deliver {
        return Ok(None);
    }
    let origin = origin.chars().take(200).collect::<String>();
    tracing::debug!(origin, upgrade, "cross-origin request refused");
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "com.genesyslab.gsg.services.exceptions.ForbiddenException",
        format!("origin {origin} is not allowed ([cors] allowedOriginPatterns)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_is_the_host_asked() {
        let host = HeaderValue::from_static("chat.example.com:8080");
        assert!(same_origin("https://chat.example.com:8080", Some(&host)));
        assert!(!same_origin("https://chat.example.com", Some(&host)));
        assert!(!same_origin("null", Some(&host)));
        assert!(!same_origin("https://chat.example.com:8080", None));
    }

    fn jsonp(headers: &[(&'static str, &'static str)]) -> Request {
        let mut r = Request::builder()
            .uri("/genesys/cometd/handshake?jsonp=cb&message=%5B%5D")
            .header(header::HOST, "chat.example.com");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn a_cross_site_script_load_of_the_bayeux_endpoint_is_held_to_the_list() {
        use crate::config::Options;
        let cors = |ini: &str| CorsSettings::from_options(&Options::from_ini(ini, &[]).unwrap());
        let none = cors("");
        let shop = cors("[cors]\nallowedOriginPatterns = https://shop\\.example\\.com\n");
        let from_shop = jsonp(&[
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-dest", "script"),
            ("referer", "https://shop.example.com/basket?x=1"),
        ]);
        assert!(check(&none, &from_shop, true).is_err(), "no origin listed");
        assert_eq!(
            check(&shop, &from_shop, true).unwrap().unwrap(),
            "https://shop.example.com"
        );
        let no_referer = jsonp(&[("sec-fetch-site", "cross-site")]);
        assert!(check(&shop, &no_referer, true).is_err(), "an unnamed page");
        // The widget's own script, other routes, same-origin loads and
        // browsers without Fetch Metadata pass as before.
        assert!(check(&none, &from_shop, false).unwrap().is_none());
        let same = jsonp(&[("sec-fetch-site", "same-origin")]);
        assert!(check(&none, &same, true).unwrap().is_none());
        assert!(check(&none, &jsonp(&[]), true).unwrap().is_none());
    }
}
