//! SIGHUP against the real binary: the file is read again, what GMS
//! changes at run time (credentials, CORS, ...) applies to the next
//! requests, the rest is logged as waiting for a restart, a file with an
//! error changes nothing, and the process lives on.

mod common;

use std::time::Duration;

use common::Server;

async fn logged(s: &Server, what: &str, times: usize) -> String {
    for _ in 0..100 {
        let out = s.output();
        if out.matches(what).count() >= times {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what:?} not logged {times} time(s):\n{}", s.output());
}

async fn status(s: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    let mut r = reqwest::Client::new().get(s.url(path));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    let allowed = r
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), allowed)
}

#[tokio::test]
async fn sighup_applies_credentials_and_cors_and_names_what_waits_for_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::with_config(&dir, "[server]\nbacklog = 4096\n", &[]);
    let path = dir.path().join("gmshub.ini");
    let shop = [("origin", "https://shop.example")];
    let admin = "/genesys/1/admin/node/status";
    assert_eq!(
        status(&s, admin, &[]).await.0,
        200,
        "loopback, no credentials"
    );
    assert_eq!(status(&s, "/genesys/1/node", &shop).await, (403, None));

    std::fs::write(
        &path,
        "[server]\nbacklog = 100\n[admin]\nusername = ops\npassword = s3cret\n\
         [cors]\nallowedOriginPatterns = https://shop\\.example\n",
    )
    .unwrap();
    s.signal("HUP");
    let out = logged(&s, "configuration reloaded from", 1).await;
    assert!(
        out.contains(
            "applied [admin] password, [admin] username, [cors] allowedOriginPatterns; \
             at the next start: [server] backlog"
        ),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "a value was logged");
    assert_eq!(status(&s, admin, &[]).await.0, 401);
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "ops:s3cret")
    );
    assert_eq!(status(&s, admin, &[("authorization", &basic)]).await.0, 200);
    assert_eq!(
        status(&s, "/genesys/1/node", &shop).await,
        (200, Some("https://shop.example".into()))
    );

    // A file with an error is not applied: CORS stays as it was.
    std::fs::write(&path, "[store]\ntype = reddis\n").unwrap();
    s.signal("HUP");
    let out = logged(&s, "configuration not reloaded", 1).await;
    assert!(out.contains("[store] type = reddis"), "{out}");
    assert_eq!(
        status(&s, "/genesys/1/node", &shop).await,
        (200, Some("https://shop.example".into()))
    );
}
