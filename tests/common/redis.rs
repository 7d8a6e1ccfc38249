//! A real `redis-server` for a test: started on a free loopback port with
//! no persistence, in a temporary folder, killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        // A free port is free only until something binds it: two tests
        // starting at once may pick the same one, and the loser's redis
        // exits while its test talks to the winner's. So the one answering
        // must be ours (its process id), or we try another port.
        for _ in 0..10 {
            if let Some(server) = Self::try_start() {
                return server;
            }
        }
        panic!("redis-server did not start on a free port");
    }

    fn try_start() -> Option<RedisServer> {
        let dir = tempfile::tempdir().expect("temporary folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (the README's test command installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = process_on(port) {
                if pid == child.id() {
                    return Some(RedisServer {
                        child,
                        port,
                        _dir: dir,
                    });
                }
            }
            if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
