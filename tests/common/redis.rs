//! A real `redis-server` for a test: started on a free loopback port in a
//! temporary folder, killed when dropped. Without persistence, or (for the
//! fault tests, which kill and restart it) with an append-only file synced
//! on every write, as a site that keeps its store in Redis runs it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    durable: bool,
    /// An address it listens on besides loopback.
    also: Option<String>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(false, None)
    }

    /// With `appendonly yes` and `appendfsync always`: what it acknowledged
    /// survives a SIGKILL.
    pub fn start_durable() -> RedisServer {
        Self::start_with(true, None)
    }

    /// Durable, and listening on `ip` too (a test network's address).
    pub fn start_durable_on(ip: &str) -> RedisServer {
        Self::start_with(true, Some(ip.to_owned()))
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and folder (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = spawn(
                self.port,
                self.dir.path(),
                self.durable,
                self.also.as_deref(),
            );
            if wait_for(&mut child, self.port) {
                self.child = child;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start again"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_with(durable: bool, also: Option<String>) -> RedisServer {
        // A free port is free only until something binds it: two tests
        // starting at once may pick the same one, and the loser's redis
        // exits while its test talks to the winner's. So the one answering
        // must be ours (its process id), or we try another port.
        for _ in 0..10 {
            if let Some(server) = Self::try_start(durable, also.clone()) {
                return server;
            }
        }
        panic!("redis-server did not start on a free port");
    }

    fn try_start(durable: bool, also: Option<String>) -> Option<RedisServer> {
        let dir = tempfile::tempdir().expect("temporary folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut child = spawn(port, dir.path(), durable, also.as_deref());
        wait_for(&mut child, port).then_some(RedisServer {
            child,
            port,
            dir,
            durable,
            also,
        })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its URL at the other address it listens on.
    pub fn url_on(&self, ip: &str) -> String {
        format!("redis://{ip}:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(port: u16, dir: &std::path::Path, durable: bool, also: Option<&str>) -> Child {
    let persistence: &[&str] = if durable {
        &["--appendonly", "yes", "--appendfsync", "always"]
    } else {
        &["--appendonly", "no"]
    };
    let bind = match also {
        Some(ip) => format!("127.0.0.1 {ip}"),
        None => "127.0.0.1".to_owned(),
    };
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", &bind, "--save", ""])
        .args(["--protected-mode", "no"])
        .args(persistence)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server (the README's test command installs it)")
}

/// Whether `child` came to answer on `port` (another process answering
/// there is a lost race for the port: `child` is killed).
fn wait_for(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = process_on(port) {
            if pid == child.id() {
                return true;
            }
        }
        if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The process id of the redis-server answering on `port`, if one does.
fn process_on(port: u16) -> Option<u32> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    tcp.write_all(b"INFO server\r\n").ok()?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("process_id:") || !answer.ends_with(b"\r\n") {
        let n = tcp.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    let line = text.lines().find(|l| l.starts_with("process_id:"))?;
    line["process_id:".len()..].trim().parse().ok()
}
