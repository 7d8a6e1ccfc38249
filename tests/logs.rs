//! The log as an operator configures it, from the real binary: the access
//! log's one line per request (route templates, never a path that holds an
//! id), request parameters through GMS's `[log-filter-data]` and its `XXX` /
//! `MMM` rules, JSON lines, and files in the directory `[log] all` names.
//! (Each filter's exact output, and the guide's worked example, are unit
//! tests of `config::log`.)

mod common;

use std::time::Duration;

use common::chat::Customer;
use common::{free_port, Server};

/// The test servers log at `RUST_LOG=info`, which wins over `[log]`.
const NO_RUST_LOG: (&str, &str) = ("RUST_LOG", "");

async fn until_logged(s: &Server, what: &str) -> String {
    for _ in 0..100 {
        let out = s.output();
        if out.contains(what) {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what:?} never logged:\n{}", s.output());
}

#[tokio::test]
async fn the_access_log_names_routes_and_never_ids() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::with_config(&dir, "[log]\naccess-log = true\n", &[]);
    let customer = Customer::start(&s, "Ann").await;
    customer.op("send", &[("message", "hello")]).await;
    let out = until_logged(&s, "/genesys/2/chat/{service}/{chat_id}/{operation}").await;
    let line = out
        .lines()
        .find(|l| l.contains("gmshub::access") && l.contains("{chat_id}/{operation}"))
        .unwrap();
    for field in [
        "client=127.0.0.1",
        "method=\"POST\"",
        "status=200",
        "duration_ms=",
        "bytes=",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    for secret in [&customer.chat_id, &customer.secure_key, &customer.user_id] {
        assert!(!out.contains(secret.as_str()), "{secret} logged:\n{out}");
    }
}

#[tokio::test]
async fn request_parameters_are_logged_through_the_filters() {
    let dir = tempfile::tempdir().unwrap();
    let config = "\
[log]
verbose = debug
request-parameters = true
[log-filter-data]
nickname = hide-first,2
subject = tag(!!!,!!!)
emailAddress = skip
userData[account] = unhide-last,2
";
    let s = common::with_config(&dir, config, &[NO_RUST_LOG]);
    common::chat::request_chat(
        &s,
        &[
            ("nickname", "Annabel"),
            ("subject", "billing"),
            ("emailAddress", "ann@example.com"),
            ("userData[account]", "12345678"),
            ("XXX_card", "4111111111111111"),
            ("MMM_pin", "0000"),
        ],
    )
    .await;
    let out = until_logged(&s, "Params: KVList:").await;
    for shown in [
        "(POST) Client IP Address: 127.0.0.1, URI:/genesys/2/chat/{service}",
        "'nickname' [str] = \"**nabel\"",
        "'subject' [str] = \"!!!billing!!!\"",
        "'userData[account]' [str] = \"******78\"",
        "'MMM_pin' [str] = \"MMM\"",
    ] {
        assert!(out.contains(shown), "{shown} not in\n{out}");
    }
    for hidden in [
        "ann@example.com",
        "emailAddress",
        "4111111111111111",
        "XXX_card",
        "Annabel",
    ] {
        assert!(!out.contains(hidden), "{hidden} logged:\n{out}");
    }
}

#[tokio::test]
async fn without_the_switch_no_parameter_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::with_config(&dir, "[log]\nverbose = debug\n", &[NO_RUST_LOG]);
    common::chat::request_chat(&s, &[("nickname", "Annabel"), ("subject", "billing")]).await;
    let out = s.output();
    assert!(!out.contains("Annabel") && !out.contains("KVList"), "{out}");
}

#[tokio::test]
async fn json_lines_and_rotated_files_where_log_all_says() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let config = dir.path().join("gmshub.ini");
    std::fs::write(
        &config,
        format!(
            "[log]\nall = {}/hub.log\nformat = json\nsegment = hour\nexpire = 2\naccess-log = true\n",
            logs.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gmshub"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("GMSHUB_CONFIG", &config)
        .env("GMSHUB__SQLITE__PATH", data.join("gmshub.db"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/genesys/1/node");
    let mut up = false;
    for _ in 0..100 {
        if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "gmshub did not answer");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    // Nothing went to standard output.
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(stdout.is_empty(), "{stdout}");
    let files: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    // hub.log.YYYY-MM-DD-HH: the hour's file.
    assert!(
        name.starts_with("hub.log.") && name.len() == "hub.log.2026-12-03-13".len(),
        "{name}"
    );
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(lines.iter().any(|l| l["fields"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("listening on")));
    assert!(lines
        .iter()
        .any(|l| l["target"] == "gmshub::access" && l["fields"]["route"] == "/genesys/1/node"));
}
