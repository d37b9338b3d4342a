//! `RedisStore` when Redis goes away: live sessions keep being answered from their actors, new
//! calls and sessions with no actor here are served from memory too (the latter resumed from
//! their `clientActionId`), their writes are queued and made durable when Redis returns under
//! the documented conflict rules, and what cannot be queued is refused and counted.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use switchboard_runtime::redis_store::{RedisConfig, RedisStore};
use switchboard_runtime::{
    Answer, AnswerKind, MemoryStore, Record, RuntimeError, SessionStore, StoreErrorKind,
};

const BOOKING: [&str; 3] = ["1", "1", "4"];

fn faulty_store(server: &RedisServer, config: RedisConfig) -> Arc<RedisStore> {
    RedisStore::new(RedisConfig {
        command_timeout: Duration::from_millis(300),
        ..RedisConfig {
            url: server.url(),
            ..config
        }
    })
    .unwrap()
}

/// The memory-store answers of the booking route.
async fn reference() -> Vec<Answer> {
    let single = replica(MemoryStore::new(Duration::from_secs(60)));
    let mut answers = vec![single.call_action(received("ref", "e0")).await.unwrap()];
    for (i, keys) in BOOKING.iter().enumerate() {
        let event = completed(
            "ref",
            &format!("e{}", i + 1),
            answers.last().unwrap(),
            Some(keys),
        );
        answers.push(single.call_action(event).await.unwrap());
    }
    answers
}

fn step(session: &str, n: usize, previous: &Answer) -> switchboard_protocol::CallAction {
    completed(
        session,
        &format!("{session}-e{n}"),
        previous,
        Some(BOOKING[n - 1]),
    )
}

fn stored(server: &RedisServer, session: &str) -> Option<Record> {
    let (r, ids): (Option<Vec<u8>>, Option<Vec<u8>>) = redis::cmd("HMGET")
        .arg(format!("switchboard:{{{session}}}:state"))
        .arg("r")
        .arg("ids")
        .query(&mut server.connection())
        .unwrap();
    r.map(|r| RedisStore::decode_record(&r, ids.as_deref()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sessions_are_served_while_redis_restarts_and_their_state_is_persisted_again() {
    let expected = reference().await;
    let mut server = RedisServer::start();
    let store = faulty_store(&server, RedisConfig::default());
    let a = replica(store.clone());
    let sessions: Vec<String> = (0..5).map(|i| format!("live-{i}")).collect();
    let mut last = Vec::new();
    for s in &sessions {
        let first = a
            .call_action(received(s, &format!("{s}-e0")))
            .await
            .unwrap();
        last.push(a.call_action(step(s, 1, &first)).await.unwrap());
    }

    server.kill();
    for (s, previous) in sessions.iter().zip(&mut last) {
        let answer = a.call_action(step(s, 2, previous)).await.unwrap();
        assert_eq!(
            (answer.kind, &answer.body),
            (AnswerKind::Advanced, &expected[2].body)
        );
        let repeat = a.call_action(step(s, 2, previous)).await.unwrap();
        assert_eq!(
            (repeat.kind, &repeat.body),
            (AnswerKind::Duplicate, &answer.body)
        );
        *previous = answer;
    }
    assert_eq!(store.pending_writes(), sessions.len());
    assert!(store.ping().await.is_err());
    // A new call is served from memory too, and queued.
    let cold = a.call_action(received("cold", "cold-e0")).await.unwrap();
    assert_eq!(
        (cold.kind, &cold.body),
        (AnswerKind::Started, &expected[0].body)
    );
    assert_eq!(store.pending_writes(), sessions.len() + 1);

    server.restart();
    eventually(Duration::from_secs(10), "queued writes flushed", || {
        store.pending_writes() == 0
    })
    .await;
    for s in &sessions {
        let record = stored(&server, s).expect("state re-persisted after the restart");
        assert_eq!(
            (record.version, record.state.node.as_str()),
            (3, "booking_size")
        );
    }
    for (s, previous) in sessions.iter().zip(&last) {
        let answer = a.call_action(step(s, 3, previous)).await.unwrap();
        assert_eq!(
            answer.body, expected[3].body,
            "the captured variable survived"
        );
        assert_eq!(stored(&server, s).unwrap().version, 4);
    }
    let record = stored(&server, "cold").expect("the call begun while Redis was away is stored");
    assert_eq!(record.version, 1);
    assert_eq!(store.writes_dropped(), 0);
    assert!(store.is_reachable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_made_while_redis_is_frozen_are_flushed_over_the_stored_version_with_the_ends() {
    let expected = reference().await;
    let server = RedisServer::start();
    let store = faulty_store(&server, RedisConfig::default());
    let a = replica(store.clone());
    let sessions = ["frozen-0", "frozen-1", "frozen-2"];
    let mut last = Vec::new();
    for s in sessions {
        let first = a
            .call_action(received(s, &format!("{s}-e0")))
            .await
            .unwrap();
        last.push(a.call_action(step(s, 1, &first)).await.unwrap());
    }

    server.pause();
    for (s, previous) in sessions.iter().zip(&last) {
        let answer = a.call_action(step(s, 2, previous)).await.unwrap();
        assert_eq!(answer.body, expected[2].body);
    }
    a.end(summary(sessions[2]))
        .await
        .expect("the end is queued too");
    assert_eq!(store.pending_writes(), 3);
    server.resume();
    assert_eq!(store.flush().await, 0, "everything flushed");

    for s in &sessions[..2] {
        assert_eq!(stored(&server, s).unwrap().version, 3);
    }
    assert_eq!(
        stored(&server, sessions[2]),
        None,
        "the queued end deleted the state"
    );
    assert_eq!(store.writes_dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_queue_is_bounded_and_a_write_that_does_not_fit_is_refused_and_counted() {
    let mut server = RedisServer::start();
    let store = faulty_store(
        &server,
        RedisConfig {
            max_pending: 2,
            ..RedisConfig::default()
        },
    );
    let a = replica(store.clone());
    let mut first = Vec::new();
    for i in 0..3 {
        let s = format!("bound-{i}");
        first.push(
            a.call_action(received(&s, &format!("{s}-e0")))
                .await
                .unwrap(),
        );
    }
    server.kill();
    for (i, previous) in first.iter().enumerate().take(2) {
        let s = format!("bound-{i}");
        a.call_action(step(&s, 1, previous)).await.unwrap();
    }
    match a.call_action(step("bound-2", 1, &first[2])).await {
        Err(RuntimeError::Store(err)) => {
            assert_eq!(err.kind(), StoreErrorKind::Backlog, "{err}");
            assert!(err.to_string().contains("max_pending"), "{err}");
        }
        other => panic!("expected the queue to be full, got {other:?}"),
    }
    assert_eq!((store.pending_writes(), store.writes_dropped()), (2, 1));

    server.restart();
    eventually(Duration::from_secs(10), "queued writes flushed", || {
        store.pending_writes() == 0
    })
    .await;
    // The refused webhook, retried by the platform, is answered now.
    a.call_action(step("bound-2", 1, &first[2])).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_not_durable_within_max_pending_age_is_dropped_and_counted() {
    let server = RedisServer::start();
    let store = faulty_store(
        &server,
        RedisConfig {
            max_pending_age: Duration::from_millis(200),
            ..RedisConfig::default()
        },
    );
    let a = replica(store.clone());
    let first = a.call_action(received("aged", "aged-e0")).await.unwrap();
    server.pause();
    a.call_action(step("aged", 1, &first)).await.unwrap();
    assert_eq!(store.pending_writes(), 1);
    eventually(Duration::from_secs(10), "the old write dropped", || {
        store.writes_dropped() == 1
    })
    .await;
    assert_eq!(store.pending_writes(), 0);
    server.resume();
}

/// A replica cut off from Redis while another advances the same session: when the partition
/// heals, the queued write meets the newer stored state and is dropped (never written over
/// it), and the cut-off replica's actor re-reads the session instead of trusting its copy,
/// although that copy has the same version number as the stored state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_replica_never_overwrites_what_another_stored_meanwhile() {
    let server = RedisServer::start();
    let partition = Partition::start(server.port).await;
    let cut_off = RedisStore::new(RedisConfig {
        command_timeout: Duration::from_millis(300),
        ..RedisConfig::new(partition.url())
    })
    .unwrap();
    let (a, b) = (replica(cut_off.clone()), replica(store(&server.url())));
    let s = "split";
    let e0 = a.call_action(received(s, "split-e0")).await.unwrap();
    let e1 = a
        .call_action(completed(s, "split-e1", &e0, Some("1")))
        .await
        .unwrap();
    assert!(actions(&e1)[0].contains("Reservations"));

    partition.cut();
    // A, cut off, takes the caller to the booking (version 3, queued).
    let on_a = a
        .call_action(completed(s, "split-e2", &e1, Some("1")))
        .await
        .unwrap();
    assert!(actions(&on_a)[0].contains("How many guests"));
    assert_eq!(cut_off.pending_writes(), 1);
    // B, which reaches Redis, gets another event and goes back to the main menu (version 3).
    let on_b = b
        .call_action(completed(s, "split-e2b", &e1, Some("9")))
        .await
        .unwrap();
    assert!(
        actions(&on_b)[0].contains("Welcome"),
        "{:?}",
        actions(&on_b)
    );

    partition.restore();
    eventually(Duration::from_secs(10), "the queued write settled", || {
        cut_off.pending_writes() == 0
    })
    .await;
    assert_eq!(cut_off.writes_dropped(), 1);
    let kept = stored(&server, s).unwrap();
    assert_eq!((kept.version, kept.state.node.as_str()), (3, "main"));

    // The platform continues from B's answer; A must follow the stored session.
    let next = a
        .call_action(completed(s, "split-e3", &on_b, Some("3")))
        .await
        .unwrap();
    assert_eq!(actions(&next)[0], "say:We are open 9AM to 9PM every day.");
    let after = stored(&server, s).unwrap();
    assert_eq!(after.version, 4);
    assert_eq!(after.answer_for("split-e3"), Some(next.body.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumed_while_redis_is_frozen_goes_over_the_older_stored_state() {
    let expected = reference().await;
    let server = RedisServer::start();
    let store_a = faulty_store(&server, RedisConfig::default());
    let store_b = faulty_store(&server, RedisConfig::default());
    let (a, b) = (replica(store_a.clone()), replica(store_b.clone()));
    let s = "resumed-1";
    let first = a.call_action(received(s, "resumed-1-e0")).await.unwrap();
    let second = a.call_action(step(s, 1, &first)).await.unwrap();
    assert_eq!(stored(&server, s).unwrap().version, 2);

    // Redis freezes; the next event reaches b, which holds nothing of the session: resumed
    // from the clientActionId (the caller hears the right menu), queued.
    server.pause();
    let third = b.call_action(step(s, 2, &second)).await.unwrap();
    assert_eq!(third.kind, AnswerKind::Resumed);
    assert_eq!(third.body, expected[2].body);
    assert_eq!(store_b.pending_writes(), 1);
    server.resume();

    // b's state is further along (seq 3 against the stored 2): it goes over, nothing dropped.
    assert_eq!(store_b.flush().await, 0);
    let record = stored(&server, s).expect("stored");
    assert_eq!((record.version, record.state.seq), (3, 3));
    assert_eq!(record.state.node, expected_node(&expected[2]));
    assert_eq!(store_b.writes_dropped(), 0);

    // a's actor is behind: its next webhook conflicts once, adopts b's state and goes on.
    let fourth = a.call_action(step(s, 3, &third)).await.unwrap();
    assert_eq!(fourth.body, expected[3].body);
    let record = stored(&server, s).expect("stored");
    assert_eq!((record.version, record.state.seq), (4, 4));
    assert_eq!(store_a.writes_dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_call_begun_twice_while_redis_is_away_is_stored_once() {
    let mut server = RedisServer::start();
    let store_a = faulty_store(&server, RedisConfig::default());
    let store_b = faulty_store(&server, RedisConfig::default());
    let (a, b) = (replica(store_a.clone()), replica(store_b.clone()));
    server.kill();
    // The platform's CALL_RECEIVED reached both replicas (a retry): both answer from memory.
    let on_a = a.call_action(received("twice", "twice-e0")).await.unwrap();
    let on_b = b.call_action(received("twice", "twice-e0")).await.unwrap();
    assert_eq!(on_a.body, on_b.body);
    server.restart();
    assert_eq!(store_a.flush().await, 0);
    assert_eq!(store_b.flush().await, 0);
    // One state stored, not two: the second flush meets the first's record, the same
    // (version, eventId) it attempted itself, so it is recognised as the same write rather
    // than a rival's (nothing dropped, nothing written twice).
    let record = stored(&server, "twice").expect("stored");
    assert_eq!((record.version, record.state.seq), (1, 1));
    assert_eq!(record.events.len(), 1);
    assert_eq!(store_a.writes_dropped() + store_b.writes_dropped(), 0);
}

/// The node named by an answer's `clientActionId`.
fn expected_node(answer: &Answer) -> String {
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    body["clientActionId"]
        .as_str()
        .and_then(|id| id.split(':').nth(2))
        .unwrap()
        .to_owned()
}
