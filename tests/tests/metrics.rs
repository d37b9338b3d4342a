//! `/metrics` and the flow report after a scripted set of calls on the real binary: the
//! counters must say exactly what the calls did.

use std::collections::HashMap;

use switchboard_tests::{Call, Http, Server};

const RESTAURANT: &str = "+6568888888";
const ADMIN: &str = "t0k";

/// `name{labels} value` lines of an exposition, keyed by `name{labels}`.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("{key} is not in the exposition"))
}

async fn scrape(http: &Http) -> HashMap<String, f64> {
    let reply = http.get("/metrics", None).await;
    assert_eq!(reply.status, 200);
    let content_type = reply.headers["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    samples(std::str::from_utf8(&reply.body).unwrap())
}

#[tokio::test]
async fn counters_match_what_the_calls_did() {
    let server = Server::start(&["--admin-token", ADMIN]);
    let http = server.http();

    // Call 1: hours, then the flow hangs up; the platform reports COMPLETED.
    let mut hours = Call::new(RESTAURANT);
    hours.start(&http).await;
    hours.press(&http, Some("3")).await;
    hours.end(&http, "COMPLETED").await;

    // Call 2: two wrong keys, then reservations; the caller hangs up there (CANCELED).
    let mut wrong = Call::new(RESTAURANT);
    wrong.start(&http).await;
    wrong.press(&http, Some("7")).await;
    wrong.press(&http, Some("8")).await;
    wrong.press(&http, Some("1")).await;
    wrong.end(&http, "CANCELED").await;

    // Call 3: silence twice runs out the counter (max_no_input 2).
    let mut silent = Call::new(RESTAURANT);
    silent.start(&http).await;
    silent.press(&http, None).await;
    silent.press(&http, None).await;
    silent.end(&http, "COMPLETED").await;

    // Call 4: a transfer that is busy; a duplicate of the key press.
    let mut busy = Call::new(RESTAURANT);
    let welcome = busy.start(&http).await;
    let press = busy.call_action(
        "ACTION_COMPLETED",
        "evt-metrics-dup",
        Some("2"),
        None,
        welcome.action_id().as_deref(),
    );
    busy.send(&http, press.clone()).await;
    busy.send(&http, press).await;
    busy.transfer_result(&http, 486).await;
    busy.end(&http, "COMPLETED").await;

    // An unrouted call and a bad request.
    Call::new("+6500000001").start(&http).await;
    assert_eq!(http.webhook("{").await.status, 400);

    let m = scrape(&http).await;
    let node = |name: &str| {
        format!("switchboard_node_visits_total{{flow=\"restaurant\",node=\"{name}\"}}")
    };
    // main: entered by each of the 4 calls, plus the re-prompts (2 invalid + 1 no-input).
    assert_eq!(value(&m, &node("main")), 4.0);
    assert_eq!(value(&m, &node("hours")), 1.0);
    assert_eq!(
        value(&m, &node("goodbye")),
        3.0,
        "hours, silence and busy end in goodbye"
    );
    assert_eq!(value(&m, &node("reservations")), 1.0);
    assert_eq!(value(&m, &node("connect")), 1.0);
    assert_eq!(value(&m, &node("sorry")), 1.0);
    assert_eq!(
        value(
            &m,
            "switchboard_menu_invalid_total{flow=\"restaurant\",node=\"main\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            "switchboard_menu_no_input_total{flow=\"restaurant\",node=\"main\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &m,
            "switchboard_counters_exhausted_total{flow=\"restaurant\",node=\"main\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "switchboard_transfers_total{flow=\"restaurant\",result=\"busy\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "switchboard_sessions_started_total{flow=\"restaurant\"}"
        ),
        4.0
    );
    assert_eq!(
        value(
            &m,
            "switchboard_sessions_ended_total{flow=\"restaurant\",status=\"COMPLETED\"}"
        ),
        3.0
    );
    assert_eq!(
        value(
            &m,
            "switchboard_sessions_ended_total{flow=\"restaurant\",status=\"CANCELED\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "switchboard_deliveries_repeated_total{kind=\"duplicate\"}"
        ),
        1.0
    );
    assert_eq!(value(&m, "switchboard_calls_unrouted_total"), 1.0);
    assert_eq!(
        value(
            &m,
            "switchboard_bad_requests_total{reason=\"invalid_json\"}"
        ),
        1.0
    );
    assert_eq!(value(&m, "switchboard_sessions_live"), 0.0);
    assert_eq!(value(&m, "switchboard_flows_loaded"), 5.0);

    // The report says the same, by node.
    let report = http
        .get("/v1/flows/restaurant/report", Some(ADMIN))
        .await
        .json();
    assert_eq!(report["sessions_started"], 4);
    assert_eq!(report["outcomes"]["COMPLETED"], 3);
    assert_eq!(report["outcomes"]["CANCELED"], 1);
    let main = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "main")
        .unwrap();
    assert_eq!(main["visits"], 4);
    assert_eq!(main["invalid"], 2);
    assert_eq!(main["no_input"], 2);
    assert_eq!(main["exhausted"], 1);
    // The canceled caller left the flow at reservations.
    let reservations = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "reservations")
        .unwrap();
    assert_eq!(reservations["exits"], 1);
    assert_eq!(
        http.get("/v1/flows/nope/report", Some(ADMIN)).await.status,
        404
    );
}
