//! The Callflows API client against the real emulator process (`switchboard-loadgen emulate`):
//! every documented refusal becomes its typed error with the platform's message, and retries
//! happen only where safe, with one `clientRequestId`.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_outbound::{ApiConfig, ApiError, CallflowsClient, CreateRequest};
use switchboard_protocol::Action;
use switchboard_tests::{EMULATOR_API_KEY, Emulator};

/// The emulator, playing its calls against a port nothing listens on (only the API matters).
fn emulator(args: &[&str]) -> Emulator {
    let mut all = vec!["--known-sub-account", "acme"];
    all.extend_from_slice(args);
    Emulator::start(Emulator::reserve_port(), "http://127.0.0.1:9", &all)
}

fn api(emulator: &Emulator, sub_account: &str, key: &str) -> CallflowsClient {
    let mut config = ApiConfig::new(&emulator.base, sub_account, key);
    config.backoff = Duration::from_millis(10);
    config.retries = 2;
    CallflowsClient::new(config).unwrap()
}

fn request(destination: &str, id: &str) -> CreateRequest {
    let callflow: Vec<Action> = serde_json::from_value(json!([
        {"action": "makeCall", "params": {"source": "+6568888888", "destination": destination}}
    ]))
    .unwrap();
    CreateRequest {
        callflow,
        client_action_id: None,
        client_request_id: id.to_owned(),
        valid_until: None,
    }
}

fn requests(emulator: &Emulator) -> Vec<Value> {
    emulator
        .arrivals()
        .into_iter()
        .filter(|l| l["event"] == "request")
        .collect()
}

#[tokio::test]
async fn every_refusal_is_a_typed_error_with_the_platforms_message() {
    let emulator = emulator(&[]);
    let client = api(&emulator, "acme", EMULATOR_API_KEY);
    let created = client.create(&request("+6591234567", "r-1")).await.unwrap();
    assert_eq!(created.session_id.len(), 36, "{created:?}");
    assert_eq!(created.attempts, 1);

    let err = api(&emulator, "acme", "wrong")
        .create(&request("+6591234567", "r-2"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ApiError::Unauthorized {
            code: 401,
            message: "Authentication header not found or token invalid".to_owned()
        }
    );
    assert!(
        !err.to_string().contains("wrong"),
        "the key is not in {err}"
    );

    let err = api(&emulator, "nobody", EMULATOR_API_KEY)
        .create(&request("+6591234567", "r-3"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ApiError::SubAccountNotFound {
            message: "SubAccount not found by Id : nobody".to_owned()
        }
    );

    let mut say_first = request("+6591234567", "r-4");
    say_first.callflow = serde_json::from_value(json!([
        {"action": "say", "params": {"text": "Hi", "voiceProfile": "en-US-BenjaminRUS"}}
    ]))
    .unwrap();
    match client.create(&say_first).await.unwrap_err() {
        ApiError::Rejected {
            status: 422,
            code: -1013,
            message,
        } => assert!(message.contains("makeCall"), "{message}"),
        other => panic!("{other:?}"),
    }

    let mut bad_until = request("+6591234567", "r-5");
    bad_until.valid_until = Some("tomorrow".to_owned());
    match client.create(&bad_until).await.unwrap_err() {
        ApiError::Rejected {
            status: 400,
            code,
            message,
        } => assert!(
            code < 0 && message.contains("validUntil"),
            "{code} {message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_client_request_id() {
    let emulator = emulator(&["--fail", "+6591230000=503x2", "--fail", "+6591239999=500"]);
    let client = api(&emulator, "acme", EMULATOR_API_KEY);
    let created = client.create(&request("+6591230000", "r-1")).await.unwrap();
    assert_eq!(created.attempts, 3, "two 503s, then created");

    let err = client
        .create(&request("+6591239999", "r-2"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Server {
                status: 500,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());

    // A refusal is never retried.
    let mut bad_until = request("+6591234567", "r-3");
    bad_until.valid_until = Some("tomorrow".to_owned());
    client.create(&bad_until).await.unwrap_err();

    let seen = requests(&emulator);
    let ids: Vec<&str> = seen
        .iter()
        .map(|l| l["clientRequestId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r-1", "r-1", "r-1", "r-2", "r-2", "r-2", "r-3"]);
    let statuses: Vec<u64> = seen.iter().map(|l| l["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [503, 503, 200, 500, 500, 500, 400]);
}

#[tokio::test]
async fn a_repeated_request_id_is_the_same_session_and_a_dead_api_is_unreachable() {
    let emulator = emulator(&[]);
    let client = api(&emulator, "acme", EMULATOR_API_KEY);
    let first = client
        .create(&request("+6591234567", "same"))
        .await
        .unwrap();
    let again = client
        .create(&request("+6591234567", "same"))
        .await
        .unwrap();
    assert_eq!(first.session_id, again.session_id);

    // A port nothing listens on: refused at once, retried, then reported.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = ApiConfig::new(format!("http://127.0.0.1:{port}"), "acme", EMULATOR_API_KEY);
    config.backoff = Duration::from_millis(5);
    config.retries = 1;
    let err = CallflowsClient::new(config)
        .unwrap()
        .create(&request("+6591234567", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::Unreachable { attempts: 2, .. }),
        "{err:?}"
    );
}
