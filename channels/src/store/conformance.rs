//! The conformance suite every store backend must pass, written once and run
//! against each of them (`store_conformance!` generates one test per check).
//!
//! Each check works in collections of its own, named at random, so backends
//! that share one server (Redis, Cassandra) can run the checks in parallel.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng as _;

use super::{now_ms, IndexEntry, LogEntry, Store, StoreError, Write};

/// Opens a backend; opening it again reaches the same data, as a restarted
/// node would.
#[async_trait]
pub trait Harness: Send + Sync {
    async fn open(&self) -> Arc<dyn Store>;
}

fn collection(what: &str) -> String {
    let n: u64 = rand::random();
    format!("{what}_{n:016x}")
}

fn ix(name: &str, value: &str) -> IndexEntry {
    IndexEntry::new(name, value)
}

pub async fn create_get_delete(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("crud");
    assert_eq!(
        s.create(&c, "a", Write::new(b"one")).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        s.create(&c, "a", Write::new(b"two")).await.unwrap(),
        None,
        "id taken"
    );
    let r = s.get(&c, "a").await.unwrap().expect("created record");
    assert_eq!(
        (r.value.as_slice(), r.version, r.expires_at),
        (&b"one"[..], 1, None)
    );
    assert_eq!(s.get(&c, "b").await.unwrap(), None);
    assert_eq!(
        s.get(&collection("other"), "a").await.unwrap(),
        None,
        "collections are apart"
    );
    assert!(s.delete(&c, "a").await.unwrap());
    assert_eq!(s.get(&c, "a").await.unwrap(), None);
    assert!(
        !s.delete(&c, "a").await.unwrap(),
        "second delete finds nothing"
    );
    assert_eq!(
        s.create(&c, "a", Write::new(b"again")).await.unwrap(),
        Some(1),
        "id free after delete"
    );
}

pub async fn put_replaces_and_bumps_the_version(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("put");
    assert_eq!(s.put(&c, "k", Write::new(b"v1")).await.unwrap(), 1);
    assert_eq!(s.put(&c, "k", Write::new(b"v2")).await.unwrap(), 2);
    let r = s.get(&c, "k").await.unwrap().unwrap();
    assert_eq!((r.value, r.version), (b"v2".to_vec(), 2));
}

pub async fn update_is_compare_and_set(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("cas");
    assert_eq!(
        s.update(&c, "k", 1, Write::new(b"x")).await.unwrap(),
        None,
        "absent"
    );
    s.create(&c, "k", Write::new(b"v1")).await.unwrap();
    assert_eq!(
        s.update(&c, "k", 2, Write::new(b"x")).await.unwrap(),
        None,
        "wrong version"
    );
    assert_eq!(
        s.update(&c, "k", 1, Write::new(b"v2")).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        s.update(&c, "k", 1, Write::new(b"v3")).await.unwrap(),
        None,
        "stale version"
    );
    let r = s.get(&c, "k").await.unwrap().unwrap();
    assert_eq!((r.value, r.version), (b"v2".to_vec(), 2));
}

pub async fn values_are_bytes(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("bytes");
    let small: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xc3]).collect();
    let mut big = vec![0u8; 2 * 1024 * 1024];
    rand::rng().fill(&mut big[..]);
    for (id, value) in [("small", &small), ("big", &big), ("empty", &Vec::new())] {
        s.put(&c, id, Write::new(value)).await.unwrap();
        assert_eq!(&s.get(&c, id).await.unwrap().unwrap().value, value, "{id}");
    }
    // Ids are any text: separators the backends use themselves included.
    for id in ["a:b", "a/b", "é ü 中", "x\"y'z", "%00"] {
        s.put(&c, id, Write::new(id.as_bytes())).await.unwrap();
        assert_eq!(s.get(&c, id).await.unwrap().unwrap().value, id.as_bytes());
    }
}

pub async fn records_expire(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("ttl");
    let tags = [ix("tag", "t")];
    let short = Write::new(b"short")
        .ttl(Some(Duration::from_secs(1)))
        .indexes(&tags);
    let before = now_ms();
    assert_eq!(s.create(&c, "short", short).await.unwrap(), Some(1));
    s.create(
        &c,
        "long",
        Write::new(b"long")
            .ttl(Some(Duration::from_secs(600)))
            .indexes(&tags),
    )
    .await
    .unwrap();
    s.create(&c, "forever", Write::new(b"forever").indexes(&tags))
        .await
        .unwrap();
    let r = s
        .get(&c, "short")
        .await
        .unwrap()
        .expect("live before its TTL");
    let at = r.expires_at.expect("an expiry");
    assert!(
        at >= before + 900 && at <= now_ms() + 1100,
        "expires_at {at} vs now {}",
        now_ms()
    );
    assert_eq!(s.find(&c, "tag", "t", 10).await.unwrap().len(), 3);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(s.get(&c, "short").await.unwrap(), None, "expired");
    let mut found: Vec<String> = s
        .find(&c, "tag", "t", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    found.sort();
    assert_eq!(found, ["forever", "long"], "an expired record is not found");
    assert_eq!(s.count(&c, "tag", "t").await.unwrap(), 2, "nor counted");
    assert_eq!(
        s.update(&c, "short", 1, Write::new(b"x")).await.unwrap(),
        None,
        "expired: nothing to update"
    );
    assert!(
        !s.delete(&c, "short").await.unwrap(),
        "expired: nothing to delete"
    );
    assert_eq!(
        s.create(&c, "short", Write::new(b"new")).await.unwrap(),
        Some(1),
        "expired id is free"
    );
    assert_eq!(s.get(&c, "short").await.unwrap().unwrap().expires_at, None);
    assert!(s.get(&c, "long").await.unwrap().is_some());
}

pub async fn writes_set_or_clear_the_ttl(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("rettl");
    s.put(&c, "a", Write::new(b"1").ttl(Some(Duration::from_secs(1))))
        .await
        .unwrap();
    // A write without TTL keeps the record until it is deleted.
    assert_eq!(
        s.update(&c, "a", 1, Write::new(b"2")).await.unwrap(),
        Some(2)
    );
    s.put(&c, "b", Write::new(b"1")).await.unwrap();
    // A write with a TTL makes a lasting record expire.
    s.put(&c, "b", Write::new(b"2").ttl(Some(Duration::from_secs(1))))
        .await
        .unwrap();
    // Re-TTL pushes an expiry further out.
    s.put(&c, "d", Write::new(b"1").ttl(Some(Duration::from_secs(1))))
        .await
        .unwrap();
    s.put(&c, "d", Write::new(b"2").ttl(Some(Duration::from_secs(60))))
        .await
        .unwrap();
    // A new TTL with the same index entries: counts and lookups follow it.
    let entry = [IndexEntry::new("k", "v")];
    s.put(&c, "e", Write::new(b"1").indexes(&entry))
        .await
        .unwrap();
    s.put(
        &c,
        "e",
        Write::new(b"2")
            .indexes(&entry)
            .ttl(Some(Duration::from_secs(1))),
    )
    .await
    .unwrap();
    s.put(
        &c,
        "f",
        Write::new(b"1")
            .indexes(&entry)
            .ttl(Some(Duration::from_secs(1))),
    )
    .await
    .unwrap();
    s.put(&c, "f", Write::new(b"2").indexes(&entry))
        .await
        .unwrap();
    assert_eq!(s.count(&c, "k", "v").await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(s.count(&c, "k", "v").await.unwrap(), 1);
    let found: Vec<String> = s
        .find(&c, "k", "v", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(found, ["f"]);
    assert_eq!(
        s.get(&c, "a").await.unwrap().map(|r| r.value),
        Some(b"2".to_vec())
    );
    assert_eq!(s.get(&c, "b").await.unwrap(), None);
    assert_eq!(
        s.get(&c, "d").await.unwrap().map(|r| r.value),
        Some(b"2".to_vec())
    );
}

pub async fn find_follows_the_index_entries(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("find");
    let red = [ix("color", "red"), ix("size", "s")];
    let blue = [ix("color", "blue"), ix("size", "s")];
    s.create(&c, "1", Write::new(b"1").indexes(&red))
        .await
        .unwrap();
    s.create(&c, "2", Write::new(b"2").indexes(&red))
        .await
        .unwrap();
    s.create(&c, "3", Write::new(b"3").indexes(&blue))
        .await
        .unwrap();
    s.create(
        &collection("elsewhere"),
        "4",
        Write::new(b"4").indexes(&red),
    )
    .await
    .unwrap();

    let ids = |found: Vec<(String, super::Record)>| {
        let mut ids: Vec<String> = found.into_iter().map(|(id, _)| id).collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(s.find(&c, "color", "red", 10).await.unwrap()),
        ["1", "2"]
    );
    assert_eq!(
        ids(s.find(&c, "size", "s", 10).await.unwrap()),
        ["1", "2", "3"]
    );
    assert_eq!(s.find(&c, "size", "s", 2).await.unwrap().len(), 2, "limit");
    assert!(s.find(&c, "color", "green", 10).await.unwrap().is_empty());
    assert!(
        s.find(&c, "shape", "red", 10).await.unwrap().is_empty(),
        "the name counts"
    );
    let (id, rec) = s.find(&c, "color", "blue", 10).await.unwrap().remove(0);
    assert_eq!(
        (id.as_str(), rec.value.as_slice(), rec.version),
        ("3", &b"3"[..], 1)
    );

    // A write replaces the entries: 2 turns blue, 1 loses its entries.
    s.update(&c, "2", 1, Write::new(b"2'").indexes(&blue))
        .await
        .unwrap()
        .unwrap();
    s.put(&c, "1", Write::new(b"1'")).await.unwrap();
    assert!(s.find(&c, "color", "red", 10).await.unwrap().is_empty());
    assert_eq!(s.count(&c, "color", "red").await.unwrap(), 0);
    assert_eq!(s.count(&c, "color", "blue").await.unwrap(), 2);
    assert_eq!(
        ids(s.find(&c, "color", "blue", 10).await.unwrap()),
        ["2", "3"]
    );
    assert!(s.delete(&c, "3").await.unwrap());
    assert_eq!(ids(s.find(&c, "size", "s", 10).await.unwrap()), ["2"]);
    assert_eq!(
        s.count(&c, "size", "s").await.unwrap(),
        1,
        "count follows deletes"
    );
}

pub async fn concurrent_writers_lose_nothing(h: &dyn Harness) {
    let s = h.open().await;
    let c = Arc::new(collection("race"));
    // Every writer races for one id: exactly one creates it.
    let mut creators = Vec::new();
    for i in 0..16u8 {
        let (s, c) = (s.clone(), c.clone());
        creators.push(tokio::spawn(async move {
            s.create(&c, "once", Write::new(&[i])).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in creators {
        if t.await.unwrap().is_some() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "one create wins");

    // Read-modify-write increments with compare-and-set: none is lost.
    s.put(&c, "counter", Write::new(b"0")).await.unwrap();
    let (writers, each) = (8, 10);
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (s, c) = (s.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < each {
                let r = s.get(&c, "counter").await.unwrap().unwrap();
                let n: u64 = std::str::from_utf8(&r.value).unwrap().parse().unwrap();
                let next = (n + 1).to_string();
                if s.update(&c, "counter", r.version, Write::new(next.as_bytes()))
                    .await
                    .unwrap()
                    .is_some()
                {
                    done += 1;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = s.get(&c, "counter").await.unwrap().unwrap();
    assert_eq!(r.value, (writers * each).to_string().into_bytes());
    assert_eq!(r.version, 1 + (writers * each) as u64);
}

pub async fn reopening_keeps_the_data(h: &dyn Harness) {
    let c = collection("reopen");
    {
        let s = h.open().await;
        let tags = [ix("k", "v")];
        s.create(&c, "kept", Write::new(b"kept").indexes(&tags))
            .await
            .unwrap();
        s.create(
            &c,
            "ttl",
            Write::new(b"ttl")
                .ttl(Some(Duration::from_secs(600)))
                .indexes(&tags),
        )
        .await
        .unwrap();
        s.update(&c, "kept", 1, Write::new(b"kept2").indexes(&tags))
            .await
            .unwrap()
            .unwrap();
        let ordered = [IndexEntry::ordered("due", "all", 7)];
        s.put(&c, "due", Write::new(b"due").indexes(&ordered))
            .await
            .unwrap();
        s.append(&c, "log", b"first", None).await.unwrap();
    }
    let s = h.open().await;
    let r = s
        .get(&c, "kept")
        .await
        .unwrap()
        .expect("kept across reopen");
    assert_eq!((r.value, r.version), (b"kept2".to_vec(), 2));
    assert!(s
        .get(&c, "ttl")
        .await
        .unwrap()
        .unwrap()
        .expires_at
        .is_some());
    assert_eq!(s.find(&c, "k", "v", 10).await.unwrap().len(), 2);
    assert_eq!(
        s.find_ordered(&c, "due", "all", 7, 10).await.unwrap().len(),
        1
    );
    assert_eq!(s.read_log(&c, "log", 1, 10).await.unwrap().len(), 1);
    assert_eq!(s.append(&c, "log", b"second", None).await.unwrap(), 2);
}

pub async fn bad_keys_are_refused(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("keys");
    let long = "x".repeat(super::MAX_KEY_LEN + 1);
    assert!(s.put(&c, "", Write::new(b"x")).await.is_err(), "empty id");
    assert!(s.put(&c, &long, Write::new(b"x")).await.is_err(), "long id");
    let tags = [ix("k", &long)];
    assert!(
        s.put(&c, "ok", Write::new(b"x").indexes(&tags))
            .await
            .is_err(),
        "long index value"
    );
    assert_eq!(
        s.get(&c, "ok").await.unwrap(),
        None,
        "a refused write stores nothing"
    );
}

pub async fn logs_append_in_order_and_read_by_range(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("log");
    assert_eq!(
        s.read_log(&c, "chat", 1, 10).await.unwrap(),
        vec![],
        "an empty log"
    );
    for (i, v) in [b"a", b"b", b"c", b"d"].iter().enumerate() {
        assert_eq!(s.append(&c, "chat", *v, None).await.unwrap(), i as u64 + 1);
    }
    let values = |entries: Vec<LogEntry>| -> Vec<(u64, Vec<u8>)> {
        entries.into_iter().map(|e| (e.index, e.value)).collect()
    };
    assert_eq!(
        values(s.read_log(&c, "chat", 2, 2).await.unwrap()),
        vec![(2, b"b".to_vec()), (3, b"c".to_vec())],
        "from an index, at most a limit"
    );
    assert_eq!(
        values(s.read_log(&c, "chat", 4, 10).await.unwrap()),
        vec![(4, b"d".to_vec())]
    );
    assert!(
        s.read_log(&c, "chat", 5, 10).await.unwrap().is_empty(),
        "past the end"
    );
    assert_eq!(
        s.read_log(&c, "chat", 0, 10).await.unwrap().len(),
        4,
        "0 reads from the start"
    );
    assert!(
        s.read_log(&c, "other", 1, 10).await.unwrap().is_empty(),
        "logs are apart"
    );
    assert!(
        s.read_log(&collection("log"), "chat", 1, 10)
            .await
            .unwrap()
            .is_empty(),
        "collections are apart"
    );
    assert!(s.delete_log(&c, "chat").await.unwrap());
    assert!(
        !s.delete_log(&c, "chat").await.unwrap(),
        "second delete finds nothing"
    );
    assert!(s.read_log(&c, "chat", 1, 10).await.unwrap().is_empty());
    assert_eq!(
        s.append(&c, "chat", b"again", None).await.unwrap(),
        1,
        "a deleted log starts over"
    );
    let bytes: Vec<u8> = (0..=255).collect();
    assert_eq!(s.append(&c, "chat", &bytes, None).await.unwrap(), 2);
    assert_eq!(
        s.read_log(&c, "chat", 2, 1).await.unwrap()[0].value,
        bytes,
        "values are bytes"
    );
    assert!(s.append(&c, "", b"x", None).await.is_err(), "empty log id");
}

pub async fn log_entries_expire(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("logttl");
    let short = Some(Duration::from_millis(1500));
    s.append(&c, "gone", b"1", short).await.unwrap();
    s.append(&c, "gone", b"2", short).await.unwrap();
    s.append(&c, "kept", b"1", short).await.unwrap();
    s.append(&c, "kept", b"2", Some(Duration::from_secs(600)))
        .await
        .unwrap();
    assert_eq!(s.read_log(&c, "gone", 1, 10).await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        s.read_log(&c, "gone", 1, 10).await.unwrap().is_empty(),
        "every entry expired"
    );
    let kept = s.read_log(&c, "kept", 1, 10).await.unwrap();
    assert_eq!(
        kept.last().map(|e| e.index),
        Some(2),
        "the live entry is read"
    );
    assert_eq!(
        s.append(&c, "kept", b"3", None).await.unwrap(),
        3,
        "and the log goes on"
    );
}

pub async fn concurrent_appenders_never_lose_reorder_or_duplicate(h: &dyn Harness) {
    let s = h.open().await;
    let c = Arc::new(collection("lograce"));
    let (writers, each) = (8u64, 12u64);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (s, c) = (s.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..each {
                let value = format!("{w}:{i}");
                got.push((
                    s.append(&c, "chat", value.as_bytes(), None).await.unwrap(),
                    value,
                ));
            }
            got
        }));
    }
    let mut given = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        // One writer's appends get increasing indexes, in its order.
        assert!(got.windows(2).all(|p| p[0].0 < p[1].0), "{got:?}");
        given.extend(got);
    }
    given.sort();
    let total = writers * each;
    assert_eq!(
        given.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>(),
        "every index once"
    );
    let read = s
        .read_log(&c, "chat", 1, total as usize + 10)
        .await
        .unwrap();
    let read: Vec<(u64, String)> = read
        .into_iter()
        .map(|e| (e.index, String::from_utf8(e.value).unwrap()))
        .collect();
    assert_eq!(read, given, "each value at the index its append was given");
}

fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<LogEntry> {
    range
        .map(|index| LogEntry {
            index,
            value: format!("e{index}").into_bytes(),
        })
        .collect()
}

pub async fn logs_written_at_reserved_indexes_hold_each_once(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("logwrite");
    let read = |s: Arc<dyn Store>, c: String| async move {
        s.read_log(&c, "chat", 1, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.index, String::from_utf8(e.value).unwrap()))
            .collect::<Vec<_>>()
    };
    s.write_log(&c, "chat", &entries(1..=2), None)
        .await
        .unwrap();
    let mut overlap = entries(2..=3);
    overlap[0].value = b"other".to_vec();
    s.write_log(&c, "chat", &overlap, None).await.unwrap();
    let want: Vec<(u64, String)> = (1..=3).map(|i| (i, format!("e{i}"))).collect();
    assert_eq!(
        read(s.clone(), c.clone()).await,
        want,
        "what continues the log is added, an index it holds keeps its value"
    );
    s.write_log(&c, "chat", &entries(1..=3), None)
        .await
        .unwrap();
    s.write_log(&c, "chat", &[], None).await.unwrap();
    assert_eq!(
        read(s.clone(), c.clone()).await,
        want,
        "repeats change nothing"
    );
    assert!(
        matches!(
            s.write_log(&c, "chat", &entries(5..=6), None).await,
            Err(StoreError::Invalid(_))
        ),
        "a gap is refused"
    );
    let mut jumbled = entries(4..=6);
    jumbled.swap(1, 2);
    assert!(
        s.write_log(&c, "chat", &jumbled, None).await.is_err(),
        "indexes out of order are refused"
    );
    assert!(
        s.write_log(&c, "chat", &entries(0..=0), None)
            .await
            .is_err(),
        "there is no index 0"
    );
    assert_eq!(
        read(s.clone(), c.clone()).await,
        want,
        "a refused write stores nothing"
    );
    assert_eq!(
        s.append(&c, "chat", b"e4", None).await.unwrap(),
        4,
        "an append continues a written log"
    );
    assert!(
        s.write_log(&c, "", &entries(1..=1), None).await.is_err(),
        "empty log id"
    );
}

pub async fn racing_log_writers_store_the_same_entries_once(h: &dyn Harness) {
    let s = h.open().await;
    let c = Arc::new(collection("logwriters"));
    let (writers, total) = (6, 30u64);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (s, c) = (s.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            // Each writer stores every run of three it sees reserved, as
            // racing chat writers flush the same pending events.
            for end in (1..=total).skip(w % 3) {
                let start = end.saturating_sub(2).max(1);
                s.write_log(&c, "chat", &entries(start..=end), None)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let read = s.read_log(&c, "chat", 1, 100).await.unwrap();
    assert_eq!(read, entries(1..=total), "every index once, in order");
}

pub async fn kept_logs_outlive_their_entries_ttl(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("logkeep");
    let short = Some(Duration::from_millis(1500));
    for log in ["kept", "gone"] {
        s.write_log(&c, log, &entries(1..=3), short).await.unwrap();
    }
    s.keep_log(&c, "kept", Duration::from_secs(600))
        .await
        .unwrap();
    s.keep_log(&c, "none", Duration::from_secs(600))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        s.read_log(&c, "kept", 1, 10).await.unwrap(),
        entries(1..=3),
        "kept"
    );
    assert!(
        s.read_log(&c, "gone", 1, 10).await.unwrap().is_empty(),
        "not kept: expired"
    );
    assert!(s.read_log(&c, "none", 1, 10).await.unwrap().is_empty());
    s.write_log(&c, "gone", &entries(1..=1), None)
        .await
        .unwrap();
    assert_eq!(
        s.read_log(&c, "gone", 1, 10).await.unwrap().len(),
        1,
        "an expired log starts over"
    );
}

pub async fn find_ordered_gives_the_oldest_first(h: &dyn Harness) {
    let s = h.open().await;
    let c = collection("ordered");
    for (id, order) in [("c", 30), ("a", 10), ("d", 40), ("b", 20)] {
        let tags = [IndexEntry::ordered("queued", "q1", order), ix("open", "1")];
        s.put(&c, id, Write::new(id.as_bytes()).indexes(&tags))
            .await
            .unwrap();
    }
    let other = [IndexEntry::ordered("queued", "q2", 5)];
    s.put(&c, "z", Write::new(b"z").indexes(&other))
        .await
        .unwrap();
    let ids = |found: Vec<(String, crate::store::Record)>| {
        found.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(s
            .find_ordered(&c, "queued", "q1", u64::MAX, 3)
            .await
            .unwrap()),
        ["a", "b", "c"],
        "oldest first, at most the limit"
    );
    assert_eq!(
        ids(s.find_ordered(&c, "queued", "q1", 25, 10).await.unwrap()),
        ["a", "b"],
        "only those due by then"
    );
    assert!(
        s.find_ordered(&c, "open", "1", u64::MAX, 10)
            .await
            .unwrap()
            .is_empty(),
        "entries without an order are not in it"
    );
    assert_eq!(
        s.find(&c, "queued", "q1", 10).await.unwrap().len(),
        4,
        "find sees ordered entries too"
    );
    assert_eq!(s.count(&c, "queued", "q1").await.unwrap(), 4);
    // A new order moves the record; a write without the entry removes it.
    let later = [IndexEntry::ordered("queued", "q1", 50)];
    s.put(&c, "a", Write::new(b"a").indexes(&later))
        .await
        .unwrap();
    s.put(&c, "b", Write::new(b"b")).await.unwrap();
    s.delete(&c, "c").await.unwrap();
    assert_eq!(
        ids(s
            .find_ordered(&c, "queued", "q1", u64::MAX, 10)
            .await
            .unwrap()),
        ["d", "a"]
    );
    // Expired records are never found.
    let soon = [IndexEntry::ordered("queued", "q3", 1)];
    s.put(
        &c,
        "e",
        Write::new(b"e")
            .ttl(Some(Duration::from_millis(1200)))
            .indexes(&soon),
    )
    .await
    .unwrap();
    s.put(
        &c,
        "f",
        Write::new(b"f").indexes(&[IndexEntry::ordered("queued", "q3", 2)]),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        ids(s
            .find_ordered(&c, "queued", "q3", u64::MAX, 1)
            .await
            .unwrap()),
        ["f"],
        "an expired one takes no place in the limit"
    );
}

/// One `#[tokio::test]` per check, against the harness an async function
/// makes (`None`: the backend is not available here, and the test says so).
#[macro_export]
macro_rules! store_conformance {
    ($make:path) => {
        $crate::store_conformance!(@tests $make;
            create_get_delete, put_replaces_and_bumps_the_version, update_is_compare_and_set,
            values_are_bytes, records_expire, writes_set_or_clear_the_ttl,
            find_follows_the_index_entries, concurrent_writers_lose_nothing,
            reopening_keeps_the_data, bad_keys_are_refused,
            logs_append_in_order_and_read_by_range, log_entries_expire,
            logs_written_at_reserved_indexes_hold_each_once,
            racing_log_writers_store_the_same_entries_once, kept_logs_outlive_their_entries_ttl,
            concurrent_appenders_never_lose_reorder_or_duplicate,
            find_ordered_gives_the_oldest_first);
    };
    (@tests $make:path; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                match $make().await {
                    Some(harness) => $crate::store::conformance::$check(&*harness).await,
                    None => eprintln!("SKIPPED {}: backend not available here", stringify!($check)),
                }
            }
        )*
    };
}
