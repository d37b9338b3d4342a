//! The example webhook bodies (`fixtures/examples`) through
//! [`Webhook::from_slice`]: each parses to the right variant with the right fields, including
//! the platform's loose spots (v2 string `eventData`, `callDuration` as a string, `dtmf` null,
//! null reference ids, unknown fields such as `namespace` and `description`).

use switchboard_protocol::{
    CallAction, CallStatus, SessionStatus, StatusCode, Webhook, WebhookError,
};

const SESSION: &str = "3f1c9b9c-6b1e-11f1-8c21-0242ac120002";
const CALL: &str = "3f1c9b10-6b1e-11f1-8c21-0242ac120002";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|err| panic!("cannot read {path}: {err}"))
}

fn parse(name: &str) -> Webhook {
    Webhook::from_slice(&fixture(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn call_action(name: &str) -> CallAction {
    match parse(name) {
        Webhook::CallAction(action) => action,
        other => panic!("{name} is not a CALL_ACTION: {other:?}"),
    }
}

/// The fields every call-action example shares.
#[track_caller]
fn assert_common(a: &CallAction) {
    assert_eq!(a.call_id, CALL);
    assert_eq!(a.session_id, SESSION);
    assert_eq!(a.sub_account_id, "acme_voice");
    assert_eq!(a.call_direction.as_deref(), Some("INBOUND"));
    assert_eq!(a.call_type.as_deref(), Some("PSTN"));
    assert_eq!(a.source, "+6591110000");
    assert_eq!(a.destination, "+6568888888");
    assert_eq!(a.source_format.as_deref(), Some("MSISDN"));
    assert_eq!(a.destination_format.as_deref(), Some("MSISDN"));
    assert_eq!(a.source_country_code.as_deref(), Some("SG"));
    assert_eq!(a.destination_country_code.as_deref(), Some("SG"));
    assert_eq!(a.source_ref_id, None);
    assert_eq!(a.destination_ref_id.as_deref(), Some("vn-acme-main"));
    assert_eq!(a.sip_code, Some(200));
}

#[test]
fn call_received() {
    let webhook = parse("call-received.json");
    assert_eq!(webhook.event_type(), "CALL_ACTION");
    assert_eq!(webhook.session_id(), SESSION);
    let Webhook::CallAction(a) = webhook else {
        panic!("not a call action");
    };
    assert_common(&a);
    assert_eq!(a.event_id, "3f1c9a52-6b1e-11f1-8c21-0242ac120002");
    assert_eq!(a.call_status, CallStatus::CallReceived);
    assert_eq!(a.call_status.as_str(), "CALL_RECEIVED");
    assert_eq!(a.call_duration, Some(0));
    assert_eq!(a.event_data, None);
    assert_eq!(a.dtmf(), None);
    assert_eq!(a.client_action_id, None);
    assert_eq!(a.timestamp.as_deref(), Some("2026-11-20T09:15:02.118Z"));
}

#[test]
fn action_completed_with_digits() {
    let a = call_action("action-completed.json");
    assert_common(&a);
    assert_eq!(a.event_id, "44a0d7e8-6b1e-11f1-8c21-0242ac120002");
    assert_eq!(a.call_status, CallStatus::ActionCompleted);
    assert_eq!(a.call_duration, Some(9));
    let data = a.event_data.as_ref().expect("eventData is a map");
    assert_eq!(data.dtmf.as_deref(), Some("2"));
    assert_eq!(data.asr_captured, None);
    assert_eq!(a.dtmf(), Some("2"));
    assert_eq!(
        a.client_action_id.as_deref(),
        Some("whatever-the-previous-answer-set")
    );
}

#[test]
fn action_completed_without_input_has_null_dtmf() {
    let a = call_action("action-completed-no-input.json");
    assert_common(&a);
    assert_eq!(a.event_id, "51c2e7aa-6b1e-11f1-8c21-0242ac120002");
    assert_eq!(a.call_status, CallStatus::ActionCompleted);
    // eventData is there, its dtmf is null: the caller entered nothing valid.
    let data = a.event_data.as_ref().expect("eventData is a map");
    assert_eq!(data.dtmf, None);
    assert_eq!(a.dtmf(), None);
}

#[test]
fn action_completed_in_the_v2_form() {
    let a = call_action("action-completed-v2-string-eventdata.json");
    assert_common(&a);
    assert_eq!(a.event_id, "4b7f0c66-6b1e-11f1-8c21-0242ac120002");
    assert_eq!(a.call_status, CallStatus::ActionCompleted);
    // "callDuration": "14" and "eventData": "2".
    assert_eq!(a.call_duration, Some(14));
    assert_eq!(a.dtmf(), Some("2"));
    assert_eq!(
        a.event_data.as_ref().and_then(|d| d.dtmf.as_deref()),
        Some("2")
    );
}

#[test]
fn call_status() {
    let webhook = parse("call-status.json");
    assert_eq!(webhook.event_type(), "CALL_STATUS");
    assert_eq!(webhook.session_id(), SESSION);
    let Webhook::CallStatus(s) = webhook else {
        panic!("not a call status");
    };
    assert_eq!(s.event_id, "3f1d0a44-6b1e-11f1-8c21-0242ac120002");
    assert_eq!(s.call_id, CALL);
    assert_eq!(s.call_status.as_deref(), Some("CALL_RECEIVED"));
    assert_eq!(s.sip_code, Some(200));
    assert_eq!(s.call_duration, Some(0));
    assert_eq!(s.timestamp.as_deref(), Some("2026-11-20T09:15:02.120Z"));
}

#[test]
fn session_summary_with_two_legs() {
    let webhook = parse("session-summary.json");
    assert_eq!(webhook.event_type(), "SESSION_SUMMARY");
    assert_eq!(webhook.session_id(), SESSION);
    let Webhook::SessionSummary(s) = webhook else {
        panic!("not a session summary");
    };
    assert_eq!(s.sub_account_id.as_deref(), Some("acme_voice"));
    assert_eq!(s.session_status, SessionStatus::Completed);
    assert_eq!(s.session_status.label(), "COMPLETED");
    assert_eq!(s.start_time.as_deref(), Some("2026-11-20T09:15:02Z"));
    assert_eq!(s.end_time.as_deref(), Some("2026-11-20T09:16:40Z"));
    assert_eq!(s.last_action.as_deref(), Some("MAKE_CALL"));
    assert_eq!(s.call_count, Some(2));
    assert_eq!(s.client_request_id, None);
    assert_eq!(s.error_details, None);
    assert_eq!(
        s.details.keys().map(String::as_str).collect::<Vec<_>>(),
        ["callA", "callB"]
    );

    let a = &s.details["callA"];
    assert_eq!(a.call_id.as_deref(), Some(CALL));
    assert_eq!(a.call_direction.as_deref(), Some("INBOUND"));
    assert_eq!(a.call_status.as_deref(), Some("COMPLETED"));
    assert_eq!(a.call_duration, Some(97));
    assert_eq!(
        a.connected_timestamp.as_deref(),
        Some("2026-11-20T09:15:03Z")
    );
    assert_eq!(a.destination.as_deref(), Some("+6568888888"));
    assert_eq!(a.source_ref_id, None);
    assert_eq!(a.destination_ref_id.as_deref(), Some("vn-acme-main"));
    let quality = a.call_quality.as_ref().expect("callA has callQuality");
    assert_eq!(quality.mos, Some(4.4));
    assert_eq!(quality.packet_loss_rate, Some(0.002));
    assert_eq!(quality.jitter, Some(12.0));

    let b = &s.details["callB"];
    assert_eq!(
        b.call_id.as_deref(),
        Some("6a09e1f2-6b1e-11f1-8c21-0242ac120002")
    );
    assert_eq!(b.call_direction.as_deref(), Some("OUTBOUND"));
    assert_eq!(b.call_status.as_deref(), Some("BUSY"));
    assert_eq!(b.call_duration, Some(0));
    // The transfer leg never connected.
    assert_eq!(b.connected_timestamp, None);
    assert_eq!(b.destination.as_deref(), Some("+6531589338"));
    assert_eq!(b.source_ref_id.as_deref(), Some("vn-acme-main"));
    assert_eq!(b.call_quality, None);
}

#[test]
fn callflows_api_answers_are_not_webhooks() {
    for name in [
        "callflows-api-created.json",
        "callflows-api-not-created.json",
    ] {
        let err = Webhook::from_slice(&fixture(name)).unwrap_err();
        assert_eq!(
            err,
            WebhookError::MissingField { field: "eventType" },
            "{name}"
        );
    }
}

#[test]
fn callflows_api_answers_use_our_status_codes_and_messages() {
    for name in [
        "callflows-api-created.json",
        "callflows-api-not-created.json",
    ] {
        let answer: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
        let number = answer["statusCode"].as_i64().unwrap();
        let code = StatusCode::from_i32(i32::try_from(number).unwrap())
            .unwrap_or_else(|| panic!("{name}: unknown code {number}"));
        assert_eq!(code.message(), answer["statusMessage"], "{name}");
    }
}

#[test]
fn every_example_webhook_survives_a_round_trip_of_its_typed_payload() {
    for name in [
        "call-received.json",
        "action-completed.json",
        "action-completed-no-input.json",
        "action-completed-v2-string-eventdata.json",
    ] {
        let a = call_action(name);
        let json = serde_json::to_value(&a).unwrap();
        let envelope = serde_json::json!({"eventType": "CALL_ACTION", "payload": json});
        let again = Webhook::from_slice(&serde_json::to_vec(&envelope).unwrap()).unwrap();
        assert_eq!(again, Webhook::CallAction(a), "{name}");
    }
}
