//! The hub as a library: built in-process from settings written here, served
//! on a free port, used over HTTP, and stopped, with no binary in between.

mod common;

use std::time::Duration;

use common::json_of;
use gmshub::app::{bind, Hub};
use gmshub::config::{Options, Settings};
use serde_json::{json, Value};

#[tokio::test]
async fn a_hub_built_in_process_serves_bayeux_and_the_apis_then_stops() {
    let data = tempfile::tempdir().unwrap();
    let ini = format!(
        "[sqlite]\npath = {}\n[chat.support]\n_client_timeout = 60\n",
        data.path().join("gmshub.db").display()
    );
    let settings = Settings::from_options(&Options::from_ini(&ini, &[]).unwrap());
    let listener = bind("127.0.0.1:0".parse().unwrap(), 128).unwrap();
    let address = listener.local_addr().unwrap();
    let hub = Hub::build(settings, address).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(hub.serve(listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{address}{path}");

    // Bayeux: a long-polling handshake.
    let handshake = json_of(http.post(url("/genesys/cometd")).json(&json!([
        {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}
    ])))
    .await;
    assert_eq!(handshake[0]["successful"], json!(true), "{handshake}");

    // Chat API v2 on the configured service, and the Node API.
    let chat = json_of(
        http.post(url("/genesys/2/chat/support"))
            .form(&[("nickname", "Ada")]),
    )
    .await;
    assert_eq!(chat["statusCode"], json!(0), "{chat}");
    let node = http.get(url("/genesys/1/node")).send().await.unwrap();
    assert_eq!(node.status(), 200);
    let node: Value = node.json().await.unwrap();
    assert_eq!(node["status"], json!("ONLINE"));
    assert_eq!(node["store"], json!("sqlite"));
    assert_eq!(node["storeReachable"], json!(true));
    assert_eq!(
        node["cometd"],
        json!({"sessions": 1, "dropped": 0}),
        "the handshaken one"
    );

    drop(http);
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(15), serving)
        .await
        .expect("the hub stops within its shutdown bound")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}
