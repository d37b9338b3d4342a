//! Golden serialization: each of the five actions built through the public API (newtypes,
//! constructors, setters, [`CallflowBuilder`]) and compared with the exact JSON the platform
//! gets. These strings are the wire contract: camelCase names, absent optionals omitted, `speed`
//! a JSON number, `hangup` without `params`.

use switchboard_protocol::callflow::{BuildError, MAX_ACTIONS};
use switchboard_protocol::{
    Action, Callflow, ClientActionId, DigitCount, FileUrl, MakeCall, Msisdn, PlayFile, Repetition,
    Say, SayAndCapture, Speed, StatusCode, Text, VoiceProfile, validate_callflow,
};
use switchboard_protocol::{Mode, validate_slice};

fn text(s: &str) -> Text {
    Text::new(s).unwrap()
}

fn voice(s: &str) -> VoiceProfile {
    VoiceProfile::new(s).unwrap()
}

fn id(s: &str) -> ClientActionId {
    ClientActionId::new(s).unwrap()
}

fn digits(n: u64) -> DigitCount {
    DigitCount::new(n).unwrap()
}

/// Serializes, checks `to_json` agrees, and checks the bytes pass the validator.
#[track_caller]
fn wire(callflow: &Callflow) -> String {
    let json = serde_json::to_string(callflow).unwrap();
    assert_eq!(callflow.to_json(), json.as_bytes());
    assert!(
        validate_slice(json.as_bytes(), Mode::Webhook).is_empty(),
        "{json}"
    );
    assert!(validate_callflow(callflow, Mode::Webhook).is_empty());
    json
}

#[test]
fn make_call() {
    let call = MakeCall {
        source: Msisdn::new("6512345678").unwrap(),
        destination: Msisdn::new("+6587654321").unwrap(),
        call_recording: Some(true),
    };
    let callflow = Callflow::builder()
        .client_action_id(id("ivr1_level2"))
        .make_call(call.clone())
        .unwrap();
    assert_eq!(
        wire(&callflow),
        r#"{"clientActionId":"ivr1_level2","callflow":[{"action":"makeCall","params":{"source":"6512345678","destination":"+6587654321","callRecording":true}}]}"#
    );

    let plain = MakeCall {
        call_recording: None,
        ..call
    };
    assert_eq!(
        wire(&Callflow::builder().make_call(plain).unwrap()),
        r#"{"callflow":[{"action":"makeCall","params":{"source":"6512345678","destination":"+6587654321"}}]}"#
    );
}

#[test]
fn say() {
    let mut say = Say::new(text("Hello This is a test message"), voice("en-US-ZiraRUS"));
    assert_eq!(
        wire(&Callflow::builder().say(say.clone()).finish().unwrap()),
        r#"{"callflow":[{"action":"say","params":{"text":"Hello This is a test message","voiceProfile":"en-US-ZiraRUS"}}]}"#
    );

    say.repetition = Some(Repetition::new(2).unwrap());
    say.speed = Some(Speed::new(1.5).unwrap());
    let callflow = Callflow::builder()
        .client_action_id(id("greeting"))
        .say(say)
        .finish()
        .unwrap();
    assert_eq!(
        wire(&callflow),
        r#"{"clientActionId":"greeting","callflow":[{"action":"say","params":{"text":"Hello This is a test message","voiceProfile":"en-US-ZiraRUS","repetition":2,"speed":1.5}}]}"#
    );
}

#[test]
fn say_keeps_unicode_and_escapes_what_json_needs() {
    let say = Say::new(text("Grüß \"Gott\"\n你好 👋"), voice("de-DE-KatjaNeural"));
    assert_eq!(
        wire(&Callflow::builder().say(say).finish().unwrap()),
        "{\"callflow\":[{\"action\":\"say\",\"params\":{\"text\":\"Grüß \\\"Gott\\\"\\n你好 👋\",\"voiceProfile\":\"de-DE-KatjaNeural\"}}]}"
    );
}

#[test]
fn say_and_capture() {
    let minimal = SayAndCapture::new(text("Press 1 for sales"), voice("en-US-BenjaminRUS"));
    assert_eq!(
        wire(&Callflow::builder().capture(minimal.clone()).unwrap()),
        r#"{"callflow":[{"action":"sayAndCapture","params":{"promptMessage":"Press 1 for sales","voiceProfile":"en-US-BenjaminRUS"}}]}"#
    );

    let full = minimal
        .success_message(text("Thank you"))
        .failure_message(text("Invalid input received."))
        .speed(Speed::new(0.75).unwrap())
        .digits(Some(digits(1)), digits(4))
        .unwrap()
        .complete_on_hash(false)
        .unwrap()
        .timeouts(Some(5000), 10000)
        .unwrap()
        .tries(2)
        .unwrap();
    let callflow = Callflow::builder()
        .client_action_id(id("menu:main"))
        .capture(full)
        .unwrap();
    assert_eq!(
        wire(&callflow),
        r#"{"clientActionId":"menu:main","callflow":[{"action":"sayAndCapture","params":{"promptMessage":"Press 1 for sales","voiceProfile":"en-US-BenjaminRUS","successMessage":"Thank you","failureMessage":"Invalid input received.","speed":0.75,"completeOnHash":false,"minDigits":1,"maxDigits":4,"digitTimeout":5000,"overallTimeout":10000,"noOfTries":2}}]}"#
    );

    let only_overall = SayAndCapture::new(text("Your PIN"), voice("en-US-BenjaminRUS"))
        .digits(None, digits(6))
        .unwrap()
        .timeouts(None, 20000)
        .unwrap();
    assert_eq!(
        wire(&Callflow::builder().capture(only_overall).unwrap()),
        r#"{"callflow":[{"action":"sayAndCapture","params":{"promptMessage":"Your PIN","voiceProfile":"en-US-BenjaminRUS","maxDigits":6,"overallTimeout":20000}}]}"#
    );
}

#[test]
fn play_file() {
    let play = PlayFile::new(FileUrl::new("https://sample-videos.com/audio/mp3/wave.mp3").unwrap());
    assert_eq!(
        wire(
            &Callflow::builder()
                .play_file(play.clone())
                .finish()
                .unwrap()
        ),
        r#"{"callflow":[{"action":"playFile","params":{"fileUrl":"https://sample-videos.com/audio/mp3/wave.mp3"}}]}"#
    );
    let twice = PlayFile {
        repetition: Some(Repetition::new(3).unwrap()),
        ..play
    };
    assert_eq!(
        wire(&Callflow::builder().play_file(twice).finish().unwrap()),
        r#"{"callflow":[{"action":"playFile","params":{"fileUrl":"https://sample-videos.com/audio/mp3/wave.mp3","repetition":3}}]}"#
    );
}

#[test]
fn hangup() {
    let callflow = Callflow::builder()
        .client_action_id(id("ivr1_level2"))
        .hangup()
        .unwrap();
    assert_eq!(
        wire(&callflow),
        r#"{"clientActionId":"ivr1_level2","callflow":[{"action":"hangup"}]}"#
    );
    // An empty builder finishes as a hangup rather than as an invalid empty callflow.
    assert_eq!(
        wire(&Callflow::builder().finish().unwrap()),
        r#"{"callflow":[{"action":"hangup"}]}"#
    );
}

#[test]
fn a_whole_menu_step() {
    let callflow = Callflow::builder()
        .client_action_id(id("s1:menu:2"))
        .say(Say::new(text("Welcome."), voice("en-US-ZiraRUS")))
        .play_file(PlayFile::new(
            FileUrl::new("http://example.com/jingle.wav").unwrap(),
        ))
        .capture(
            SayAndCapture::new(text("Press 1 or 2."), voice("en-US-ZiraRUS"))
                .digits(None, digits(1))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        wire(&callflow),
        r#"{"clientActionId":"s1:menu:2","callflow":[{"action":"say","params":{"text":"Welcome.","voiceProfile":"en-US-ZiraRUS"}},{"action":"playFile","params":{"fileUrl":"http://example.com/jingle.wav"}},{"action":"sayAndCapture","params":{"promptMessage":"Press 1 or 2.","voiceProfile":"en-US-ZiraRUS","maxDigits":1}}]}"#
    );
    let names: Vec<_> = callflow.actions.iter().map(Action::name).collect();
    assert_eq!(names, ["say", "playFile", "sayAndCapture"]);
    assert_eq!(
        callflow
            .actions
            .iter()
            .map(Action::ends_callflow)
            .collect::<Vec<_>>(),
        [false, false, true]
    );
}

#[test]
fn the_builder_refuses_more_than_max_actions() {
    let say = Say::new(text("Hi"), voice("en-US-ZiraRUS"));
    let full = (0..MAX_ACTIONS - 1).fold(Callflow::builder(), |b, _| b.say(say.clone()));
    assert_eq!(full.len(), MAX_ACTIONS - 1);
    assert!(full.clone().hangup().is_ok());
    assert_eq!(
        full.clone().say(say.clone()).hangup(),
        Err(BuildError::TooManyActions(MAX_ACTIONS + 1))
    );
    assert_eq!(
        full.say(say.clone())
            .say(say)
            .finish()
            .unwrap_err()
            .to_string(),
        "a callflow holds at most 10 actions, this one has 11"
    );
}

#[test]
fn capture_setters_keep_the_cross_field_rules() {
    let capture = || SayAndCapture::new(text("PIN?"), voice("en-US-ZiraRUS"));
    let err = capture().digits(Some(digits(5)), digits(4)).unwrap_err();
    assert_eq!(err.code, StatusCode::InvalidEntry);
    assert_eq!(err.message, "minDigits 5 must not exceed maxDigits 4");

    let err = capture().complete_on_hash(false).unwrap_err();
    assert_eq!(err.code, StatusCode::MaxDigitsRequiredWithoutHash);
    assert!(capture().complete_on_hash(true).is_ok());

    let err = capture().timeouts(Some(10000), 10000).unwrap_err();
    assert_eq!(err.code, StatusCode::OverallTimeoutNotGreater);
    assert_eq!(
        err.message,
        "overallTimeout 10000 must be greater than digitTimeout 10000"
    );
    assert_eq!(
        capture().timeouts(None, 0).unwrap_err().code,
        StatusCode::InvalidEntry
    );
    assert_eq!(
        capture().tries(0).unwrap_err().code,
        StatusCode::InvalidEntry
    );

    let defaults = capture();
    assert!(defaults.completes_on_hash());
    assert_eq!(defaults.max_digits(), None);
    assert_eq!(defaults.overall_timeout_ms(), 30_000);
    assert_eq!(defaults.no_of_tries(), 3);
}

#[test]
fn constructors_refuse_out_of_range_values_with_the_platform_code() {
    assert_eq!(Text::new("").unwrap_err().code, StatusCode::InvalidEntry);
    assert_eq!(
        Text::new("a".repeat(3001)).unwrap_err().code,
        StatusCode::InvalidEntry
    );
    assert_eq!(
        Text::new("bell\u{7}").unwrap_err().code,
        StatusCode::InvalidCharacters
    );
    assert_eq!(
        VoiceProfile::new("robot").unwrap_err().code,
        StatusCode::InvalidVoiceProfile
    );
    assert_eq!(
        Msisdn::new("+65 1234").unwrap_err().code,
        StatusCode::InvalidMsisdn
    );
    assert_eq!(
        FileUrl::new("https://example.com/a.ogg").unwrap_err().code,
        StatusCode::InvalidEntry
    );
    assert!(Repetition::new(0).is_err() && Repetition::new(4).is_err());
    assert!(DigitCount::new(0).is_err() && DigitCount::new(26).is_err());
    assert!(Speed::new(0.4).is_err() && Speed::new(2.5).is_err());
    assert!(ClientActionId::new("has space").is_err());
}
