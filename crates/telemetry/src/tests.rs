//! A scripted day on `flows/restaurant.yaml`: real `step` calls make the answers, and the
//! exposition and the report must show exactly what the script did.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use switchboard_flow::{Disposition, Event, Flow, FlowSet, SessionState, compile, step};
use switchboard_protocol::{Action, Callflow, SessionStatus};
use switchboard_runtime::{Answer, AnswerKind, Counters, Ended, RuntimeError};

use super::*;

const RESTAURANT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../flows/restaurant.yaml");
const CALLER: &str = "+6591110000";
const CALLED: &str = "+6568888888";

fn build() -> BuildInfo {
    BuildInfo {
        version: "0.1.0".to_owned(),
        commit: "abc1234".to_owned(),
    }
}

fn telemetry() -> Arc<Telemetry> {
    Telemetry::install(build()).expect("telemetry installs")
}

fn restaurant() -> FlowSet {
    match switchboard_runtime::catalog::load_set(&[PathBuf::from(RESTAURANT)]) {
        Ok((set, _warnings)) => set,
        Err(diagnostics) => panic!("restaurant.yaml does not load: {diagnostics:?}"),
    }
}

/// One call on a flow, driven through `step` as the runtime drives it.
struct Call {
    flow: Arc<Flow>,
    state: SessionState,
}

impl Call {
    fn new(flows: &FlowSet) -> Self {
        let flow = Arc::clone(
            flows
                .for_number(CALLED)
                .expect("restaurant claims its number"),
        );
        let state = SessionState::new(&flow, CALLER, CALLED);
        Self { flow, state }
    }

    fn start(&mut self) -> Answer {
        self.answer(Event::Start, AnswerKind::Started)
    }

    fn keys(&mut self, dtmf: Option<&str>) -> Answer {
        let action_id = self.last_action_id();
        let event = Event::Completed {
            action_id: action_id.as_deref(),
            dtmf,
            sip_code: None,
        };
        self.answer(event, AnswerKind::Advanced)
    }

    fn transfer_ended(&mut self, sip_code: u16) -> Answer {
        let action_id = self.last_action_id();
        let event = Event::Completed {
            action_id: action_id.as_deref(),
            dtmf: None,
            sip_code: Some(sip_code),
        };
        self.answer(event, AnswerKind::Advanced)
    }

    /// A late delivery echoing the first answer's id: `step` calls it stale.
    fn late(&mut self, first_action_id: &str) -> Answer {
        let event = Event::Completed {
            action_id: Some(first_action_id),
            dtmf: Some("1"),
            sip_code: None,
        };
        self.answer(event, AnswerKind::Advanced)
    }

    fn last_action_id(&self) -> Option<String> {
        let last = self.state.last_reply.as_ref()?;
        last.client_action_id.as_ref().map(|id| id.to_string())
    }

    fn answer(&mut self, event: Event<'_>, kind: AnswerKind) -> Answer {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap();
        let reply = step(&self.flow, &mut self.state, event, now);
        let stale = reply.disposition == Disposition::Stale;
        Answer {
            body: Default::default(),
            kind: if stale { AnswerKind::Stale } else { kind },
            flow: Some(Arc::clone(&self.flow)),
            trace: if stale {
                Default::default()
            } else {
                reply.trace
            },
            callflow: Some(reply.callflow),
        }
    }

    fn ended(&self, status: SessionStatus) -> Ended {
        Ended {
            flow: Some(self.state.flow.clone()),
            node: Some(self.state.node.clone()),
            status,
        }
    }
}

fn actions(answer: &Answer) -> Vec<&'static str> {
    let callflow = answer.callflow.as_ref().expect("a callflow");
    callflow
        .actions
        .iter()
        .map(|a| ACTIONS[action_index(a)])
        .collect()
}

const MS: Duration = Duration::from_micros(300);

/// Plays the script on `telemetry`. Every answer's actions are asserted on the way, so the
/// expected counts below follow from what the flow really did.
fn play_script(telemetry: &Telemetry, flows: &FlowSet) {
    use EventKind::{ActionCompleted, CallReceived};
    let t = telemetry;

    // A: hours, then goodbye.
    let mut a = Call::new(flows);
    let first = a.start();
    assert_eq!(actions(&first), ["sayAndCapture"]);
    t.record_answer(CallReceived, &first, MS);
    let first_id = a.last_action_id().unwrap();
    let hours = a.keys(Some("3"));
    assert_eq!(actions(&hours), ["say", "say", "hangup"]);
    t.record_answer(ActionCompleted, &hours, MS);
    // A late copy of the first ACTION_COMPLETED: stale, nothing advances.
    let late = a.late(&first_id);
    assert_eq!(late.kind, AnswerKind::Stale);
    t.record_answer(ActionCompleted, &late, MS);
    t.record_ended(&a.ended(SessionStatus::Completed));

    // B: silent twice at the main menu (max_no_input 2): goodbye.
    let mut b = Call::new(flows);
    t.record_answer(CallReceived, &b.start(), MS);
    let silence = b.keys(None);
    assert_eq!(actions(&silence), ["say", "sayAndCapture"]);
    t.record_answer(ActionCompleted, &silence, MS);
    let gone = b.keys(None);
    assert_eq!(actions(&gone), ["say", "hangup"]);
    t.record_answer(ActionCompleted, &gone, MS);
    t.record_ended(&b.ended(SessionStatus::Completed));

    // C: a wrong key, reservations, a refused party size, then 4 guests and a busy host.
    let mut c = Call::new(flows);
    t.record_answer(CallReceived, &c.start(), MS);
    let wrong = c.keys(Some("7"));
    assert_eq!(actions(&wrong), ["say", "sayAndCapture"]);
    t.record_answer(ActionCompleted, &wrong, MS);
    t.record_answer(ActionCompleted, &c.keys(Some("1")), MS);
    t.record_answer(ActionCompleted, &c.keys(Some("1")), MS);
    let refused = c.keys(Some("99"));
    assert_eq!(actions(&refused), ["say", "sayAndCapture"]);
    t.record_answer(ActionCompleted, &refused, MS);
    let transfer = c.keys(Some("4"));
    assert_eq!(actions(&transfer), ["say", "makeCall"]);
    t.record_answer(ActionCompleted, &transfer, MS);
    let busy = c.transfer_ended(486);
    assert_eq!(actions(&busy), ["say", "say", "hangup"]);
    t.record_answer(ActionCompleted, &busy, MS);
    t.record_ended(&c.ended(SessionStatus::Completed));

    // D: straight to a representative, who answers; after the transfer the flow hangs up.
    let mut d = Call::new(flows);
    t.record_answer(CallReceived, &d.start(), MS);
    let connect = d.keys(Some("2"));
    assert_eq!(actions(&connect), ["makeCall"]);
    t.record_answer(ActionCompleted, &connect, MS);
    let answered = d.transfer_ended(200);
    assert_eq!(actions(&answered), ["hangup"]);
    t.record_answer(ActionCompleted, &answered, MS);
    t.record_ended(&d.ended(SessionStatus::Completed));

    // E: hangs up at the main menu without a key.
    let mut e = Call::new(flows);
    t.record_answer(CallReceived, &e.start(), MS);
    t.record_ended(&e.ended(SessionStatus::Canceled));

    // The runtime's own answers: a duplicate delivery, an unrouted call, a resumed session and
    // one that could not be, and a 503.
    let duplicate = Answer {
        body: Default::default(),
        kind: AnswerKind::Duplicate,
        flow: Some(Arc::clone(&a.flow)),
        trace: Default::default(),
        callflow: None,
    };
    t.record_answer(ActionCompleted, &duplicate, MS);
    let canned = Callflow {
        client_action_id: None,
        actions: vec![Action::Hangup],
    };
    let unrouted = Answer {
        body: Default::default(),
        kind: AnswerKind::Unrouted,
        flow: None,
        trace: Default::default(),
        callflow: Some(std::sync::Arc::new(canned.clone())),
    };
    t.record_answer(CallReceived, &unrouted, MS);
    let mut resumed = e.keys(Some("3"));
    resumed.kind = AnswerKind::Resumed;
    t.record_answer(ActionCompleted, &resumed, MS);
    let unresolved = Answer {
        kind: AnswerKind::Unresolved,
        ..unrouted.clone()
    };
    t.record_answer(ActionCompleted, &unresolved, MS);
    t.record_failure(
        ActionCompleted,
        &RuntimeError::Busy,
        Duration::from_millis(2),
    );
    t.record_ended(&Ended {
        flow: None,
        node: None,
        status: SessionStatus::Completed,
    });
    t.record_ended(&Ended {
        flow: Some("restaurant".to_owned()),
        node: Some("connect".to_owned()),
        status: SessionStatus::Other("WEIRD".to_owned()),
    });
}

/// The exposition's samples: `name{labels}` to value.
fn samples(exposition: &str) -> BTreeMap<String, f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

fn assert_samples(exposition: &str, expected: &[(&str, f64)]) {
    let samples = samples(exposition);
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(series, value)| samples.get(*series) != Some(value))
        .map(|(series, value)| {
            format!("{series}: expected {value}, got {:?}", samples.get(*series))
        })
        .collect();
    assert!(wrong.is_empty(), "{}\n\n{exposition}", wrong.join("\n"));
}

#[test]
fn the_exposition_counts_exactly_what_the_script_did() {
    let flows = restaurant();
    let t = telemetry();
    t.on_flows(&flows);
    play_script(&t, &flows);
    let r = |node: &str| format!("{{flow=\"restaurant\",node=\"{node}\"}}");
    let visits = |node: &str| format!("switchboard_node_visits_total{}", r(node));
    let expected: Vec<(String, f64)> = vec![
        // main: A, B, C, D, E start there; promo never returns to it.
        (visits("main"), 5.0),
        (visits("hours"), 2.0), // A, and E after resuming
        (visits("goodbye"), 4.0), // A, B, C (after sorry), E
        (visits("reservations"), 1.0),
        (visits("booking_size"), 1.0),
        (visits("booking_confirm"), 1.0),
        (visits("connect"), 2.0),
        (visits("sorry"), 1.0),
        (visits("promo"), 0.0),
        (format!("switchboard_menu_invalid_total{}", r("main")), 1.0),
        (format!("switchboard_menu_invalid_total{}", r("booking_size")), 1.0),
        (format!("switchboard_menu_no_input_total{}", r("main")), 2.0),
        (format!("switchboard_counters_exhausted_total{}", r("main")), 1.0),
        (format!("switchboard_captures_total{}", r("booking_size")), 1.0),
        // Where calls were when they ended: the last node that waited.
        (format!("switchboard_node_exits_total{}", r("main")), 3.0), // A, B, E
        (format!("switchboard_node_exits_total{}", r("connect")), 3.0), // C, D, WEIRD
        (format!("switchboard_node_exits_total{}", r("goodbye")), 0.0),
        ("switchboard_transfers_total{flow=\"restaurant\",result=\"busy\"}".into(), 1.0),
        ("switchboard_transfers_total{flow=\"restaurant\",result=\"answered\"}".into(), 1.0),
        ("switchboard_transfers_total{flow=\"restaurant\",result=\"no_answer\"}".into(), 0.0),
        ("switchboard_sessions_started_total{flow=\"restaurant\"}".into(), 5.0),
        ("switchboard_sessions_ended_total{flow=\"restaurant\",status=\"COMPLETED\"}".into(), 4.0),
        ("switchboard_sessions_ended_total{flow=\"restaurant\",status=\"CANCELED\"}".into(), 1.0),
        ("switchboard_sessions_ended_total{flow=\"restaurant\",status=\"OTHER\"}".into(), 1.0),
        ("switchboard_sessions_ended_total{flow=\"\",status=\"COMPLETED\"}".into(), 1.0),
        ("switchboard_sessions_ended_total{flow=\"\",status=\"BUSY\"}".into(), 0.0),
        ("switchboard_deliveries_repeated_total{kind=\"duplicate\"}".into(), 1.0),
        ("switchboard_deliveries_repeated_total{kind=\"stale\"}".into(), 1.0),
        ("switchboard_calls_unrouted_total".into(), 1.0),
        ("switchboard_sessions_resumed_total{result=\"resumed\"}".into(), 1.0),
        ("switchboard_sessions_resumed_total{result=\"unresolved\"}".into(), 1.0),
        // New answers only (not the stale or duplicate repeats): 5 starts; A 2 says + hangup;
        // B say+sAC, say+hangup; C say+sAC, sAC, sAC, say+sAC, say+makeCall, 2 says+hangup;
        // D makeCall, hangup; E resumed 2 says+hangup; unrouted and unresolved 1 hangup each.
        ("switchboard_callflow_actions_total{action=\"sayAndCapture\"}".into(), 10.0),
        ("switchboard_callflow_actions_total{action=\"say\"}".into(), 11.0),
        ("switchboard_callflow_actions_total{action=\"makeCall\"}".into(), 2.0),
        ("switchboard_callflow_actions_total{action=\"hangup\"}".into(), 7.0),
        ("switchboard_callflow_actions_total{action=\"playFile\"}".into(), 0.0),
        (
            "switchboard_webhook_duration_seconds_count{event=\"call_received\",outcome=\"started\"}".into(),
            5.0,
        ),
        (
            "switchboard_webhook_duration_seconds_count{event=\"action_completed\",outcome=\"advanced\"}".into(),
            11.0,
        ),
        (
            "switchboard_webhook_duration_seconds_count{event=\"action_completed\",outcome=\"busy\"}".into(),
            1.0,
        ),
        // 300µs lands in the 500µs bucket, not the 250µs one; the 2ms failure in 2.5ms.
        (
            "switchboard_webhook_duration_seconds_bucket{event=\"call_received\",outcome=\"started\",le=\"0.00025\"}".into(),
            0.0,
        ),
        (
            "switchboard_webhook_duration_seconds_bucket{event=\"call_received\",outcome=\"started\",le=\"0.0005\"}".into(),
            5.0,
        ),
        (
            "switchboard_webhook_duration_seconds_bucket{event=\"action_completed\",outcome=\"busy\",le=\"0.001\"}".into(),
            0.0,
        ),
        (
            "switchboard_webhook_duration_seconds_bucket{event=\"action_completed\",outcome=\"busy\",le=\"0.0025\"}".into(),
            1.0,
        ),
        ("switchboard_flows_loaded".into(), 1.0),
        ("switchboard_build_info{version=\"0.1.0\",commit=\"abc1234\"}".into(), 1.0),
    ];
    let expected: Vec<(&str, f64)> = expected.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    assert_samples(&t.render(), &expected);
}

#[test]
fn the_report_counts_exactly_what_the_script_did() {
    let flows = restaurant();
    let t = telemetry();
    t.on_flows(&flows);
    play_script(&t, &flows);
    let report = t.report("restaurant").expect("restaurant is loaded");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["flow"], "restaurant");
    assert_eq!(
        json["version"],
        flows.latest("restaurant").unwrap().version.to_string()
    );
    assert_eq!(json["sessions_started"], 5);
    assert_eq!(json["sessions_ended"], 6);
    assert_eq!(
        json["outcomes"],
        serde_json::json!({
            "COMPLETED": 4, "BUSY": 0, "NO_ANSWER": 0, "FAILED": 0, "CANCELED": 1, "ERROR": 0,
            "COMPLETED_UNSUBSCRIBED": 0, "COMPLETED_UNSUB_ERROR": 0, "UNSUBSCRIBED_CONTACT": 0,
            "OTHER": 1
        })
    );
    assert_eq!(
        json["transfers"],
        serde_json::json!({ "answered": 1, "busy": 1, "no_answer": 0, "failed": 0 })
    );
    let row = |node: &str| -> Vec<u64> {
        let n = report.nodes.iter().find(|n| n.node == node).unwrap();
        vec![
            n.visits,
            n.exits,
            n.invalid,
            n.no_input,
            n.exhausted,
            n.captured,
            n.failed,
        ]
    };
    // visits, exits, invalid, no_input, exhausted, captured, failed
    assert_eq!(row("main"), [5, 3, 1, 2, 1, 0, 0]);
    assert_eq!(row("booking_size"), [1, 0, 1, 0, 0, 1, 0]);
    assert_eq!(row("connect"), [2, 3, 0, 0, 0, 0, 0]);
    assert_eq!(row("goodbye"), [4, 0, 0, 0, 0, 0, 0]);
    assert_eq!(row("promo"), [0, 0, 0, 0, 0, 0, 0]);
    let order: Vec<&str> = report.nodes.iter().map(|n| n.node.as_str()).collect();
    let file_order: Vec<&str> = flows
        .latest("restaurant")
        .unwrap()
        .nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(order, file_order);
    assert!(report.nodes.iter().all(|n| n.current));
    assert_eq!(json["nodes"][0]["kind"], "menu");
    assert!(
        t.report("bank").is_none(),
        "a flow never loaded has no report"
    );
}

#[test]
fn a_reload_keeps_the_figures_of_nodes_that_keep_their_names() {
    let flows = restaurant();
    let t = telemetry();
    t.on_flows(&flows);
    let mut old_call = Call::new(&flows);
    t.record_answer(EventKind::CallReceived, &old_call.start(), MS);

    // v2 drops `promo` (and option 4) and adds `faq`.
    let source = std::fs::read_to_string(RESTAURANT)
        .unwrap()
        .replace(", \"4\": promo }", ", \"5\": faq }")
        .replace(
            "  promo:\n    play: \"https://example.com/promo.mp3\"\n    repeat: 1\n    next: main\n",
            "  faq:\n    say: \"Parking is free.\"\n    next: main\n",
        );
    let v2 = compile(&source, "restaurant.yaml")
        .expect("v2 compiles")
        .flow;
    let reloaded = flows.reload(vec![v2]).expect("v2 reloads");
    t.on_flows(&reloaded);
    t.record_reload(true);

    // The call that started on v1 goes on on v1; a new call runs v2.
    t.record_answer(EventKind::ActionCompleted, &old_call.keys(Some("4")), MS);
    let mut new_call = Call::new(&reloaded);
    assert_ne!(new_call.flow.version, old_call.flow.version);
    t.record_answer(EventKind::CallReceived, &new_call.start(), MS);
    t.record_answer(EventKind::ActionCompleted, &new_call.keys(Some("5")), MS);

    let report = t.report("restaurant").unwrap();
    assert_eq!(report.version, new_call.flow.version.to_string());
    let find = |name: &str| report.nodes.iter().find(|n| n.node == name).unwrap();
    // main: v1 start, v1 back from promo, v2 start, v2 back from faq.
    assert_eq!(find("main").visits, 4);
    assert_eq!((find("promo").visits, find("promo").current), (1, false));
    assert_eq!((find("faq").visits, find("faq").current), (1, true));
    assert_eq!(
        report.nodes.last().unwrap().node,
        "promo",
        "old nodes come last"
    );
    assert_eq!(report.sessions_started, 2);
    assert_samples(
        &t.render(),
        &[
            (
                "switchboard_node_visits_total{flow=\"restaurant\",node=\"main\"}",
                4.0,
            ),
            (
                "switchboard_node_visits_total{flow=\"restaurant\",node=\"promo\"}",
                1.0,
            ),
            ("switchboard_flow_reloads_total{result=\"ok\"}", 1.0),
            ("switchboard_flow_reloads_total{result=\"error\"}", 0.0),
        ],
    );
}

#[test]
fn a_version_no_reload_announced_is_registered_on_first_use() {
    let flows = restaurant();
    let t = telemetry();
    // No on_flows: the answer's flow is registered by the first answer that names it.
    let mut call = Call::new(&flows);
    t.record_answer(EventKind::CallReceived, &call.start(), MS);
    t.record_answer(EventKind::ActionCompleted, &call.keys(Some("3")), MS);
    let report = t.report("restaurant").unwrap();
    assert_eq!(report.sessions_started, 1);
    assert_eq!(report.nodes.iter().map(|n| n.visits).sum::<u64>(), 3);
}

#[test]
fn runtime_counters_gauges_and_refusals_are_exported() {
    let t = telemetry();
    let counters = Counters::default();
    counters.passivated.store(7, Ordering::Relaxed);
    counters.rehydrated.store(3, Ordering::Relaxed);
    counters.conflicts.store(2, Ordering::Relaxed);
    counters.mailbox_full.store(5, Ordering::Relaxed);
    t.set_live_sessions(42);
    t.set_shard_actors(1, 20);
    t.set_shard_actors(0, 22);
    t.set_shard_actors(1, 21);
    t.set_shard_actors(MAX_SHARDS, 1);
    for status in [200, 200, 503, 401, 1000] {
        t.record_http(status, MS);
    }
    t.record_auth_failure("wrong_secret");
    t.record_auth_failure("wrong_secret");
    t.record_bad_request("invalid_json");
    t.record_status_event();
    t.record_reload(false);
    let exposition = t.render_with(&counters);
    assert_samples(
        &exposition,
        &[
            ("switchboard_sessions_passivated_total", 7.0),
            ("switchboard_sessions_rehydrated_total", 3.0),
            ("switchboard_store_conflicts_total", 2.0),
            ("switchboard_mailbox_full_total", 5.0),
            ("switchboard_sessions_live", 42.0),
            ("switchboard_shard_actors{shard=\"0\"}", 22.0),
            ("switchboard_shard_actors{shard=\"1\"}", 21.0),
            ("switchboard_http_requests_total{status=\"200\"}", 2.0),
            ("switchboard_http_requests_total{status=\"503\"}", 1.0),
            ("switchboard_http_requests_total{status=\"401\"}", 1.0),
            ("switchboard_http_requests_total{status=\"599\"}", 1.0),
            ("switchboard_http_request_duration_seconds_count", 5.0),
            (
                "switchboard_auth_failures_total{reason=\"wrong_secret\"}",
                2.0,
            ),
            (
                "switchboard_bad_requests_total{reason=\"invalid_json\"}",
                1.0,
            ),
            ("switchboard_status_events_total", 1.0),
            ("switchboard_flow_reloads_total{result=\"error\"}", 1.0),
        ],
    );
    let shards = samples(&exposition)
        .keys()
        .filter(|s| s.starts_with("switchboard_shard_actors"))
        .count();
    assert_eq!(shards, 2, "shards past the cap get no series");
    // Counters are copied, not added: a second scrape shows the same totals.
    assert_samples(
        &t.render_with(&counters),
        &[("switchboard_sessions_passivated_total", 7.0)],
    );
}

#[test]
fn the_exposition_holds_every_own_metric_of_the_catalogue_and_nothing_else() {
    let flows = restaurant();
    let t = telemetry();
    t.on_flows(&flows);
    t.record_http(200, MS);
    t.record_auth_failure("missing");
    t.record_bad_request("too_large");
    t.set_shard_actors(0, 1);
    let exposition = t.render();
    let typed: Vec<&str> = exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .collect();
    for doc in CATALOGUE.iter().filter(|d| !d.external) {
        assert!(typed.contains(&doc.name), "{} is not exposed", doc.name);
        assert!(
            exposition.contains(&format!("# HELP {} {}", doc.name, doc.help)),
            "{} has no HELP line",
            doc.name
        );
    }
    for name in typed {
        let doc = CATALOGUE.iter().find(|d| d.name == name);
        assert!(
            doc.is_some_and(|d| !d.external),
            "{name} is not in the catalogue"
        );
    }
}

#[test]
fn every_install_works_and_at_most_one_is_global() {
    let all: Vec<_> = (0..3).map(|_| telemetry()).collect();
    assert!(all.iter().filter(|t| t.is_global()).count() <= 1);
    all[0].record_status_event();
    all[0].record_status_event();
    all[1].record_status_event();
    assert_samples(
        &all[0].render(),
        &[("switchboard_status_events_total", 2.0)],
    );
    assert_samples(
        &all[1].render(),
        &[("switchboard_status_events_total", 1.0)],
    );
    assert_samples(
        &all[2].render(),
        &[("switchboard_status_events_total", 0.0)],
    );
}

#[test]
fn facade_metrics_of_other_crates_render_with_latency_buckets() {
    let t = telemetry();
    // Whichever instance holds the global slot, the facade's metrics go to it; record through a
    // local recorder to test this instance's configuration the same way.
    metrics::with_local_recorder(t.recorder.as_ref(), || {
        metrics::histogram!(names::REDIS_COMMAND_DURATION, "command" => "get").record(0.0004);
        metrics::gauge!(names::STORE_PENDING_WRITES).set(3.0);
    });
    assert_samples(
        &t.render(),
        &[
            (
                "switchboard_redis_command_duration_seconds_bucket{command=\"get\",le=\"0.0005\"}",
                1.0,
            ),
            ("switchboard_store_pending_writes", 3.0),
        ],
    );
}
