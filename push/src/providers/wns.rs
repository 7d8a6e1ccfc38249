//! Windows Push Notification Services: the app's package SID and secret
//! (`wns.sid`, `wns.clientSecret`) buy an OAuth access token
//! (client-credentials grant, scope `notify.windows.com`), kept until
//! shortly before it expires; each notification is POSTed to the channel
//! URI the subscription gives as its device id, with `X-WNS-Type`
//! (`wns.notificationType`, default `wns/toast`) and the XML of
//! `wns.xmlTemplate`, where `bodyText` (as in GMS's sample toast) becomes
//! the event's message, escaped for XML. The token endpoint is configurable.
//! Channel URIs are accepted only on the WNS hosts (`wns.allowed-hosts`,
//! `notify.windows.com` by default): the access token goes with every
//! notification, so a URI elsewhere would hand it to whoever named it.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::Value;

use crate::target::check_wns_url;
use crate::{Notification, Outcome, Provider};

pub const TOKEN_URL: &str = "https://login.live.com/accesstoken.srf";
/// Where WNS channel URIs live.
pub const HOSTS: &str = "notify.windows.com";
const DEFAULT_TEMPLATE: &str = r#"<toast><visual><binding template="ToastText01"><text id="1">bodyText</text></binding></visual></toast>"#;

#[derive(Debug, Clone)]
pub struct WnsConfig {
    pub sid: String,
    pub secret: String,
    pub token_url: String,
    pub notification_type: String,
    pub template: Option<String>,
    /// Host suffixes channel URIs must be on (`wns.allowed-hosts`).
    pub allowed_hosts: Vec<String>,
}

pub struct Wns {
    config: WnsConfig,
    client: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
    refreshing: tokio::sync::Mutex<()>,
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl Wns {
    pub fn new(config: WnsConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            config,
            client,
            token: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    fn cached(&self) -> Option<String> {
        self.token
            .lock()
            .as_ref()
            .filter(|(_, until)| Instant::now() + Duration::from_secs(60) < *until)
            .map(|(t, _)| t.clone())
    }

    async fn access_token(&self) -> Result<String, Outcome> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let _one = self.refreshing.lock().await;
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.sid.as_str()),
            ("client_secret", self.config.secret.as_str()),
            ("scope", "notify.windows.com"),
        ];
        let r = self
            .client
            .post(&self.config.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| Outcome::Retry(format!("WNS token endpoint: {}", e.without_url())))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let (Some(token), true) = (body["access_token"].as_str(), status.is_success()) else {
            let why = format!("WNS token endpoint answered {status}");
            return Err(if status.is_server_error() {
                Outcome::Retry(why)
            } else {
                Outcome::Failed(why)
            });
        };
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(86_400));
        *self.token.lock() = Some((token.to_owned(), Instant::now() + lifetime));
        Ok(token.to_owned())
    }

    pub fn body(&self, n: &Notification) -> String {
        self.config
            .template
            .as_deref()
            .unwrap_or(DEFAULT_TEMPLATE)
            .replace("bodyText", &xml_escape(&n.message))
    }
}

#[async_trait]
impl Provider for Wns {
    async fn send(&self, n: &Notification) -> Outcome {
        let url = match check_wns_url(&n.device_id, &self.config.allowed_hosts) {
            Ok(url) => url,
            Err(why) => return Outcome::Gone(why),
        };
        let token = match self.access_token().await {
            Ok(t) => t,
            Err(outcome) => return outcome,
        };
        let r = self
            .client
            .post(url)
            .bearer_auth(token)
            .header("X-WNS-Type", &self.config.notification_type)
            .header(reqwest::header::CONTENT_TYPE, "text/xml")
            .body(self.body(n))
            .send()
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(e.without_url().to_string()),
        };
        match r.status() {
            s if s.is_success() => Outcome::Delivered,
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                Outcome::Gone(format!("WNS {}", r.status()))
            }
            StatusCode::UNAUTHORIZED => {
                *self.token.lock() = None;
                Outcome::Retry("WNS 401".into())
            }
            s if s.is_server_error()
                || s == StatusCode::TOO_MANY_REQUESTS
                || s == StatusCode::NOT_ACCEPTABLE =>
            {
                Outcome::Retry(format!("WNS {s}"))
            }
            s => Outcome::Failed(format!("WNS {s}")),
        }
    }

    fn check_device(&self, device_id: &str) -> Result<(), String> {
        check_wns_url(device_id, &self.config.allowed_hosts).map(drop)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_message_is_escaped_into_the_template() {
        assert_eq!(
            super::xml_escape("<a & 'b'>"),
            "&lt;a &amp; &apos;b&apos;&gt;"
        );
    }
}
