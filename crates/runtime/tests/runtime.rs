//! The runtime's guarantees that do not need a network: bounded mailboxes, passivation and
//! rehydration, one actor per session, and shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchboard_flow::FlowSet;
use switchboard_protocol::webhook::{CallAction, CallStatus, EventData};
use switchboard_runtime::store::{BoxFuture, Commit, Record, StoreError};
use switchboard_runtime::{
    AnswerKind, MemoryStore, Runtime, RuntimeConfig, RuntimeError, SessionStore,
};
use tokio::sync::Semaphore;

fn flows() -> FlowSet {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows/restaurant.yaml");
    switchboard_runtime::catalog::load_set(&[path])
        .expect("restaurant.yaml loads")
        .0
}

fn received(session: &str) -> CallAction {
    CallAction {
        event_id: format!("{session}-0").into(),
        session_id: session.to_owned().into(),
        call_status: CallStatus::CallReceived,
        source: "+6591110000".to_owned().into(),
        destination: "+6568888888".to_owned().into(),
        ..Default::default()
    }
}

fn pressed(session: &str, n: u32, dtmf: &str, action_id: Option<String>) -> CallAction {
    CallAction {
        event_id: format!("{session}-{n}").into(),
        session_id: session.to_owned().into(),
        call_status: CallStatus::ActionCompleted,
        source: "+6591110000".to_owned().into(),
        destination: "+6568888888".to_owned().into(),
        event_data: Some(EventData {
            dtmf: Some(dtmf.to_owned().into()),
            ..Default::default()
        }),
        client_action_id: action_id.map(Into::into),
        ..Default::default()
    }
}

fn action_id(answer: &switchboard_runtime::Answer) -> Option<String> {
    answer
        .callflow
        .as_ref()
        .and_then(|c| c.client_action_id.as_ref())
        .map(|id| id.as_str().to_owned())
}

/// A memory store whose commits wait for a permit, so a test decides when a write finishes.
#[derive(Debug)]
struct GatedStore {
    inner: Arc<MemoryStore>,
    gate: Arc<Semaphore>,
    /// Commits that have started waiting at the gate.
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl SessionStore for GatedStore {
    fn load<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        self.inner.load(session)
    }

    fn commit<'a>(
        &'a self,
        session: &'a str,
        expected: Option<u64>,
        record: &'a Record,
        event_id: &'a str,
    ) -> BoxFuture<'a, Result<Commit, StoreError>> {
        Box::pin(async move {
            self.waiting
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _permit = self.gate.acquire().await.expect("the gate stays open");
            self.inner.commit(session, expected, record, event_id).await
        })
    }

    fn end<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        self.inner.end(session)
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.ping()
    }

    fn kind(&self) -> &'static str {
        "gated"
    }
}

#[tokio::test]
async fn a_full_mailbox_is_refused_not_queued() {
    let gate = Arc::new(Semaphore::new(0));
    let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let store = Arc::new(GatedStore {
        inner: MemoryStore::new(Duration::from_secs(60)),
        gate: Arc::clone(&gate),
        waiting: Arc::clone(&waiting),
    });
    let config = RuntimeConfig {
        mailbox: 1,
        shards: 1,
        request_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let runtime = Arc::new(Runtime::start(config, flows(), store).expect("starts"));

    // The first delivery of session s1 gets stuck in its commit, holding the only slot.
    let stuck = {
        let runtime = Arc::clone(&runtime);
        tokio::spawn(async move { runtime.call_action(received("s1")).await })
    };
    for _ in 0..1000 {
        if waiting.load(std::sync::atomic::Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(waiting.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A second delivery for s1 is refused at once rather than queued.
    let refused = runtime.call_action(pressed("s1", 1, "3", None)).await;
    assert_eq!(refused.unwrap_err(), RuntimeError::Busy);
    let full = runtime
        .counters()
        .mailbox_full
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(full, 1);

    // Once the store lets writes through, the stuck delivery is answered and others flow.
    gate.add_permits(1000);
    let first = stuck.await.expect("joins").expect("answered");
    assert_eq!(first.kind, AnswerKind::Started);
    let other = runtime.call_action(received("s2")).await.expect("answered");
    assert_eq!(other.kind, AnswerKind::Started);
    runtime.shutdown();
}

#[tokio::test]
async fn idle_sessions_are_passivated_and_rehydrated_from_the_store() {
    let store = MemoryStore::new(Duration::from_secs(60));
    let config = RuntimeConfig {
        idle_timeout: Duration::from_millis(40),
        ..Default::default()
    };
    let runtime = Runtime::start(config, flows(), store.clone()).expect("starts");
    let started = runtime.call_action(received("p1")).await.expect("answered");
    assert_eq!(runtime.live_sessions(), 1);
    assert_eq!(store.len(), 0, "a live session is held by its actor alone");

    let mut passivated = false;
    for _ in 0..200 {
        if runtime.live_sessions() == 0 {
            passivated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(passivated, "the idle actor was not stopped");
    assert_eq!(store.len(), 1, "its state stays in the store");

    // The next key press rehydrates the session where it was: 1 = reservations.
    let next = runtime
        .call_action(pressed("p1", 1, "1", action_id(&started)))
        .await
        .expect("answered");
    assert_eq!(next.kind, AnswerKind::Advanced);
    let id = action_id(&next).unwrap();
    assert!(id.contains(":reservations:"), "{id}");
    let counters = runtime.counters();
    assert_eq!(
        counters
            .passivated
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        counters
            .rehydrated
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    runtime.shutdown();
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_apply_it_once() {
    let runtime = Arc::new(
        Runtime::start(
            RuntimeConfig::default(),
            flows(),
            MemoryStore::new(Duration::from_secs(60)),
        )
        .expect("starts"),
    );
    let start = runtime.call_action(received("c1")).await.expect("answered");
    let id = action_id(&start);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let runtime = Arc::clone(&runtime);
        let action = pressed("c1", 1, "1", id.clone());
        tasks.push(tokio::spawn(
            async move { runtime.call_action(action).await },
        ));
    }
    let mut bodies = Vec::new();
    for task in tasks {
        bodies.push(task.await.expect("joins").expect("answered").body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every copy gets the same answer"
    );
    let view = runtime
        .session("c1")
        .await
        .expect("readable")
        .expect("exists");
    // One CALL_RECEIVED and one key press: the path is main, reservations.
    assert_eq!(view.record.state.path, ["main", "reservations"]);
    assert_eq!(view.record.version, 2);
    runtime.shutdown();
}

#[tokio::test]
async fn a_session_begun_on_a_shard_thread_lives_on_that_shard() {
    let runtime = Arc::new(
        Runtime::start(
            RuntimeConfig {
                shards: 2,
                ..Default::default()
            },
            flows(),
            MemoryStore::new(Duration::from_secs(60)),
        )
        .expect("starts"),
    );
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    // Shard 0 starts three calls, shard 1 five: each where its webhook was received.
    let spawned = runtime.spawn_on_shards(|shard| {
        let runtime = Arc::clone(&runtime);
        let done = done_tx.clone();
        async move {
            for call in 0..(3 + 2 * shard) {
                let answer = runtime
                    .call_action(received(&format!("shard{shard}-call{call}")))
                    .await;
                assert_eq!(answer.expect("answered").kind, AnswerKind::Started);
            }
            done.send(shard).expect("the test waits");
        }
    });
    assert!(spawned);
    drop(done_tx);
    let mut finished = Vec::new();
    while let Some(shard) = done_rx.recv().await {
        finished.push(shard);
    }
    finished.sort_unstable();
    assert_eq!(finished, [0, 1], "both shards ran their calls");
    assert_eq!(runtime.shard_actors(), [3, 5]);
    runtime.shutdown();
}

/// Business hours follow the runtime's clock, not the wall clock: the support line at 11:00
/// and at 21:00 on a Monday in Singapore, on a clock that starts at each.
#[tokio::test]
async fn business_hours_follow_the_injected_clock() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows/support.yaml");
    let support = || {
        switchboard_runtime::catalog::load_set(std::slice::from_ref(&path))
            .expect("support.yaml loads")
            .0
    };
    let spoken =
        |answer: &switchboard_runtime::Answer| String::from_utf8_lossy(&answer.body).into_owned();
    let call = CallAction {
        destination: "+6568880001".to_owned().into(),
        ..received("hours")
    };
    for (time, expect) in [
        ("2026-01-05T11:00:00+08:00", "Welcome to Acme support."),
        ("2026-01-05T21:00:00+08:00", "We are closed now."),
    ] {
        let start = chrono::DateTime::parse_from_rfc3339(time).unwrap().to_utc();
        let config = RuntimeConfig {
            shards: 1,
            clock: Arc::new(switchboard_runtime::clock::ShiftedClock::starting_at(start)),
            ..Default::default()
        };
        let runtime = Runtime::start(config, support(), MemoryStore::new(Duration::from_secs(60)))
            .expect("starts");
        let answer = runtime.call_action(call.clone()).await.unwrap();
        assert_eq!(answer.kind, AnswerKind::Started);
        assert!(
            spoken(&answer).contains(expect),
            "at {time}: {}",
            spoken(&answer)
        );
    }
}

/// A backend on 127.0.0.1:0 that answers every request `200 {}` (plain HTTP/1.1 over a real
/// socket, one request per connection).
async fn ok_backend() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                          content-length: 2\r\nconnection: close\r\n\r\n{}",
                    )
                    .await;
            });
        }
    });
    addr
}

/// A fetch node's time follows the runtime's clock too: its budget is counted from the
/// webhook's arrival on that clock (a clock months behind the wall clock used to leave it no
/// time at all: every fetch timed out), and the branch on business hours after it sees the
/// clock's time of day.
#[tokio::test]
async fn a_fetch_and_the_hours_after_it_follow_the_injected_clock() {
    let backend = ok_backend().await;
    let source = format!(
        r#"
id: lookup_hours
numbers: ["+6568880009"]
timezone: Asia/Singapore
start: lookup
nodes:
  lookup:
    fetch: {{ url: "http://{backend}/status", timeout_ms: 1500 }}
    next: hours
    on_error: broken
    on_timeout: slow
  hours:
    branch:
      - when: {{ days: mon-fri, time: "09:00-18:00" }}
        goto: open
    default: closed
  open:
    say: "We are open."
    next: hangup
  closed:
    say: "We are closed."
    next: hangup
  broken:
    say: "The look-up failed."
    next: hangup
  slow:
    say: "The look-up timed out."
    next: hangup
"#
    );
    let call = CallAction {
        destination: "+6568880009".to_owned().into(),
        ..received("clocked-fetch")
    };
    for (time, expect) in [
        ("2026-01-05T11:00:00+08:00", "We are open."),
        ("2026-01-05T21:00:00+08:00", "We are closed."),
    ] {
        let start = chrono::DateTime::parse_from_rfc3339(time).unwrap().to_utc();
        let config = RuntimeConfig {
            shards: 1,
            clock: Arc::new(switchboard_runtime::clock::ShiftedClock::starting_at(start)),
            ..Default::default()
        };
        let flows = FlowSet::new(vec![
            switchboard_flow::compile(&source, "lookup_hours.yaml")
                .expect("the flow compiles")
                .flow,
        ])
        .expect("one flow is a valid set");
        let runtime = Runtime::start(config, flows, MemoryStore::new(Duration::from_secs(60)))
            .expect("starts");
        let answer = runtime.call_action(call.clone()).await.unwrap();
        let spoken = String::from_utf8_lossy(&answer.body).into_owned();
        assert!(spoken.contains(expect), "at {time}: {spoken}");
        runtime.shutdown();
    }
}
