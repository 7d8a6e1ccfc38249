//! APNs with token authentication against a local stand-in that checks the
//! protocol strictly: HTTP/2 over TLS (a test certificate authority that
//! gmshub is told to trust), the ES256 provider token (signature against
//! the key, key id, team id, age), the headers (topic, push type, priority)
//! and the payload, and answers per device token: success, Unregistered
//! (410), BadDeviceToken (400), 503 twice then success, 429 once then
//! success, BadTopic (400, not retried).

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use common::Server;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, Version};
use parking_lot::Mutex;
use serde_json::{json, Value};

const TOPIC: &str = "com.example.chatapp";
const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "DEF123GHIJ";

#[derive(Clone, Default)]
struct Apple {
    got: Arc<Mutex<Vec<(String, Value, Value)>>>,
    refused: Arc<Mutex<Vec<String>>>,
    tokens: Arc<Mutex<Vec<String>>>,
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    iat: u64,
}

fn answer(status: u16, reason: Option<&str>) -> Response<Full<Bytes>> {
    let body = reason
        .map(|r| json!({ "reason": r }).to_string())
        .unwrap_or_default();
    Response::builder()
        .status(status)
        .header("apns-id", "11111111-2222-3333-4444-555555555555")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn handle(
    apple: Apple,
    token_auth: bool,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let refuse = |why: String| {
        apple.refused.lock().push(why);
        Ok(answer(400, Some("BadRequest")))
    };
    if req.version() != Version::HTTP_2 {
        return refuse(format!("not HTTP/2: {:?}", req.version()));
    }
    let Some(token) = req
        .uri()
        .path()
        .strip_prefix("/3/device/")
        .map(str::to_owned)
    else {
        return refuse(format!("path {}", req.uri().path()));
    };
    let h = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let headers = json!({
        "apns-topic": h("apns-topic"), "apns-push-type": h("apns-push-type"),
        "apns-priority": h("apns-priority"), "apns-collapse-id": h("apns-collapse-id"),
        "apns-expiration": h("apns-expiration"),
    });
    if h("apns-topic") != TOPIC {
        return Ok(answer(400, Some("BadTopic")));
    }
    if !token_auth {
        // Certificate authentication: the TLS layer checked the client; no token.
        if !h("authorization").is_empty() {
            return refuse("a token besides the certificate".into());
        }
    } else if let Some(r) = check_token(&apple, &h("authorization")) {
        return Ok(r);
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return refuse("payload is not JSON".into());
    };
    if !payload["aps"].is_object() {
        return refuse(format!("no aps: {payload}"));
    }
    let tries = {
        let mut got = apple.got.lock();
        got.push((token.clone(), headers, payload));
        got.iter().filter(|(t, _, _)| *t == token).count()
    };
    Ok(match token.split('-').next().unwrap_or("") {
        "gone" => answer(410, Some("Unregistered")),
        "baddev" => answer(400, Some("BadDeviceToken")),
        "busy" if tries <= 2 => answer(503, Some("ServiceUnavailable")),
        "toomany" if tries <= 1 => answer(429, Some("TooManyRequests")),
        _ => answer(200, None),
    })
}

/// Checks the provider token of token authentication; an answer when it
/// does not pass.
fn check_token(apple: &Apple, authorization: &str) -> Option<Response<Full<Bytes>>> {
    let jwt = authorization
        .strip_prefix("bearer ")
        .map(str::to_owned)
        .unwrap_or_else(|| authorization.to_owned().replace("Bearer ", ""));
    let key = jsonwebtoken::DecodingKey::from_ec_pem(include_bytes!("data/apns-test-key.pub.pem"))
        .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    match (
        jsonwebtoken::decode_header(&jwt),
        jsonwebtoken::decode::<Claims>(&jwt, &key, &validation),
    ) {
        (Ok(header), Ok(data)) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            if header.kid.as_deref() != Some(KEY_ID)
                || data.claims.iss != TEAM_ID
                || now.abs_diff(data.claims.iat) > 3600
            {
                return Some(answer(403, Some("InvalidProviderToken")));
            }
        }
        (h, c) => {
            apple
                .refused
                .lock()
                .push(format!("token: {:?} {:?}", h.err(), c.err()));
            return Some(answer(403, Some("InvalidProviderToken")));
        }
    }
    apple.tokens.lock().push(jwt);
    None
}

/// The stand-in on a free port; returns its state, URL and CA (PEM), and
/// with `client_certificates`, the .p12 (password `p12-secret`) of a client
/// certificate it requires instead of a provider token.
async fn stand_in(client_certificates: bool) -> (Apple, String, String, Option<Vec<u8>>) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let (builder, p12) = if client_certificates {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let client_cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap();
        let chain = p12_keystore::PrivateKeyChain::new(
            vec![1u8; 20],
            p12_keystore::PrivateKey::from_der(&client_key.serialize_der()).unwrap(),
            [
                p12_keystore::Certificate::from_der(client_cert.der()).unwrap(),
                p12_keystore::Certificate::from_der(ca.der()).unwrap(),
            ],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("apns", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        let p12 = store.writer("p12-secret").write().unwrap();
        (builder.with_client_cert_verifier(verifier), Some(p12))
    } else {
        (builder.with_no_client_auth(), None)
    };
    let mut tls = builder
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let apple = Apple::default();
    let state = apple.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, apple) = (acceptor.clone(), state.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| {
                    handle(apple.clone(), !client_certificates, req)
                });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
            });
        }
    });
    (apple, url, ca.pem(), p12)
}

fn gmshub(url: &str, ca: &str, dir: &tempfile::TempDir) -> Server {
    let key = dir.path().join("AuthKey.p8");
    std::fs::write(&key, include_str!("data/apns-test-key.p8")).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let localization = dir.path().join("texts.ini");
    std::fs::write(
        &localization,
        "[fr]\nors.cb = Votre conseiller vous appelle\n",
    )
    .unwrap();
    let config = dir.path().join("push.ini");
    std::fs::write(
        &config,
        format!(
                        "[push]\npushEnabled = comet,ios\nlocalizationFileLocation = {}\napple.authKey = {}\napple.keyId = {KEY_ID}\napple.teamId = {TEAM_ID}\n\
             apple.topicName = {TOPIC}\napple.url = {url}\napple.caFile = {}\napple.title = Contact centre\n\
             apple.sound = default\napple.badge = 1\napple.collapseId = chat\napple.expiration = 3600\n\
             [push.provider.localized]\napple.authKey = {}\napple.keyId = {KEY_ID}\napple.teamId = {TEAM_ID}\n\
             apple.topicName = {TOPIC}\napple.url = {url}\napple.caFile = {}\n\
             apple.alertMessage.loc-key = CHAT_NEW_AGENT_MESSAGE\napple.alertMessage.loc-args = Ann,now\n\
             [push.provider.event.ors]\napple.title = An ORS event\n\
             [push.provider.event.ors.cb.1]\napple.sound = chime\n\
             [push.provider.localized.event]\napple.badge = 7\n",
                        localization.display(),
            key.display(),
            ca_file.display(),
            key.display(),
            ca_file.display()
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    Server::start(&[("GMSHUB_CONFIG", config.as_str())])
}

async fn post(s: &Server, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(s.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn apns_over_http2_with_token_authentication() {
    let (apple, url, ca, _) = stand_in(false).await;
    let dir = tempfile::tempdir().unwrap();
    let s = gmshub(&url, &ca, &dir);
    let mut ids = std::collections::HashMap::new();
    for (device, provider) in [
        ("good-1", ""),
        ("gone-1", ""),
        ("baddev-1", ""),
        ("busy-1", ""),
        ("toomany-1", ""),
        ("good-2", "localized"),
        ("good-fr", ""),
    ] {
        let v = post(
            &s,
            "/genesys/1/notification/subscription",
            json!({"subscriberId": "a", "filter": "ors.cb.1", "providerName": provider,
                   "notificationDetails": {"deviceId": device, "type": "ios",
                   "properties": {"language": if device == "good-fr" { "fr-CA" } else { "en" }}}}),
        )
        .await;
        ids.insert(device, v["id"].as_str().unwrap().to_owned());
    }
    post(
        &s,
        "/genesys/1/notification/publish",
        json!({"tag": "ors.cb.1", "message": "Your agent is calling"}),
    )
    .await;

    let count = |device: &str| {
        apple
            .got
            .lock()
            .iter()
            .filter(|(t, _, _)| t == device)
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while count("busy-1") < 3
        || count("toomany-1") < 2
        || count("good-1") < 1
        || count("good-2") < 1
        || count("gone-1") < 1
        || count("baddev-1") < 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "got {:?}, refused {:?}",
            apple.got.lock(),
            apple.refused.lock()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        apple.refused.lock().is_empty(),
        "{:?}",
        apple.refused.lock()
    );
    assert_eq!(
        (count("busy-1"), count("toomany-1")),
        (3, 2),
        "retried until delivered"
    );
    assert_eq!((count("gone-1"), count("baddev-1")), (1, 1), "not retried");

    let good = apple
        .got
        .lock()
        .iter()
        .find(|(t, _, _)| t == "good-1")
        .cloned()
        .unwrap();
    assert_eq!(good.1["apns-topic"], TOPIC);
    assert_eq!(good.1["apns-push-type"], "alert");
    assert_eq!(good.1["apns-priority"], "10");
    assert_eq!(good.1["apns-collapse-id"], "chat");
    assert!(
        good.1["apns-expiration"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 1_700_000_000
    );
    // The event sections: the tag's prefix `ors` sets the title, the whole
    // tag the sound; the provider section's own options fill the rest.
    assert_eq!(
        good.2,
        json!({"aps": {"alert": {"title": "An ORS event", "body": "Your agent is calling"}, "sound": "chime", "badge": 1},
               "message": "Your agent is calling", "tag": "ors.cb.1"})
    );
    let localized = apple
        .got
        .lock()
        .iter()
        .find(|(t, _, _)| t == "good-2")
        .cloned()
        .unwrap();
    assert_eq!(
        localized.2["aps"]["alert"],
        json!({"title": "An ORS event", "loc-key": "CHAT_NEW_AGENT_MESSAGE", "loc-args": ["Ann", "now"]})
    );
    assert_eq!(
        localized.2["aps"]["badge"], 7,
        "the provider's own event section"
    );
    // A device in French gets the text of the localization file.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while count("good-fr") < 1 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let french = apple
        .got
        .lock()
        .iter()
        .find(|(t, _, _)| t == "good-fr")
        .cloned()
        .unwrap();
    assert_eq!(
        french.2["aps"]["alert"]["body"],
        "Votre conseiller vous appelle"
    );
    // One provider token signed for all of these (renewed every 50 minutes).
    let tokens: std::collections::HashSet<String> = apple.tokens.lock().iter().cloned().collect();
    assert_eq!(tokens.len(), 2, "one per provider");

    // Unregistered and BadDeviceToken removed their subscriptions.
    let status = |id: String| {
        let url = s.url(&format!("/genesys/1/notification/subscription/{id}"));
        async move { reqwest::get(url).await.unwrap().status() }
    };
    assert_eq!(status(ids["gone-1"].clone()).await, 404);
    assert_eq!(status(ids["baddev-1"].clone()).await, 404);
    assert_eq!(status(ids["good-1"].clone()).await, 200);
}

#[tokio::test]
async fn apns_with_a_p12_certificate() {
    let (apple, url, ca, p12) = stand_in(true).await;
    let dir = tempfile::tempdir().unwrap();
    let keystore = dir.path().join("apns.p12");
    std::fs::write(&keystore, p12.unwrap()).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let config = dir.path().join("push.ini");
    std::fs::write(
        &config,
        format!(
            "[push]\npushEnabled = comet,ios\napple.keystore = {}\napple.keystorePassword = p12-secret\n\
             apple.topicName = {TOPIC}\napple.url = {url}\napple.caFile = {}\n",
            keystore.display(),
            ca_file.display()
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let s = Server::start(&[("GMSHUB_CONFIG", config.as_str())]);
    post(
        &s,
        "/genesys/1/notification/subscription",
        json!({"subscriberId": "a", "filter": "cert", "notificationDetails": {"deviceId": "good-9", "type": "ios"}}),
    )
    .await;
    post(
        &s,
        "/genesys/1/notification/publish",
        json!({"tag": "cert", "message": "by certificate"}),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while apple.got.lock().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "refused: {:?}",
            apple.refused.lock()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        apple.refused.lock().is_empty(),
        "{:?}",
        apple.refused.lock()
    );
    assert_eq!(
        apple.got.lock()[0].2["aps"]["alert"]["body"],
        "by certificate"
    );
    assert!(
        apple.tokens.lock().is_empty(),
        "no provider token with a certificate"
    );
}

/// A callback's events reach an iOS device: the text to show in `aps`, the
/// app's data (`_id`, `_action`, the state) in `message`, in order.
#[tokio::test]
async fn callback_events_reach_an_ios_device() {
    let (apple, url, ca, _) = stand_in(false).await;
    let dir = tempfile::tempdir().unwrap();
    let s = gmshub(&url, &ca, &dir);
    let booked = post(
        &s,
        "/genesys/1/service/callback/default",
        json!({"_customer_number": "+1 650 253 0000", "_device_os": "ios",
               "_device_notification_id": "good-cb"}),
    )
    .await;
    let id = booked["_id"].as_str().unwrap().to_owned();
    let taken = reqwest::Client::new()
        .post(s.url("/gmshub/callback/default/next"))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let seen = loop {
        let seen: Vec<Value> = apple
            .got
            .lock()
            .iter()
            .filter(|(t, _, _)| t == "good-cb")
            .map(|(_, _, p)| p.clone())
            .collect();
        if seen.len() >= 2 {
            break seen;
        }
        assert!(std::time::Instant::now() < deadline, "got {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        seen[0]["aps"]["alert"]["body"],
        "Your callback is in the queue."
    );
    assert_eq!(
        seen[1]["aps"]["alert"]["body"],
        "You will receive the call shortly."
    );
    let data: Vec<Value> = seen
        .iter()
        .map(|p| serde_json::from_str(p["message"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(data[0]["_id"], id.as_str());
    assert_eq!(data[0]["_action"], "ConfirmationDialog");
    assert_eq!(
        (
            data[0]["_callback_state"].as_str(),
            data[1]["_callback_state"].as_str()
        ),
        (Some("QUEUED"), Some("ROUTING"))
    );
}
