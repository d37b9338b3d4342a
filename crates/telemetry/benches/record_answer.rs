//! The cost `Telemetry::record_answer` adds to every webhook.
//!
//! Answers are made once, by real `step` calls on `flows/restaurant.yaml`, and recorded over
//! and over (the counters keep growing, which costs the same as the first time):
//! * `record_answer/menu_key`: key 1 at the main menu (one visit, one `sayAndCapture`).
//! * `record_answer/call_received`: a new call (a session started, one visit).
//! * `record_answer/transfer_busy`: a busy transfer (a signal, two visits, three actions).
//! * `record_answer/duplicate`: a repeated delivery (no flow work at all).

// `criterion_group!` defines a public function it cannot document.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_flow::{Event, Flow, FlowSet, SessionState, step};
use switchboard_runtime::{Answer, AnswerKind};
use switchboard_telemetry::{BuildInfo, EventKind, Telemetry};

const RESTAURANT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../flows/restaurant.yaml");

fn restaurant() -> FlowSet {
    match switchboard_runtime::catalog::load_set(&[PathBuf::from(RESTAURANT)]) {
        Ok((set, _)) => set,
        Err(diagnostics) => panic!("restaurant.yaml does not load: {diagnostics:?}"),
    }
}

fn answer(
    flow: &Arc<Flow>,
    state: &mut SessionState,
    event: Event<'_>,
    kind: AnswerKind,
) -> Answer {
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap();
    let reply = step(flow, state, event, now);
    Answer {
        body: Default::default(),
        kind,
        flow: Some(Arc::clone(flow)),
        trace: reply.trace,
        callflow: Some(reply.callflow),
    }
}

fn key(flow: &Arc<Flow>, state: &mut SessionState, dtmf: Option<&str>, sip: Option<u16>) -> Answer {
    let id = state
        .last_reply
        .as_ref()
        .and_then(|r| r.client_action_id.as_ref())
        .map(|id| id.to_string());
    let event = Event::Completed {
        action_id: id.as_deref(),
        dtmf,
        sip_code: sip,
    };
    answer(flow, state, event, AnswerKind::Advanced)
}

fn record_answer(c: &mut Criterion) {
    let flows = restaurant();
    let telemetry = Telemetry::install(BuildInfo {
        version: "bench".to_owned(),
        commit: "bench".to_owned(),
    })
    .expect("telemetry installs");
    telemetry.on_flows(&flows);
    let flow = Arc::clone(flows.latest("restaurant").unwrap());
    let mut state = SessionState::new(&flow, "+6591110000", "+6568888888");
    let started = answer(&flow, &mut state, Event::Start, AnswerKind::Started);
    let menu_key = key(&flow, &mut state.clone(), Some("1"), None);
    let _ = key(&flow, &mut state, Some("2"), None);
    let busy = key(&flow, &mut state, None, Some(486));
    let duplicate = Answer {
        kind: AnswerKind::Duplicate,
        callflow: None,
        trace: Default::default(),
        ..menu_key.clone()
    };
    let elapsed = Duration::from_micros(250);

    let mut group = c.benchmark_group("record_answer");
    for (name, event, answer) in [
        ("menu_key", EventKind::ActionCompleted, &menu_key),
        ("call_received", EventKind::CallReceived, &started),
        ("transfer_busy", EventKind::ActionCompleted, &busy),
        ("duplicate", EventKind::ActionCompleted, &duplicate),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| telemetry.record_answer(event, black_box(answer), elapsed));
        });
    }
    group.finish();
    // Keep the histogram samples folded, as the upkeep thread would.
    telemetry.upkeep();
}

criterion_group!(benches, record_answer);
criterion_main!(benches);
