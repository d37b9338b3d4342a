//! Pausing, resuming and cancelling a campaign, on a clock the test moves. The server is
//! built in this process (so its clock can be injected) and serves on a real socket; the 8x8
//! side is the real `switchboard-loadgen emulate` process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_outbound::list;
use switchboard_outbound::schedule::{Policy, Retry, State};
use switchboard_server::campaign::Clock;
use switchboard_server::campaign::Control;
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
async fn pause_resume_and_cancel() {
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
    let clock = Arc::new(ManualClock(Mutex::new(at("2026-03-02T10:00:00Z"))));
    let app = server::build_with_clock(&config, clock.clone()).unwrap();
    tokio::spawn(axum::serve(listener, http::app(app.clone())).into_future());
    let emulator = Emulator::start(
        port,
        &webhook,
        &["--transfer-mix", "answered=1", "--script", "2"],
    );
    let csv: String = std::iter::once("number\n".to_owned())
        .chain((0..4).map(|i| format!("+659100000{i}\n")))
        .collect();
    let policy = Policy {
        rate: 1.0,
        concurrency: 4,
        window: None,
        busy: Retry::default(),
        no_answer: Retry::default(),
        transient: Retry::default(),
        call_deadline: Duration::from_secs(3600),
    };
    let id = app
        .campaigns
        .start(
            "reminder".to_owned(),
            None,
            list::parse(&csv, None).unwrap(),
            policy,
        )
        .await
        .unwrap();
    wait_for_calls(&emulator, 1);

    assert!(app.campaigns.control(&id, Control::Pause).await.unwrap());
    clock.set("2026-03-02T10:00:05Z");
    app.campaigns.wake_all();
    let view = app.campaigns.view(&id).await.unwrap().unwrap();
    assert_eq!(view.state, State::Paused);
    assert_eq!(view.next_dial, None, "a paused campaign dials no one");

    assert!(app.campaigns.control(&id, Control::Resume).await.unwrap());
    wait_for_calls(&emulator, 2);
    assert!(app.campaigns.control(&id, Control::Cancel).await.unwrap());
    clock.set("2026-03-02T10:00:10Z");
    app.campaigns.wake_all();
    let view = app.campaigns.view(&id).await.unwrap().unwrap();
    assert_eq!(view.state, State::Canceled);
    assert_eq!(view.progress.outcomes.get("CANCELED"), Some(&2), "{view:?}");
    assert_eq!(created(&emulator).len(), 2);
    assert!(!app.campaigns.control("nope", Control::Pause).await.unwrap());

    // The two calls placed finish as they will: the callee pressed 2.
    let mut view = app.campaigns.view(&id).await.unwrap().unwrap();
    for _ in 0..300 {
        if view.finished {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        view = app.campaigns.view(&id).await.unwrap().unwrap();
    }
    assert_eq!(
        view.progress.outcomes.get("COMPLETED"),
        Some(&2),
        "{view:?}"
    );
    let export = app.campaigns.export(&id).await.unwrap().unwrap();
    assert_eq!(export[0].result.digits.as_deref(), Some("2"));
    assert_eq!(export[0].result.node.as_deref(), Some("reschedule"));
}
