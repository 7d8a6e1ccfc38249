//! Bayeux over HTTP long-polling, on hyper's bare HTTP/1.1 connection (no
//! pool, no cookie store): each client keeps its own keep-alive connection
//! and its own BAYEUX_BROWSER cookie, like one browser each.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, COOKIE, HOST, ORIGIN, SET_COOKIE};
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::stats::Shared;
use crate::target::{ClientError, Target};
use crate::wire;

const TYPE: &str = "long-polling";
/// Longer than any server's connect hold (30 s) plus slack.
const WAIT: Duration = Duration::from_secs(70);

/// One keep-alive HTTP connection to the endpoint.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    target: Target,
    cookie: Option<String>,
}

impl Conn {
    pub async fn open(target: &Target, cookie: Option<String>) -> Result<Self, ClientError> {
        let stream = tokio::time::timeout(WAIT, target.connect())
            .await
            .map_err(|_| ClientError::Timeout("tcp connect"))??;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self {
            sender,
            target: target.clone(),
            cookie,
        })
    }

    /// POSTs a Bayeux batch; returns the response body. Keeps the browser
    /// cookie the server sets.
    pub async fn post(&mut self, body: String) -> Result<Bytes, ClientError> {
        let mut req = Request::post(&self.target.path)
            .header(HOST, &self.target.authority)
            .header(CONTENT_TYPE, "application/json;charset=UTF-8");
        if let Some(cookie) = &self.cookie {
            req = req.header(COOKIE, cookie);
        }
        if let Some(origin) = &self.target.origin {
            req = req.header(ORIGIN, origin);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        // The connection must be ready (its previous response read) first.
        self.sender.ready().await?;
        let resp = tokio::time::timeout(WAIT, self.sender.send_request(req))
            .await
            .map_err(|_| ClientError::Timeout("http response"))??;
        if let Some(set) = resp.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            self.cookie = set.split(';').next().map(str::to_owned);
        }
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(ClientError::Protocol(format!("HTTP {status}")));
        }
        Ok(body)
    }
}

pub struct LpClient {
    pub id: String,
    conn: Conn,
}

impl LpClient {
    /// Handshakes and completes the first connect.
    pub async fn open(target: &Target) -> Result<Self, ClientError> {
        let mut conn = Conn::open(target, None).await?;
        let reply = conn.post(wire::handshake(TYPE)).await?;
        let id = wire::field(&reply, "clientId").ok_or_else(|| {
            ClientError::Protocol(format!(
                "handshake refused: {}",
                String::from_utf8_lossy(&reply)
            ))
        })?;
        conn.post(wire::first_connect(&id, TYPE)).await?;
        Ok(Self { id, conn })
    }

    pub async fn subscribe(&mut self, channels: &[String]) -> Result<(), ClientError> {
        let reply = self.conn.post(wire::subscribe(&self.id, channels)).await?;
        if wire::scan(&reply).failures > 0 {
            return Err(ClientError::Protocol(format!(
                "subscribe refused: {}",
                String::from_utf8_lossy(&reply)
            )));
        }
        Ok(())
    }

    pub async fn close(mut self) {
        let _ = self.conn.post(wire::disconnect(&self.id)).await;
    }

    /// Polls until `stop` fires, recording every delivery.
    pub async fn run(mut self, rec: Shared, mut stop: tokio::sync::watch::Receiver<bool>) {
        let connect = wire::connect(&self.id, TYPE);
        loop {
            let body = tokio::select! {
                r = self.conn.post(connect.clone()) => r,
                _ = stop.changed() => break,
            };
            match body {
                Ok(body) => rec.lock().record_scan(&wire::scan(&body), wire::now_us()),
                Err(_) => {
                    rec.lock().errors += 1;
                    return;
                }
            }
        }
        // The held connect's connection is mid-request: say goodbye on a new one.
        if let Ok(mut conn) = Conn::open(&self.conn.target, self.conn.cookie.clone()).await {
            let _ = conn.post(wire::disconnect(&self.id)).await;
        }
    }
}

/// A publishing session: one connection publishes, a second keeps a
/// connect outstanding so the session does not expire between steps.
pub struct LpPublisher {
    pub id: String,
    conn: Conn,
    errors: Shared,
    keepalive: tokio::task::JoinHandle<()>,
}

impl LpPublisher {
    pub async fn open(target: &Target, errors: Shared) -> Result<Self, ClientError> {
        let LpClient { id, conn } = LpClient::open(target).await?;
        let mut poll = Conn::open(target, conn.cookie.clone()).await?;
        let connect = wire::connect(&id, TYPE);
        let keepalive =
            tokio::spawn(async move { while poll.post(connect.clone()).await.is_ok() {} });
        Ok(Self {
            id,
            conn,
            errors,
            keepalive,
        })
    }

    pub async fn send(&mut self, batch: String) -> Result<(), ClientError> {
        let reply = self.conn.post(batch).await?;
        let failures = wire::scan(&reply).failures;
        if failures > 0 {
            self.errors.lock().errors += failures as u64;
        }
        Ok(())
    }

    pub async fn close(mut self) {
        self.keepalive.abort();
        let _ = self.conn.post(wire::disconnect(&self.id)).await;
    }
}
