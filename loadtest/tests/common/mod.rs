//! Shared pieces of the integration tests: in-test webhook servers on `127.0.0.1:0`, and the
//! built `switchboard-loadgen` binary run against them with a JSON report to read back.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use serde_json::Value;
use switchboard_protocol::{CallStatus, Webhook};

/// The scripted IVR's menu: a `sayAndCapture` tagged `menu`.
pub const MENU: &str = r#"{"clientActionId":"menu","callflow":[{"action":"say","params":{"text":"Welcome to the test line.","voiceProfile":"en-US-BenjaminRUS"}},{"action":"sayAndCapture","params":{"promptMessage":"Press 1 for sales or 2 for support.","voiceProfile":"en-US-BenjaminRUS","maxDigits":1}}]}"#;

/// The scripted IVR's goodbye.
pub const GOODBYE: &str = r#"{"clientActionId":"bye","callflow":[{"action":"say","params":{"text":"Goodbye.","voiceProfile":"en-US-BenjaminRUS"}},{"action":"hangup"}]}"#;

/// Serves `router` on an ephemeral port of 127.0.0.1 for the rest of the test.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// What the scripted IVR answers to one webhook body: the menu for a new call, the goodbye
/// after the menu's capture, 200 for status and summaries; 400 for anything unexpected.
pub fn scripted_ivr(body: &[u8]) -> (u16, String) {
    match Webhook::from_slice(body) {
        Ok(Webhook::CallAction(a)) => match (&a.call_status, a.client_action_id.as_deref()) {
            (CallStatus::CallReceived, None) => (200, MENU.to_owned()),
            (CallStatus::ActionCompleted, Some("menu")) => (200, GOODBYE.to_owned()),
            (status, id) => (
                400,
                format!("unexpected {status:?} with clientActionId {id:?}"),
            ),
        },
        Ok(_) => (200, String::new()),
        Err(err) => (400, err.to_string()),
    }
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// Exit status.
    pub code: i32,
    /// The `--json` report.
    pub report: Value,
    /// Human output.
    pub stdout: String,
    /// Errors.
    pub stderr: String,
}

/// Runs `switchboard-loadgen` with `args` plus `--json` and `--no-progress`, within a
/// generous bound.
pub async fn loadgen(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-loadgen"))
            .args(args)
            .arg("--no-progress")
            .arg("--json")
            .arg(&json)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the load generator did not finish within 120 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = std::fs::read_to_string(&json)
        .map(|text| serde_json::from_str(&text).unwrap())
        .unwrap_or(Value::Null);
    Run {
        code: output.status.code().unwrap_or(-1),
        report,
        stdout,
        stderr,
    }
}

/// `http://addr/webhooks`.
pub fn target(addr: SocketAddr) -> String {
    format!("http://{addr}/webhooks")
}

/// A number from the report at a JSON pointer, or 0 when absent.
pub fn num(report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}
