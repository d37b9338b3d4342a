//! What the benchmarks share: the restaurant flow, realistic webhook bodies, and the webhook
//! path without HTTP (parse, step, serialize), so `benches/step.rs` (time) and
//! `benches/allocations.rs` (heap allocations) measure the same work.

use chrono::{DateTime, TimeZone, Utc};
use switchboard_flow::{Disposition, Event, Flow, FlowSet, Reply, SessionState, compile, step};
use switchboard_protocol::Action;
use switchboard_protocol::webhook::{CallAction, CallStatus, Webhook};

/// The restaurant flow file, as shipped in `flows/`.
pub const RESTAURANT: &str = include_str!("../../flows/restaurant.yaml");
/// The caller of every benchmarked call.
pub const CALLER: &str = "+6591110000";
/// The restaurant's number, the one every benchmarked call dials.
pub const CALLED: &str = "+6568888888";

/// A fixed instant, made once: `step` takes time as an argument (and restaurant has no time
/// branches).
pub fn monday_morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0)
        .single()
        .expect("a valid date")
}

/// The restaurant flow, compiled.
pub fn restaurant() -> Flow {
    match compile(RESTAURANT, "flows/restaurant.yaml") {
        Ok(compiled) => compiled.flow,
        Err(diagnostics) => panic!("restaurant.yaml does not compile: {diagnostics:?}"),
    }
}

/// `flows/lookup/balance.yaml`: a capture, then a fetch node (the look-up bench).
pub fn balance() -> Flow {
    let source = include_str!("../../flows/lookup/balance.yaml");
    match compile(source, "flows/lookup/balance.yaml") {
        Ok(compiled) => compiled.flow,
        Err(diagnostics) => panic!("balance.yaml does not compile: {diagnostics:?}"),
    }
}

/// A `CALL_ACTION` body as the platform sends it; `status_fields` is the JSON for
/// `callStatus`, `eventData`, `sipCode` and `clientActionId`.
pub fn call_action_body(event_id: &str, status_fields: &str) -> Vec<u8> {
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

/// The `clientActionId` of a session's last answer (what its next event echoes).
pub fn last_action_id(state: &SessionState) -> String {
    state
        .last_reply
        .as_ref()
        .and_then(|r| r.client_action_id.as_ref())
        .map(|id| id.as_str().to_owned())
        .expect("the last answer has a clientActionId")
}

/// The `ACTION_COMPLETED` of the main menu: the caller pressed `key`.
pub fn key_press_body(action_id: &str, key: &str) -> Vec<u8> {
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
pub fn call_received_body() -> Vec<u8> {
    call_action_body(
        "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        r#""callStatus": "CALL_RECEIVED",
    "eventData": null,
    "sipCode": null,
    "clientActionId": null"#,
    )
}

/// The `SESSION_SUMMARY` of a one-leg inbound call that the caller hung up, as the platform
/// sends it.
pub fn session_summary_body() -> Vec<u8> {
    format!(
        r#"{{
  "namespace": "VOICE",
  "eventType": "SESSION_SUMMARY",
  "description": "Summary of a completed call session",
  "version": 5,
  "payload": {{
    "sessionId": "5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f",
    "subAccountId": "abcrestaurant_voice",
    "sessionStatus": "COMPLETED",
    "startTime": "2026-11-23T02:00:00Z",
    "endTime": "2026-11-23T02:00:41Z",
    "lastAction": "HANGUP",
    "callCount": 1,
    "details": {{
      "callA": {{
        "callId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "callDirection": "INBOUND",
        "callType": "PSTN",
        "initiatedTimestamp": "2026-11-23T02:00:00Z",
        "connectedTimestamp": "2026-11-23T02:00:01Z",
        "disconnectedTimestamp": "2026-11-23T02:00:41Z",
        "source": "{CALLER}",
        "destination": "{CALLED}",
        "sourceFormat": "MSISDN",
        "destinationFormat": "MSISDN",
        "sourceCountryCode": "SG",
        "destinationCountryCode": "SG",
        "destinationRefId": "vn-6568888888",
        "callStatus": "COMPLETED",
        "callDuration": 40,
        "callQuality": {{ "mos": 4.4, "packetLossRate": 0.002, "jitter": 12 }}
      }}
    }}
  }}
}}"#
    )
    .into_bytes()
}

/// The typed event a `CALL_ACTION` is for the state machine.
pub fn event_of(action: &CallAction) -> Event<'_> {
    match action.call_status {
        CallStatus::CallReceived => Event::Start,
        _ => Event::Completed {
            action_id: action.client_action_id.as_deref(),
            dtmf: action.dtmf(),
            sip_code: action.sip_code,
        },
    }
}

/// The `CALL_ACTION` of a body made by this module (panics on any other webhook).
pub fn call_action(body: &[u8]) -> CallAction {
    match Webhook::from_slice(body) {
        Ok(Webhook::CallAction(action)) => action,
        other => panic!("not a CALL_ACTION: {other:?}"),
    }
}

/// A session that has heard the main menu and waits for a key.
pub fn at_main_menu(flow: &Flow, now: DateTime<Utc>) -> SessionState {
    let mut state = SessionState::new(flow, CALLER, CALLED);
    let reply = step(flow, &mut state, Event::Start, now);
    assert_eq!(reply.disposition, Disposition::Advanced);
    assert_eq!(state.node, "main");
    state
}

/// Parse, step and serialize: what a webhook handler does for an event of a known session.
pub fn key_press_path(
    flow: &Flow,
    mut state: SessionState,
    body: &[u8],
    now: DateTime<Utc>,
) -> (SessionState, Vec<u8>) {
    let action = call_action(body);
    let reply = step(flow, &mut state, event_of(&action), now);
    // As the runtime serializes its answer.
    let json = reply.callflow.to_json();
    (state, json)
}

/// Parse, route by the called number, open a session, step and serialize: a new call.
pub fn call_received_path(
    flows: &FlowSet,
    body: &[u8],
    now: DateTime<Utc>,
) -> (SessionState, Vec<u8>) {
    let action = call_action(body);
    let flow = flows
        .for_number(&action.destination)
        .expect("the number is routed");
    let mut state = SessionState::new(flow, &action.source, &action.destination);
    let reply = step(flow, &mut state, event_of(&action), now);
    // As the runtime serializes its answer.
    let json = reply.callflow.to_json();
    (state, json)
}

/// Checks, once and outside any timing, that a reply advanced the session to `node`'s prompt.
pub fn assert_prompt(reply: &Reply, state: &SessionState, node: &str) {
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

/// Everything the measured paths start from, made once: the clock, the restaurant flow (alone
/// and as a set), a session at its main menu, and the webhook bodies of a key press there and
/// of a new call. `benches/step.rs`, `benches/allocations.rs` and `examples/instructions.rs`
/// measure the same inputs.
#[derive(Debug)]
pub struct Fixtures {
    /// [`monday_morning`].
    pub now: DateTime<Utc>,
    /// [`restaurant`].
    pub flow: Flow,
    /// The restaurant as a one-flow set, for paths that route a new call.
    pub flows: FlowSet,
    /// A session waiting at the main menu.
    pub main_menu: SessionState,
    /// The `clientActionId` the main menu was answered with.
    pub action_id: String,
    /// `ACTION_COMPLETED` with key 1 at the main menu.
    pub key_press: Vec<u8>,
    /// `CALL_RECEIVED` of a new call.
    pub received: Vec<u8>,
    /// `SESSION_SUMMARY` of a call that ended.
    pub summary: Vec<u8>,
}

impl Fixtures {
    /// Makes them.
    pub fn new() -> Self {
        let now = monday_morning();
        let flow = restaurant();
        let main_menu = at_main_menu(&flow, now);
        let action_id = last_action_id(&main_menu);
        let key_press = key_press_body(&action_id, "1");
        Self {
            now,
            flows: FlowSet::new(vec![restaurant()]).expect("one flow is a valid set"),
            flow,
            main_menu,
            action_id,
            key_press,
            received: call_received_body(),
            summary: session_summary_body(),
        }
    }
}

impl Default for Fixtures {
    fn default() -> Self {
        Self::new()
    }
}
