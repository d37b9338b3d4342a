//! `switchboard flow check` and `switchboard flow simulate` as an author runs them: the real
//! binary on the bundled flows and on the broken fixtures in `fixtures/flow`, asserting exactly
//! what it prints and its exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use switchboard_flow::FlowVersion;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flow")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `switchboard ARGS` in `dir`, so the file names it prints are the relative ones given.
fn switchboard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// The version `flow check` and `flow simulate` print for a file.
fn version(path: &Path) -> FlowVersion {
    FlowVersion::of(&std::fs::read_to_string(path).unwrap())
}

/// Asserts the exit code, the exact standard output and the exact standard error.
#[track_caller]
fn assert_output(output: &Output, code: i32, stdout: &str, stderr: &str) {
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
    assert_eq!(text(&output.stdout), stdout);
    assert_eq!(text(&output.stderr), stderr);
    assert_eq!(output.status.code(), Some(code));
}

/// `flow check` on one broken fixture: its error lines, the count, exit 1.
#[track_caller]
fn assert_rejected(fixture: &str, lines: &[&str]) {
    let output = switchboard(&fixtures(), &["flow", "check", fixture]);
    let errors = lines.iter().filter(|l| !l.contains(": warning: ")).count();
    let count = if errors == 1 {
        "1 error".to_owned()
    } else {
        format!("{errors} errors")
    };
    let expected = format!("{}\n{count}: no flow was loaded\n", lines.join("\n"));
    assert_output(&output, 1, &expected, "");
}

#[test]
fn the_bundled_flows_check_clean() {
    let output = switchboard(&repo(), &["flow", "check", "flows"]);
    let expected = format!(
        "flows/bank.yaml: ok: flow 'bank', 8 nodes, answers +6568889999 (version {})\n\
         flows/clinic.yaml: ok: flow 'clinic', 13 nodes, answers +6568880003 (version {})\n\
         flows/restaurant.yaml: ok: flow 'restaurant', 11 nodes, answers +6568888888 (version {})\n\
         flows/support.yaml: ok: flow 'support', 14 nodes, answers +6568880001, +6568880002 (version {})\n\
         flows/verify.yaml: ok: flow 'verify', 5 nodes, answers no number (version {})\n",
        version(&repo().join("flows/bank.yaml")),
        version(&repo().join("flows/clinic.yaml")),
        version(&repo().join("flows/restaurant.yaml")),
        version(&repo().join("flows/support.yaml")),
        version(&repo().join("flows/verify.yaml")),
    );
    assert_output(&output, 0, &expected, "");
    // The same file named twice (directly and through its directory) is checked once.
    let output = switchboard(
        &repo(),
        &[
            "flow",
            "check",
            "flows/bank.yaml",
            "flows",
            "flows/bank.yaml",
        ],
    );
    assert_output(&output, 0, &expected, "");
}

#[test]
fn an_unknown_key_is_named_with_a_suggestion() {
    assert_rejected(
        "check/unknown-key.yaml",
        &[
            "check/unknown-key.yaml:8:7: node 'main': menu needs 'options', e.g. `options: { \"1\": bookings }`",
            "check/unknown-key.yaml:9:7: node 'main': unknown key 'optons' in menu; did you mean 'options'? allowed keys: prompt, reprompt, invalid, no_input, timeout_ms, digit_timeout_ms, max_invalid, max_no_input, on_fail, options, voice, speed",
        ],
    );
}

#[test]
fn a_dangling_target_is_named_with_a_suggestion() {
    assert_rejected(
        "check/dangling-target.yaml",
        &[
            "check/dangling-target.yaml:9:35: node 'main': option \"2\" goes to 'suport', which is not a node of this flow; did you mean 'support'?",
        ],
    );
}

#[test]
fn a_missing_start_is_an_error() {
    assert_rejected(
        "check/missing-start.yaml",
        &[
            "check/missing-start.yaml:2:1: the flow has no 'start'; name the node a call begins at, e.g. `start: main`",
        ],
    );
}

#[test]
fn an_unreachable_node_is_a_warning_only() {
    let output = switchboard(&fixtures(), &["flow", "check", "check/unreachable.yaml"]);
    let expected = format!(
        "check/unreachable.yaml: ok: flow 'unreachable', 2 nodes, answers +6560000004 (version {})\n\
         check/unreachable.yaml:9:3: warning: node 'old_promo': unreachable from start node 'main'\n",
        version(&fixtures().join("check/unreachable.yaml"))
    );
    assert_output(&output, 0, &expected, "");
}

#[test]
fn an_option_key_must_be_dtmf() {
    assert_rejected(
        "check/bad-option-key.yaml",
        &[
            "check/bad-option-key.yaml:9:29: node 'main': option key \"A\" is not DTMF; use the keys 0-9, * and #",
        ],
    );
}

#[test]
fn text_over_3000_characters_is_refused() {
    assert_rejected(
        "check/long-text.yaml",
        &["check/long-text.yaml:7:10: node 'main': say must be at most 3000 characters, got 3001"],
    );
}

#[test]
fn speed_out_of_range_in_defaults_and_on_a_node() {
    assert_rejected(
        "check/speed.yaml",
        &[
            "check/speed.yaml:4:46: speed must be 0.5..=2.0, got 2.5",
            "check/speed.yaml:9:12: node 'main': speed must be 0.5..=2.0, got 0.25",
        ],
    );
}

#[test]
fn digit_timeout_must_be_below_timeout() {
    assert_rejected(
        "check/digit-timeout.yaml",
        &[
            "check/digit-timeout.yaml:10:25: node 'main': digit_timeout_ms (5000) must be less than timeout_ms (5000)",
        ],
    );
}

#[test]
fn max_digits_over_25_is_refused() {
    assert_rejected(
        "check/max-digits.yaml",
        &["check/max-digits.yaml:10:19: node 'card': max_digits must be 1..=25, got 30"],
    );
}

#[test]
fn numbers_must_be_e164() {
    assert_rejected(
        "check/bad-number.yaml",
        &[
            "check/bad-number.yaml:3:26: numbers: \"065-1234\" is not an E.164 number (+ and 2 to 15 digits, no leading 0)",
            "check/bad-number.yaml:7:21: node 'agent': transfer.to: \"+0123456\" is not an E.164 number (+ and 2 to 15 digits, no leading 0)",
        ],
    );
}

#[test]
fn a_play_url_must_be_http() {
    assert_rejected(
        "check/bad-play-url.yaml",
        &[
            "check/bad-play-url.yaml:7:11: node 'promo': play: \"ftp://example.com/promo.ogg\" must be an http:// or https:// URL",
        ],
    );
}

#[test]
fn a_number_claimed_by_two_flows_is_an_error() {
    assert_rejected(
        "clash",
        &[
            "clash/b.yaml:4:5: number +6560000100 is already claimed by flow 'sales' (clash/a.yaml); a number routes to one flow",
        ],
    );
}

#[test]
fn a_directory_reports_every_error_of_every_file_at_once() {
    let output = switchboard(&fixtures(), &["flow", "check", "check"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout.ends_with("\n13 errors and 1 warning: no flow was loaded\n"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(": ok: "),
        "no summaries when the set fails"
    );
    // Every line but the count is a diagnostic naming its file, line and column.
    for line in stdout
        .lines()
        .filter(|l| !l.ends_with("no flow was loaded"))
    {
        let mut parts = line.splitn(4, ':');
        let (file, line_no, col) = (parts.next(), parts.next(), parts.next());
        assert!(file.unwrap().starts_with("check/"), "{line}");
        assert!(line_no.unwrap().parse::<u32>().unwrap() > 0, "{line}");
        assert!(col.unwrap().parse::<u32>().unwrap() > 0, "{line}");
    }
}

#[test]
fn an_unreadable_path_is_named_and_exits_2() {
    let output = switchboard(&fixtures(), &["flow", "check", "no/such/dir"]);
    assert_output(
        &output,
        2,
        "",
        "switchboard: cannot read 'no/such/dir': No such file or directory (os error 2)\n",
    );
    // Paths that can be read are still checked.
    let output = switchboard(
        &fixtures(),
        &["flow", "check", "no/such/file.yaml", "check/speed.yaml"],
    );
    assert_output(
        &output,
        2,
        "check/speed.yaml:4:46: speed must be 0.5..=2.0, got 2.5\n\
         check/speed.yaml:9:12: node 'main': speed must be 0.5..=2.0, got 0.25\n\
         2 errors: no flow was loaded\n",
        "switchboard: cannot read 'no/such/file.yaml': No such file or directory (os error 2)\n",
    );
}

/// `switchboard flow simulate FILE --at <Monday 10:00 in Singapore> ARGS...` in the repository.
fn simulate(file: &str, args: &[&str]) -> Output {
    let mut all = vec![
        "flow",
        "simulate",
        file,
        "--at",
        "2026-11-23T10:00:00+08:00",
    ];
    all.extend_from_slice(args);
    switchboard(&repo(), &all)
}

const RESTAURANT_MAIN: &str = "   asks: \"Welcome to ABC Restaurant. To book a table press 1, for a representative press 2, for our opening hours press 3, to hear this month's offer press 4.\"\n   keys: 1 → reservations, 2 → connect, 3 → hours, 4 → promo (10 s to answer, 5 s between keys)\n";

#[test]
fn simulate_restaurant_reservations_back_and_hours() {
    let output = simulate("flows/restaurant.yaml", &["--digits", "1,9,3"]);
    let expected = format!(
        "Flow 'restaurant' (flows/restaurant.yaml, version {version})\n\
         Call from +6591234567 to +6568888888 at 2026-11-23T02:00:00Z (Asia/Singapore time: Mon 2026-11-23 10:00)\n\
         \n\
         ── the call arrives (CALL_RECEIVED)\n   → main\n{RESTAURANT_MAIN}\
         caller presses 1\n   → reservations\n\
         \x20  asks: \"Reservations. For a new booking press 1. To change or cancel a booking press 2. For the previous menu press 9.\"\n\
         \x20  keys: 1 → booking_size, 2 → manage, 9 → back (10 s to answer)\n\
         caller presses 9\n   → main\n{RESTAURANT_MAIN}\
         caller presses 3\n\
         \x20  → hours → goodbye\n\
         \x20  says: \"We are open 9AM to 9PM every day.\"\n\
         \x20  says: \"Thank you for calling. Goodbye.\"\n\
         \x20  hangs up\n\
         ── the call ends\n",
        version = version(&repo().join("flows/restaurant.yaml")),
    );
    assert_output(&output, 0, &expected, "");
}

#[test]
fn simulate_bank_account_capture_with_retries() {
    let output = simulate(
        "flows/bank.yaml",
        &["--digits", "123#,-,12345678#,1,2", "--transfer", "busy"],
    );
    let expected = format!(
        "Flow 'bank' (flows/bank.yaml, version {version})\n\
         Call from +6591234567 to +6568889999 at 2026-11-23T02:00:00Z (Europe/London time: Mon 2026-11-23 02:00)\n\
         \n\
         ── the call arrives (CALL_RECEIVED)\n\
         \x20  → welcome → account\n\
         \x20  says: \"Welcome to Example Bank.\"\n\
         \x20  asks: \"Please enter your 8 digit account number, followed by the hash key.\"\n\
         \x20  enters: 8 digits then #, into vars.account, matching [0-9]{{8}} (20 s to answer, 5 s between keys)\n\
         caller enters 123#\n\
         \x20  · 'account' refuses the entry (failed attempt 1 of 3)\n\
         \x20  says: \"Sorry, an account number has exactly 8 digits.\"\n\
         \x20  asks: \"Enter the 8 digits of your account number, then hash.\"\n\
         \x20  enters: 8 digits then #, into vars.account, matching [0-9]{{8}} (20 s to answer, 5 s between keys)\n\
         caller stays silent\n\
         \x20  · no entry at 'account' (failed attempt 2 of 3)\n\
         \x20  asks: \"Enter the 8 digits of your account number, then hash.\"\n\
         \x20  enters: 8 digits then #, into vars.account, matching [0-9]{{8}} (20 s to answer, 5 s between keys)\n\
         caller enters 12345678#\n\
         \x20  · 'account' stores vars.account = 12345678\n\
         \x20  → confirm\n\
         \x20  asks: \"You entered 1 2 3 4 5 6 7 8. If this is correct press 1. To enter it again press 2.\"\n\
         \x20  keys: 1 → lookup, 2 → account (10 s to answer)\n\
         caller presses 1\n\
         \x20  → lookup → services\n\
         \x20  asks: \"For your balance press 1. To report a lost card press 2. To speak to an agent press 0. For the previous menu press 9.\"\n\
         \x20  keys: 1 → agent, 2 → lost_card, 0 → agent, 9 → back (10 s to answer)\n\
         caller presses 2\n\
         \x20  → lost_card → agent\n\
         \x20  says: \"Your card ending in the account 1 2 3 4 5 6 7 8 will be blocked. An agent will confirm.\"\n\
         \x20  transfers the caller to +442079460000 (calling from +6568889999, recorded)\n\
         ── the transfer ends: busy (SIP 486)\n\
         \x20  · transfer 'agent' was busy: on_busy\n\
         \x20  → busy\n\
         \x20  says: \"Our agents are busy. Please call again later. Goodbye.\"\n\
         \x20  hangs up\n\
         ── the call ends\n",
        version = version(&repo().join("flows/bank.yaml")),
    );
    assert_output(&output, 0, &expected, "");
}

#[test]
fn simulate_bank_capture_running_out_goes_to_an_agent() {
    let output = simulate("flows/bank.yaml", &["--digits", "1#,-,99#,!no-answer"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(
            "caller enters 99#\n\
             \x20  · 'account' refuses the entry (failed attempt 3 of 3)\n\
             \x20  · 'account' ran out of tries: on_fail goes to agent\n\
             \x20  → agent\n\
             \x20  transfers the caller to +442079460000 (calling from +6568889999, recorded)\n\
             ── the transfer ends: no answer (SIP 480)\n\
             \x20  · transfer 'agent' was not answered: on_no_answer\n\
             \x20  → busy\n"
        ),
        "{stdout}"
    );
}

#[test]
fn simulate_support_partner_in_hours_with_json() {
    let output = simulate(
        "flows/support.yaml",
        &[
            "--caller",
            "+6590001111",
            "--called",
            "+6568880002",
            "--digits",
            "7,-,1,!busy",
            "--json",
        ],
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let expected_parts = [
        "Call from +6590001111 to +6568880002 at 2026-11-23T02:00:00Z (Asia/Singapore time: Mon 2026-11-23 10:00)\n",
        "   → hours_check → greet → partner_check → partner → main\n   asks: \"Welcome to Acme support. For technical support press 1.",
        "   keys: 1 → tech_route, 2 → billing, 3 → hours, * → main (10 s to answer)\n",
        "       \"clientActionId\": \"support:",
        "             \"maxDigits\": 1,\n",
        "caller presses 7\n   · not an option at 'main' (wrong key 1 of 3)\n   says: \"Sorry, I did not understand.\"\n   asks: \"Technical support 1, billing 2, hours 3.\"\n",
        "caller stays silent\n   · no key at 'main' (silence 1 of 2)\n   says: \"Are you still there?\"\n",
        "caller presses 1\n   → tech_route → tech_priority → tech\n   says: \"As a partner you are first in line.\"\n   transfers the caller to +6531580001 (calling from +6568880002)\n",
        "── the transfer ends: busy (SIP 486)\n   · transfer 'tech' was busy: on_busy\n   → busy → goodbye\n",
        "   hangs up\n",
    ];
    let mut rest = stdout.as_str();
    for part in expected_parts {
        let at = rest
            .find(part)
            .unwrap_or_else(|| panic!("missing, or out of order: {part:?}\n{stdout}"));
        rest = &rest[at + part.len()..];
    }
    assert!(rest.ends_with("── the call ends\n"), "{stdout}");
    assert!(!stdout.contains("PROTOCOL VIOLATION"), "{stdout}");
}

#[test]
fn simulate_support_after_hours() {
    let output = switchboard(
        &repo(),
        &[
            "flow",
            "simulate",
            "flows/support.yaml",
            "--at",
            "2026-11-29T11:00:00+08:00",
            "--digits",
            "",
        ],
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(
            "(Asia/Singapore time: Sun 2026-11-29 11:00)\n\n── the call arrives (CALL_RECEIVED)\n   → hours_check → after_hours → goodbye\n"
        ),
        "{stdout}"
    );
    assert!(stdout.ends_with("   says: \"Goodbye.\"\n   hangs up\n── the call ends\n"));
}

#[test]
fn simulate_a_directory_picks_the_flow_by_called_number() {
    let output = simulate("flows", &["--called", "+6568888888", "--digits", "3"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("Flow 'restaurant' (flows/restaurant.yaml,"));
    assert_eq!(output.status.code(), Some(0));
    let output = simulate("flows", &["--digits", "3"]);
    assert_output(
        &output,
        2,
        "",
        "switchboard: 'flows' holds 5 flows (bank, clinic, restaurant, support, verify); pass --called NUMBER to choose the one that answers it, or give one file\n",
    );
}

#[test]
fn simulate_follows_a_sub_flow_and_back() {
    // The clinic runs the shared `verify` flow as a sub-flow: a wrong patient number inside
    // it, then the date of birth, and back in the clinic for the transfer. The same from the
    // file (the sub-flow comes from its directory) and from the directory.
    let expected = format!(
        "Flow 'clinic' (flows/clinic.yaml, version {clinic})\n\
         Sub-flows it may run: 'verify' (flows/verify.yaml, version {verify})\n\
         Call from +6591234567 to +6568880003 at 2026-11-23T02:00:00Z (Asia/Singapore time: Mon 2026-11-23 10:00)\n\
         \n\
         ── the call arrives (CALL_RECEIVED)\n\
         \x20  → choose_language\n\
         \x20  asks: \"Welcome to Harbour Clinic. For English press 1. Para español, oprima 2.\"\n\
         \x20  keys: 1 → english, 2 → spanish (10 s to answer)\n\
         caller presses 1\n\
         \x20  → english → greeting_test → greeting_long → main\n\
         \x20  says: \"Thank you for calling Harbour Clinic, caring for the harbour community since 1987.\"\n\
         \x20  asks: \"To change an appointment press 1. For our opening hours press 2.\"\n\
         \x20  keys: 1 → verify_patient, 2 → hours (10 s to answer)\n\
         caller presses 1\n\
         \x20  → verify_patient → verify:patient_id\n\
         \x20  asks: \"Please enter your six digit patient number.\"\n\
         \x20  enters: 6 digits then #, into vars.patient (20 s to answer)\n\
         caller enters 12345\n\
         \x20  · 'verify:patient_id' refuses the entry (failed attempt 1 of 3)\n\
         \x20  says: \"That is not a patient number.\"\n\
         \x20  asks: \"Please enter your six digit patient number.\"\n\
         \x20  enters: 6 digits then #, into vars.patient (20 s to answer)\n\
         caller enters 123456\n\
         \x20  · 'verify:patient_id' stores vars.patient = 123456\n\
         \x20  → verify:birth_date\n\
         \x20  asks: \"Now enter your date of birth as eight digits: day, month and year.\"\n\
         \x20  enters: 8 digits then #, into vars.birth_date, matching (0[1-9]|[12][0-9]|3[01])(0[1-9]|1[0-2])(19|20)[0-9]{{2}} (20 s to answer)\n\
         caller enters 01021990\n\
         \x20  · 'verify:birth_date' stores vars.birth_date = 01021990\n\
         \x20  → verify:verified → verified_check → appointments → desk\n\
         \x20  says: \"Thank you. Connecting you to our appointments desk.\"\n\
         \x20  transfers the caller to +6531589338 (calling from +6568880003)\n\
         ── the transfer ends: busy (SIP 486)\n\
         \x20  · transfer 'desk' was busy: on_busy\n\
         \x20  → goodbye\n\
         \x20  says: \"Goodbye.\"\n\
         \x20  hangs up\n\
         ── the call ends\n",
        clinic = version(&repo().join("flows/clinic.yaml")),
        verify = version(&repo().join("flows/verify.yaml")),
    );
    let digits = ["--digits", "1,1,12345,123456,01021990,!busy"];
    assert_output(&simulate("flows/clinic.yaml", &digits), 0, &expected, "");
    let mut by_number = vec!["--called", "+6568880003"];
    by_number.extend_from_slice(&digits);
    assert_output(&simulate("flows", &by_number), 0, &expected, "");

    // A sub-flow its directory does not hold: the set's error, and nothing is played.
    let output = switchboard(
        &fixtures(),
        &["flow", "simulate", "subflow/caller.yaml", "--digits", "1"],
    );
    assert_output(
        &output,
        1,
        "subflow/caller.yaml:7:22: node 'check': subflow runs flow 'nowhere', which is not loaded (loaded: caller); check its id or add its file\n\
         flow 'caller' runs sub-flows, and it and the flows of its directory do not load together: fix them before simulating it\n",
        "",
    );
}

#[test]
fn simulate_refuses_a_broken_flow_and_bad_entries() {
    let output = switchboard(
        &fixtures(),
        &["flow", "simulate", "check/max-digits.yaml", "--digits", "1"],
    );
    assert_output(
        &output,
        1,
        "check/max-digits.yaml:10:19: node 'card': max_digits must be 1..=25, got 30\n\
         1 error: fix the flow before simulating it\n",
        "",
    );
    let output = simulate("flows/restaurant.yaml", &["--digits", "1,x"]);
    assert_output(
        &output,
        2,
        "",
        "switchboard: --digits: 'x' is not a key entry; use keys 0-9, * and # (e.g. 1 or 12345678#), - for silence, or !busy for a transfer result\n",
    );
    let output = simulate("flows/nope.yaml", &[]);
    assert_output(
        &output,
        2,
        "",
        "switchboard: cannot read 'flows/nope.yaml': No such file or directory (os error 2)\n",
    );
}

#[test]
fn simulate_reports_when_the_entries_run_out() {
    let output = simulate("flows/restaurant.yaml", &["--digits", "1"]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stdout.ends_with(
            "── no more entries while the call waits at 'reservations': the caller hangs up\n"
        ),
        "{stdout}"
    );
}

#[test]
fn simulate_stops_a_flow_that_loops_without_the_caller() {
    let output = switchboard(
        &fixtures(),
        &[
            "flow",
            "simulate",
            "simulate/transfer-loop.yaml",
            "--digits",
            "",
            "--transfer",
            "busy",
        ],
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.ends_with(
            "!! stopped after 100 answers in a row without a key: the flow keeps going on its own\n"
        ),
        "{stdout}"
    );
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "switchboard: flow 'transfer_loop' answered 100 times in a row without a key from the caller; look for a loop through transfer results\n"
    );
    assert_eq!(output.status.code(), Some(1));
    // The same flow with an answered transfer simply ends.
    let output = switchboard(
        &fixtures(),
        &[
            "flow",
            "simulate",
            "simulate/transfer-loop.yaml",
            "--digits",
            "!busy,!busy,!answered",
        ],
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout
            .matches("── the transfer ends: busy (SIP 486)\n")
            .count(),
        2,
        "{stdout}"
    );
    assert!(stdout.ends_with("── the transfer ends: answered (SIP 200)\n   · transfer 'agent' was answered: next\n   hangs up\n── the call ends\n"), "{stdout}");
    assert_eq!(output.status.code(), Some(0));
}

/// Appends the child's output to `seen` until `marker` appears in what is newly read; `false`
/// if the output ends first.
fn read_until(from: &std::sync::mpsc::Receiver<u8>, seen: &mut String, marker: &str) -> bool {
    let mut bytes = Vec::new();
    let start = seen.len();
    while !seen[start..].ends_with(marker) {
        match from.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(byte) => {
                bytes.push(byte);
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    seen.push_str(text);
                    bytes.clear();
                }
            }
            Err(_) => return false,
        }
    }
    true
}

#[test]
fn simulate_interactive_reads_each_key_as_the_call_reaches_it() {
    use std::io::{Read, Write};
    use std::process::Stdio;

    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .current_dir(repo())
        .args([
            "flow",
            "simulate",
            "flows/restaurant.yaml",
            "--interactive",
            "--at",
            "2026-11-23T10:00:00+08:00",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).is_ok_and(|n| n == 1) {
            if tx.send(byte[0]).is_err() {
                break;
            }
        }
    });
    let prompt = "keys (digits, - for silence, empty to hang up)> ";
    let mut seen = String::new();
    // The welcome menu is printed before the caller has typed anything.
    assert!(read_until(&rx, &mut seen, prompt), "{seen}");
    assert!(
        seen.starts_with("Interactive call: type the caller's keys"),
        "{seen}"
    );
    assert!(
        seen.contains("asks: \"Welcome to ABC Restaurant."),
        "{seen}"
    );
    assert!(!seen.contains("Reservations."), "{seen}");
    // One line at a time: the reservations menu only after key 1.
    stdin.write_all(b"1\n").unwrap();
    stdin.flush().unwrap();
    assert!(read_until(&rx, &mut seen, prompt), "{seen}");
    assert!(
        seen.contains("caller presses 1\n   → reservations\n   asks: \"Reservations."),
        "{seen}"
    );
    // A wrong entry is explained and asked again; then 9 goes back and 3 hears the hours.
    stdin.write_all(b"x\n9\n3\n").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let rest: Vec<u8> = rx.try_iter().collect();
    seen.push_str(std::str::from_utf8(&rest).unwrap());
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(seen.contains("'x' is not a key entry"), "{seen}");
    assert!(seen.contains("caller presses 9\n   → main\n"), "{seen}");
    assert!(
        seen.contains("caller presses 3\n   → hours → goodbye\n"),
        "{seen}"
    );
    assert!(seen.ends_with("   hangs up\n── the call ends\n"), "{seen}");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(err, "");
}

#[test]
fn simulate_interactive_and_digits_exclude_each_other() {
    let output = switchboard(
        &repo(),
        &[
            "flow",
            "simulate",
            "flows/restaurant.yaml",
            "-i",
            "--digits",
            "1",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("cannot be used with"), "{err}");
}
