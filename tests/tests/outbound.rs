//! Outbound calls end to end: `switchboard call` and `POST /v1/calls` on real servers, the
//! 8x8 side played by the real `switchboard-loadgen emulate` process.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::{EMULATOR_API_KEY, Emulator, RedisServer, Server, run};

const FLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/outbound/reminder.yaml"
);
const ADMIN: &str = "t0k3n";

/// A replica configured for outbound calls through the emulator at `api`.
fn replica(api: &str, redis: Option<&str>, key: &str, sub_account: &str) -> Server {
    let mut args = vec!["--flows", FLOW];
    if let Some(url) = redis {
        args.extend(["--redis", url]);
    }
    Server::start_with_env(
        &args,
        &[
            ("SWITCHBOARD_CALLFLOWS_URL", api),
            ("SWITCHBOARD_CALLFLOWS_SUB_ACCOUNT", sub_account),
            ("SWITCHBOARD_CALLFLOWS_API_KEY", key),
            ("SWITCHBOARD_OUTBOUND_FROM", "+6568880099"),
            ("SWITCHBOARD_ADMIN_TOKEN", ADMIN),
        ],
    )
}

fn visits(report: &Value, node: &str) -> u64 {
    report["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node"] == node))
        .and_then(|n| n["visits"].as_u64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_placed_on_one_replica_is_served_by_another_with_its_variables() {
    let redis = RedisServer::start();
    let port = Emulator::reserve_port();
    let api = format!("http://127.0.0.1:{port}");
    let a = replica(&api, Some(&redis.url()), EMULATOR_API_KEY, "acme_voice");
    let b = replica(&api, Some(&redis.url()), EMULATOR_API_KEY, "acme_voice");
    // The platform sends every webhook of the call to replica B; the call is placed on A. The
    // callee answers at once (no ring time), so the first webhook can beat the API's answer.
    let emulator = Emulator::start(
        port,
        &b.base(),
        &["--transfer-mix", "answered=1", "--script", "1"],
    );
    let (code, out, err) = tokio::task::spawn_blocking({
        let base = a.base();
        move || {
            run(
                &[
                    "call",
                    "--flow",
                    "reminder",
                    "--to",
                    "+65 9123 4567",
                    "--var",
                    "name=Ana",
                    "--var",
                    "when=Tuesday at 10",
                    "--server",
                    &base,
                    "--token",
                    ADMIN,
                ],
                &[],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "stdout {out}\nstderr {err}");
    let session = out
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no session id in {out:?}"))
        .to_owned();
    let log = emulator.wait_for(Duration::from_secs(30), |l| {
        l.iter().any(|e| e["event"] == "ended")
    });
    let request = log.iter().find(|e| e["event"] == "request").unwrap();
    assert_eq!(request["status"], 200, "{request}");
    assert_eq!(request["sessionId"], session.as_str());
    assert_eq!(request["destination"], "6591234567");
    let callflow = request["callflow"].as_array().unwrap();
    assert_eq!(callflow[0]["action"], "makeCall");
    assert_eq!(callflow[0]["params"]["source"], "+6568880099");
    let prompt = callflow[1]["params"]["promptMessage"].as_str().unwrap();
    assert!(
        prompt.starts_with("Hello Ana, ") && prompt.contains("Tuesday at 10"),
        "{prompt}"
    );
    let ended = log.iter().find(|e| e["event"] == "ended").unwrap();
    assert_eq!(ended["sessionId"], session.as_str());
    assert_eq!(ended["outcome"], "hangup", "{log:?}");

    // B continued the session A registered: the caller's 1 reached `confirmed`, no apology.
    let report = b
        .http()
        .get("/v1/flows/reminder/report", Some(ADMIN))
        .await
        .json();
    assert_eq!(visits(&report, "confirmed"), 1, "{report}");
    assert!(
        !b.log().iter().any(|l| l.contains("unresolved")),
        "{:?}",
        b.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_field_or_carry_the_platforms_status() {
    let port = Emulator::reserve_port();
    let api = format!("http://127.0.0.1:{port}");
    let good = replica(&api, None, EMULATOR_API_KEY, "acme_voice");
    let bad_key = replica(&api, None, "wrong", "acme_voice");
    let bad_account = replica(&api, None, EMULATOR_API_KEY, "nobody");
    let _emulator = Emulator::start(
        port,
        &good.base(),
        &[
            "--known-sub-account",
            "acme_voice",
            "--transfer-mix",
            "busy=1",
        ],
    );
    let post = |server: &Server, body: Value| {
        let http = server.http();
        async move {
            http.send(
                "POST",
                "/v1/calls",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &format!("Bearer {ADMIN}")),
                ],
                body.to_string(),
            )
            .await
        }
    };
    let reply = post(&good, json!({"flow": "reminder", "to": "12ab"})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["field"], "to", "{}", reply.json());
    let reply = post(&good, json!({"flow": "nope", "to": "+6591234567"})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["field"], "flow");
    let reply = post(
        &good,
        json!({"flow": "reminder", "to": "+6591234567", "colour": 1}),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour")
    );

    let reply = post(&bad_key, json!({"flow": "reminder", "to": "+6591234567"})).await;
    assert_eq!(reply.status, 502);
    let error = &reply.json()["error"];
    assert_eq!(error["status"], 401, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Authentication header not found or token invalid")
    );
    let reply = post(
        &bad_account,
        json!({"flow": "reminder", "to": "+6591234567"}),
    )
    .await;
    assert_eq!(reply.status, 502);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SubAccount not found by Id : nobody")
    );

    let reply = post(&good, json!({"flow": "reminder", "to": "+6591234567"})).await;
    assert_eq!(reply.status, 200, "{}", reply.json());

    // The command line says the same, and exits 1.
    let (code, _, err) = tokio::task::spawn_blocking({
        let base = good.base();
        move || {
            run(
                &[
                    "call", "--flow", "reminder", "--to", "12ab", "--server", &base, "--token",
                    ADMIN,
                ],
                &[],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1));
    assert!(err.contains("400: to: bad number \"12ab\""), "{err}");
}

/// Numbers of the 500-row campaign: row `i` calls +6591000000 + i.
fn number(i: usize) -> String {
    format!("+{}", 6_591_000_000u64 + i as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_dials_every_row_once_within_its_rate_and_concurrency() {
    const ROWS: usize = 500;
    const RATE: f64 = 100.0;
    const CONCURRENCY: i64 = 20;
    let port = Emulator::reserve_port();
    let api = format!("http://127.0.0.1:{port}");
    let server = replica(&api, None, EMULATOR_API_KEY, "acme_voice");
    // Every 50th row from 1 is busy, from 2 does not answer; row 3 is refused by the platform.
    // Each spoken action takes 150 ms, so an answered call lasts 300 ms or more: at 100 calls/s
    // more than 20 would be in progress, and the cap has to hold them back.
    let mut args: Vec<String> = [
        "--transfer-mix",
        "answered=1",
        "--script",
        "1",
        "--speak",
        "150ms",
    ]
    .map(str::to_owned)
    .to_vec();
    for i in (0..ROWS).filter(|i| i % 50 == 1) {
        args.extend(["--outcome".to_owned(), format!("{}=busy", number(i))]);
    }
    for i in (0..ROWS).filter(|i| i % 50 == 2) {
        args.extend(["--outcome".to_owned(), format!("{}=no-answer", number(i))]);
    }
    args.extend(["--fail".to_owned(), format!("{}=422", number(3))]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let emulator = Emulator::start(port, &server.base(), &args);
    let dir = std::env::temp_dir().join(format!(
        "switchboard-campaign-{}",
        switchboard_tests::uuid()
    ));
    std::fs::create_dir_all(&dir).unwrap();

    // A bad list is refused whole, with line numbers, before any call.
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        format!(
            "number,name\n{},Ana\n12ab,Ben\n{},Ana again\n",
            number(0),
            number(0)
        ),
    )
    .unwrap();
    let base = server.base();
    let cli = move |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&args, &[])
        })
    };
    let (code, _, err) = cli(vec![
        "campaign".into(),
        "start".into(),
        bad.display().to_string(),
        "--flow".into(),
        "reminder".into(),
        "--server".into(),
        base.clone(),
        "--token".into(),
        ADMIN.into(),
    ])
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("line 3: column number: bad number \"12ab\""),
        "{err}"
    );
    assert!(
        err.contains("line 4: column number: duplicate row: +6591000000 is already on line 2"),
        "{err}"
    );
    let mut missing = dir.join("missing.csv");
    std::fs::write(&missing, "phone,name\n+6591000000,Ana\n").unwrap();
    let (code, _, err) = cli(vec![
        "campaign".into(),
        "start".into(),
        missing.display().to_string(),
        "--flow".into(),
        "reminder".into(),
        "--server".into(),
        base.clone(),
        "--token".into(),
        ADMIN.into(),
    ])
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("line 1: column number: missing column"),
        "{err}"
    );
    assert!(emulator.arrivals().is_empty(), "no call before a good list");

    // The good list.
    let mut csv = String::from("number,name,when\n");
    for i in 0..ROWS {
        csv.push_str(&format!("{},Patient {i},\"Tuesday, 10:00\"\n", number(i)));
    }
    missing.set_file_name("list.csv");
    std::fs::write(&missing, csv).unwrap();
    let (code, out, err) = cli(vec![
        "campaign".into(),
        "start".into(),
        missing.display().to_string(),
        "--flow".into(),
        "reminder".into(),
        "--rate".into(),
        RATE.to_string(),
        "--concurrency".into(),
        CONCURRENCY.to_string(),
        "--busy-retries".into(),
        "1".into(),
        "--busy-delay".into(),
        "200ms".into(),
        "--wait".into(),
        "--server".into(),
        base.clone(),
        "--token".into(),
        ADMIN.into(),
    ])
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{out}\n{err}");
    let id = out
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    assert!(out.contains(&format!("{ROWS}/{ROWS} done")), "{out}");

    let export = server
        .http()
        .get(&format!("/v1/campaigns/{id}/export"), Some(ADMIN))
        .await
        .json();
    let rows = export["rows"].as_array().unwrap();
    assert_eq!(rows.len(), ROWS);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["number"], number(i).as_str());
        assert_eq!(row["line"], i + 2);
        let (outcome, attempts) = match i {
            3 => ("REJECTED", 1),
            _ if i % 50 == 1 => ("BUSY", 2),
            _ if i % 50 == 2 => ("NO_ANSWER", 1),
            _ => ("COMPLETED", 1),
        };
        assert_eq!(row["outcome"], outcome, "row {i}: {row}");
        assert_eq!(row["attempts"], attempts, "row {i}: {row}");
        assert_eq!(row["vars"]["name"], format!("Patient {i}").as_str());
        if outcome == "COMPLETED" {
            assert_eq!(row["digits"], "1", "row {i}: {row}");
            assert_eq!(row["node"], "confirmed", "row {i}: {row}");
        }
        if outcome == "REJECTED" {
            assert_eq!(row["status_code"], 422, "row {i}: {row}");
        }
    }
    let csv = server
        .http()
        .get(
            &format!("/v1/campaigns/{id}/export?format=csv"),
            Some(ADMIN),
        )
        .await;
    let csv = String::from_utf8_lossy(&csv.body).into_owned();
    assert!(
        csv.starts_with("line,number,status,outcome,attempts,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), ROWS + 1);
    assert!(csv.contains(",\"Tuesday, 10:00\""), "{}", &csv[..300]);

    // Measured on the platform's side: each number dialled once (busy ones twice, as the
    // policy says), the rate and the concurrency cap held.
    let log = emulator.arrivals();
    let requests: Vec<&Value> = log.iter().filter(|e| e["event"] == "request").collect();
    let mut per_number = std::collections::BTreeMap::<String, usize>::new();
    for r in requests.iter().filter(|r| r["status"] == 200) {
        assert_eq!(r["repeated"], false, "{r}");
        *per_number
            .entry(r["destination"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for i in 0..ROWS {
        let want = match i {
            3 => 0,
            _ if i % 50 == 1 => 2,
            _ => 1,
        };
        let digits = number(i).trim_start_matches('+').to_owned();
        assert_eq!(
            per_number.get(&digits).copied().unwrap_or(0),
            want,
            "row {i}"
        );
    }
    let mut times: Vec<i64> = requests
        .iter()
        .map(|r| r["at_ms"].as_i64().unwrap())
        .collect();
    times.sort_unstable();
    // At most RATE requests in any second (one more for the millisecond clock's rounding).
    let window = 1000;
    let most = times
        .iter()
        .enumerate()
        .map(|(i, t)| times[i..].iter().take_while(|u| **u < t + window).count())
        .max()
        .unwrap();
    assert!(
        most as f64 <= RATE + 1.0,
        "{most} requests within one second"
    );
    // Calls in progress, from the created requests to the session summaries.
    let mut events: Vec<(i64, i64)> = log
        .iter()
        .filter_map(|e| match e["event"].as_str() {
            Some("request") if e["status"] == 200 => Some((e["at_ms"].as_i64()?, 1)),
            Some("ended") => Some((e["at_ms"].as_i64()?, -1)),
            _ => None,
        })
        .collect();
    // At the same millisecond, an end comes before a start.
    events.sort_unstable();
    let mut live = 0;
    let mut peak = 0;
    for (_, delta) in events {
        live += delta;
        peak = peak.max(live);
    }
    assert!(peak <= CONCURRENCY, "{peak} calls in progress at once");
    assert!(
        peak > CONCURRENCY / 2,
        "the calls must overlap enough to test the cap ({peak})"
    );

    let metrics = server.http().get("/metrics", None).await;
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    for line in [
        "switchboard_campaign_rows_total 500",
        "switchboard_campaign_attempts_total 510",
        "switchboard_campaign_rows_done_total{outcome=\"BUSY\"} 10",
        "switchboard_campaign_rows_done_total{outcome=\"COMPLETED\"} 479",
        "switchboard_campaign_rows_done_total{outcome=\"REJECTED\"} 1",
        "switchboard_outbound_requests_total{result=\"created\"} 509",
        "switchboard_outbound_requests_total{result=\"422\"} 1",
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
