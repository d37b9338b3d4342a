//! A campaign survives the replica dialling it: two replicas share a real Redis, the one
//! holding the campaign's lease is SIGKILLed mid-campaign, and the other continues once the
//! lease lapses. Measured on the platform's side (the real `switchboard-loadgen emulate`
//! process and its record of every request): nobody is called twice, nobody is skipped, and
//! every row's outcome is what the platform made of its call.
//!
//! `campaign_restart.rs` kills the only replica and restarts it instead.

use std::time::Duration;

use serde_json::Value;
use switchboard_tests::campaign::{
    about, calls, emulator, expected, export, get, metric, number, replica, requests, start,
    wait_all_ended, wait_finished,
};
use switchboard_tests::{Emulator, RedisServer};

const ROWS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_campaign_is_continued_by_another_calling_no_one_twice() {
    let redis = RedisServer::start();
    let port = Emulator::reserve_port();
    let api = format!("http://127.0.0.1:{port}");
    let mut a = replica(&api, &redis.url());
    let b = replica(&api, &redis.url());
    // The platform sends every webhook to B; A dials. Spoken actions take 100 ms, so calls
    // are in progress when A dies.
    let emulator = emulator(port, &b.base(), ROWS, "100ms");

    let id = start(
        &a,
        ROWS,
        "rate=10&concurrency=6&busy_retries=1&busy_delay=300ms",
    )
    .await;
    assert_eq!(
        metric(&a, "switchboard_campaign_leases").await,
        Some(1.0),
        "A, which started the campaign, holds its lease"
    );

    // Either replica answers for the campaign.
    for server in [&a, &b] {
        let (status, view) = get(server, &format!("/v1/campaigns/{id}")).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["id"], id.as_str());
        assert_eq!(view["progress"]["total"], ROWS);
    }
    let (status, _) = get(&b, "/v1/campaigns/nope").await;
    assert_eq!(status, 404);

    // A third of the way through, A is killed.
    let log = emulator.wait_for(Duration::from_secs(60), |log| requests(log) >= ROWS / 3);
    assert!(
        requests(&log) >= ROWS / 3,
        "the campaign did not get going: {log:?}"
    );
    a.signal("KILL");
    a.wait_exit(Duration::from_secs(10));
    let killed_at = requests(&log);
    assert!(killed_at < ROWS, "A was killed too late to test anything");

    // B takes the campaign once A's lease lapses, and finishes it.
    let view: Value = wait_finished(&b, &id, Duration::from_secs(60)).await;
    assert_eq!(view["finished"], true, "{view}");
    assert!(
        b.wait_for_log("campaign continued on this replica", Duration::from_secs(5)),
        "{:?}",
        b.log()
    );
    assert_eq!(
        metric(&b, "switchboard_campaign_takeovers_total").await,
        Some(1.0)
    );

    // The platform's record: every number called as often as its outcome says, never more
    // (a request repeated after the takeover is answered with the call already made).
    let log = wait_all_ended(&emulator, Duration::from_secs(30));
    let calls = calls(&log);
    for i in 0..ROWS {
        let digits = number(i).trim_start_matches('+').to_owned();
        assert_eq!(
            calls.get(&digits).copied().unwrap_or(0),
            expected(i).1,
            "row {i} ({digits}): {:?}",
            about(&log, i)
        );
    }
    assert!(
        log.iter()
            .all(|e| e["event"] != "request" || e["status"] == 200),
        "no refusals: {log:?}"
    );

    // Every row's outcome, from the export of the replica that finished it, and from a new
    // replica that never dialled.
    let c = replica(&api, &redis.url());
    for server in [&b, &c] {
        let rows = export(server, &id).await;
        assert_eq!(rows.len(), ROWS);
        for (i, row) in rows.iter().enumerate() {
            let (outcome, attempts) = expected(i);
            assert_eq!(row["number"], number(i).as_str());
            assert_eq!(row["outcome"], outcome, "row {i}: {row}");
            assert_eq!(row["attempts"], attempts, "row {i}: {row}");
            if outcome == "COMPLETED" {
                assert_eq!(row["digits"], "1", "row {i}: {row}");
                assert_eq!(row["node"], "confirmed", "row {i}: {row}");
            }
        }
    }
}
