//! `RedisStore`'s metrics, seen through a recorder installed for this test binary: the names
//! and labels, handles registered once (in `RedisStore::new`), and what each one counts.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use switchboard_runtime::redis_store::{RedisConfig, RedisStore};
use switchboard_runtime::{RuntimeError, SessionStore};

/// One metric: a counter's total, a gauge's value (as f64 bits) or a histogram's sample count.
#[derive(Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, value: f64) {
        self.set(f64::from_bits(self.0.load(Ordering::Relaxed)) + value);
    }
    fn decrement(&self, value: f64) {
        self.set(f64::from_bits(self.0.load(Ordering::Relaxed)) - value);
    }
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

impl HistogramFn for Cell {
    fn record(&self, _value: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Captured {
    cells: Mutex<HashMap<String, Arc<Cell>>>,
    registrations: AtomicUsize,
}

impl Captured {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        Arc::clone(self.cells.lock().unwrap().entry(name).or_default())
    }

    fn get(&self, name: &str) -> u64 {
        self.cells
            .lock()
            .unwrap()
            .get(name)
            .unwrap_or_else(|| panic!("{name} was never registered"))
            .0
            .load(Ordering::Relaxed)
    }
}

struct Capture(&'static Captured);

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.0.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.0.cell(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.0.cell(key))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_reports_durations_errors_pending_and_dropped_writes() {
    let captured: &'static Captured = Box::leak(Box::default());
    metrics::set_global_recorder(Capture(captured)).expect("the only recorder of this binary");
    let mut server = RedisServer::start();
    let store = RedisStore::new(RedisConfig {
        max_pending: 1,
        ..RedisConfig::new(server.url())
    })
    .unwrap();
    let registered = captured.registrations.load(Ordering::Relaxed);
    let a = replica(store.clone());

    let mut first = Vec::new();
    for s in ["m-0", "m-1"] {
        first.push(
            a.call_action(received(s, &format!("{s}-e0")))
                .await
                .unwrap(),
        );
    }
    store.ping().await.unwrap();
    a.end(summary("m-0")).await.unwrap();
    let b = replica(store.clone());
    b.call_action(received("m-2", "m-2-e0")).await.unwrap();
    // A new call is written without a read; reading a session b holds no actor for loads it.
    assert!(b.session("m-1").await.unwrap().is_some());
    let duration = |command: &str| {
        captured.get(&format!(
            "switchboard_redis_command_duration_seconds{{command={command}}}"
        ))
    };
    assert!(duration("commit") >= 3, "commit: {}", duration("commit"));
    assert!(duration("load") >= 1 && duration("ping") >= 1 && duration("end") >= 1);

    server.kill();
    a.call_action(completed("m-1", "m-1-e1", &first[1], Some("3")))
        .await
        .unwrap();
    assert_eq!(
        f64::from_bits(captured.get("switchboard_store_pending_writes{}")),
        1.0
    );
    assert!(captured.get("switchboard_redis_errors_total{kind=io}") >= 1);
    match b
        .call_action(completed("m-2", "m-2-e1", &first[1], Some("3")))
        .await
    {
        Err(RuntimeError::Store(_)) => {}
        other => panic!("the queue holds one session at most: {other:?}"),
    }
    assert_eq!(captured.get("switchboard_store_writes_dropped_total{}"), 1);
    assert_eq!(
        captured.registrations.load(Ordering::Relaxed),
        registered,
        "metric handles are made once, in RedisStore::new"
    );
    server.restart();
    assert_eq!(store.flush().await, 0);
    assert_eq!(
        f64::from_bits(captured.get("switchboard_store_pending_writes{}")),
        0.0
    );
}
