//! A campaign call whose session summary never comes: after the policy's `call_deadline`, on
//! a clock the test moves, the row ends `TIMED_OUT` and its concurrency slot goes to the next
//! row. The server is built in this process (so its clock can be injected) and serves on a
//! real socket; the 8x8 side is the real `switchboard-loadgen emulate` process, sending the
//! calls' webhooks to a port where nothing listens, so no summary ever reaches the server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use switchboard_outbound::list;
use switchboard_outbound::schedule::{Policy, Retry};
use switchboard_server::campaign::Clock;
use switchboard_server::{Config, server};
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

/// Waits (at most 30 s, for slow machines) until the emulator has created `n` calls; their
/// destinations.
fn wait_for_created(emulator: &Emulator, n: usize) -> Vec<String> {
    let created = |log: &[serde_json::Value]| -> Vec<String> {
        log.iter()
            .filter(|e| e["event"] == "request" && e["status"] == 200)
            .map(|e| e["destination"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let log = emulator.wait_for(Duration::from_secs(30), |log| created(log).len() >= n);
    created(&log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_a_summary_frees_its_slot_at_the_deadline() {
    let port = Emulator::reserve_port();
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
    // The webhooks go nowhere: the server never hears how the calls end.
    let nowhere = format!("http://127.0.0.1:{}", Emulator::reserve_port());
    let emulator = Emulator::start(port, &nowhere, &["--transfer-mix", "answered=1"]);
    let csv = "number\n+6591000000\n+6591000001\n";
    let policy = Policy {
        rate: 10.0,
        concurrency: 1,
        window: None,
        busy: Retry::default(),
        no_answer: Retry::default(),
        transient: Retry::default(),
        call_deadline: Duration::from_secs(120),
    };
    let id = app
        .campaigns
        .start(
            "reminder".to_owned(),
            None,
            list::parse(csv, None).unwrap(),
            policy,
        )
        .await
        .unwrap();
    assert_eq!(wait_for_created(&emulator, 1), ["6591000000"]);

    // A second before the deadline: the first call still holds the only slot.
    clock.set("2026-03-02T10:01:59Z");
    app.campaigns.wake_all();
    let view = app.campaigns.view(&id).await.unwrap().unwrap();
    assert_eq!(
        (view.progress.dialling, view.progress.pending),
        (1, 1),
        "{view:?}"
    );

    // The deadline: the first row times out, and the second is dialled in its slot.
    clock.set("2026-03-02T10:02:00Z");
    app.campaigns.wake_all();
    assert_eq!(wait_for_created(&emulator, 2), ["6591000000", "6591000001"]);
    let export = app.campaigns.export(&id).await.unwrap().unwrap();
    assert_eq!(
        export[0].outcome.as_deref(),
        Some("TIMED_OUT"),
        "{export:?}"
    );
    assert_eq!(export[0].attempts, 1, "a timed-out call is not tried again");
    assert_eq!(export[0].result.sessions.len(), 1, "{export:?}");

    // The second times out two minutes after it was dialled; the campaign is over.
    clock.set("2026-03-02T10:04:00Z");
    app.campaigns.wake_all();
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
        view.progress.outcomes.get("TIMED_OUT"),
        Some(&2),
        "{view:?}"
    );
    assert_eq!(
        wait_for_created(&emulator, 2).len(),
        2,
        "nobody is called again"
    );
}
