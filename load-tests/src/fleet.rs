//! A fleet of subscribing clients, in this process or in worker processes
//! (one process may hold about 19 900 sockets here: the open-files limit of
//! 20 000 cannot be raised). A worker speaks a line protocol on its stdio:
//! it prints `ready {..}` once its clients are subscribed, then answers
//! `take` with `report {..}` (the figures since the last take) and exits on
//! `stop`.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::stats::{Recorder, Shared, WireRecorder};
use crate::target::{Subscriber, Target, Transport};

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct Ready {
    pub connected: usize,
    pub failed: usize,
}

/// Subscribers living in this process.
pub struct LocalFleet {
    recs: Vec<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub ready: Ready,
}

impl LocalFleet {
    /// Opens one client per entry of `channels` (subscribed to that list,
    /// connected to the targets in turn), at most `concurrency` opening at
    /// once, and returns when all are subscribed or have failed.
    pub async fn start(
        targets: &[Target],
        transport: Transport,
        channels: Vec<Vec<String>>,
        concurrency: usize,
        label: &str,
    ) -> LocalFleet {
        let total = channels.len();
        let gate = Arc::new(Semaphore::new(concurrency.max(1)));
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
        let mut recs = Vec::with_capacity(total);
        let mut tasks = Vec::with_capacity(total);
        for (i, list) in channels.into_iter().enumerate() {
            let rec = Shared::default();
            recs.push(rec.clone());
            let target = targets[i % targets.len()].clone();
            let gate = gate.clone();
            let stop = stop_rx.clone();
            let ready = ready_tx.clone();
            tasks.push(tokio::spawn(async move {
                let permit = gate.acquire_owned().await.expect("semaphore");
                let opened = async {
                    let mut c = Subscriber::open(&target, transport).await?;
                    if !list.is_empty() {
                        c.subscribe(&list).await?;
                    }
                    Ok::<_, crate::target::ClientError>(c)
                }
                .await;
                drop(permit);
                match opened {
                    Ok(c) => {
                        let _ = ready.send(Ok(()));
                        c.run(rec, stop).await;
                    }
                    Err(e) => {
                        rec.lock().errors += 1;
                        let _ = ready.send(Err(e.to_string()));
                    }
                }
            }));
        }
        drop(ready_tx);
        let mut r = Ready::default();
        let mut last = Instant::now();
        while r.connected + r.failed < total {
            match ready_rx.recv().await {
                Some(Ok(())) => r.connected += 1,
                Some(Err(e)) => {
                    if r.failed == 0 {
                        eprintln!("{label}: a client failed: {e}");
                    }
                    r.failed += 1;
                }
                None => break,
            }
            if last.elapsed() > Duration::from_secs(1) {
                eprintln!(
                    "{label}: {}/{total} connected, {} failed",
                    r.connected, r.failed
                );
                last = Instant::now();
            }
        }
        LocalFleet {
            recs,
            stop,
            tasks,
            ready: r,
        }
    }

    /// Figures since the last take.
    pub fn take(&self) -> Recorder {
        let mut all = Recorder::default();
        for rec in &self.recs {
            all.merge(&rec.take());
        }
        all
    }

    pub async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Subscribers living in a worker process.
pub struct RemoteFleet {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    pub ready: Ready,
}

impl RemoteFleet {
    /// Starts this program as a worker with `args` and waits for `ready`.
    pub async fn spawn(args: Vec<String>) -> std::io::Result<RemoteFleet> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut fleet = RemoteFleet {
            child,
            stdin,
            lines,
            ready: Ready::default(),
        };
        let line = fleet.expect("ready").await?;
        fleet.ready = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        Ok(fleet)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn expect(&mut self, word: &str) -> std::io::Result<String> {
        while let Some(line) = self.lines.next_line().await? {
            if let Some(rest) = line.strip_prefix(word) {
                return Ok(rest.trim().to_owned());
            }
        }
        Err(std::io::Error::other(format!(
            "worker ended before '{word}'"
        )))
    }

    pub async fn take(&mut self) -> std::io::Result<Recorder> {
        self.stdin.write_all(b"take\n").await?;
        let line = self.expect("report").await?;
        let wire: WireRecorder = serde_json::from_str(&line).map_err(std::io::Error::other)?;
        Ok(Recorder::from_wire(&wire))
    }

    pub async fn stop(mut self) {
        let _ = self.stdin.write_all(b"stop\n").await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The worker side of the protocol: runs `fleet` until told to stop.
pub async fn serve_worker(fleet: LocalFleet) -> std::io::Result<()> {
    let mut out = tokio::io::stdout();
    out.write_all(format!("ready {}\n", serde_json::to_string(&fleet.ready)?).as_bytes())
        .await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "take" => {
                let wire = fleet.take().to_wire();
                out.write_all(format!("report {}\n", serde_json::to_string(&wire)?).as_bytes())
                    .await?;
                out.flush().await?;
            }
            "stop" => break,
            _ => {}
        }
    }
    fleet.stop().await;
    Ok(())
}

/// Every subscriber of a run, wherever it lives.
pub enum Fleet {
    Local(LocalFleet),
    Remote(Vec<RemoteFleet>),
}

impl Fleet {
    pub fn ready(&self) -> Ready {
        match self {
            Fleet::Local(f) => f.ready,
            Fleet::Remote(fs) => fs.iter().fold(Ready::default(), |a, f| Ready {
                connected: a.connected + f.ready.connected,
                failed: a.failed + f.ready.failed,
            }),
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        match self {
            Fleet::Local(_) => Vec::new(),
            Fleet::Remote(fs) => fs.iter().filter_map(RemoteFleet::pid).collect(),
        }
    }

    pub async fn take(&mut self) -> Recorder {
        match self {
            Fleet::Local(f) => f.take(),
            Fleet::Remote(fs) => {
                let mut all = Recorder::default();
                for f in fs.iter_mut() {
                    match f.take().await {
                        Ok(r) => all.merge(&r),
                        Err(e) => {
                            eprintln!("worker lost: {e}");
                            all.errors += 1;
                        }
                    }
                }
                all
            }
        }
    }

    pub async fn stop(self) {
        match self {
            Fleet::Local(f) => f.stop().await,
            Fleet::Remote(fs) => {
                for f in fs {
                    f.stop().await;
                }
            }
        }
    }
}
