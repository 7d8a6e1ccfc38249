//! The engine's behaviour over a store: races for a waiting chat, concurrent
//! writers, an agent leaving.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::chats::FLUSH_EVENTS;
use super::model::CLIENT_ID;
use super::routing::QUEUE_PAGE;
use super::*;
use crate::store::MemoryStore;

fn chats() -> Chats {
    let mut services = ChatServices::default();
    services
        .named
        .insert("s".into(), ChatServiceOptions::default());
    // Nobody reads the changes here.
    Chats::new(Arc::new(MemoryStore::default()), services).0
}

fn request(nickname: &str) -> ChatRequest {
    ChatRequest {
        nickname: Some(nickname.into()),
        ..Default::default()
    }
}

fn creds(chat: &ChatSession) -> Credentials {
    Credentials {
        user_id: Some(chat.user_id.clone()),
        secure_key: Some(chat.secure_key.clone()),
        alias: None,
    }
}

/// Two agents race for one waiting chat: exactly one gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_wins_a_waiting_chat() {
    let chats = chats();
    let (id, _) = chats.request("s", request("c")).await.unwrap();
    let queues = vec![DEFAULT_QUEUE.to_owned()];
    let mut tasks = Vec::new();
    for agent in ["a1", "a2", "a3", "a4"] {
        let (chats, queues) = (chats.clone(), queues.clone());
        tasks.push(tokio::spawn(async move {
            chats
                .take_next(agent, agent, PartyType::Agent, &queues)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if let Some((won, _)) = t.await.unwrap() {
            assert_eq!(won, id);
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let chat = chats.read_unchecked(&id).await.unwrap();
    assert_eq!(chat.participants.len(), 2);
    assert_eq!(
        chat.next_position(),
        3,
        "one join each: customer, one agent"
    );
}

/// Customer and agent write at once: every event lands, indexes in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_messages_all_land_in_order() {
    let chats = chats();
    let (id, chat) = chats.request("s", request("c")).await.unwrap();
    chats
        .take_next("a", "A", PartyType::Agent, &[DEFAULT_QUEUE.to_owned()])
        .await
        .unwrap();
    let c = creds(&chat);
    let (c1, c2) = (chats.clone(), chats.clone());
    let (id1, id2) = (id.clone(), id.clone());
    let customer = tokio::spawn(async move {
        for i in 0..20 {
            let send = Action::Send {
                text: format!("c{i}"),
                message_type: None,
            };
            c1.client("s", &id1, &c, send).await.unwrap();
        }
    });
    let agent = tokio::spawn(async move {
        for i in 0..20 {
            let send = Action::Send {
                text: format!("a{i}"),
                message_type: None,
            };
            c2.agent(&id2, "a", send).await.unwrap();
        }
    });
    customer.await.unwrap();
    agent.await.unwrap();
    let chat = chats.read_unchecked(&id).await.unwrap();
    assert!(chat.logged > 0, "most events are in the log by now");
    let transcript = chats.transcript(&id, &chat, 1).await.unwrap();
    let messages: Vec<&Event> = transcript
        .iter()
        .filter(|e| e.kind == EventType::Message)
        .collect();
    assert_eq!(messages.len(), 40);
    for (i, e) in transcript.iter().enumerate() {
        assert_eq!(e.index as usize, i + 1);
    }
    let customer_order: Vec<&str> = messages
        .iter()
        .filter(|e| e.from.kind == PartyType::Client)
        .map(|e| e.text.as_deref().unwrap())
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    assert_eq!(customer_order, expected);
}

#[tokio::test]
async fn the_last_agent_leaving_ends_the_chat() {
    let chats = chats();
    let (id, _) = chats.request("s", request("c")).await.unwrap();
    chats
        .take_next("a", "A", PartyType::Agent, &[DEFAULT_QUEUE.to_owned()])
        .await
        .unwrap();
    let chat = chats.agent(&id, "a", Action::Leave).await.unwrap();
    assert!(chat.ended());
    assert!(chats.of_agent("a").await.unwrap().is_empty());
}

/// A file lives as long as its chat: a write of the chat that would outlive
/// the file renews it.
#[tokio::test]
async fn files_are_kept_while_their_chat_goes_on() {
    use std::time::Duration;

    use crate::store::now_ms;

    let chats = chats();
    let (id, chat) = chats.request("s", request("c")).await.unwrap();
    let c = creds(&chat);
    let (file_id, _) = chats
        .upload(
            "s",
            &id,
            &c,
            "a.txt",
            "text/plain",
            b"hello".to_vec(),
            Default::default(),
        )
        .await
        .unwrap();
    // As if the chat had gone on for most of its files' lifetime.
    let file = chats.files().get(&file_id).await.unwrap().unwrap().value;
    let soon = Duration::from_millis(300);
    chats
        .files()
        .put(&file_id, &file, Some(soon))
        .await
        .unwrap();
    chats
        .sessions
        .modify(
            &id,
            |_| Some(Duration::from_secs(60)),
            |chat| {
                chat.kept_until = Some(now_ms() + 300);
                Ok::<_, ChatError>(())
            },
        )
        .await
        .unwrap();
    let send = Action::Send {
        text: "still here".into(),
        message_type: None,
    };
    chats.client("s", &id, &c, send).await.unwrap();
    tokio::time::sleep(soon * 2).await;
    let kept = chats.download("s", &id, &c, &file_id).await.unwrap();
    assert_eq!(kept.data, b"hello");
}

/// What a customer controls counts against the chat's limits: fields are
/// bounded, user data is bounded per request and, merged, by the chat's size.
#[tokio::test]
async fn customer_fields_and_user_data_are_bounded() {
    let chats = chats();
    let long = "x".repeat(257);
    for req in [
        ChatRequest {
            subject: Some(long.clone()),
            ..request("c")
        },
        ChatRequest {
            email: Some(long.clone()),
            ..request("c")
        },
        request(&long),
    ] {
        assert!(matches!(
            chats.request("s", req).await,
            Err(ChatError::TooLarge(_))
        ));
    }
    let big = |n: usize| BTreeMap::from([(format!("k{n}"), "v".repeat(15 * 1024))]);
    let too_big = BTreeMap::from([("k".to_owned(), "v".repeat(17 * 1024))]);
    let refused = chats
        .request(
            "s",
            ChatRequest {
                user_data: too_big.clone(),
                ..request("c")
            },
        )
        .await;
    assert!(
        matches!(refused, Err(ChatError::TooLarge(_))),
        "{refused:?}"
    );

    let (id, chat) = chats
        .request(
            "s",
            ChatRequest {
                user_data: big(0),
                ..request("c")
            },
        )
        .await
        .unwrap();
    let c = creds(&chat);
    // 15 KiB per update passes max-message-size, but the merged data
    // reaches max-transcript-size (1 MiB) after about 68 of them.
    let mut refused_at = None;
    for n in 1..100 {
        match chats.client("s", &id, &c, Action::UpdateData(big(n))).await {
            Ok(_) => {}
            Err(ChatError::TooLarge(why)) => {
                assert!(why.contains("max-transcript-size"), "{why}");
                refused_at = Some(n);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(matches!(refused_at, Some(60..=70)), "{refused_at:?}");
    // Replacing a key does not grow the chat.
    chats
        .client("s", &id, &c, Action::UpdateData(big(1)))
        .await
        .expect("a replaced key costs nothing more");
}

#[tokio::test]
async fn chats_started_per_address_are_paced() {
    let chats = chats();
    let here: std::net::IpAddr = [192, 0, 2, 1].into();
    let from = |ip| ChatRequest {
        from: Some(ip),
        ..request("c")
    };
    for _ in 0..30 {
        chats.request("s", from(here)).await.unwrap();
    }
    match chats.request("s", from(here)).await {
        Err(ChatError::TooMany(wait)) => assert!(wait.as_secs() <= 2, "{wait:?}"),
        other => panic!("{other:?}"),
    }
    // Another address, and an exempt (unnamed) one, are not affected.
    chats
        .request("s", from([192, 0, 2, 2].into()))
        .await
        .unwrap();
    chats.request("s", request("c")).await.unwrap();
}

/// The store under a chat engine, counting the records its lookups return
/// and the bytes each record write rewrites.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    found: std::sync::atomic::AtomicUsize,
    written: parking_lot::Mutex<Vec<usize>>,
}

impl Counting {
    fn seen<T>(&self, found: crate::store::Result<Vec<T>>) -> crate::store::Result<Vec<T>> {
        let n = found.as_ref().map_or(0, Vec::len);
        self.found
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        found
    }

    fn take(&self) -> usize {
        self.found.swap(0, std::sync::atomic::Ordering::Relaxed)
    }

    /// The size of each record written since the last call, in order.
    fn writes(&self) -> Vec<usize> {
        std::mem::take(&mut self.written.lock())
    }
}

#[async_trait::async_trait]
impl crate::store::Store for Counting {
    fn backend(&self) -> &'static str {
        "counting"
    }
    fn shared(&self) -> bool {
        false
    }
    async fn create(
        &self,
        c: &str,
        id: &str,
        w: crate::store::Write<'_>,
    ) -> crate::store::Result<Option<u64>> {
        self.inner.create(c, id, w).await
    }
    async fn put(
        &self,
        c: &str,
        id: &str,
        w: crate::store::Write<'_>,
    ) -> crate::store::Result<u64> {
        self.inner.put(c, id, w).await
    }
    async fn update(
        &self,
        c: &str,
        id: &str,
        v: u64,
        w: crate::store::Write<'_>,
    ) -> crate::store::Result<Option<u64>> {
        self.written.lock().push(w.value.len());
        self.inner.update(c, id, v, w).await
    }
    async fn get(&self, c: &str, id: &str) -> crate::store::Result<Option<crate::store::Record>> {
        self.inner.get(c, id).await
    }
    async fn delete(&self, c: &str, id: &str) -> crate::store::Result<bool> {
        self.inner.delete(c, id).await
    }
    async fn count(&self, c: &str, n: &str, v: &str) -> crate::store::Result<u64> {
        self.inner.count(c, n, v).await
    }
    async fn find(
        &self,
        c: &str,
        n: &str,
        v: &str,
        limit: usize,
    ) -> crate::store::Result<Vec<(String, crate::store::Record)>> {
        self.seen(self.inner.find(c, n, v, limit).await)
    }
    async fn find_ordered(
        &self,
        c: &str,
        n: &str,
        v: &str,
        until: u64,
        limit: usize,
    ) -> crate::store::Result<Vec<(String, crate::store::Record)>> {
        self.seen(self.inner.find_ordered(c, n, v, until, limit).await)
    }
    async fn append(
        &self,
        c: &str,
        log: &str,
        value: &[u8],
        ttl: Option<std::time::Duration>,
    ) -> crate::store::Result<u64> {
        self.inner.append(c, log, value, ttl).await
    }
    async fn read_log(
        &self,
        c: &str,
        log: &str,
        from: u64,
        limit: usize,
    ) -> crate::store::Result<Vec<crate::store::LogEntry>> {
        self.inner.read_log(c, log, from, limit).await
    }
    async fn write_log(
        &self,
        c: &str,
        log: &str,
        entries: &[crate::store::LogEntry],
        ttl: Option<std::time::Duration>,
    ) -> crate::store::Result<()> {
        self.inner.write_log(c, log, entries, ttl).await
    }
    async fn keep_log(
        &self,
        c: &str,
        log: &str,
        ttl: std::time::Duration,
    ) -> crate::store::Result<()> {
        self.inner.keep_log(c, log, ttl).await
    }
    async fn delete_log(&self, c: &str, log: &str) -> crate::store::Result<bool> {
        self.inner.delete_log(c, log).await
    }
}

/// A service whose customers time out after a second, over a counting store.
fn counted() -> (Chats, Arc<Counting>) {
    let store = Arc::new(Counting::default());
    let mut services = ChatServices::default();
    let options = ChatServiceOptions {
        client_timeout: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    services.named.insert("s".into(), options);
    (Chats::new(store.clone(), services).0, store)
}

/// The idle check reads the chats that are due, not every open one.
#[tokio::test]
async fn the_idle_check_reads_only_due_chats() {
    let (chats, store) = counted();
    let (quiet, _) = chats.request("s", request("quiet")).await.unwrap();
    // The first check of a process also sweeps what was written before the
    // due index existed: every open chat, once.
    assert_eq!(chats.end_idle().await.unwrap(), 0);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut busy = Vec::new();
    for i in 0..50 {
        busy.push(
            chats
                .request("s", request(&format!("busy{i}")))
                .await
                .unwrap()
                .0,
        );
    }
    store.take();
    assert_eq!(chats.end_idle().await.unwrap(), 1, "the quiet one ends");
    assert_eq!(store.take(), 1, "and it alone was read");
    assert!(chats.read_unchecked(&quiet).await.unwrap().ended());
    for id in busy {
        assert!(!chats.read_unchecked(&id).await.unwrap().ended());
    }
}

/// A queue is read oldest first, a page at a time, however long it is.
#[tokio::test]
async fn a_long_queue_costs_a_page() {
    let (chats, store) = counted();
    let mut ids = Vec::new();
    for i in 0..QUEUE_PAGE + 30 {
        ids.push(
            chats
                .request("s", request(&format!("c{i}")))
                .await
                .unwrap()
                .0,
        );
        // Distinct creation times, so that "oldest" is one answer.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    store.take();
    let page = chats.queued(DEFAULT_QUEUE).await.unwrap();
    assert_eq!(store.take(), QUEUE_PAGE);
    let got: Vec<&String> = page.iter().map(|(id, _)| id).collect();
    let oldest: Vec<&String> = ids.iter().take(QUEUE_PAGE).collect();
    assert_eq!(got, oldest, "the oldest, in order");
    let queues = vec![DEFAULT_QUEUE.to_owned()];
    let (taken, _) = chats
        .take_next("a", "a", PartyType::Agent, &queues)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken, ids[0], "the next is the oldest");
}

/// What tells agents to look at their offers: a chat entering or leaving
/// its queue, not every write to a waiting chat.
#[tokio::test]
async fn only_queue_moves_change_offers() {
    let mut services = ChatServices::default();
    services
        .named
        .insert("s".into(), ChatServiceOptions::default());
    let (chats, mut changes) = Chats::new(Arc::new(MemoryStore::default()), services);
    let (id, chat) = chats.request("s", request("c")).await.unwrap();
    assert!(
        changes.recv().await.unwrap().queue_moved,
        "a new chat waits"
    );
    let send = Action::Send {
        text: "anyone?".into(),
        message_type: None,
    };
    chats.client("s", &id, &creds(&chat), send).await.unwrap();
    let change = changes.recv().await.unwrap();
    assert_eq!(change.new_events().len(), 1);
    assert!(!change.queue_moved, "a message while waiting moves nothing");
    let queues = vec![DEFAULT_QUEUE.to_owned()];
    chats
        .take_next("a", "a", PartyType::Agent, &queues)
        .await
        .unwrap()
        .unwrap();
    assert!(
        changes.recv().await.unwrap().queue_moved,
        "taken: out of the queue"
    );
}

fn send(text: String) -> Action {
    Action::Send {
        text,
        message_type: None,
    }
}

/// A long chat costs each write what a short one does: the record keeps a
/// few recent events, the rest are in the log, and the transcript reads
/// back whole, in order, from any position.
#[tokio::test]
async fn a_long_chat_rewrites_a_small_record() {
    let (chats, store) = counted();
    let (id, chat) = chats.request("s", request("c")).await.unwrap();
    let c = creds(&chat);
    chats
        .take_next("a", "A", PartyType::Agent, &[DEFAULT_QUEUE.to_owned()])
        .await
        .unwrap();
    store.writes();
    for i in 0..400 {
        let text = format!("{i:03} {}", "x".repeat(96));
        chats.client("s", &id, &c, send(text)).await.unwrap();
    }
    let writes = store.writes();
    let (early, late) = (&writes[..40], &writes[writes.len() - 40..]);
    let largest = |w: &[usize]| w.iter().copied().max().unwrap();
    // (Counters gain a digit or two.)
    assert!(
        largest(late) <= largest(early) + 16,
        "the 400th message rewrites what the 10th does: {} > {}",
        largest(late),
        largest(early)
    );
    assert!(largest(&writes) < 4096, "{}", largest(&writes));
    let chat = chats.read_unchecked(&id).await.unwrap();
    assert!(chat.recent.len() <= FLUSH_EVENTS, "{}", chat.recent.len());
    let all = chats.transcript(&id, &chat, 1).await.unwrap();
    assert_eq!(all.len() as u32, chat.next_position() - 1);
    assert!(
        all.iter().zip(1..).all(|(e, i)| e.index == i),
        "indexes in order"
    );
    let texts: Vec<&str> = all
        .iter()
        .filter(|e| e.kind == EventType::Message)
        .map(|e| &e.text.as_deref().unwrap()[..3])
        .collect();
    let sent: Vec<String> = (0..400).map(|i| format!("{i:03}")).collect();
    assert_eq!(texts, sent, "every message once, in order");
    for from in [0, 1, 5, chat.logged, chat.logged + 1, chat.next_position()] {
        let part = chats.transcript(&id, &chat, from).await.unwrap();
        assert_eq!(part[..], all[(from.max(1) - 1) as usize..], "from {from}");
    }
    assert_eq!(
        chat.text_bytes(),
        all.iter()
            .map(|e| e.text.as_ref().map_or(0, String::len))
            .sum::<usize>()
    );
}

/// A record written before the log existed holds its whole transcript:
/// its next write moves it to the log, and nothing is lost.
#[tokio::test]
async fn a_record_from_before_the_log_moves_its_transcript() {
    let chats = chats();
    let (id, chat) = chats.request("s", request("c")).await.unwrap();
    let c = creds(&chat);
    // As an older gmshub stored it: every event in the record, no counters.
    chats
        .sessions
        .modify(
            &id,
            |_| Some(std::time::Duration::from_secs(60)),
            |chat| {
                for i in 0..30 {
                    chat.push(CLIENT_ID, EventType::Message, Some(format!("old {i}")), 1);
                }
                Ok::<_, ChatError>(())
            },
        )
        .await
        .unwrap();
    let old = chats.read_unchecked(&id).await.unwrap();
    let json = serde_json::to_value(&old).unwrap();
    assert!(json.get("logged").is_none() && json["transcript"].as_array().unwrap().len() == 31);
    // Its files' expiry, under the name it had then, is the kept one now.
    let mut older = json.clone();
    older["files_until"] = serde_json::json!(1234);
    let older: ChatSession = serde_json::from_value(older).unwrap();
    assert_eq!(older.kept_until, Some(1234));
    chats
        .client("s", &id, &c, send("new".into()))
        .await
        .unwrap();
    let chat = chats.read_unchecked(&id).await.unwrap();
    assert_eq!((chat.logged, chat.recent.len()), (31, 1));
    let all = chats.transcript(&id, &chat, 1).await.unwrap();
    assert_eq!(all.len(), 32);
    assert_eq!(all[1].text.as_deref(), Some("old 0"));
    assert_eq!(all[31].text.as_deref(), Some("new"));
}
