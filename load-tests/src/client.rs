//! A minimal Bayeux client over WebSocket, as a load generator needs it:
//! handshake, keep a `/meta/connect` outstanding, subscribe, publish, and
//! time every delivery that carries a send timestamp.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::stats::Recorder;

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Microseconds since the generator started: publishers and subscribers
/// share the process, so one clock times the whole path.
pub fn now_us() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_micros() as u64
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

pub struct Client {
    pub id: String,
    sink: SplitSink<Stream, Message>,
    stream: SplitStream<Stream>,
}

#[derive(Deserialize)]
struct Probe {
    t: Option<u64>,
}

#[derive(Deserialize)]
struct Incoming {
    channel: Option<String>,
    successful: Option<bool>,
    data: Option<Probe>,
}

impl Client {
    /// Opens a socket, handshakes and sends the first connect.
    pub async fn open(url: &str) -> Result<Client, ClientError> {
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(20),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .map_err(|_| ClientError::Timeout("websocket connect"))??;
        let (sink, stream) = ws.split();
        let mut client = Client {
            id: String::new(),
            sink,
            stream,
        };
        client
            .send(json!([{"channel": "/meta/handshake", "version": "1.0",
                          "supportedConnectionTypes": ["websocket"]}]))
            .await?;
        let reply = client.wait_for("/meta/handshake").await?;
        client.id = reply["clientId"]
            .as_str()
            .ok_or_else(|| ClientError::Protocol(format!("handshake failed: {reply}")))?
            .to_owned();
        client.send_connect().await?;
        client.wait_for("/meta/connect").await?;
        Ok(client)
    }

    pub async fn send(&mut self, body: Value) -> Result<(), ClientError> {
        self.sink.send(Message::text(body.to_string())).await?;
        Ok(())
    }

    async fn send_connect(&mut self) -> Result<(), ClientError> {
        let body = format!(
            r#"[{{"channel":"/meta/connect","clientId":"{}","connectionType":"websocket"}}]"#,
            self.id
        );
        self.sink.send(Message::text(body)).await?;
        Ok(())
    }

    /// Reads until the reply on `channel` arrives (others are discarded).
    async fn wait_for(&mut self, channel: &'static str) -> Result<Value, ClientError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .map_err(|_| ClientError::Timeout(channel))?;
            let Some(frame) = frame else {
                return Err(ClientError::Protocol("socket closed".into()));
            };
            if let Message::Text(text) = frame? {
                let msgs: Vec<Value> = serde_json::from_str(&text)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                if let Some(m) = msgs.into_iter().find(|m| m["channel"] == channel) {
                    return Ok(m);
                }
            }
        }
    }

    /// Subscribes to every channel in one message and waits for the reply.
    pub async fn subscribe(&mut self, channels: &[String]) -> Result<(), ClientError> {
        self.send(
            json!([{"channel": "/meta/subscribe", "clientId": self.id, "subscription": channels}]),
        )
        .await?;
        let reply = self.wait_for("/meta/subscribe").await?;
        if reply["successful"] != true {
            return Err(ClientError::Protocol(format!("subscribe failed: {reply}")));
        }
        Ok(())
    }

    /// Receives until `stop` fires: times deliveries, keeps a connect
    /// outstanding, counts failed replies.
    pub async fn receive(
        mut self,
        rec: &mut Recorder,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let frame = tokio::select! {
                f = self.stream.next() => f,
                _ = stop.changed() => break,
            };
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                _ => {
                    rec.errors += 1;
                    return;
                }
            };
            let now = now_us();
            let Ok(msgs) = serde_json::from_str::<Vec<Incoming>>(&text) else {
                rec.errors += 1;
                continue;
            };
            let mut reconnect = false;
            for m in msgs {
                match (m.successful, m.data) {
                    (None, Some(Probe { t: Some(t) })) => rec.record(now.saturating_sub(t)),
                    (Some(false), _) => rec.errors += 1,
                    _ => {}
                }
                if m.channel.as_deref() == Some("/meta/connect") {
                    reconnect = true;
                }
            }
            if reconnect && self.send_connect().await.is_err() {
                rec.errors += 1;
                return;
            }
        }
        let _ = self
            .send(json!([{"channel": "/meta/disconnect", "clientId": self.id}]))
            .await;
        let _ = self.sink.close().await;
    }

    /// Publishes at `rate` messages per second, cycling over `targets`,
    /// until `stop` fires; each message carries its send time and `pad`.
    /// Replies are read as they come (a refused publish counts as an
    /// error) and a connect is kept outstanding. Returns how many messages
    /// went to each target.
    pub async fn publish_loop(
        mut self,
        targets: &[String],
        rate: f64,
        pad: &str,
        rec: &mut Recorder,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<u64> {
        let mut sent = vec![0u64; targets.len()];
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut total = 0u64;
        let mut next = 0usize;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Catch up with the schedule: as many messages as are due.
                    let due = (start.elapsed().as_secs_f64() * rate) as u64;
                    while total < due {
                        let body = format!(
                            r#"[{{"channel":"{}","clientId":"{}","data":{{"t":{},"p":"{pad}"}}}}]"#,
                            targets[next], self.id, now_us()
                        );
                        if self.sink.feed(Message::text(body)).await.is_err() {
                            rec.errors += 1;
                            return sent;
                        }
                        sent[next] += 1;
                        total += 1;
                        next = (next + 1) % targets.len();
                    }
                    if self.sink.flush().await.is_err() {
                        rec.errors += 1;
                        return sent;
                    }
                }
                frame = self.stream.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(_)) => continue,
                        _ => {
                            rec.errors += 1;
                            return sent;
                        }
                    };
                    let msgs: Vec<Incoming> = serde_json::from_str(&text).unwrap_or_default();
                    for m in &msgs {
                        if m.successful == Some(false) {
                            rec.errors += 1;
                        }
                    }
                    if msgs.iter().any(|m| m.channel.as_deref() == Some("/meta/connect"))
                        && self.send_connect().await.is_err()
                    {
                        rec.errors += 1;
                        return sent;
                    }
                }
                _ = stop.changed() => break,
            }
        }
        let _ = self
            .send(json!([{"channel": "/meta/disconnect", "clientId": self.id}]))
            .await;
        sent
    }
}
