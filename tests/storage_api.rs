//! The GMS Storage API end to end, against the real binary: every
//! operation, form and multipart bodies, binary files, TTL expiry and the
//! 30 s fallback, custom ids and their owner, errors in GMS's shape, and data
//! kept across a restart.

mod common;

use std::time::Duration;

use common::Server;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn create_form(s: &Server, ttl: &str, pairs: &[(&str, &str)]) -> String {
    let r = client()
        .post(s.url(&format!("/genesys/1/storage/{ttl}")))
        .form(pairs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["id"].as_str().expect("an id").to_owned()
}

async fn read(s: &Server, path: &str) -> (StatusCode, Value) {
    let r = client().get(s.url(path)).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn assert_gms_error(body: &Value, exception_part: &str) {
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    assert!(
        body["exception"]
            .as_str()
            .is_some_and(|e| e.contains(exception_part)),
        "exception {exception_part} in {body}"
    );
}

#[tokio::test]
async fn create_read_update_delete() {
    let s = Server::start(&[]);
    let id = create_form(
        &s,
        "3600",
        &[("GMS_KEY", "GMS_VALUE"), ("Key2", "é 中"), ("Empty", "")],
    )
    .await;
    let (status, body) = read(&s, &format!("/genesys/1/storage/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({"GMS_KEY": "GMS_VALUE", "Key2": "é 中"}),
        "empty values are not stored"
    );

    let r = client()
        .get(s.url(&format!("/genesys/1/storage/{id}/Key2")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "é 中");

    // Update: new keys join, given keys are replaced, others stay.
    let r = client()
        .post(s.url(&format!("/genesys/1/storage/{id}/600")))
        .form(&[("Key2", "changed"), ("Key3", "new")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, body) = read(&s, &format!("/genesys/1/storage/{id}")).await;
    assert_eq!(
        body,
        serde_json::json!({"GMS_KEY": "GMS_VALUE", "Key2": "changed", "Key3": "new"})
    );

    let r = client()
        .delete(s.url(&format!("/genesys/1/storage/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, body) = read(&s, &format!("/genesys/1/storage/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_gms_error(&body, "NotFound");
}

#[tokio::test]
async fn multipart_files_round_trip_as_stored() {
    let s = Server::start(&[]);
    let binary: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let form = Form::new().text("Key1", "Value1").part(
        "FileKey",
        Part::bytes(binary.clone())
            .file_name("photo.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let r = client()
        .post(s.url("/genesys/1/storage/3600"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = client()
        .get(s.url(&format!("/genesys/1/storage/{id}/FileKey")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("photo.png"));
    assert_eq!(r.bytes().await.unwrap().to_vec(), binary, "bytes as stored");

    // Read whole: text as text, the file as the URL it is read from.
    let (_, body) = read(&s, &format!("/genesys/1/storage/{id}")).await;
    assert_eq!(body["Key1"], "Value1");
    let url = body["FileKey"].as_str().unwrap();
    assert_eq!(url, s.url(&format!("/genesys/1/storage/{id}/FileKey")));
}

#[tokio::test]
async fn a_ttl_over_max_ttl_is_refused() {
    let s = Server::start(&[("GMSHUB__STORAGE__MAX_TTL", "3600")]);
    let post = |ttl: &str| {
        client()
            .post(s.url(&format!("/genesys/1/storage/{ttl}")))
            .form(&[("k", "v")])
            .send()
    };
    let r = post("3600").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for ttl in ["3601", "630720000", "999999999999"] {
        let r = post(ttl).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{ttl}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["message"].as_str().unwrap().contains("[storage] max-ttl"),
            "{v}"
        );
    }
    // GMS's rule stands for what is not a positive number (and, as in
    // GMS, for digits past a 64-bit number): 30 s.
    for ttl in ["abc", "-5", "99999999999999999999"] {
        assert_eq!(post(ttl).await.unwrap().status(), StatusCode::OK, "{ttl}");
    }
}

#[tokio::test]
async fn an_uploaded_page_is_an_attachment_in_a_sandbox() {
    let s = Server::start(&[]);
    let page = "<html><script>document.title='owned'</script></html>";
    let upload = |name: &'static str, mime: &'static str| {
        Form::new().part(
            "File",
            Part::bytes(page.as_bytes().to_vec())
                .file_name(name)
                .mime_str(mime)
                .unwrap(),
        )
    };
    for (name, mime, disposition) in [
        ("x.html", "text/html", "attachment; filename=\"x.html\""),
        ("x.svg", "image/svg+xml", "attachment; filename=\"x.svg\""),
        ("x.png", "image/png", "inline; filename=\"x.png\""),
    ] {
        let r = client()
            .post(s.url("/genesys/1/storage/3600"))
            .multipart(upload(name, mime))
            .send()
            .await
            .unwrap();
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = client()
            .get(s.url(&format!("/genesys/1/storage/{id}/File")))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        assert_eq!(h["content-disposition"], disposition, "{mime}");
        assert_eq!(h["content-security-policy"], "sandbox", "{mime}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{mime}");
    }
}

#[tokio::test]
async fn data_expires_and_a_bad_ttl_means_thirty_seconds() {
    let s = Server::start(&[]);
    let short = create_form(&s, "1", &[("k", "v")]).await;
    let fallback = create_form(&s, "not-a-number", &[("k", "v")]).await;
    let zero = create_form(&s, "0", &[("k", "v")]).await;
    assert_eq!(
        read(&s, &format!("/genesys/1/storage/{short}")).await.0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        read(&s, &format!("/genesys/1/storage/{short}")).await.0,
        StatusCode::NOT_FOUND,
        "expired"
    );
    assert_eq!(
        read(&s, &format!("/genesys/1/storage/{short}/k")).await.0,
        StatusCode::NOT_FOUND
    );
    // The 30 s fallback: still there after the 1 s one went.
    assert_eq!(
        read(&s, &format!("/genesys/1/storage/{fallback}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        read(&s, &format!("/genesys/1/storage/{zero}")).await.0,
        StatusCode::OK
    );
    // Re-TTL: an update gives a short-lived area a new lease.
    let renewed = create_form(&s, "1", &[("k", "v")]).await;
    let r = client()
        .post(s.url(&format!("/genesys/1/storage/{renewed}/60")))
        .form(&[("k2", "v2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        read(&s, &format!("/genesys/1/storage/{renewed}")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn custom_ids_belong_to_their_gms_user() {
    let s = Server::start(&[]);
    let path = "/genesys/1/storage/custom/my-profile/600";
    let r = client()
        .post(s.url(path))
        .form(&[("k", "v")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "gms_user is required");
    assert_gms_error(&r.json().await.unwrap(), "Storage");

    let r = client()
        .post(s.url(path))
        .header("gms_user", "alice")
        .form(&[("k", "v")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], "my-profile");

    let get = |user: Option<&'static str>| {
        let mut req = client().get(s.url("/genesys/1/storage/my-profile"));
        if let Some(u) = user {
            req = req.header("gms_user", u);
        }
        req.send()
    };
    let r = get(Some("alice")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"k": "v"})
    );
    assert_eq!(
        get(Some("bob")).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "another user"
    );
    assert_eq!(
        get(None).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "no user"
    );

    let r = client()
        .post(s.url(path))
        .header("gms_user", "bob")
        .form(&[("k", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "taken by alice");
    let r = client()
        .post(s.url(path))
        .header("gms_user", "alice")
        .form(&[("k", "w")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the owner replaces it");
    let r = client()
        .delete(s.url("/genesys/1/storage/my-profile"))
        .header("gms_user", "bob")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "bob cannot delete it");
    assert_eq!(
        get(Some("alice"))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["k"],
        "w"
    );
}

#[tokio::test]
async fn bad_requests_get_gms_errors() {
    let s = Server::start(&[("GMSHUB__SERVER__MAX_FILE_UPLOAD", "10000")]);
    // No or a wrong content type: 415.
    for ct in [None, Some("application/json"), Some("text/plain")] {
        let mut req = client()
            .post(s.url("/genesys/1/storage/60"))
            .body("{\"k\":\"v\"}");
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_gms_error(&r.json().await.unwrap(), "UnsupportedMediaType");
    }
    // Over [server] max-file-upload: 413, in both encodings.
    let big = "x".repeat(20_000);
    let r = client()
        .post(s.url("/genesys/1/storage/60"))
        .form(&[("k", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_gms_error(&r.json().await.unwrap(), "BadRequest");
    let form = Form::new().part("f", Part::bytes(vec![1u8; 20_000]).file_name("f.bin"));
    let r = client()
        .post(s.url("/genesys/1/storage/60"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown ids and keys: 404.
    for path in ["/genesys/1/storage/nope", "/genesys/1/storage/nope/key"] {
        let (status, body) = read(&s, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_gms_error(&body, "NotFound");
    }
    let id = create_form(&s, "60", &[("k", "v")]).await;
    let (status, body) = read(&s, &format!("/genesys/1/storage/{id}/missing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_gms_error(&body, "NotFound");
    let r = client()
        .post(s.url("/genesys/1/storage/nope/60"))
        .form(&[("k", "v")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "update of an unknown id");
    let r = client()
        .delete(s.url("/genesys/1/storage/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The storage of a service instance that does not exist (or expired).
    let (status, body) = read(&s, "/genesys/1/service/nope/storage").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_gms_error(&body, "NotFound");
    let r = client()
        .post(s.url("/genesys/1/service/nope/storage"))
        .form(&[("k", "v")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn file_control_refuses_other_types() {
    let s = Server::start(&[
        ("GMSHUB__STORAGE__ALLOW_FILE_CONTROL", "true"),
        (
            "GMSHUB__STORAGE__ALLOWED_MIME_TYPES",
            "image/png, text/plain",
        ),
    ]);
    let ok = Form::new().part(
        "f",
        Part::bytes(vec![1, 2])
            .file_name("a.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let r = client()
        .post(s.url("/genesys/1/storage/60"))
        .multipart(ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let bad = Form::new().part(
        "f",
        Part::bytes(vec![1, 2])
            .file_name("a.exe")
            .mime_str("application/x-msdownload")
            .unwrap(),
    );
    let r = client()
        .post(s.url("/genesys/1/storage/60"))
        .multipart(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_gms_error(&r.json().await.unwrap(), "Storage");
}

#[tokio::test]
async fn a_restarted_node_keeps_its_data() {
    let data = tempfile::tempdir().unwrap();
    let mut s = Server::start_with_data(data.path(), &[]);
    let id = create_form(&s, "600", &[("k", "kept")]).await;
    assert!(s
        .terminate(Duration::from_secs(20))
        .is_some_and(|st| st.success()));
    let s = Server::start_with_data(data.path(), &[]);
    let (status, body) = read(&s, &format!("/genesys/1/storage/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["k"], "kept");
}

#[tokio::test]
async fn node_api_reports_status() {
    let s = Server::start(&[]);
    let r = client()
        .get(s.url("/genesys/1/admin/node/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "ONLINE");
    let (status, node) = read(&s, "/genesys/1/node").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(node["store"], "sqlite");
    assert_eq!(node["cluster"], false);
    assert_eq!(node["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(node["nodes"][0]["id"], node["id"]);
    assert_eq!(node["nodes"][0]["address"], s.addr.to_string());

    let r = client()
        .post(s.url("/genesys/1/admin/node/changestatus/OFFLINE"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        client()
            .get(s.url("/genesys/1/admin/node/status"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "OFFLINE"
    );
    assert_eq!(
        read(&s, "/genesys/1/node").await.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "load balancers move away"
    );
    let r = client()
        .post(s.url("/genesys/1/admin/node/changestatus/SIDEWAYS"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    client()
        .post(s.url("/genesys/1/admin/node/changestatus/ONLINE"))
        .send()
        .await
        .unwrap();
    assert_eq!(read(&s, "/genesys/1/node").await.0, StatusCode::OK);
}

#[tokio::test]
async fn sqlite_refuses_to_cluster() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gmshub"))
        .args(["--listen", "127.0.0.1:0"])
        .env("GMSHUB__SQLITE__PATH", data.path().join("x.db"))
        .env("GMSHUB__CLUSTER__ENABLED", "true")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sqlite store serves a single node"), "{err}");
}
