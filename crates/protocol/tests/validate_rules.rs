//! Every rule of the platform's callflow spec, once passing and once failing, through the public
//! validator. Failing cases assert the exact status code and JSON path of each violation (and,
//! where the wording matters to a user, the message), so a rule that silently stops firing or
//! starts blaming the wrong field breaks a test.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use switchboard_protocol::callflow::MAX_ACTIONS;
use switchboard_protocol::scalar::MAX_TEXT_CHARS;
use switchboard_protocol::{
    Callflow, Mode, Rules, Severity, StatusCode, Violation, validate_json, validate_json_with,
    validate_slice,
};

const VOICE: &str = "en-US-ZiraRUS";

/// `(code, path)` of every violation, in the order the validator reports them.
fn found(body: &Value, mode: Mode) -> Vec<(i32, String)> {
    summarize(&validate_json(body, mode))
}

fn summarize(violations: &[Violation]) -> Vec<(i32, String)> {
    violations
        .iter()
        .map(|v| (v.code.as_i32(), v.path.to_string()))
        .collect()
}

/// Asserts the body is accepted with exactly one warning, at `path`, which `--strict` makes
/// an error; returns the warning's message.
#[track_caller]
fn assert_only_warning(body: Value, mode: Mode, code: i32, path: &str) -> String {
    let violations = validate_json(&body, mode);
    assert_eq!(
        summarize(&violations),
        [(code, path.to_owned())],
        "for {body}: {violations:#?}"
    );
    assert_eq!(violations[0].severity, Severity::Warning, "{violations:#?}");
    assert!(!violations[0].is_error());
    let strict = Rules {
        strict: true,
        ..Rules::new(mode)
    };
    let strict = validate_json_with(&body, &strict);
    assert_eq!(summarize(&strict), [(code, path.to_owned())]);
    assert_eq!(strict[0].severity, Severity::Error, "{strict:#?}");
    violations[0].message.clone()
}

/// Asserts the body is valid in webhook mode, and that the typed [`Callflow`] reads it: what
/// the validator accepts, our own tools must be able to read.
#[track_caller]
fn assert_valid(body: Value) {
    let violations = validate_json(&body, Mode::Webhook);
    assert!(
        violations.is_empty(),
        "expected no violation for {body}, got {violations:#?}"
    );
    if let Err(err) = serde_json::from_value::<Callflow>(body.clone()) {
        panic!("the validator accepts {body} but Callflow does not: {err}");
    }
}

/// Asserts the body breaks exactly one rule, at `path`, and returns the message.
#[track_caller]
fn assert_only(body: Value, code: i32, path: &str) -> String {
    assert_only_in(body, Mode::Webhook, code, path)
}

#[track_caller]
fn assert_only_in(body: Value, mode: Mode, code: i32, path: &str) -> String {
    let violations = validate_json(&body, mode);
    assert_eq!(
        summarize(&violations),
        [(code, path.to_owned())],
        "for {body}: {violations:#?}"
    );
    violations[0].message.clone()
}

fn flow(actions: Vec<Value>) -> Value {
    json!({ "callflow": actions })
}

fn say(params: Value) -> Value {
    json!({"action": "say", "params": params})
}

fn hello() -> Value {
    say(json!({"text": "Hello", "voiceProfile": VOICE}))
}

fn capture(params: Value) -> Value {
    let mut all = json!({"promptMessage": "Press 1", "voiceProfile": VOICE});
    merge(&mut all, params);
    json!({"action": "sayAndCapture", "params": all})
}

fn make_call(params: Value) -> Value {
    let mut all = json!({"source": "6512345678", "destination": "6587654321"});
    merge(&mut all, params);
    json!({"action": "makeCall", "params": all})
}

fn play(params: Value) -> Value {
    let mut all = json!({"fileUrl": "https://example.com/menu.mp3"});
    merge(&mut all, params);
    json!({"action": "playFile", "params": all})
}

fn hangup() -> Value {
    json!({"action": "hangup"})
}

/// Overlays `extra` on `base`; a null in `extra` removes the key.
fn merge(base: &mut Value, extra: Value) {
    let (Value::Object(base), Value::Object(extra)) = (base, extra) else {
        panic!("merge needs two objects");
    };
    for (key, value) in extra {
        if value.is_null() {
            base.remove(&key);
        } else {
            base.insert(key, value);
        }
    }
}

// ---- -1001 invalid JSON ----

#[test]
fn invalid_json_is_1001_at_the_root_with_line_and_column() {
    assert!(validate_slice(br#"{"callflow":[{"action":"hangup"}]}"#, Mode::Webhook).is_empty());

    let v = validate_slice(b"{\n  \"callflow\": [,]\n}", Mode::Webhook);
    assert_eq!(summarize(&v), [(-1001, "$".to_owned())]);
    assert_eq!(v[0].code, StatusCode::InvalidJson);
    assert!(
        v[0].message.contains("line 2 column 16"),
        "the position is missing: {}",
        v[0].message
    );

    let v = validate_slice(b"{\"callflow\": [", Mode::Webhook);
    assert_eq!(summarize(&v), [(-1001, "$".to_owned())]);
    assert!(
        v[0].message.contains("line 1 column 14"),
        "{}",
        v[0].message
    );

    let v = validate_slice(b"", Mode::Api);
    assert_eq!(summarize(&v), [(-1001, "$".to_owned())]);
}

#[test]
fn a_body_that_is_json_but_not_an_object_is_1009_at_the_root() {
    let message = assert_only(json!([hangup()]), -1009, "$");
    assert_eq!(message, "must be an object, got an array");
}

// ---- -1002 voice profile ----

#[test]
fn voice_profile_1002() {
    assert_valid(flow(vec![hello()]));
    assert_valid(flow(vec![capture(
        json!({"voiceProfile": "en-GB-Susan-Apollo"}),
    )]));

    for bad in ["english", "EN-US-ZiraRUS", "en-US-", "en-US-Zira RUS", ""] {
        assert_only(
            flow(vec![say(json!({"text": "Hello", "voiceProfile": bad}))]),
            -1002,
            "$.callflow[0].params.voiceProfile",
        );
    }
    assert_only(
        flow(vec![capture(json!({"voiceProfile": "robot"}))]),
        -1002,
        "$.callflow[0].params.voiceProfile",
    );
}

// ---- -1003 maxDigits with minDigits ----

#[test]
fn min_digits_without_max_digits_1003() {
    assert_valid(flow(vec![capture(json!({"minDigits": 2, "maxDigits": 4}))]));
    assert_valid(flow(vec![capture(json!({"maxDigits": 4}))]));
    let message = assert_only(
        flow(vec![capture(json!({"minDigits": 2}))]),
        -1003,
        "$.callflow[0].params.maxDigits",
    );
    assert_eq!(message, "is required when minDigits is given");
}

// ---- -1005 / -1006 timeouts ----

#[test]
fn digit_timeout_without_overall_timeout_1005() {
    assert_valid(flow(vec![capture(
        json!({"digitTimeout": 5000, "overallTimeout": 10000}),
    )]));
    assert_valid(flow(vec![capture(json!({"overallTimeout": 10000}))]));
    let message = assert_only(
        flow(vec![capture(json!({"digitTimeout": 5000}))]),
        -1005,
        "$.callflow[0].params.overallTimeout",
    );
    assert_eq!(message, "is required when digitTimeout is given");
}

#[test]
fn overall_timeout_not_greater_than_digit_timeout_1006() {
    assert_valid(flow(vec![capture(
        json!({"digitTimeout": 9999, "overallTimeout": 10000}),
    )]));
    let message = assert_only(
        flow(vec![capture(
            json!({"digitTimeout": 12000, "overallTimeout": 10000}),
        )]),
        -1006,
        "$.callflow[0].params.overallTimeout",
    );
    assert_eq!(
        message,
        "must be greater than digitTimeout (12000), got 10000"
    );
    let errors = validate_json(
        &flow(vec![capture(
            json!({"digitTimeout": 10001, "overallTimeout": 10000}),
        )]),
        Mode::Webhook,
    );
    assert_eq!(errors[0].severity, Severity::Error);
}

#[test]
fn equal_digit_and_overall_timeouts_are_a_warning() {
    // As in every sayAndCapture example of 8x8's documentation.
    let message = assert_only_warning(
        flow(vec![capture(
            json!({"digitTimeout": 10000, "overallTimeout": 10000}),
        )]),
        Mode::Webhook,
        -1006,
        "$.callflow[0].params.overallTimeout",
    );
    assert_eq!(
        message,
        "equals digitTimeout (10000); the platform's rule is that it must be greater, so make it larger"
    );
    let line = validate_json(
        &flow(vec![capture(
            json!({"digitTimeout": 10000, "overallTimeout": 10000}),
        )]),
        Mode::Webhook,
    )[0]
    .to_string();
    assert!(
        line.starts_with("warning: -1006 $.callflow[0].params.overallTimeout: equals"),
        "{line}"
    );
}

// ---- -1007 unknown action ----

#[test]
fn unknown_action_1007() {
    for name in ["say", "sayAndCapture", "makeCall", "hangup", "playFile"] {
        let action = match name {
            "say" => hello(),
            "sayAndCapture" => capture(json!({})),
            "makeCall" => make_call(json!({})),
            "playFile" => play(json!({})),
            _ => hangup(),
        };
        assert_valid(flow(vec![action]));
    }
    for bad in ["dance", "Say", "hang_up", ""] {
        let message = assert_only(
            flow(vec![json!({"action": bad, "params": {}})]),
            -1007,
            "$.callflow[0].action",
        );
        assert!(
            message.contains("say, sayAndCapture, makeCall, hangup, playFile"),
            "the message should list the accepted names: {message}"
        );
    }
}

// ---- -1008 maxDigits without completeOnHash ----

#[test]
fn complete_on_hash_false_without_max_digits_1008() {
    assert_valid(flow(vec![capture(
        json!({"completeOnHash": false, "maxDigits": 4}),
    )]));
    assert_valid(flow(vec![capture(json!({"completeOnHash": true}))]));
    let message = assert_only(
        flow(vec![capture(json!({"completeOnHash": false}))]),
        -1008,
        "$.callflow[0].params.maxDigits",
    );
    assert_eq!(message, "is required when completeOnHash is false");
    // Given but out of range is a range error, not a missing one.
    assert_only(
        flow(vec![capture(
            json!({"completeOnHash": false, "maxDigits": 26}),
        )]),
        -1009,
        "$.callflow[0].params.maxDigits",
    );
}

// ---- -1009 invalid entries ----

#[test]
fn missing_required_params_1009() {
    let cases = [
        (
            say(json!({"voiceProfile": VOICE})),
            "$.callflow[0].params.text",
        ),
        (
            say(json!({"text": "Hello"})),
            "$.callflow[0].params.voiceProfile",
        ),
        (
            capture(json!({"promptMessage": null})),
            "$.callflow[0].params.promptMessage",
        ),
        (
            capture(json!({"voiceProfile": null})),
            "$.callflow[0].params.voiceProfile",
        ),
        (
            make_call(json!({"source": null})),
            "$.callflow[0].params.source",
        ),
        (
            make_call(json!({"destination": null})),
            "$.callflow[0].params.destination",
        ),
        (
            play(json!({"fileUrl": null})),
            "$.callflow[0].params.fileUrl",
        ),
        (json!({"action": "say"}), "$.callflow[0].params"),
        (
            json!({"action": "playFile", "params": null}),
            "$.callflow[0].params",
        ),
        (json!({"params": {}}), "$.callflow[0].action"),
    ];
    for (action, path) in cases {
        let message = assert_only(flow(vec![action]), -1009, path);
        assert_eq!(message, "is missing but it is required", "at {path}");
    }
    // A required field given as null is missing, too.
    assert_only(
        flow(vec![say(json!({"text": null, "voiceProfile": VOICE}))]),
        -1009,
        "$.callflow[0].params.text",
    );
}

#[test]
fn wrong_types_1009() {
    let cases = [
        (
            say(json!({"text": 42, "voiceProfile": VOICE})),
            "$.callflow[0].params.text",
            "must be a string, got a number",
        ),
        (
            say(json!({"text": "Hi", "voiceProfile": VOICE, "repetition": "2"})),
            "$.callflow[0].params.repetition",
            "must be an integer, got a string",
        ),
        (
            say(json!({"text": "Hi", "voiceProfile": VOICE, "repetition": 1.5})),
            "$.callflow[0].params.repetition",
            "must be an integer, got 1.5",
        ),
        (
            say(json!({"text": "Hi", "voiceProfile": VOICE, "speed": "fast"})),
            "$.callflow[0].params.speed",
            "must be a number, got a string",
        ),
        (
            make_call(json!({"callRecording": "yes"})),
            "$.callflow[0].params.callRecording",
            "must be true or false, got a string",
        ),
        (
            capture(json!({"completeOnHash": 1})),
            "$.callflow[0].params.completeOnHash",
            "must be true or false, got a number",
        ),
        (
            play(json!({"fileUrl": ["https://example.com/a.mp3"]})),
            "$.callflow[0].params.fileUrl",
            "must be a string, got an array",
        ),
        (
            json!({"action": "say", "params": "Hello"}),
            "$.callflow[0].params",
            "must be an object, got a string",
        ),
        (
            json!("hangup"),
            "$.callflow[0]",
            "must be an object, got a string",
        ),
        (
            json!({"action": 7}),
            "$.callflow[0].action",
            "must be a string, got a number",
        ),
    ];
    for (action, path, expected) in cases {
        let message = assert_only(flow(vec![action]), -1009, path);
        assert_eq!(message, expected, "at {path}");
    }
    let message = assert_only(
        json!({"callflow": {"action": "hangup"}}),
        -1009,
        "$.callflow",
    );
    assert_eq!(message, "must be an array of actions, got an object");
}

#[test]
fn text_longer_than_3000_characters_1009() {
    let at_limit = "a".repeat(MAX_TEXT_CHARS);
    assert_valid(flow(vec![say(
        json!({"text": at_limit, "voiceProfile": VOICE}),
    )]));
    // The limit counts characters, not bytes.
    let wide = "é".repeat(MAX_TEXT_CHARS);
    assert_valid(flow(vec![say(
        json!({"text": wide, "voiceProfile": VOICE}),
    )]));

    let over = "a".repeat(MAX_TEXT_CHARS + 1);
    let message = assert_only(
        flow(vec![say(json!({"text": over, "voiceProfile": VOICE}))]),
        -1009,
        "$.callflow[0].params.text",
    );
    assert_eq!(message, "must be at most 3000 characters, got 3001");
    for key in ["promptMessage", "successMessage", "failureMessage"] {
        assert_only(
            flow(vec![capture(json!({ key: "b".repeat(3001) }))]),
            -1009,
            &format!("$.callflow[0].params.{key}"),
        );
    }
}

#[test]
fn empty_text_1009() {
    for blank in ["", "   "] {
        assert_only(
            flow(vec![say(json!({"text": blank, "voiceProfile": VOICE}))]),
            -1009,
            "$.callflow[0].params.text",
        );
    }
}

#[test]
fn repetition_out_of_range_1009() {
    for ok in [1, 3] {
        assert_valid(flow(vec![say(
            json!({"text": "Hi", "voiceProfile": VOICE, "repetition": ok}),
        )]));
        assert_valid(flow(vec![play(json!({"repetition": ok}))]));
    }
    for (bad, message) in [
        (json!(0), "must be 1..=3, got 0"),
        (json!(4), "must be 1..=3, got 4"),
        (json!(-1), "must be 1..=3, got -1"),
    ] {
        let got = assert_only(
            flow(vec![say(
                json!({"text": "Hi", "voiceProfile": VOICE, "repetition": bad}),
            )]),
            -1009,
            "$.callflow[0].params.repetition",
        );
        assert_eq!(got, message);
        assert_only(
            flow(vec![play(json!({ "repetition": bad }))]),
            -1009,
            "$.callflow[0].params.repetition",
        );
    }
}

#[test]
fn speed_out_of_range_1009() {
    // Typed integer in 8x8's spec, documented 0.5..2 and sent as 1.0: any number in range.
    for ok in [
        json!(0.5),
        json!(1),
        json!(1.0),
        json!(1.5),
        json!(2),
        json!(2.0),
    ] {
        assert_valid(flow(vec![say(
            json!({"text": "Hi", "voiceProfile": VOICE, "speed": ok}),
        )]));
        assert_valid(flow(vec![capture(json!({ "speed": ok }))]));
    }
    for (bad, message) in [
        (0.4, "must be 0.5..=2.0, got 0.4"),
        (2.5, "must be 0.5..=2.0, got 2.5"),
    ] {
        let got = assert_only(
            flow(vec![say(
                json!({"text": "Hi", "voiceProfile": VOICE, "speed": bad}),
            )]),
            -1009,
            "$.callflow[0].params.speed",
        );
        assert_eq!(got, message);
        assert_only(
            flow(vec![capture(json!({ "speed": bad }))]),
            -1009,
            "$.callflow[0].params.speed",
        );
    }
    for bad in [json!(0), json!(3)] {
        assert_only(
            flow(vec![say(
                json!({"text": "Hi", "voiceProfile": VOICE, "speed": bad}),
            )]),
            -1009,
            "$.callflow[0].params.speed",
        );
    }
}

#[test]
fn digit_counts_out_of_range_1009() {
    assert_valid(flow(vec![capture(
        json!({"minDigits": 1, "maxDigits": 25}),
    )]));
    assert_valid(flow(vec![capture(json!({"minDigits": 3, "maxDigits": 3}))]));
    let message = assert_only(
        flow(vec![capture(json!({"maxDigits": 26}))]),
        -1009,
        "$.callflow[0].params.maxDigits",
    );
    assert_eq!(message, "must be 1..=25, got 26");
    assert_only(
        flow(vec![capture(json!({"maxDigits": 0}))]),
        -1009,
        "$.callflow[0].params.maxDigits",
    );
    assert_only(
        flow(vec![capture(json!({"minDigits": 0, "maxDigits": 4}))]),
        -1009,
        "$.callflow[0].params.minDigits",
    );
    assert_only(
        flow(vec![capture(json!({"noOfTries": 0}))]),
        -1009,
        "$.callflow[0].params.noOfTries",
    );
}

#[test]
fn min_digits_above_max_digits_1009() {
    let message = assert_only(
        flow(vec![capture(json!({"minDigits": 5, "maxDigits": 4}))]),
        -1009,
        "$.callflow[0].params.minDigits",
    );
    assert_eq!(message, "must not exceed maxDigits (4), got 5");
}

#[test]
fn bad_file_url_1009() {
    for ok in [
        "https://example.com/menu.mp3",
        "http://example.com/a/b.WAV?v=2",
    ] {
        assert_valid(flow(vec![play(json!({ "fileUrl": ok }))]));
    }
    for bad in [
        "ftp://example.com/menu.mp3",
        "https://example.com/menu.ogg",
        "example.com/menu.mp3",
        "https:///menu.mp3",
        "https://example.com/my menu.mp3",
        "https://example.com/",
    ] {
        assert_only(
            flow(vec![play(json!({ "fileUrl": bad }))]),
            -1009,
            "$.callflow[0].params.fileUrl",
        );
    }
}

#[test]
fn unknown_params_and_fields_1009() {
    let message = assert_only(
        flow(vec![say(
            json!({"text": "Hi", "voiceProfile": VOICE, "volume": 11}),
        )]),
        -1009,
        "$.callflow[0].params.volume",
    );
    assert_eq!(
        message,
        "unknown field; expected one of text, voiceProfile, repetition, speed"
    );
    assert_only(
        flow(vec![capture(json!({"timeout": 5000}))]),
        -1009,
        "$.callflow[0].params.timeout",
    );
    assert_only(
        flow(vec![make_call(json!({"callerId": "6512345678"}))]),
        -1009,
        "$.callflow[0].params.callerId",
    );
    assert_only(
        flow(vec![play(json!({"loop": true}))]),
        -1009,
        "$.callflow[0].params.loop",
    );
    assert_only(
        flow(vec![json!({"action": "hangup", "when": "now"})]),
        -1009,
        "$.callflow[0].when",
    );
    assert_only(
        json!({"callflow": [hangup()], "validUntil": "2026-12-01T00:00:00Z"}),
        -1009,
        "$.validUntil",
    );
}

#[test]
fn hangup_with_params_1009() {
    assert_valid(flow(vec![hangup()]));
    assert_valid(flow(vec![json!({"action": "hangup", "params": null})]));
    assert_valid(flow(vec![json!({"action": "hangup", "params": {}})]));
    let message = assert_only(
        flow(vec![
            json!({"action": "hangup", "params": {"reason": "done"}}),
        ]),
        -1009,
        "$.callflow[0].params",
    );
    assert_eq!(message, "hangup takes no parameters");
    assert_only(
        flow(vec![json!({"action": "hangup", "params": "now"})]),
        -1009,
        "$.callflow[0].params",
    );
}

#[test]
fn empty_or_missing_callflow_1009() {
    assert_valid(json!({"callflow": [hangup()]}));
    let message = assert_only(json!({"callflow": []}), -1009, "$.callflow");
    assert_eq!(message, "must hold at least one action");
    let message = assert_only(json!({"clientActionId": "menu"}), -1009, "$.callflow");
    assert_eq!(message, "is missing but it is required");
    assert_only(json!({"callflow": null}), -1009, "$.callflow");
    // Missing in API mode too, and -1013 is not piled on top.
    assert_only_in(json!({}), Mode::Api, -1009, "$.callflow");
}

#[test]
fn bad_client_action_id_1009() {
    assert_valid(json!({"clientActionId": "ivr1_level2", "callflow": [hangup()]}));
    assert_valid(json!({"clientActionId": "x".repeat(128), "callflow": [hangup()]}));
    for (bad, message) in [
        (json!("has space"), "must be printable ASCII without spaces"),
        (json!(""), "must be 1..=128 characters, got 0"),
        (
            json!("x".repeat(129)),
            "must be 1..=128 characters, got 129",
        ),
        (json!("menü"), "must be printable ASCII without spaces"),
        // 65 characters but 130 bytes: the problem is the characters, not the length.
        (
            json!("é".repeat(65)),
            "must be printable ASCII without spaces",
        ),
        (json!(12), "must be a string, got a number"),
    ] {
        let got = assert_only(
            json!({"clientActionId": bad, "callflow": [hangup()]}),
            -1009,
            "$.clientActionId",
        );
        assert_eq!(got, message, "for {bad}");
    }
}

// ---- -1010 too many actions, or anything after sayAndCapture ----

#[test]
fn more_than_max_actions_1010() {
    assert_valid(flow(vec![hello(); MAX_ACTIONS]));
    let message = assert_only(flow(vec![hello(); MAX_ACTIONS + 1]), -1010, "$.callflow");
    assert_eq!(message, "holds 11 actions; at most 10 are allowed");
}

#[test]
fn anything_after_say_and_capture_is_a_warning() {
    assert_valid(flow(vec![hello(), play(json!({})), capture(json!({}))]));
    let message = assert_only_warning(
        flow(vec![capture(json!({})), hello()]),
        Mode::Webhook,
        -1010,
        "$.callflow[1]",
    );
    assert!(
        message.contains("the platform may ignore the digits the caller enters"),
        "{message}"
    );
    assert_only_warning(
        flow(vec![capture(json!({})), hangup()]),
        Mode::Webhook,
        -1010,
        "$.callflow[1]",
    );
    let violations = validate_json(
        &flow(vec![capture(json!({})), capture(json!({})), hello()]),
        Mode::Webhook,
    );
    assert_eq!(
        summarize(&violations),
        [
            (-1010, "$.callflow[1]".to_owned()),
            (-1010, "$.callflow[2]".to_owned()),
        ]
    );
    assert!(violations.iter().all(|v| !v.is_error()));
}

// ---- -1011 more than one makeCall ----

#[test]
fn two_make_calls_in_a_webhook_answer_1011() {
    assert_valid(flow(vec![hello(), make_call(json!({}))]));
    let message = assert_only(
        flow(vec![
            make_call(json!({})),
            make_call(json!({"destination": "6531589338"})),
        ]),
        -1011,
        "$.callflow[1]",
    );
    assert_eq!(
        message,
        "a webhook answer may hold one makeCall (the caller's leg is the other); the first is $.callflow[0]"
    );
}

#[test]
fn two_make_calls_in_an_api_request_third_is_1010() {
    // The second call is bridged to the first once answered.
    let two = flow(vec![
        make_call(json!({})),
        make_call(json!({"destination": "6531589338"})),
    ]);
    assert!(validate_json(&two, Mode::Api).is_empty());
    let message = assert_only_in(
        flow(vec![
            make_call(json!({})),
            hello(),
            make_call(json!({"destination": "6531589338"})),
            make_call(json!({"destination": "6531589339"})),
        ]),
        Mode::Api,
        -1010,
        "$.callflow[3]",
    );
    assert_eq!(
        message,
        "a Callflows API request may hold at most two makeCall actions; they are $.callflow[0] and $.callflow[2]"
    );
}

// ---- -1014 caller id not whitelisted (only against a given list) ----

#[test]
fn caller_id_is_checked_only_against_a_given_list_1014() {
    let body = flow(vec![make_call(json!({}))]);
    let source = body["callflow"][0]["params"]["source"]
        .as_str()
        .unwrap()
        .to_owned();
    // No list: the platform knows it, we do not.
    assert!(validate_json(&body, Mode::Api).is_empty());
    // The list may spell the number with or without the +.
    let listed = [format!("+{}", source.trim_start_matches('+'))];
    let rules = Rules {
        caller_ids: Some(&listed),
        ..Rules::new(Mode::Api)
    };
    assert!(validate_json_with(&body, &rules).is_empty());
    let other = ["+6560000000".to_owned(), "+6560000001".to_owned()];
    let rules = Rules {
        caller_ids: Some(&other),
        ..Rules::new(Mode::Api)
    };
    let violations = validate_json_with(&body, &rules);
    assert_eq!(
        summarize(&violations),
        [(-1014, "$.callflow[0].params.source".to_owned())]
    );
    assert_eq!(
        violations[0].message,
        format!("{source:?} is not one of the sub-account's caller ids (+6560000000, +6560000001)")
    );
    // An empty list whitelists nothing.
    let rules = Rules {
        caller_ids: Some(&[]),
        ..Rules::new(Mode::Webhook)
    };
    assert_eq!(
        summarize(&validate_json_with(&body, &rules)),
        [(-1014, "$.callflow[0].params.source".to_owned())]
    );
}

// ---- -1015 validUntil in the past (only against a given time) ----

#[test]
fn valid_until_must_be_a_time_and_in_the_future_1015() {
    let request = |until: Value| json!({"callflow": [make_call(json!({}))], "validUntil": until});
    let now = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
    let rules = Rules {
        now: Some(now),
        ..Rules::new(Mode::Api)
    };
    for later in [
        "2026-01-15T12:00:00.001Z",
        "2027-01-01T00:00:00.000Z",
        "2026-01-16T00:00:00Z",
    ] {
        assert!(
            validate_json_with(&request(json!(later)), &rules).is_empty(),
            "{later}"
        );
    }
    for past in ["2026-01-15T12:00:00.000Z", "2025-12-31T23:59:59.999Z"] {
        let violations = validate_json_with(&request(json!(past)), &rules);
        assert_eq!(
            summarize(&violations),
            [(-1015, "$.validUntil".to_owned())],
            "{past}"
        );
        assert!(
            violations[0].message.ends_with(
                "is already past (now 2026-01-15T12:00:00.000Z); the platform would not place the call"
            ),
            "{}",
            violations[0].message
        );
    }
    // Without a time, only the format is checked.
    assert!(validate_json(&request(json!("2000-01-01T00:00:00.000Z")), Mode::Api).is_empty());
    for bad in [
        json!("tomorrow"),
        json!("2026-01-15 12:00:00"),
        json!("2026-01-15T12:00:00+08:00"),
    ] {
        assert_eq!(
            found(&request(bad.clone()), Mode::Api),
            [(-1009, "$.validUntil".to_owned())],
            "{bad}"
        );
    }
    assert_eq!(
        found(&request(json!(20260115)), Mode::Api),
        [(-1009, "$.validUntil".to_owned())]
    );
}

// ---- -1012 anything after hangup ----

#[test]
fn anything_after_hangup_1012() {
    assert_valid(flow(vec![hello(), play(json!({})), hangup()]));
    let message = assert_only(flow(vec![hangup(), hello()]), -1012, "$.callflow[1]");
    assert_eq!(message, "nothing may follow the hangup at $.callflow[0]");
    assert_only(flow(vec![hangup(), hangup()]), -1012, "$.callflow[1]");
    assert_eq!(
        found(
            &flow(vec![hello(), hangup(), hello(), play(json!({}))]),
            Mode::Webhook
        ),
        [
            (-1012, "$.callflow[2]".to_owned()),
            (-1012, "$.callflow[3]".to_owned()),
        ]
    );
}

// ---- -1013 first action must be makeCall (API only) ----

#[test]
fn api_mode_requires_make_call_first_1013() {
    let api_ok = json!({
        "callflow": [make_call(json!({}))],
        "validUntil": "2026-12-01T00:00:00Z",
        "clientRequestId": "req-1",
    });
    assert!(validate_json(&api_ok, Mode::Api).is_empty());

    let message = assert_only_in(
        flow(vec![hello(), make_call(json!({}))]),
        Mode::Api,
        -1013,
        "$.callflow[0].action",
    );
    assert_eq!(
        message,
        "the first action of a Callflows API request must be makeCall"
    );
    assert_only_in(
        flow(vec![hangup()]),
        Mode::Api,
        -1013,
        "$.callflow[0].action",
    );
    // An unknown first action is reported as unknown and as not being makeCall; at one path,
    // violations keep the order of the codes.
    assert_eq!(
        found(&flow(vec![json!({"action": "dial"})]), Mode::Api),
        [
            (-1007, "$.callflow[0].action".to_owned()),
            (-1013, "$.callflow[0].action".to_owned()),
        ]
    );
}

#[test]
fn webhook_mode_does_not_require_make_call_first() {
    assert_valid(flow(vec![hello()]));
    assert_valid(flow(vec![hello(), make_call(json!({}))]));
    assert_valid(flow(vec![capture(json!({}))]));
}

// ---- -1016 special characters ----

#[test]
fn control_characters_in_text_1016() {
    assert_valid(flow(vec![say(
        json!({"text": "line one\nline two\tand\r\nthree", "voiceProfile": VOICE}),
    )]));
    assert_valid(flow(vec![say(
        json!({"text": "Grüß Gott, 你好, مرحبا 👋", "voiceProfile": VOICE}),
    )]));
    let message = assert_only(
        flow(vec![say(
            json!({"text": "ding\u{7}dong", "voiceProfile": VOICE}),
        )]),
        -1016,
        "$.callflow[0].params.text",
    );
    assert_eq!(
        message,
        "contains the invalid character U+0007 at position 4"
    );
    for (key, bad) in [
        ("promptMessage", "Press\u{0} 1"),
        ("successMessage", "Thanks\u{1b}[0m"),
        ("failureMessage", "Sorry \u{FFFD}"),
    ] {
        assert_only(
            flow(vec![capture(json!({ key: bad }))]),
            -1016,
            &format!("$.callflow[0].params.{key}"),
        );
    }
}

// ---- -1017 destination MSISDN ----

#[test]
fn bad_destination_msisdn_1017() {
    for ok in ["6587654321", "+6587654321", "+14155550100"] {
        assert_valid(flow(vec![make_call(json!({ "destination": ok }))]));
    }
    for bad in [
        "",
        "+",
        "0123456789",
        "+65 8765 4321",
        "65-8765-4321",
        "+1234567890123456",
        "sip:alice@example.com",
    ] {
        assert_only(
            flow(vec![make_call(json!({ "destination": bad }))]),
            -1017,
            "$.callflow[0].params.destination",
        );
    }
    // A bad source is an invalid entry: -1017 is about the destination.
    assert_only(
        flow(vec![make_call(json!({"source": "abc"}))]),
        -1009,
        "$.callflow[0].params.source",
    );
}

// ---- many violations at once ----

#[test]
fn every_violation_is_reported_sorted_by_path() {
    let mut actions = vec![hello(); MAX_ACTIONS + 1];
    actions[10] = say(json!({"text": "Hi", "voiceProfile": "robot"}));
    actions[2] = say(json!({"text": "Hi\u{7}", "voiceProfile": VOICE, "speed": 3}));
    actions[1] = json!({"action": "whisper"});
    actions[0] = make_call(json!({"destination": "nope", "extra": 1}));
    let body = json!({"clientActionId": "bad id", "callflow": actions});

    let violations = validate_json(&body, Mode::Webhook);
    assert_eq!(
        summarize(&violations),
        [
            (-1010, "$.callflow".to_owned()),
            (-1017, "$.callflow[0].params.destination".to_owned()),
            (-1009, "$.callflow[0].params.extra".to_owned()),
            (-1007, "$.callflow[1].action".to_owned()),
            (-1009, "$.callflow[2].params.speed".to_owned()),
            (-1016, "$.callflow[2].params.text".to_owned()),
            // [10] after [2]: indices sort as numbers, not as text.
            (-1002, "$.callflow[10].params.voiceProfile".to_owned()),
            (-1009, "$.clientActionId".to_owned()),
        ]
    );
    let mut sorted = violations.clone();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(violations, sorted);
    // validate_slice reports the same on the same bytes.
    let bytes = serde_json::to_vec(&body).unwrap();
    assert_eq!(validate_slice(&bytes, Mode::Webhook), violations);
}

#[test]
fn violations_display_as_code_path_message() {
    let violations = validate_json(
        &flow(vec![say(
            json!({"text": "Hi", "voiceProfile": VOICE, "repetition": 4}),
        )]),
        Mode::Webhook,
    );
    assert_eq!(
        violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["-1009 $.callflow[0].params.repetition: must be 1..=3, got 4"]
    );
}
