//! The SQLite file on a file system that fills up (a 4 MiB tmpfs the test
//! mounts): writes that need space are refused in each API's own error
//! shape (the Storage API's 503 `StorageExceptionUnavailable`, Chat API
//! v2's `statusCode` 1, "try again"), what was stored reads back intact,
//! also after a restart, and writes succeed again as soon as there is room.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::Server;

/// A small tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("temporary folder");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root: {status}");
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system has no room left.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).and_then(|_| file.flush()).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

const SVC: &str = "/genesys/2/chat/customer-support";

async fn store(s: &Server, value: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(s.url("/genesys/1/storage/3600"))
        .form(&[("key", value)])
        .send()
        .await
        .expect("request");
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn read(s: &Server, id: &str) -> Value {
    let r = reqwest::get(s.url(&format!("/genesys/1/storage/{id}")))
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("JSON")
}

async fn chat(s: &Server, path: &str, form: &[(&str, &str)]) -> Value {
    let r = reqwest::Client::new()
        .post(s.url(&format!("{SVC}{path}")))
        .form(form)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_damages_nothing_and_recovers() {
    let disk = SmallDisk::mount("4m");
    // A chat request whose user data needs room (more than one request
    // may carry as shipped).
    let mut server = Server::start_with_data(
        disk.path(),
        &[("GMSHUB__CHAT__MAX_MESSAGE_SIZE", "1048576")],
    );

    // Stored before the disk fills.
    let (status, kept) = store(&server, "kept").await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    let kept = kept["id"].as_str().expect("id").to_owned();
    let started = chat(&server, "", &[("nickname", "Ann")]).await;
    assert_eq!(started["statusCode"], 0, "{started}");
    let chat_id = started["chatId"].as_str().expect("chatId").to_owned();
    let secure_key = started["secureKey"].as_str().expect("secureKey").to_owned();
    let user_id = started["userId"].as_str().expect("userId").to_owned();
    let who = [
        ("userId", user_id.as_str()),
        ("secureKey", secure_key.as_str()),
        ("alias", "1"),
    ];
    let mut message = who.to_vec();
    message.push(("message", "before the disk filled"));
    let sent = chat(&server, &format!("/{chat_id}/send"), &message).await;
    assert_eq!(sent["statusCode"], 0, "{sent}");

    let filler = disk.fill();
    // A value that needs room the disk no longer has (SQLite may still
    // fit a small write into space its files already hold).
    let big = "x".repeat(256 * 1024);
    let (status, refused) = store(&server, &big).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    assert_eq!(
        refused["exception"],
        "com.genesyslab.gsg.services.storage.exceptions.StorageExceptionUnavailable"
    );
    assert_eq!(refused["message"], "the store is unavailable; try again");
    let user_data = "y".repeat(300 * 1024);
    let refused = chat(
        &server,
        "",
        &[("nickname", "Bo"), ("userData[notes]", &user_data)],
    )
    .await;
    assert_eq!(refused["statusCode"], 1, "{refused}");
    assert_eq!(refused["errors"][0]["code"], 106, "{refused}");
    assert!(server.output().contains("disk is full"), "the log says why");

    // Reads still work, and find what was there.
    assert_eq!(read(&server, &kept).await["key"], "kept");
    let transcript = chat(&server, &format!("/{chat_id}/refresh"), &who).await;
    assert_eq!(transcript["statusCode"], 0, "{transcript}");
    let texts: Vec<&str> = transcript["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(texts.contains(&"before the disk filled"), "{transcript}");

    // Room again: writes succeed at once.
    std::fs::remove_file(filler).expect("remove the filler");
    let (status, again) = store(&server, &big).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let again = again["id"].as_str().expect("id").to_owned();
    let mut after = who.to_vec();
    after.push(("message", "after"));
    assert_eq!(
        chat(&server, &format!("/{chat_id}/send"), &after).await["statusCode"],
        0
    );

    // And the file is whole: a restart on it reads everything back.
    assert!(server.terminate(Duration::from_secs(10)).is_some());
    let server = Server::start_with_data(disk.path(), &[]);
    assert_eq!(read(&server, &kept).await["key"], "kept");
    assert_eq!(
        read(&server, &again).await["key"].as_str().map(str::len),
        Some(big.len())
    );
    let transcript = chat(&server, &format!("/{chat_id}/refresh"), &who).await;
    let count = transcript["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["text"] == "before the disk filled" || m["text"] == "after")
        .count();
    assert_eq!(count, 2, "{transcript}");
}
