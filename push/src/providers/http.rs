//! The HTTP providers: `customhttp` (POST `{deviceId, message}` to the one
//! URL the operator configures, with the subscription's `authorization`),
//! `httpcb` (POST the message as it is to the URL the subscription gives as
//! its device id; only 200 is success) and `orscb` (an event into an ORS
//! session).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;

use crate::target::{check_callback_url, Guarded, NotPublic, UrlPatterns};
use crate::{Notification, Outcome, Provider};

/// How an HTTP answer or error reads as an outcome.
fn outcome(
    result: Result<reqwest::Response, reqwest::Error>,
    ok: impl Fn(StatusCode) -> bool,
) -> Outcome {
    match result {
        Ok(r) if ok(r.status()) => Outcome::Delivered,
        Ok(r) => {
            let s = r.status();
            if s.is_server_error()
                || s == StatusCode::TOO_MANY_REQUESTS
                || s == StatusCode::REQUEST_TIMEOUT
            {
                Outcome::Retry(format!("HTTP {s}"))
            } else if s == StatusCode::GONE {
                Outcome::Gone(format!("HTTP {s}"))
            } else {
                Outcome::Failed(format!("HTTP {s}"))
            }
        }
        // A name with no address the target may have: unreachable for good.
        Err(e) if NotPublic::caused(&e) => Outcome::Gone(e.without_url().to_string()),
        // Could not connect, or no answer in time: the receiver may be back.
        Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
            Outcome::Retry(e.without_url().to_string())
        }
        Err(e) => Outcome::Failed(e.without_url().to_string()),
    }
}

pub struct CustomHttp {
    url: reqwest::Url,
    client: reqwest::Client,
}

impl CustomHttp {
    /// `customhttp.url` (or its `debug.` twin).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("customhttp.url {url:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("customhttp.url {url}: http or https only"));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { url, client })
    }
}

#[async_trait]
impl Provider for CustomHttp {
    async fn send(&self, n: &Notification) -> Outcome {
        let body = serde_json::json!({ "deviceId": n.device_id, "message": n.message });
        let mut req = self.client.post(self.url.clone()).json(&body);
        if let Some(auth) = n.authorization.as_deref().filter(|a| !a.is_empty()) {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        outcome(req.send().await, |s| s.is_success())
    }
}

pub struct HttpCallback {
    client: reqwest::Client,
    allowed: UrlPatterns,
}

impl HttpCallback {
    /// `httpcb.connection_timeout` (s),
    /// `httpcb.connection_max_connections_per_route` and
    /// `httpcb.allowed-urls` (see `target`).
    pub fn new(
        connect_timeout: Duration,
        per_route: usize,
        allowed: UrlPatterns,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(connect_timeout * 6)
            .pool_max_idle_per_host(per_route)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(Guarded::new(&allowed)))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client, allowed })
    }
}

#[async_trait]
impl Provider for HttpCallback {
    async fn send(&self, n: &Notification) -> Outcome {
        // The device id is the URL; one that may not be reached makes the
        // target unreachable, and its subscription goes.
        let url = match check_callback_url(&n.device_id, &self.allowed) {
            Ok(url) => url,
            Err(why) => return Outcome::Gone(why),
        };
        let req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(n.message.to_string());
        outcome(req.send().await, |s| s == StatusCode::OK)
    }

    fn check_device(&self, device_id: &str) -> Result<(), String> {
        check_callback_url(device_id, &self.allowed).map(drop)
    }
}

/// `orscb`: an event into a running ORS (SCXML) session, through ORS's
/// HTTP interface: `POST {orscb.url}/scxml/session/{deviceId}/event/{name}`
/// with the form fields `tag` and `message` (the SCXML session sees them as
/// `_event.data.tag` and `_event.data.message`). The event name is
/// `[push] orscb.event` (default `gms.notification`). A session that is
/// gone (404, 410) loses its subscription.
pub struct OrsCallback {
    base: String,
    event: String,
    client: reqwest::Client,
}

impl OrsCallback {
    pub fn new(base: &str, event: &str, timeout: Duration) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(base).map_err(|e| format!("orscb.url {base:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("orscb.url {base}: http or https only"));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            event: event.to_owned(),
            client,
        })
    }
}

#[async_trait]
impl Provider for OrsCallback {
    async fn send(&self, n: &Notification) -> Outcome {
        let session: String = form_encode(&n.device_id);
        let url = format!(
            "{}/scxml/session/{session}/event/{}",
            self.base,
            form_encode(&self.event)
        );
        let req = self
            .client
            .post(url)
            .form(&[("tag", &*n.tag), ("message", &*n.message)]);
        match req.send().await {
            Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                Outcome::Gone("ORS: no such session".into())
            }
            other => outcome(other, |s| s.is_success()),
        }
    }
}

/// A path segment, percent-encoded.
fn form_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
