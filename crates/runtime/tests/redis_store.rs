//! `RedisStore` against a real redis-server (started by each test on a spare port): the
//! compare-and-set protocol, keys and TTLs, and two runtimes ("replicas") sharing sessions.

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Commands;
use switchboard_runtime::redis_store::{RecordFormat, RedisConfig, RedisStore};
use switchboard_runtime::store::Commit;
use switchboard_runtime::{
    Answer, AnswerKind, MemoryStore, Record, Runtime, SessionStore, StoreErrorKind,
};

fn record(version: u64, node: &str, events: &[&str]) -> Record {
    let flows = restaurant();
    let flow = flows.for_number(NUMBER).expect("the restaurant's number");
    let mut state = switchboard_flow::SessionState::new(flow, "+6591234567", NUMBER);
    state.node = node.to_owned();
    // An answer that tells records apart: their duplicates are answered with it.
    state.last_reply = Some(Arc::new(switchboard_protocol::Callflow {
        client_action_id: Some(
            switchboard_protocol::ClientActionId::new(format!("{node}-{version}")).unwrap(),
        ),
        actions: vec![switchboard_protocol::Action::Hangup],
    }));
    Record {
        state,
        version,
        events: events
            .iter()
            .map(|id| (*id).to_owned())
            .collect::<VecDeque<_>>(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_set_writes_reports_conflicts_and_never_overwrites_newer() {
    let server = RedisServer::start();
    let store = store(&server.url());
    let s = "cas-1";

    let v1 = record(1, "main", &["e1"]);
    assert_eq!(
        store.commit(s, None, &v1, "e1").await.unwrap(),
        Commit::Written
    );
    // A second "first write" (another replica started the same call): the stored one wins.
    let rival = record(1, "hours", &["e1b"]);
    assert_eq!(
        store.commit(s, None, &rival, "e1b").await.unwrap(),
        Commit::Conflict(Some(Box::new(v1.clone())))
    );
    let v2 = record(2, "reservations", &["e1", "e2"]);
    assert_eq!(
        store.commit(s, Some(1), &v2, "e2").await.unwrap(),
        Commit::Written
    );
    // A stale writer (expected 1) gets the stored version 2, which is kept.
    let stale = record(2, "hours", &["e1", "e3"]);
    assert_eq!(
        store.commit(s, Some(1), &stale, "e3").await.unwrap(),
        Commit::Conflict(Some(Box::new(v2.clone())))
    );
    // A writer claiming the right base but not a newer version cannot overwrite either.
    let same = record(2, "hours", &["e4"]);
    assert!(matches!(
        store.commit(s, Some(2), &same, "e4").await.unwrap(),
        Commit::Conflict(Some(_))
    ));
    // An event the stored record already answered: the stored record (and its answer) comes
    // back, even though the expected version matches.
    let again = record(3, "hours", &["e2"]);
    match store.commit(s, Some(2), &again, "e2").await.unwrap() {
        Commit::Conflict(Some(stored)) => {
            assert_eq!(stored.answer_for("e2").unwrap(), v2.last_answer());
            assert_ne!(v2.last_answer(), again.last_answer());
        }
        other => panic!("expected the stored record, got {other:?}"),
    }
    assert_eq!(store.load(s).await.unwrap(), Some(v2));
    assert_eq!(store.load("nobody").await.unwrap(), None);

    // Redis forgot the script (as after a restart): NOSCRIPT, SCRIPT LOAD, EVALSHA again.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut server.connection())
        .unwrap();
    // (A record's events are the stored ones plus the event it answers.)
    let v3 = record(3, "hours", &["e1", "e2", "e5"]);
    assert_eq!(
        store.commit(s, Some(2), &v3, "e5").await.unwrap(),
        Commit::Written
    );
    assert_eq!(store.load(s).await.unwrap(), Some(v3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_state_older_than_the_one_written_over_is_a_loss_and_is_written_over() {
    // Redis acknowledged version 2 and then lost it (a failover to a replica it had not
    // reached, a restart from an older snapshot): it holds version 1 again. The writer of
    // version 3 built on 2, so its state descends from 1: it goes over it, with every event id.
    let server = RedisServer::start();
    let store = store(&server.url());
    let s = "lost-1";
    let key = store.state_key(s);
    let mut con = server.connection();
    let v1 = record(1, "main", &["e1"]);
    assert_eq!(
        store.commit(s, None, &v1, "e1").await.unwrap(),
        Commit::Written
    );
    let dumped: Vec<u8> = redis::cmd("DUMP").arg(&key).query(&mut con).unwrap();
    let v2 = record(2, "reservations", &["e1", "e2"]);
    assert_eq!(
        store.commit(s, Some(1), &v2, "e2").await.unwrap(),
        Commit::Written
    );
    let _: () = redis::cmd("RESTORE")
        .arg(&key)
        .arg(0)
        .arg(dumped)
        .arg("REPLACE")
        .query(&mut con)
        .unwrap();
    assert_eq!(store.load(s).await.unwrap(), Some(v1.clone()), "v2 is lost");

    let v3 = record(3, "booking_size", &["e1", "e2", "e3"]);
    assert_eq!(
        store.commit(s, Some(2), &v3, "e3").await.unwrap(),
        Commit::Written
    );
    assert_eq!(store.load(s).await.unwrap(), Some(v3.clone()));
    // A stored state newer than the writer's base is still a rival's, and kept.
    let stale = record(3, "hours", &["e1", "e2", "e4"]);
    assert_eq!(
        store.commit(s, Some(2), &stale, "e4").await.unwrap(),
        Commit::Conflict(Some(Box::new(v3)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_prefixed_and_hash_tagged_with_a_ttl_refreshed_on_every_write() {
    let server = RedisServer::start();
    let store = RedisStore::new(RedisConfig {
        prefix: "sbtest".to_owned(),
        ttl: Duration::from_secs(100),
        ..RedisConfig::new(server.url())
    })
    .unwrap();
    let mut redis = server.connection();
    let s = "5a1e-77";
    let key = "sbtest:{5a1e-77}:state";
    assert_eq!(store.state_key(s), key);

    store
        .commit(s, None, &record(1, "main", &[]), "")
        .await
        .unwrap();
    let keys: Vec<String> = redis.keys("*").unwrap();
    assert_eq!(keys, [key]);
    let ttl: i64 = redis.pttl(key).unwrap();
    assert!((99_000..=100_000).contains(&ttl), "PTTL {ttl}");
    let version: u64 = redis.hget(key, "v").unwrap();
    assert_eq!(version, 1);

    let _: () = redis.pexpire(key, 5_000).unwrap();
    store
        .commit(s, Some(1), &record(2, "hours", &[]), "")
        .await
        .unwrap();
    let ttl: i64 = redis.pttl(key).unwrap();
    assert!(ttl > 5_000, "the write did not refresh the TTL: PTTL {ttl}");

    store.end(s).await.unwrap();
    let exists: bool = redis.exists(key).unwrap();
    assert!(!exists, "end must delete the session's state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_not_a_constructor_error_but_fails_ping_and_cold_reads() {
    // A port nobody listens on: bound and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let store = RedisStore::new(RedisConfig::new(url.clone())).expect("no connection at start");
    let err = store.ping().await.unwrap_err();
    assert!(err.to_string().contains(&url), "{err}");
    // A refused connection is told from a timeout, and keeps the client's error as its source.
    assert_eq!(err.kind(), StoreErrorKind::Connection, "{err}");
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    assert!(!store.is_reachable());
    // Nothing is known of a session while Redis is away: the runtime resumes it from its
    // clientActionId.
    assert!(store.load("cold").await.unwrap().is_none());

    let err = RedisStore::new(RedisConfig::new("redis://host:notaport")).unwrap_err();
    assert!(err.to_string().contains("redis://host:notaport"), "{err}");
}

/// The caller's keys for each route, and what the last answer says.
const ROUTES: [(&[&str], &str); 3] = [
    (
        &["1", "1", "4"],
        "say:A table for 4. Let me connect you to our host to choose a time.",
    ),
    (&["3"], "say:We are open 9AM to 9PM every day."),
    (&["2"], "makeCall:+6531589338"),
];

/// The answers one server with the memory store gives along `route`: what every replica
/// deployment must answer too, byte for byte.
async fn reference(route: &[&str]) -> Vec<Answer> {
    let single = replica(MemoryStore::new(Duration::from_secs(60)));
    let s = "reference";
    let mut answers = vec![single.call_action(received(s, "e0")).await.unwrap()];
    for (i, keys) in route.iter().enumerate() {
        let previous = answers.last().unwrap();
        let event = completed(s, &format!("e{}", i + 1), previous, Some(keys));
        answers.push(single.call_action(event).await.unwrap());
    }
    answers
}

fn event_of(
    session: &str,
    step: usize,
    previous: Option<&Answer>,
    keys: Option<&str>,
) -> switchboard_protocol::CallAction {
    let id = format!("{session}-e{step}");
    match previous {
        None => received(session, &id),
        Some(previous) => completed(session, &id, previous, keys),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_the_actor_rehydrates_and_a_stale_actor_adopts_the_newer_version() {
    let server = RedisServer::start();
    let (a, b) = (replica(store(&server.url())), replica(store(&server.url())));
    let (route, _) = ROUTES[0];
    let expected = reference(route).await;
    let s = "hop-1";

    let e0 = a.call_action(event_of(s, 0, None, None)).await.unwrap();
    assert_eq!(e0.body, expected[0].body);
    // B has no actor: it reads the record A wrote and advances it (not a resume from the
    // clientActionId, which would lose the session's variables).
    let e1 = b
        .call_action(event_of(s, 1, Some(&e0), Some(route[0])))
        .await
        .unwrap();
    assert_eq!(
        (e1.kind, &e1.body),
        (AnswerKind::Advanced, &expected[1].body)
    );
    assert_eq!(
        b.counters()
            .rehydrated
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // A's actor still holds version 1: its write conflicts, it adopts version 2 and recomputes.
    let e2 = a
        .call_action(event_of(s, 2, Some(&e1), Some(route[1])))
        .await
        .unwrap();
    assert_eq!(e2.body, expected[2].body);
    assert_eq!(
        a.counters()
            .conflicts
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // The captured variable crossed replicas twice.
    let e3 = b
        .call_action(event_of(s, 3, Some(&e2), Some(route[2])))
        .await
        .unwrap();
    assert_eq!(e3.body, expected[3].body);
    assert_eq!(actions(&e3)[0], ROUTES[0].1);
    // A retry of an event B answered, delivered to A (stale): the stored answer, identical.
    let again = a
        .call_action(event_of(s, 3, Some(&e2), Some(route[2])))
        .await
        .unwrap();
    assert_eq!((again.kind, &again.body), (AnswerKind::Duplicate, &e3.body));

    b.end(summary(s)).await.unwrap();
    let exists: bool = redis::Commands::exists(
        &mut server.connection(),
        format!("switchboard:{{{s}}}:state"),
    )
    .unwrap();
    assert!(!exists);
    assert_eq!(
        a.session(s).await.unwrap().map(|v| v.live),
        Some(true),
        "A's actor lives on until idle"
    );
}

/// Many concurrent calls; every webhook goes to a random replica, and most are delivered
/// twice (a platform retry), sometimes to both replicas at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_serve_concurrent_calls_with_identical_answers_to_duplicates() {
    const CALLS: usize = 60;
    let server = RedisServer::start();
    let replicas = Arc::new([replica(store(&server.url())), replica(store(&server.url()))]);
    let mut expected = Vec::new();
    for (route, _) in ROUTES {
        expected.push(reference(route).await);
    }
    let expected = Arc::new(expected);

    let mut calls = Vec::new();
    for call in 0..CALLS {
        let replicas = Arc::clone(&replicas);
        let expected = Arc::clone(&expected);
        calls.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(call as u64);
            let (route, last) = ROUTES[call % ROUTES.len()];
            let reference = &expected[call % ROUTES.len()];
            let s = format!("call-{call}");
            let mut previous: Option<Answer> = None;
            let mut duplicates = 0;
            for (step, expected) in reference.iter().enumerate() {
                let keys = step.checked_sub(1).map(|i| route[i]);
                let event = event_of(&s, step, previous.as_ref(), keys);
                let first = rng.random_range(0..2);
                let (answer, repeat) = match rng.random_range(0..3) {
                    // Once.
                    0 => (replicas[first].call_action(event).await.unwrap(), None),
                    // Twice at the same time, one per replica.
                    1 => {
                        let (x, y) = tokio::join!(
                            replicas[first].call_action(event.clone()),
                            replicas[1 - first].call_action(event)
                        );
                        (x.unwrap(), Some(y.unwrap()))
                    }
                    // Twice in a row, to random replicas.
                    _ => {
                        let x = replicas[first].call_action(event.clone()).await.unwrap();
                        let y = replicas[rng.random_range(0..2)]
                            .call_action(event)
                            .await
                            .unwrap();
                        (x, Some(y))
                    }
                };
                assert_eq!(answer.body, expected.body, "{s} step {step}");
                if let Some(repeat) = repeat {
                    assert_eq!(
                        repeat.body, answer.body,
                        "{s} step {step}: the duplicate's answer differs"
                    );
                    duplicates += 1;
                }
                previous = Some(answer);
            }
            assert_eq!(
                actions(previous.as_ref().unwrap())[0],
                last,
                "{s} took the wrong route"
            );
            replicas[rng.random_range(0..2)]
                .end(summary(&s))
                .await
                .unwrap();
            duplicates
        }));
    }
    let mut duplicates = 0;
    for call in calls {
        duplicates += call.await.unwrap();
    }
    let keys: Vec<String> = redis::Commands::keys(&mut server.connection(), "*").unwrap();
    assert!(
        keys.is_empty(),
        "ended sessions left state behind: {keys:?}"
    );
    let counter =
        |r: &Runtime, f: fn(&switchboard_runtime::Counters) -> &std::sync::atomic::AtomicU64| {
            f(r.counters()).load(std::sync::atomic::Ordering::Relaxed)
        };
    let rehydrated: u64 = replicas.iter().map(|r| counter(r, |c| &c.rehydrated)).sum();
    let conflicts: u64 = replicas.iter().map(|r| counter(r, |c| &c.conflicts)).sum();
    println!(
        "{CALLS} calls, {duplicates} duplicated deliveries, {rehydrated} rehydrations, {conflicts} conflicts"
    );
    assert!(rehydrated > 0 && duplicates > 0);
}

/// Redis round trips per warm webhook. `INFO commandstats` counts the commands a script runs
/// too, so `MONITOR` (which tags those `[0 lua]`) tells which ones the replica sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_webhook_costs_one_redis_round_trip() {
    const CALLS: usize = 20;
    let server = RedisServer::start();
    let a = replica(store(&server.url()));
    let route = ROUTES[0].0;
    let mut last = Vec::new();
    for call in 0..CALLS {
        let s = format!("warm-{call}");
        last.push(a.call_action(event_of(&s, 0, None, None)).await.unwrap());
    }
    let mut redis = server.connection();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut redis)
        .unwrap();
    let monitor = Monitor::start(server.port);
    let mut webhooks = 0;
    for step in 1..=route.len() {
        for (call, previous) in last.iter_mut().enumerate() {
            let s = format!("warm-{call}");
            let event = event_of(&s, step, Some(previous), Some(route[step - 1]));
            let answer = a.call_action(event.clone()).await.unwrap();
            let repeat = a.call_action(event).await.unwrap();
            assert_eq!(repeat.kind, AnswerKind::Duplicate);
            webhooks += 2;
            *previous = answer;
        }
    }
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis)
        .unwrap();
    let (sent, in_scripts) = monitor.stop();
    let mut counted = Vec::new();
    let mut evalsha = 0;
    for line in stats.lines().filter_map(|l| l.strip_prefix("cmdstat_")) {
        let (name, fields) = line.split_once(':').unwrap();
        let calls: u64 = fields
            .split(',')
            .find_map(|f| f.strip_prefix("calls="))
            .unwrap()
            .parse()
            .unwrap();
        if name == "evalsha" {
            evalsha = calls;
        }
        counted.push(format!("{name}={calls}"));
    }
    let advancing = webhooks / 2;
    println!(
        "{webhooks} warm webhooks ({advancing} advancing, {advancing} duplicates): commandstats \
         {}; MONITOR: {sent} commands sent by the replica, {in_scripts} run inside the script; \
         {:.2} round trips per advancing webhook, {:.2} per webhook",
        counted.join(" "),
        sent as f64 / advancing as f64,
        sent as f64 / webhooks as f64,
    );
    assert_eq!(
        evalsha, advancing as u64,
        "one EVALSHA per advancing webhook"
    );
    assert!(
        sent <= advancing,
        "{sent} commands sent for {advancing} advancing warm webhooks"
    );
}

/// Counts the commands `MONITOR` reports, split into those sent by clients and those run
/// inside scripts; the test's own `INFO` and `CONFIG` are not counted.
struct Monitor {
    stream: std::net::TcpStream,
    reader: std::thread::JoinHandle<(usize, usize)>,
}

impl Monitor {
    fn start(port: u16) -> Self {
        use std::io::{BufRead, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        let mut lines = std::io::BufReader::new(stream.try_clone().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "+OK");
        let reader = std::thread::spawn(move || {
            let (mut sent, mut in_scripts) = (0, 0);
            for line in lines.map_while(Result::ok) {
                if line.contains("\"MONITOR-END\"") {
                    break;
                }
                // The test's own commands, and the write-behind flusher's start-up PING (a
                // health probe, not webhook traffic: on a slow machine each thread's lazily
                // made connection can send it inside the window).
                if line.contains("\"INFO\"")
                    || line.contains("\"CONFIG\"")
                    || line.contains("\"PING\"")
                {
                    continue;
                }
                if line.contains("[0 lua]") {
                    in_scripts += 1;
                } else {
                    sent += 1;
                }
            }
            (sent, in_scripts)
        });
        Self { stream, reader }
    }

    /// Stops counting (an `ECHO MONITOR-END` from another connection marks the end).
    fn stop(self) -> (usize, usize) {
        let port = self.stream.peer_addr().unwrap().port();
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let mut con = client.get_connection().unwrap();
        let _: String = redis::cmd("ECHO")
            .arg("MONITOR-END")
            .query(&mut con)
            .unwrap();
        let counts = self.reader.join().unwrap();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        counts
    }
}

/// What a session costs in Redis: the stored record of a long call (more events than are
/// remembered) stays bounded, plain or compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_session_record_stays_small() {
    let server = RedisServer::start();
    let plain = long_session_memory(&server, false).await;
    let compressed = long_session_memory(&server, true).await;
    // Measured: about 730 bytes plain, 620 compressed (1,700 and 1,100 as JSON; 10,700 and
    // 1,450 when an answer was kept per event).
    assert!(plain <= 1024, "{plain} bytes for one session");
    assert!(
        compressed < plain,
        "compression still saves: {compressed} vs {plain}"
    );
}

/// Plays a 24-event session and returns Redis' `MEMORY USAGE` of its key.
async fn long_session_memory(server: &RedisServer, compress: bool) -> usize {
    const EVENTS: usize = 24;
    let store = RedisStore::new(RedisConfig {
        compress,
        ..RedisConfig::new(server.url())
    })
    .expect("a valid URL");
    let a = replica(store.clone());
    let mut redis = server.connection();
    let s = if compress { "long-z" } else { "long" };
    let mut previous = a.call_action(event_of(s, 0, None, None)).await.unwrap();
    let mut sizes = Vec::new();
    for step in 1..=EVENTS {
        // 4: the monthly offer, then back to the main menu, again and again.
        previous = a
            .call_action(event_of(s, step, Some(&previous), Some("4")))
            .await
            .unwrap();
        let size: usize = redis::cmd("HSTRLEN")
            .arg(store.state_key(s))
            .arg("r")
            .query(&mut redis)
            .unwrap();
        sizes.push(size);
    }
    // The eventIds are kept once, in `ids`, the latest EVENTS_KEPT of them.
    let ids: String = redis::cmd("HGET")
        .arg(store.state_key(s))
        .arg("ids")
        .query(&mut redis)
        .unwrap();
    let kept: Vec<&str> = ids.split('|').filter(|id| !id.is_empty()).collect();
    assert_eq!(kept.len(), switchboard_runtime::store::EVENTS_KEPT, "{ids}");
    assert_eq!(
        kept.last(),
        Some(&format!("{s}-e{EVENTS}").as_str()),
        "{ids}"
    );
    let memory: usize = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(store.state_key(s))
        .query(&mut redis)
        .unwrap();
    println!(
        "compress={compress}: stored record after 1, 4, 16, {EVENTS} events: {} {} {} {} bytes; \
         MEMORY USAGE {memory}",
        sizes[0],
        sizes[3],
        sizes[15],
        sizes[EVENTS - 1]
    );
    let (full, last) = (sizes[15], sizes[EVENTS - 1]);
    assert!(
        last < full + full / 20,
        "bounded by the events kept: {full} then {last}"
    );
    memory
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_session_deletes_it_and_returns_what_was_stored() {
    let server = RedisServer::start();
    let store = store(&server.url());
    let s = "end-1";
    let v1 = record(1, "hours", &["e1"]);
    assert_eq!(
        store.commit(s, None, &v1, "e1").await.unwrap(),
        Commit::Written
    );
    // One EVALSHA reads the record (where the call ended) and deletes it.
    assert_eq!(store.end(s).await.unwrap(), Some(v1));
    let exists: bool =
        redis::Commands::exists(&mut server.connection(), store.state_key(s)).unwrap();
    assert!(!exists);
    assert_eq!(store.end(s).await.unwrap(), None, "nothing left to end");
}

/// A live actor ending its session holds the record at some version: Redis returns (and
/// decodes) what it stored only when that is newer, and deletes it either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_session_one_holds_returns_only_a_newer_stored_record() {
    let server = RedisServer::start();
    let store = store(&server.url());
    let exists = |s: &str| -> bool {
        redis::Commands::exists(&mut server.connection(), store.state_key(s)).unwrap()
    };
    let v1 = record(1, "main", &["e1"]);
    let v2 = record(2, "hours", &["e1", "e2"]);

    // Stored at the caller's own version: nothing to read back.
    assert_eq!(
        store.commit("held-1", None, &v1, "e1").await.unwrap(),
        Commit::Written
    );
    assert_eq!(store.end_newer_than("held-1", 1).await.unwrap(), None);
    assert!(!exists("held-1"), "deleted all the same");

    // Another replica moved the call on: the newer record is returned.
    assert_eq!(
        store.commit("held-2", None, &v1, "e1").await.unwrap(),
        Commit::Written
    );
    assert_eq!(
        store.commit("held-2", Some(1), &v2, "e2").await.unwrap(),
        Commit::Written
    );
    assert_eq!(store.end_newer_than("held-2", 1).await.unwrap(), Some(v2));
    assert!(!exists("held-2"));

    // Nothing stored.
    assert_eq!(store.end_newer_than("held-3", 4).await.unwrap(), None);
}

/// A rolling upgrade from a version that stored JSON: replicas of this version read what it
/// stored, and with `format: Json` they write what it reads, so the two kinds of replica can
/// share sessions until the last old one is gone; then binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_stored_as_json_and_as_binary_are_shared_during_a_rolling_upgrade() {
    let server = RedisServer::start();
    let json = RedisStore::new(RedisConfig {
        format: RecordFormat::Json,
        ..RedisConfig::new(server.url())
    })
    .unwrap();
    let binary = store(&server.url());
    let mut redis = server.connection();
    let s = "upgrade-1";
    let key = binary.state_key(s);

    // What the JSON-writing version stored: the record as JSON, eventIds in it and in `ids`.
    let v1 = record(1, "main", &["e1"]);
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("v")
        .arg(1)
        .arg("ids")
        .arg("|e1|")
        .arg("r")
        .arg(serde_json::to_vec(&v1).unwrap())
        .query(&mut redis)
        .unwrap();
    assert_eq!(binary.load(s).await.unwrap(), Some(v1.clone()));

    // A replica of this version in JSON mode writes what the old version reads: serde JSON of
    // the whole record, eventIds included.
    let v2 = record(2, "reservations", &["e1", "e2"]);
    assert_eq!(
        json.commit(s, Some(1), &v2, "e2").await.unwrap(),
        Commit::Written
    );
    let r: Vec<u8> = redis.hget(&key, "r").unwrap();
    let as_old_version_reads_it: Record = serde_json::from_slice(&r).expect("plain JSON");
    assert_eq!(as_old_version_reads_it, v2);

    // A binary write over it, read back by both kinds of replica of this version.
    let v3 = record(3, "hours", &["e1", "e2", "e3"]);
    assert_eq!(
        binary.commit(s, Some(2), &v3, "e3").await.unwrap(),
        Commit::Written
    );
    let r: Vec<u8> = redis.hget(&key, "r").unwrap();
    assert_eq!(r.first(), Some(&0), "binary records start with 0x00");
    assert!(r.len() * 2 < serde_json::to_vec(&v3).unwrap().len());
    assert_eq!(json.load(s).await.unwrap(), Some(v3.clone()));
    assert_eq!(binary.load(s).await.unwrap(), Some(v3.clone()));
    // Its duplicates get the same answer, whichever replica reads it.
    match json
        .commit(s, Some(3), &record(4, "main", &["e3"]), "e3")
        .await
    {
        Ok(Commit::Conflict(Some(stored))) => {
            assert_eq!(stored.answer_for("e3"), Some(v3.last_answer()));
        }
        other => panic!("expected the stored record for a duplicate, got {other:?}"),
    }
}
