//! The Callflows API over `https://`: the client against the real emulator process behind a
//! TLS-terminating listener on a certificate this test makes with the `openssl` CLI, signed by
//! a CA of its own. The client trusts that CA only when told to (`ca_file`); with the system's
//! authorities the same endpoint is refused, and no request reaches the API.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use switchboard_outbound::{ApiConfig, ApiError, CallflowsClient, CreateRequest};
use switchboard_protocol::Action;
use switchboard_tests::{EMULATOR_API_KEY, Emulator};
use tokio::net::{TcpListener, TcpStream};

/// A CA and a certificate for `localhost` / `127.0.0.1` signed by it, in `dir`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl CLI runs (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=switchboard-test-ca",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// Terminates TLS on a port of its own and passes the bytes on to `backend`; its port.
async fn tls_listener(dir: &Path, backend: u16) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses our certificate ends the handshake: nothing to pass on.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut api) = TcpStream::connect(("127.0.0.1", backend)).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut api).await;
            });
        }
    });
    port
}

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
    make_certificates(dir.path());
    let backend = Emulator::reserve_port();
    let emulator = Emulator::start(backend, "http://127.0.0.1:9", &["--transfer-mix", "busy=1"]);
    let port = tls_listener(dir.path(), backend).await;

    // The system's authorities do not know the test's CA: refused before any request.
    let mut config = ApiConfig::new(
        format!("https://localhost:{port}"),
        "acme",
        EMULATOR_API_KEY,
    );
    config.retries = 0;
    let err = CallflowsClient::new(config.clone())
        .unwrap()
        .create(&request("tls-untrusted"))
        .await
        .unwrap_err();
    match &err {
        ApiError::Unreachable { reason, .. } => {
            assert!(reason.contains("certificate"), "{reason}");
        }
        other => panic!("an untrusted certificate is unreachable, not {other:?}"),
    }

    // With the CA: the session is created, and the platform saw the request.
    config.ca_file = Some(dir.path().join("ca.pem"));
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
