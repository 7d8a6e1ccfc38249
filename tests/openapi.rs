//! The OpenAPI description (`docs/openapi.json`) against the code: it is
//! served as committed, it is valid JSON of OpenAPI 3.1, and it describes
//! every REST route the handlers register, with their path templates, and
//! nothing else. Whether the answers match it is schemathesis's part
//! (`scripts/schemathesis`, run by `scripts/test`).

mod common;

use std::collections::BTreeSet;

use common::Server;
use serde_json::Value;

/// Every route template `src/api/*.rs` registers (`.route("...", ...)`).
fn routes() -> BTreeSet<String> {
    let re = regex::Regex::new(r#"\.route\(\s*"([^"]+)""#).unwrap();
    let constants = [
        ("METRICS", "/metrics"),
        ("PATH", "/gmshub/openapi.json"),
        ("CALLBACK_QUERY", "/genesys/1/service/callback"),
    ];
    let re_const = regex::Regex::new(r"\.route\(\s*([A-Z_]+)\s*,").unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        out.extend(re.captures_iter(&text).map(|c| c[1].to_owned()));
        for c in re_const.captures_iter(&text) {
            let (_, value) = constants
                .iter()
                .find(|(name, _)| *name == &c[1])
                .unwrap_or_else(|| panic!("route constant {} not known here", &c[1]));
            out.insert(value.to_string());
        }
    }
    out
}

fn described() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap();
    serde_json::from_str(&text).expect("docs/openapi.json is JSON")
}

#[test]
fn every_route_is_described_and_nothing_else() {
    let doc = described();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routes: BTreeSet<String> = routes()
        .into_iter()
        .filter(|r| r != "/gmshub/openapi.json")
        .collect();
    let unknown: Vec<_> = paths.difference(&routes).collect();
    assert!(unknown.is_empty(), "described but not routed: {unknown:?}");
    let missing: Vec<_> = routes.difference(&paths).collect();
    assert!(missing.is_empty(), "routed but not described: {missing:?}");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["operationId"].is_string(),
                "{method} {path}: operationId"
            );
            assert!(op["responses"].is_object(), "{method} {path}: responses");
        }
    }
}

#[tokio::test]
async fn the_description_is_served_as_committed() {
    let s = Server::start(&[]);
    let r = reqwest::get(s.url("/gmshub/openapi.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let served: Value = r.json().await.unwrap();
    assert_eq!(served, described());
}
