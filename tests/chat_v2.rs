//! Chat API v2 over REST and the agent API, end to end against the real
//! binary: a customer requests a chat, an agent takes it and they talk;
//! every operation, every error in the Digital Channels response shape, and
//! refresh from a transcript position returning exactly the missed events.

mod common;

use common::chat::{request_chat, Agent, Customer, SVC};
use common::Server;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn kinds(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap().to_owned())
        .collect()
}

fn error_code(v: &Value) -> u64 {
    v["errors"][0]["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("an error in {v}"))
}

#[tokio::test]
async fn a_customer_and_an_agent_talk() {
    let s = Server::start(&[]);
    let c = Customer::start(&s, "Jane").await;
    let a = Agent::login(&s, "agent", "agent").await;

    // Not ready: nothing offered, and the server says so to a desk that asks.
    let (status, me) = a.get("/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (me["agent"].clone(), me["ready"].clone()),
        (json!("agent"), json!(false))
    );
    assert_eq!(
        me["colleagues"],
        json!([]),
        "the development account is alone"
    );
    assert_eq!(me["transferQueues"], json!(["Environment:default"]));
    assert_eq!(a.get("/offers").await.1["offers"], json!([]));
    let (status, _) = a
        .post(&format!("/chats/{}/accept", c.chat_id), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "accepting while not ready");
    // A body that is not an object is refused, not read as one.
    let (status, v) = a.post("/ready", json!([null])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    a.post("/ready", json!({"capacity": 2})).await;
    let me = a.get("/me").await.1;
    assert_eq!(
        (me["ready"].clone(), me["capacity"].clone()),
        (json!(true), json!(2))
    );
    let anonymous = reqwest::get(s.url("/gmshub/agent/me")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let refused: Value = anonymous.json().await.unwrap();
    assert!(
        refused["error"].is_string(),
        "the agent API's error shape: {refused}"
    );
    let offers = a.get("/offers").await.1;
    assert_eq!(offers["offers"][0]["chatId"], c.chat_id.as_str());
    assert_eq!(offers["offers"][0]["nickname"], "Jane");
    assert_eq!(offers["offers"][0]["subject"], "billing");

    let (status, chat) = a
        .post(&format!("/chats/{}/accept", c.chat_id), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{chat}");
    assert_eq!(chat["state"], "connected");
    assert_eq!(chat["userData"]["account"], "42");
    assert_eq!(a.get("/offers").await.1["offers"], json!([]), "taken");

    a.post(&format!("/chats/{}/start-typing", c.chat_id), json!({}))
        .await;
    a.post(
        &format!("/chats/{}/send", c.chat_id),
        json!({"message": "Hello Jane"}),
    )
    .await;
    let v = c
        .op(
            "send",
            &[
                ("message", "<b>hi</b>"),
                ("messageType", "text"),
                ("transcriptPosition", "1"),
            ],
        )
        .await;
    assert_eq!(v["statusCode"], 0);
    assert_eq!(
        kinds(&v["messages"]),
        [
            "ParticipantJoined",
            "ParticipantJoined",
            "TypingStarted",
            "Message",
            "Message"
        ]
    );
    let mine = &v["messages"][4];
    assert_eq!(mine["text"], "<b>hi</b>", "text kept as sent");
    assert_eq!(mine["messageType"], "text");
    assert_eq!(
        mine["from"],
        json!({"nickname": "Jane", "participantId": 1, "type": "Client"})
    );
    assert_eq!(v["messages"][3]["from"]["type"], "Agent");
    assert_eq!(v["nextPosition"], 6);
    for (i, m) in v["messages"].as_array().unwrap().iter().enumerate() {
        assert_eq!(m["index"], i + 1);
        assert!(m["utcTime"].as_u64().unwrap() > 1_700_000_000_000);
    }

    // Every other customer operation leaves its event.
    c.op("startTyping", &[("message", "typing pre")]).await;
    c.op("stopTyping", &[]).await;
    c.op("pushUrl", &[("pushUrl", "https://example.com/cart")])
        .await;
    c.op("updateNickname", &[("nickname", "Jane D")]).await;
    c.op("customNotice", &[("message", "page=checkout")]).await;
    let v = c.op("updateData", &[("userData[cart]", "3 items")]).await;
    assert_eq!(v["statusCode"], 0);
    let v = c.op("refresh", &[("transcriptPosition", "6")]).await;
    assert_eq!(
        kinds(&v["messages"]),
        [
            "TypingStarted",
            "TypingStopped",
            "PushUrl",
            "NicknameUpdated",
            "CustomNotice"
        ]
    );
    assert_eq!(v["messages"][0]["text"], "typing pre");
    assert_eq!(v["messages"][2]["text"], "https://example.com/cart");
    assert_eq!(v["messages"][3]["from"]["nickname"], "Jane D");
    let (_, seen) = a.get(&format!("/chats/{}?from=10", c.chat_id)).await;
    assert_eq!(seen["userData"]["cart"], "3 items");
    assert_eq!(kinds(&seen["messages"]), ["CustomNotice"]);

    // The customer leaves: the chat ends on both sides.
    let v = c.op("disconnect", &[]).await;
    assert_eq!(v["chatEnded"], true);
    let v = c.op("refresh", &[("transcriptPosition", "11")]).await;
    assert_eq!(
        kinds(&v["messages"]),
        ["ParticipantLeft", "ParticipantLeft"]
    );
    assert_eq!(v["chatEnded"], true);
    let (_, seen) = a.get(&format!("/chats/{}", c.chat_id)).await;
    assert_eq!(seen["state"], "ended");
    assert_eq!(a.get("/chats").await.1["chats"], json!([]));
    let v = c.op("send", &[("message", "anyone?")]).await;
    assert_eq!(
        (v["statusCode"].as_u64(), error_code(&v)),
        (Some(2), 104),
        "ended chat: {v}"
    );
    let (status, _) = a
        .post(
            &format!("/chats/{}/send", c.chat_id),
            json!({"message": "late"}),
        )
        .await;
    assert_eq!(status, StatusCode::GONE);
}

#[tokio::test]
async fn refresh_returns_exactly_the_missed_events_in_order() {
    let s = Server::start(&[]);
    let c = Customer::start(&s, "Ann").await;
    let a = Agent::login(&s, "agent", "agent").await;
    a.post("/ready", json!({})).await;
    let (_, chat) = a.post("/chats/next", json!({})).await;
    assert_eq!(chat["chatId"], c.chat_id.as_str());
    let seen = c.op("refresh", &[]).await;
    let position = seen["nextPosition"].as_u64().unwrap();
    assert_eq!(
        kinds(&seen["messages"]),
        ["ParticipantJoined", "ParticipantJoined"]
    );
    // The customer's connection drops; the agent goes on writing, long
    // enough for most of it to be in the chat's log, not its record.
    for i in 0..40 {
        a.post(
            &format!("/chats/{}/send", c.chat_id),
            json!({"message": format!("m{i}")}),
        )
        .await;
    }
    let v = c
        .op("refresh", &[("transcriptPosition", &position.to_string())])
        .await;
    let texts: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    let sent: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, sent);
    assert_eq!(v["nextPosition"], position + 40);
    // A numeric JSON-ish position and the full transcript without one.
    let all = c.op("refresh", &[]).await;
    let all = all["messages"].as_array().unwrap().clone();
    assert_eq!(all.len(), 42);
    let indexes: Vec<u64> = all.iter().map(|m| m["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, (1..=42).collect::<Vec<_>>());
    // The agent reads from any position too.
    let (_, part) = a.get(&format!("/chats/{}?from=20", c.chat_id)).await;
    assert_eq!(part["messages"].as_array().unwrap()[..], all[19..]);
}

#[tokio::test]
async fn every_bad_request_gets_a_digital_channels_error() {
    let s = Server::start(&[("GMSHUB__CHAT__MAX_MESSAGE_SIZE", "100")]);
    // [chat] configured by the environment counts only for options; the
    // default service still exists.
    let http = reqwest::Client::new();

    // Missing nickname (and only a first name): code 101.
    for form in [vec![("subject", "x")], vec![("firstName", "Jo")]] {
        let v = request_chat(&s, &form).await;
        assert_eq!(
            (v["statusCode"].as_u64(), error_code(&v)),
            (Some(2), 101),
            "{v}"
        );
        assert!(v.get("secureKey").is_none());
    }
    // First and last name make a nickname.
    let v = request_chat(&s, &[("firstName", "Jo"), ("lastName", "Doe")]).await;
    assert_eq!(v["statusCode"], 0);

    // Unknown service: 404 with the same shape.
    let r = http
        .post(s.url("/genesys/2/chat/nope"))
        .form(&[("nickname", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["statusCode"].as_u64(), error_code(&v)), (Some(2), 100));
    assert_eq!(
        v["chatEnded"], true,
        "every payload says whether the chat ended"
    );

    // No body type: 415 in the classic shape.
    let r = http
        .post(s.url(SVC))
        .body("nickname=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let c = Customer::start(&s, "Bob").await;
    // Wrong secureKey, wrong userId, wrong alias, none at all: 103, and no
    // credentials in the answer.
    for (user, key, alias) in [
        (c.user_id.as_str(), "wrong", "1"),
        ("wrong", c.secure_key.as_str(), "1"),
        (c.user_id.as_str(), c.secure_key.as_str(), "7"),
    ] {
        let r = http
            .post(format!("{}/{}/refresh", c.base, c.chat_id))
            .form(&[("userId", user), ("secureKey", key), ("alias", alias)])
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["statusCode"].as_u64(), error_code(&v)),
            (Some(2), 103),
            "{v}"
        );
        assert!(v.get("secureKey").is_none() && v.get("messages").unwrap() == &json!([]));
    }
    // Unknown chat: 102, chatEnded.
    let r = http
        .post(format!("{}/0123456789abcdef/refresh", c.base))
        .form(&[
            ("userId", c.user_id.as_str()),
            ("secureKey", c.secure_key.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (error_code(&v), v["chatEnded"].as_bool()),
        (102, Some(true))
    );
    // The chat of another service is not found there.
    let r = http
        .post(format!(
            "{}/{}/refresh",
            s.url("/genesys/2/chat/other"),
            c.chat_id
        ))
        .form(&[
            ("userId", c.user_id.as_str()),
            ("secureKey", c.secure_key.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "unknown service");

    // Oversized message (max-message-size 100), empty message, bad position,
    // empty pushUrl or nickname, unknown operation.
    let v = c.op("send", &[("message", &"x".repeat(101))]).await;
    assert_eq!(error_code(&v), 105);
    let v = c.op("send", &[]).await;
    assert_eq!(error_code(&v), 101);
    let v = c.op("refresh", &[("transcriptPosition", "soon")]).await;
    assert_eq!(error_code(&v), 101);
    let v = c.op("pushUrl", &[]).await;
    assert_eq!(error_code(&v), 101);
    let v = c.op("updateNickname", &[("nickname", "  ")]).await;
    assert_eq!(error_code(&v), 101);
    let r = http
        .post(format!("{}/{}/teleport", c.base, c.chat_id))
        .form(&[
            ("userId", c.user_id.as_str()),
            ("secureKey", c.secure_key.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(&r.json().await.unwrap()), 107);
    // A refused send left nothing in the transcript.
    let v = c.op("refresh", &[]).await;
    assert_eq!(kinds(&v["messages"]), ["ParticipantJoined"]);
}

#[tokio::test]
async fn agents_decline_transfer_invite_and_end() {
    let s = Server::start(&[]);
    let a = Agent::login(&s, "agent", "agent").await;
    // Bad logins and no token: 401.
    let r = reqwest::Client::new()
        .post(s.url("/gmshub/agent/login"))
        .json(&json!({"agent": "agent", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = reqwest::Client::new()
        .get(s.url("/gmshub/agent/offers"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let first = Customer::start(&s, "First").await;
    let second = Customer::start(&s, "Second").await;
    a.post("/ready", json!({"capacity": 1})).await;
    let offers = a.get("/offers").await.1;
    let order: Vec<&str> = offers["offers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["nickname"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["First", "Second"], "oldest first");

    // Declined: not offered to this agent again.
    let (status, _) = a
        .post(&format!("/chats/{}/reject", first.chat_id), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, chat) = a.post("/chats/next", json!({})).await;
    assert_eq!(chat["chatId"], second.chat_id.as_str());
    // At capacity (1): nothing more.
    assert_eq!(a.get("/offers").await.1["offers"], json!([]));
    let (status, _) = a.post("/chats/next", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Transfer to another queue: the agent leaves, the chat waits there.
    let (status, chat) = a
        .post(
            &format!("/chats/{}/transfer", second.chat_id),
            json!({"queue": "Environment:vip"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{chat}");
    assert_eq!(chat["state"], "queued");
    assert_eq!(chat["queue"], "Environment:vip");
    let v = second.op("refresh", &[("transcriptPosition", "3")]).await;
    assert_eq!(kinds(&v["messages"]), ["ParticipantLeft"]);
    assert_eq!(v["chatEnded"], false);

    // Take the first one after all (accept, not next, ignores the decline),
    // invite a second agent, then end it for everyone.
    let (status, _) = a
        .post(&format!("/chats/{}/accept", first.chat_id), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = a
        .post(
            &format!("/chats/{}/invite", first.chat_id),
            json!({"agent": "ghost"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = a
        .post(
            &format!("/chats/{}/url", first.chat_id),
            json!({"url": "https://example.com/faq"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = a
        .post(
            &format!("/chats/{}/notice", first.chat_id),
            json!({"message": "note"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, chat) = a
        .post(&format!("/chats/{}/end", first.chat_id), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(chat["state"], "ended");
    let v = first.op("refresh", &[]).await;
    assert_eq!(v["chatEnded"], true);
    assert_eq!(
        kinds(&v["messages"]),
        [
            "ParticipantJoined",
            "ParticipantJoined",
            "PushUrl",
            "CustomNotice",
            "ParticipantLeft",
            "ParticipantLeft"
        ]
    );
    // Someone else's chat is not this agent's to read.
    let (status, _) = a.get(&format!("/chats/{}", second.chat_id)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "it was in the chat before the transfer"
    );
    let third = Customer::start(&s, "Third").await;
    let (status, _) = a.get(&format!("/chats/{}", third.chat_id)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = a
        .post(
            &format!("/chats/{}/send", third.chat_id),
            json!({"message": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = a
        .post(&format!("/chats/{}/teleport", third.chat_id), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = a.post("/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        a.get("/offers").await.0,
        StatusCode::UNAUTHORIZED,
        "token gone"
    );
}

#[tokio::test]
async fn an_idle_customer_ends_the_chat_for_both_sides() {
    let s = Server::start(&[("GMSHUB__CHAT___CLIENT_TIMEOUT", "2")]);
    let c = Customer::start(&s, "Idle").await;
    let a = Agent::login(&s, "agent", "agent").await;
    a.post("/ready", json!({})).await;
    a.post(&format!("/chats/{}/accept", c.chat_id), json!({}))
        .await;
    // The agent writing does not keep the chat alive; only the customer does.
    for _ in 0..4 {
        a.post(
            &format!("/chats/{}/send", c.chat_id),
            json!({"message": "hello?"}),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    }
    let (_, seen) = a.get(&format!("/chats/{}", c.chat_id)).await;
    assert_eq!(seen["state"], "ended", "{seen}");
    let tail: Vec<&str> = seen["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(3)
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(tail, ["ParticipantLeft", "ParticipantLeft", "Notice"]);
    let v = c.op("refresh", &[]).await;
    assert_eq!(v["chatEnded"], true);
    let notice = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == "Notice")
        .unwrap();
    assert_eq!(notice["from"]["type"], "System");
    assert!(notice["text"].as_str().unwrap().contains("2 s"));
}

#[tokio::test]
async fn a_customer_who_refreshes_keeps_the_chat() {
    let s = Server::start(&[("GMSHUB__CHAT___CLIENT_TIMEOUT", "2")]);
    let c = Customer::start(&s, "Busy").await;
    for _ in 0..8 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let v = c.op("refresh", &[]).await;
        assert_eq!(v["chatEnded"], false, "{v}");
    }
}

#[tokio::test]
async fn files_go_up_down_and_away_within_the_limits() {
    use reqwest::multipart::{Form, Part};
    let s = Server::start(&[
        ("GMSHUB__CHAT__UPLOAD_MAX_FILES", "2"),
        ("GMSHUB__CHAT__UPLOAD_MAX_FILE_SIZE", "1000"),
    ]);
    let c = Customer::start(&s, "Files").await;
    let a = Agent::login(&s, "agent", "agent").await;
    a.post("/ready", json!({})).await;
    a.post(&format!("/chats/{}/accept", c.chat_id), json!({}))
        .await;

    let limits = c.op("file/limits", &[]).await;
    assert_eq!(limits["statusCode"], 0, "{limits}");
    let notice = &limits["messages"][0];
    assert_eq!(
        (notice["type"].as_str(), notice["text"].as_str()),
        (Some("Notice"), Some("file-client-cfg-get"))
    );
    assert_eq!(notice["userData"]["upload-max-files"], "2");
    assert_eq!(notice["userData"]["upload-max-file-size"], "1000");
    assert_eq!(notice["userData"]["used-upload-max-files"], "0");

    let upload = |name: &'static str, mime: &'static str, bytes: Vec<u8>| {
        let form = Form::new()
            .text("userId", c.user_id.clone())
            .text("secureKey", c.secure_key.clone())
            .text("alias", "1")
            .text("userData[file-description]", "a receipt")
            .part(
                "file",
                Part::bytes(bytes).file_name(name).mime_str(mime).unwrap(),
            );
        c.http
            .post(format!("{}/{}/file", c.base, c.chat_id))
            .multipart(form)
            .send()
    };
    let bytes: Vec<u8> = (0..=255).collect();
    let v: Value = upload("receipt.pdf", "application/pdf", bytes.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["statusCode"], 0, "{v}");
    let file_id = v["userData"]["file-id"].as_str().unwrap().to_owned();

    // Refused: a type not allowed, a file too large.
    let v: Value = upload("run.exe", "application/octet-stream", vec![1])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&v), 101, "{v}");
    let v: Value = upload("big.png", "image/png", vec![0; 1001])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&v), 105, "{v}");
    let v: Value = upload("two.png", "image/png", vec![7; 10])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["statusCode"], 0);
    let v: Value = upload("three.png", "image/png", vec![7; 10])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&v), 105, "at most 2 files: {v}");

    // The transcript tells both sides; the customer and the agent download it.
    let t = c.op("refresh", &[("transcriptPosition", "3")]).await;
    let uploaded: Vec<&Value> = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "FileUploaded")
        .collect();
    assert_eq!(uploaded.len(), 2);
    assert_eq!(uploaded[0]["userData"]["file-id"], file_id.as_str());
    assert_eq!(uploaded[0]["userData"]["file-name"], "receipt.pdf");
    assert_eq!(uploaded[0]["userData"]["file-size"], "256");
    assert_eq!(uploaded[0]["userData"]["file-description"], "a receipt");
    let download = c
        .http
        .post(format!("{}/{}/file/{file_id}/download", c.base, c.chat_id))
        .form(&[
            ("userId", c.user_id.as_str()),
            ("secureKey", c.secure_key.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(download.headers()["content-type"], "application/pdf");
    assert!(download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("receipt.pdf"));
    assert_eq!(download.bytes().await.unwrap().to_vec(), bytes);
    let by_agent = a
        .http
        .get(format!("{}/chats/{}/files/{file_id}", a.base, c.chat_id))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_agent.bytes().await.unwrap().to_vec(), bytes);

    // Deleted: gone for both, and room for another.
    let v = c.op(&format!("file/{file_id}/delete"), &[]).await;
    assert_eq!(v["statusCode"], 0);
    let v = c.op(&format!("file/{file_id}/download"), &[]).await;
    assert_eq!(error_code(&v), 101);
    let gone = a
        .get(&format!("/chats/{}/files/{file_id}", c.chat_id))
        .await;
    assert_eq!(gone.0, StatusCode::BAD_REQUEST);
    let v: Value = upload("three.png", "image/png", vec![7; 10])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["statusCode"], 0, "{v}");

    // The same through chat-ntf, as CometD clients do it, by secureKey.
    let ntf = |form: Vec<(&'static str, String)>| {
        c.http.post(s.url("/genesys/2/chat-ntf")).form(&form).send()
    };
    let v: Value = ntf(vec![
        ("operation", "fileGetsLimits".into()),
        ("secureKey", c.secure_key.clone()),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["messages"][0]["userData"]["used-upload-max-files"], "2",
        "{v}"
    );
    let v: Value = ntf(vec![
        ("operation", "fileGetLimits".into()),
        ("secureKey", "wrong".into()),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(error_code(&v), 102);
}

/// Upload bodies are bounded by the service's `upload-max-file-size` (with
/// room for the form), not by a framework default of 2 MiB, and a refusal
/// names the option that decides.
#[tokio::test]
async fn uploads_are_bounded_by_the_services_file_size() {
    use reqwest::multipart::{Form, Part};
    let s = Server::start(&[
        ("GMSHUB__CHAT__UPLOAD_MAX_FILE_SIZE", "4194304"),
        ("GMSHUB__CHAT__UPLOAD_MAX_TOTAL_SIZE", "8388608"),
    ]);
    let c = Customer::start(&s, "Big files").await;
    let upload = |size: usize| {
        let form = Form::new()
            .text("userId", c.user_id.clone())
            .text("secureKey", c.secure_key.clone())
            .text("alias", "1")
            .part(
                "file",
                Part::bytes(vec![7u8; size])
                    .file_name("scan.pdf")
                    .mime_str("application/pdf")
                    .unwrap(),
            );
        c.http
            .post(format!("{}/{}/file", c.base, c.chat_id))
            .multipart(form)
            .send()
    };
    let r = upload(3 << 20).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["statusCode"], 0, "a 3 MiB file within a 4 MiB limit: {v}");

    // Too large: 413, in Chat API v2's own shape.
    let r = upload(5 << 20).await.unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (&v["statusCode"], &v["errors"][0]["code"]),
        (&json!(2), &json!(105)),
        "{v}"
    );
    let advice = v["errors"][0]["advice"].as_str().unwrap_or_default();
    assert!(advice.contains("upload-max-file-size"), "{v}");
}
