//! Property tests for the invariants the project asks of its wire types: everything we can build
//! passes our own validator, and parse after serialize is the identity.
//!
//! Callflows are generated from raw values through the public constructors and builders, the
//! way the rest of Switchboard makes them; a combination a constructor or builder refuses
//! (`minDigits > maxDigits`, `completeOnHash` false without `maxDigits`, `digitTimeout ≥
//! overallTimeout`, too many actions, ...) is skipped rather than repaired, so the generator
//! cannot hide a builder that accepts too much.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use switchboard_protocol::callflow::MAX_ACTIONS;
use switchboard_protocol::compact::{Reader, Writer};
use switchboard_protocol::scalar::MAX_TEXT_CHARS;
use switchboard_protocol::{
    Action, Callflow, ClientActionId, DigitCount, FileUrl, MakeCall, Mode, Msisdn, PlayFile,
    Repetition, Say, SayAndCapture, ScalarError, Speed, Text, VoiceProfile, validate_callflow,
    validate_slice,
};

const VOICES: [&str; 6] = [
    "en-US-ZiraRUS",
    "en-US-BenjaminRUS",
    "en-GB-Susan-Apollo",
    "zh-CN-HuihuiRUS",
    "fil-PH-Angelo",
    "de-DE-KatjaNeural",
];

fn voice() -> impl Strategy<Value = VoiceProfile> {
    proptest::sample::select(&VOICES[..]).prop_map(|v| VoiceProfile::new(v).unwrap())
}

/// Raw text: mostly short with any printable Unicode, sometimes at or near the length limit.
fn raw_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "\\PC{1,40}",
        2 => "[a-zA-Z0-9 .,?!'\"\\\\/\n\t]{1,80}",
        1 => (MAX_TEXT_CHARS - 5..=MAX_TEXT_CHARS + 5, "\\PC").prop_map(|(n, c)| c.repeat(n)),
    ]
}

fn text() -> impl Strategy<Value = Text> {
    raw_text().prop_filter_map("Text::new refuses it", |s| Text::new(s).ok())
}

fn repetition() -> impl Strategy<Value = Option<Repetition>> {
    option::of((1..=3u64).prop_map(|r| Repetition::new(r).unwrap()))
}

fn speed() -> impl Strategy<Value = Option<Speed>> {
    let nice = (5..=20u32).prop_map(|tenths| f64::from(tenths) / 10.0);
    let any = Speed::MIN..=Speed::MAX;
    option::of(prop_oneof![nice, any].prop_map(|s| Speed::new(s).unwrap()))
}

fn msisdn() -> impl Strategy<Value = Msisdn> {
    "\\+?[1-9][0-9]{1,14}".prop_map(|n| Msisdn::new(n).unwrap())
}

fn file_url() -> impl Strategy<Value = FileUrl> {
    "https?://[a-z0-9]{1,12}(\\.[a-z]{2,6}){1,2}(:[0-9]{2,5})?/([A-Za-z0-9_%-]{1,10}/){0,3}[A-Za-z0-9_%-]{1,16}\\.(wav|mp3|WAV|Mp3)(\\?[a-z]=[0-9]{1,4})?"
        .prop_map(|u| FileUrl::new(u).unwrap())
}

fn client_action_id() -> impl Strategy<Value = Option<ClientActionId>> {
    option::of("[!-~]{1,128}".prop_map(|id| ClientActionId::new(id).unwrap()))
}

fn say() -> impl Strategy<Value = Say> {
    (text(), voice(), repetition(), speed()).prop_map(|(text, voice, repetition, speed)| Say {
        repetition,
        speed,
        ..Say::new(text, voice)
    })
}

fn play_file() -> impl Strategy<Value = PlayFile> {
    (file_url(), repetition()).prop_map(|(url, repetition)| PlayFile {
        repetition,
        ..PlayFile::new(url)
    })
}

fn make_call() -> impl Strategy<Value = MakeCall> {
    (msisdn(), msisdn(), option::of(any::<bool>())).prop_map(
        |(source, destination, call_recording)| MakeCall {
            source,
            destination,
            call_recording,
        },
    )
}

/// The raw settings of a `sayAndCapture`, applied through its setters in `capture`.
#[derive(Debug, Clone)]
struct CaptureSettings {
    prompt: Text,
    voice: VoiceProfile,
    success: Option<Text>,
    failure: Option<Text>,
    speed: Option<Speed>,
    digits: Option<(Option<u64>, u64)>,
    complete_on_hash: Option<bool>,
    timeouts: Option<(Option<u32>, u32)>,
    tries: Option<u8>,
}

fn capture_settings() -> impl Strategy<Value = CaptureSettings> {
    let digits = option::of((option::of(1..=25u64), 1..=25u64));
    let timeout = prop_oneof![1..=120_000u32, any::<u32>()];
    let timeouts = option::of((option::of(timeout.clone()), timeout));
    (
        (
            text(),
            voice(),
            option::of(text()),
            option::of(text()),
            speed(),
        ),
        (
            digits,
            option::of(any::<bool>()),
            timeouts,
            option::of(any::<u8>()),
        ),
    )
        .prop_map(
            |(
                (prompt, voice, success, failure, speed),
                (digits, complete_on_hash, timeouts, tries),
            )| {
                CaptureSettings {
                    prompt,
                    voice,
                    success,
                    failure,
                    speed,
                    digits,
                    complete_on_hash,
                    timeouts,
                    tries,
                }
            },
        )
}

/// Builds the capture; `Err` when a setter refuses the combination.
fn capture(s: CaptureSettings) -> Result<SayAndCapture, ScalarError> {
    let mut c = SayAndCapture::new(s.prompt, s.voice);
    if let Some(text) = s.success {
        c = c.success_message(text);
    }
    if let Some(text) = s.failure {
        c = c.failure_message(text);
    }
    if let Some(speed) = s.speed {
        c = c.speed(speed);
    }
    if let Some((min, max)) = s.digits {
        let min = min.map(DigitCount::new).transpose()?;
        c = c.digits(min, DigitCount::new(max)?)?;
    }
    if let Some(on) = s.complete_on_hash {
        c = c.complete_on_hash(on)?;
    }
    if let Some((digit, overall)) = s.timeouts {
        c = c.timeouts(digit, overall)?;
    }
    if let Some(tries) = s.tries {
        c = c.tries(tries)?;
    }
    Ok(c)
}

#[derive(Debug, Clone)]
enum Middle {
    Say(Say),
    PlayFile(PlayFile),
}

#[derive(Debug, Clone)]
enum Terminal {
    /// `finish()` after the middle actions.
    None,
    Hangup,
    MakeCall(MakeCall),
    Capture(CaptureSettings),
}

fn middle() -> impl Strategy<Value = Middle> {
    prop_oneof![
        say().prop_map(Middle::Say),
        play_file().prop_map(Middle::PlayFile)
    ]
}

fn terminal() -> impl Strategy<Value = Terminal> {
    prop_oneof![
        Just(Terminal::None),
        Just(Terminal::Hangup),
        make_call().prop_map(Terminal::MakeCall),
        capture_settings().prop_map(Terminal::Capture),
    ]
}

/// Builds the callflow; `None` when a constructor or the builder refuses the inputs. Up to
/// `MAX_ACTIONS` middle actions plus a terminal, so the builder's own limit is exercised too.
fn callflow() -> impl Strategy<Value = Callflow> {
    (
        client_action_id(),
        vec(middle(), 0..=MAX_ACTIONS),
        terminal(),
    )
        .prop_filter_map(
            "a constructor or the builder refuses the inputs",
            |(id, middle, terminal)| {
                let mut builder = Callflow::builder();
                if let Some(id) = id {
                    builder = builder.client_action_id(id);
                }
                for action in middle {
                    builder = match action {
                        Middle::Say(say) => builder.say(say),
                        Middle::PlayFile(play) => builder.play_file(play),
                    };
                }
                match terminal {
                    Terminal::None => builder.finish(),
                    Terminal::Hangup => builder.hangup(),
                    Terminal::MakeCall(call) => builder.make_call(call),
                    Terminal::Capture(settings) => builder.capture(capture(settings).ok()?),
                }
                .ok()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn built_callflows_pass_the_validator(callflow in callflow()) {
        let violations = validate_callflow(&callflow, Mode::Webhook);
        prop_assert!(violations.is_empty(), "{:#?}", violations);
    }

    #[test]
    fn serialize_then_deserialize_is_the_identity(callflow in callflow()) {
        let json = serde_json::to_string(&callflow).unwrap();
        let back: Callflow = serde_json::from_str(&json)
            .map_err(|err| TestCaseError::fail(format!("{err} in {json}")))?;
        prop_assert_eq!(back, callflow);
    }

    #[test]
    fn the_compact_encoding_reads_back_to_the_same_callflow_and_the_same_json(
        callflow in callflow(),
        implied in any::<bool>(),
        corrupt_at in any::<proptest::sample::Index>(),
    ) {
        // The store passes the session's current clientActionId as the implied one; any id
        // works here, whether or not the callflow carries it.
        let implied = implied
            .then(|| callflow.client_action_id.as_ref().map(|id| id.as_str().to_owned()))
            .flatten();
        let mut out = Writer::default();
        callflow.write_compact(&mut out, implied.as_deref());
        let bytes = out.into_bytes();
        let mut input = Reader::new(&bytes);
        let back = Callflow::read_compact(&mut input, implied.as_deref())
            .map_err(|err| TestCaseError::fail(format!("{err} in {bytes:?}")))?;
        input.finish().map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(back.to_json(), callflow.to_json());
        prop_assert_eq!(&back, &callflow);
        prop_assert!(bytes.len() < callflow.to_json().len());
        // Truncated bytes are an error, never a panic nor a different callflow.
        let cut = corrupt_at.index(bytes.len());
        let mut input = Reader::new(&bytes[..cut]);
        prop_assert!(Callflow::read_compact(&mut input, implied.as_deref()).is_err());
    }

    #[test]
    fn serialized_bytes_pass_the_validator(callflow in callflow()) {
        let bytes = callflow.to_json();
        let violations = validate_slice(&bytes, Mode::Webhook);
        prop_assert!(violations.is_empty(), "{:#?} in {}", violations, String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn api_mode_accepts_exactly_the_callflows_that_start_with_make_call(callflow in callflow()) {
        let starts_with_call = matches!(callflow.actions.first(), Some(Action::MakeCall(_)));
        let violations = validate_callflow(&callflow, Mode::Api);
        prop_assert_eq!(violations.is_empty(), starts_with_call, "{:#?}", violations);
    }

    #[test]
    fn the_builder_never_exceeds_max_actions_nor_continues_after_a_terminal(callflow in callflow()) {
        prop_assert!(!callflow.actions.is_empty() && callflow.actions.len() <= MAX_ACTIONS);
        let last = callflow.actions.len() - 1;
        for action in &callflow.actions[..last] {
            prop_assert!(!action.ends_callflow(), "{} before the end", action.name());
        }
    }

    #[test]
    fn sanitize_yields_none_or_a_valid_text(input in any::<String>()) {
        check_sanitize(&input)?;
    }

    #[test]
    fn sanitize_keeps_a_valid_text_unchanged(text in text()) {
        prop_assert_eq!(Text::sanitize(text.as_str()), Some(text));
    }
}

proptest! {
    // Each case is a few thousand characters; fewer cases keep the suite quick on two cores.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn sanitize_yields_none_or_a_valid_text_for_long_input(pieces in long_input_pieces()) {
        let input: String = pieces.concat();
        check_sanitize(&input)?;
    }
}

/// Input around and beyond the text limit, made of words, wide characters, characters that
/// `sanitize` must replace, and separators (or none, for words longer than the limit).
fn long_input_pieces() -> impl Strategy<Value = Vec<String>> {
    let piece = prop_oneof![
        4 => "[a-z]{1,12}",
        2 => proptest::sample::select(vec![" ", " ", "\n", "\t", ""]).prop_map(String::from),
        1 => proptest::sample::select(vec!["é", "你好", "👋", "\u{FFFD}", "\u{0}", "\u{1b}", "\u{7f}"])
            .prop_map(String::from),
    ];
    vec(piece, 300..=2000)
}

/// `Text::sanitize` returns a valid text whenever there is something to say, and `None` only
/// when nothing printable is left. The text is the input with unspeakable characters replaced
/// by spaces, whole when it fits, otherwise cut at the limit or at a word boundary before it.
fn check_sanitize(input: &str) -> Result<(), TestCaseError> {
    let is_bad = |c: char| (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || c == '\u{FFFD}';
    let cleaned: Vec<char> = input
        .chars()
        .map(|c| if is_bad(c) { ' ' } else { c })
        .collect();
    match Text::sanitize(input) {
        Some(text) => {
            prop_assert!(Text::new(text.as_str()).is_ok(), "{:?}", text);
            let got: Vec<char> = text.as_str().chars().collect();
            prop_assert!(got.len() <= MAX_TEXT_CHARS);
            prop_assert!(
                cleaned.starts_with(&got),
                "not a prefix of the cleaned input"
            );
            if cleaned.len() <= MAX_TEXT_CHARS {
                prop_assert_eq!(
                    got.len(),
                    cleaned.len(),
                    "text that fits must be kept whole"
                );
            } else {
                let cut = got.len();
                prop_assert!(
                    cut == MAX_TEXT_CHARS || cleaned[cut].is_whitespace(),
                    "cut at {} inside a word",
                    cut
                );
            }
        }
        None => {
            let printable = cleaned
                .iter()
                .take(MAX_TEXT_CHARS)
                .any(|c| !c.is_whitespace());
            prop_assert!(!printable, "None for {:?}", input);
        }
    }
    Ok(())
}

#[test]
fn sanitize_of_one_long_word_is_cut_not_dropped() {
    // A single word longer than the limit has no word boundary to cut at: cut it at the limit.
    let long = format!(" {}", "a".repeat(MAX_TEXT_CHARS + 10));
    let text = Text::sanitize(&long).expect("there is something to say");
    assert_eq!(text.as_str().chars().count(), MAX_TEXT_CHARS);
}

#[test]
fn sanitize_does_not_drop_a_whole_word_that_ends_at_the_limit() {
    let exact = format!("{} {}", "a".repeat(10), "b".repeat(MAX_TEXT_CHARS - 11));
    let input = format!("{exact} and more");
    assert_eq!(Text::sanitize(&input).unwrap().as_str(), exact);
}
