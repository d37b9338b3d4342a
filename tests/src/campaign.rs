//! What the tests of a campaign that outlives its replica share: replicas on one Redis placing
//! calls through an [`Emulator`], a list whose rows end as scripted, the admin API, and the
//! platform's record read back from the emulator's log.
//!
//! Row `i` calls [`number`]`(i)`; [`expected`] says how it ends and how often it is called,
//! and [`emulator_args`] scripts the emulator to make it so.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{EMULATOR_API_KEY, Emulator, Server};

/// The flow the campaigns run (menu: press 1 to confirm).
pub const FLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/outbound/reminder.yaml"
);

/// The admin token of every replica.
pub const ADMIN: &str = "t0k3n";

/// The environment of a replica placing calls through the emulator at `api`, with a short
/// lease (2 s) and poll (200 ms).
fn env(api: &str) -> [(&'static str, &str); 7] {
    [
        ("SWITCHBOARD_CALLFLOWS_URL", api),
        ("SWITCHBOARD_CALLFLOWS_SUB_ACCOUNT", "acme_voice"),
        ("SWITCHBOARD_CALLFLOWS_API_KEY", EMULATOR_API_KEY),
        ("SWITCHBOARD_OUTBOUND_FROM", "+6568880099"),
        ("SWITCHBOARD_ADMIN_TOKEN", ADMIN),
        ("SWITCHBOARD_CAMPAIGN_LEASE", "2s"),
        ("SWITCHBOARD_CAMPAIGN_POLL", "200ms"),
    ]
}

/// A replica on `redis`, placing calls through the emulator at `api`, with a short lease.
pub fn replica(api: &str, redis: &str) -> Server {
    Server::start_with_env(&["--flows", FLOW, "--redis", redis], &env(api))
}

/// [`replica`] listening on `addr` (a replica restarted where the platform sends webhooks).
pub fn replica_on(addr: SocketAddr, api: &str, redis: &str) -> Server {
    Server::start_on(addr, &["--flows", FLOW, "--redis", redis], &env(api))
}

/// Row `i` calls +6592000000 + i.
pub fn number(i: usize) -> String {
    format!("+{}", 6_592_000_000u64 + i as u64)
}

/// Row `i`'s outcome and how often it is called: every 10th row from 1 is busy (tried
/// twice with `busy_retries=1`), from 2 does not answer; the rest answer and confirm.
pub fn expected(i: usize) -> (&'static str, u64) {
    match i % 10 {
        1 => ("BUSY", 2),
        2 => ("NO_ANSWER", 1),
        _ => ("COMPLETED", 1),
    }
}

/// The emulator's arguments for `rows` rows: every call answered and 1 pressed, except the
/// numbers [`expected`] makes busy or unanswered; each spoken action takes `speak`.
pub fn emulator_args(rows: usize, speak: &str) -> Vec<String> {
    let mut args: Vec<String> = ["--transfer-mix", "answered=1", "--script", "1", "--speak"]
        .map(str::to_owned)
        .to_vec();
    args.push(speak.to_owned());
    for i in 0..rows {
        let result = match expected(i).0 {
            "BUSY" => "busy",
            "NO_ANSWER" => "no-answer",
            _ => continue,
        };
        args.extend(["--outcome".to_owned(), format!("{}={result}", number(i))]);
    }
    args
}

/// Starts the emulator on `port`, sending webhooks to `webhook`, scripted for `rows` rows.
pub fn emulator(port: u16, webhook: &str, rows: usize, speak: &str) -> Emulator {
    let args = emulator_args(rows, speak);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Emulator::start(port, webhook, &args)
}

/// `GET path` with the admin token: the status and the JSON body (`null` if none).
pub async fn get(server: &Server, path: &str) -> (u16, Value) {
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

/// The value of an unlabelled series on `server`'s `/metrics`.
pub async fn metric(server: &Server, name: &str) -> Option<f64> {
    let reply = server.http().send("GET", "/metrics", &[], Vec::new()).await;
    String::from_utf8_lossy(&reply.body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Starts a campaign over `rows` rows on `server` with the policy in `query`
/// (`rate=10&...`); asserts a 201 and returns its id.
pub async fn start(server: &Server, rows: usize, query: &str) -> String {
    let mut csv = String::from("number,name\n");
    for i in 0..rows {
        csv.push_str(&format!("{},Patient {i}\n", number(i)));
    }
    let started = server
        .http()
        .send(
            "POST",
            &format!("/v1/campaigns?flow=reminder&{query}"),
            &[
                ("authorization", &format!("Bearer {ADMIN}")),
                ("content-type", "text/csv"),
            ],
            csv,
        )
        .await;
    assert_eq!(started.status, 201, "{:?}", started.json());
    started.json()["id"]
        .as_str()
        .expect("the campaign's id")
        .to_owned()
}

/// Polls `server`'s view of campaign `id` until it is finished, at most `timeout`; the last
/// view.
pub async fn wait_finished(server: &Server, id: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let view = get(server, &format!("/v1/campaigns/{id}")).await.1;
        if view["finished"] == true || Instant::now() >= deadline {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The export of campaign `id` from `server`: its rows, in list order (asserts a 200).
pub async fn export(server: &Server, id: &str) -> Vec<Value> {
    let (status, export) = get(server, &format!("/v1/campaigns/{id}/export")).await;
    assert_eq!(status, 200, "{export}");
    export["rows"].as_array().cloned().unwrap_or_default()
}

/// The API requests of the log that created a call (not refused, not a repeat).
pub fn created(log: &[Value]) -> impl Iterator<Item = &Value> {
    log.iter()
        .filter(|e| e["event"] == "request" && e["status"] == 200 && e["repeated"] == false)
}

/// How many API requests the log holds.
pub fn requests(log: &[Value]) -> usize {
    log.iter().filter(|e| e["event"] == "request").count()
}

/// The calls created and not ended yet, by session id.
pub fn in_progress(log: &[Value]) -> Vec<String> {
    created(log)
        .filter_map(|r| r["sessionId"].as_str())
        .filter(|s| {
            !log.iter()
                .any(|e| e["event"] == "ended" && e["sessionId"] == *s)
        })
        .map(str::to_owned)
        .collect()
}

/// Calls created per destination (E.164 digits, no `+`).
pub fn calls(log: &[Value]) -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for request in created(log) {
        if let Some(destination) = request["destination"].as_str() {
            *calls.entry(destination.to_owned()).or_default() += 1;
        }
    }
    calls
}

/// Waits until every call created has ended, at most `timeout`; the log.
pub fn wait_all_ended(emulator: &Emulator, timeout: Duration) -> Vec<Value> {
    emulator.wait_for(timeout, |log| {
        let ended = log.iter().filter(|e| e["event"] == "ended").count();
        ended >= created(log).count()
    })
}

/// Every line of the log about row `i`'s number, for an assertion's message.
pub fn about(log: &[Value], i: usize) -> Vec<&Value> {
    let digits = number(i).trim_start_matches('+').to_owned();
    let sessions: Vec<&str> = log
        .iter()
        .filter(|e| e["destination"] == digits.as_str())
        .filter_map(|e| e["sessionId"].as_str())
        .collect();
    log.iter()
        .filter(|e| {
            e["destination"] == digits.as_str()
                || e["sessionId"]
                    .as_str()
                    .is_some_and(|s| sessions.contains(&s))
        })
        .collect()
}
