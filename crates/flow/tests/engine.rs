//! The state machine, driven call by call through small flows and the bundled examples.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use switchboard_flow::{
    Awaiting, Disposition, Event, Flow, FlowSet, SessionState, Signal, TransferResult, compile,
    step,
};
use switchboard_protocol::{Action, Callflow, Mode, validate_callflow};

fn flow(source: &str) -> Flow {
    compile(source, "test.yaml")
        .unwrap_or_else(|d| {
            panic!(
                "{}",
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
        .flow
}

fn example(name: &str) -> Flow {
    let path = format!("{}/../../flows/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    flow(&std::fs::read_to_string(path).unwrap())
}

/// Monday 2026-11-23 10:00 in Singapore.
fn weekday_morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap()
}

/// A call in progress: plays the platform's side against `step`.
struct Call<'f> {
    flow: &'f Flow,
    state: SessionState,
    last: Callflow,
    now: DateTime<Utc>,
}

impl<'f> Call<'f> {
    fn start(flow: &'f Flow) -> Self {
        Self::start_from(flow, "+6591110000", weekday_morning())
    }

    fn start_from(flow: &'f Flow, caller: &str, now: DateTime<Utc>) -> Self {
        let mut state = SessionState::new(flow, caller, "+6568888888");
        let reply = step(flow, &mut state, Event::Start, now);
        assert_eq!(reply.disposition, Disposition::Advanced);
        assert_valid(&reply.callflow);
        Self {
            flow,
            state,
            last: reply.callflow,
            now,
        }
    }

    fn event(&mut self, dtmf: Option<&str>, sip: Option<u16>) -> switchboard_flow::Reply {
        let id = self
            .last
            .client_action_id
            .as_ref()
            .map(|i| i.as_str().to_owned());
        let reply = step(
            self.flow,
            &mut self.state,
            Event::Completed {
                action_id: id.as_deref(),
                dtmf,
                sip_code: sip,
            },
            self.now,
        );
        assert_valid(&reply.callflow);
        self.last = reply.callflow.clone();
        reply
    }

    fn press(&mut self, digits: &str) -> Vec<String> {
        describe(&self.event(Some(digits), None).callflow)
    }

    fn silence(&mut self) -> Vec<String> {
        describe(&self.event(None, None).callflow)
    }

    fn transfer_result(&mut self, sip: u16) -> Vec<String> {
        describe(&self.event(None, Some(sip)).callflow)
    }

    fn heard(&self) -> Vec<String> {
        describe(&self.last)
    }
}

fn assert_valid(callflow: &Callflow) {
    let violations = validate_callflow(callflow, Mode::Webhook);
    assert!(violations.is_empty(), "{violations:?}\n{callflow:?}");
}

/// A callflow as short lines: `say: text`, `menu: prompt`, `transfer: number`, `hangup`.
fn describe(callflow: &Callflow) -> Vec<String> {
    callflow
        .actions
        .iter()
        .map(|a| match a {
            Action::Say(s) => format!("say: {}", s.text),
            Action::SayAndCapture(c) => format!("ask: {}", c.prompt_message()),
            Action::MakeCall(m) => format!("transfer: {}", m.destination),
            Action::PlayFile(p) => format!("play: {}", p.file_url),
            Action::Hangup => "hangup".to_owned(),
        })
        .collect()
}

const MENU: &str = r#"
id: t
numbers: ["+6568888888"]
start: main
nodes:
  main:
    menu:
      prompt: "Main. 1 info, 2 sub, 3 agent."
      reprompt: "Again: 1, 2 or 3."
      invalid: "Not valid."
      no_input: "Nothing heard."
      max_invalid: 3
      max_no_input: 2
      on_fail: failed
      options: { "1": info, "2": sub, "3": agent }
  info: { say: "Info one.", next: info2 }
  info2: { say: "Info two.", repeat: 2, next: hangup }
  sub:
    menu:
      prompt: "Sub. 9 back."
      options: { "9": back, "1": info }
  agent:
    transfer: { to: "+6531589338", record: true }
    on_busy: busy
    on_no_answer: noanswer
  busy: { say: "Busy.", next: main }
  noanswer: { say: "No answer.", next: hangup }
  failed: { say: "Too many tries.", next: hangup }
"#;

#[test]
fn happy_path_batches_non_blocking_nodes() {
    let f = flow(MENU);
    let mut call = Call::start(&f);
    assert_eq!(call.heard(), ["ask: Main. 1 info, 2 sub, 3 agent."]);
    assert_eq!(
        call.press("1"),
        ["say: Info one.", "say: Info two.", "hangup"]
    );
    match &call.last.actions[1] {
        Action::Say(s) => assert_eq!(s.repetition.map(|r| r.get()), Some(2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(call.state.awaiting, Awaiting::Nothing);
    assert_eq!(
        Vec::from(call.state.path.clone()),
        ["main", "info", "info2"]
    );
}

#[test]
fn invalid_keys_reprompt_then_run_out() {
    let f = flow(MENU);
    let mut call = Call::start(&f);
    assert_eq!(
        call.press("7"),
        ["say: Not valid.", "ask: Again: 1, 2 or 3."]
    );
    assert_eq!(call.state.invalid, 1);
    assert_eq!(
        call.press("8"),
        ["say: Not valid.", "ask: Again: 1, 2 or 3."]
    );
    let reply = call.event(Some("9"), None);
    assert_eq!(
        describe(&reply.callflow),
        ["say: Too many tries.", "hangup"]
    );
    assert!(
        reply
            .trace
            .signals
            .contains(&Signal::Exhausted(f.node_id("main").unwrap()))
    );
}

#[test]
fn silence_counts_separately_and_runs_out() {
    let f = flow(MENU);
    let mut call = Call::start(&f);
    assert_eq!(
        call.press("5"),
        ["say: Not valid.", "ask: Again: 1, 2 or 3."]
    );
    assert_eq!(
        call.silence(),
        ["say: Nothing heard.", "ask: Again: 1, 2 or 3."]
    );
    assert_eq!((call.state.invalid, call.state.no_input), (1, 1));
    assert_eq!(call.silence(), ["say: Too many tries.", "hangup"]);
}

#[test]
fn counters_reset_on_a_valid_choice() {
    let f = flow(MENU);
    let mut call = Call::start(&f);
    call.press("5");
    call.press("5");
    assert_eq!(call.press("2"), ["ask: Sub. 9 back."]);
    assert_eq!(call.press("9"), ["ask: Main. 1 info, 2 sub, 3 agent."]);
    assert_eq!(call.state.invalid, 0);
    assert_eq!(
        call.press("5"),
        ["say: Not valid.", "ask: Again: 1, 2 or 3."]
    );
}

#[test]
fn back_returns_to_the_parent_menu() {
    let f = example("restaurant");
    let mut call = Call::start(&f);
    call.press("1");
    assert_eq!(call.state.node, "reservations");
    call.press("2");
    assert_eq!(call.state.node, "manage");
    call.press("9");
    assert_eq!(call.state.node, "reservations");
    call.press("9");
    assert_eq!(call.state.node, "main");
    assert!(call.state.menus.is_empty());
}

#[test]
fn transfers_route_by_sip_code() {
    let f = flow(MENU);
    let mut call = Call::start(&f);
    assert_eq!(call.press("3"), ["transfer: +6531589338"]);
    match &call.last.actions[0] {
        Action::MakeCall(m) => {
            assert_eq!(m.call_recording, Some(true));
            assert_eq!(
                m.source.as_str(),
                "+6568888888",
                "from defaults to the called number"
            );
        }
        other => panic!("{other:?}"),
    }
    let reply = call.event(None, Some(486));
    assert_eq!(
        describe(&reply.callflow),
        ["say: Busy.", "ask: Main. 1 info, 2 sub, 3 agent."]
    );
    assert!(reply.trace.signals.contains(&Signal::Transfer(
        f.node_id("agent").unwrap(),
        TransferResult::Busy
    )));
    call.press("3");
    assert_eq!(call.transfer_result(480), ["say: No answer.", "hangup"]);

    let mut call = Call::start(&f);
    call.press("3");
    assert_eq!(call.transfer_result(200), ["hangup"]);
    let mut call = Call::start(&f);
    call.press("3");
    assert_eq!(call.transfer_result(487), ["say: No answer.", "hangup"]);
}

#[test]
fn stale_and_duplicate_events_repeat_the_answer_without_advancing() {
    let f = flow(MENU);
    let mut call = Call::start(&f);
    let first_id = call.last.client_action_id.clone().unwrap();
    call.press("7");
    let after_invalid = call.state.clone();
    let second = call.last.clone();
    // The same event delivered again (it echoes the first answer's id).
    let reply = step(
        &f,
        &mut call.state,
        Event::Completed {
            action_id: Some(first_id.as_str()),
            dtmf: Some("7"),
            sip_code: None,
        },
        call.now,
    );
    assert_eq!(reply.disposition, Disposition::Stale);
    assert_eq!(reply.callflow, second);
    assert_eq!(call.state, after_invalid, "a stale event changes nothing");
    // A late CALL_RECEIVED duplicate.
    let reply = step(&f, &mut call.state, Event::Start, call.now);
    assert_eq!(reply.disposition, Disposition::Stale);
    assert_eq!(call.state.invalid, 1);
}

#[test]
fn client_action_ids_name_flow_version_node_and_seq() {
    let f = flow(MENU);
    let call = Call::start(&f);
    let id = call.last.client_action_id.clone().unwrap();
    assert_eq!(id.as_str(), format!("t:{}:main:1", f.version));
}

#[test]
fn capture_stores_digits_with_its_own_attempts() {
    let f = example("bank");
    let mut call = Call::start(&f);
    assert_eq!(
        call.heard(),
        [
            "say: Welcome to Example Bank.",
            "ask: Please enter your 8 digit account number, followed by the hash key."
        ]
    );
    match &call.last.actions[1] {
        Action::SayAndCapture(c) => {
            assert_eq!(
                (
                    c.min_digits().map(|d| d.get()),
                    c.max_digits().map(|d| d.get())
                ),
                (Some(8), Some(8))
            );
            assert!(c.completes_on_hash());
            assert_eq!(c.no_of_tries(), 1, "retries are ours to count");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        call.press("123"),
        [
            "say: Sorry, an account number has exactly 8 digits.",
            "ask: Enter the 8 digits of your account number, then hash."
        ]
    );
    assert_eq!(
        call.silence(),
        ["ask: Enter the 8 digits of your account number, then hash."]
    );
    assert_eq!(call.state.attempts, 2);
    assert_eq!(
        call.press("12345678"),
        [
            "ask: You entered 1 2 3 4 5 6 7 8. If this is correct press 1. To enter it again press 2."
        ]
    );
    assert_eq!(call.state.vars["account"], "12345678");
    assert_eq!(call.state.attempts, 0);
}

#[test]
fn capture_runs_out_to_on_fail() {
    let f = example("bank");
    let mut call = Call::start(&f);
    call.press("1");
    call.press("12");
    assert_eq!(call.silence(), ["transfer: +442079460000"]);
}

#[test]
fn capture_pattern_is_enforced() {
    let f = example("restaurant");
    let mut call = Call::start(&f);
    call.press("1");
    call.press("1");
    assert_eq!(call.state.node, "booking_size");
    assert_eq!(
        call.press("25"),
        [
            "say: Sorry, we take bookings for 1 to 20 guests.",
            "ask: Please enter the number of guests, 1 to 20, then hash."
        ]
    );
    assert_eq!(
        call.press("4"),
        [
            "say: A table for 4. Let me connect you to our host to choose a time.",
            "transfer: +6531589338"
        ]
    );
}

#[test]
fn branch_on_time_day_and_caller_prefix() {
    let f = example("support");
    // Monday 10:00 Singapore, ordinary caller.
    let call = Call::start_from(&f, "+6581234567", weekday_morning());
    assert!(
        call.heard()[0].starts_with("ask: Welcome to Acme support."),
        "{:?}",
        call.heard()
    );
    assert!(!call.state.vars.contains_key("tier"));
    // Partner caller: tier set, priority message before the transfer.
    let mut call = Call::start_from(&f, "+6590001111", weekday_morning());
    assert_eq!(call.state.vars["tier"], "gold");
    assert_eq!(
        call.press("1"),
        [
            "say: As a partner you are first in line.",
            "transfer: +6531580001"
        ]
    );
    // Monday 20:00 Singapore: after hours.
    let evening = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let call = Call::start_from(&f, "+6581234567", evening);
    assert_eq!(call.heard()[1], "say: Goodbye.");
    assert!(call.heard()[0].contains("We are closed now"));
    // Saturday 11:00 Singapore: open; Sunday 11:00: closed.
    let saturday = Utc.with_ymd_and_hms(2026, 11, 28, 3, 0, 0).unwrap();
    assert!(Call::start_from(&f, "+6581234567", saturday).heard()[0].starts_with("ask:"));
    let sunday = Utc.with_ymd_and_hms(2026, 11, 29, 3, 0, 0).unwrap();
    assert!(Call::start_from(&f, "+6581234567", sunday).heard()[0].contains("closed"));
}

#[test]
fn variable_comparisons_and_templating() {
    let f = flow(
        r#"
id: v
start: s
nodes:
  s: { set: { n: "42", who: "{{caller}}" }, next: b }
  b:
    branch:
      - when: { var: n, gt: 50 }
        goto: big
      - when: { all: [ { var: n, gte: 42 }, { not: { var: who, equals: "+1" } } ] }
        goto: mid
      - when: { any: [ { var: n, in: ["1", "2"] }, { var: missing, is_set: true } ] }
        goto: big
    default: big
  big: { say: "big", next: hangup }
  mid: { say: "{{vars.n}} from {{vars.who}} to {{called}}", next: hangup }
"#,
    );
    let call = Call::start(&f);
    assert_eq!(
        call.heard(),
        ["say: 42 from +6591110000 to +6568888888", "hangup"]
    );
}

#[test]
fn long_chains_split_across_callflows() {
    let mut source = String::from("id: chain\nstart: s0\nnodes:\n");
    for i in 0..14 {
        source.push_str(&format!(
            "  s{i}: {{ say: \"line {i}\", next: s{} }}\n",
            i + 1
        ));
    }
    source.push_str("  s14: { say: \"last\", next: hangup }\n");
    let f = flow(&source);
    let mut call = Call::start(&f);
    assert_eq!(
        call.last.actions.len(),
        9,
        "room is left so a callflow never overflows"
    );
    assert_eq!(call.state.awaiting, Awaiting::Continue);
    let rest = describe(&call.event(None, None).callflow);
    assert_eq!(rest.last().map(String::as_str), Some("hangup"));
    assert_eq!(rest.len(), 15 - 9 + 1);
}

#[test]
fn a_bad_templated_number_goes_to_on_error_or_apologises() {
    let f = flow(
        r#"
id: x
start: a
nodes:
  a: { transfer: { to: "{{vars.agent}}" }, on_error: oops }
  oops: { say: "No agent.", next: hangup }
"#,
    );
    assert_eq!(Call::start(&f).heard(), ["say: No agent.", "hangup"]);
    let f = flow("id: x\nstart: a\nnodes:\n  a: { transfer: { to: \"{{vars.agent}}\" } }\n");
    let heard = Call::start(&f).heard();
    assert_eq!(heard.len(), 2);
    assert!(heard[0].starts_with("say: We are sorry"));
}

#[test]
fn resume_from_a_client_action_id() {
    let f = flow(MENU);
    let call = Call::start(&f);
    let id = call.last.client_action_id.clone().unwrap();
    let parsed = switchboard_flow::ActionId::parse(id.as_str()).unwrap();
    let mut state = SessionState::resume(&f, &parsed, "+6591110000", "+6568888888").unwrap();
    let reply = step(
        &f,
        &mut state,
        Event::Completed {
            action_id: Some(id.as_str()),
            dtmf: Some("3"),
            sip_code: None,
        },
        weekday_morning(),
    );
    assert_eq!(describe(&reply.callflow), ["transfer: +6531589338"]);
    let other = switchboard_flow::ActionId {
        node: "nope",
        ..parsed
    };
    assert!(SessionState::resume(&f, &other, "", "").is_none());
}

#[test]
fn sessions_stay_on_their_flow_version_across_reloads() {
    let v1 = MENU.to_owned();
    let v2 = MENU.replace("Main. 1 info, 2 sub, 3 agent.", "New main menu.");
    let set = FlowSet::new(vec![flow(&v1)]).unwrap();
    let old = set.latest("t").unwrap().clone();
    let mut state = SessionState::new(&old, "+6591110000", "+6568888888");
    step(&old, &mut state, Event::Start, weekday_morning());

    let set = set.reload(vec![flow(&v2)]).unwrap();
    assert_ne!(set.latest("t").unwrap().version, old.version);
    let resolved = set.for_session(&state.flow, state.version).unwrap();
    assert_eq!(
        resolved.version, old.version,
        "the live session keeps its version"
    );
    let id = state
        .last_reply
        .as_ref()
        .unwrap()
        .client_action_id
        .clone()
        .unwrap();
    let reply = step(
        resolved,
        &mut state,
        Event::Completed {
            action_id: Some(id.as_str()),
            dtmf: Some("5"),
            sip_code: None,
        },
        weekday_morning(),
    );
    assert_eq!(describe(&reply.callflow)[1], "ask: Again: 1, 2 or 3.");
    // A new call gets the new version.
    let new = set.for_number("+6568888888").unwrap();
    assert_eq!(Call::start(new).heard(), ["ask: New main menu."]);
}

#[test]
fn menus_with_mixed_key_lengths_finish_on_hash() {
    let f = flow(
        "id: m\nstart: a\nnodes:\n  a:\n    menu: { prompt: p, options: { \"1\": b, \"10\": b, \"#\": b } }\n  b: { say: ok }\n",
    );
    let call = Call::start(&f);
    match &call.last.actions[0] {
        Action::SayAndCapture(c) => {
            assert!(
                !c.completes_on_hash(),
                "# is an option, so it must not end input"
            );
            assert_eq!(c.max_digits().map(|d| d.get()), Some(2));
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A caller pressing anything, in any example flow: every answer passes the protocol
    /// validator, the sequence number only grows, and the call always ends or waits.
    #[test]
    fn every_emitted_callflow_is_valid(
        flow_name in prop::sample::select(vec!["restaurant", "support", "bank"]),
        keys in prop::collection::vec(
            prop_oneof![
                Just(None),
                "[0-9*#]{1,9}".prop_map(Some),
                Just(Some("12345678".to_owned())),
            ],
            1..25,
        ),
        sip in prop::sample::select(vec![200u16, 486, 480, 503]),
        hour in 0u32..24,
    ) {
        let f = example(flow_name);
        let now = Utc.with_ymd_and_hms(2026, 11, 23, hour, 0, 0).unwrap();
        let mut call = Call::start_from(&f, "+6591110000", now);
        for key in keys {
            if call.state.awaiting == Awaiting::Nothing {
                break;
            }
            let seq = call.state.seq;
            let sip_code = (call.state.awaiting == Awaiting::Transfer).then_some(sip);
            let reply = call.event(key.as_deref(), sip_code);
            prop_assert_eq!(reply.disposition, Disposition::Advanced);
            prop_assert_eq!(call.state.seq, seq + 1);
            prop_assert!(call.state.path.len() <= switchboard_flow::state::PATH_LIMIT);
        }
    }
}
