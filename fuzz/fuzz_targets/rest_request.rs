//! Every REST API's request parsing, end to end: arbitrary methods, path
//! segments, queries, content types and bodies sent through the hub's own
//! routes (an in-process hub on an embedded store). Whatever a client
//! sends, the answer is never a panic and never a 500.
#![no_main]

use std::fmt::Write;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use gmshub::app::Hub;
use gmshub::config::{Options, Settings};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// Every route of the REST APIs; `{}` takes a fuzzed path segment.
const ROUTES: &[&str] = &[
    "/genesys/2/chat/{}",
    "/genesys/2/chat/{}/{}/{}",
    "/genesys/2/chat/{}/{}/file/{}",
    "/genesys/2/chat/{}/{}/file/{}/{}",
    "/genesys/2/chat-ntf",
    "/genesys/1/service/{}",
    "/genesys/1/service/{}/ixn/chat",
    "/genesys/1/service/{}/ixn/chat/{}",
    "/genesys/1/service/{}/storage",
    "/genesys/1/service/{}/{}",
    "/genesys/1/service/{}/check-queue-position",
    "/genesys/1/service/callback",
    "/genesys/1/service/callback/{}",
    "/genesys/1/service/callback/{}/availability",
    "/genesys/1/service/callback/{}/{}",
    "/genesys/1/admin/callback/queues",
    "/genesys/1/admin/callback/watermarks",
    "/genesys/1/admin/callback/cancel",
    "/genesys/1/admin/callback/reportcancelled",
    "/genesys/1/notification/subscription",
    "/genesys/1/notification/subscription/{}",
    "/genesys/1/notification/publish",
    "/genesys/1/storage/{}",
    "/genesys/1/storage/{}/{}",
    "/genesys/1/storage/custom/{}/{}",
    "/genesys/1/node",
    "/genesys/1/admin/node/status",
    "/genesys/1/admin/node/changestatus/{}",
    "/gmshub/agent/login",
    "/gmshub/agent/logout",
    "/gmshub/agent/ready",
    "/gmshub/agent/not-ready",
    "/gmshub/agent/offers",
    "/gmshub/agent/chats",
    "/gmshub/agent/chats/next",
    "/gmshub/agent/chats/{}",
    "/gmshub/agent/chats/{}/{}",
    "/gmshub/agent/chats/{}/files/{}",
    "/gmshub/callback/{}",
    "/gmshub/callback/{}/next",
    "/gmshub/callback/{}/state",
];

/// Segments that name what the hub has, so that some requests get past the
/// lookups to the parsing behind them.
const KNOWN: &[&str] = &["support", "cb", "request-chat", "5", "2592000", "send"];

const CONFIG: &str = "\
[push]
pushEnabled = comet
[chat.support]
_client_timeout = 60
[service.cb]
_service = callback
_type = ors
";

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: u8,
    route: u8,
    segments: [(u8, &'a str); 4],
    query: &'a str,
    content_type: u8,
    headers: Vec<(u8, &'a str)>,
    body: &'a [u8],
}

fn encode(out: &mut String, text: &str, keep: &[u8]) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn request(input: &Input<'_>) -> Option<Request<Body>> {
    let method = ["GET", "POST", "DELETE", "PUT", "OPTIONS"][input.method as usize % 5];
    let route = ROUTES[input.route as usize % ROUTES.len()];
    let mut path = String::new();
    let mut segments = input.segments.iter();
    for (i, piece) in route.split("{}").enumerate() {
        if i > 0 {
            let (pick, text) = segments.next()?;
            match KNOWN.get(*pick as usize) {
                Some(known) => path.push_str(known),
                None => encode(&mut path, text, b""),
            }
        }
        path.push_str(piece);
    }
    if !input.query.is_empty() {
        path.push('?');
        encode(&mut path, input.query, b"=&");
    }
    let content_type = [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=B",
        "application/json",
        "text/plain",
        "application/json; charset=utf-16",
    ]
    .get(input.content_type as usize);
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", *content_type);
    }
    for (name, value) in &input.headers {
        let name = [
            "authorization",
            "gms_user",
            "origin",
            "content-length",
            "x-forwarded-for",
        ][*name as usize % 5];
        builder = builder.header(name, *value);
    }
    builder.body(Body::from(input.body.to_vec())).ok()
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    routes: axum::Router,
    /// Kept (not forgotten, which the leak checker would report): its
    /// background tasks live as long as the process.
    _hub: std::sync::Mutex<Hub>,
    _data: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let data = tempfile::tempdir().expect("a folder");
        let ini = format!(
            "{CONFIG}[sqlite]\npath = {}\n",
            data.path().join("gmshub.db").display()
        );
        let settings = Settings::from_options(&Options::from_ini(&ini, &[]).expect("options"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let hub = runtime
            .block_on(Hub::build(settings, "127.0.0.1:0".parse().unwrap()))
            .expect("a hub");
        Fixture {
            runtime,
            routes: hub.routes(),
            _hub: std::sync::Mutex::new(hub),
            _data: data,
        }
    })
}

fuzz_target!(|input: Input<'_>| {
    let Some(request) = request(&input) else {
        return;
    };
    let f = fixture();
    let response = f
        .runtime
        .block_on(f.routes.clone().oneshot(request))
        .expect("infallible");
    assert_ne!(
        response.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "{input:?}"
    );
});
