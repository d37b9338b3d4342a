//! A campaign on a clock the test moves: a calling window that closes mid-campaign holds the
//! remaining rows until it reopens, with no sleeping for the hours in between. The server is
//! built in this process (so its clock can be injected) and serves on a real socket; the 8x8
//! side is the real `switchboard-loadgen emulate` process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use serde_json::Value;
use switchboard_outbound::list;
use switchboard_outbound::schedule::{Policy, Retry, Window};
use switchboard_server::campaign::Clock;
use switchboard_server::{Config, http, server};
use switchboard_tests::{EMULATOR_API_KEY, Emulator};

const FLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/outbound/reminder.yaml"
);

/// A clock that moves only when told.
#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn set(&self, to: &str) {
        *self.0.lock().unwrap() = at(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn created(emulator: &Emulator) -> Vec<String> {
    emulator
        .arrivals()
        .iter()
        .filter(|e| e["event"] == "request" && e["status"] == 200)
        .map(|e| e["destination"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Waits (at most 30 s, for slow machines) until the emulator has created `n` calls and they
/// have all ended.
fn wait_for_calls(emulator: &Emulator, n: usize) -> Vec<Value> {
    let log = emulator.wait_for(Duration::from_secs(30), |log| {
        let requests = log
            .iter()
            .filter(|e| e["event"] == "request" && e["status"] == 200)
            .count();
        let ended = log.iter().filter(|e| e["event"] == "ended").count();
        requests >= n && ended >= n
    });
    let requests = log.iter().filter(|e| e["event"] == "request").count();
    assert_eq!(requests, n, "{log:?}");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_window_holds_dialling_until_it_reopens() {
    let port = Emulator::reserve_port();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook = format!("http://{}", listener.local_addr().unwrap());
    let config = Config {
        flows: Some(FLOW.into()),
        shards: 1,
        callflows: Some(switchboard_outbound::ApiConfig::new(
            format!("http://127.0.0.1:{port}"),
            "acme_voice",
            EMULATOR_API_KEY,
        )),
        outbound_from: Some("+6568880099".to_owned()),
        ..Config::default()
    };
    // Monday 16:59:57 in Singapore: three seconds of calling left today.
    let clock = Arc::new(ManualClock(Mutex::new(at("2026-03-02T08:59:57Z"))));
    let app = server::build_with_clock(&config, clock.clone()).unwrap();
    tokio::spawn(axum::serve(listener, http::app(app.clone())).into_future());
    let emulator = Emulator::start(
        port,
        &webhook,
        &["--transfer-mix", "answered=1", "--script", "1"],
    );

    let csv: String = std::iter::once("number,name\n".to_owned())
        .chain((0..5).map(|i| format!("+659100000{i},Patient {i}\n")))
        .collect();
    let rows = list::parse(&csv, None).unwrap();
    let policy = Policy {
        rate: 1.0,
        concurrency: 5,
        window: Some(Window {
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
            days: Vec::new(),
        }),
        busy: Retry::default(),
        no_answer: Retry::default(),
        transient: Retry::default(),
        call_deadline: Duration::from_secs(3600),
    };
    let id = app
        .campaigns
        .start("reminder".to_owned(), None, rows, policy)
        .await
        .unwrap();

    // One call per second of the clock, while the window is open.
    wait_for_calls(&emulator, 1);
    for (now, calls) in [("2026-03-02T08:59:58Z", 2), ("2026-03-02T08:59:59Z", 3)] {
        clock.set(now);
        app.campaigns.wake_all();
        wait_for_calls(&emulator, calls);
    }
    // 17:00: closed. The campaign waits for Tuesday 09:00 Singapore time (01:00 UTC).
    clock.set("2026-03-02T09:00:00Z");
    app.campaigns.wake_all();
    let view = app.campaigns.view(&id).await.unwrap().unwrap();
    assert_eq!(view.progress.pending, 2, "{view:?}");
    assert_eq!(view.next_dial, Some(at("2026-03-03T01:00:00Z")), "{view:?}");
    clock.set("2026-03-03T00:59:59Z");
    app.campaigns.wake_all();
    let view = app.campaigns.view(&id).await.unwrap().unwrap();
    assert_eq!(view.next_dial, Some(at("2026-03-03T01:00:00Z")), "{view:?}");
    assert_eq!(
        created(&emulator).len(),
        3,
        "nobody is called while the window is closed"
    );

    // Reopened: the last two rows.
    clock.set("2026-03-03T01:00:00Z");
    app.campaigns.wake_all();
    wait_for_calls(&emulator, 4);
    clock.set("2026-03-03T01:00:01Z");
    app.campaigns.wake_all();
    wait_for_calls(&emulator, 5);
    let dialled = created(&emulator);
    let want: Vec<String> = (0..5).map(|i| format!("659100000{i}")).collect();
    assert_eq!(dialled, want, "each row once, in list order");

    // The last summary finishes the campaign.
    let mut view = app.campaigns.view(&id).await.unwrap().unwrap();
    for _ in 0..300 {
        if view.finished {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        view = app.campaigns.view(&id).await.unwrap().unwrap();
    }
    assert!(view.finished, "{view:?}");
    assert_eq!(
        view.progress.outcomes.get("COMPLETED"),
        Some(&5),
        "{view:?}"
    );
}
