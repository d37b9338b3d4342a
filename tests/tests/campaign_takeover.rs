//! A campaign survives the replica dialling it: two replicas share a real Redis, the one
//! holding the campaign's lease is SIGKILLed mid-campaign, and the other continues once the
//! lease lapses. Measured on the platform's side (the real `switchboard-loadgen emulate`
//! process and its record of every request): nobody is called twice, nobody is skipped, and
//! every row's outcome is what the platform made of its call.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use switchboard_tests::{EMULATOR_API_KEY, Emulator, RedisServer, Server};

const FLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/outbound/reminder.yaml"
);
const ADMIN: &str = "t0k3n";
const ROWS: usize = 60;

/// A replica on `redis`, placing calls through the emulator at `api`, with a short lease.
fn replica(api: &str, redis: &str) -> Server {
    Server::start_with_env(
        &["--flows", FLOW, "--redis", redis],
        &[
            ("SWITCHBOARD_CALLFLOWS_URL", api),
            ("SWITCHBOARD_CALLFLOWS_SUB_ACCOUNT", "acme_voice"),
            ("SWITCHBOARD_CALLFLOWS_API_KEY", EMULATOR_API_KEY),
            ("SWITCHBOARD_OUTBOUND_FROM", "+6568880099"),
            ("SWITCHBOARD_ADMIN_TOKEN", ADMIN),
            ("SWITCHBOARD_CAMPAIGN_LEASE", "2s"),
            ("SWITCHBOARD_CAMPAIGN_POLL", "200ms"),
        ],
    )
}

/// Row `i` calls +6592000000 + i.
fn number(i: usize) -> String {
    format!("+{}", 6_592_000_000u64 + i as u64)
}

/// Every 10th row from 1 is busy (tried twice), from 2 does not answer; the rest confirm.
fn expected(i: usize) -> (&'static str, u64) {
    match i % 10 {
        1 => ("BUSY", 2),
        2 => ("NO_ANSWER", 1),
        _ => ("COMPLETED", 1),
    }
}

async fn get(server: &Server, path: &str) -> (u16, Value) {
    let reply = server
        .http()
        .send(
            "GET",
            path,
            &[("authorization", &format!("Bearer {ADMIN}"))],
            Vec::new(),
        )
        .await;
    let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status, body)
}

async fn metric(server: &Server, name: &str) -> Option<f64> {
    let reply = server.http().send("GET", "/metrics", &[], Vec::new()).await;
    String::from_utf8_lossy(&reply.body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_campaign_is_continued_by_another_calling_no_one_twice() {
    let redis = RedisServer::start();
    let port = Emulator::reserve_port();
    let api = format!("http://127.0.0.1:{port}");
    let mut a = replica(&api, &redis.url());
    let b = replica(&api, &redis.url());
    // The platform sends every webhook to B; A dials. Spoken actions take 100 ms, so calls
    // are in progress when A dies.
    let mut args: Vec<String> = [
        "--transfer-mix",
        "answered=1",
        "--script",
        "1",
        "--speak",
        "100ms",
    ]
    .map(str::to_owned)
    .to_vec();
    for i in 0..ROWS {
        match expected(i).0 {
            "BUSY" => args.extend(["--outcome".to_owned(), format!("{}=busy", number(i))]),
            "NO_ANSWER" => {
                args.extend(["--outcome".to_owned(), format!("{}=no-answer", number(i))]);
            }
            _ => {}
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let emulator = Emulator::start(port, &b.base(), &args);

    let mut csv = String::from("number,name\n");
    for i in 0..ROWS {
        csv.push_str(&format!("{},Patient {i}\n", number(i)));
    }
    let started = a
        .http()
        .send(
            "POST",
            "/v1/campaigns?flow=reminder&rate=10&concurrency=6&busy_retries=1&busy_delay=300ms",
            &[
                ("authorization", &format!("Bearer {ADMIN}")),
                ("content-type", "text/csv"),
            ],
            csv,
        )
        .await;
    assert_eq!(started.status, 201, "{:?}", started.json());
    let id = started.json()["id"].as_str().unwrap().to_owned();
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
    let log = emulator.wait_for(Duration::from_secs(60), |log| {
        log.iter().filter(|e| e["event"] == "request").count() >= ROWS / 3
    });
    assert!(
        log.iter().filter(|e| e["event"] == "request").count() >= ROWS / 3,
        "the campaign did not get going: {log:?}"
    );
    a.signal("KILL");
    a.wait_exit(Duration::from_secs(10));
    let killed_at = log.iter().filter(|e| e["event"] == "request").count();
    assert!(killed_at < ROWS, "A was killed too late to test anything");

    // B takes the campaign once A's lease lapses, and finishes it.
    let mut view = Value::Null;
    for _ in 0..600 {
        view = get(&b, &format!("/v1/campaigns/{id}")).await.1;
        if view["finished"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let log = emulator.wait_for(Duration::from_secs(30), |log| {
        let created = log
            .iter()
            .filter(|e| e["event"] == "request" && e["status"] == 200 && e["repeated"] == false)
            .count();
        let ended = log.iter().filter(|e| e["event"] == "ended").count();
        ended >= created
    });
    let mut calls = BTreeMap::<String, u64>::new();
    for request in log
        .iter()
        .filter(|e| e["event"] == "request" && e["status"] == 200 && e["repeated"] == false)
    {
        *calls
            .entry(request["destination"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for i in 0..ROWS {
        let digits = number(i).trim_start_matches('+').to_owned();
        assert_eq!(
            calls.get(&digits).copied().unwrap_or(0),
            expected(i).1,
            "row {i} ({digits}): {:?}",
            log.iter()
                .filter(|e| e["destination"] == digits.as_str())
                .collect::<Vec<_>>()
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
        let (status, export) = get(server, &format!("/v1/campaigns/{id}/export")).await;
        assert_eq!(status, 200, "{export}");
        let rows = export["rows"].as_array().unwrap();
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
