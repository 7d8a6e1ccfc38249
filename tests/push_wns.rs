//! WNS against a local stand-in: the token endpoint checks the
//! client-credentials grant (package SID, secret, scope) and issues a token;
//! the channel endpoint checks the bearer token, `X-WNS-Type`, the XML body
//! with the message escaped into the template, and answers 200, or 410 for
//! an expired channel (whose subscription then goes).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Json;
use common::Server;
use parking_lot::Mutex;
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Wns {
    tokens: Arc<Mutex<u32>>,
    got: Arc<Mutex<Vec<(String, String, String)>>>,
}

async fn token(State(w): State<Wns>, body: Bytes) -> (StatusCode, Json<Value>) {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some("ms-app://s-1-15-2-test")
        && form.get("client_secret").map(String::as_str) == Some("wns-secret")
        && form.get("scope").map(String::as_str) == Some("notify.windows.com");
    if !ok {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client"})),
        );
    }
    *w.tokens.lock() += 1;
    (
        StatusCode::OK,
        Json(json!({"access_token": "wns-token", "token_type": "bearer", "expires_in": 86400})),
    )
}

async fn channel(
    State(w): State<Wns>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    if h("authorization") != "Bearer wns-token" {
        return StatusCode::UNAUTHORIZED;
    }
    if h("content-type") != "text/xml" {
        return StatusCode::BAD_REQUEST;
    }
    w.got.lock().push((
        id.clone(),
        h("x-wns-type"),
        String::from_utf8_lossy(&body).into_owned(),
    ));
    if id == "expired" {
        StatusCode::GONE
    } else {
        StatusCode::OK
    }
}

#[tokio::test]
async fn wns_with_client_credentials() {
    let w = Wns::default();
    let app = axum::Router::new()
        .route("/token", post(token))
        .route("/wns/channel/{id}", post(channel))
        .with_state(w.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("push.ini");
    std::fs::write(
        &config,
        format!(
            "[push]\npushEnabled = comet,wns\nwns.sid = ms-app://s-1-15-2-test\nwns.clientSecret = wns-secret\n\
             wns.tokenUrl = {base}/token\nwns.notificationType = wns/toast\nwns.allowed-hosts = 127.0.0.1\n\
             wns.xmlTemplate = <toast><visual><binding template=\"ToastText01\"><text id=\"1\">bodyText</text></binding></visual></toast>\n"
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let s = Server::start(&[("GMSHUB_CONFIG", config.as_str())]);
    let client = reqwest::Client::new();
    let mut ids = HashMap::new();
    for device in ["ok", "expired"] {
        let v: Value = client
            .post(s.url("/genesys/1/notification/subscription"))
            .json(&json!({"subscriberId": "w", "filter": "win", "notificationDetails": {"deviceId": format!("{base}/wns/channel/{device}"), "type": "wns"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.insert(device, v["id"].as_str().expect("subscribed").to_owned());
    }
    client
        .post(s.url("/genesys/1/notification/publish"))
        .json(&json!({"tag": "win", "message": "Agent <Ann> & co"}))
        .send()
        .await
        .unwrap();
    for _ in 0..200 {
        if w.got.lock().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = w.got.lock().clone();
    let ok = got.iter().find(|(id, _, _)| id == "ok").expect("delivered");
    assert_eq!(ok.1, "wns/toast");
    assert_eq!(
        ok.2,
        r#"<toast><visual><binding template="ToastText01"><text id="1">Agent &lt;Ann&gt; &amp; co</text></binding></visual></toast>"#
    );
    assert_eq!(*w.tokens.lock(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = |id: &str| {
        client
            .get(s.url(&format!("/genesys/1/notification/subscription/{id}")))
            .send()
    };
    assert_eq!(
        status(&ids["expired"]).await.unwrap().status(),
        404,
        "an expired channel loses its subscription"
    );
    assert_eq!(status(&ids["ok"]).await.unwrap().status(), 200);

    // A channel URI off the WNS hosts would receive the access token: refused.
    for elsewhere in [
        "https://attacker.example/wns",
        "https://127.0.0.1.attacker.example/",
    ] {
        let r = client
            .post(s.url("/genesys/1/notification/subscription"))
            .json(&json!({"subscriberId": "w", "filter": "win", "notificationDetails": {"deviceId": elsewhere, "type": "wns"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{elsewhere}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("wns.allowed-hosts"),
            "{body}"
        );
    }
}
