//! `POST /v1/calls` with the Callflows API over `https://`: the real server against the real
//! emulator process behind a TLS front ([`TlsFront`]) whose certificate is signed by a CA of
//! the test's own (made with the `openssl` CLI). With that CA as `callflows_ca_file` the call
//! is created and its webhooks flow; a server that does not trust the certificate (the system's
//! authorities, or another CA) answers a 502 naming the certificate, and no request reaches the
//! API.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_tests::{EMULATOR_API_KEY, Emulator, Server, TlsFront, make_certificates};

const FLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/outbound/reminder.yaml"
);
const ADMIN: &str = "t0k3n";

/// A server placing calls through the Callflows API at `api`, trusting `ca_file` (`None`: the
/// system's authorities).
fn server(api: &str, ca_file: Option<&str>) -> Server {
    let mut env = vec![
        ("SWITCHBOARD_CALLFLOWS_URL", api),
        ("SWITCHBOARD_CALLFLOWS_SUB_ACCOUNT", "acme_voice"),
        ("SWITCHBOARD_CALLFLOWS_API_KEY", EMULATOR_API_KEY),
        ("SWITCHBOARD_OUTBOUND_FROM", "+6568880099"),
        ("SWITCHBOARD_ADMIN_TOKEN", ADMIN),
    ];
    if let Some(ca) = ca_file {
        env.push(("SWITCHBOARD_CALLFLOWS_CA_FILE", ca));
    }
    Server::start_with_env(&["--flows", FLOW], &env)
}

async fn call(server: &Server) -> (u16, Value) {
    let reply = server
        .http()
        .send(
            "POST",
            "/v1/calls",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {ADMIN}")),
            ],
            json!({
                "flow": "reminder",
                "to": "+6591234567",
                "vars": {"name": "Ana", "when": "Tuesday at 10"},
            })
            .to_string(),
        )
        .await;
    (reply.status, reply.json())
}

fn requests(log: &[Value]) -> Vec<&Value> {
    log.iter().filter(|e| e["event"] == "request").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_https_is_placed_with_the_ca_file_and_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = make_certificates(dir.path());
    let ca = certificates.ca.to_str().unwrap().to_owned();
    let port = Emulator::reserve_port();
    let front = TlsFront::start(&certificates, port);
    let trusting = server(&front.url(), Some(&ca));
    let emulator = Emulator::start(
        port,
        &trusting.base(),
        &["--transfer-mix", "answered=1", "--script", "1"],
    );

    // Trusted: the call is created through the TLS front, and the platform plays it against
    // the server's webhooks to the end (the callee's 1 confirms).
    let (status, placed) = call(&trusting).await;
    assert_eq!(status, 200, "{placed}");
    let session = placed["sessionId"].as_str().unwrap().to_owned();
    let log = emulator.wait_for(Duration::from_secs(30), |log| {
        log.iter().any(|e| e["event"] == "ended")
    });
    let requests_made = requests(&log);
    assert_eq!(requests_made.len(), 1, "{log:?}");
    assert_eq!(requests_made[0]["status"], 200, "{log:?}");
    assert_eq!(requests_made[0]["sessionId"], session.as_str());
    assert_eq!(requests_made[0]["clientRequestId"], placed["ticket"]);
    let ended = log.iter().find(|e| e["event"] == "ended").unwrap();
    assert_eq!(ended["sessionId"], session.as_str());
    assert_eq!(ended["outcome"], "hangup", "{log:?}");
    assert_eq!(ended["summary"], 200, "{log:?}");
    assert!(front.handshakes() >= 1);
    let report = trusting
        .http()
        .get("/v1/flows/reminder/report", Some(ADMIN))
        .await
        .json();
    let confirmed = report["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node"] == "confirmed"))
        .and_then(|n| n["visits"].as_u64());
    assert_eq!(confirmed, Some(1), "{report}");

    // Untrusted: the system's authorities do not know the test's CA, and another CA did not
    // sign the certificate. Each answers a 502 that names the certificate, and places nothing.
    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = make_certificates(other_dir.path()).ca;
    let system = server(&front.url(), None);
    let other = server(&front.url(), Some(other_ca.to_str().unwrap()));
    let handshakes = front.handshakes();
    for untrusting in [&system, &other] {
        let (status, body) = call(untrusting).await;
        assert_eq!(status, 502, "{body}");
        let error = &body["error"];
        assert_eq!(error["code"], "callflows_api", "{body}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("cannot reach the Callflows API at https://localhost:")
                && message.contains("invalid peer certificate")
                && message.contains(
                    "the API's TLS certificate is not trusted: give the CA that signed it as the \
                     CA file (callflows_ca_file)"
                ),
            "{message}"
        );
        assert!(error["status"].is_null(), "no HTTP answer came: {body}");
    }
    assert_eq!(front.handshakes(), handshakes, "no handshake completed");
    // Still the one request of the trusted call.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(requests(&emulator.arrivals()).len(), 1);
}
