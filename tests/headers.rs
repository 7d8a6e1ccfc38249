//! The headers every answer carries, against the real binary: `nosniff`
//! everywhere; on the pages a Content-Security-Policy without
//! `unsafe-inline` (the pages carry no inline script or style), framing and
//! referrer rules; the `[header.<name>]` table by path; and the switch that
//! turns the pages off.

mod common;

use common::{with_config, Server};
use reqwest::StatusCode;

async fn get(s: &Server, path: &str) -> reqwest::Response {
    reqwest::get(s.url(path)).await.expect("request")
}

#[tokio::test]
async fn every_answer_says_nosniff_and_pages_carry_a_strict_policy() {
    let s = Server::start(&[]);
    for path in [
        "/genesys/1/node",
        "/nope",
        "/",
        "/chat",
        "/assets/chat.js",
        "/js/cometd/cometd.js",
    ] {
        let r = get(&s, path).await;
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
    }
    for page in ["/", "/chat", "/agent", "/callback"] {
        let r = get(&s, page).await;
        let h = r.headers().clone();
        let csp = h["content-security-policy"].to_str().unwrap().to_owned();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{page}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
        assert_eq!(h["x-frame-options"], "SAMEORIGIN");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<style"), "{page}: inline style");
        for script in html.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap();
            assert!(tag.contains("src="), "{page}: an inline script");
        }
        // Every script, style and icon the page names is there.
        let named: Vec<&str> = html
            .split("\"/assets/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .collect();
        assert!(named.len() >= 3, "{page}: {named:?}");
        for asset in named {
            let r = get(&s, &format!("/assets/{asset}")).await;
            assert_eq!(r.status(), StatusCode::OK, "{page}: {asset}");
            let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(
                kind.starts_with("text/") || kind.starts_with("image/svg+xml"),
                "{asset}: {kind}"
            );
        }
    }
    assert_eq!(get(&s, "/favicon.ico").await.status(), StatusCode::OK);
    // The widget is for other sites: cacheable and loadable from any origin.
    for (path, kind) in [
        ("/widget/v1/gmshub-chat.js", "text/javascript"),
        ("/widget/v1/gmshub-chat.css", "text/css"),
    ] {
        let r = get(&s, path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(h["cross-origin-resource-policy"], "cross-origin", "{path}");
        assert_eq!(h["cache-control"], "public, max-age=3600", "{path}");
    }
    let widget = get(&s, "/widget/v1/gmshub-chat.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        widget.starts_with("/*! gmshub chat widget v1"),
        "the bundle's banner"
    );
    assert!(
        widget.contains("/meta/handshake"),
        "the CometD client is inside"
    );
    assert_eq!(
        get(&s, "/assets/../Cargo.toml").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn framing_the_header_table_and_the_pages_switch_are_configurable() {
    let config = "[pages]\nframe-ancestors = 'self' https://shop.example.com\n\
        [header.1-frame]\npattern = /genesys/1/storage/*\nname = X-Frame-Options\nvalue = DENY\n\
        terminating = true\n\
        [header.2-after]\npattern = /genesys/1/storage/*\nname = X-Never\nvalue = shown\n\
        [header.3-node]\npattern = /genesys/1/node\nname = X-Probe\nvalue = yes\n";
    let dir = tempfile::tempdir().unwrap();
    let s = with_config(&dir, config, &[]);
    let page = get(&s, "/chat").await;
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'self' https://shop.example.com"),
        "{csp}"
    );
    assert!(
        page.headers().get("x-frame-options").is_none(),
        "CSP alone names origins"
    );
    let stored = get(&s, "/genesys/1/storage/0123456789").await;
    assert_eq!(stored.headers()["x-frame-options"], "DENY");
    assert!(
        stored.headers().get("x-never").is_none(),
        "after a terminating rule"
    );
    assert_eq!(get(&s, "/genesys/1/node").await.headers()["x-probe"], "yes");
    assert!(get(&s, "/genesys/1/nodes")
        .await
        .headers()
        .get("x-probe")
        .is_none());

    // Without the sample pages the widget stays; [pages] widget removes it.
    let s = Server::start(&[("GMSHUB__LAB__ENABLE_SAMPLE", "false")]);
    for page in ["/", "/chat", "/agent", "/callback", "/assets/chat.js"] {
        assert_eq!(
            get(&s, page).await.status(),
            StatusCode::NOT_FOUND,
            "{page}"
        );
    }
    assert_eq!(get(&s, "/genesys/1/node").await.status(), StatusCode::OK);
    let widget = "/widget/v1/gmshub-chat.js";
    assert_eq!(get(&s, widget).await.status(), StatusCode::OK);
    let s = Server::start(&[("GMSHUB__PAGES__WIDGET", "false")]);
    assert_eq!(get(&s, widget).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(get(&s, "/chat").await.status(), StatusCode::OK);
}
