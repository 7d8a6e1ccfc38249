//! Chat API v1 end to end, driven as GMS's v1 sample apps drive it: request
//! the built-in request-chat service, start the chat interaction, send,
//! refresh from a transcript position, typing, disconnect; an agent answers
//! through the agent API and sees the data given at request time.

mod common;

use common::Server;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn post(
    s: &Server,
    path: &str,
    user: Option<&str>,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().post(s.url(path)).form(form);
    if let Some(u) = user {
        req = req.header("gms_user", u);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn agent(s: &Server) -> (reqwest::Client, String) {
    let http = reqwest::Client::new();
    let v: Value = http
        .post(s.url("/gmshub/agent/login"))
        .json(&json!({"agent": "agent", "password": "agent"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = v["token"].as_str().unwrap().to_owned();
    http.post(s.url("/gmshub/agent/ready"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    (http, token)
}

fn kinds(resource: &Value) -> Vec<String> {
    resource["transcriptToShow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_v1_chat_from_request_to_disconnect() {
    let s = Server::start(&[]);
    let (status, service) = post(
        &s,
        "/genesys/1/service/request-chat",
        Some("u1"),
        &[("phone", "555"), ("_verbose", "true")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let id = service["_id"].as_str().expect("_id").to_owned();

    let path = format!("/genesys/1/service/{id}/ixn/chat");
    let (status, chat) = post(
        &s,
        &path,
        Some("u1"),
        &[
            ("firstName", "Jo"),
            ("lastName", "Doe"),
            ("subject", "help"),
            ("_verbose", "true"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{chat}");
    assert_eq!(chat["chatIxnState"], "TRANSCRIPT");
    assert_eq!(chat["chatServiceMessage"], "Chat service is available");
    assert_eq!(chat["transcriptPosition"], 2);
    assert!(chat["startedAt"].as_str().unwrap().ends_with('Z'));
    assert!(
        chat["userId"].is_string() && chat["secureKey"].is_string(),
        "verbose"
    );
    assert_eq!(
        chat["transcriptToShow"],
        json!([[
            "Notice.Joined",
            "Jo Doe",
            "has joined the session",
            "0",
            "CLIENT"
        ]])
    );
    let chat_id = chat["chatSessionId"].as_str().unwrap().to_owned();

    // The agent takes it and sees the data of the service request.
    let (http, token) = agent(&s).await;
    let taken: Value = http
        .post(s.url("/gmshub/agent/chats/next"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(taken["chatId"], chat_id.as_str());
    assert_eq!(taken["userData"]["phone"], "555");
    assert_eq!(taken["subject"], "help");
    http.post(s.url(&format!("/gmshub/agent/chats/{chat_id}/send")))
        .bearer_auth(&token)
        .json(&json!({"message": "Hi Jo"}))
        .send()
        .await
        .unwrap();

    let (_, v) = post(
        &s,
        &format!("{path}/refresh"),
        Some("u1"),
        &[("transcriptPosition", "2")],
    )
    .await;
    assert_eq!(
        v["transcriptToShow"],
        json!([
            [
                "Notice.Joined",
                "Agent",
                "has joined the session",
                v["transcriptToShow"][0][3],
                "AGENT"
            ],
            [
                "Message.Text",
                "Agent",
                "Hi Jo",
                v["transcriptToShow"][1][3],
                "AGENT"
            ]
        ])
    );
    assert_eq!(v["transcriptPosition"], 4);
    assert!(v.get("secureKey").is_none(), "not verbose");

    post(&s, &format!("{path}/startTyping"), Some("u1"), &[]).await;
    let (status, _) = post(
        &s,
        &format!("{path}/send"),
        Some("u1"),
        &[("message", "thanks")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    post(&s, &format!("{path}/stopTyping"), Some("u1"), &[]).await;
    // A refresh may carry a message too.
    let (_, v) = post(
        &s,
        &format!("{path}/refresh"),
        Some("u1"),
        &[("transcriptPosition", "4"), ("message", "bye")],
    )
    .await;
    assert_eq!(
        kinds(&v),
        [
            "Notice.TypingStarted",
            "Message.Text",
            "Notice.TypingStopped",
            "Message.Text"
        ]
    );
    assert_eq!(v["transcriptToShow"][3][2], "bye");
    assert_eq!(v["transcriptToShow"][3][4], "CLIENT");

    let (_, v) = post(&s, &format!("{path}/disconnect"), Some("u1"), &[]).await;
    assert_eq!(v["chatIxnState"], "DISCONNECTED");
    let (status, v) = post(
        &s,
        &format!("{path}/send"),
        Some("u1"),
        &[("message", "late")],
    )
    .await;
    assert_eq!(status, StatusCode::GONE);
    assert!(v["message"].is_string() && v["exception"].is_string());
}

#[tokio::test]
async fn v1_errors_are_classic_gms_errors() {
    let s = Server::start(&[]);
    let (status, v) = post(
        &s,
        "/genesys/1/service/no-such-service",
        None,
        &[("a", "b")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["exception"].as_str().unwrap().contains("ServiceNotFound"));
    let (status, _) = post(
        &s,
        "/genesys/1/service/unknown-id/ixn/chat",
        Some("u"),
        &[("firstName", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        &s,
        "/genesys/1/service/unknown-id/ixn/chat/send",
        Some("u"),
        &[("message", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, service) = post(&s, "/genesys/1/service/request-chat", Some("owner"), &[]).await;
    let id = service["_id"].as_str().unwrap().to_owned();
    let path = format!("/genesys/1/service/{id}/ixn/chat");
    let (status, chat) = post(&s, &path, Some("owner"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(chat["transcriptToShow"][0][1], "Customer", "no name given");
    // Starting it again returns the same chat.
    let (_, again) = post(&s, &path, Some("owner"), &[]).await;
    assert_eq!(again["chatSessionId"], chat["chatSessionId"]);
    // Another gms_user (or none) cannot act on it.
    let (status, v) = post(
        &s,
        &format!("{path}/send"),
        Some("intruder"),
        &[("message", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, _) = post(&s, &format!("{path}/refresh"), None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(&s, &format!("{path}/send"), Some("owner"), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "empty message");
    let (status, _) = post(
        &s,
        &format!("{path}/refresh"),
        Some("owner"),
        &[("transcriptPosition", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(&s, &format!("{path}/jump"), Some("owner"), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
