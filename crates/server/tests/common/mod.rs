//! What the campaign tests of this crate share: a server built in the test's process on a
//! clock the test moves ([`ManualClock`]), placing calls through the real
//! `switchboard-loadgen emulate` process, and the emulator's record read back.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_outbound::schedule::{Policy, Retry};
use switchboard_server::campaign::{Clock, View};
use switchboard_server::http::App;
use switchboard_server::{Config, http, server};
use switchboard_tests::{EMULATOR_API_KEY, Emulator};

/// The flow the campaigns run (menu: 1 confirms, 2 reschedules).
pub(crate) const FLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/outbound/reminder.yaml"
);

/// A clock that moves only when told.
#[derive(Debug)]
pub(crate) struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `text` (RFC 3339).
    pub(crate) fn at(text: &str) -> Arc<Self> {
        Arc::new(Self(Mutex::new(at(text))))
    }

    /// Moves it to `to` (RFC 3339).
    pub(crate) fn set(&self, to: &str) {
        *self.0.lock().unwrap() = at(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// An RFC 3339 time.
pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// A server on the memory store placing calls through the emulator on `port`, on `clock`.
pub(crate) fn build(port: u16, clock: Arc<ManualClock>) -> Arc<App> {
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
    server::build_with_clock(&config, clock).unwrap()
}

/// Serves `app`'s webhooks on a real socket; their URL.
pub(crate) async fn serve(app: &Arc<App>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, http::app(app.clone())).into_future());
    webhook
}

/// A policy of `rate` calls a second and `concurrency` at once, without a window or
/// retries, with a one-hour call deadline.
pub(crate) fn policy(rate: f64, concurrency: usize) -> Policy {
    Policy {
        rate,
        concurrency,
        window: None,
        busy: Retry::default(),
        no_answer: Retry::default(),
        transient: Retry::default(),
        call_deadline: Duration::from_secs(3600),
    }
}

/// The destinations of the calls the emulator created so far, in order.
pub(crate) fn created(emulator: &Emulator) -> Vec<String> {
    destinations(&emulator.arrivals())
}

fn destinations(log: &[Value]) -> Vec<String> {
    log.iter()
        .filter(|e| e["event"] == "request" && e["status"] == 200)
        .map(|e| e["destination"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Waits (at most 30 s, for slow machines) until the emulator has created `n` calls; their
/// destinations.
pub(crate) fn wait_for_created(emulator: &Emulator, n: usize) -> Vec<String> {
    let log = emulator.wait_for(Duration::from_secs(30), |log| destinations(log).len() >= n);
    destinations(&log)
}

/// Waits (at most 30 s, for slow machines) until the emulator has created `n` calls and they
/// have all ended; asserts that no other request came.
pub(crate) fn wait_for_calls(emulator: &Emulator, n: usize) -> Vec<Value> {
    let log = emulator.wait_for(Duration::from_secs(30), |log| {
        let ended = log.iter().filter(|e| e["event"] == "ended").count();
        destinations(log).len() >= n && ended >= n
    });
    let requests = log.iter().filter(|e| e["event"] == "request").count();
    assert_eq!(requests, n, "{log:?}");
    log
}

/// Waits (at most 30 s) until campaign `id` is finished; its last view.
pub(crate) async fn wait_finished(app: &App, id: &str) -> View {
    let mut view = app.campaigns.view(id).await.unwrap().unwrap();
    for _ in 0..300 {
        if view.finished {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        view = app.campaigns.view(id).await.unwrap().unwrap();
    }
    view
}
