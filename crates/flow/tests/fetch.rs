//! Fetch nodes: what the checker refuses, the request a step asks for, and where each outcome
//! of it leads. The engine does no I/O, so outcomes are given as the runtime would report them.

use chrono::{TimeZone, Utc};
use switchboard_flow::fetch::{FetchFailure, FetchOutcome, FetchResult, Method};
use switchboard_flow::{
    Event, Flow, Options, SessionState, Signal, Step, advance, compile_with, resume, step,
};
use switchboard_protocol::Action;

const LOOKUP: &str = r#"
id: lookup
numbers: ["+6560000001"]
start: account
fetch:
  base_url: "https://bank.example"
  headers: { Authorization: "Bearer {{env.BANK_TOKEN}}" }
nodes:
  account:
    capture: { prompt: "Your account number.", var: account, max_digits: 8 }
    next: balance
  balance:
    fetch:
      url: "/accounts/{{vars.account}}"
      query: { caller: "{{caller}}" }
      timeout_ms: 800
      save:
        balance: /balance
        tier: { from: /tier, type: string }
    cases:
      - status: 404
        goto: unknown
      - when: { var: tier, equals: gold }
        goto: vip
    next: speak
    on_error: sorry
    on_timeout: slow
  speak:
    say: "Your balance is {{vars.balance}} dollars."
    next: hangup
  vip:
    say: "Welcome, gold member. Your balance is {{vars.balance}}."
    next: hangup
  unknown:
    say: "We do not know that account."
    next: hangup
  sorry:
    say: "We cannot look that up now."
    next: hangup
  slow:
    say: "Our systems are slow."
    next: hangup
"#;

fn options() -> Options {
    Options {
        fetch_env: vec!["BANK_TOKEN".to_owned()],
    }
}

fn flow(source: &str) -> Flow {
    match compile_with(source, "lookup.yaml", &options()) {
        Ok(c) => c.flow,
        Err(d) => panic!("{d:?}"),
    }
}

fn errors(source: &str, options: &Options) -> Vec<String> {
    match compile_with(source, "bad.yaml", options) {
        Ok(_) => panic!("compiled, but should not have"),
        Err(d) => d.iter().map(ToString::to_string).collect(),
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap()
}

/// Starts a call and enters the account number; returns the step stopped at the fetch.
fn at_fetch(flow: &Flow) -> (SessionState, Box<switchboard_flow::Pending>) {
    let mut state = SessionState::new(flow, "+6591110000", "+6560000001");
    let first = step(flow, &mut state, Event::Start, now());
    let id = first.callflow.client_action_id.clone().unwrap();
    let event = Event::Completed {
        action_id: Some(id.as_str()),
        dtmf: Some("1234"),
        sip_code: None,
    };
    match advance(flow, &mut state, event, now()) {
        Step::Fetch(pending) => (state, pending),
        Step::Reply(reply) => panic!("expected a fetch, got {reply:?}"),
    }
}

fn spoken(step: Step) -> (String, Vec<Signal>) {
    let Step::Reply(reply) = step else {
        panic!("expected a reply")
    };
    let text = reply
        .callflow
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Say(s) => Some(s.text.as_str().to_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ");
    (text, reply.trace.signals)
}

#[test]
fn a_step_stops_at_a_fetch_with_the_rendered_request() {
    let flow = flow(LOOKUP);
    let (state, pending) = at_fetch(&flow);
    let request = &pending.request;
    assert_eq!(request.method, Method::Get);
    assert_eq!(
        request.url.to_string(),
        "https://bank.example/accounts/1234?caller=%2B6591110000"
    );
    // The secret stays a name: the engine never sees its value.
    assert_eq!(request.headers.len(), 1);
    assert_eq!(
        request.headers[0].1.to_string(),
        "Bearer {{env.BANK_TOKEN}}"
    );
    assert_eq!(request.timeout_ms, 800);
    assert_eq!(request.step_key, format!("{}-1-balance", state.seq));
}

#[test]
fn a_good_answer_saves_typed_values_and_speaks_them() {
    let flow = flow(LOOKUP);
    let (mut state, pending) = at_fetch(&flow);
    let body = br#"{"balance": 1520.5, "tier": "silver"}"#;
    let outcome = FetchOutcome::Response { status: 200, body };
    let (text, signals) = spoken(resume(&flow, &mut state, pending, outcome, now()));
    assert_eq!(text, "Your balance is 1520.5 dollars.");
    let balance = flow.node_id("balance").unwrap();
    assert!(signals.contains(&Signal::Fetch(balance, FetchResult::Ok)));
    assert_eq!(state.vars["tier"], "silver");
}

#[test]
fn a_case_on_a_saved_value_picks_its_node() {
    let flow = flow(LOOKUP);
    let (mut state, pending) = at_fetch(&flow);
    let body = br#"{"balance": 7, "tier": "gold"}"#;
    let outcome = FetchOutcome::Response { status: 200, body };
    let (text, _) = spoken(resume(&flow, &mut state, pending, outcome, now()));
    assert_eq!(text, "Welcome, gold member. Your balance is 7.");
}

#[test]
fn every_failure_has_its_target() {
    let flow = flow(LOOKUP);
    let cases: [(FetchOutcome<'_>, &str, FetchResult); 8] = [
        (
            FetchOutcome::Response {
                status: 404,
                body: b"",
            },
            "We do not know that account.",
            FetchResult::Status,
        ),
        (
            FetchOutcome::Response {
                status: 500,
                body: b"{}",
            },
            "We cannot look that up now.",
            FetchResult::HttpError,
        ),
        (
            FetchOutcome::Response {
                status: 200,
                body: b"{not json",
            },
            "We cannot look that up now.",
            FetchResult::BadJson,
        ),
        (
            FetchOutcome::Response {
                status: 200,
                body: br#"{"tier": "gold"}"#,
            },
            "We cannot look that up now.",
            FetchResult::Missing,
        ),
        (
            // `tier` must be a string.
            FetchOutcome::Response {
                status: 200,
                body: br#"{"balance": 1, "tier": 3}"#,
            },
            "We cannot look that up now.",
            FetchResult::Missing,
        ),
        (
            FetchOutcome::TimedOut,
            "Our systems are slow.",
            FetchResult::Timeout,
        ),
        (
            FetchOutcome::Failed(FetchFailure::Unreachable),
            "We cannot look that up now.",
            FetchResult::Unreachable,
        ),
        (
            FetchOutcome::Failed(FetchFailure::TooLarge),
            "We cannot look that up now.",
            FetchResult::TooLarge,
        ),
    ];
    let balance = flow.node_id("balance").unwrap();
    for (outcome, expected, result) in cases {
        let (mut state, pending) = at_fetch(&flow);
        let (text, signals) = spoken(resume(&flow, &mut state, pending, outcome, now()));
        assert_eq!(text, expected, "{outcome:?}");
        assert!(
            signals.contains(&Signal::Fetch(balance, result)),
            "{outcome:?}: {signals:?}"
        );
        // Nothing is saved unless every value was found.
        assert!(!state.vars.contains_key("balance"), "{outcome:?}");
    }
}

#[test]
fn step_without_a_client_takes_on_error() {
    let flow = flow(LOOKUP);
    let mut state = SessionState::new(&flow, "+6591110000", "+6560000001");
    let first = step(&flow, &mut state, Event::Start, now());
    let id = first.callflow.client_action_id.clone().unwrap();
    let reply = step(
        &flow,
        &mut state,
        Event::Completed {
            action_id: Some(id.as_str()),
            dtmf: Some("1234"),
            sip_code: None,
        },
        now(),
    );
    let (text, _) = spoken(Step::Reply(reply));
    assert_eq!(text, "We cannot look that up now.");
}

#[test]
fn a_post_renders_its_json_body() {
    let source = r#"
id: p
start: c
nodes:
  c:
    capture: { prompt: "Number.", var: order }
    next: f
  f:
    fetch:
      method: POST
      url: "http://127.0.0.1:9/orders"
      body: { order: "{{vars.order}}", urgent: true, count: 2, tags: ["a", "{{caller}}"] }
    on_error: hangup
"#;
    let flow = flow(source);
    let mut state = SessionState::new(&flow, "+1", "+2");
    let first = step(&flow, &mut state, Event::Start, now());
    let id = first.callflow.client_action_id.clone().unwrap();
    let event = Event::Completed {
        action_id: Some(id.as_str()),
        dtmf: Some("42"),
        sip_code: None,
    };
    let Step::Fetch(pending) = advance(&flow, &mut state, event, now()) else {
        panic!("expected a fetch");
    };
    assert_eq!(pending.request.method, Method::Post);
    let body: serde_json::Value =
        serde_json::from_str(pending.request.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"order": "42", "urgent": true, "count": 2, "tags": ["a", "+1"]})
    );
}

/// A node that is fine but for one key, to test each misuse alone.
fn with_fetch(fetch: &str, targets: &str) -> String {
    format!(
        "id: t\nstart: c\nnodes:\n  c:\n    capture: {{ prompt: \"N.\", var: acct }}\n    next: f\n  f:\n    fetch: {fetch}\n{targets}  done:\n    say: \"ok\"\n"
    )
}

#[test]
fn the_checker_names_every_misuse_with_its_line() {
    let ok_targets = "    next: done\n    on_error: done\n";
    let cases = [
        (
            with_fetch("{ url: \"https://h/{{env.SECRET}}\" }", ok_targets),
            "bad.yaml:8:19: node 'f': fetch.url reads {{env.SECRET}}, which the server does not allow-list; add SECRET to the server's fetch_env setting",
        ),
        (
            with_fetch("{ url: \"https://h/\", timeout_ms: 5000 }", ok_targets),
            "fetch.timeout_ms must be 1..=4000, got 5000",
        ),
        (
            with_fetch("{ url: \"https://h/{{vars.acount}}\" }", ok_targets),
            "node 'f': the fetch reads vars.acount, which no node of this flow sets",
        ),
        (
            with_fetch(
                "{ url: \"https://h/\" }",
                "    next: done\n    on_error: nowhere\n",
            ),
            "on_error goes to 'nowhere', which is not a node of this flow",
        ),
        (
            with_fetch("{ url: \"https://h/\" }", "    next: done\n"),
            "a fetch node needs 'on_error'",
        ),
        (
            with_fetch("{ url: \"/relative\" }", ok_targets),
            "must start with http:// or https://",
        ),
        (
            with_fetch("{ url: \"ftp://h/\" }", ok_targets),
            "must start with http:// or https://",
        ),
        (
            with_fetch("{ url: \"https://h/\", method: DELETE }", ok_targets),
            "fetch.method must be GET, POST or PUT",
        ),
        (
            with_fetch(
                "{ url: \"https://h/\", save: { v: \"balance\" } }",
                ok_targets,
            ),
            "is not a JSON pointer",
        ),
        (
            with_fetch("{ url: \"https://h/\", body: { a: 1 } }", ok_targets),
            "a GET sends no body",
        ),
        (
            with_fetch(
                "{ url: \"https://h/\" }",
                "    cases: [ { when: { var: ghost, equals: x }, goto: done } ]\n    next: done\n    on_error: done\n",
            ),
            "the fetch reads vars.ghost",
        ),
    ];
    for (source, expected) in cases {
        let found = errors(&source, &options());
        assert!(
            found.iter().any(|e| e.contains(expected)),
            "expected {expected:?} in {found:#?}\n{source}"
        );
        assert!(
            found.iter().all(|e| e.starts_with("bad.yaml:")),
            "{found:?}"
        );
    }
}

#[test]
fn env_is_refused_outside_fetch_urls_and_headers() {
    let source = "id: t\nstart: s\nnodes:\n  s:\n    say: \"{{env.BANK_TOKEN}}\"\n";
    let found = errors(source, &options());
    assert!(
        found[0].contains("only allowed in a fetch node's url and headers"),
        "{found:?}"
    );
}

#[test]
fn a_loop_of_fetches_that_never_speaks_is_refused() {
    let source = "id: t\nstart: f\nnodes:\n  f:\n    fetch: { url: \"http://h/\" }\n    next: f\n    on_error: f\n";
    let found = errors(source, &Options::default());
    assert!(
        found
            .iter()
            .any(|e| e.contains("loop back to 'f' without saying anything")),
        "{found:?}"
    );
}
