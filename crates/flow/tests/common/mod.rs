//! What the engine's test files share: compiling a flow (or a bundled example) or failing
//! with every diagnostic, the test clock, and the protocol check every answer must pass.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use switchboard_flow::{Flow, compile};
use switchboard_protocol::{Callflow, Mode, validate_callflow};

/// `source` compiled as `file`; panics with every diagnostic if it does not compile.
pub(crate) fn compiled(source: &str, file: &str) -> Flow {
    compile(source, file)
        .unwrap_or_else(|d| {
            panic!(
                "{}",
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
        .flow
}

/// The bundled flow `flows/NAME.yaml`.
pub(crate) fn example(name: &str) -> Flow {
    let path = format!("{}/../../flows/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    compiled(&source, &path)
}

/// Monday 2026-11-23 10:00 in Singapore (02:00 UTC): the flows' business hours are open.
pub(crate) fn weekday_morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap()
}

/// Panics unless the platform would accept `callflow` as a webhook answer.
pub(crate) fn assert_valid(callflow: &Callflow) {
    let violations = validate_callflow(callflow, Mode::Webhook);
    assert!(violations.is_empty(), "{violations:?}\n{callflow:?}");
}
