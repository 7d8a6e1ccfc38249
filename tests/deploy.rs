//! The deploy files (`Dockerfile`, `deploy/`) work as written: the systemd
//! unit verifies and is hardened, the HAProxy sample keeps a long-polling
//! client on the node that holds its session and moves it to another when
//! its node stops gracefully, and the container image builds and answers
//! its health check. Each test needs a tool that a
//! machine may not have (`systemd-analyze`, `haproxy`, a container engine):
//! without it the test says so and passes.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, json_of, reply, Browser, Server};
use serde_json::{json, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Whether `tool` runs here; says so when it does not.
fn have(tool: &str, probe: &[&str]) -> bool {
    let ran = Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ran {
        eprintln!("SKIPPED: `{tool}` is not available here");
    }
    ran
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    if !have("systemd-analyze", &["--version"]) {
        return;
    }
    let unit = std::fs::read_to_string(Path::new(ROOT).join("deploy/gmshub.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/gmshub "));
    // The binary under test where the unit expects the installed one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gmshub.service");
    let here = unit.replace("/usr/local/bin/gmshub", env!("CARGO_BIN_EXE_gmshub"));
    std::fs::write(&path, here).unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && said.trim().is_empty(), "{said}");
    // systemd's own exposure score, 0 (locked down) to 10 (exposed): at most 2.
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let score = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_default();
    assert!(security.status.success(), "{score}");
    eprintln!("{score}");
}

/// HAProxy on the sample configuration, in front of `nodes`, on `port`.
struct Haproxy(Child);

impl Haproxy {
    fn start(nodes: &[&Server], port: u16, dir: &Path) -> Haproxy {
        let sample = std::fs::read_to_string(Path::new(ROOT).join("deploy/haproxy.cfg")).unwrap();
        let mut config = String::new();
        for line in sample.lines() {
            let line = line
                .replace("bind *:8080", &format!("bind 127.0.0.1:{port}"))
                .replace(
                    "bind 127.0.0.1:9090",
                    &format!("bind 127.0.0.1:{}", free_port()),
                );
            if line.trim_start().starts_with("server ") {
                continue;
            }
            config.push_str(&line);
            config.push('\n');
        }
        for (i, node) in nodes.iter().enumerate() {
            config.push_str(&format!("    server node{i} {}\n", node.addr));
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("haproxy");
        Haproxy(child)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A browser through HAProxy on `port`, once HAProxy answers the node check.
async fn through(port: u16) -> Browser {
    let browser = Browser::at(&format!("http://127.0.0.1:{port}"));
    let started = Instant::now();
    loop {
        let check = browser
            .http
            .get(format!("http://127.0.0.1:{port}/genesys/1/node"));
        if check.send().await.is_ok_and(|r| r.status() == 200) {
            return browser;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "haproxy never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A connect that is answered at once: its reply.
async fn connect_now(browser: &Browser, client_id: &str) -> Value {
    let replies = browser
        .send(json!([{"channel": "/meta/connect", "clientId": client_id,
                      "connectionType": "long-polling", "advice": {"timeout": 0}}]))
        .await;
    reply(&replies, "/meta/connect").clone()
}

#[tokio::test]
async fn the_haproxy_sample_keeps_a_long_polling_client_on_its_node() {
    if !have("haproxy", &["-v"]) {
        return;
    }
    let (one, two) = (Server::start(&[]), Server::start(&[]));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _haproxy = Haproxy::start(&[&one, &two], port, dir.path());
    let client = through(port).await;
    let client_id = client.handshake().await;
    // Round robin alone would send every other connect to the node that
    // does not know the session (402::session_unknown).
    for i in 0..6 {
        let connect = connect_now(&client, &client_id).await;
        assert_eq!(connect["successful"], true, "connect {i}: {connect}");
    }
}

/// Each node's id (`/genesys/1/node`), which begins the clientIds it makes.
async fn ids(nodes: &[Server]) -> Vec<String> {
    let mut ids = Vec::new();
    for node in nodes {
        let me = json_of(reqwest::Client::new().get(node.url("/genesys/1/node"))).await;
        ids.push(format!("{}.", me["id"].as_str().unwrap()));
    }
    ids
}

#[tokio::test]
async fn a_node_that_stops_leaves_haproxy_and_its_clients_handshake_on_the_other() {
    if !have("haproxy", &["-v"]) {
        return;
    }
    let env = [("GMSHUB__SML__SUSPENDING_WAIT_TIMEOUT", "10")];
    let mut nodes = [Server::start(&env), Server::start(&env)];
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _haproxy = Haproxy::start(&[&nodes[0], &nodes[1]], port, dir.path());
    let client = through(port).await;
    let mut client_id = client.handshake().await;
    let ids = ids(&nodes).await;
    let holder = |client_id: &str| ids.iter().position(|id| client_id.starts_with(id));
    let stopping = holder(&client_id).expect("a node's clientId");
    let started = Instant::now();
    nodes[stopping].signal("TERM");
    // OFFLINE at once (as soon as the signal is delivered and handled, well
    // inside the half of the wait): the check HAProxy polls answers 503.
    let mut offline = false;
    for _ in 0..50 {
        let check = reqwest::get(nodes[stopping].url("/genesys/1/node")).await;
        if check.unwrap().status() == 503 {
            offline = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        offline && started.elapsed() < Duration::from_secs(1),
        "not OFFLINE at once"
    );
    // The client long-polls on as a CometD client does: connects that
    // succeed, then one `402::session_unknown` with `reconnect:
    // handshake`, and a handshake that HAProxy takes to the other node.
    let mut answered = 0;
    while holder(&client_id) == Some(stopping) {
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "still on the stopping node"
        );
        let connect = connect_now(&client, &client_id).await;
        if connect["successful"] == true {
            answered += 1;
        } else {
            assert_eq!(connect["advice"]["reconnect"], "handshake", "{connect}");
            client_id = client.handshake().await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Served on while OFFLINE, until HAProxy's check took the node out (or
    // the node moved its clients, half the wait after the signal).
    assert!(
        answered >= 1,
        "served on while OFFLINE: {answered} connects"
    );
    eprintln!(
        "moved after {answered} connects on the stopping node, {:?} after the signal",
        started.elapsed()
    );
    let connect = connect_now(&client, &client_id).await;
    assert_eq!(connect["successful"], true, "on the other node: {connect}");
    let exited = nodes[stopping].wait(Duration::from_secs(12));
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
    assert!(started.elapsed() < Duration::from_secs(12));
}

#[test]
fn the_container_image_builds_and_answers_its_health_check() {
    if !have("docker", &["info"]) {
        return;
    }
    let tag = "gmshub-test:latest";
    let build = Command::new("docker")
        .args(["build", "--quiet", "-t", tag, ROOT])
        .status()
        .unwrap();
    assert!(build.success(), "docker build");
    let port = free_port();
    let run = Command::new("docker")
        .args(["run", "--detach", "--rm", "-p"])
        .arg(format!("127.0.0.1:{port}:8080"))
        .arg(tag)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let id = String::from_utf8_lossy(&run.stdout).trim().to_owned();
    let health = || {
        let out = Command::new("docker")
            .args(["inspect", "--format", "{{.State.Health.Status}}", &id])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let started = Instant::now();
    let mut status = health();
    while status != "healthy" && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(1));
        status = health();
    }
    // From outside the container, through the published port.
    let node = Command::new("curl")
        .args(["-fsS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}/genesys/1/node"))
        .output()
        .unwrap();
    let _ = Command::new("docker")
        .args(["stop", "--time", "20", &id])
        .status();
    assert_eq!(status, "healthy");
    assert_eq!(String::from_utf8_lossy(&node.stdout), "200");
}
