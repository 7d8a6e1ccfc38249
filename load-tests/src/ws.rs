//! Bayeux over WebSocket: a subscriber that keeps a `/meta/connect`
//! outstanding and times deliveries, and a publisher whose socket is shared
//! by a writer task (publishes, connects) and a reader task (replies).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::stats::Shared;
use crate::target::{ClientError, Stream as Connection, Target};
use crate::wire;

type Stream = WebSocketStream<Connection>;
const TYPE: &str = "websocket";
const WAIT: Duration = Duration::from_secs(30);

/// Small socket buffers: tungstenite's defaults are 128 KiB each way, and it
/// zero-fills the read buffer before every read, which would cost more than
/// the deliveries a generator is there to count.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

/// The upgrade request, with the target's `Origin` if it has one.
fn upgrade(
    target: &Target,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, ClientError> {
    let mut request = target.ws_url().into_client_request()?;
    if let Some(origin) = &target.origin {
        let origin = origin
            .parse()
            .map_err(|_| ClientError::Protocol(format!("--origin {origin:?}")))?;
        request.headers_mut().insert("origin", origin);
    }
    Ok(request)
}

/// One session on one socket, used by one task: not split, since splitting
/// puts a lock on every read and write.
pub struct WsClient {
    pub id: String,
    ws: Stream,
}

impl WsClient {
    /// Opens a socket, handshakes, and completes the first connect.
    pub async fn open(target: &Target) -> Result<Self, ClientError> {
        let (ws, _) = tokio::time::timeout(WAIT, async {
            let connection = target.connect().await?;
            Ok::<_, ClientError>(
                tokio_tungstenite::client_async_with_config(
                    upgrade(target)?,
                    connection,
                    Some(config()),
                )
                .await?,
            )
        })
        .await
        .map_err(|_| ClientError::Timeout("websocket connect"))??;
        let mut c = WsClient {
            id: String::new(),
            ws,
        };
        c.ws.send(Message::text(wire::handshake(TYPE))).await?;
        let reply = c.wait_for("/meta/handshake").await?;
        c.id = wire::field(&reply, "clientId").ok_or_else(|| {
            ClientError::Protocol(format!(
                "handshake refused: {}",
                String::from_utf8_lossy(&reply)
            ))
        })?;
        c.ws.send(Message::text(wire::first_connect(&c.id, TYPE)))
            .await?;
        c.wait_for("/meta/connect").await?;
        // The first connect is answered at once; the next one is the
        // outstanding connect that keeps the session alive.
        c.ws.send(Message::text(wire::connect(&c.id, TYPE))).await?;
        Ok(c)
    }

    /// Reads frames until one holds a reply on `channel`; returns that frame.
    async fn wait_for(&mut self, channel: &'static str) -> Result<Vec<u8>, ClientError> {
        let needle = format!("\"{channel}\"");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| ClientError::Timeout(channel))?
                .ok_or_else(|| ClientError::Protocol("socket closed".into()))??;
            if let Message::Text(text) = frame {
                if text.as_str().contains(&needle) {
                    return Ok(text.as_bytes().to_vec());
                }
            }
        }
    }

    pub async fn subscribe(&mut self, channels: &[String]) -> Result<(), ClientError> {
        self.ws
            .send(Message::text(wire::subscribe(&self.id, channels)))
            .await?;
        let reply = self.wait_for("/meta/subscribe").await?;
        if wire::scan(&reply).failures > 0 {
            return Err(ClientError::Protocol(format!(
                "subscribe refused: {}",
                String::from_utf8_lossy(&reply)
            )));
        }
        Ok(())
    }

    /// Receives until `stop` fires: times deliveries, sends the next connect
    /// whenever a connect reply arrives, counts failures.
    pub async fn run(mut self, rec: Shared, mut stop: tokio::sync::watch::Receiver<bool>) {
        let connect = wire::connect(&self.id, TYPE);
        loop {
            let frame = tokio::select! {
                f = self.ws.next() => f,
                _ = stop.changed() => break,
            };
            let scan = match frame {
                Some(Ok(Message::Text(text))) => wire::scan(text.as_bytes()),
                Some(Ok(_)) => continue,
                _ => {
                    rec.lock().errors += 1;
                    return;
                }
            };
            rec.lock().record_scan(&scan, wire::now_us());
            if scan.connect_reply && self.ws.send(Message::text(connect.clone())).await.is_err() {
                rec.lock().errors += 1;
                return;
            }
        }
        self.close().await;
    }

    pub async fn close(mut self) {
        let _ = self
            .ws
            .send(Message::text(wire::disconnect(&self.id)))
            .await;
        let _ = self.ws.close(None).await;
    }
}

/// A publishing session: one writer task owns the socket's sending half, so
/// publishes and the reader's connects never wait on each other.
pub struct WsPublisher {
    pub id: String,
    out: mpsc::UnboundedSender<Message>,
    writer: tokio::task::JoinHandle<()>,
    reader: tokio::task::JoinHandle<()>,
}

impl WsPublisher {
    pub async fn open(target: &Target, errors: Shared) -> Result<Self, ClientError> {
        let WsClient { id, ws } = WsClient::open(target).await?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut rx) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                if sink.feed(first).await.is_err() {
                    return;
                }
                while let Ok(more) = rx.try_recv() {
                    if sink.feed(more).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        let connect = Message::text(wire::connect(&id, TYPE));
        let reconnect = out.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                if let Message::Text(text) = frame {
                    let scan = wire::scan(text.as_bytes());
                    if scan.failures > 0 {
                        errors.lock().errors += scan.failures as u64;
                    }
                    if scan.connect_reply && reconnect.send(connect.clone()).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Self {
            id,
            out,
            writer,
            reader,
        })
    }

    pub fn send(&mut self, batch: String) -> Result<(), ClientError> {
        self.out
            .send(Message::text(batch))
            .map_err(|_| ClientError::Protocol("publisher socket closed".into()))
    }

    pub async fn close(self) {
        let _ = self.out.send(Message::text(wire::disconnect(&self.id)));
        drop(self.out);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.writer).await;
        self.reader.abort();
    }
}
