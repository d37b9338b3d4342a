//! The state machine, driven call by call through small flows and the bundled examples.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use switchboard_flow::{
    Awaiting, Disposition, Event, Flow, FlowSet, SessionState, Signal, TransferResult, compile,
    step,
};
use switchboard_protocol::compact::{Reader, Writer};
use switchboard_protocol::{Action, Callflow};

mod common;

use common::{assert_valid, example, weekday_morning};

fn flow(source: &str) -> Flow {
    common::compiled(source, "test.yaml")
}

/// A call in progress: plays the platform's side against `step`.
struct Call<'f> {
    flow: &'f Flow,
    state: SessionState,
    last: Arc<Callflow>,
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
fn a_sequence_number_at_the_top_of_its_range_neither_wraps_nor_panics() {
    let f = flow(MENU);
    let call = Call::start(&f);
    let id = call.last.client_action_id.clone().unwrap();
    let parsed = switchboard_flow::ActionId::parse(id.as_str()).unwrap();

    // Beyond the range: resumed at the top of the range, and the next step advances.
    for seq in [u32::MAX, switchboard_flow::ActionId::MAX_SEQ + 1] {
        let forged = switchboard_flow::ActionId { seq, ..parsed };
        assert!(!forged.seq_in_range());
        let mut state = SessionState::resume(&f, &forged, "", "").unwrap();
        assert_eq!(state.seq, switchboard_flow::ActionId::MAX_SEQ);
        let text = forged.to_string();
        let reply = step(
            &f,
            &mut state,
            Event::Completed {
                action_id: Some(&text),
                dtmf: Some("9"),
                sip_code: None,
            },
            weekday_morning(),
        );
        assert_eq!(reply.disposition, Disposition::Advanced, "{seq}");
        assert_eq!(state.seq, switchboard_flow::ActionId::MAX_SEQ + 1);
    }

    // At the top of the range: resumed, and the next events advance normally.
    let top = switchboard_flow::ActionId {
        seq: switchboard_flow::ActionId::MAX_SEQ,
        ..parsed
    };
    let mut state = SessionState::resume(&f, &top, "", "").unwrap();
    let top_id = top.to_string();
    let reply = step(
        &f,
        &mut state,
        Event::Completed {
            action_id: Some(&top_id),
            dtmf: Some("9"),
            sip_code: None,
        },
        weekday_morning(),
    );
    assert_eq!(reply.disposition, Disposition::Advanced);
    assert_eq!(state.seq, switchboard_flow::ActionId::MAX_SEQ + 1);
    let next = reply.callflow.client_action_id.clone().unwrap();
    let reply = step(
        &f,
        &mut state,
        Event::Completed {
            action_id: Some(next.as_str()),
            dtmf: Some("9"),
            sip_code: None,
        },
        weekday_morning(),
    );
    assert_eq!(reply.disposition, Disposition::Advanced, "not stale");

    // A state already at u32::MAX (a corrupted record) saturates instead of wrapping.
    state.seq = u32::MAX;
    let last = state.action_id();
    let reply = step(
        &f,
        &mut state,
        Event::Completed {
            action_id: Some(last.as_str()),
            dtmf: Some("9"),
            sip_code: None,
        },
        weekday_morning(),
    );
    assert_eq!(reply.disposition, Disposition::Advanced);
    assert_eq!(state.seq, u32::MAX);
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
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A caller pressing anything, in any example flow, on any day and hour, with the platform
    /// delivering some events twice: every answer passes the protocol validator, a duplicate
    /// gets the same answer and changes nothing, the sequence number only grows, and the call
    /// always ends or waits.
    #[test]
    fn every_emitted_callflow_is_valid(
        flow_name in prop::sample::select(vec!["restaurant", "support", "bank"]),
        keys in prop::collection::vec(
            (
                prop_oneof![
                    4 => "[0-9*#]".prop_map(Some),
                    2 => Just(None),
                    1 => "[0-9*#]{2,9}".prop_map(Some),
                    1 => Just(Some("12345678".to_owned())),
                ],
                prop::sample::select(vec![200u16, 486, 480, 487, 503, 600]),
                any::<bool>(),
            ),
            1..30,
        ),
        day in 23u32..30,
        hour in 0u32..24,
        caller in prop::sample::select(vec!["+6591110000", "+6581234567"]),
    ) {
        let f = example(flow_name);
        let now = Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap();
        let mut call = Call::start_from(&f, caller, now);
        for (key, sip, duplicate) in keys {
            if call.state.awaiting == Awaiting::Nothing {
                break;
            }
            let seq = call.state.seq;
            let id = call.last.client_action_id.clone().unwrap();
            let sip_code = (call.state.awaiting == Awaiting::Transfer).then_some(sip);
            let reply = call.event(key.as_deref(), sip_code);
            prop_assert_eq!(reply.disposition, Disposition::Advanced);
            prop_assert_eq!(call.state.seq, seq + 1);
            prop_assert!(call.state.path.len() <= switchboard_flow::state::PATH_LIMIT);
            prop_assert!(call.state.menus.len() <= switchboard_flow::state::MENU_STACK_LIMIT);
            // Every state a call reaches survives the store's compact encoding exactly.
            let mut out = Writer::default();
            call.state.write_compact(&mut out);
            let bytes = out.into_bytes();
            let mut input = Reader::new(&bytes);
            let decoded = SessionState::read_compact(&mut input)
                .map_err(|e| TestCaseError::fail(format!("{e}: {bytes:?}")))?;
            prop_assert!(input.is_done());
            prop_assert_eq!(&decoded, &call.state);
            if duplicate {
                let before = call.state.clone();
                let again = step(&f, &mut call.state, Event::Completed {
                    action_id: Some(id.as_str()),
                    dtmf: key.as_deref(),
                    sip_code,
                }, now);
                prop_assert_eq!(again.disposition, Disposition::Stale);
                prop_assert_eq!(&again.callflow, &reply.callflow);
                prop_assert_eq!(&call.state, &before);
            }
        }
    }
}

const NESTED: &str = r#"
id: nested
start: top
nodes:
  top:
    menu:
      prompt: "Top. 1 main."
      options: { "1": main }
  main:
    menu:
      prompt: "Main. 1 sub, star repeats, 9 back."
      options: { "1": sub, "*": main, "9": back }
  sub:
    menu:
      prompt: "Sub. 9 back."
      options: { "9": back }
"#;

#[test]
fn back_after_repeating_a_menu_returns_to_its_parent() {
    let f = flow(NESTED);
    let mut call = Call::start(&f);
    call.press("1");
    assert_eq!(call.press("*"), ["ask: Main. 1 sub, star repeats, 9 back."]);
    assert_eq!(call.press("*"), ["ask: Main. 1 sub, star repeats, 9 back."]);
    assert_eq!(call.state.menus, ["top"], "repeating a menu is not a level");
    call.press("1");
    assert_eq!(call.press("9"), ["ask: Main. 1 sub, star repeats, 9 back."]);
    assert_eq!(call.press("9"), ["ask: Top. 1 main."]);
}

#[test]
fn back_with_no_menu_behind_goes_to_the_start() {
    let f = flow(
        "id: b\nstart: hello\nnodes:\n  hello: { say: \"Hello.\", next: m }\n  m:\n    menu: { prompt: \"9 back.\", options: { \"9\": back } }\n",
    );
    let mut call = Call::start(&f);
    assert_eq!(call.heard(), ["say: Hello.", "ask: 9 back."]);
    assert_eq!(call.press("9"), ["say: Hello.", "ask: 9 back."]);
}

#[test]
fn play_nodes_batch_with_the_menu_they_return_to() {
    let f = example("restaurant");
    let mut call = Call::start(&f);
    let reply = call.event(Some("4"), None);
    assert_eq!(
        describe(&reply.callflow),
        [
            "play: https://example.com/promo.mp3",
            "ask: Welcome to ABC Restaurant. To book a table press 1, for a representative press 2, for our opening hours press 3, to hear this month's offer press 4."
        ]
    );
    match &reply.callflow.actions[0] {
        Action::PlayFile(p) => assert_eq!(p.repetition.map(|r| r.get()), Some(1)),
        other => panic!("{other:?}"),
    }
    let ids: Vec<&str> = reply
        .trace
        .visits
        .iter()
        .map(|id| f.node(*id).name.as_str())
        .collect();
    assert_eq!(ids, ["promo", "main"]);
}

#[test]
fn silence_alone_runs_out_at_max_no_input() {
    let f = flow(MENU);
    let main = f.node_id("main").unwrap();
    let mut call = Call::start(&f);
    let first = call.event(None, None);
    assert_eq!(first.trace.signals, [Signal::NoInput(main)]);
    assert_eq!(
        describe(&first.callflow),
        ["say: Nothing heard.", "ask: Again: 1, 2 or 3."]
    );
    let second = call.event(None, None);
    assert_eq!(
        second.trace.signals,
        [Signal::NoInput(main), Signal::Exhausted(main)]
    );
    assert_eq!(
        describe(&second.callflow),
        ["say: Too many tries.", "hangup"]
    );
    assert_eq!((call.state.invalid, call.state.no_input), (0, 0));
}

#[test]
fn a_menu_without_on_fail_hangs_up_when_a_counter_runs_out() {
    let f = flow(
        "id: n\nstart: m\nnodes:\n  m:\n    menu: { prompt: \"Press 1.\", max_invalid: 1, options: { \"1\": m } }\n",
    );
    let mut call = Call::start(&f);
    assert_eq!(call.press("2"), ["hangup"]);
    assert_eq!(call.state.awaiting, Awaiting::Nothing);
}

#[test]
fn events_out_of_order_after_hangup_and_before_start() {
    let f = flow(MENU);
    // A completion for a session that never started is answered with a hangup, and moves
    // nothing.
    let mut fresh = SessionState::new(&f, "+6591110000", "+6568888888");
    let reply = step(
        &f,
        &mut fresh,
        Event::Completed {
            action_id: None,
            dtmf: Some("1"),
            sip_code: None,
        },
        weekday_morning(),
    );
    assert_eq!(reply.disposition, Disposition::Stale);
    assert_eq!(describe(&reply.callflow), ["hangup"]);
    assert_eq!(fresh.seq, 0);

    let mut call = Call::start(&f);
    let id1 = call.last.client_action_id.clone().unwrap();
    call.press("2");
    let id2 = call.last.client_action_id.clone().unwrap();
    call.press("9");
    let latest = call.last.clone();
    let state = call.state.clone();
    // A delayed event from two answers ago, and one from the last answer: both stale.
    for old in [&id1, &id2] {
        let reply = step(
            &f,
            &mut call.state,
            Event::Completed {
                action_id: Some(old.as_str()),
                dtmf: Some("3"),
                sip_code: None,
            },
            call.now,
        );
        assert_eq!(reply.disposition, Disposition::Stale);
        assert_eq!(reply.callflow, latest);
        assert_eq!(call.state, state);
    }
    // After the call hung up, an event for the last answer only hangs up again.
    call.press("1");
    assert_eq!(call.state.awaiting, Awaiting::Nothing);
    assert_eq!(call.press("1"), ["hangup"]);
}

#[test]
fn transfers_from_a_templated_number_and_every_sip_class() {
    let f = flow(
        r#"
id: tr
start: s
nodes:
  s: { set: { line: "+6531580009" }, next: agent }
  agent:
    transfer: { to: "{{vars.line}}", from: "+6568880000" }
    next: done
    on_busy: busy
    on_no_answer: noanswer
    on_error: error
  done: { say: "Done.", next: hangup }
  busy: { say: "Busy.", next: hangup }
  noanswer: { say: "No answer.", next: hangup }
  error: { say: "Error.", next: hangup }
"#,
    );
    for (sip, heard) in [
        (200, "say: Done."),
        (486, "say: Busy."),
        (600, "say: Busy."),
        (408, "say: No answer."),
        (480, "say: No answer."),
        (487, "say: No answer."),
        (404, "say: Error."),
        (503, "say: Error."),
    ] {
        let mut call = Call::start(&f);
        match &call.last.actions[..] {
            [Action::MakeCall(m)] => {
                assert_eq!(m.destination.as_str(), "+6531580009");
                assert_eq!(m.source.as_str(), "+6568880000");
                assert_eq!(m.call_recording, None, "record defaults to off");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(call.transfer_result(sip), [heard, "hangup"], "SIP {sip}");
    }
}

#[test]
fn branch_conditions_cover_every_comparison_and_time_zones() {
    let f = flow(
        r#"
id: cond
timezone: Asia/Singapore
start: s
nodes:
  s: { set: { n: "7", word: "gold", empty: "" }, next: b }
  b:
    branch:
      - when: { var: n, lt: 7 }
        goto: wrong
      - when: { var: n, lte: 6.5 }
        goto: wrong
      - when: { var: word, not_equals: gold }
        goto: wrong
      - when: { var: word, matches: "gol" }
        goto: wrong
      - when: { var: empty, is_set: true }
        goto: wrong
      - when: { all: [ { var: n, lte: 7 }, { var: word, matches: "g.l[a-z]" }, { var: empty, is_set: false }, { var: missing, is_set: false } ] }
        goto: night
    default: wrong
  night:
    branch:
      - when: { time: "22:00-06:00", tz: Europe/London }
        goto: london_night
      - when: { time: "22:00-06:00" }
        goto: singapore_night
    default: day
  london_night: { say: "London night.", next: hangup }
  singapore_night: { say: "Singapore night.", next: hangup }
  day: { say: "Day.", next: hangup }
  wrong: { say: "Wrong.", next: hangup }
"#,
    );
    let at = |h| Utc.with_ymd_and_hms(2026, 11, 23, h, 30, 0).unwrap();
    // 23:30 UTC: 23:30 in London, 07:30 in Singapore.
    assert_eq!(
        Call::start_from(&f, "+1", at(23)).heard(),
        ["say: London night.", "hangup"]
    );
    // 15:30 UTC: 15:30 in London, 23:30 in Singapore.
    assert_eq!(
        Call::start_from(&f, "+1", at(15)).heard(),
        ["say: Singapore night.", "hangup"]
    );
    // 08:30 UTC: day in both.
    assert_eq!(
        Call::start_from(&f, "+1", at(8)).heard(),
        ["say: Day.", "hangup"]
    );
}

#[test]
fn templates_render_digits_and_skip_empty_text() {
    let f = flow(
        r#"
id: tpl
start: m
nodes:
  m:
    menu: { prompt: "Pick.", options: { "1": s, "2": s } }
  s: { set: { choice: "{{digits}}", both: "{{digits}}-{{vars.choice}}" }, next: say }
  say: { say: "{{vars.nothing}}", next: echo }
  echo: { say: "You chose {{vars.choice|spell}} ({{vars.both}}), calling {{called}}.", next: hangup }
"#,
    );
    let mut call = Call::start(&f);
    assert_eq!(
        call.press("2"),
        ["say: You chose 2 (2-2), calling +6568888888.", "hangup"],
        "a text that renders empty is skipped, not sent"
    );
}

#[test]
fn a_long_chain_continues_where_the_full_callflow_stopped() {
    let mut source = String::from("id: chain\nstart: s0\nnodes:\n");
    for i in 0..20 {
        source.push_str(&format!(
            "  s{i}: {{ play: \"https://example.com/{i}.wav\", next: s{} }}\n",
            i + 1
        ));
    }
    source.push_str("  s20:\n    menu: { prompt: \"Done.\", options: { \"1\": hangup } }\n");
    let f = flow(&source);
    let mut call = Call::start(&f);
    let mut answers = vec![call.heard()];
    while call.state.awaiting == Awaiting::Continue {
        answers.push(describe(&call.event(None, None).callflow));
    }
    let lengths: Vec<usize> = answers.iter().map(Vec::len).collect();
    assert_eq!(lengths, [9, 9, 3]);
    assert_eq!(
        answers[2],
        [
            "play: https://example.com/18.wav",
            "play: https://example.com/19.wav",
            "ask: Done."
        ]
    );
    assert_eq!(call.state.awaiting, Awaiting::Input);
}

#[test]
fn versions_are_kept_for_live_sessions_up_to_a_limit() {
    use switchboard_flow::set::KEPT_VERSIONS;
    let version = |i: usize| flow(&MENU.replace("Main. 1 info", &format!("Main v{i}. 1 info")));
    let mut set = FlowSet::new(vec![version(0)]).unwrap();
    let first = set.latest("t").unwrap().version;
    // Reloading the same source keeps one version, not two.
    set = set.reload(vec![version(0)]).unwrap();
    assert_eq!(set.latest("t").unwrap().version, first);
    for i in 1..=KEPT_VERSIONS {
        set = set.reload(vec![version(i)]).unwrap();
    }
    assert_eq!(
        set.for_session("t", first).unwrap().version,
        first,
        "the oldest kept version still serves its sessions"
    );
    set = set.reload(vec![version(KEPT_VERSIONS + 1)]).unwrap();
    assert!(set.version("t", first).is_none(), "dropped past the limit");
    let latest = set.latest("t").unwrap().version;
    assert_eq!(set.for_session("t", first).unwrap().version, latest);
    // A failed reload leaves the set as it was.
    let broken = MENU.replace("on_fail: failed", "on_fail: nowhere");
    assert!(compile(&broken, "t.yaml").is_err());
    assert!(
        set.reload(vec![version(0), version(1)]).is_err(),
        "two flows with one id"
    );
    assert_eq!(set.latest("t").unwrap().version, latest);
}

/// The older `DTMF_RECEIVED` form of a completion carries no `clientActionId`: the digits are
/// for the node the session waits at.
#[test]
fn a_completion_without_an_action_id_is_for_the_current_node() {
    let f = flow(MENU);
    let mut call = Call::start(&f);
    call.press("2");
    assert_eq!(call.state.node, "sub");
    let seq = call.state.seq;
    let without_id = |state: &mut SessionState, dtmf| {
        step(
            &f,
            state,
            Event::Completed {
                action_id: None,
                dtmf,
                sip_code: None,
            },
            weekday_morning(),
        )
    };
    // 9 at the sub-menu goes back to the main menu.
    let echoed = call.last.client_action_id.clone().unwrap();
    let reply = without_id(&mut call.state, Some("9"));
    assert_eq!(reply.disposition, Disposition::Advanced);
    assert_valid(&reply.callflow);
    assert_eq!(call.state.node, "main");
    assert_eq!(call.state.seq, seq + 1);
    // The same capture reported again as ACTION_COMPLETED, echoing the id answered before:
    // stale, so the latest answer is repeated and the session does not advance twice.
    let again = step(
        &f,
        &mut call.state,
        Event::Completed {
            action_id: Some(echoed.as_str()),
            dtmf: Some("9"),
            sip_code: None,
        },
        weekday_morning(),
    );
    assert_eq!(again.disposition, Disposition::Stale);
    assert_eq!(again.callflow, reply.callflow);
    assert_eq!(call.state.seq, seq + 1);
    // And 1 there is the info option: the id-less event is never taken for a stale one.
    let reply = without_id(&mut call.state, Some("1"));
    assert_eq!(reply.disposition, Disposition::Advanced);
    assert_eq!(
        describe(&reply.callflow),
        ["say: Info one.", "say: Info two.", "hangup"]
    );
}

#[test]
fn a_session_whose_node_is_gone_starts_over() {
    let f = flow(MENU);
    let mut state = SessionState::new(&f, "+6591110000", "+6568888888");
    step(&f, &mut state, Event::Start, weekday_morning());
    state.node = "removed_in_a_reload".to_owned();
    let reply = step(
        &f,
        &mut state,
        Event::Completed {
            action_id: None,
            dtmf: Some("1"),
            sip_code: None,
        },
        weekday_morning(),
    );
    assert_eq!(
        describe(&reply.callflow),
        ["ask: Main. 1 info, 2 sub, 3 agent."]
    );
    assert_eq!(state.node, "main");
}

#[test]
fn a_session_moved_to_the_current_version_records_it() {
    use switchboard_flow::set::KEPT_VERSIONS;
    let version = |i: usize| flow(&MENU.replace("Main. 1 info", &format!("Main v{i}. 1 info")));
    let mut set = FlowSet::new(vec![version(0)]).unwrap();
    let old = Arc::clone(set.latest("t").unwrap());
    let mut state = SessionState::new(&old, "+6591110000", "+6568888888");
    step(&old, &mut state, Event::Start, weekday_morning());
    for i in 1..=KEPT_VERSIONS + 1 {
        set = set.reload(vec![version(i)]).unwrap();
    }
    let current = set.for_session(&state.flow, state.version).unwrap();
    assert_ne!(current.version, old.version, "the old version was dropped");
    let id = state.action_id();
    let reply = step(
        current,
        &mut state,
        Event::Completed {
            action_id: Some(id.as_str()),
            dtmf: Some("2"),
            sip_code: None,
        },
        weekday_morning(),
    );
    assert_eq!(state.version, current.version);
    assert_eq!(
        reply.callflow.client_action_id.as_ref().unwrap().as_str(),
        format!("t:{}:sub:2", current.version)
    );
    // Reverting to the old file now would not pull the session back to it.
    let set = set.reload(vec![version(0)]).unwrap();
    assert_eq!(
        set.for_session(&state.flow, state.version).unwrap().version,
        current.version
    );
}

#[test]
fn a_call_ends_where_the_flow_hung_up_not_at_the_menu_that_led_there() {
    let f = example("restaurant");
    let mut call = Call::start(&f);
    assert_eq!(call.state.ended_at(), "main", "waiting at the menu");
    call.press("3");
    assert_eq!(call.state.awaiting, Awaiting::Nothing);
    assert_eq!(
        call.state.node, "main",
        "the clientActionId still names the menu"
    );
    assert_eq!(call.state.ended_at(), "goodbye");
}
