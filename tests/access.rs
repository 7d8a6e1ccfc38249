//! Who may call what, against the real binary: GMS's Basic authentication
//! per API group (the 401 exactly as GMS sends it, overrides per section,
//! hashed passwords, Chat v2's `disable_authentication`, the fail-closed
//! case), the back office that answers anonymous callers only from its
//! networks (a server in the test's own network namespace, reached from
//! the host), and the agent login (hashed passwords, throttling, idle
//! tokens, no development account off loopback).

mod common;

use std::time::Duration;

use channels::password::Password;
use common::netns::TestNet;
use common::{free_port, with_config, Server, SHIPPED_LIMITS};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A request body: JSON, or a form (the chat and storage APIs').
#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    Form(&'static [(&'static str, &'static str)]),
}

/// A request with Basic credentials (or none); its status, headers and
/// body.
async fn ask(
    s: &Server,
    method: Method,
    path: &str,
    body: Body,
    credentials: Option<(&str, &str)>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().request(method, s.url(path));
    request = match body {
        Body::None => request,
        Body::Json(v) => request.json(&v),
        Body::Form(f) => request.form(f),
    };
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    let answer = request.send().await.expect("request");
    let (status, headers) = (answer.status(), answer.headers().clone());
    (status, headers, answer.text().await.unwrap_or_default())
}

/// Asserts GMS's 401: the challenge with the realm and an empty body.
fn challenged(
    (status, headers, body): &(StatusCode, reqwest::header::HeaderMap, String),
    realm: &str,
    what: &str,
) {
    assert_eq!(*status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_eq!(
        headers["www-authenticate"],
        format!("Basic realm=\"{realm}\"").as_str(),
        "{what}"
    );
    assert_eq!(headers["content-length"], "0", "{what}");
    assert!(body.is_empty(), "{what}: {body}");
}

#[tokio::test]
async fn every_group_asks_for_its_own_credentials() {
    let storage_hash = Password::hash("sp");
    let config = format!(
        "[server]\nusername = u\npassword = p\nrealm = Genesys Banner Login\n\
         [storage]\nusername = su\npassword = {storage_hash}\n\
         [notification]\nusername = nu\npassword = np\n\
         [service.request-chat]\nusername = rc\npassword = rcp\n\
         [chat]\ndisable_authentication = false\n\
         [chat.customer-support]\nusername = cs\npassword = csp\n\
         [admin]\nusername = au\npassword = ap\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let s = with_config(&dir, &config, &[]);
    let realm = "Genesys Banner Login";
    let publish = Body::Json(json!({"tag": "t", "message": "m"}));
    let form = Body::Form(&[("nickname", "Ann")]);
    let phone = Body::Form(&[("phone", "555")]);
    let phone_again = phone.clone();
    let unknown_chat = "/genesys/1/service/0123456789abcdef/ixn/chat";
    // Each request, the credentials of its group, and its answer with them.
    let cases = [
        (
            Method::POST,
            "/genesys/1/storage/60",
            form.clone(),
            ("su", "sp"),
            200,
        ),
        (
            Method::POST,
            "/genesys/1/notification/publish",
            publish,
            ("nu", "np"),
            200,
        ),
        (
            Method::POST,
            "/genesys/1/service/request-chat",
            phone,
            ("rc", "rcp"),
            200,
        ),
        (
            Method::POST,
            "/genesys/2/chat/customer-support",
            form,
            ("cs", "csp"),
            200,
        ),
        (
            Method::GET,
            "/genesys/1/admin/node/status",
            Body::None,
            ("au", "ap"),
            200,
        ),
        (
            Method::POST,
            "/gmshub/callback/none/next",
            Body::None,
            ("au", "ap"),
            404,
        ),
        (Method::POST, unknown_chat, phone_again, ("u", "p"), 404),
    ];
    for (method, path, body, (user, password), expected) in cases {
        let what = format!("{method} {path}");
        let none = ask(&s, method.clone(), path, body.clone(), None).await;
        challenged(&none, realm, &what);
        let wrong = ask(&s, method.clone(), path, body.clone(), Some((user, "nope"))).await;
        challenged(&wrong, realm, &what);
        if (user, password) != ("u", "p") {
            // The group's own credentials replace the server's.
            let server = ask(&s, method.clone(), path, body.clone(), Some(("u", "p"))).await;
            challenged(&server, realm, &what);
        }
        let (status, _, text) = ask(&s, method, path, body, Some((user, password))).await;
        assert_eq!(status.as_u16(), expected, "{what}: {text}");
    }
    // The load balancer's check and CometD stay open.
    let (status, _, _) = ask(&s, Method::GET, "/genesys/1/node", Body::None, None).await;
    assert_eq!(status, StatusCode::OK);
    let handshake = json!([{"channel": "/meta/handshake", "version": "1.0",
        "supportedConnectionTypes": ["long-polling"]}]);
    let (status, _, text) = ask(
        &s,
        Method::POST,
        "/genesys/cometd",
        Body::Json(handshake),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("\"successful\":true"), "{text}");
    assert!(
        !s.output().contains(&storage_hash),
        "no password in the log"
    );
}

#[tokio::test]
async fn chat_v2_stays_open_by_default_and_a_password_without_a_user_refuses_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_config(&dir, "[server]\nusername = u\npassword = p\n", &[]);
    let chat = Body::Form(&[("nickname", "Ann")]);
    let (status, _, text) = ask(
        &s,
        Method::POST,
        "/genesys/2/chat/customer-support",
        chat,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "disable_authentication defaults to true: {text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let s = with_config(&dir, "[storage]\npassword = p\n", &[]);
    for credentials in [None, Some(("", "p")), Some(("admin", "p"))] {
        let asked = ask(
            &s,
            Method::GET,
            "/genesys/1/storage/x",
            Body::None,
            credentials,
        )
        .await;
        challenged(
            &asked,
            "Genesys Application Configuration Needed",
            "fail closed",
        );
    }
    assert!(
        s.output()
            .contains("[storage] has a password but no username"),
        "{}",
        s.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_back_office_answers_anonymous_callers_only_from_its_networks() {
    let net = TestNet::create();
    // The server in the namespace sees the host's address as the client's:
    // not loopback.
    let s = Server::start_in_netns(&net.ns, &net.ns_ip, &[]);
    for (method, path) in [
        (Method::GET, "/genesys/1/admin/node/status"),
        (Method::POST, "/genesys/1/admin/node/changestatus/OFFLINE"),
        (Method::GET, "/genesys/1/admin/callback/queues"),
        (Method::POST, "/gmshub/callback/cb/next"),
        (Method::POST, "/genesys/1/notification/publish"),
    ] {
        let (status, _, body) = ask(&s, method.clone(), path, Body::None, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        let body: Value = serde_json::from_str(&body).expect("GMS's error shape");
        assert!(body["message"].as_str().unwrap().contains("admin-networks"));
    }
    let (status, _, _) = ask(&s, Method::GET, "/genesys/1/node", Body::None, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the node still answers its load balancer"
    );
    assert!(
        s.output()
            .contains("answers only to 127.0.0.0/8, ::1/128 without credentials"),
        "the start-up log says so"
    );
    // Off loopback, no development agent.
    let login = Body::Json(json!({"agent": "agent", "password": "agent"}));
    let (status, _, _) = ask(&s, Method::POST, "/gmshub/agent/login", login, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    drop(s);

    // With credentials, anyone who has them; or the listed networks.
    let admin = [
        ("GMSHUB__ADMIN__USERNAME", "au"),
        ("GMSHUB__ADMIN__PASSWORD", "ap"),
    ];
    let s = Server::start_in_netns(&net.ns, &net.ns_ip, &admin);
    let path = "/genesys/1/admin/node/status";
    let (status, _, _) = ask(&s, Method::GET, path, Body::None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, text) = ask(&s, Method::GET, path, Body::None, Some(("au", "ap"))).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "ONLINE"));
    drop(s);
    let networks = [("GMSHUB__SERVER__ADMIN_NETWORKS", net.host_ip.as_str())];
    let s = Server::start_in_netns(&net.ns, &net.ns_ip, &networks);
    let (status, _, _) = ask(&s, Method::GET, path, Body::None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_back_office_refuses_cross_site_requests() {
    // Even a site allowed to embed the widget may not drive the back office.
    let s = Server::start(&[(
        "GMSHUB__CORS__ALLOWEDORIGINPATTERNS",
        r"https://shop\.example",
    )]);
    let http = reqwest::Client::new();
    let offline = s.url("/genesys/1/admin/node/changestatus/OFFLINE");
    let status = || async {
        http.get(s.url("/genesys/1/admin/node/status"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // What another site's page can send without a preflight: its Origin,
    // Sec-Fetch-Site, a text/plain or form body.
    for (name, value) in [
        ("origin", "https://shop.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = http
            .post(&offline)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}");
        let body: Value = r.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains("other sites"));
    }
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = http
            .post(s.url("/gmshub/callback/cb/next"))
            .header("content-type", content_type)
            .body(r#"{"router":"r"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
    }
    assert_eq!(status().await, "ONLINE");
    // Its own tools: no Origin, or gmshub's own, and JSON.
    let own = format!("http://{}", s.addr);
    let r = http
        .post(&offline)
        .header("origin", own.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(status().await, "OFFLINE");
    let r = http
        .post(s.url("/gmshub/callback/cb/next"))
        .json(&json!({"router": "r"}))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_ne!(r.status(), StatusCode::FORBIDDEN);
}

async fn login(s: &Server, agent: &str, password: &str) -> (StatusCode, Value, Option<String>) {
    let answer = reqwest::Client::new()
        .post(s.url("/gmshub/agent/login"))
        .json(&json!({"agent": agent, "password": password}))
        .send()
        .await
        .expect("request");
    let status = answer.status();
    let retry = answer
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, answer.json().await.unwrap_or(Value::Null), retry)
}

async fn offers(s: &Server, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(s.url("/gmshub/agent/offers"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

/// One address's login attempts are limited (20 at once, then one every
/// 3 s), unless the site trusts it (`[dos-filter] ipWhitelist`, as for the
/// Bayeux limits): a load generator or a single sign-on gateway logs in
/// hundreds of bots. Each account's own limit holds for every address.
#[tokio::test]
async fn an_address_is_throttled_unless_the_site_trusts_it() {
    for (trusted, env) in [(false, vec![SHIPPED_LIMITS]), (true, vec![])] {
        let s = Server::start(&env);
        let mut refused = None;
        for i in 0..30 {
            let (status, _, _) = login(&s, &format!("nobody{i}"), "x").await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                refused = Some(i);
                break;
            }
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        match trusted {
            false => assert_eq!(refused, Some(20), "the 21st attempt from one address"),
            true => assert_eq!(refused, None, "a trusted address is not counted"),
        }
    }
}

#[tokio::test]
async fn agents_log_in_with_hashes_are_throttled_and_idle_tokens_expire() {
    let config = format!(
        "[agent]\nsession-idle-timeout = 2\n[agent.ada]\npassword = {}\n\
         [agent.bob]\npassword = builder\n",
        Password::hash("lovelace")
    );
    let dir = tempfile::tempdir().unwrap();
    let s = with_config(&dir, &config, &[]);
    let (status, me, _) = login(&s, "ada", "lovelace").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let (status, _, _) = login(&s, "agent", "agent").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no development account beside real ones"
    );

    // Ada has used one of her five attempts; four wrong ones, then even
    // the right password waits.
    for _ in 0..4 {
        let (status, _, _) = login(&s, "ada", "wrong").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body, retry) = login(&s, "ada", "lovelace").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=12).contains(&retry), "{retry}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("too many login attempts"));

    // Used within its idle time, a token lives on; unused, it expires.
    let (_, me, _) = login(&s, "bob", "builder").await;
    let token = me["token"].as_str().unwrap().to_owned();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(offers(&s, &token).await, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(offers(&s, &token).await, StatusCode::UNAUTHORIZED);

    // Logging out ends a token at once.
    let (_, me, _) = login(&s, "bob", "builder").await;
    let token = me["token"].as_str().unwrap();
    let out = reqwest::Client::new()
        .post(s.url("/gmshub/agent/logout"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    assert_eq!(offers(&s, token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_in_use_still_ends_at_its_lifetime() {
    let config = "[agent]\nsession-idle-timeout = 2\nsession-max-lifetime = 4\n\
                  [agent.bob]\npassword = builder\n";
    let dir = tempfile::tempdir().unwrap();
    let s = with_config(&dir, config, &[]);
    let (_, me, _) = login(&s, "bob", "builder").await;
    let token = me["token"].as_str().unwrap().to_owned();
    // Used every half second, it is renewed past its idle time...
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(offers(&s, &token).await, StatusCode::OK);
    }
    // ... but not past four seconds from the login.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(offers(&s, &token).await, StatusCode::UNAUTHORIZED);
    let (status, _, _) = login(&s, "bob", "builder").await;
    assert_eq!(status, StatusCode::OK, "a new login works");
}

#[tokio::test]
async fn cors_answers_preflights_for_listed_origins_and_refuses_others() {
    let env = [
        (
            "GMSHUB__CORS__ALLOWEDORIGINPATTERNS",
            r"https://shop\.example\.com",
        ),
        (
            "GMSHUB__CORS__ALLOWEDHEADERS",
            "origin, content-type, accept, authorization, gms_user",
        ),
        ("GMSHUB__CORS__PREFLIGHTMAXAGE", "600"),
        ("GMSHUB__CORS__ALLOWCREDENTIALS", "true"),
        ("GMSHUB__CORS__EXPOSEDHEADERS", "x-request-id, retry-after"),
    ];
    let s = Server::start(&env);
    let chat = s.url("/genesys/2/chat/customer-support");
    let http = reqwest::Client::new();
    let preflight = http
        .request(Method::OPTIONS, &chat)
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "gms_user")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "https://shop.example.com");
    assert_eq!(h["access-control-max-age"], "600");
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("gms_user"));

    let form = [("nickname", "Ann")];
    let from = |origin: Option<&'static str>| {
        let mut r = http.post(&chat).form(&form);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r
    };
    let listed = from(Some("https://shop.example.com")).send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let h = listed.headers();
    assert_eq!(h["access-control-allow-origin"], "https://shop.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(
        h["access-control-expose-headers"],
        "x-request-id, retry-after"
    );
    assert_eq!(h["vary"], "origin");
    let other = from(Some("https://evil.example.net")).send().await.unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let body: Value = other.json().await.unwrap();
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("allowedOriginPatterns"));
    // Native apps send no Origin; gmshub's own pages send their own.
    assert_eq!(from(None).send().await.unwrap().status(), StatusCode::OK);
    let own = format!("http://{}", s.addr);
    let own = http
        .post(&chat)
        .form(&form)
        .header("origin", own)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
}

/// Creates a custom-id storage area as `gms_user` `user` (if any), with
/// `forwarded` as `X-Forwarded-For`; the status.
async fn create_as(s: &Server, user: Option<&str>, forwarded: Option<&str>) -> StatusCode {
    let mut r = reqwest::Client::new()
        .post(s.url("/genesys/1/storage/custom/profile/600"))
        .form(&[("k", "v")]);
    if let Some(u) = user {
        r = r.header("gms_user", u);
    }
    if let Some(f) = forwarded {
        r = r.header("x-forwarded-for", f);
    }
    r.send().await.unwrap().status()
}

#[tokio::test]
async fn with_trusted_proxies_only_they_name_the_user_and_the_client() {
    // Drop-in default: GMS trusts gms_user from anyone.
    let s = Server::start(&[]);
    assert_eq!(create_as(&s, Some("alice"), None).await, StatusCode::OK);
    // A proxy elsewhere is trusted, not this caller: its gms_user is ignored
    // (and a custom id needs one).
    let s = Server::start(&[("GMSHUB__SERVER__TRUSTED_PROXIES", "192.0.2.10/32")]);
    assert_eq!(
        create_as(&s, Some("alice"), None).await,
        StatusCode::BAD_REQUEST
    );
    // Through a trusted proxy (here loopback), the user counts, and the
    // client is the one it forwards for: not a back-office network.
    let s = Server::start(&[("GMSHUB__SERVER__TRUSTED_PROXIES", "127.0.0.0/8")]);
    assert_eq!(create_as(&s, Some("alice"), None).await, StatusCode::OK);
    let status = |forwarded: Option<&'static str>| {
        let mut r = reqwest::Client::new().get(s.url("/genesys/1/admin/node/status"));
        if let Some(f) = forwarded {
            r = r.header("x-forwarded-for", f);
        }
        async move { r.send().await.unwrap().status() }
    };
    assert_eq!(status(None).await, StatusCode::OK);
    assert_eq!(status(Some("203.0.113.5")).await, StatusCode::FORBIDDEN);
    assert_eq!(
        status(Some("127.0.0.9")).await,
        StatusCode::OK,
        "all proxies: the peer"
    );
}

#[tokio::test]
async fn no_secret_reaches_the_log_even_at_trace_level() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let config = "[server]\nusername = u\npassword = server-pass-7f3a\n\
        [storage]\nusername = su\npassword = storage-pass-91bc\n\
        [admin]\nusername = au\npassword = admin-pass-5d2e\n\
        [agent.ada]\npassword = agent-pass-c8e1\n\
        [push]\npushEnabled = comet,wns\nwns.sid = sid\nwns.clientSecret = wns-secret-44af\n\
        [cassandra-authentication-security]\nusername = c\npassword = cql-pass-0b9d\n";
    let s = with_config(&dir, config, &[("RUST_LOG", "trace")]);
    // Each secret is used: wrong and right Basic credentials, an agent login.
    for (user, password) in [
        ("su", "storage-pass-91bc"),
        ("su", "nope-pass-1234"),
        ("au", "admin-pass-5d2e"),
    ] {
        let path = if user == "au" {
            "/genesys/1/admin/node/status"
        } else {
            "/genesys/1/storage/60"
        };
        let method = if user == "au" {
            Method::GET
        } else {
            Method::POST
        };
        ask(
            &s,
            method,
            path,
            Body::Form(&[("k", "v")]),
            Some((user, password)),
        )
        .await;
    }
    let (status, _, _) = login(&s, "ada", "agent-pass-c8e1").await;
    assert_eq!(status, StatusCode::OK);
    let log = s.output();
    assert!(log.contains("TRACE") || log.contains("trace"), "traced");
    for secret in [
        "server-pass-7f3a",
        "storage-pass-91bc",
        "nope-pass-1234",
        "admin-pass-5d2e",
        "agent-pass-c8e1",
        "wns-secret-44af",
        "cql-pass-0b9d",
    ] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    for header in ["su:storage-pass-91bc", "au:admin-pass-5d2e"] {
        let encoded = base64::engine::general_purpose::STANDARD.encode(header);
        assert!(
            !log.contains(&encoded),
            "an Authorization header in the log"
        );
    }
}

#[tokio::test]
async fn several_listeners_serve_one_hub_and_port_restrictions_split_them() {
    let (public, internal) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = 127.0.0.1:{public}, 127.0.0.1:{internal}\n\
         [port_restrictions]\n/genesys/1/admin/* = {internal}\n/genesys/1/node = {internal}\n"
    );
    let path = dir.path().join("gmshub.ini");
    std::fs::write(&path, &config).unwrap();
    let s = Server::start_as_configured(&[("GMSHUB_CONFIG", path.to_str().unwrap())]);
    assert_eq!(s.addr.port(), public);
    let get = |port: u16, path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        async move { reqwest::get(url).await.unwrap().status() }
    };
    assert_eq!(get(public, "/genesys/1/admin/node/status").await, 403);
    assert_eq!(get(public, "/genesys/1/node").await, 403);
    assert_eq!(get(internal, "/genesys/1/admin/node/status").await, 200);
    assert_eq!(get(internal, "/genesys/1/node").await, 200);
    // One hub behind both: a chat made on one port goes on on the other.
    let mut jane = common::chat::Customer::start(&s, "Jane").await;
    jane.base = format!("http://127.0.0.1:{internal}{}", common::chat::SVC);
    let sent = jane.op("send", &[("message", "hello")]).await;
    assert_eq!(sent["statusCode"], 0, "{sent}");

    // A listen address that is not one stops the start, naming it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gmshub"))
        .env("GMSHUB__SERVER__LISTEN", "127.0.0.1:0, internal:8081")
        .env("GMSHUB__SQLITE__PATH", dir.path().join("other.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("[server] listen") && said.contains("internal:8081"),
        "{said}"
    );
}
