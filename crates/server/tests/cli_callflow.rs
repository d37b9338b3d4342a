//! `switchboard callflow validate` as a user runs it: the real binary on the hand-written
//! fixtures in `fixtures/callflow`, asserting exactly what it prints and its exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/callflow")
        .join(name)
}

fn switchboard(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.args(args);
    command
}

/// `switchboard callflow validate [--api] <fixture>`.
fn validate(name: &str, api: bool) -> Output {
    let path = fixture(name);
    let mut args = vec!["callflow", "validate"];
    if api {
        args.push("--api");
    }
    args.push(path.to_str().unwrap());
    switchboard(&args).output().unwrap()
}

/// `switchboard callflow validate [--api] -` with `input` on stdin.
fn validate_stdin(input: &[u8], api: bool) -> Output {
    let mut args = vec!["callflow", "validate"];
    if api {
        args.push("--api");
    }
    args.push("-");
    let mut child = switchboard(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Asserts the exit code and the exact standard output, and that nothing went to stderr.
#[track_caller]
fn assert_output(output: &Output, code: i32, stdout: &str) {
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
    assert_eq!(text(&output.stdout), stdout);
    assert_eq!(text(&output.stderr), "");
    assert_eq!(output.status.code(), Some(code));
}

#[test]
fn a_valid_webhook_answer_is_created() {
    assert_output(&validate("valid-menu.json", false), 0, "1 Created\n");
}

#[test]
fn a_valid_api_request_is_created_in_api_mode_only() {
    assert_output(&validate("valid-api.json", true), 0, "1 Created\n");
    // validUntil and clientRequestId belong to the Callflows API, not to a webhook answer.
    assert_output(
        &validate("valid-api.json", false),
        1,
        "-1009 $.clientRequestId: unknown field; expected one of clientActionId, callflow\n\
         -1009 $.validUntil: unknown field; expected one of clientActionId, callflow\n",
    );
}

#[test]
fn each_status_code() {
    let cases = [
        (
            "invalid-json-1001.json",
            "-1001 $: invalid JSON: trailing comma at line 4 column 3\n",
        ),
        (
            "voice-profile-1002.json",
            "-1002 $.callflow[0].params.voiceProfile: \"english\" is not a voice profile; expected language-REGION-Name, e.g. en-US-BenjaminRUS\n",
        ),
        (
            "min-without-max-1003.json",
            "-1003 $.callflow[0].params.maxDigits: is required when minDigits is given\n",
        ),
        (
            "digit-timeout-alone-1005.json",
            "-1005 $.callflow[0].params.overallTimeout: is required when digitTimeout is given\n",
        ),
        (
            "timeouts-greater-1006.json",
            "-1006 $.callflow[0].params.overallTimeout: must be greater than digitTimeout (10001), got 10000\n",
        ),
        (
            "unknown-action-1007.json",
            "-1007 $.callflow[0].action: unknown action \"transfer\"; expected one of say, sayAndCapture, makeCall, hangup, playFile\n",
        ),
        (
            "no-hash-no-max-1008.json",
            "-1008 $.callflow[0].params.maxDigits: is required when completeOnHash is false\n",
        ),
        (
            "repetition-1009.json",
            "-1009 $.callflow[0].params.repetition: must be 1..=3, got 4\n",
        ),
        (
            "eleven-actions-1010.json",
            "-1010 $.callflow: holds 11 actions; at most 10 are allowed\n",
        ),
        (
            "two-make-calls-1011.json",
            "-1011 $.callflow[1]: a webhook answer may hold one makeCall (the caller's leg is the other); the first is $.callflow[0]\n",
        ),
        (
            "after-hangup-1012.json",
            "-1012 $.callflow[1]: nothing may follow the hangup at $.callflow[0]\n",
        ),
        (
            "control-character-1016.json",
            "-1016 $.callflow[0].params.text: contains the invalid character U+0007 at position 4\n",
        ),
        (
            "destination-1017.json",
            "-1017 $.callflow[0].params.destination: \"+65 8765 4321\" is not an E.164 number (+ and 2 to 15 digits, no leading 0)\n",
        ),
    ];
    for (name, expected) in cases {
        let output = validate(name, false);
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            expected,
            "for {name}"
        );
        assert_output(&output, 1, expected);
    }
}

/// `switchboard callflow validate ARGS... <fixture>`.
fn validate_with(name: &str, args: &[&str]) -> Output {
    let path = fixture(name);
    let mut all = vec!["callflow", "validate"];
    all.extend_from_slice(args);
    all.push(path.to_str().unwrap());
    switchboard(&all).output().unwrap()
}

const EQUAL_TIMEOUTS: &str = "warning: -1006 $.callflow[0].params.overallTimeout: equals digitTimeout (10000); the platform's rule is that it must be greater, so make it larger\n";
const AFTER_CAPTURE: &str = "warning: -1010 $.callflow[1]: follows the sayAndCapture at $.callflow[0]: the platform may ignore the digits the caller enters; end the callflow with the sayAndCapture and send this in the answer to the next webhook\n";

#[test]
fn warnings_are_printed_on_their_own_lines_and_exit_0() {
    assert_output(
        &validate("timeouts-equal-warning.json", false),
        0,
        &format!("{EQUAL_TIMEOUTS}1 Created\n"),
    );
    assert_output(
        &validate("after-capture-warning.json", false),
        0,
        &format!("{AFTER_CAPTURE}1 Created\n"),
    );
}

#[test]
fn strict_makes_warnings_errors() {
    let strip = |line: &str| line.strip_prefix("warning: ").unwrap().to_owned();
    assert_output(
        &validate_with("timeouts-equal-warning.json", &["--strict"]),
        1,
        &strip(EQUAL_TIMEOUTS),
    );
    assert_output(
        &validate_with("after-capture-warning.json", &["--strict"]),
        1,
        &strip(AFTER_CAPTURE),
    );
    // Nothing to warn about: --strict changes nothing.
    assert_output(
        &validate_with("valid-menu.json", &["--strict"]),
        0,
        "1 Created\n",
    );
}

#[test]
fn an_api_request_may_bridge_two_calls_not_three() {
    assert_output(
        &validate("two-make-calls-1011.json", true),
        0,
        "1 Created\n",
    );
    assert_output(
        &validate("three-make-calls-1010.json", true),
        1,
        "-1010 $.callflow[2]: a Callflows API request may hold at most two makeCall actions; they are $.callflow[0] and $.callflow[1]\n",
    );
}

#[test]
fn a_past_valid_until_is_1015() {
    let output = validate("valid-until-past-1015.json", true);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with(
            "-1015 $.validUntil: \"2020-01-31T23:59:59.000Z\" is already past (now 20"
        ) && stdout.ends_with("); the platform would not place the call\n"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn caller_ids_are_checked_only_when_listed_1014() {
    // valid-api.json calls from +6568888888.
    assert_output(&validate("valid-api.json", true), 0, "1 Created\n");
    assert_output(
        &validate_with(
            "valid-api.json",
            &["--api", "--clid", "+6560000000,6568888888"],
        ),
        0,
        "1 Created\n",
    );
    assert_output(
        &validate_with(
            "valid-api.json",
            &["--api", "--clid", "+6560000000,+6560000001"],
        ),
        1,
        "-1014 $.callflow[0].params.source: \"+6568888888\" is not one of the sub-account's caller ids (+6560000000, +6560000001)\n",
    );
}

#[test]
fn the_sub_account_id_is_checked() {
    assert_output(
        &validate_with("valid-api.json", &["--api", "--sub-account", "acme_voice"]),
        0,
        "1 Created\n",
    );
    assert_output(
        &validate_with("valid-api.json", &["--api", "--sub-account", "acme/voice"]),
        1,
        "--sub-account: \"acme/voice\" contains '/'; a sub-account id is letters, digits and - . _ &\n",
    );
    assert_output(
        &validate_with("valid-api.json", &["--api", "--sub-account", "ab"]),
        1,
        "--sub-account: \"ab\" must be 3..=50 characters, got 2\n",
    );
    // It names the Callflows API URL, so it needs --api.
    let output = validate_with("valid-menu.json", &["--sub-account", "acme_voice"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn api_mode_requires_make_call_first_1013() {
    assert_output(&validate("say-first-1013.json", false), 0, "1 Created\n");
    assert_output(
        &validate("say-first-1013.json", true),
        1,
        "-1013 $.callflow[0].action: the first action of a Callflows API request must be makeCall\n",
    );
}

#[test]
fn every_violation_is_printed_sorted_by_path() {
    assert_output(
        &validate("many-violations.json", false),
        1,
        "-1009 $.callflow[0].params.speed: must be 0.5..=2.0, got 2.5\n\
         -1009 $.callflow[1].params: hangup takes no parameters\n\
         -1012 $.callflow[2]: nothing may follow the hangup at $.callflow[1]\n\
         -1007 $.callflow[2].action: unknown action \"dance\"; expected one of say, sayAndCapture, makeCall, hangup, playFile\n\
         -1009 $.clientActionId: must be printable ASCII without spaces\n",
    );
}

#[test]
fn reads_standard_input_for_a_dash() {
    let valid = std::fs::read(fixture("valid-menu.json")).unwrap();
    assert_output(&validate_stdin(&valid, false), 0, "1 Created\n");
    assert_output(
        &validate_stdin(&valid, true),
        1,
        "-1013 $.callflow[0].action: the first action of a Callflows API request must be makeCall\n",
    );
    let api = std::fs::read(fixture("valid-api.json")).unwrap();
    assert_output(&validate_stdin(&api, true), 0, "1 Created\n");
    assert_output(
        &validate_stdin(b"", false),
        1,
        "-1001 $: invalid JSON: EOF while parsing a value at line 1 column 0\n",
    );
}

#[test]
fn a_missing_file_is_exit_2_with_the_file_and_the_reason() {
    let missing = fixture("does-not-exist.json");
    let output = switchboard(&["callflow", "validate", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "switchboard: cannot read callflow file '{}': No such file or directory (os error 2)\n",
            missing.display()
        )
    );
}

#[test]
fn a_directory_is_exit_2_too() {
    let dir = fixture("");
    let output = switchboard(&["callflow", "validate", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("switchboard: cannot read callflow file '")
            && stderr.contains("(os error"),
        "{stderr}"
    );
}

#[test]
fn a_missing_argument_is_a_usage_error() {
    let output = switchboard(&["callflow", "validate"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("<FILE|->"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
