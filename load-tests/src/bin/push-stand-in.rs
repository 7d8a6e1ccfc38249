//! A stand-in for Apple's push service for the push benchmark: HTTP/2 over
//! TLS with a certificate authority it makes itself (written to `--ca`), an
//! answer of 200 to every `POST /3/device/{token}`, and, in each payload's
//! `message`, the microsecond timestamp the benchmark published with, from
//! which it measures the time to acknowledgement. It counts deliveries and
//! prints one JSON report when it gets SIGTERM or after `--seconds`.
//!
//! Usage: push-stand-in --ca FILE [--port N] [--seconds N]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use parking_lot::Mutex;

#[derive(Default)]
struct Seen {
    deliveries: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    latency_us: Option<Histogram<u64>>,
    bad: u64,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

async fn handle(
    seen: Arc<Mutex<Seen>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let ok = req.version() == hyper::Version::HTTP_2 && req.uri().path().starts_with("/3/device/");
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let sent: Option<u64> = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().and_then(|m| m.parse().ok()));
    let now = Instant::now();
    {
        let mut s = seen.lock();
        if ok {
            s.deliveries += 1;
            s.first.get_or_insert(now);
            s.last = Some(now);
            if let Some(sent) = sent {
                let h = s
                    .latency_us
                    .get_or_insert_with(|| Histogram::new(3).expect("histogram"));
                let _ = h.record(now_us().saturating_sub(sent));
            }
        } else {
            s.bad += 1;
        }
    }
    Ok(Response::builder()
        .status(if ok { 200 } else { 400 })
        .header("apns-id", "00000000-0000-0000-0000-000000000000")
        .body(Full::new(Bytes::new()))
        .expect("response"))
}

fn report(seen: &Seen) -> String {
    let q = |p: f64| {
        seen.latency_us
            .as_ref()
            .map_or(0.0, |h| h.value_at_quantile(p) as f64 / 1000.0)
    };
    let seconds = match (seen.first, seen.last) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    serde_json::json!({
        "deliveries": seen.deliveries,
        "bad_requests": seen.bad,
        "seconds": seconds,
        "per_sec": if seconds > 0.0 { seen.deliveries as f64 / seconds } else { 0.0 },
        "ack_p50_ms": q(0.5), "ack_p90_ms": q(0.9), "ack_p99_ms": q(0.99), "ack_max_ms": q(1.0),
    })
    .to_string()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let ca_path = arg("--ca").expect("--ca FILE");
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let seconds: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(600);

    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca =
        rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("key"))
            .expect("ca");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("cert");
    std::fs::write(&ca_path, ca.pem()).expect("write the CA");
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .expect("TLS config");
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!(
        "listening on https://{}",
        listener.local_addr().expect("address")
    );

    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, seen) = (acceptor.clone(), state.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| handle(seen.clone(), req));
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .max_concurrent_streams(1000)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
            });
        }
    });
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
    }
    println!("{}", report(&seen.lock()));
}
