//! The Callflows API over `https://`: the client against the real emulator process behind a
//! TLS-terminating listener on a certificate this test makes with the `openssl` CLI, signed by
//! a CA of its own. The client trusts that CA only when told to (`ca_file`); with the system's
//! authorities the same endpoint is refused at once (a certificate refused is not retried), and
//! no request reaches the API.

use std::time::Duration;

use serde_json::json;
use switchboard_outbound::{ApiConfig, ApiError, CallflowsClient, CreateRequest};
use switchboard_protocol::Action;
use switchboard_tests::{EMULATOR_API_KEY, Emulator, TlsFront, make_certificates};

fn request(id: &str) -> CreateRequest {
    let callflow: Vec<Action> = serde_json::from_value(json!([
        {"action": "makeCall", "params": {"source": "+6568888888", "destination": "+6591234567"}}
    ]))
    .unwrap();
    CreateRequest {
        callflow,
        client_action_id: None,
        client_request_id: id.to_owned(),
        valid_until: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_reaches_the_api_with_the_given_ca_and_is_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = make_certificates(dir.path());
    let backend = Emulator::reserve_port();
    let emulator = Emulator::start(backend, "http://127.0.0.1:9", &["--transfer-mix", "busy=1"]);
    let front = TlsFront::start(&certificates, backend);

    // The system's authorities do not know the test's CA: refused before any request.
    let mut config = ApiConfig::new(front.url(), "acme", EMULATOR_API_KEY);
    let err = CallflowsClient::new(config.clone())
        .unwrap()
        .create(&request("tls-untrusted"))
        .await
        .unwrap_err();
    match &err {
        ApiError::Unreachable {
            reason, attempts, ..
        } => {
            assert!(reason.contains("invalid peer certificate"), "{reason}");
            assert!(reason.contains("not trusted"), "{reason}");
            assert_eq!(*attempts, 1, "a refused certificate is not retried");
        }
        other => panic!("an untrusted certificate is unreachable, not {other:?}"),
    }

    // With the CA: the session is created, and the platform saw the request.
    assert_eq!(front.handshakes(), 0, "the handshake was refused");
    config.ca_file = Some(certificates.ca.clone());
    let created = CallflowsClient::new(config)
        .unwrap()
        .create(&request("tls-trusted"))
        .await
        .unwrap();
    assert_eq!(created.session_id.len(), 36, "{created:?}");
    let log = emulator.wait_for(Duration::from_secs(10), |log| {
        log.iter().any(|e| e["event"] == "request")
    });
    let requests: Vec<_> = log.iter().filter(|e| e["event"] == "request").collect();
    assert_eq!(requests.len(), 1, "{log:?}");
    assert_eq!(requests[0]["clientRequestId"], "tls-trusted");
    assert_eq!(requests[0]["sessionId"], created.session_id.as_str());
}
