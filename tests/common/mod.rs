//! What the end-to-end tests share: the real gmshub binary started on a free
//! port, a "browser" (an HTTP client with its own cookie jar) that speaks
//! raw Bayeux JSON, and a raw WebSocket client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod chat;
pub mod netns;
pub mod receiver;
pub mod redis;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A JSON call to a REST API: the status and the body (`null` when it is
/// not JSON).
pub async fn call(
    s: &Server,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut req = client.request(method, s.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Sends a request and reads its answer as JSON (the tests' usual chain).
pub async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("a JSON answer")
}

/// Starts gmshub with `config` written to an INI file in `dir` (as
/// `GMSHUB_CONFIG`) and the given environment overrides.
pub fn with_config(dir: &tempfile::TempDir, config: &str, extra: &[(&str, &str)]) -> Server {
    let path = dir.path().join("gmshub.ini");
    std::fs::write(&path, config).expect("write the configuration");
    let path = path.to_string_lossy().into_owned();
    let mut env = vec![("GMSHUB_CONFIG", path.as_str())];
    env.extend_from_slice(extra);
    Server::start(&env)
}

/// A loopback port that was free a moment ago (for configurations that
/// name their ports).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// A gmshub process on a free loopback port; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The folder of its SQLite store, removed with the server unless the
    /// test owns it.
    _data: Option<tempfile::TempDir>,
    /// Everything it wrote to stdout (its log).
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

/// The suites exercise Bayeux on channels of their own, so their servers
/// let clients publish everywhere; `tests/abuse.rs` checks the shipped
/// rules (pass [`SHIPPED_CHANNELS`] to get them).
pub const OPEN_CHANNELS: (&str, &str) = ("GMSHUB__COMETD__PUBLISHCHANNELS", "/**");

/// Given in `env`, leaves `[cometd] publishChannels` as shipped (the
/// binary ignores the variable itself).
pub const SHIPPED_CHANNELS: (&str, &str) = ("GMSHUB_TEST_SHIPPED_CHANNELS", "1");

/// The suites make many sessions and requests from one address (loopback,
/// or a test namespace's), so their servers whitelist every address
/// (`[dos-filter] ipWhitelist`, which also exempts it from the per-address
/// Bayeux limits); the attack suite checks the shipped limits (pass
/// [`SHIPPED_LIMITS`] to get them).
pub const UNLIMITED_CLIENTS: (&str, &str) = ("GMSHUB__DOS_FILTER__IPWHITELIST", "0.0.0.0/0, ::/0");

/// Given in `env`, leaves the DoS filter's whitelist as shipped (empty).
pub const SHIPPED_LIMITS: (&str, &str) = ("GMSHUB_TEST_SHIPPED_LIMITS", "1");

impl Server {
    /// Starts the binary with `--listen 127.0.0.1:0`, a SQLite store in a
    /// fresh temporary folder and the given environment overrides, and waits
    /// until it says where it listens. Its clients may publish on every
    /// channel ([`OPEN_CHANNELS`]) and no client address is limited
    /// ([`UNLIMITED_CLIENTS`]), unless `env` says otherwise.
    pub fn start(env: &[(&str, &str)]) -> Server {
        Self::launch_with_own_data(Self::on_loopback(), env)
    }

    /// Like `start`, with the SQLite store in `data` (which the test keeps,
    /// to restart a server on the same data).
    pub fn start_with_data(data: &std::path::Path, env: &[(&str, &str)]) -> Server {
        Self::launch(Self::on_loopback(), data, env)
    }

    /// The binary, on a free loopback port.
    fn on_loopback() -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gmshub"));
        cmd.args(["--listen", "127.0.0.1:0"]);
        cmd
    }

    /// Like `start`, on the listeners its configuration names (no
    /// `--listen`); `addr` is the first of them.
    pub fn start_as_configured(env: &[(&str, &str)]) -> Server {
        Self::launch_with_own_data(Command::new(env!("CARGO_BIN_EXE_gmshub")), env)
    }

    /// Like `start`, inside the network namespace `netns`, listening on
    /// `ip` there (the fault tests' own namespaces; needs root).
    pub fn start_in_netns(netns: &str, ip: &str, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, env!("CARGO_BIN_EXE_gmshub")])
            .args(["--listen", &format!("{ip}:0")]);
        Self::launch_with_own_data(cmd, env)
    }

    /// `launch` with the SQLite store in a temporary folder the server owns.
    fn launch_with_own_data(cmd: Command, env: &[(&str, &str)]) -> Server {
        let data = tempfile::tempdir().expect("temporary folder");
        let mut server = Self::launch(cmd, data.path(), env);
        server._data = Some(data);
        server
    }

    fn launch(mut cmd: Command, data: &std::path::Path, env: &[(&str, &str)]) -> Server {
        cmd.env("RUST_LOG", "info")
            .env("GMSHUB__SQLITE__PATH", data.join("gmshub.db"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if !env.contains(&SHIPPED_CHANNELS) {
            cmd.env(OPEN_CHANNELS.0, OPEN_CHANNELS.1);
        }
        if !env.contains(&SHIPPED_LIMITS) {
            cmd.env(UNLIMITED_CLIENTS.0, UNLIMITED_CLIENTS.1);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start gmshub");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let log = output.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                // Keep draining so the server never blocks on a full pipe.
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("gmshub did not report its address in time");
        Server {
            child,
            addr: addr.parse().expect("address"),
            _data: None,
            output,
        }
    }

    /// What the server has logged so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `INT`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status();
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + bound;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        self.signal("TERM");
        self.wait(bound)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser: an HTTP client with its own cookie jar.
#[derive(Clone)]
pub struct Browser {
    pub http: reqwest::Client,
    base: String,
}

/// An HTTP answer: status, headers and parsed JSON body (Null if not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        Self::with_headers(server, &[])
    }

    /// A browser that sends these headers on every request (`gms_user`).
    pub fn with_headers(server: &Server, headers: &[(&'static str, &str)]) -> Browser {
        Self::build(server.url(""), headers, None)
    }

    /// A browser whose requests go to `base` (a load balancer in front of
    /// servers), as `http://host:port`.
    pub fn at(base: &str) -> Browser {
        Self::build(base.to_owned(), &[], None)
    }

    /// A browser whose requests come from `ip` (a loopback address other
    /// than 127.0.0.1 stands for another client).
    pub fn from_address(server: &Server, ip: [u8; 4]) -> Browser {
        Self::build(server.url(""), &[], Some(ip.into()))
    }

    fn build(
        base: String,
        headers: &[(&'static str, &str)],
        from: Option<std::net::IpAddr>,
    ) -> Browser {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("header value"));
        }
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .default_headers(map)
                .local_address(from)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base,
        }
    }

    /// POSTs `body` (raw) to `path` with the given content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let response = self
            .http
            .post(format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        answer(response).await
    }

    pub async fn get(&self, path_and_query: &str) -> Answer {
        let response = self
            .http
            .get(format!("{}{}", self.base, path_and_query))
            .send()
            .await
            .expect("request");
        answer(response).await
    }

    /// POSTs Bayeux JSON to the long-polling endpoint; returns the reply array.
    pub async fn send(&self, body: Value) -> Vec<Value> {
        let a = self
            .post_raw(
                "/genesys/cometd",
                "application/json;charset=UTF-8",
                body.to_string(),
            )
            .await;
        assert_eq!(a.status, 200, "HTTP status for {body}: {}", a.text);
        a.json.as_array().cloned().expect("reply array")
    }

    /// Handshakes (optionally with an `ext`) and returns the clientId.
    pub async fn handshake_with(&self, ext: Value) -> String {
        let mut msg = json!({
            "channel": "/meta/handshake", "version": "1.0",
            "supportedConnectionTypes": ["long-polling"], "id": "hs"
        });
        if !ext.is_null() {
            msg["ext"] = ext;
        }
        let replies = self.send(json!([msg])).await;
        assert_eq!(replies[0]["successful"], true, "{replies:?}");
        replies[0]["clientId"]
            .as_str()
            .expect("clientId")
            .to_owned()
    }

    pub async fn handshake(&self) -> String {
        self.handshake_with(Value::Null).await
    }

    /// Sends a `/meta/connect` and returns everything in the response.
    pub async fn connect(&self, client_id: &str) -> Vec<Value> {
        self.send(json!([{
            "channel": "/meta/connect", "clientId": client_id,
            "connectionType": "long-polling", "id": "c"
        }]))
        .await
    }

    /// Handshake plus the first connect (answered at once): a ready session.
    pub async fn session(&self) -> String {
        let id = self.handshake().await;
        let first = self.connect(&id).await;
        assert_eq!(reply(&first, "/meta/connect")["successful"], true);
        id
    }

    pub async fn subscribe(&self, client_id: &str, subscription: Value) -> Value {
        let replies = self
            .send(json!([{
                "channel": "/meta/subscribe", "clientId": client_id,
                "subscription": subscription, "id": "s"
            }]))
            .await;
        replies[0].clone()
    }

    pub async fn publish(&self, client_id: &str, channel: &str, data: Value) -> Value {
        let replies = self
            .send(json!([{ "channel": channel, "clientId": client_id, "data": data, "id": "p" }]))
            .await;
        replies[0].clone()
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

/// The reply on `channel` in a response, panicking when there is none.
pub fn reply<'a>(messages: &'a [Value], channel: &str) -> &'a Value {
    messages
        .iter()
        .find(|m| m["channel"] == channel && m.get("successful").is_some())
        .unwrap_or_else(|| panic!("no reply on {channel} in {messages:?}"))
}

/// Deliveries (messages with `data`) in a response.
pub fn deliveries(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .filter(|m| m.get("data").is_some() && m.get("successful").is_none())
        .cloned()
        .collect()
}

/// A raw WebSocket client speaking Bayeux.
pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// What a WebSocket read produced.
#[derive(Debug)]
pub enum Frame {
    Messages(Vec<Value>),
    Ping,
    Close(Option<u16>),
    Timeout,
}

impl Ws {
    pub async fn connect(server: &Server, cookie: Option<&str>) -> Ws {
        let mut request = server
            .ws_url("/genesys/cometd")
            .into_client_request()
            .expect("request");
        if let Some(cookie) = cookie {
            request.headers_mut().insert(
                "cookie",
                format!("BAYEUX_BROWSER={cookie}").parse().expect("header"),
            );
        }
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("ws connect");
        Ws { stream }
    }

    pub async fn send(&mut self, body: Value) {
        self.stream
            .send(Message::text(body.to_string()))
            .await
            .expect("ws send");
    }

    pub async fn send_text(&mut self, text: String) -> Result<(), String> {
        self.stream
            .send(Message::text(text))
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends a text frame whose payload is `bytes` as they are (valid UTF-8
    /// or not).
    pub async fn send_raw_text(&mut self, bytes: &[u8]) -> Result<(), String> {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        use tokio_tungstenite::tungstenite::protocol::frame::Frame as Raw;
        let frame = Raw::message(bytes.to_vec(), OpCode::Data(Data::Text), true);
        self.stream
            .send(Message::Frame(frame))
            .await
            .map_err(|e| e.to_string())
    }

    /// The code of the Close frame among the next few frames (each awaited
    /// at most `wait`), or `None` when the socket ends without one.
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        for _ in 0..5 {
            match self.next(wait).await {
                Frame::Close(code) => return code,
                Frame::Timeout => return None,
                _ => {}
            }
        }
        None
    }

    /// Reads the next frame (pongs skipped), waiting at most `wait`.
    pub async fn next(&mut self, wait: Duration) -> Frame {
        loop {
            let next = tokio::time::timeout(wait, self.stream.next()).await;
            return match next {
                Err(_) => Frame::Timeout,
                Ok(None) => Frame::Close(None),
                Ok(Some(Err(_))) => Frame::Close(None),
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).expect("frame is JSON");
                    match v {
                        Value::Array(a) => Frame::Messages(a),
                        other => Frame::Messages(vec![other]),
                    }
                }
                Ok(Some(Ok(Message::Ping(_)))) => Frame::Ping,
                Ok(Some(Ok(Message::Close(frame)))) => Frame::Close(frame.map(|f| f.code.into())),
                Ok(Some(Ok(_))) => continue,
            };
        }
    }

    /// Reads messages until one satisfies `pred`, collecting all of them;
    /// panics after `wait`.
    pub async fn until(&mut self, wait: Duration, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut all = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Frame::Messages(msgs) => {
                    let done = msgs.iter().any(&pred);
                    all.extend(msgs);
                    if done {
                        return all;
                    }
                }
                Frame::Ping => {}
                other => panic!("expected messages, got {other:?} after {all:?}"),
            }
        }
    }

    pub async fn handshake(&mut self, ext: Value) -> String {
        let mut msg = json!({
            "channel": "/meta/handshake", "version": "1.0",
            "supportedConnectionTypes": ["websocket"], "id": "hs"
        });
        if !ext.is_null() {
            msg["ext"] = ext;
        }
        self.send(json!([msg])).await;
        let got = self
            .until(Duration::from_secs(5), |m| {
                m["channel"] == "/meta/handshake"
            })
            .await;
        let r = reply(&got, "/meta/handshake");
        assert_eq!(r["successful"], true, "{r}");
        r["clientId"].as_str().expect("clientId").to_owned()
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
