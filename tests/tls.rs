//! The TLS listener against the real binary, with certificates the test
//! makes (rcgen): curl over TLS 1.2 and 1.3 (1.1 refused), HTTP/2 by ALPN
//! with Bayeux long-polling over it, HSTS on TLS answers only, a PKCS#12
//! keystore, and SIGHUP: new connections get the new certificate while a
//! WebSocket opened before keeps working.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::Server;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// A CA and a server certificate for 127.0.0.1 it signed, as PEM files in
/// `dir` (`name.ca.pem`, `name.pem`, `name.key`); the CA's DER and the
/// pair for a keystore.
struct Issued {
    ca: PathBuf,
    chain: PathBuf,
    key: PathBuf,
    ca_der: Vec<u8>,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

fn issue(dir: &Path, name: &str) -> Issued {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // Distinct names: OpenSSL (curl) takes a certificate whose issuer is
    // its own subject for self-signed.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("gmshub test CA {name}"));
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &ca).unwrap();
    let at = |suffix: &str| dir.join(format!("{name}{suffix}"));
    std::fs::write(at(".ca.pem"), ca.pem()).unwrap();
    std::fs::write(at(".pem"), cert.pem()).unwrap();
    std::fs::write(at(".key"), key.serialize_pem()).unwrap();
    Issued {
        ca: at(".ca.pem"),
        chain: at(".pem"),
        key: at(".key"),
        ca_der: ca.der().to_vec(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

/// The TLS address the server logged.
fn tls_port(s: &Server) -> u16 {
    for _ in 0..100 {
        let log = s.output();
        if let Some(rest) = log.split("listening on https://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap();
            return addr.rsplit(':').next().unwrap().parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no TLS listener in {}", s.output());
}

/// curl with `args` against `https://127.0.0.1:port{path}`: exit success,
/// and what it printed (headers, then `-w`'s line).
fn curl(ca: &Path, port: u16, path: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}\n",
        ])
        .arg("--cacert")
        .arg(ca)
        .args(args)
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl (the README's test command installs it with Debian)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn tls_env(issued: &Issued) -> Vec<(String, String)> {
    vec![
        ("GMSHUB__TLS__LISTEN".into(), "127.0.0.1:0".into()),
        (
            "GMSHUB__TLS__CERTIFICATE".into(),
            issued.chain.display().to_string(),
        ),
        (
            "GMSHUB__TLS__PRIVATE_KEY".into(),
            issued.key.display().to_string(),
        ),
    ]
}

fn start(env: &[(String, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start(&env)
}

#[tokio::test]
async fn tls_12_and_13_with_h2_and_hsts_and_nothing_older() {
    let dir = tempfile::tempdir().unwrap();
    let issued = issue(dir.path(), "a");
    let s = start(&tls_env(&issued));
    let port = tls_port(&s);
    for version in [
        ["--tlsv1.2", "--tls-max", "1.2"],
        ["--tlsv1.3", "--tls-max", "1.3"],
    ] {
        let (ok, out) = curl(&issued.ca, port, "/genesys/1/node", &version);
        assert!(ok, "{version:?}: {out}");
        assert!(out.contains("200 "), "{out}");
        let hsts = out.to_ascii_lowercase();
        assert!(
            hsts.contains("strict-transport-security: max-age=31536000; includesubdomains"),
            "{out}"
        );
    }
    let (ok, out) = curl(
        &issued.ca,
        port,
        "/genesys/1/node",
        &["--tlsv1.1", "--tls-max", "1.1"],
    );
    assert!(!ok, "TLS 1.1 must be refused: {out}");

    // HTTP/2 by ALPN, Bayeux long-polling over it.
    let (ok, out) = curl(&issued.ca, port, "/genesys/1/node", &["--http2"]);
    assert!(ok && out.contains("200 2"), "{out}");
    let handshake = r#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]"#;
    let answer = Command::new("curl")
        .args([
            "-s",
            "--http2",
            "-H",
            "content-type: application/json",
            "-d",
            handshake,
        ])
        .arg("--cacert")
        .arg(&issued.ca)
        .arg(format!("https://127.0.0.1:{port}/genesys/cometd"))
        .output()
        .unwrap();
    let reply: Value = serde_json::from_slice(&answer.stdout).expect("a Bayeux reply");
    assert_eq!(reply[0]["successful"], true, "{reply}");

    // The browser cookie a handshake sets is Secure over TLS, and SameSite=None
    // so that a widget on another site keeps its session.
    let (_, headers) = curl(
        &issued.ca,
        port,
        "/genesys/cometd",
        &["-H", "content-type: application/json", "-d", handshake],
    );
    let headers = headers.to_ascii_lowercase();
    let cookie = headers
        .lines()
        .find(|l| l.starts_with("set-cookie: bayeux_browser="))
        .unwrap_or_else(|| panic!("a browser cookie in {headers}"));
    assert!(
        cookie.contains("; httponly")
            && cookie.contains("; samesite=none")
            && cookie.contains("; secure"),
        "{cookie}"
    );
    let plain = reqwest::Client::new()
        .post(s.url("/genesys/cometd"))
        .header("content-type", "application/json")
        .body(handshake)
        .send()
        .await
        .unwrap();
    let cookie = plain.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        !cookie.contains("secure"),
        "not on the plain listener: {cookie}"
    );

    // The plain listener sends no HSTS.
    let plain = reqwest::get(s.url("/genesys/1/node")).await.unwrap();
    assert!(plain.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn a_pkcs12_keystore_serves_too() {
    let dir = tempfile::tempdir().unwrap();
    let issued = issue(dir.path(), "k");
    let chain = p12_keystore::PrivateKeyChain::new(
        vec![1u8; 20],
        p12_keystore::PrivateKey::from_der(&issued.key_der).unwrap(),
        [
            p12_keystore::Certificate::from_der(&issued.cert_der).unwrap(),
            p12_keystore::Certificate::from_der(&issued.ca_der).unwrap(),
        ],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("gms", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    let p12 = dir.path().join("gms.p12");
    std::fs::write(&p12, store.writer("changeit").write().unwrap()).unwrap();
    let env = vec![
        ("GMSHUB__TLS__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "GMSHUB__TLS__KEYSTORE".to_owned(),
            p12.display().to_string(),
        ),
        (
            "GMSHUB__TLS__KEYSTORE_PASSWORD".to_owned(),
            "changeit".to_owned(),
        ),
        ("GMSHUB__TLS__STSMAXAGESECONDS".to_owned(), "-1".to_owned()),
    ];
    let s = start(&env);
    let (ok, out) = curl(&issued.ca, tls_port(&s), "/genesys/1/node", &[]);
    assert!(ok && out.contains("200 "), "{out}");
    assert!(
        !out.to_ascii_lowercase()
            .contains("strict-transport-security"),
        "HSTS off: {out}"
    );
    assert!(
        !s.output().contains("changeit"),
        "the keystore password stays out of the log"
    );
}

/// A WebSocket over TLS trusting only `ca_der`.
async fn wss(
    port: u16,
    ca_der: &[u8],
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der.to_vec().into()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let url = format!("wss://127.0.0.1:{port}/genesys/cometd");
    tokio_tungstenite::client_async(url, tls)
        .await
        .expect("upgrade")
        .0
}

async fn reply<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, batch: Value) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::text(batch.to_string())).await.unwrap();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("an answer")
            .expect("open")
            .expect("a frame");
        if let Message::Text(t) = frame {
            return serde_json::from_str::<Value>(&t).unwrap()[0].clone();
        }
    }
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_open_sockets_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let first = issue(dir.path(), "first");
    let s = start(&tls_env(&first));
    let port = tls_port(&s);
    let mut ws = wss(port, &first.ca_der).await;
    let hs = reply(
        &mut ws,
        json!([{"channel": "/meta/handshake", "version": "1.0",
        "supportedConnectionTypes": ["websocket"]}]),
    )
    .await;
    let id = hs["clientId"].as_str().unwrap().to_owned();

    // New files in place, then SIGHUP.
    let second = issue(dir.path(), "second");
    std::fs::copy(&second.chain, &first.chain).unwrap();
    std::fs::copy(&second.key, &first.key).unwrap();
    s.signal("HUP");
    for _ in 0..100 {
        if s.output().contains("TLS certificate reloaded") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        s.output().contains("TLS certificate reloaded"),
        "{}",
        s.output()
    );
    let (ok, _) = curl(&second.ca, port, "/genesys/1/node", &[]);
    assert!(ok, "a new connection gets the new certificate");
    let (ok, _) = curl(&first.ca, port, "/genesys/1/node", &[]);
    assert!(!ok, "and not the old one");
    let connect = reply(
        &mut ws,
        json!([{"channel": "/meta/connect", "clientId": id,
        "connectionType": "websocket", "advice": {"timeout": 0}}]),
    )
    .await;
    assert_eq!(
        connect["successful"], true,
        "the open socket still works: {connect}"
    );

    // A broken file on the next SIGHUP keeps the current certificate.
    std::fs::write(&first.chain, "not a certificate").unwrap();
    s.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    let (ok, _) = curl(&second.ca, port, "/genesys/1/node", &[]);
    assert!(ok, "still served after a failed reload");
}

#[tokio::test]
async fn port_restrictions_put_the_back_office_on_one_port() {
    let dir = tempfile::tempdir().unwrap();
    let issued = issue(dir.path(), "p");
    let tls = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tls.local_addr().unwrap().port();
    drop(tls);
    let config = format!(
        "[tls]\nlisten = 127.0.0.1:{port}\ncertificate = {}\nprivate-key = {}\n\
         [port_restrictions]\n/genesys/1/admin/* = {port}\n",
        issued.chain.display(),
        issued.key.display()
    );
    let s = common::with_config(&dir, &config, &[]);
    assert_eq!(tls_port(&s), port);
    let plain = reqwest::get(s.url("/genesys/1/admin/node/status"))
        .await
        .unwrap();
    assert_eq!(plain.status(), 403, "not on the plain port");
    let body: Value = plain.json().await.unwrap();
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("port_restrictions"));
    let (ok, out) = curl(&issued.ca, port, "/genesys/1/admin/node/status", &[]);
    assert!(ok && out.contains("200 "), "on its own port: {out}");
    let node = reqwest::get(s.url("/genesys/1/node")).await.unwrap();
    assert_eq!(
        node.status(),
        200,
        "what is not listed is served everywhere"
    );
}

/// A form POST with Basic credentials (or none), and its status.
async fn post_as(url: String, form: &[(&str, &str)], who: Option<(&str, &str)>) -> u16 {
    let mut r = reqwest::Client::new().post(url).form(form);
    if let Some((user, password)) = who {
        r = r.basic_auth(user, Some(password));
    }
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_hardened_example_starts_and_keeps_its_promises() {
    let dir = tempfile::tempdir().unwrap();
    let issued = issue(dir.path(), "h");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/hardened.ini");
    // Its listeners and certificate paths are the deployment's; the test's
    // stand in (the plain one through --listen).
    let mut env = tls_env(&issued);
    env.push(("GMSHUB_CONFIG".into(), example.into()));
    let s = start(&env);
    let port = tls_port(&s);

    // Storage: ORS's own credentials, not the server's.
    let storage = s.url("/genesys/1/storage/60");
    assert_eq!(post_as(storage.clone(), &[("k", "v")], None).await, 401);
    assert_eq!(
        post_as(storage.clone(), &[("k", "v")], Some(("gms", "gms-secret"))).await,
        401
    );
    assert_eq!(
        post_as(storage, &[("k", "v")], Some(("ors", "ors-secret"))).await,
        200
    );
    // The back office: credentials (loopback is not one of its networks).
    let admin = reqwest::Client::new().get(s.url("/genesys/1/admin/node/status"));
    assert_eq!(
        admin.try_clone().unwrap().send().await.unwrap().status(),
        401
    );
    let with = admin
        .basic_auth("gms", Some("gms-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), 200);
    // Chat v2 open to customers; this caller is no trusted proxy, so its
    // gms_user does not count (a custom storage id needs one).
    let chat = s.url("/genesys/2/chat/customer-support");
    assert_eq!(post_as(chat, &[("nickname", "Ann")], None).await, 200);
    let custom = reqwest::Client::new()
        .post(s.url("/genesys/1/storage/custom/profile/60"))
        .basic_auth("ors", Some("ors-secret"))
        .header("gms_user", "ann")
        .form(&[("k", "v")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        custom.status(),
        400,
        "gms_user ignored off the trusted proxies"
    );
    // CORS for the company's site only.
    let from = |origin: &'static str| {
        reqwest::Client::new()
            .post(s.url("/genesys/2/chat/customer-support"))
            .header("origin", origin)
            .form(&[("nickname", "Bo")])
            .send()
    };
    let site = from("https://www.example.com").await.unwrap();
    assert_eq!(
        site.headers()["access-control-allow-origin"],
        "https://www.example.com"
    );
    assert_eq!(
        from("https://evil.example.net").await.unwrap().status(),
        403
    );
    // Real agents only; the pages may be framed by the site.
    let login = |agent: &str, password: &str| {
        reqwest::Client::new()
            .post(s.url("/gmshub/agent/login"))
            .json(&json!({"agent": agent, "password": password}))
            .send()
    };
    assert_eq!(login("alice", "alice-secret").await.unwrap().status(), 200);
    assert_eq!(login("agent", "agent").await.unwrap().status(), 401);
    let page = reqwest::get(s.url("/chat")).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'self' https://www.example.com"),
        "{csp}"
    );
    // TLS with HSTS.
    let (ok, out) = curl(&issued.ca, port, "/genesys/1/node", &[]);
    assert!(
        ok && out
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{out}"
    );
    assert!(!s.output().contains("secret"), "no password in the log");
}

#[tokio::test]
async fn the_plain_port_may_redirect_to_tls() {
    let dir = tempfile::tempdir().unwrap();
    let issued = issue(dir.path(), "r");
    let mut env = tls_env(&issued);
    env.push(("GMSHUB__TLS__REDIRECT_HTTP".into(), "true".into()));
    let s = start(&env);
    let port = tls_port(&s);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http
        .post(s.url("/genesys/2/chat/customer-support?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        308,
        "the method and body are kept by a 308"
    );
    assert_eq!(
        answer.headers()["location"],
        format!("https://127.0.0.1:{port}/genesys/2/chat/customer-support?x=1").as_str()
    );
    let (ok, out) = curl(&issued.ca, port, "/genesys/1/node", &[]);
    assert!(ok && out.contains("200 "), "TLS serves: {out}");
}
