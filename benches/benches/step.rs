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
//! * `step/menu_key`: `step` alone, key 1 at the main menu (goes to the reservations menu).
//! * `webhook/menu_key`: parse + `step` + `serde_json::to_vec` of the callflow, same key press.
//! * `webhook/call_received`: parse + route by number + new session + `step` + serialize, for
//!   the `CALL_RECEIVED` that starts a call.

use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use switchboard_flow::{Disposition, Event, Flow, FlowSet, Reply, SessionState, compile, step};
use switchboard_protocol::Action;
use switchboard_protocol::webhook::{CallAction, CallStatus, Webhook};

const RESTAURANT: &str = include_str!("../../flows/restaurant.yaml");
const CALLER: &str = "+6591110000";
const CALLED: &str = "+6568888888";

/// A fixed instant, made once: `step` takes time as an argument (and restaurant has no time
/// branches).
fn monday_morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0)
        .single()
        .expect("a valid date")
}

fn restaurant() -> Flow {
    match compile(RESTAURANT, "flows/restaurant.yaml") {
        Ok(compiled) => compiled.flow,
        Err(diagnostics) => panic!("restaurant.yaml does not compile: {diagnostics:?}"),
    }
}

/// A `CALL_ACTION` body as the platform sends it; `status_fields` is the JSON for
/// `callStatus`, `eventData`, `sipCode` and `clientActionId`.
fn call_action_body(event_id: &str, status_fields: &str) -> Vec<u8> {
    format!(
        r#"{{
  "namespace": "VOICE",
  "eventType": "CALL_ACTION",
  "description": "Action request of a call",
  "payload": {{
    "eventId": "{event_id}",
    "callId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "sessionId": "5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f",
    "subAccountId": "abcrestaurant_voice",
    "callDirection": "INBOUND",
    "callType": "PSTN",
    "source": "{CALLER}",
    "destination": "{CALLED}",
    "sourceFormat": "MSISDN",
    "destinationFormat": "MSISDN",
    "sourceCountryCode": "SG",
    "destinationCountryCode": "SG",
    "sourceRefId": null,
    "destinationRefId": "vn-6568888888",
    "callDuration": 12,
    {status_fields},
    "timestamp": "2026-11-23T02:00:12.345Z"
  }}
}}"#
    )
    .into_bytes()
}

/// The `ACTION_COMPLETED` of the main menu: the caller pressed `key`.
fn key_press_body(action_id: &str, key: &str) -> Vec<u8> {
    call_action_body(
        "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        &format!(
            r#""callStatus": "ACTION_COMPLETED",
    "eventData": {{ "dtmf": "{key}", "asrCaptured": null }},
    "sipCode": 200,
    "clientActionId": "{action_id}""#
        ),
    )
}

/// The `CALL_RECEIVED` that starts a call.
fn call_received_body() -> Vec<u8> {
    call_action_body(
        "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        r#""callStatus": "CALL_RECEIVED",
    "eventData": null,
    "sipCode": null,
    "clientActionId": null"#,
    )
}

/// The typed event a `CALL_ACTION` is for the state machine.
fn event_of(action: &CallAction) -> Event<'_> {
    match action.call_status {
        CallStatus::CallReceived => Event::Start,
        _ => Event::Completed {
            action_id: action.client_action_id.as_deref(),
            dtmf: action.dtmf(),
            sip_code: action.sip_code,
        },
    }
}

fn call_action(body: &[u8]) -> CallAction {
    match Webhook::from_slice(body) {
        Ok(Webhook::CallAction(action)) => action,
        other => panic!("not a CALL_ACTION: {other:?}"),
    }
}

/// A session that has heard the main menu and waits for a key.
fn at_main_menu(flow: &Flow, now: DateTime<Utc>) -> SessionState {
    let mut state = SessionState::new(flow, CALLER, CALLED);
    let reply = step(flow, &mut state, Event::Start, now);
    assert_eq!(reply.disposition, Disposition::Advanced);
    assert_eq!(state.node, "main");
    state
}

/// Parse, step and serialize: what a webhook handler does for an event of a known session.
fn key_press_path(
    flow: &Flow,
    mut state: SessionState,
    body: &[u8],
    now: DateTime<Utc>,
) -> (SessionState, Vec<u8>) {
    let action = call_action(body);
    let reply = step(flow, &mut state, event_of(&action), now);
    let json = serde_json::to_vec(&reply.callflow).expect("a callflow serializes");
    (state, json)
}

/// Parse, route by the called number, open a session, step and serialize: a new call.
fn call_received_path(flows: &FlowSet, body: &[u8], now: DateTime<Utc>) -> (SessionState, Vec<u8>) {
    let action = call_action(body);
    let flow = flows
        .for_number(&action.destination)
        .expect("the number is routed");
    let mut state = SessionState::new(flow, &action.source, &action.destination);
    let reply = step(flow, &mut state, event_of(&action), now);
    let json = serde_json::to_vec(&reply.callflow).expect("a callflow serializes");
    (state, json)
}

/// Checks, once and outside any timing, that a reply advanced the session to `node`'s prompt.
fn assert_prompt(reply: &Reply, state: &SessionState, node: &str) {
    assert_eq!(reply.disposition, Disposition::Advanced, "{reply:?}");
    assert_eq!(state.node, node);
    assert!(
        matches!(
            reply.callflow.actions.last(),
            Some(Action::SayAndCapture(_))
        ),
        "{:?}",
        reply.callflow
    );
}

fn benches(c: &mut Criterion) {
    let now = monday_morning();
    let flow = restaurant();
    let main_menu = at_main_menu(&flow, now);
    let action_id = main_menu
        .last_reply
        .as_ref()
        .and_then(|r| r.client_action_id.as_ref())
        .map(|id| id.as_str().to_owned())
        .expect("the main menu answer has a clientActionId");
    let key_press = key_press_body(&action_id, "1");
    let received = call_received_body();

    // Every measured path does what it should, checked once before measuring.
    {
        let action = call_action(&key_press);
        assert_eq!(action.dtmf(), Some("1"));
        let mut state = main_menu.clone();
        let reply = step(&flow, &mut state, event_of(&action), now);
        assert_prompt(&reply, &state, "reservations");

        let (state, json) = key_press_path(&flow, main_menu.clone(), &key_press, now);
        assert_eq!(state.node, "reservations");
        assert!(json.starts_with(b"{\"clientActionId\":\"restaurant:"));

        let set = FlowSet::new(vec![restaurant()]).expect("one flow is a valid set");
        let (state, json) = call_received_path(&set, &received, now);
        assert_eq!((state.node.as_str(), state.seq), ("main", 1));
        assert!(
            std::str::from_utf8(&json)
                .expect("JSON is UTF-8")
                .contains("Welcome to ABC Restaurant")
        );
    }
    let flows = FlowSet::new(vec![restaurant()]).expect("one flow is a valid set");

    c.bench_function("parse/action_completed", |b| {
        b.iter(|| Webhook::from_slice(black_box(&key_press)));
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
