//! `switchboard flow test` as CI runs it: the real binary on the bundled flows and their
//! `*.test.yaml` files (so `.ci/run` runs every bundled flow's cases), on a deliberately broken
//! copy of a flow (its cases must fail, with a diff, exit 1), and on broken test files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `switchboard ARGS` in `dir`.
fn switchboard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn the_bundled_flows_pass_their_tests_with_full_coverage() {
    let output = switchboard(&repo(), &["flow", "test", "flows"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.ends_with("\n27 passed, 0 failed\n"), "{out}");
    for line in [
        "flows/bank.test.yaml\n",
        "flows/clinic.test.yaml\n",
        "flows/restaurant.test.yaml\n",
        "flows/support.test.yaml\n",
        "  ok   opening hours, then goodbye\n",
        "  coverage bank: 8/8 nodes, 6/6 menu keys\n",
        "  coverage clinic: 13/13 nodes, 4/4 menu keys\n",
        "  coverage restaurant: 11/11 nodes, 10/10 menu keys\n",
        "  coverage support: 14/14 nodes, 4/4 menu keys\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

#[test]
fn the_look_up_flow_passes_its_cases_with_the_backend_mocked() {
    let output = switchboard(&repo(), &["flow", "test", "flows/lookup"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.ends_with("\n8 passed, 0 failed\n"), "{out}");
    assert!(
        out.contains("  ok   the balance is spoken with the owner's name\n"),
        "{out}"
    );
    assert!(
        out.contains("  coverage balance: 7/7 nodes, 0/0 menu keys\n"),
        "{out}"
    );
}

#[test]
fn a_case_hears_what_its_mocked_backend_answers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("flows/lookup/balance.yaml"),
        dir.path().join("balance.yaml"),
    )
    .unwrap();
    let case = |fetch: &str, expect: &str| {
        format!(
            "cases:\n  - name: one\n    script: [\"12345678#\"]\n    fetch: {{ lookup: {fetch} }}\n    expect: {expect}\n"
        )
    };
    let run = |source: String| {
        std::fs::write(dir.path().join("balance.test.yaml"), source).unwrap();
        let output = switchboard(dir.path(), &["flow", "test", "balance.test.yaml"]);
        (output.status.code(), stdout(&output))
    };
    let answer = "{ body: { balance: 7, overdrawn: false, owner: { first_name: Ada } } }";
    let (code, out) = run(case(
        answer,
        "{ mentions: [\"Hello Ada. Your balance is 7 pounds.\"], fetched: [lookup] }",
    ));
    assert_eq!(code, Some(0), "{out}");
    // The same answer, expected to say something else: the case fails with the call's words.
    let (code, out) = run(case(
        answer,
        "{ mentions: [\"Your balance is 8 pounds\"], fetched: [] }",
    ));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("       -mentions: \"Your balance is 8 pounds\"\n"),
        "{out}"
    );
    assert!(
        out.contains("Hello Ada. Your balance is 7 pounds."),
        "{out}"
    );
    assert!(
        out.contains("       -fetched: []\n       +fetched: [lookup]\n"),
        "{out}"
    );
    // A 404 goes to the `cases:` target, a malformed body and a timeout to the apology.
    let (code, out) = run(case(
        "{ status: 404 }",
        "{ reaches: [unknown], avoids: [balance] }",
    ));
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(case(
        "{ body: \"{not json\" }",
        "{ reaches: [unavailable], avoids: [balance] }",
    ));
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(case(
        "timeout",
        "{ reaches: [unavailable], avoids: [balance] }",
    ));
    assert_eq!(code, Some(0), "{out}");
}

/// A copy of the restaurant flow and its tests in a fresh directory, with `edit` applied to
/// the flow.
fn restaurant_copy(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let flow = std::fs::read_to_string(repo().join("flows/restaurant.yaml")).unwrap();
    let edited = edit(flow.clone());
    assert_ne!(edited, flow, "the edit must change the flow");
    std::fs::write(dir.path().join("restaurant.yaml"), edited).unwrap();
    std::fs::copy(
        repo().join("flows/restaurant.test.yaml"),
        dir.path().join("restaurant.test.yaml"),
    )
    .unwrap();
    dir
}

#[test]
fn a_broken_flow_fails_its_tests_with_a_diff_and_exit_1() {
    // The mistake: key 3 plays the offer instead of reading the opening hours.
    let dir = restaurant_copy(|flow| {
        flow.replace(r#""3": hours, "4": promo"#, r#""3": promo, "4": promo"#)
    });
    let output = switchboard(dir.path(), &["flow", "test", "."]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    let expected_case = "  FAIL opening hours, then goodbye\n\
        \x20      -heard (in order):\n\
        \x20      -  \"Welcome to ABC Restaurant\"\n\
        \x20      -  \"We are open 9AM to 9PM\"\n\
        \x20      -  \"Goodbye.\"\n\
        \x20      +heard:\n\
        \x20      +  \"Welcome to ABC Restaurant. To book a table press 1, for a representative press 2, for our opening hours press 3, to hear this month's offer press 4.\"\n\
        \x20      +  \"play https://example.com/promo.mp3\"\n\
        \x20      +  \"Welcome to ABC Restaurant. To book a table press 1, for a representative press 2, for our opening hours press 3, to hear this month's offer press 4.\"\n\
        \x20      -ends_at: goodbye\n\
        \x20      +ends_at: main\n\
        \x20      -hangup: true (the flow hangs up)\n\
        \x20      +hangup: false (the caller hangs up)\n";
    assert!(out.contains(expected_case), "{out}");
    assert!(
        out.contains("  coverage restaurant: 10/11 nodes, 10/10 menu keys; never reached: hours\n"),
        "{out}"
    );
    assert!(out.ends_with("\n9 passed, 1 failed\n"), "{out}");
}

#[test]
fn junit_lists_every_case_and_its_failure() {
    let dir = restaurant_copy(|flow| flow.replace(r#""+6531589338""#, r#""+6531580000""#));
    let junit = dir.path().join("junit.xml");
    let output = switchboard(
        dir.path(),
        &[
            "flow",
            "test",
            "restaurant.test.yaml",
            "--junit",
            "junit.xml",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let xml = std::fs::read_to_string(junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 10);
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|f| f.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    // Every case that checks the host's number.
    assert_eq!(
        failed,
        [
            "a booking for four is captured and handed to the host",
            "twenty-one guests are refused, then the host is busy",
            "changing a booking goes to the host"
        ]
    );
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("failures"), Some("3"));
    assert!(
        xml.contains("-transfer: +6531589338\n+transfer: +6531580000"),
        "{xml}"
    );
}

/// Runs `flow test` on a test file with `source` next to a copy of the restaurant flow.
fn run_test_file(source: &str) -> (Option<i32>, String) {
    let dir = restaurant_copy(|flow| flow.replace("ABC Restaurant's", "The ABC Restaurant's"));
    std::fs::write(dir.path().join("restaurant.test.yaml"), source).unwrap();
    let output = switchboard(dir.path(), &["flow", "test", "restaurant.test.yaml"]);
    (output.status.code(), stdout(&output))
}

#[test]
fn a_broken_test_file_is_an_error_naming_the_line_and_the_key() {
    let (code, out) = run_test_file(
        "cases:\n  - name: one\n    script: [\"3\"]\n    expect:\n      heared: [\"Goodbye.\"]\n",
    );
    assert_eq!(code, Some(1));
    assert_eq!(
        out,
        "restaurant.test.yaml\n  ERROR restaurant.test.yaml:5:7: case 'one': expect: unknown key 'heared'; the keys are heard, mentions, reaches, avoids, ends_at, vars, transfer, hangup, fetched\n0 passed, 1 failed\n"
    );
    let (code, out) = run_test_file(
        "cases:\n  - name: one\n    fetch: { lookup: down }\n    expect: { hangup: true }\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("restaurant.test.yaml:3:14: case 'one': fetch: 'lookup' is not a fetch node; flow 'restaurant' has no fetch node"),
        "{out}"
    );
    let (code, out) = run_test_file(
        "cases:\n  - name: one\n    fetch: { lookup: { status: 99 } }\n    expect: { hangup: true }\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("restaurant.test.yaml:3:32: case 'one': fetch.lookup.status must be an HTTP status, 100 to 599"),
        "{out}"
    );
    let (code, out) = run_test_file(
        "cases:\n  - name: one\n    fetch: { lookup: slow }\n    expect: { hangup: true }\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("restaurant.test.yaml:3:22: case 'one': fetch.lookup must be `{ status: 200, body: ... }`, `timeout` or `down`, not a string"),
        "{out}"
    );
    let (code, out) = run_test_file(
        "cases:\n  - name: one\n    script: [\"3x\"]\n    expect: { hangup: true }\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        out.contains("restaurant.test.yaml:3:14: case 'one': script[0]: '3x' is not a key entry"),
        "{out}"
    );
    let (code, out) =
        run_test_file("cases:\n  - name: one\n    at: tomorrow\n    expect: { hangup: true }\n");
    assert_eq!(code, Some(1));
    assert!(
        out.contains("restaurant.test.yaml:3:9: case 'one': at: 'tomorrow' is not a time"),
        "{out}"
    );
}

#[test]
fn a_path_without_test_files_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = switchboard(dir.path(), &["flow", "test", "."]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "switchboard: '.' holds no flow test files (*.test.yaml): write one next to the flow\n"
    );
}
