//! The webhook hot path without HTTP: parsing a body, one `step` of the state machine, and
//! serializing the callflow we answer with.
//!
//! Everything runs on `flows/restaurant.yaml`, compiled once. Each measured iteration gets a
//! fresh copy of a session positioned where the event expects it (the main menu, waiting for a
//! key), so every iteration processes a new, valid event and advances the session, rather than
//! replaying a stale one (which `step` answers from its cache). State is cloned outside the
//! timing, and what an iteration produces is dropped outside it too.
//!
//! Benchmarks:
//! * `parse/action_completed`: `Webhook::from_slice` of an `ACTION_COMPLETED` body.
//! * `parse/session_summary`: the same of a one-leg `SESSION_SUMMARY`.
//! * `step/menu_key`: `step` alone, key 1 at the main menu (goes to the reservations menu).
//! * `webhook/menu_key`: parse + `step` + `Callflow::to_json` (as the runtime answers), same key press.
//! * `webhook/call_received`: parse + route by number + new session + `step` + serialize, for
//!   the `CALL_RECEIVED` that starts a call.
//! * `advance/menu_key`: the same key press through `advance`, the entry point the runtime
//!   uses since fetch nodes (a flow without them never gets `Step::Fetch`): read beside
//!   `step/menu_key` in one run, it shows that flows without fetch nodes pay nothing for them.
//! * `advance/fetch_resume`: a look-up step of `flows/lookup/balance.yaml`, `advance` to the
//!   fetch node and `resume` with a canned answer (no I/O: the request is the runtime's).

// `criterion_group!` defines a public function it cannot document.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use switchboard_benches::{
    Fixtures, assert_prompt, call_action, call_received_path, event_of, key_press_path,
};
use switchboard_flow::fetch::FetchOutcome;
use switchboard_flow::{Event, SessionState, Step, advance, resume, step};
use switchboard_protocol::webhook::Webhook;

fn benches(c: &mut Criterion) {
    let Fixtures {
        now,
        flow,
        flows,
        main_menu,
        action_id,
        key_press,
        received,
        summary,
    } = Fixtures::new();

    // Every measured path does what it should, checked once before measuring.
    {
        let Ok(Webhook::SessionSummary(ended)) = Webhook::from_slice(&summary) else {
            panic!("the summary fixture does not parse as one");
        };
        assert_eq!(ended.details["callA"].call_duration, Some(40));

        let action = call_action(&key_press);
        assert_eq!(action.dtmf(), Some("1"));
        let mut state = main_menu.clone();
        let reply = step(&flow, &mut state, event_of(&action), now);
        assert_prompt(&reply, &state, "reservations");

        let (state, json) = key_press_path(&flow, main_menu.clone(), &key_press, now);
        assert_eq!(state.node, "reservations");
        assert!(json.starts_with(b"{\"clientActionId\":\"restaurant:"));

        let (state, json) = call_received_path(&flows, &received, now);
        assert_eq!((state.node.as_str(), state.seq), ("main", 1));
        assert!(
            std::str::from_utf8(&json)
                .expect("JSON is UTF-8")
                .contains("Welcome to ABC Restaurant")
        );
    }

    c.bench_function("parse/action_completed", |b| {
        b.iter(|| Webhook::from_slice(black_box(&key_press)));
    });
    c.bench_function("parse/session_summary", |b| {
        b.iter(|| Webhook::from_slice(black_box(&summary)));
    });

    c.bench_function("step/menu_key", |b| {
        b.iter_batched(
            || main_menu.clone(),
            |mut state| {
                let event = Event::Completed {
                    action_id: Some(black_box(action_id.as_str())),
                    dtmf: Some(black_box("1")),
                    sip_code: Some(200),
                };
                let reply = step(&flow, &mut state, event, now);
                (state, reply)
            },
            BatchSize::SmallInput,
        );
    });

    c.bench_function("advance/menu_key", |b| {
        b.iter_batched(
            || main_menu.clone(),
            |mut state| {
                let event = Event::Completed {
                    action_id: Some(black_box(action_id.as_str())),
                    dtmf: Some(black_box("1")),
                    sip_code: Some(200),
                };
                let Step::Reply(reply) = advance(&flow, &mut state, event, now) else {
                    unreachable!("the restaurant has no fetch node")
                };
                (state, reply)
            },
            BatchSize::SmallInput,
        );
    });

    let lookup = switchboard_benches::balance();
    let mut at_capture = SessionState::new(&lookup, "+6591110000", "+6568889000");
    let first = step(&lookup, &mut at_capture, Event::Start, now);
    let capture_id = first
        .callflow
        .client_action_id
        .clone()
        .expect("an answer that advanced has an id");
    let answer = br#"{"balance": 1520.75, "overdrawn": false, "owner": {"first_name": "Ana"}}"#;
    c.bench_function("advance/fetch_resume", |b| {
        b.iter_batched(
            || at_capture.clone(),
            |mut state| {
                let event = Event::Completed {
                    action_id: Some(capture_id.as_str()),
                    dtmf: Some(black_box("12345678")),
                    sip_code: None,
                };
                let Step::Fetch(pending) = advance(&lookup, &mut state, event, now) else {
                    unreachable!("the account capture leads to the look-up")
                };
                let outcome = FetchOutcome::Response {
                    status: 200,
                    body: black_box(answer),
                };
                let reply = resume(&lookup, &mut state, pending, outcome, now);
                (state, reply)
            },
            BatchSize::SmallInput,
        );
    });

    c.bench_function("webhook/menu_key", |b| {
        b.iter_batched(
            || main_menu.clone(),
            |state| key_press_path(&flow, state, black_box(&key_press), now),
            BatchSize::SmallInput,
        );
    });

    c.bench_function("webhook/call_received", |b| {
        b.iter(|| call_received_path(&flows, black_box(&received), now));
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = step_benches;
    config = config();
    targets = benches
}
criterion_main!(step_benches);
