//! `/ui` end to end: the real server (serving the bundled `flows/` directory, whose
//! `*.test.yaml` files must not be taken for flows), real calls, and Debian's headless
//! Chromium loading the page: its script must fill the list of flows, draw the chosen flow's
//! graph with the live funnel and show the live session count; a screenshot must show ink.
//! Also `switchboard flow graph --report URL` against the same running server.

use std::path::PathBuf;

use switchboard_tests::browser::{dump_dom, ink, screenshot};
use switchboard_tests::{Call, Server, run};

const RESTAURANT: &str = "+6568888888";
const ADMIN: &str = "ui-t0k";

fn flows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../flows")
}

/// A server on the bundled flows directory, after three calls to the restaurant: one hears
/// the hours and ends, one hangs up at the main menu, one is still at the main menu.
async fn server_with_calls() -> Server {
    let flows = flows_dir();
    let server = Server::start(&["--admin-token", ADMIN, "--flows", flows.to_str().unwrap()]);
    let http = server.http();
    let mut hours = Call::new(RESTAURANT);
    hours.start(&http).await;
    hours.press(&http, Some("3")).await;
    hours.end(&http, "COMPLETED").await;
    let mut gone = Call::new(RESTAURANT);
    gone.start(&http).await;
    gone.end(&http, "CANCELED").await;
    let mut live = Call::new(RESTAURANT);
    live.start(&http).await;
    server
}

#[tokio::test]
async fn the_page_lists_the_flows_and_draws_the_live_funnel() {
    let server = server_with_calls().await;
    let http = server.http();
    // The directory's test files were skipped: five flows, not nine.
    let flows = http.get("/v1/flows", Some(ADMIN)).await.json();
    assert_eq!(flows["flows"].as_array().unwrap().len(), 5, "{flows}");

    // What the page must show: the server's own figures.
    let report = http
        .get("/v1/flows/restaurant/report", Some(ADMIN))
        .await
        .json();
    let main = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "main")
        .unwrap()
        .clone();
    assert_eq!(main["visits"], 3, "{report}");
    let exits = main["exits"].as_u64().unwrap();
    // Only the caller who hung up at the main menu left there; the one who heard the hours
    // left at goodbye, where the flow hung up.
    assert_eq!(exits, 1, "{report}");
    let goodbye = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "goodbye")
        .unwrap();
    assert_eq!(goodbye["exits"], 1, "{report}");
    let live = http.get("/v1/sessions", Some(ADMIN)).await.json()["count"].clone();
    assert_eq!(live, 1);

    let url = format!("{}/ui?token={ADMIN}#restaurant", server.base());
    let dom = dump_dom(&url, 4000).unwrap();
    for flow in ["bank", "restaurant", "support"] {
        assert!(
            dom.contains(&format!("data-flow=\"{flow}\"")),
            "{flow} is not listed: {dom}"
        );
    }
    assert!(
        dom.contains("<li class=\"chosen\" data-flow=\"restaurant\">"),
        "{dom}"
    );
    assert!(dom.contains("3 calls since start · 1 not ended"), "{dom}");
    assert!(
        dom.contains("<strong id=\"live-count\">1</strong>"),
        "{dom}"
    );
    // The graph is the server's SVG with the live funnel: three callers reached the main
    // menu, one reached the hours.
    assert!(
        dom.contains("class=\"flow-graph\" data-flow=\"restaurant\""),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(
            "data-node=\"main\" data-visits=\"3\" data-exits=\"{exits}\""
        )),
        "{dom}"
    );
    assert!(
        dom.contains("data-node=\"hours\" data-visits=\"1\""),
        "{dom}"
    );
    assert!(dom.contains(&format!("3 visits · {exits} left")), "{dom}");
    // The token left the address bar and no error is shown.
    assert!(
        dom.contains("<p id=\"error\" role=\"alert\" hidden=\"\">"),
        "{dom}"
    );

    let png = std::env::temp_dir().join(format!("switchboard-ui-{}.png", std::process::id()));
    screenshot(&url, &png, 1280, 900, 4000).unwrap();
    let drawn = ink(&png).unwrap();
    let _ = std::fs::remove_file(&png);
    assert!(drawn.is_non_blank(), "{drawn:?}");
}

#[tokio::test]
async fn the_page_without_a_token_asks_for_one_and_the_api_refuses() {
    let server = server_with_calls().await;
    let dom = dump_dom(&format!("{}/ui", server.base()), 2000).unwrap();
    assert!(dom.contains("<form id=\"login\">"), "{dom}");
    assert!(!dom.contains("flow-graph"), "{dom}");

    let http = server.http();
    let svg = http.get("/v1/flows/restaurant/graph.svg", None).await;
    assert_eq!(svg.status, 401);
    let svg = http
        .get("/v1/flows/restaurant/graph.svg", Some(ADMIN))
        .await;
    assert_eq!(svg.status, 200);
    assert_eq!(svg.headers["content-type"], "image/svg+xml; charset=utf-8");
    let missing = http.get("/v1/flows/nope/graph.svg", Some(ADMIN)).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn the_page_is_off_without_an_admin_token() {
    let server = Server::start(&[]);
    let http = server.http();
    for path in ["/ui", "/ui/app.js", "/ui/app.css"] {
        let reply = http.get(path, None).await;
        assert_eq!(reply.status, 403, "{path}");
        assert_eq!(reply.json()["error"]["code"], "admin_disabled", "{path}");
    }
}

#[tokio::test]
async fn flow_graph_reads_a_running_server_s_report() {
    let server = server_with_calls().await;
    let file = flows_dir().join("restaurant.yaml");
    let report = format!("{}/v1/flows/restaurant/report", server.base());
    let (code, svg, err) = run(
        &[
            "flow",
            "graph",
            file.to_str().unwrap(),
            "--report",
            &report,
            "--admin-token",
            ADMIN,
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        svg.contains("data-node=\"main\" data-visits=\"3\""),
        "{svg}"
    );
    let (code, _, err) = run(
        &["flow", "graph", file.to_str().unwrap(), "--report", &report],
        &[("SWITCHBOARD_ADMIN_TOKEN", "wrong")],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("the server refused the admin token (401)"),
        "{err}"
    );
}
