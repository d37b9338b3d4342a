//! A/B splits, prompts per language and sub-flows, driven through `step_in` and a real
//! [`FlowSet`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use switchboard_flow::{
    Awaiting, Disposition, Event, Flow, FlowSet, SessionState, Signal, compile, step, step_in,
};
use switchboard_protocol::compact::{Reader, Writer};
use switchboard_protocol::{Action, Callflow};

mod common;

use common::{assert_valid, compiled};

/// Every error the flow (or, if it compiles, the set of it and `others`) has, as text.
fn errors(source: &str, others: &[(&str, &str)]) -> Vec<String> {
    let flow = match compile(source, "main.yaml") {
        Ok(c) => c.flow,
        Err(d) => return d.iter().map(ToString::to_string).collect(),
    };
    let mut flows = vec![flow];
    flows.extend(others.iter().map(|(s, f)| compiled(s, f)));
    match FlowSet::new(flows) {
        Ok(_) => Vec::new(),
        Err(d) => d.iter().map(ToString::to_string).collect(),
    }
}

fn now() -> DateTime<Utc> {
    common::weekday_morning()
}

/// A call through a set: each step runs on the flow the state names, as the runtime does.
struct Call {
    set: FlowSet,
    state: SessionState,
    last: Arc<Callflow>,
}

impl Call {
    fn start(set: FlowSet, flow: &str, session: &str) -> (Self, switchboard_flow::Reply) {
        let first = Arc::clone(set.latest(flow).unwrap());
        let mut state = SessionState::new(&first, "+6591110000", "+6568888888");
        state.session = session.to_owned();
        let reply = step_in(&set, &first, &mut state, Event::Start, now());
        assert_valid(&reply.callflow);
        let last = Arc::clone(&reply.callflow);
        (Self { set, state, last }, reply)
    }

    fn event(&mut self, dtmf: Option<&str>) -> switchboard_flow::Reply {
        let flow = Arc::clone(
            self.set
                .for_session(&self.state.flow, self.state.version)
                .unwrap(),
        );
        let id = self
            .last
            .client_action_id
            .as_ref()
            .map(|i| i.as_str().to_owned());
        let reply = step_in(
            &self.set,
            &flow,
            &mut self.state,
            Event::Completed {
                action_id: id.as_deref(),
                dtmf,
                sip_code: None,
            },
            now(),
        );
        assert_valid(&reply.callflow);
        self.last = Arc::clone(&reply.callflow);
        reply
    }

    fn press(&mut self, digits: &str) -> Vec<String> {
        describe(&self.event(Some(digits)).callflow)
    }
}

/// A callflow as short lines, with the voice: `say[voice]: text`, `ask[voice]: prompt`.
fn describe(callflow: &Callflow) -> Vec<String> {
    callflow
        .actions
        .iter()
        .map(|a| match a {
            Action::Say(s) => format!("say[{}]: {}", s.voice_profile, s.text),
            Action::SayAndCapture(c) => format!("ask: {}", c.prompt_message()),
            Action::Hangup => "hangup".to_owned(),
            other => format!("{other:?}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A/B splits

const SPLIT: &str = r#"
id: shop
start: ab
nodes:
  ab:
    split:
      weights: { offer_a: 70, offer_b: 30 }
  offer_a: { say: "Offer A.", next: hangup }
  offer_b: { say: "Offer B.", next: hangup }
"#;

#[test]
fn a_split_sends_sessions_by_weight_and_each_the_same_way_every_time() {
    let flow = compiled(SPLIT, "shop.yaml");
    let (a, b) = (
        flow.node_id("offer_a").unwrap(),
        flow.node_id("offer_b").unwrap(),
    );
    let mut counts = [0usize; 2];
    for i in 0..4000 {
        let session = format!("c0ffee00-1111-4222-8333-{i:012}");
        let mut state = SessionState::new(&flow, "+6591110000", "+6568888888");
        state.session.clone_from(&session);
        let reply = step(&flow, &mut state, Event::Start, now());
        let visits = &reply.trace.visits;
        assert_eq!(visits[0], flow.node_id("ab").unwrap());
        let branch = visits[1];
        assert!(branch == a || branch == b);
        counts[usize::from(branch == b)] += 1;
        // Another replica, stepping a fresh copy of the same session: the same branch.
        let mut again = SessionState::new(&flow, "+6591110000", "+6568888888");
        again.session = session;
        assert_eq!(
            step(&flow, &mut again, Event::Start, now()).trace.visits[1],
            branch
        );
    }
    // 70/30 of 4000: 2800 ± a few standard deviations (29).
    assert!((2650..2950).contains(&counts[0]), "{counts:?}");
}

#[test]
fn split_mistakes_are_reported_with_their_line() {
    let one = "id: s\nstart: ab\nnodes:\n  ab:\n    split:\n      weights: { x: 1 }\n  x: { say: \"X\" }\n";
    assert_eq!(
        errors(one, &[]),
        [
            "main.yaml:6:16: node 'ab': a split needs at least two branches; with one, go to it directly"
        ]
    );
    let bad = "id: s\nstart: ab\nnodes:\n  ab:\n    split:\n      weights: { x: 0, y: 2.5, nowhere: 1 }\n  x: { say: \"X\" }\n  y: { say: \"Y\" }\n";
    let found = errors(bad, &[]);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].starts_with("main.yaml:6:21: node 'ab': the weight of a split branch must be a whole number 1..=1000000, got 0"), "{found:?}");
    assert!(found[1].contains("got 2.5"), "{found:?}");
    assert!(
        found[2].contains("a split branch goes to 'nowhere', which is not a node of this flow"),
        "{found:?}"
    );
    let missing =
        "id: s\nstart: ab\nnodes:\n  ab:\n    split: { weight: { x: 1 } }\n  x: { say: \"X\" }\n";
    let found = errors(missing, &[]);
    assert!(
        found[0].contains("split needs 'weights'")
            && found[1].contains("unknown key 'weight' in split; did you mean 'weights'?"),
        "{found:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Prompts per language

const LANGUAGES: &str = r#"
id: hola
language: { var: lang, default: en }
defaults:
  voice: en-GB-Susan-Apollo
  voices:
    en: en-US-JennyNeural
    es: { voice: es-ES-ElviraNeural, speed: 0.9 }
start: choose
nodes:
  choose:
    menu:
      prompt: { en: "For English press 1.", es: "Para español oprima 2." }
      options: { "1": english, "2": spanish, "3": french }
  english: { set: { lang: en }, next: main }
  spanish: { set: { lang: es }, next: main }
  french: { set: { lang: fr }, next: main }
  main:
    menu:
      prompt: { en: "Welcome. Press 1.", es: "Bienvenido. Oprima 1." }
      invalid: { en: "Sorry." }
      options: { "1": bye }
  bye:
    say: "{{caller}}"
    next: fixed
  fixed:
    say: { en: "Goodbye.", es: "Adiós." }
    voice: en-AU-NatashaNeural
    next: hangup
"#;

fn language_call(key: &str) -> Vec<Vec<String>> {
    let set = FlowSet::new(vec![compiled(LANGUAGES, "hola.yaml")]).unwrap();
    let (mut call, first) = Call::start(set, "hola", "s");
    let mut heard = vec![describe(&first.callflow)];
    heard.push(call.press(key));
    heard.push(call.press("9"));
    heard.push(call.press("1"));
    heard
}

#[test]
fn every_text_is_spoken_in_the_callers_language_and_its_voice() {
    let spanish = language_call("2");
    // Before a choice: the default language, whose voice the menu speaks in.
    assert_eq!(spanish[0], ["ask: For English press 1."]);
    assert_eq!(spanish[1], ["ask: Bienvenido. Oprima 1."]);
    // `invalid` has no Spanish text: the default language's, in the Spanish voice.
    assert_eq!(spanish[2][0], "say[es-ES-ElviraNeural]: Sorry.");
    assert_eq!(
        spanish[3],
        [
            "say[es-ES-ElviraNeural]: +6591110000",
            // A node's own voice speaks every language.
            "say[en-AU-NatashaNeural]: Adiós.",
            "hangup"
        ]
    );
    let english = language_call("1");
    assert_eq!(english[2][0], "say[en-US-JennyNeural]: Sorry.");
    // A code the flow does not speak falls back to the default language.
    let french = language_call("3");
    assert_eq!(french[1], ["ask: Welcome. Press 1."]);
    assert_eq!(french[2][0], "say[en-US-JennyNeural]: Sorry.");
}

#[test]
fn the_menu_prompt_uses_the_language_s_voice_and_speed() {
    let set = FlowSet::new(vec![compiled(LANGUAGES, "hola.yaml")]).unwrap();
    let (mut call, _) = Call::start(set, "hola", "s");
    let reply = call.event(Some("2"));
    let Some(Action::SayAndCapture(capture)) = reply.callflow.actions.last() else {
        panic!("{:?}", reply.callflow);
    };
    let json = serde_json::to_value(capture).unwrap();
    assert_eq!(json["voiceProfile"], "es-ES-ElviraNeural", "{json}");
    assert_eq!(json["speed"], 0.9, "{json}");
}

#[test]
fn language_mistakes_are_reported_with_their_line() {
    let no_languages = "id: a\nstart: m\nnodes:\n  m: { say: { en: \"Hi\" } }\n";
    assert_eq!(
        errors(no_languages, &[]),
        [
            "main.yaml:4:13: node 'm': say is given per language, but the flow declares no languages; add `language: { var: lang, default: en }` and `defaults.voices`"
        ]
    );
    let head = "id: a\nlanguage: { var: lang, default: en }\ndefaults:\n  voices: { en: en-US-JennyNeural, es: es-ES-ElviraNeural }\nstart: m\nnodes:\n";
    let unknown = format!("{head}  m: {{ say: {{ en: \"Hi\", fr: \"Salut\" }} }}\n");
    assert_eq!(
        errors(&unknown, &[]),
        [
            "main.yaml:7:25: node 'm': unknown language 'fr' in say; the flow speaks en, es (defaults.voices)"
        ]
    );
    let uncovered = format!("{head}  m: {{ say: {{ es: \"Hola\" }} }}\n");
    assert_eq!(
        errors(&uncovered, &[]),
        [
            "main.yaml:7:13: node 'm': say has no text in 'en', the default language; every text per language must cover it"
        ]
    );
    let bad_default = "id: a\nlanguage: { var: lang, default: de }\ndefaults:\n  voices: { en: en-US-JennyNeural }\nstart: m\nnodes:\n  m: { say: Hi }\n";
    assert!(errors(bad_default, &[])[0].starts_with(
        "main.yaml:2:33: the default language 'de' has no voice in defaults.voices (which lists en)"
    ));
    let no_voices =
        "id: a\nlanguage: { var: lang, default: en }\nstart: m\nnodes:\n  m: { say: Hi }\n";
    assert!(
        errors(no_voices, &[])[0].contains("needs the voice of each language in `defaults.voices`")
    );
}

// ---------------------------------------------------------------------------------------------
// Sub-flows

const CALLER: &str = r#"
id: support
start: main
nodes:
  main:
    menu:
      prompt: "Support. 1 to check your PIN."
      options: { "1": check }
  check:
    subflow: { flow: verify, start: pin }
    next: after
  after: { say: "Your PIN was {{vars.pin}}.", next: hangup }
"#;

const VERIFY: &str = r#"
id: verify
start: intro
nodes:
  intro: { say: "Verification line.", next: pin }
  pin:
    capture: { prompt: "Enter your PIN.", var: pin, min_digits: 4, max_digits: 4 }
    next: thanks
  thanks: { say: "Thank you.", next: return }
"#;

fn support_set() -> FlowSet {
    FlowSet::new(vec![
        compiled(CALLER, "support.yaml"),
        compiled(VERIFY, "verify.yaml"),
    ])
    .unwrap()
}

#[test]
fn a_subflow_runs_and_returns_to_the_calling_node_s_next() {
    let (mut call, _) = Call::start(support_set(), "support", "s");
    let reply = call.event(Some("1"));
    assert_eq!(describe(&reply.callflow), ["ask: Enter your PIN."]);
    assert_eq!(call.state.flow, "verify");
    assert_eq!(call.state.calls.len(), 1);
    assert_eq!(call.state.calls[0].node, "check");
    // The action id names the sub-flow: any replica resolves the flow to step.
    assert!(
        reply
            .callflow
            .client_action_id
            .as_ref()
            .unwrap()
            .as_str()
            .starts_with("verify:"),
        "{:?}",
        reply.callflow.client_action_id
    );
    // The trace says where the step changed flows.
    assert_eq!(reply.trace.flows.len(), 1);
    assert_eq!(reply.trace.flows[0].flow, "verify");
    let reply = call.event(Some("1234"));
    assert_eq!(
        describe(&reply.callflow),
        [
            "say[en-US-BenjaminRUS]: Thank you.",
            "say[en-US-BenjaminRUS]: Your PIN was 1234.",
            "hangup"
        ]
    );
    assert_eq!(call.state.flow, "support");
    assert!(call.state.calls.is_empty());
    assert_eq!(call.state.awaiting, Awaiting::Nothing);
    let names: Vec<String> = reply
        .trace
        .visited(
            call.set.for_session("verify", call.state.version).unwrap(),
            &call.set,
        )
        .map(|(f, id)| format!("{}:{}", f.id, f.node(id).name))
        .collect();
    assert_eq!(names, ["verify:thanks", "support:after"]);
}

#[test]
fn a_call_inside_a_subflow_survives_a_reload_of_both_flows() {
    let (mut call, _) = Call::start(support_set(), "support", "s");
    call.event(Some("1"));
    let (old_verify, old_support) = (
        call.set.latest("verify").unwrap().version,
        call.set.latest("support").unwrap().version,
    );
    // Both flows change: the PIN node is renamed and the caller's `after` says something else.
    let reloaded = call
        .set
        .reload(vec![
            compiled(
                &CALLER
                    .replace("Your PIN was", "Noted:")
                    .replace("start: pin", "start: code"),
                "support.yaml",
            ),
            compiled(
                &VERIFY
                    .replace("pin:", "code:")
                    .replace("next: pin", "next: code")
                    .replace("start: pin", "start: code"),
                "verify.yaml",
            ),
        ])
        .unwrap_or_else(|d| panic!("{d:?}"));
    assert_ne!(reloaded.latest("verify").unwrap().version, old_verify);
    call.set = reloaded;
    // The stale event is answered the same; the call is still on the old sub-flow version.
    let reply = call.event(Some("1234"));
    assert_eq!(reply.disposition, Disposition::Advanced);
    assert_eq!(
        describe(&reply.callflow)[1],
        "say[en-US-BenjaminRUS]: Your PIN was 1234.",
        "returned to the version the call was on"
    );
    assert_eq!(call.state.version, old_support);
}

#[test]
fn the_call_stack_survives_the_compact_and_json_encodings() {
    let (mut call, _) = Call::start(support_set(), "support", "s");
    call.event(Some("1"));
    call.state.menus = vec!["inner".to_owned()];
    call.state.calls[0].menus = vec!["main".to_owned()];
    let mut out = Writer::with_capacity(256);
    call.state.write_compact(&mut out);
    let bytes = out.into_bytes();
    let mut input = Reader::new(&bytes);
    let mut decoded = SessionState::read_compact(&mut input).unwrap();
    input.finish().unwrap();
    // The session id is not stored: the store's key is the id.
    decoded.session.clone_from(&call.state.session);
    assert_eq!(decoded, call.state);
    let json = serde_json::to_string(&call.state).unwrap();
    let mut from_json: SessionState = serde_json::from_str(&json).unwrap();
    from_json.session.clone_from(&call.state.session);
    assert_eq!(from_json, call.state);

    // A state with no calls encodes exactly as before (older replicas read it), and a record
    // written before sub-flows existed reads with none.
    let (call, _) = Call::start(support_set(), "support", "s");
    let mut out = Writer::with_capacity(256);
    call.state.write_compact(&mut out);
    let bytes = out.into_bytes();
    let json = serde_json::to_value(&call.state).unwrap();
    assert!(json.get("calls").is_none(), "{json}");
    let mut input = Reader::new(&bytes);
    assert!(
        SessionState::read_compact(&mut input)
            .unwrap()
            .calls
            .is_empty()
    );
    // An unknown section is refused, not skipped.
    let mut bad = bytes.clone();
    bad.push(9);
    assert!(
        SessionState::read_compact(&mut Reader::new(&bad))
            .unwrap_err()
            .to_string()
            .contains("state section 9")
    );
}

#[test]
fn return_outside_a_subflow_ends_the_call_and_a_step_without_the_set_apologises() {
    let alone = compiled(VERIFY, "verify.yaml");
    let mut state = SessionState::new(&alone, "+6591110000", "+6568888888");
    step(&alone, &mut state, Event::Start, now());
    let id = state
        .last_reply
        .as_ref()
        .unwrap()
        .client_action_id
        .clone()
        .unwrap();
    let reply = step(
        &alone,
        &mut state,
        Event::Completed {
            action_id: Some(id.as_str()),
            dtmf: Some("1234"),
            sip_code: None,
        },
        now(),
    );
    assert_eq!(
        describe(&reply.callflow),
        ["say[en-US-BenjaminRUS]: Thank you.", "hangup"]
    );

    let caller = compiled(CALLER, "support.yaml");
    let mut state = SessionState::new(&caller, "+6591110000", "+6568888888");
    step(&caller, &mut state, Event::Start, now());
    let id = state
        .last_reply
        .as_ref()
        .unwrap()
        .client_action_id
        .clone()
        .unwrap();
    let reply = step(
        &caller,
        &mut state,
        Event::Completed {
            action_id: Some(id.as_str()),
            dtmf: Some("1"),
            sip_code: None,
        },
        now(),
    );
    assert!(
        reply
            .trace
            .signals
            .contains(&Signal::Failed(caller.node_id("check").unwrap()))
    );
    assert_eq!(state.awaiting, Awaiting::Nothing);
}

#[test]
fn subflow_mistakes_are_reported_at_the_calling_node() {
    let unknown = errors(
        CALLER,
        &[(
            VERIFY.replace("id: verify", "id: verifi").as_str(),
            "verify.yaml",
        )],
    );
    assert_eq!(
        unknown,
        [
            "main.yaml:10:22: node 'check': subflow runs flow 'verify', which is not loaded (loaded: support, verifi); check its id or add its file"
        ]
    );
    let no_node = errors(
        &CALLER.replace("start: pin", "start: pim"),
        &[(VERIFY, "verify.yaml")],
    );
    assert_eq!(
        no_node,
        [
            "main.yaml:10:37: node 'check': subflow starts at node 'pim', which flow 'verify' (verify.yaml) does not have"
        ]
    );
    // verify calls support, which calls verify: unbounded.
    let recursive = VERIFY.replace(
        "thanks: { say: \"Thank you.\", next: return }",
        "thanks: { subflow: { flow: support }, next: return }",
    );
    let found = errors(CALLER, &[(recursive.as_str(), "verify.yaml")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("which this call is already inside: the recursion would be unbounded"),
        "{found:?}"
    );
    // A flow calling a node of itself is fine as long as it cannot recurse.
    let subroutine = "id: s\nstart: main\nnodes:\n  main: { subflow: { flow: s, start: hi }, next: bye }\n  hi: { say: Hi, next: return }\n  bye: { say: Bye }\n";
    assert_eq!(errors(subroutine, &[]), Vec::<String>::new());
}

#[test]
fn fetch_nodes_are_refused_in_flows_that_run_or_are_run_as_sub_flows() {
    let fetch = "  look: { fetch: { url: \"http://127.0.0.1:9/x\" }, next: bye, on_error: bye }\n";
    let caller = format!(
        "id: c\nstart: main\nnodes:\n  main: {{ subflow: {{ flow: d }}, next: look }}\n{fetch}  bye: {{ say: Bye }}\n"
    );
    let callee = "id: d\nstart: hi\nnodes:\n  hi: { say: Hi, next: return }\n";
    let found: Vec<String> = FlowSet::new(vec![
        compiled(&caller, "c.yaml"),
        compiled(callee, "d.yaml"),
    ])
    .unwrap_err()
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("c.yaml:5:3: node 'look': flow 'c' runs sub-flows, and fetch nodes"),
        "{found:?}"
    );
    let callee_fetching =
        format!("id: d\nstart: look\nnodes:\n{fetch}  bye: {{ say: Bye, next: return }}\n");
    let caller = "id: c\nstart: main\nnodes:\n  main: { subflow: { flow: d }, next: bye }\n  bye: { say: Bye }\n";
    let found: Vec<String> = FlowSet::new(vec![
        compiled(caller, "c.yaml"),
        compiled(&callee_fetching, "d.yaml"),
    ])
    .unwrap_err()
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("flow 'd' is run as a sub-flow"),
        "{found:?}"
    );
    // Alone, the fetching flow loads.
    assert!(
        FlowSet::new(vec![compiled(
            &callee_fetching.replace("next: return", "next: hangup"),
            "d.yaml"
        )])
        .is_ok()
    );
}

#[test]
fn calls_nesting_deeper_than_the_limit_are_refused() {
    // f0 calls f1 calls ... calls f{n}.
    let chain = |n: usize| -> Vec<Flow> {
        (0..=n)
            .map(|i| {
                let body = if i < n {
                    format!(
                        "  a: {{ subflow: {{ flow: f{} }}, next: b }}\n  b: {{ say: Done }}\n",
                        i + 1
                    )
                } else {
                    "  a: { say: Deep, next: return }\n".to_owned()
                };
                compiled(
                    &format!("id: f{i}\nstart: a\nnodes:\n{body}"),
                    &format!("f{i}.yaml"),
                )
            })
            .collect()
    };
    assert!(FlowSet::new(chain(8)).is_ok());
    let found: Vec<String> = FlowSet::new(chain(9))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "f0.yaml:4:3: node 'a': sub-flow calls from here nest 9 deep (f0 → f1 → f2 → f3 → f4 → f5 → f6 → f7 → f8 → f9); at most 8 may nest"
        ]
    );
}
