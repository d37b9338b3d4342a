//! Webhook parsing: any bytes posted to `/webhooks` are a typed webhook or a `WebhookError`
//! naming the field, never a panic; what parses can be read the way the runtime reads it; and
//! the one-pass parse agrees with the two-pass one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::Webhook;

fuzz_target!(|data: &[u8]| {
    let parsed = Webhook::from_slice(data);
    // The one-pass parse gives the two-pass parse's answer, whatever the body.
    assert_eq!(parsed, Webhook::from_slice_in_two_passes(data));
    match parsed {
        Ok(Webhook::CallAction(action)) => {
            let _ = action.dtmf();
            if let Some(id) = action.client_action_id.as_deref() {
                let _ = switchboard_flow::ActionId::parse(id).map(|id| id.seq_in_range());
            }
        }
        Ok(_) => {}
        Err(err) => {
            // The error names what is wrong: its message and field render without panicking.
            let _ = (err.to_string(), err.field(), err.kind());
        }
    }
});
