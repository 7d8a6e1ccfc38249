//! The binary as an operator meets it: `--help`, a configuration file with
//! GMS section and option names, environment overrides, a clear failure on
//! a bad start, the demo page, and SIGINT.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Browser, Server};
use serde_json::json;

fn gmshub() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gmshub"))
}

#[test]
fn help_names_the_config_file_and_environment_overrides() {
    let out = gmshub().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--config"), "{text}");
    assert!(text.contains("--listen"), "{text}");
    assert!(text.contains("GMSHUB__"), "{text}");
}

#[test]
fn a_missing_config_file_stops_the_start_with_a_clear_message() {
    let out = gmshub()
        .args([
            "--config",
            "/nonexistent/gmshub.ini",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/gmshub.ini"), "{err}");
}

#[tokio::test]
async fn config_file_options_apply_and_the_environment_wins() {
    let dir = std::env::temp_dir().join(format!("gmshub-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gmshub.ini");
    std::fs::write(
        &path,
        "; GMS-style options\n[cometd]\ntimeout = 1234\nmaxInterval = 4321\ninterval = not-a-number\n",
    )
    .unwrap();
    let server = Server::start(&[
        ("GMSHUB_CONFIG", path.to_str().unwrap()),
        ("GMSHUB__COMETD__MAXINTERVAL", "5555"),
    ]);
    let browser = Browser::new(&server);
    let r = browser
        .send(json!([{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}]))
        .await;
    // interval could not be read: GMS falls back to the default (0).
    assert_eq!(
        r[0]["advice"],
        json!({"reconnect": "retry", "interval": 0, "timeout": 1234, "maxInterval": 5555})
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_demo_page_and_its_cometd_client_are_served() {
    let server = Server::start(&[]);
    let browser = Browser::new(&server);
    let page = browser.get("/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("/assets/index.js"),
        "page loads its script"
    );
    let script = browser.get("/assets/index.js").await;
    assert!(
        script.text.contains("/js/cometd/cometd.js"),
        "which loads the CometD client"
    );
    let js = browser.get("/js/cometd/cometd.js").await;
    assert_eq!(js.status, 200);
    assert!(js.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.text.contains("./Client.js"), "the package entry point");
    let client = browser.get("/js/cometd/Client.js").await;
    assert!(
        client.text.contains("export class CometD"),
        "the CometD class"
    );
    assert_eq!(browser.get("/js/cometd/nope.js").await.status, 404);
}

#[test]
fn sigint_stops_the_server_cleanly() {
    let mut server = Server::start(&[]);
    server.signal("INT");
    let status = server
        .wait(Duration::from_secs(10))
        .expect("exited in time");
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_cassandra_schema_is_printed_from_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gmshub.ini");
    std::fs::write(
        &config,
        "[cassandra]\nkeyspace-prefix = gsg_site1\nstrategy-option = DC1:2;DC2:2\n",
    )
    .unwrap();
    let out = gmshub()
        .args(["schema", "cassandra", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cql = String::from_utf8_lossy(&out.stdout);
    assert!(
        cql.contains("CREATE KEYSPACE IF NOT EXISTS gsg_site1 WITH replication = {'class': 'NetworkTopologyStrategy', 'DC1': 2, 'DC2': 2}"),
        "{cql}"
    );
    assert!(
        cql.contains("CREATE TABLE IF NOT EXISTS gsg_site1.gmshub_records"),
        "{cql}"
    );
    for table in ["gmshub_index", "gmshub_ordered", "gmshub_logs"] {
        assert!(
            cql.contains(&format!("CREATE TABLE IF NOT EXISTS gsg_site1.{table}")),
            "{cql}"
        );
    }
    assert_eq!(cql.matches(';').count(), 5);
}

#[test]
fn an_unreachable_store_stops_the_start_with_a_clear_message() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (store, option, value) in [
        (
            "redis",
            "GMSHUB__REDIS__URL",
            format!("redis://127.0.0.1:{closed}/"),
        ),
        (
            "cassandra",
            "GMSHUB__CASSANDRA__NODES",
            format!("127.0.0.1:{closed}"),
        ),
    ] {
        let out = gmshub()
            .args(["--listen", "127.0.0.1:0"])
            .env("GMSHUB__STORE__TYPE", store)
            .env(option, &value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{store}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{store} store unavailable: cannot connect")),
            "{store}: {err}"
        );
    }
}

#[test]
fn options_nothing_reads_are_reported_with_the_nearest_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[chat]\n_client_timout = 60\n[cometd]\nmaxIntervall = 5000\n[chta]\nx = 1\n";
    let server = common::with_config(&dir, config, &[]);
    let said = server.output();
    for line in [
        "[chat] _client_timout: not an option gmshub reads here (ignored); did you mean _client_timeout?",
        "[cometd] maxIntervall: not an option gmshub reads here (ignored); did you mean maxInterval?",
        "[chta]: gmshub reads no option of this section (ignored); did you mean [chat]?",
    ] {
        assert!(said.contains(line), "{line} not in:\n{said}");
    }
}

#[test]
fn an_unknown_store_type_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gmshub.ini");
    std::fs::write(&config, "[store]\ntype = reddis\n").unwrap();
    let out = gmshub()
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("GMSHUB__SQLITE__PATH", dir.path().join("gmshub.db"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "it ran on another store");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!(
            "[store] type = reddis ({} line 2): not one of sqlite, redis, cassandra, scylla, scylladb",
            config.display()
        )),
        "{said}"
    );
}

#[test]
fn check_config_says_what_is_wrong_and_fails_only_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let run = |path: &std::path::Path| {
        let out = gmshub().arg("check-config").arg(path).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // Warnings only: exit 0, each said.
    let warned = write(
        "warned.ini",
        "[chat]\n_client_timout = 5\n[chta]\nx = 1\n[sml]\nsuspending-wait-timeout = 1000\n\
         [push]\nworkers = many\n",
    );
    let (code, said) = run(&warned);
    assert_eq!(code, Some(0), "{said}");
    let shown = warned.display();
    for line in [
        format!(
            "warning: [sml] suspending-wait-timeout = 1000 ({shown} line 6): out of range (5 to 600); \
             using the default 10"
        ),
        format!(
            "warning: [push] workers = many ({shown} line 8): not a whole number, 0 or more; \
             using the default 32"
        ),
        "warning: [chat] _client_timout: not an option gmshub reads here (ignored); did you mean \
         _client_timeout?"
            .to_owned(),
        "warning: [chta]: gmshub reads no option of this section (ignored); did you mean [chat]?"
            .to_owned(),
        format!("{shown}: no errors"),
    ] {
        assert!(said.contains(&line), "{line}\nnot in\n{said}");
    }
    // An error: exit 1.
    let wrong = write(
        "wrong.ini",
        "[store]\ntype = reddis\n[log]\nverbose = loud\n",
    );
    let (code, said) = run(&wrong);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("error: [store] type = reddis"), "{said}");
    assert!(
        said.contains(&format!(
            "error: [log] verbose = loud ({} line 4): not one of none, standard, interaction, trace, debug, all",
            wrong.display()
        )),
        "{said}"
    );
    // A file that is not there: exit 1.
    assert_eq!(run(&dir.path().join("absent.ini")).0, Some(1));
}

#[tokio::test]
async fn the_printed_defaults_start_a_hub_with_nothing_to_say() {
    let out = gmshub().args(["config", "defaults"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("[cometd]\n") && text.contains("maxInterval = 10000\n"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("defaults.ini");
    std::fs::write(&path, &text).unwrap();
    let check = gmshub().arg("check-config").arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && !said.contains("warning"),
        "{said}"
    );
    // Started from it, the hub serves, and warns of no more than with no
    // file at all.
    let warnings = |s: &Server| -> Vec<String> {
        s.output()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned())
            .collect()
    };
    let s = common::with_config(&dir, &text, &[]);
    let b = Browser::new(&s);
    assert!(b.session().await.len() > 10);
    let bare = Server::start(&[]);
    assert_eq!(warnings(&s), warnings(&bare));
}
