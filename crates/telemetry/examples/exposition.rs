//! Prints a sample `GET /metrics` exposition: a few calls on the flows in `flows/`, with every
//! kind of series populated. CI runs it through `promtool check metrics`
//! (`.ci/checks/observability.sh`); it is also a quick way to see what the server exposes.
//!
//! `cargo run -p switchboard-telemetry --example exposition [FLOW_DIR]`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use switchboard_flow::{Event, SessionState, step};
use switchboard_protocol::SessionStatus;
use switchboard_runtime::{Answer, AnswerKind, Counters, Ended, RuntimeError};
use switchboard_telemetry::{BuildInfo, EventKind, Telemetry};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../flows")),
        PathBuf::from,
    );
    let (flows, _) = switchboard_runtime::catalog::load_set(&[dir])
        .map_err(|diagnostics| format!("the flows do not load: {diagnostics:?}"))?;
    let telemetry = Telemetry::install(BuildInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        commit: "example".to_owned(),
    })?;
    telemetry.record_reload(true);
    telemetry.on_flows(&flows);

    let elapsed = Duration::from_micros(400);
    for flow in flows.flows() {
        // Each flow: a call that starts, then goes silent until the flow gives up.
        let mut state = SessionState::new(flow, "+6591110000", "+6568888888");
        let mut event = Event::Start;
        let mut kind = (EventKind::CallReceived, AnswerKind::Started);
        for _ in 0..4 {
            let reply = step(flow, &mut state, event, Utc::now());
            let answer = Answer {
                body: Default::default(),
                kind: kind.1,
                flow: Some(Arc::clone(flow)),
                trace: reply.trace,
                callflow: Some(reply.callflow),
            };
            telemetry.record_answer(kind.0, &answer, elapsed);
            telemetry.record_http(200, elapsed);
            event = Event::Completed {
                action_id: None,
                dtmf: None,
                sip_code: None,
            };
            kind = (EventKind::ActionCompleted, AnswerKind::Advanced);
        }
        telemetry.record_ended(&Ended {
            flow: Some(state.flow.clone()),
            node: Some(state.node.clone()),
            status: SessionStatus::Completed,
        });
    }
    telemetry.record_failure(EventKind::ActionCompleted, &RuntimeError::Busy, elapsed);
    telemetry.record_http(503, elapsed);
    telemetry.record_http(401, elapsed);
    telemetry.record_auth_failure("wrong_secret");
    telemetry.record_bad_request("invalid_json");
    telemetry.record_status_event();
    telemetry.set_live_sessions(flows.len());
    telemetry.set_shard_actors(0, flows.len());
    print!("{}", telemetry.render_with(&Counters::default()));
    Ok(())
}
