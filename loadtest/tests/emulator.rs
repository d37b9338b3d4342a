//! The Callflows API emulator: requests driven through its router without a socket, and the
//! outbound calls it creates played against an in-test webhook server that records them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use switchboard_loadgen::call::{PlatformConfig, TransferMix};
use switchboard_loadgen::caller::{CallerModel, parse_script};
use switchboard_loadgen::client::{ClientConfig, Select, Targets, WebhookClient, parse_target};
use switchboard_loadgen::emulator::{Emulator, app};
use switchboard_loadgen::player::{Faults, Platform};
use switchboard_loadgen::stats::Stats;
use switchboard_protocol::{SessionStatus, Webhook};
use tokio::sync::mpsc;
use tower::ServiceExt;

/// A webhook server that hangs up on every `ACTION_COMPLETED` and forwards every body it gets.
async fn recorder() -> (String, mpsc::UnboundedReceiver<Webhook>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let router = Router::new().route(
        "/webhooks",
        post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let webhook = Webhook::from_slice(&body).unwrap();
                let answer = matches!(webhook, Webhook::CallAction(_))
                    .then_some(common::GOODBYE)
                    .unwrap_or_default();
                let _ = tx.send(webhook);
                answer
            }
        }),
    );
    (common::target(common::serve(router).await), rx)
}

fn emulator(webhook: &str, transfers: TransferMix, api_key: Option<&str>) -> Arc<Emulator> {
    let platform = Platform {
        config: Arc::new(PlatformConfig {
            caller: CallerModel::Script(parse_script("1").unwrap()),
            transfers,
            seed: 3,
            run_nonce: 4,
            ..PlatformConfig::default()
        }),
        client: WebhookClient::new(&ClientConfig::default()).unwrap(),
        targets: Targets::new(vec![parse_target(webhook).unwrap()], Select::RoundRobin),
        faults: Faults::default(),
        stats: Arc::new(Stats::new(5)),
    };
    Arc::new(Emulator::new(
        Arc::new(platform),
        api_key.map(str::to_owned),
    ))
}

async fn post_callflow(
    emulator: &Arc<Emulator>,
    auth: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    post_to(emulator, "acme_voice", auth, body).await
}

async fn post_to(
    emulator: &Arc<Emulator>,
    sub_account: &str,
    auth: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = Request::post(format!("/api/v1/subaccounts/{sub_account}/callflows"))
        .header("content-type", "application/json");
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = app(emulator.clone())
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn make_call() -> Value {
    json!({
        "clientRequestId": "campaign-7",
        "callflow": [
            {"action": "makeCall", "params": {"source": "6568888888", "destination": "6591234567"}}
        ]
    })
}

async fn next_summary(
    rx: &mut mpsc::UnboundedReceiver<Webhook>,
) -> (Vec<Webhook>, switchboard_protocol::SessionSummary) {
    let mut before = Vec::new();
    loop {
        let webhook = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no session summary within 10 s")
            .expect("the recorder stopped");
        match webhook {
            Webhook::SessionSummary(s) => return (before, s),
            other => before.push(other),
        }
    }
}

#[tokio::test]
async fn a_created_call_is_played_against_the_webhook() {
    let (webhook, mut rx) = recorder().await;
    let answered = TransferMix {
        answered: 1.0,
        busy: 0.0,
        no_answer: 0.0,
    };
    let emulator = emulator(&webhook, answered, Some("k3y"));
    let (status, answer) = post_callflow(&emulator, Some("Bearer k3y"), make_call()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["sessionStatus"], "CREATED");
    assert_eq!(answer["statusCode"], 1);
    assert_eq!(answer["statusMessage"], "Created");
    let session = answer["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(session.len(), 36);
    assert_eq!(answer["callFlowRequestId"].as_str().unwrap().len(), 36);

    let (before, summary) = next_summary(&mut rx).await;
    // The callee answered, the (empty) rest of the callflow ran, and the platform asked the
    // webhook what next: one ACTION_COMPLETED, answered with a hangup.
    let [Webhook::CallAction(completed)] = &before[..] else {
        panic!("{before:?}")
    };
    assert_eq!(completed.session_id, session);
    assert_eq!(completed.call_direction.as_deref(), Some("OUTBOUND"));
    assert_eq!(completed.destination, "+6591234567");
    assert_eq!(summary.session_id, session);
    assert_eq!(summary.session_status, SessionStatus::Completed);
    assert_eq!(summary.last_action.as_deref(), Some("HANGUP"));
    assert_eq!(summary.client_request_id.as_deref(), Some("campaign-7"));
    assert_eq!(
        summary.details["callA"].call_direction.as_deref(),
        Some("OUTBOUND")
    );
    emulator.drain().await;
    assert_eq!(emulator.platform().stats.completed(), 1);
    assert_eq!(emulator.platform().stats.problems(), 0);
}

#[tokio::test]
async fn a_busy_callee_ends_the_session_busy() {
    let (webhook, mut rx) = recorder().await;
    let busy = TransferMix {
        answered: 0.0,
        busy: 1.0,
        no_answer: 0.0,
    };
    let emulator = emulator(&webhook, busy, None);
    let (status, answer) = post_callflow(&emulator, None, make_call()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (before, summary) = next_summary(&mut rx).await;
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(summary.session_status, SessionStatus::Busy);
    assert_eq!(summary.last_action.as_deref(), Some("MAKE_CALL"));
    assert_eq!(
        summary.details["callA"].call_status.as_deref(),
        Some("BUSY")
    );
}

#[tokio::test]
async fn an_invalid_request_is_not_created_with_the_platform_code() {
    let emulator = emulator(
        "http://127.0.0.1:9/webhooks",
        TransferMix::default(),
        Some("k3y"),
    );
    let say_first = json!({"callflow": [
        {"action": "say", "params": {"text": "Hi", "voiceProfile": "en-US-BenjaminRUS"}}
    ]});
    let (status, answer) = post_callflow(&emulator, Some("Bearer k3y"), say_first).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["sessionStatus"], "NOT_CREATED");
    assert_eq!(answer["statusCode"], -1013, "{answer}");
    assert!(answer.get("sessionId").is_none());
    assert_eq!(answer["callFlowRequestId"].as_str().unwrap().len(), 36);

    let bad_number = json!({"callflow": [
        {"action": "makeCall", "params": {"source": "6568888888", "destination": "12ab"}}
    ]});
    let (_, answer) = post_callflow(&emulator, Some("Bearer k3y"), bad_number).await;
    assert_eq!(answer["statusCode"], -1017, "{answer}");
    assert!(
        answer["statusMessage"]
            .as_str()
            .unwrap()
            .contains("destination"),
        "{answer}"
    );

    let (status, answer) = post_callflow(&emulator, Some("Bearer wrong"), make_call()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["sessionStatus"], "NOT_CREATED");
    assert_eq!(answer["statusCode"], 401, "{answer}");
    assert_eq!(
        answer["statusMessage"],
        "Authentication header not found or token invalid"
    );
    emulator.drain().await;
    assert_eq!(emulator.platform().stats.started(), 0);
}

#[tokio::test]
async fn an_expired_request_is_summarized_without_ringing() {
    let (webhook, mut rx) = recorder().await;
    let emulator = emulator(&webhook, TransferMix::default(), None);
    let mut body = make_call();
    body["validUntil"] = json!("2020-01-01T00:00:00Z");
    let (status, answer) = post_callflow(&emulator, None, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (before, summary) = next_summary(&mut rx).await;
    assert!(before.is_empty());
    assert_eq!(summary.session_status, SessionStatus::Error);
    assert_eq!(summary.error_details.unwrap().error_code, Some(-2007));
    assert!(summary.details.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulate_subcommand_serves_until_interrupted_and_reports() {
    use tokio::io::AsyncBufReadExt;

    let (webhook, mut rx) = recorder().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("emulate.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-loadgen"))
        .args(["emulate", "--listen", "127.0.0.1:0", "--webhook", &webhook])
        .args(["--transfer-mix", "answered=1", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("no banner within 30 s")
        .unwrap()
        .unwrap();
    let url = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap()
        .replace("{id}", "acme_voice")
        .trim_end_matches(',')
        .to_owned();
    let client = WebhookClient::new(&ClientConfig::default()).unwrap();
    let exchange = client
        .post(&url.parse().unwrap(), Bytes::from(make_call().to_string()))
        .await;
    let switchboard_loadgen::client::Reply::Answered { status, body } = exchange.reply else {
        panic!("{:?}", exchange.reply)
    };
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    let (_, summary) = next_summary(&mut rx).await;
    assert_eq!(summary.session_id, answer["sessionId"].as_str().unwrap());

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the emulator did not stop within 30 s of SIGINT")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["calls"]["completed"], 1, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
}

#[tokio::test]
async fn a_script_sets_outcomes_failures_and_known_sub_accounts() {
    use switchboard_loadgen::call::Transfer;
    use switchboard_loadgen::emulator::{ArrivalLog, Failure, Script};

    let (webhook, mut rx) = recorder().await;
    let answered = TransferMix {
        answered: 1.0,
        busy: 0.0,
        no_answer: 0.0,
    };
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("arrivals.jsonl");
    let script = Script {
        outcomes: [("+6591234567".to_owned(), Transfer::NoAnswer)].into(),
        failures: [(
            "6591230000".to_owned(),
            Failure {
                status: 500,
                times: Some(1),
            },
        )]
        .into(),
        sub_accounts: vec!["acme_voice".to_owned()],
    };
    let emulator = Arc::try_unwrap(emulator(&webhook, answered, None))
        .unwrap()
        .with_script(script)
        .with_log(ArrivalLog::create(&log_path).unwrap());
    let emulator = Arc::new(emulator);

    // The mix says answered; the script says this number does not answer.
    let (status, answer) = post_callflow(&emulator, None, make_call()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, summary) = next_summary(&mut rx).await;
    assert_eq!(summary.session_status, SessionStatus::NoAnswer);

    // The same clientRequestId again: the same session, no second call.
    let (status, again) = post_callflow(&emulator, None, make_call()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["sessionId"], answer["sessionId"]);

    // A 500 once, then served.
    let mut failing = make_call();
    failing["clientRequestId"] = json!("campaign-8");
    failing["callflow"][0]["params"]["destination"] = json!("6591230000");
    let (status, refused) = post_callflow(&emulator, None, failing.clone()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{refused}");
    assert_eq!(refused["sessionStatus"], "NOT_CREATED");
    let (status, _) = post_callflow(&emulator, None, failing).await;
    assert_eq!(status, StatusCode::OK);
    let (_, summary) = next_summary(&mut rx).await;
    assert_eq!(summary.session_status, SessionStatus::Completed);

    let (status, unknown) = post_to(&emulator, "nobody", None, make_call()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    assert_eq!(
        unknown["statusMessage"],
        "SubAccount not found by Id : nobody"
    );

    emulator.drain().await;
    assert_eq!(emulator.platform().stats.started(), 2);
    let lines: Vec<Value> = std::fs::read_to_string(&log_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let requests: Vec<_> = lines.iter().filter(|l| l["event"] == "request").collect();
    let statuses: Vec<_> = requests
        .iter()
        .map(|l| l["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 500, 200, 404], "{lines:?}");
    assert_eq!(requests[1]["repeated"], true);
    assert_eq!(requests[0]["destination"], "6591234567");
    let ended: Vec<_> = lines.iter().filter(|l| l["event"] == "ended").collect();
    assert_eq!(ended.len(), 2, "{lines:?}");
    assert_eq!(ended[0]["outcome"], "no_answer");
    assert!(ended[0]["at_ms"].as_u64().unwrap() >= requests[0]["at_ms"].as_u64().unwrap());
}
