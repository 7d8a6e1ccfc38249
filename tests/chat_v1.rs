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

/// Long-polls until deliveries on `/_genesys` arrive (bounded); returns
/// their data.
async fn genesys_deliveries(browser: &common::Browser, client_id: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no /_genesys delivery"
        );
        let got = browser
            .send(json!([{"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling",
                "advice": {"timeout": 2000}}]))
            .await;
        let data: Vec<Value> = got
            .iter()
            .filter(|m| m["channel"] == "/_genesys")
            .map(|m| m["data"].clone())
            .collect();
        if !data.is_empty() {
            return data;
        }
    }
}

#[tokio::test]
async fn v1_events_arrive_on_genesys_and_wait_while_in_background() {
    let s = Server::start(&[]);
    let browser = common::Browser::with_headers(&s, &[("gms_user", "u7")]);
    let client_id = browser.session().await;
    let sub = browser.subscribe(&client_id, json!("/_genesys")).await;
    assert_eq!(sub["successful"], true);

    let (_, service) = post(&s, "/genesys/1/service/request-chat", Some("u7"), &[]).await;
    let id = service["_id"].as_str().unwrap().to_owned();
    let path = format!("/genesys/1/service/{id}/ixn/chat");
    let (_, chat) = post(
        &s,
        &path,
        Some("u7"),
        &[("firstName", "Al"), ("notify_by", "comet")],
    )
    .await;
    let chat_id = chat["chatSessionId"].as_str().unwrap().to_owned();

    let (http, token) = agent(&s).await;
    let say = |text: &'static str| {
        http.post(s.url(&format!("/gmshub/agent/chats/{chat_id}/send")))
            .bearer_auth(&token)
            .json(&json!({"message": text}))
            .send()
    };
    http.post(s.url("/gmshub/agent/chats/next"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    say("hello Al").await.unwrap();
    // The agent's join and message, pushed in GMS's comet envelope.
    let mut seen: Vec<Value> = Vec::new();
    while !seen.iter().any(|e| e[2] == "hello Al") {
        for d in genesys_deliveries(&browser, &client_id).await {
            assert_eq!(d["id"].as_str().unwrap().len(), 32);
            assert!(
                d["tag"]
                    .as_str()
                    .unwrap()
                    .starts_with("service.chat.refresh."),
                "{d}"
            );
            assert!(
                d["message"]["transcriptPosition"].is_string(),
                "a string over CometD: {d}"
            );
            assert_eq!(d["message"]["chatSessionId"], chat_id.as_str());
            seen.extend(
                d["message"]["transcriptToShow"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .cloned(),
            );
        }
    }
    assert_eq!(seen[0][0], "Notice.Joined");
    assert_eq!(seen.last().unwrap()[4], "AGENT");

    // The app goes to the background: the agent is told, nothing is pushed.
    let bye = browser
        .send(json!([{"channel": "/meta/disconnect", "clientId": client_id, "ext": {"transcriptPosition": "4"}}]))
        .await;
    assert_eq!(bye[0]["successful"], true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let view: Value = http
            .get(s.url(&format!("/gmshub/agent/chats/{chat_id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if view["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "CustomNotice")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no background notice: {view}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    say("are you there?").await.unwrap();

    // Back: a new CometD session, and a refresh that reads what was missed.
    let again = browser.session().await;
    browser.subscribe(&again, json!("/_genesys")).await;
    let (_, v) = post(
        &s,
        &format!("{path}/refresh"),
        Some("u7"),
        &[("transcriptPosition", "4")],
    )
    .await;
    let texts: Vec<&str> = v["transcriptToShow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[2].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "The customer's app went to the background.",
            "are you there?"
        ]
    );
    // From now on, pushes reach the new session.
    say("welcome back").await.unwrap();
    let d = genesys_deliveries(&browser, &again).await;
    assert_eq!(
        d[0]["message"]["transcriptToShow"][0][2], "welcome back",
        "{d:?}"
    );
}

#[tokio::test]
async fn fast_transcript_refresh_numbers_each_entry() {
    let s = Server::start(&[("GMSHUB__CHAT__ENABLE_FAST_CHAT_TRANSCRIPT_REFRESH", "true")]);
    let (_, service) = post(&s, "/genesys/1/service/request-chat", None, &[]).await;
    let id = service["_id"].as_str().unwrap().to_owned();
    let path = format!("/genesys/1/service/{id}/ixn/chat");
    post(&s, &path, None, &[("firstName", "Fast")]).await;
    post(&s, &format!("{path}/send"), None, &[("message", "one")]).await;
    let (_, v) = post(
        &s,
        &format!("{path}/refresh"),
        None,
        &[("transcriptPosition", "1")],
    )
    .await;
    let entries = v["transcriptToShow"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].as_array().unwrap().len(), 6, "{v}");
    assert_eq!(
        (entries[0][5].as_str(), entries[1][5].as_str()),
        (Some("1"), Some("2"))
    );
}
