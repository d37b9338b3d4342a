//! The five example responses of the platform's IVR guide (cleaned of comments and trailing
//! commas, see `fixtures/README.md`) against our validator and our typed [`Callflow`].
//!
//! They are the closest thing we have to what the platform itself accepts, so all must pass;
//! the `sayAndCapture` example has `digitTimeout == overallTimeout`, which the documented -1006
//! rule forbids but every one of 8x8's examples does, so it draws a warning and no error.

use switchboard_protocol::{Action, Callflow, Mode, StatusCode, validate_slice};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/seed/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|err| panic!("cannot read {path}: {err}"))
}

const VALID: [&str; 4] = ["makeCall", "say", "playFile", "hangup"];

#[test]
fn the_valid_examples_pass_the_validator() {
    for name in VALID {
        let violations = validate_slice(&fixture(name), Mode::Webhook);
        assert!(violations.is_empty(), "{name}: {violations:#?}");
    }
}

#[test]
fn only_the_make_call_example_is_a_valid_api_request() {
    assert!(validate_slice(&fixture("makeCall"), Mode::Api).is_empty());
    for name in ["say", "playFile", "hangup"] {
        let codes: Vec<_> = validate_slice(&fixture(name), Mode::Api)
            .into_iter()
            .map(|v| (v.code, v.path.to_string()))
            .collect();
        assert_eq!(
            codes,
            [(
                StatusCode::FirstActionNotMakeCall,
                "$.callflow[0].action".to_owned()
            )],
            "{name}"
        );
    }
}

#[test]
fn the_say_and_capture_example_only_warns_of_its_equal_timeouts() {
    let violations = validate_slice(&fixture("sayAndCapture"), Mode::Webhook);
    let lines: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "warning: -1006 $.callflow[0].params.overallTimeout: equals digitTimeout (10000); the platform's rule is that it must be greater, so make it larger"
        ]
    );
    assert_eq!(violations[0].code, StatusCode::OverallTimeoutNotGreater);
    assert!(!violations[0].is_error());
}

#[test]
fn the_typed_callflow_reads_the_valid_examples() {
    let parse = |name| -> Callflow {
        serde_json::from_slice(&fixture(name))
            .unwrap_or_else(|err| panic!("{name} does not parse: {err}"))
    };

    let call = parse("makeCall");
    assert_eq!(
        call.client_action_id.as_ref().map(|id| id.as_str()),
        Some("ivr1_level2")
    );
    let [Action::MakeCall(make_call)] = call.actions.as_slice() else {
        panic!("not one makeCall: {call:?}");
    };
    assert_eq!(make_call.source.as_str(), "6512345678");
    assert_eq!(make_call.destination.as_str(), "6587654321");
    assert_eq!(make_call.destination.e164(), "+6587654321");
    assert_eq!(make_call.call_recording, Some(true));

    let say = parse("say");
    let [Action::Say(s)] = say.actions.as_slice() else {
        panic!("not one say: {say:?}");
    };
    assert_eq!(s.text.as_str(), "Hello This is a test message");
    assert_eq!(s.voice_profile.as_str(), "en-US-ZiraRUS");
    assert_eq!(s.repetition.map(|r| r.get()), Some(1));
    assert_eq!(s.speed.map(|v| v.get()), Some(1.0));

    let play = parse("playFile");
    let [Action::PlayFile(p)] = play.actions.as_slice() else {
        panic!("not one playFile: {play:?}");
    };
    assert_eq!(
        p.file_url.as_str(),
        "https://sample-videos.com/audio/mp3/wave.mp3"
    );
    assert_eq!(p.repetition.map(|r| r.get()), Some(1));

    let hangup = parse("hangup");
    assert_eq!(hangup.actions, [Action::Hangup]);
    assert_eq!(
        hangup.client_action_id.as_ref().map(|id| id.as_str()),
        Some("ivr1_level2")
    );
}

#[test]
fn the_typed_callflow_refuses_the_say_and_capture_example_for_the_same_reason() {
    let err = serde_json::from_slice::<Callflow>(&fixture("sayAndCapture")).unwrap_err();
    assert!(
        err.to_string()
            .contains("overallTimeout 10000 must be greater than digitTimeout 10000"),
        "{err}"
    );
}

#[test]
fn the_say_and_capture_example_passes_once_the_timeouts_are_fixed() {
    let mut body: serde_json::Value = serde_json::from_slice(&fixture("sayAndCapture")).unwrap();
    body["callflow"][0]["params"]["digitTimeout"] = 5000.into();
    assert!(switchboard_protocol::validate_json(&body, Mode::Webhook).is_empty());
    let callflow: Callflow = serde_json::from_value(body).unwrap();
    let [Action::SayAndCapture(c)] = callflow.actions.as_slice() else {
        panic!("not one sayAndCapture: {callflow:?}");
    };
    assert_eq!(
        c.prompt_message().as_str(),
        "Enter 1 if you would like to talk"
    );
    assert_eq!(
        c.success_message_text().map(|t| t.as_str()),
        Some("Thank you, have a nice day!")
    );
    assert_eq!(
        c.failure_message_text().map(|t| t.as_str()),
        Some("Invalid input received.")
    );
    assert_eq!(c.voice_profile().as_str(), "en-US-BenjaminRUS");
    assert_eq!(c.speed_value().map(|s| s.get()), Some(1.0));
    assert!(c.completes_on_hash());
    assert_eq!(c.min_digits().map(|d| d.get()), Some(2));
    assert_eq!(c.max_digits().map(|d| d.get()), Some(2));
    assert_eq!(c.digit_timeout_ms(), Some(5000));
    assert_eq!(c.overall_timeout_ms(), 10000);
    assert_eq!(c.no_of_tries(), 3);
}

/// What the validator accepts, the typed callflow reads: otherwise a callflow that
/// `switchboard callflow validate` calls valid could not be read back by our own tools.
#[test]
fn the_typed_callflow_reads_every_hangup_form_the_validator_accepts() {
    for body in [
        r#"{"callflow":[{"action":"hangup"}]}"#,
        r#"{"callflow":[{"action":"hangup","params":null}]}"#,
        r#"{"callflow":[{"action":"hangup","params":{}}]}"#,
    ] {
        assert!(
            validate_slice(body.as_bytes(), Mode::Webhook).is_empty(),
            "{body}"
        );
        let callflow: Callflow =
            serde_json::from_str(body).unwrap_or_else(|err| panic!("{body}: {err}"));
        assert_eq!(callflow.actions, [Action::Hangup]);
        // And it is written back in the one canonical form.
        assert_eq!(
            String::from_utf8(callflow.to_json()).unwrap(),
            r#"{"callflow":[{"action":"hangup"}]}"#
        );
    }
    let err = serde_json::from_str::<Callflow>(
        r#"{"callflow":[{"action":"hangup","params":{"reason":"done"}}]}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("reason"), "{err}");
}
