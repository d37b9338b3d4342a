//! Callflow validation (`switchboard callflow validate`): any JSON, in both modes, gives a list
//! of violations, never a panic; a callflow that parses into the typed form and validates
//! without errors serializes back to JSON that still validates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::{Callflow, Mode, Severity, validate_callflow, validate_json};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for mode in [Mode::Webhook, Mode::Api] {
        let _ = validate_json(&value, mode);
    }
    if let Ok(callflow) = serde_json::from_value::<Callflow>(value.clone()) {
        let errors = |violations: Vec<switchboard_protocol::Violation>| {
            violations
                .into_iter()
                .filter(|v| v.severity == Severity::Error)
                .count()
        };
        if errors(validate_json(&value, Mode::Webhook)) == 0 {
            assert_eq!(
                errors(validate_callflow(&callflow, Mode::Webhook)),
                0,
                "a valid callflow stays valid once typed and serialized: {value}"
            );
        }
    }
});
