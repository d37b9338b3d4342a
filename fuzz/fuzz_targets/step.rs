//! `step` driven by arbitrary event sequences on the bundled flows. Each input byte is one
//! platform event: keys, silence, a transfer result, a duplicate of the previous event, or a
//! stale event echoing an older `clientActionId`. Invariants:
//! * no panic;
//! * every emitted callflow passes the protocol validator (errors; warnings are allowed);
//! * the retry counters never exceed their limits, the path and menu stack stay bounded;
//! * a duplicate or stale event never changes the state, and is answered with the last answer.
#![no_main]

use std::sync::OnceLock;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use switchboard_flow::state::{MENU_STACK_LIMIT, PATH_LIMIT};
use switchboard_flow::{Disposition, Event, Flow, NodeKind, SessionState, compile, step};
use switchboard_protocol::{Mode, Severity, validate_callflow};

fn flows() -> &'static [Flow] {
    static FLOWS: OnceLock<Vec<Flow>> = OnceLock::new();
    FLOWS.get_or_init(|| {
        [
            include_str!("../../flows/restaurant.yaml"),
            include_str!("../../flows/support.yaml"),
            include_str!("../../flows/bank.yaml"),
        ]
        .iter()
        .map(|source| match compile(source, "bundled.yaml") {
            Ok(compiled) => compiled.flow,
            Err(diagnostics) => panic!("a bundled flow does not compile: {diagnostics:?}"),
        })
        .collect()
    })
}

const KEYS: [&str; 16] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#", "12", "99", "12345678", "",
];
const SIP: [u16; 6] = [200, 486, 480, 487, 503, 600];

fn check_bounds(flow: &Flow, state: &SessionState) {
    assert!(state.path.len() <= PATH_LIMIT);
    assert!(state.menus.len() <= MENU_STACK_LIMIT);
    let Some(id) = flow.node_id(&state.node) else {
        return;
    };
    match &flow.node(id).kind {
        NodeKind::Menu(menu) => {
            assert!(state.invalid <= menu.max_invalid, "{state:?}");
            assert!(state.no_input <= menu.max_no_input, "{state:?}");
        }
        NodeKind::Capture(capture) => {
            assert!(state.attempts <= capture.max_attempts, "{state:?}");
        }
        _ => {}
    }
}

fn check_valid(callflow: &switchboard_protocol::Callflow) {
    let errors: Vec<_> = validate_callflow(callflow, Mode::Webhook)
        .into_iter()
        .filter(|v| v.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{callflow:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, events)) = data.split_first() else {
        return;
    };
    let flow = &flows()[usize::from(first) % flows().len()];
    // The hour of the day, for business-hours branches.
    let hour = u32::from(first / 3) % 24;
    let now = Utc.with_ymd_and_hms(2026, 11, 23, hour, 0, 0).unwrap();
    let mut state = SessionState::new(flow, "+6591110000", "+6568888888");
    let reply = step(flow, &mut state, Event::Start, now);
    check_valid(&reply.callflow);
    // The clientActionId of every answer that advanced, oldest first.
    let id_of = |callflow: &switchboard_protocol::Callflow| {
        callflow
            .client_action_id
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default()
    };
    let mut ids = vec![id_of(&reply.callflow)];
    let mut previous: Option<(Option<&str>, Option<u16>)> = None;
    for &byte in events {
        let (dtmf, sip, replay) = match byte >> 5 {
            // A duplicate of the previous event: its id (the one before the last answer) and
            // its input.
            0 if ids.len() > 1 => {
                let (dtmf, sip) = previous.unwrap_or((None, None));
                (dtmf, sip, Replay::Duplicate)
            }
            // A stale event: an older clientActionId.
            1 if ids.len() > 1 => (Some("1"), None, Replay::Stale),
            2 => (None, Some(SIP[usize::from(byte) % SIP.len()]), Replay::Fresh),
            3 => (None, None, Replay::Fresh),
            _ => (Some(KEYS[usize::from(byte) % KEYS.len()]), None, Replay::Fresh),
        };
        let echoed = match replay {
            Replay::Duplicate => &ids[ids.len() - 2],
            Replay::Stale => &ids[usize::from(byte) % (ids.len() - 1)],
            Replay::Fresh => &ids[ids.len() - 1],
        };
        let before = state.clone();
        let reply = step(
            flow,
            &mut state,
            Event::Completed {
                action_id: Some(echoed.as_str()),
                dtmf,
                sip_code: sip,
            },
            now,
        );
        check_valid(&reply.callflow);
        check_bounds(flow, &state);
        if replay == Replay::Fresh {
            assert_eq!(reply.disposition, Disposition::Advanced);
            assert_eq!(state.seq, before.seq.saturating_add(1));
            ids.push(id_of(&reply.callflow));
            previous = Some((dtmf, sip));
        } else {
            assert_eq!(reply.disposition, Disposition::Stale);
            assert_eq!(state, before, "a repeated or stale event changed the state");
            assert_eq!(Some(&reply.callflow), before.last_reply.as_ref());
        }
    }
});

/// What an event repeats.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// Nothing: it answers the last callflow.
    Fresh,
    /// The previous event, again.
    Duplicate,
    /// An older event.
    Stale,
}
