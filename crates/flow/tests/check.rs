//! `compile` rejects broken flows with every error at once, at the right line and column.

use switchboard_flow::{FlowSet, Severity, compile};

fn errors(source: &str) -> Vec<String> {
    match compile(source, "broken.yaml") {
        Ok(_) => panic!("flow compiled but should not have"),
        Err(diags) => diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(ToString::to_string)
            .collect(),
    }
}

#[test]
fn bundled_examples_compile_without_warnings() {
    for file in ["restaurant", "support", "bank"] {
        let path = format!("{}/../../flows/{file}.yaml", env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(&path).unwrap();
        let compiled = compile(&source, &path).unwrap_or_else(|d| {
            panic!(
                "{file}: {}",
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        assert!(
            compiled.warnings.is_empty(),
            "{file}: {:?}",
            compiled.warnings
        );
        assert_eq!(compiled.flow.id, file);
    }
}

#[test]
fn reports_all_errors_with_positions() {
    let source = r#"id: broken
numbers: ["+6568888888", "12ab"]
defaults: { voice: en-US-BenjaminRUS, speed: 2.5 }
start: main
nodes:
  main:
    menu:
      prompt: "Press 1"
      timeout_ms: 5000
      digit_timeout_ms: 5000
      options: { "1": hours, "A": nowhere }
      colour: blue
  hours:
    say: "open"
    next: goodbye
  promo:
    play: "ftp://example.com/promo.ogg"
  account:
    capture: { prompt: "Enter", var: acct, max_digits: 26 }
  connect:
    transfer: { to: "12345678901234567" }
"#;
    let got = errors(source);
    let expected = [
        "broken.yaml:2:26: numbers: \"12ab\" is not an E.164 number (+ and 2 to 15 digits, no leading 0)",
        "broken.yaml:3:46: speed must be 0.5..=2.0, got 2.5",
        "broken.yaml:10:25: node 'main': digit_timeout_ms (5000) must be less than timeout_ms (5000)",
        "broken.yaml:11:30: node 'main': option key \"A\" is not DTMF; use the keys 0-9, * and #",
        "broken.yaml:12:7: node 'main': unknown key 'colour' in menu; allowed keys: prompt, reprompt, invalid, no_input, timeout_ms, digit_timeout_ms, max_invalid, max_no_input, on_fail, options, voice, speed",
        "broken.yaml:15:11: node 'hours': next goes to 'goodbye', which is not a node of this flow",
        "broken.yaml:17:11: node 'promo': play: \"ftp://example.com/promo.ogg\" must be an http:// or https:// URL",
        "broken.yaml:19:56: node 'account': max_digits must be 1..=25, got 26",
        "broken.yaml:21:21: node 'connect': transfer.to: \"12345678901234567\" is not an E.164 number (+ and 2 to 15 digits, no leading 0)",
    ];
    assert_eq!(got, expected, "\n{}", got.join("\n"));
}

#[test]
fn missing_start_and_suggestions() {
    let got = errors("id: x\nnodes:\n  main: { say: hi }\n");
    assert_eq!(
        got,
        [
            "broken.yaml:1:1: the flow has no 'start'; name the node a call begins at, e.g. `start: main`"
        ]
    );
    let got = errors("id: x\nstart: mian\nnodes:\n  main: { say: hi }\n");
    assert_eq!(
        got,
        ["broken.yaml:2:8: start names node 'mian', which does not exist; did you mean 'main'?"]
    );
}

#[test]
fn text_limits_and_templates() {
    let long = "a".repeat(3001);
    let got = errors(&format!(
        "id: x\nstart: a\nnodes:\n  a: {{ say: \"{long}\" }}\n"
    ));
    assert_eq!(
        got,
        ["broken.yaml:4:13: node 'a': say must be at most 3000 characters, got 3001"]
    );
    let got = errors("id: x\nstart: a\nnodes:\n  a: { say: \"Hi {{callr}}\" }\n");
    assert_eq!(
        got,
        [
            "broken.yaml:4:13: node 'a': say: unknown placeholder {{callr}}; use caller, called, digits or vars.NAME"
        ]
    );
}

#[test]
fn unreachable_nodes_are_warnings() {
    let compiled = compile(
        "id: x\nstart: a\nnodes:\n  a: { say: hi }\n  b: { say: lost }\n",
        "w.yaml",
    )
    .unwrap();
    let warnings: Vec<String> = compiled.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["w.yaml:5:3: warning: node 'b': unreachable from start node 'a'"]
    );
}

#[test]
fn silent_loops_are_errors() {
    let got = errors(
        "id: x\nstart: a\nnodes:\n  a: { set: { n: \"1\" }, next: b }\n  b:\n    branch:\n      - when: { var: n, equals: \"1\" }\n        goto: a\n    default: a\n",
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("loop back to 'a' without saying anything"),
        "{got:?}"
    );
}

#[test]
fn branch_needs_default_and_kinds_are_exclusive() {
    let got = errors(
        "id: x\nstart: a\nnodes:\n  a:\n    branch:\n      - when: { time: \"9-5\" }\n        goto: a\n  b: { say: x, play: \"https://e.com/a.mp3\" }\n",
    );
    assert_eq!(
        got,
        [
            "broken.yaml:5:5: node 'a': a branch needs a 'default' target, taken when no rule matches",
            "broken.yaml:6:23: node 'a': time \"9-5\" must be a range HH:MM-HH:MM such as \"09:00-17:30\" (it may wrap past midnight)",
            "broken.yaml:8:6: node 'b': the node has several kinds (say, play); split it into one node per kind",
        ]
    );
}

#[test]
fn syntax_errors_and_json_flows() {
    let got = errors("id: x\nnodes: [\n");
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("broken.yaml:3:"), "{got:?}");
    let json = r#"{"id": "j", "start": "a", "nodes": {"a": {"say": "Hello from JSON", "next": "hangup"}}}"#;
    assert!(compile(json, "j.json").is_ok());
}

#[test]
fn a_number_claimed_twice_is_an_error() {
    let a = compile(
        "id: a\nnumbers: [\"+6511\"]\nstart: n\nnodes: { n: { say: hi } }\n",
        "a.yaml",
    )
    .unwrap()
    .flow;
    let b = compile(
        "id: b\nnumbers:\n  - \"6511\"\nstart: n\nnodes: { n: { say: hi } }\n",
        "b.yaml",
    )
    .unwrap()
    .flow;
    let errs = FlowSet::new(vec![a, b]).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        "b.yaml:3:5: number +6511 is already claimed by flow 'a' (a.yaml); a number routes to one flow"
    );
}

#[test]
fn a_flow_id_used_twice_is_an_error_at_the_second_id() {
    let a = compile("id: sales\nstart: n\nnodes: { n: { say: hi } }\n", "a.yaml")
        .unwrap()
        .flow;
    let b = compile(
        "# the same id again\nid: sales\nstart: n\nnodes: { n: { say: hi } }\n",
        "b.yaml",
    )
    .unwrap()
    .flow;
    let errs = FlowSet::new(vec![a, b]).unwrap_err();
    let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        errs,
        ["b.yaml:2:5: flow id 'sales' is also used by a.yaml; ids must be unique"]
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// A bundled flow with a line removed or duplicated never makes the checker panic, and
    /// every problem it reports has an error position inside the file.
    #[test]
    fn damaged_flows_are_diagnosed_not_panicked_on(
        file in proptest::sample::select(vec!["restaurant", "support", "bank"]),
        line in 0usize..100,
        duplicate in proptest::prelude::any::<bool>(),
    ) {
        let path = format!("{}/../../flows/{file}.yaml", env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = source.lines().collect();
        let at = line % lines.len();
        if duplicate {
            lines.insert(at, lines[at]);
        } else {
            lines.remove(at);
        }
        let damaged = lines.join("\n");
        let diagnostics = match compile(&damaged, "damaged.yaml") {
            Ok(compiled) => compiled.warnings,
            Err(diagnostics) => {
                proptest::prop_assert!(
                    diagnostics.iter().any(|d| d.severity == Severity::Error),
                    "a failed compile reports at least one error"
                );
                diagnostics
            }
        };
        for d in diagnostics {
            proptest::prop_assert!(d.pos.line >= 1 && d.pos.line <= lines.len() + 1, "{}", d);
            proptest::prop_assert!(d.pos.col >= 1, "{}", d);
        }
    }
}

#[test]
fn every_error_of_a_node_is_reported_not_just_the_first() {
    let source = r#"id: x
start: a
nodes:
  a:
    say: "Hi"
    voice: bad
    speed: 9
    repeat: 4
    next: nowhere
  c:
    capture: { prompt: "Enter", var: v, min_digits: 5, max_digits: 3, pattern: "(", max_attempts: 0, timeout_ms: 10, digit_timeout_ms: 1, on_fail: nope, speed: 3 }
    next: gone
  t:
    transfer: { to: "+6531580000", from: "0123", record: maybe }
    next: lost
    on_busy: missing
"#;
    let got = errors(source);
    let expected = [
        "broken.yaml:6:12: node 'a': voice: \"bad\" is not a voice profile; expected language-REGION-Name, e.g. en-US-BenjaminRUS",
        "broken.yaml:7:12: node 'a': speed must be 0.5..=2.0, got 9",
        "broken.yaml:8:13: node 'a': repeat must be 1..=3, got 4",
        "broken.yaml:9:11: node 'a': next goes to 'nowhere', which is not a node of this flow",
    ];
    assert_eq!(got[..4], expected, "\n{}", got.join("\n"));
    let capture: Vec<&String> = got.iter().filter(|e| e.contains("node 'c'")).collect();
    for part in [
        "next goes to 'gone'",
        "min_digits (5) must not exceed max_digits (3)",
        "pattern is not a valid regular expression",
        "max_attempts must be 1..=20, got 0",
        "timeout_ms must be 1000..=600000, got 10",
        "digit_timeout_ms must be 500..=600000, got 1",
        "on_fail goes to 'nope'",
        "speed must be 0.5..=2.0, got 3",
    ] {
        assert!(
            capture.iter().any(|e| e.contains(part)),
            "missing {part:?} in\n{}",
            got.join("\n")
        );
    }
    let transfer: Vec<&String> = got.iter().filter(|e| e.contains("node 't'")).collect();
    for part in [
        "transfer.from: \"0123\" is not an E.164 number",
        "transfer.record must be true or false, got a string",
        "next goes to 'lost'",
        "on_busy goes to 'missing'",
    ] {
        assert!(
            transfer.iter().any(|e| e.contains(part)),
            "missing {part:?} in\n{}",
            got.join("\n")
        );
    }
}

#[test]
fn days_must_be_weekday_names() {
    let flow = |days: &str| {
        format!(
            "id: d\nnumbers: [\"+6560000009\"]\nstart: b\nnodes:\n  b:\n    branch:\n      - when: {{ days: {days} }}\n        goto: hi\n    default: hi\n  hi:\n    say: Hi\n    next: hangup\n"
        )
    };
    for good in ["mon-fri", "\"sat,sun\"", "[monday, wed]", "Sunday"] {
        assert!(compile(&flow(good), "d.yaml").is_ok(), "{good}");
    }
    for bad in ["monkey", "[mon, {a: 1}]", "funday-fri", "\"mon,\""] {
        let errors = errors(&flow(bad));
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(
            errors[0].contains("broken.yaml:7:") && errors[0].contains("days must name weekdays"),
            "{bad}: {}",
            errors[0]
        );
    }
}

/// Found by the `flow_compile` fuzz target: an hour of 9999 overflowed while the range was
/// computed, before it was checked (a panic in a build with overflow checks, such as the fuzz
/// build and `cargo test` without `--release`).
#[test]
fn time_ranges_out_of_range_are_errors_not_overflows() {
    let flow = |time: &str| {
        format!(
            "id: t\nnumbers: [\"+6560000008\"]\nstart: b\nnodes:\n  b:\n    branch:\n      - when: {{ time: \"{time}\" }}\n        goto: hi\n    default: hi\n  hi:\n    say: Hi\n    next: hangup\n"
        )
    };
    for good in ["09:00-17:30", "22:00-06:00", "00:00-24:00"] {
        assert!(compile(&flow(good), "t.yaml").is_ok(), "{good}");
    }
    for bad in [
        "9999:00-18:00",
        "65535:59-01:00",
        "09:00-1200:00",
        "09:99-10:00",
        "25:00-26:00",
        "09:00-09:00",
    ] {
        let errors = errors(&flow(bad));
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(
            errors[0].contains("broken.yaml:7:")
                && errors[0].contains("must be a range HH:MM-HH:MM"),
            "{bad}: {}",
            errors[0]
        );
    }
}
