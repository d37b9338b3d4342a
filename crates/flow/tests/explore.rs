//! Every callflow a bundled flow can emit passes the protocol validator.
//!
//! Rather than sampling key sequences, this walks every session state each bundled flow can
//! reach, from every kind of start (weekday and weekend, in and out of hours, partner and
//! ordinary callers), feeding each waiting node every input that matters: each key of the pad
//! and each option at a menu, good and bad entries at a capture, silence, and each kind of
//! transfer result. States are told apart by what `step` reads (node, counters, variables,
//! menu stack), so the walk ends. Each answer must pass the validator and must agree with what
//! the session now waits for.

use std::collections::HashSet;

use chrono::{DateTime, TimeZone, Utc};
use switchboard_flow::{
    ActionId, Awaiting, Disposition, Event, Flow, NodeKind, SessionState, step,
};
use switchboard_protocol::{Action, Callflow, Mode, validate_callflow};

mod common;

use common::example;

/// What tells two states apart for `step` (not the path or sequence number).
fn key(state: &SessionState) -> String {
    format!(
        "{}|{:?}|{}|{}|{}|{:?}|{:?}|{}",
        state.node,
        state.awaiting,
        state.invalid,
        state.no_input,
        state.attempts,
        state.vars,
        state.menus,
        state.digits
    )
}

/// The inputs worth trying where `state` waits: `(dtmf, sip_code)`.
fn inputs(flow: &Flow, state: &SessionState) -> Vec<(Option<String>, Option<u16>)> {
    let node = flow.node(flow.node_id(&state.node).unwrap());
    match (state.awaiting, &node.kind) {
        (Awaiting::Input, NodeKind::Menu(menu)) => {
            let mut keys: Vec<String> = "0123456789*#".chars().map(String::from).collect();
            keys.extend(menu.options.iter().map(|(k, _)| k.clone()));
            keys.sort();
            keys.dedup();
            let mut all: Vec<_> = keys.into_iter().map(|k| (Some(k), None)).collect();
            all.push((None, None));
            all
        }
        (Awaiting::Input, NodeKind::Capture(_)) => ["4", "20", "99", "1", "12345678", "123*"]
            .into_iter()
            .map(|k| (Some(k.to_owned()), None))
            .chain([(None, None)])
            .collect(),
        (Awaiting::Transfer, _) => [200, 486, 480, 487, 503, 600]
            .into_iter()
            .map(|code| (None, Some(code)))
            .collect(),
        (Awaiting::Continue, _) => vec![(None, None)],
        (awaiting, kind) => panic!("waits for {awaiting:?} at a {} node", kind.name()),
    }
}

/// The answer is valid and consistent with what the state now waits for.
#[track_caller]
fn check_answer(flow: &Flow, state: &SessionState, callflow: &Callflow) {
    let violations = validate_callflow(callflow, Mode::Webhook);
    assert!(violations.is_empty(), "{violations:?}\n{callflow:?}");
    let last = callflow.actions.last().expect("never an empty callflow");
    let fits = match state.awaiting {
        Awaiting::Input => matches!(last, Action::SayAndCapture(_)),
        Awaiting::Transfer => matches!(last, Action::MakeCall(_)),
        Awaiting::Nothing => matches!(last, Action::Hangup),
        Awaiting::Continue => matches!(last, Action::Say(_) | Action::PlayFile(_)),
    };
    assert!(fits, "waits for {:?} after {last:?}", state.awaiting);
    let id = callflow
        .client_action_id
        .as_ref()
        .expect("every answer is tagged");
    let id = ActionId::parse(id.as_str()).expect("our own ids parse");
    assert_eq!(
        (id.flow, id.version, id.node, id.seq),
        (
            flow.id.as_str(),
            flow.version,
            state.node.as_str(),
            state.seq
        )
    );
}

/// Walks every state reachable from a call by `caller` at `now`; returns how many answers.
fn explore(flow: &Flow, caller: &str, now: DateTime<Utc>) -> usize {
    let mut state = SessionState::new(flow, caller, "+6568888888");
    let reply = step(flow, &mut state, Event::Start, now);
    check_answer(flow, &state, &reply.callflow);
    let mut seen = HashSet::new();
    let mut todo = vec![state];
    let mut answers = 1;
    while let Some(state) = todo.pop() {
        if state.awaiting == Awaiting::Nothing || !seen.insert(key(&state)) {
            continue;
        }
        let id = state
            .last_reply
            .as_ref()
            .and_then(|c| c.client_action_id.clone())
            .unwrap();
        for (dtmf, sip_code) in inputs(flow, &state) {
            let mut next = state.clone();
            let event = Event::Completed {
                action_id: Some(id.as_str()),
                dtmf: dtmf.as_deref(),
                sip_code,
            };
            let reply = step(flow, &mut next, event, now);
            assert_eq!(reply.disposition, Disposition::Advanced);
            check_answer(flow, &next, &reply.callflow);
            answers += 1;
            // The same event again is a duplicate: the same answer, nothing moves.
            let before = next.clone();
            let again = step(flow, &mut next, event, now);
            assert_eq!(again.disposition, Disposition::Stale);
            assert_eq!(again.callflow, reply.callflow);
            assert_eq!(next, before);
            todo.push(next);
        }
    }
    answers
}

#[test]
fn every_reachable_answer_of_every_bundled_flow_is_valid() {
    let starts = [
        // Monday 10:00 and 20:00, Saturday 11:00, Sunday 11:00 in Singapore (02:00 UTC and so
        // on); London for the bank is 8 hours behind, which these also cover.
        Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 28, 3, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 29, 3, 0, 0).unwrap(),
    ];
    for name in ["restaurant", "support", "bank"] {
        let flow = example(name);
        let mut answers = 0;
        for now in starts {
            for caller in ["+6591110000", "+6581234567", "+442071234567"] {
                answers += explore(&flow, caller, now);
            }
        }
        // Not a performance check: proof the walk covered more than a handful of answers.
        assert!(answers > 100, "{name}: only {answers} answers explored");
    }
}
