//! Apple Push Notification service over HTTP/2 (the provider API), with
//! token authentication (an ES256 JWT signed with the team's .p8 key,
//! renewed every 50 minutes: Apple refuses tokens older than an hour) or
//! certificate authentication (the .p12 keystore GMS configures: a TLS
//! client certificate, and no token). The
//! endpoint is configurable (`a2`, the design card's APNs crate, sends only
//! to Apple's two fixed hosts, so tests and proxies could not stand in; this
//! provider speaks the same protocol to any URL), and so is an extra trust
//! root for a proxy or stand-in.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::{Notification, Outcome, Provider, TEXT};

pub const PRODUCTION: &str = "https://api.push.apple.com";
pub const SANDBOX: &str = "https://api.sandbox.push.apple.com";
const TOKEN_LIFETIME: Duration = Duration::from_secs(50 * 60);

/// What the `aps` dictionary and the headers are built from (`apple.*`).
#[derive(Debug, Clone, Default)]
pub struct ApsOptions {
    pub title: Option<String>,
    /// `apple.alertMessage.body` (default: the notification's `text`
    /// property, else the event's message).
    pub body: Option<String>,
    pub loc_key: Option<String>,
    pub loc_args: Vec<String>,
    pub title_loc_key: Option<String>,
    pub sound: Option<String>,
    pub badge: Option<u32>,
    pub category: Option<String>,
    /// `apple.pushType`: `alert` (default) or `background`.
    pub push_type: Option<String>,
    pub priority: Option<u8>,
    /// Seconds the notification stays deliverable (`apns-expiration`).
    pub expiration: Option<u64>,
    pub collapse_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ApnsConfig {
    /// `apple.url`: Apple's production host, or the sandbox for debug.
    pub url: String,
    /// `apple.topicName`: the app's bundle id.
    pub topic: String,
    pub auth: ApnsAuth,
    /// `apple.caFile`: a PEM root to trust besides the system's.
    pub ca_pem: Option<String>,
    pub aps: ApsOptions,
    /// The provider's name (empty: `[push]`), for the event sections.
    pub provider: String,
    pub formats: crate::Formats,
}

/// How gmshub proves it may push for the app.
#[derive(Debug, Clone)]
pub enum ApnsAuth {
    /// `apple.authKey` (.p8, PEM), `apple.keyId`, `apple.teamId`.
    Token {
        key_pem: String,
        key_id: String,
        team_id: String,
    },
    /// `apple.keystore` (.p12) and `apple.keystorePassword`, read into one
    /// PEM with the private key and the certificate chain.
    Certificate { identity_pem: String },
}

/// A PKCS#12 keystore (the .p12 Apple's portal exports) as one PEM: the
/// private key, then its certificate chain.
pub fn p12_to_pem(p12: &[u8], password: &str) -> Result<String, String> {
    use base64::Engine as _;
    let store = p12_keystore::KeyStore::from_pkcs12(
        p12,
        password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| format!("apple.keystore: {e}"))?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or("apple.keystore: no private key with its certificate")?;
    let block = |label: &str, der: &[u8]| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    let mut pem = block("PRIVATE KEY", chain.key().as_der());
    for cert in chain.certs() {
        pem.push_str(&block("CERTIFICATE", cert.as_der()));
    }
    Ok(pem)
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: u64,
}

pub struct Apns {
    config: ApnsConfig,
    /// The token signer and its key id and team; none with a certificate.
    key: Option<(EncodingKey, String, String)>,
    client: reqwest::Client,
    jwt: Mutex<Option<(String, Instant)>>,
}

impl Apns {
    pub fn new(config: ApnsConfig) -> Result<Self, String> {
        // APNs speaks HTTP/2 only: no HTTP/1.1 fallback.
        let mut builder = reqwest::Client::builder()
            .http2_prior_knowledge()
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(600));
        let key = match &config.auth {
            ApnsAuth::Token {
                key_pem,
                key_id,
                team_id,
            } => Some((
                EncodingKey::from_ec_pem(key_pem.as_bytes())
                    .map_err(|e| format!("apple.authKey: {e}"))?,
                key_id.clone(),
                team_id.clone(),
            )),
            ApnsAuth::Certificate { identity_pem } => {
                let identity = reqwest::Identity::from_pem(identity_pem.as_bytes())
                    .map_err(|e| format!("apple.keystore: {e}"))?;
                builder = builder.identity(identity);
                None
            }
        };
        if let Some(pem) = &config.ca_pem {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| format!("apple.caFile: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        Ok(Self {
            config,
            key,
            client,
            jwt: Mutex::new(None),
        })
    }

    /// The provider token, renewed before Apple would refuse it; none with
    /// certificate authentication.
    fn token(&self) -> Result<Option<String>, String> {
        let Some((key, key_id, team_id)) = &self.key else {
            return Ok(None);
        };
        let mut jwt = self.jwt.lock();
        if let Some((t, at)) = jwt.as_ref() {
            if at.elapsed() < TOKEN_LIFETIME {
                return Ok(Some(t.clone()));
            }
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key_id.clone());
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims { iss: team_id, iat };
        let t = jsonwebtoken::encode(&header, &claims, key).map_err(|e| e.to_string())?;
        *jwt = Some((t.clone(), Instant::now()));
        Ok(Some(t))
    }

    /// The provider's options, with those an event section sets for the
    /// notification's tag in their place.
    fn options_for(&self, n: &Notification) -> ApsOptions {
        let f = &self.config.formats;
        let mut o = self.config.aps.clone();
        let get = |key: &str| {
            f.lookup(&self.config.provider, &n.tag, key)
                .map(str::to_owned)
        };
        if let Some(v) = get("apple.title") {
            o.title = Some(v);
        }
        if let Some(v) = get("apple.alertMessage.body") {
            o.body = Some(v);
        }
        if let Some(v) = get("apple.alertMessage.loc-key") {
            o.loc_key = Some(v);
        }
        if let Some(v) = get("apple.alertMessage.loc-args") {
            o.loc_args = v.split(',').map(|a| a.trim().to_owned()).collect();
        }
        if let Some(v) = get("apple.alertMessage.title-loc-key") {
            o.title_loc_key = Some(v);
        }
        if let Some(v) = get("apple.sound") {
            o.sound = Some(v);
        }
        if let Some(v) = get("apple.badge").and_then(|b| b.parse().ok()) {
            o.badge = Some(v);
        }
        if let Some(v) = get("apple.category") {
            o.category = Some(v);
        }
        // A text in the device's language, where the file has one.
        if let Some(text) = n
            .properties
            .get("language")
            .and_then(|l| f.localized(l, &n.tag))
        {
            o.body = Some(text.to_owned());
        }
        o
    }

    /// `{"aps": {...}, "message": ..., "tag": ...}`
    pub fn payload(&self, n: &Notification) -> Value {
        let o = &self.options_for(n);
        let mut alert = Map::new();
        if let Some(t) = &o.title {
            alert.insert("title".into(), json!(t));
        }
        if let Some(k) = &o.title_loc_key {
            alert.insert("title-loc-key".into(), json!(k));
        }
        match &o.loc_key {
            Some(k) => {
                alert.insert("loc-key".into(), json!(k));
                if !o.loc_args.is_empty() {
                    alert.insert("loc-args".into(), json!(o.loc_args));
                }
            }
            None => {
                alert.insert(
                    "body".into(),
                    json!(o
                        .body
                        .clone()
                        .or_else(|| n.properties.get(TEXT).cloned())
                        .unwrap_or_else(|| n.message.to_string())),
                );
            }
        }
        let mut aps = Map::new();
        if o.push_type.as_deref() == Some("background") {
            aps.insert("content-available".into(), json!(1));
        } else {
            aps.insert("alert".into(), Value::Object(alert));
        }
        if let Some(s) = &o.sound {
            aps.insert("sound".into(), json!(s));
        }
        if let Some(b) = o.badge {
            aps.insert("badge".into(), json!(b));
        }
        if let Some(c) = &o.category {
            aps.insert("category".into(), json!(c));
        }
        json!({"aps": aps, "message": n.message, "tag": n.tag})
    }
}

#[async_trait]
impl Provider for Apns {
    async fn send(&self, n: &Notification) -> Outcome {
        let token = match self.token() {
            Ok(t) => t,
            Err(e) => return Outcome::Failed(format!("signing the provider token: {e}")),
        };
        let o = &self.config.aps;
        let url = format!(
            "{}/3/device/{}",
            self.config.url.trim_end_matches('/'),
            n.device_id
        );
        let push_type = o.push_type.clone().unwrap_or_else(|| "alert".into());
        let priority = o
            .priority
            .unwrap_or(if push_type == "background" { 5 } else { 10 });
        let mut req = self
            .client
            .post(url)
            .header("apns-topic", &self.config.topic)
            .header("apns-push-type", &push_type)
            .header("apns-priority", priority.to_string())
            .json(&self.payload(n));
        if let Some(secs) = o.expiration {
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                + secs;
            req = req.header("apns-expiration", at.to_string());
        }
        if let Some(c) = &o.collapse_id {
            req = req.header("apns-collapse-id", c);
        }
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(e.without_url().to_string()),
        };
        let status = r.status().as_u16();
        if status == 200 {
            return Outcome::Delivered;
        }
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let reason = body["reason"].as_str().unwrap_or("").to_owned();
        match (status, reason.as_str()) {
            (410, _) | (400, "BadDeviceToken") | (400, "DeviceTokenNotForTopic") => {
                Outcome::Gone(format!("APNs {status} {reason}"))
            }
            (403, "ExpiredProviderToken") => {
                *self.jwt.lock() = None;
                Outcome::Retry(format!("APNs {status} {reason}"))
            }
            (429, _) | (500..=599, _) => Outcome::Retry(format!("APNs {status} {reason}")),
            _ => Outcome::Failed(format!("APNs {status} {reason}")),
        }
    }
}
