//! FCM HTTP v1 against a local stand-in that checks the protocol: the token
//! endpoint verifies the RS256 assertion (signature against the service
//! account's public key, issuer, audience, scope, lifetime) and issues
//! access tokens; the send endpoint verifies the bearer token and the
//! message, and answers per device token: success, UNREGISTERED,
//! UNAVAILABLE (twice, then success), INVALID_ARGUMENT.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use common::Server;
use parking_lot::Mutex;
use serde_json::{json, Value};

const PROJECT: &str = "test-project";
const EMAIL: &str = "push@test-project.iam.gserviceaccount.com";

#[derive(Clone, Default)]
struct Fcm {
    base: Arc<Mutex<String>>,
    tokens: Arc<Mutex<Vec<String>>>,
    sent: Arc<Mutex<Vec<Value>>>,
    refused: Arc<Mutex<Vec<String>>>,
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    scope: String,
    aud: String,
    iat: u64,
    exp: u64,
}

async fn token(State(f): State<Fcm>, body: Bytes) -> Response {
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        f.refused.lock().push("grant_type".into());
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(include_bytes!("data/fcm-test-key.pub.pem"))
        .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    let aud = format!("{}/token", f.base.lock());
    validation.set_audience(&[aud.as_str()]);
    validation.set_issuer(&[EMAIL]);
    let claims = match jsonwebtoken::decode::<Claims>(
        form.get("assertion").map(String::as_str).unwrap_or(""),
        &key,
        &validation,
    ) {
        Ok(data) => data.claims,
        Err(e) => {
            f.refused.lock().push(format!("assertion: {e}"));
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_grant"})),
            )
                .into_response();
        }
    };
    assert_eq!(
        claims.scope,
        "https://www.googleapis.com/auth/firebase.messaging"
    );
    assert_eq!(
        (claims.iss.as_str(), claims.aud.as_str()),
        (EMAIL, aud.as_str())
    );
    assert!(claims.exp - claims.iat <= 3600, "at most an hour");
    let issued = format!("tok-{}", f.tokens.lock().len() + 1);
    f.tokens.lock().push(issued.clone());
    Json(json!({"access_token": issued, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

fn fcm_error(status: StatusCode, code: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "status": code, "details": [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}});
    (status, Json(body)).into_response()
}

async fn send(State(f): State<Fcm>, headers: HeaderMap, body: Bytes) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !f.tokens.lock().iter().any(|t| t == bearer) {
        return fcm_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return fcm_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
    };
    let device = v["message"]["token"].as_str().unwrap_or("").to_owned();
    if v["message"]["data"]["message"].as_str().is_none() {
        return fcm_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT");
    }
    let tries = {
        let mut sent = f.sent.lock();
        sent.push(v.clone());
        sent.iter()
            .filter(|s| s["message"]["token"] == device.as_str())
            .count()
    };
    match device.split('-').next().unwrap_or("") {
        "gone" => fcm_error(StatusCode::NOT_FOUND, "UNREGISTERED"),
        "busy" if tries <= 2 => fcm_error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        "bad" => fcm_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        _ => Json(json!({"name": format!("projects/{PROJECT}/messages/{tries}")})).into_response(),
    }
}

async fn stand_in() -> (Fcm, String) {
    let f = Fcm::default();
    let app = axum::Router::new()
        .route("/token", post(token))
        .route(&format!("/v1/projects/{PROJECT}/messages:send"), post(send))
        .with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *f.base.lock() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (f, base)
}

fn gmshub(base: &str, dir: &tempfile::TempDir, fcm_options: &str) -> Server {
    let account = dir.path().join("service-account.json");
    std::fs::write(
        &account,
        json!({
            "type": "service_account", "project_id": PROJECT, "client_email": EMAIL,
            "private_key": include_str!("data/fcm-test-key.pem"), "token_uri": format!("{base}/token"),
        })
        .to_string(),
    )
    .unwrap();
    let config = dir.path().join("push.ini");
    let options = fcm_options
        .replace("{account}", &account.to_string_lossy())
        .replace("{base}", base);
    std::fs::write(
        &config,
        format!("[push]\npushEnabled = comet,fcm,gcm\n{options}"),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    Server::start(&[("GMSHUB_CONFIG", config.as_str())])
}

async fn call(s: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(s.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn subscribe(s: &Server, kind: &str, device: &str) -> (StatusCode, Value) {
    call(
        s,
        "/genesys/1/notification/subscription",
        json!({"subscriberId": "a", "filter": "ors.event", "notificationDetails": {"deviceId": device, "type": kind}}),
    )
    .await
}

#[tokio::test]
async fn fcm_http_v1_with_a_service_account() {
    let (f, base) = stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let s = gmshub(
        &base,
        &dir,
        "fcm.serviceAccount = {account}\nfcm.url = {base}/v1/projects/{project}/messages:send\nfcm.title = Contact centre\n",
    );
    let mut ids = std::collections::HashMap::new();
    for (kind, device) in [
        ("fcm", "good-1"),
        ("gcm", "good-2"),
        ("fcm", "gone-1"),
        ("fcm", "busy-1"),
        ("fcm", "bad-1"),
    ] {
        let (status, v) = subscribe(&s, kind, device).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        ids.insert(device, v["id"].as_str().unwrap().to_owned());
    }
    let (status, v) = call(
        &s,
        "/genesys/1/notification/publish",
        json!({"tag": "ors.event", "message": "Your callback is next"}),
    )
    .await;
    assert_eq!(
        (status, v["queued"].as_u64()),
        (StatusCode::OK, Some(5)),
        "{v}"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let count = |device: &str| {
        f.sent
            .lock()
            .iter()
            .filter(|m| m["message"]["token"] == device)
            .count()
    };
    while count("busy-1") < 3
        || count("good-1") < 1
        || count("good-2") < 1
        || count("gone-1") < 1
        || count("bad-1") < 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "sent: {:?}",
            f.sent.lock()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(count("busy-1"), 3, "UNAVAILABLE twice, then delivered");
    assert_eq!(count("bad-1"), 1, "INVALID_ARGUMENT is not retried");
    assert_eq!(count("gone-1"), 1);
    assert_eq!(
        f.tokens.lock().len(),
        1,
        "one access token for every send: {:?}",
        f.refused.lock()
    );
    assert!(f.refused.lock().is_empty(), "{:?}", f.refused.lock());
    let good = f
        .sent
        .lock()
        .iter()
        .find(|m| m["message"]["token"] == "good-1")
        .cloned()
        .unwrap();
    assert_eq!(
        good["message"]["data"],
        json!({"message": "Your callback is next", "tag": "ors.event"})
    );
    assert_eq!(good["message"]["notification"]["title"], "Contact centre");
    // UNREGISTERED removed the subscription; the others stay.
    let get = |id: &String| {
        reqwest::Client::new()
            .get(s.url(&format!("/genesys/1/notification/subscription/{id}")))
            .send()
    };
    assert_eq!(
        get(&ids["gone-1"]).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&ids["good-1"]).await.unwrap().status(), StatusCode::OK);
    let v: Value = get(&ids["good-2"]).await.unwrap().json().await.unwrap();
    assert_eq!(
        v["notificationDetails"]["type"], "fcm",
        "gcm is served by FCM"
    );
}

#[tokio::test]
async fn a_legacy_api_key_alone_leaves_fcm_off() {
    let (_f, base) = stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let s = gmshub(&base, &dir, "fcm.apiKey = AAAA-legacy-server-key\n");
    let (status, v) = subscribe(&s, "fcm", "good-1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["message"],
        "push type fcm is off: [push] fcm.serviceAccount is not set ([push] fcm.apiKey is for \
         FCM's legacy API, which Google shut down in 2024)",
    );
}
