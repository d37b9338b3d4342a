//! Flow loading and compiling (`switchboard flow check`, reloads): any text is a compiled flow
//! or a list of `file:line:col` diagnostics, never a panic; a flow that compiles starts a call
//! whose first answer passes the validator.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use switchboard_flow::{Event, SessionState, compile, step};
use switchboard_protocol::{Mode, Severity, validate_callflow};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match compile(source, "fuzz.yaml") {
        Ok(compiled) => {
            let flow = compiled.flow;
            let mut state = SessionState::new(&flow, "+6591110000", "+6568888888");
            let now = Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap();
            let reply = step(&flow, &mut state, Event::Start, now);
            let errors: Vec<_> = validate_callflow(&reply.callflow, Mode::Webhook)
                .into_iter()
                .filter(|v| v.severity == Severity::Error)
                .collect();
            assert!(errors.is_empty(), "{errors:?}\n{source}");
        }
        Err(diagnostics) => {
            for diagnostic in diagnostics {
                let _ = diagnostic.to_string();
            }
        }
    }
});
