//! A campaign survives its only replica being SIGKILLed mid-campaign and restarted on the
//! same address and Redis: nobody is called twice, nobody is skipped, and every row's outcome
//! is what the platform made of its call. Measured on the platform's side (the real
//! `switchboard-loadgen emulate` process and its record of every request).
//!
//! The restarted process is a new lease holder: its token is its own (time, process id,
//! counter), and nothing tells it that the lease in the store belonged to a process that is
//! dead rather than to a live replica, so it waits like any replica for that lease to lapse
//! and then takes the campaign over (`campaign_takeover.rs` has a second replica do it).
//!
//! The calls in progress at the kill lose their webhooks: the platform gets no answer, drops
//! the call and sends its session summary to a server that is not there, and never sends it
//! again. The restarted replica requests those rows (still dialling in the store) again with
//! the same ticket; the platform answers with the call it made, so no second call, and since
//! the summary never comes the row ends `TIMED_OUT` at its `call_deadline` (not retried: the
//! call may have reached the callee).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use switchboard_tests::campaign::{
    about, calls, created, emulator, expected, export, in_progress, metric, number, replica,
    replica_on, requests, start, wait_all_ended, wait_finished,
};
use switchboard_tests::{Emulator, RedisServer};

const ROWS: usize = 60;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_campaign_and_restarted_calls_no_one_twice_and_skips_no_one() {
    let redis = RedisServer::start();
    let port = Emulator::reserve_port();
    let api = format!("http://127.0.0.1:{port}");
    let mut first = replica(&api, &redis.url());
    let addr = first.addr;
    // Every webhook goes to the replica's address. Spoken actions take 400 ms, so several
    // calls are in the middle of their flow when it dies.
    let emulator = emulator(port, &first.base(), ROWS, "400ms");
    // The deadline outlasts the time the campaign is without a replica plus a call.
    let id = start(
        &first,
        ROWS,
        "rate=10&concurrency=6&busy_retries=1&busy_delay=300ms&call_deadline=15s",
    )
    .await;

    // A third of the way through, with calls in progress, the replica is killed.
    let at_kill = emulator.wait_for(Duration::from_secs(60), |log| {
        requests(log) >= ROWS / 3 && in_progress(log).len() >= 2
    });
    assert!(
        requests(&at_kill) >= ROWS / 3 && in_progress(&at_kill).len() >= 2,
        "the campaign did not get going: {at_kill:?}"
    );
    first.signal("KILL");
    let killed_ms = unix_ms();
    first.wait_exit(Duration::from_secs(10));
    assert!(
        requests(&at_kill) < ROWS,
        "killed too late to test anything"
    );

    // The calls in progress end without it: their summaries go unanswered.
    let log = wait_all_ended(&emulator, Duration::from_secs(30));
    let lost: BTreeSet<String> = log
        .iter()
        .filter(|e| e["event"] == "ended" && e["summary"].is_null())
        .filter_map(|e| e["sessionId"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !lost.is_empty(),
        "no call was in progress at the kill: {log:?}"
    );

    // Restarted where the platform sends webhooks, it continues the campaign once the dead
    // process's lease lapses, and finishes it.
    let second = replica_on(addr, &api, &redis.url());
    let view: Value = wait_finished(&second, &id, Duration::from_secs(90)).await;
    assert_eq!(view["finished"], true, "{view}");
    assert!(
        second.wait_for_log("campaign continued on this replica", Duration::from_secs(5)),
        "{:?}",
        second.log()
    );
    assert_eq!(
        metric(&second, "switchboard_campaign_takeovers_total").await,
        Some(1.0),
        "the restarted process took the lease over as a new holder"
    );

    // The platform's record and the export, row by row.
    let log = wait_all_ended(&emulator, Duration::from_secs(30));
    assert!(
        log.iter()
            .all(|e| e["event"] != "request" || e["status"] == 200),
        "no refusals: {log:?}"
    );
    let calls = calls(&log);
    let rows = export(&second, &id).await;
    assert_eq!(rows.len(), ROWS);
    let mut timed_out = 0;
    for (i, row) in rows.iter().enumerate() {
        let digits = number(i).trim_start_matches('+').to_owned();
        let context = || format!("row {i}: {row}\n{:#?}", about(&log, i));
        assert_eq!(row["number"], number(i).as_str());
        // Nobody skipped; every attempt one call, and every call an attempt.
        assert_eq!(row["status"], "done", "{}", context());
        let made = calls.get(&digits).copied().unwrap_or(0);
        assert!(made >= 1, "{}", context());
        assert_eq!(row["attempts"], made, "{}", context());
        // How the row's last call ended, and whether its summary reached the replica.
        let last = created(&log)
            .filter(|r| r["destination"] == digits.as_str())
            .last()
            .expect("a call was made");
        let session = last["sessionId"].as_str().unwrap();
        let ended = log
            .iter()
            .find(|e| e["event"] == "ended" && e["sessionId"] == session)
            .unwrap_or_else(|| panic!("{}", context()));
        let (outcome, attempts) = expected(i);
        if ended["summary"] == 200 {
            assert_eq!(row["outcome"], outcome, "{}", context());
            assert_eq!(row["attempts"], attempts, "{}", context());
            if outcome == "COMPLETED" {
                assert_eq!(row["digits"], "1", "{}", context());
                assert_eq!(row["node"], "confirmed", "{}", context());
            }
            continue;
        }
        assert!(lost.contains(session), "{}", context());
        // A summary sent before the kill took effect may have been recorded although its
        // answer never left; one sent after it never reached anyone.
        if ended["at_ms"].as_u64().unwrap() <= killed_ms && row["outcome"] == outcome {
            continue;
        }
        timed_out += 1;
        assert_eq!(row["outcome"], "TIMED_OUT", "{}", context());
        assert_eq!(row["sessions"].as_array().unwrap().last().unwrap(), session);
        // The restarted replica asked for that attempt again, and the platform recognised
        // the ticket: the call it had made, not another.
        let ticket = &last["clientRequestId"];
        let repeats: Vec<&Value> = log
            .iter()
            .filter(|e| e["event"] == "request" && e["repeated"] == true)
            .filter(|e| e["clientRequestId"] == *ticket)
            .collect();
        assert!(!repeats.is_empty(), "{}", context());
        assert!(
            repeats.iter().all(|r| r["sessionId"] == session),
            "{}",
            context()
        );
    }
    assert!(timed_out >= 1, "no row was in flight at the kill");
    eprintln!(
        "killed after {} requests; {} summaries lost; {timed_out} rows TIMED_OUT; {} requests \
         repeated after the restart",
        requests(&at_kill),
        lost.len(),
        log.iter().filter(|e| e["repeated"] == true).count()
    );
}
