//! A TCP proxy that cuts connections at random points of the exchange:
//! each connection it accepts may carry a random number of bytes towards
//! the server and towards the client; the byte that would go past either
//! is not sent and both sides are closed at once (mid-frame, mid-upgrade,
//! between messages: wherever the number falls). After `cuts` cuts it only
//! forwards. Seeded, so a failing run can be replayed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct CuttingProxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// The most bytes a connection may carry each way before it is cut.
const MOST_TO_CLIENT: usize = 8192;
const MOST_TO_SERVER: usize = 2048;

impl CuttingProxy {
    pub async fn start(target: SocketAddr, cuts: usize, seed: u64) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let cut = Arc::new(AtomicUsize::new(0));
        let counted = cut.clone();
        let task = tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            while let Ok((client, _)) = listener.accept().await {
                let budgets = if counted.load(Ordering::Relaxed) < cuts {
                    (
                        rng.random_range(0..=MOST_TO_SERVER),
                        rng.random_range(0..=MOST_TO_CLIENT),
                    )
                } else {
                    (usize::MAX, usize::MAX)
                };
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    if forward(client, server, budgets).await {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        CuttingProxy { addr, cut, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Connections cut so far.
    pub fn cut(&self) -> usize {
        self.cut.load(Ordering::Relaxed)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards both ways until either side closes or a budget runs out;
/// whether it was cut. Returning drops (closes) both sockets.
async fn forward(client: TcpStream, server: TcpStream, (up, down): (usize, usize)) -> bool {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    tokio::select! {
        cut = copy(&mut client_read, &mut server_write, up) => cut,
        cut = copy(&mut server_read, &mut client_write, down) => cut,
    }
}

/// Copies until EOF or an error (false), or until `budget` bytes went and
/// more came (true: the rest is not sent).
async fn copy(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    mut budget: usize,
) -> bool {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let pass = n.min(budget);
        if to.write_all(&buf[..pass]).await.is_err() {
            return false;
        }
        if pass < n {
            return true;
        }
        budget -= pass;
    }
}
