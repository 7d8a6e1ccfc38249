//! Firebase Cloud Messaging over the HTTP v1 API. Google shut the legacy
//! API (server keys, `fcm.apiKey`; what the `fcm` crate speaks) down in
//! 2024, so this provider authenticates with a service account: it signs a
//! JWT (RS256) with the account's key, trades it at the token endpoint for
//! an OAuth2 access token, keeps that token until shortly before it
//! expires, and sends `{"message": {"token", "data", "notification"}}`.
//! Both URLs are configurable, so a proxy or a test stand-in can take
//! Google's place.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{Notification, Outcome, Provider};

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const SEND_URL: &str = "https://fcm.googleapis.com/v1/projects/{project}/messages:send";
/// A token is renewed this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The fields of a Google service account key file that signing needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub private_key: String,
    pub token_uri: String,
}

#[derive(Debug, Clone)]
pub struct FcmConfig {
    pub account: ServiceAccount,
    /// `fcm.url`: the send endpoint (`{project}` is replaced).
    pub send_url: Option<String>,
    /// `fcm.tokenUrl`: the token endpoint (default: the account's `token_uri`).
    pub token_url: Option<String>,
    /// `fcm.title`, `fcm.body`: a visible notification besides the data.
    pub title: Option<String>,
    pub body: Option<String>,
    /// The provider's name (empty: `[push]`), for the event sections.
    pub provider: String,
    pub formats: crate::Formats,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

pub struct Fcm {
    send_url: String,
    token_url: String,
    email: String,
    key: EncodingKey,
    title: Option<String>,
    body: Option<String>,
    provider: String,
    formats: crate::Formats,
    client: reqwest::Client,
    token: Mutex<Option<(String, Instant)>>,
    /// One refresh at a time: the others wait for its token.
    refreshing: tokio::sync::Mutex<()>,
}

impl Fcm {
    pub fn new(config: FcmConfig) -> Result<Self, String> {
        let key = EncodingKey::from_rsa_pem(config.account.private_key.as_bytes())
            .map_err(|e| format!("the service account's private_key: {e}"))?;
        let send_url = config
            .send_url
            .unwrap_or_else(|| SEND_URL.to_owned())
            .replace("{project}", &config.account.project_id);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            send_url,
            token_url: config.token_url.unwrap_or(config.account.token_uri),
            email: config.account.client_email,
            key,
            title: config.title,
            body: config.body,
            provider: config.provider,
            formats: config.formats,
            client,
            token: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    fn cached(&self) -> Option<String> {
        self.token
            .lock()
            .as_ref()
            .filter(|(_, until)| Instant::now() + REFRESH_MARGIN < *until)
            .map(|(t, _)| t.clone())
    }

    /// A valid access token: the cached one, or a new one.
    async fn access_token(&self) -> Result<String, Outcome> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let _one = self.refreshing.lock().await;
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            iss: &self.email,
            scope: SCOPE,
            aud: &self.token_url,
            iat: now,
            exp: now + 3600,
        };
        let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| Outcome::Failed(format!("signing the token request: {e}")))?;
        let r = self
            .client
            .post(&self.token_url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &assertion),
            ])
            .send()
            .await
            .map_err(|e| Outcome::Retry(format!("token endpoint: {}", e.without_url())))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let (Some(token), true) = (body["access_token"].as_str(), status.is_success()) else {
            let why = format!("token endpoint answered {status}");
            return Err(if status.is_server_error() {
                Outcome::Retry(why)
            } else {
                Outcome::Failed(why)
            });
        };
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600));
        *self.token.lock() = Some((token.to_owned(), Instant::now() + lifetime));
        Ok(token.to_owned())
    }

    fn message(&self, n: &Notification) -> Value {
        let mut message = json!({
            "token": n.device_id,
            // Android apps read GMS's payload from the data key `message`.
            "data": {"message": n.message, "tag": n.tag},
        });
        let pick = |key: &str, base: &Option<String>| {
            self.formats
                .lookup(&self.provider, &n.tag, key)
                .map(str::to_owned)
                .or_else(|| base.clone())
        };
        let localized = n
            .properties
            .get("language")
            .and_then(|l| self.formats.localized(l, &n.tag))
            .map(str::to_owned);
        let (title, body) = (
            pick("fcm.title", &self.title),
            localized.or_else(|| pick("fcm.body", &self.body)),
        );
        if title.is_some() || body.is_some() {
            message["notification"] = json!({"title": title, "body": body
                    .or_else(|| n.properties.get(crate::TEXT).cloned())
                    .unwrap_or_else(|| n.message.to_string())});
        }
        json!({ "message": message })
    }
}

/// FCM's error code: the `errorCode` of an `FcmError` detail, else the
/// status.
fn error_code(body: &Value) -> String {
    body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|d| d["errorCode"].as_str())
        .or_else(|| body["error"]["status"].as_str())
        .unwrap_or("")
        .to_owned()
}

#[async_trait]
impl Provider for Fcm {
    async fn send(&self, n: &Notification) -> Outcome {
        let token = match self.access_token().await {
            Ok(t) => t,
            Err(outcome) => return outcome,
        };
        let r = match self
            .client
            .post(&self.send_url)
            .bearer_auth(&token)
            .json(&self.message(n))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(e.without_url().to_string()),
        };
        let status = r.status();
        if status.is_success() {
            return Outcome::Delivered;
        }
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let code = error_code(&body);
        match (status.as_u16(), code.as_str()) {
            (_, "UNREGISTERED") | (404, _) => Outcome::Gone(format!("FCM {status} {code}")),
            (401, _) => {
                // The token was refused: drop it, the retry gets a new one.
                *self.token.lock() = None;
                Outcome::Retry(format!("FCM {status}"))
            }
            (429 | 500 | 503, _) | (_, "QUOTA_EXCEEDED" | "UNAVAILABLE" | "INTERNAL") => {
                Outcome::Retry(format!("FCM {status} {code}"))
            }
            _ => Outcome::Failed(format!("FCM {status} {code}")),
        }
    }
}
