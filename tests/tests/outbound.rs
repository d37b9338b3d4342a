//! Outbound calls end to end: `switchboard call` and `POST /v1/calls` on real servers, the
//! 8x8 side played by the real `switchboard-loadgen emulate` process.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::{EMULATOR_API_KEY, Emulator, RedisServer, Server, run};

const FLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/outbound/reminder.yaml"
);
const ADMIN: &str = "t0k3n";

/// A replica configured for outbound calls through the emulator at `api`.
fn replica(api: &str, redis: Option<&str>, key: &str, sub_account: &str) -> Server {
    let mut args = vec!["--flows", FLOW];
    if let Some(url) = redis {
        args.extend(["--redis", url]);
    }
    Server::start_with_env(
        &args,
        &[
            ("SWITCHBOARD_CALLFLOWS_URL", api),
            ("SWITCHBOARD_CALLFLOWS_SUB_ACCOUNT", sub_account),
            ("SWITCHBOARD_CALLFLOWS_API_KEY", key),
            ("SWITCHBOARD_OUTBOUND_FROM", "+6568880099"),
            ("SWITCHBOARD_ADMIN_TOKEN", ADMIN),
        ],
    )
}

fn visits(report: &Value, node: &str) -> u64 {
    report["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node"] == node))
        .and_then(|n| n["visits"].as_u64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_placed_on_one_replica_is_served_by_another_with_its_variables() {
    let redis = RedisServer::start();
    let port = Emulator::reserve_port();
    let api = format!("http://127.0.0.1:{port}");
    let a = replica(&api, Some(&redis.url()), EMULATOR_API_KEY, "acme_voice");
    let b = replica(&api, Some(&redis.url()), EMULATOR_API_KEY, "acme_voice");
    // The platform sends every webhook of the call to replica B; the call is placed on A. The
    // callee answers at once (no ring time), so the first webhook can beat the API's answer.
    let emulator = Emulator::start(
        port,
        &b.base(),
        &["--transfer-mix", "answered=1", "--script", "1"],
    );
    let (code, out, err) = tokio::task::spawn_blocking({
        let base = a.base();
        move || {
            run(
                &[
                    "call",
                    "--flow",
                    "reminder",
                    "--to",
                    "+65 9123 4567",
                    "--var",
                    "name=Ana",
                    "--var",
                    "when=Tuesday at 10",
                    "--server",
                    &base,
                    "--token",
                    ADMIN,
                ],
                &[],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "stdout {out}\nstderr {err}");
    let session = out
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no session id in {out:?}"))
        .to_owned();
    let log = emulator.wait_for(Duration::from_secs(30), |l| {
        l.iter().any(|e| e["event"] == "ended")
    });
    let request = log.iter().find(|e| e["event"] == "request").unwrap();
    assert_eq!(request["status"], 200, "{request}");
    assert_eq!(request["sessionId"], session.as_str());
    assert_eq!(request["destination"], "6591234567");
    let callflow = request["callflow"].as_array().unwrap();
    assert_eq!(callflow[0]["action"], "makeCall");
    assert_eq!(callflow[0]["params"]["source"], "+6568880099");
    let prompt = callflow[1]["params"]["promptMessage"].as_str().unwrap();
    assert!(
        prompt.starts_with("Hello Ana, ") && prompt.contains("Tuesday at 10"),
        "{prompt}"
    );
    let ended = log.iter().find(|e| e["event"] == "ended").unwrap();
    assert_eq!(ended["sessionId"], session.as_str());
    assert_eq!(ended["outcome"], "hangup", "{log:?}");

    // B continued the session A registered: the caller's 1 reached `confirmed`, no apology.
    let report = b
        .http()
        .get("/v1/flows/reminder/report", Some(ADMIN))
        .await
        .json();
    assert_eq!(visits(&report, "confirmed"), 1, "{report}");
    assert!(
        !b.log().iter().any(|l| l.contains("unresolved")),
        "{:?}",
        b.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_field_or_carry_the_platforms_status() {
    let port = Emulator::reserve_port();
    let api = format!("http://127.0.0.1:{port}");
    let good = replica(&api, None, EMULATOR_API_KEY, "acme_voice");
    let bad_key = replica(&api, None, "wrong", "acme_voice");
    let bad_account = replica(&api, None, EMULATOR_API_KEY, "nobody");
    let _emulator = Emulator::start(
        port,
        &good.base(),
        &[
            "--known-sub-account",
            "acme_voice",
            "--transfer-mix",
            "busy=1",
        ],
    );
    let post = |server: &Server, body: Value| {
        let http = server.http();
        async move {
            http.send(
                "POST",
                "/v1/calls",
                &[
                    ("content-type", "application/json"),
                    ("authorization", &format!("Bearer {ADMIN}")),
                ],
                body.to_string(),
            )
            .await
        }
    };
    let reply = post(&good, json!({"flow": "reminder", "to": "12ab"})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["field"], "to", "{}", reply.json());
    let reply = post(&good, json!({"flow": "nope", "to": "+6591234567"})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["field"], "flow");
    let reply = post(
        &good,
        json!({"flow": "reminder", "to": "+6591234567", "colour": 1}),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour")
    );

    let reply = post(&bad_key, json!({"flow": "reminder", "to": "+6591234567"})).await;
    assert_eq!(reply.status, 502);
    let error = &reply.json()["error"];
    assert_eq!(error["status"], 401, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Authentication header not found or token invalid")
    );
    let reply = post(
        &bad_account,
        json!({"flow": "reminder", "to": "+6591234567"}),
    )
    .await;
    assert_eq!(reply.status, 502);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SubAccount not found by Id : nobody")
    );

    let reply = post(&good, json!({"flow": "reminder", "to": "+6591234567"})).await;
    assert_eq!(reply.status, 200, "{}", reply.json());

    // The command line says the same, and exits 1.
    let (code, _, err) = tokio::task::spawn_blocking({
        let base = good.base();
        move || {
            run(
                &[
                    "call", "--flow", "reminder", "--to", "12ab", "--server", &base, "--token",
                    ADMIN,
                ],
                &[],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1));
    assert!(err.contains("400: to: bad number \"12ab\""), "{err}");
}
