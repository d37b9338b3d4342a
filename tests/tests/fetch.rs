//! Fetch nodes end to end: the real `switchboard` binary looks values up from a real HTTP
//! backend that each test starts on its own port, and the platform's side checks what callers
//! hear. The backend misbehaves on purpose (500, bad JSON, a missing field, a body over the cap,
//! slowness, absence) and counts what it is asked.
//!
//! One test runs two replicas on a real Redis (a private redis-server) and SIGKILLs the one
//! waiting for the backend: the platform's retry of the same webhook on the other replica
//! completes the call, and the backend sees the same `Idempotency-Key` twice.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use switchboard_tests::{Balancer, Call, RedisServer, Replicas, Server, stored, uuid};
use tokio::net::TcpListener;

const NUMBER: &str = "+6560000042";
const ADMIN: &str = "t0k";
const SECRET: &str = "s3cret-value-9f2c";
/// The Redis key prefix of the replica test.
const PREFIX: &str = "fetch";
/// The account the backend answers slowly enough to kill the replica that asked meanwhile.
const SLOW: &str = "10101010";

/// What the backend saw.
#[derive(Debug, Default)]
struct Seen {
    /// Requests per path.
    hits: HashMap<String, usize>,
    /// The `x-token` header of each request.
    tokens: Vec<String>,
    /// The `idempotency-key` header of each POST.
    keys: Vec<String>,
}

/// A backend on 127.0.0.1:0; the account number in the path picks its behaviour.
async fn backend() -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let state = Arc::clone(&state);
                    async move { Ok::<_, Infallible>(answer(request, &state).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

async fn answer(request: Request<Incoming>, seen: &Mutex<Seen>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    {
        let mut seen = seen.lock().unwrap();
        *seen.hits.entry(path.clone()).or_default() += 1;
        if let Some(token) = request.headers().get("x-token") {
            seen.tokens.push(token.to_str().unwrap().to_owned());
        }
        if let Some(key) = request.headers().get("idempotency-key") {
            seen.keys.push(key.to_str().unwrap().to_owned());
        }
    }
    let account = path.rsplit('/').next().unwrap_or_default().to_owned();
    let (status, body): (u16, Vec<u8>) = match account.as_str() {
        "11111111" => (
            200,
            br#"{"balance": 1520.75, "owner": {"name": "Ana"}}"#.to_vec(),
        ),
        "22222222" => (500, br#"{"error": "database down"}"#.to_vec()),
        "33333333" => (200, b"<html>not json</html>".to_vec()),
        "44444444" => (200, br#"{"owner": {"name": "Ben"}}"#.to_vec()),
        "55555555" => {
            let big = format!(r#"{{"balance": 1, "pad": "{}"}}"#, "x".repeat(100 * 1024));
            (200, big.into_bytes())
        }
        "66666666" => {
            // Slower than the node's timeout_ms.
            tokio::time::sleep(Duration::from_secs(3)).await;
            (
                200,
                br#"{"balance": 6, "owner": {"name": "Slow"}}"#.to_vec(),
            )
        }
        "77777777" => {
            // Slow, but within the timeout: long enough for a duplicate to arrive meanwhile.
            tokio::time::sleep(Duration::from_millis(800)).await;
            (
                200,
                br#"{"balance": 77, "owner": {"name": "Dup"}}"#.to_vec(),
            )
        }
        SLOW => {
            // Well within the timeout, but long enough to kill the replica waiting for it.
            tokio::time::sleep(Duration::from_millis(1000)).await;
            (
                200,
                br#"{"balance": 10.5, "owner": {"name": "Kim"}}"#.to_vec(),
            )
        }
        "88888888" => {
            // Within the node's timeout_ms (1500), but not within a 1 s answer budget.
            tokio::time::sleep(Duration::from_millis(1200)).await;
            (
                200,
                br#"{"balance": 88, "owner": {"name": "Late"}}"#.to_vec(),
            )
        }
        _ => (404, b"{}".to_vec()),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// The look-up flow, pointed at `base`.
fn flow(base: &str) -> String {
    format!(
        r#"
id: balance
numbers: ["{NUMBER}"]
start: account
fetch:
  base_url: "{base}"
  headers: {{ X-Token: "{{{{env.SB_TEST_TOKEN}}}}" }}
nodes:
  account:
    capture: {{ prompt: "Enter your account number.", var: account, min_digits: 8, max_digits: 8 }}
    next: lookup
  lookup:
    fetch:
      method: POST
      url: "/accounts/{{{{vars.account}}}}"
      body: {{ account: "{{{{vars.account}}}}" }}
      timeout_ms: 1500
      save: {{ balance: {{ from: /balance, type: number }}, name: /owner/name }}
    cases:
      - status: 404
        goto: unknown
    next: speak
    on_error: sorry
    on_timeout: slow
  speak:
    say: "Hello {{{{vars.name}}}}, your balance is {{{{vars.balance}}}} dollars."
    next: hangup
  unknown:
    say: "We do not know that account."
    next: hangup
  sorry:
    say: "Sorry, we cannot look up your balance now."
    next: hangup
  slow:
    say: "Our systems are slow today."
    next: hangup
"#
    )
}

struct Setup {
    server: Server,
    seen: Arc<Mutex<Seen>>,
    _dir: tempfile::TempDir,
}

/// The look-up flow pointed at `base`, in a file of a new directory (removed when dropped).
fn flow_file(base: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("balance.yaml");
    std::fs::write(&file, flow(base)).unwrap();
    let file = file.to_str().unwrap().to_owned();
    (dir, file)
}

/// The server's arguments for the flow in `file`, and `extra`.
fn serve_args<'a>(file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--flows",
        file,
        "--admin-token",
        ADMIN,
        "--fetch-env",
        "SB_TEST_TOKEN",
    ];
    args.extend_from_slice(extra);
    args
}

/// The environment the flow's `{{env.SB_TEST_TOKEN}}` reads.
const ENV: &[(&str, &str)] = &[("SB_TEST_TOKEN", SECRET)];

async fn setup_with(base: Option<&str>, extra: &[&str]) -> Setup {
    let (addr, seen) = backend().await;
    let base = base.map_or_else(|| format!("http://{addr}"), str::to_owned);
    let (dir, file) = flow_file(&base);
    let server = Server::start_with_env(&serve_args(&file, extra), ENV);
    Setup {
        server,
        seen,
        _dir: dir,
    }
}

async fn setup() -> Setup {
    setup_with(None, &[]).await
}

/// Starts a call and enters `account`; returns the answer to the entry.
async fn look_up(setup: &Setup, account: &str) -> (Call, switchboard_tests::Answer) {
    let http = setup.server.http();
    let mut call = Call::new(NUMBER);
    let first = call.start(&http).await;
    assert_eq!(first.node().as_deref(), Some("account"));
    let answer = call.press(&http, Some(account)).await;
    (call, answer)
}

#[tokio::test]
async fn a_balance_is_looked_up_and_spoken() {
    let setup = setup().await;
    let (call, answer) = look_up(&setup, "11111111").await;
    assert_eq!(
        answer.spoken(),
        "Hello Ana, your balance is 1520.75 dollars."
    );
    assert_eq!(answer.actions(), ["say", "hangup"]);
    {
        let seen = setup.seen.lock().unwrap();
        assert_eq!(seen.hits.get("/accounts/11111111"), Some(&1));
        // The allow-listed secret reached the backend, and the POST carried an idempotency
        // key naming the session.
        assert_eq!(seen.tokens, [SECRET]);
        assert_eq!(seen.keys.len(), 1);
        assert!(seen.keys[0].starts_with(&call.session), "{:?}", seen.keys);
    }

    // The secret is nowhere a person or a scraper could read it.
    let http = setup.server.http();
    let session = http
        .get(&format!("/v1/sessions/{}", call.session), Some(ADMIN))
        .await;
    assert_eq!(session.status, 200);
    let metrics = http.get("/metrics", None).await;
    let graph = http.get("/v1/flows/balance/graph.svg", Some(ADMIN)).await;
    assert_eq!(graph.status, 200);
    for body in [&session.body, &metrics.body, &graph.body] {
        assert!(!String::from_utf8_lossy(body).contains(SECRET));
    }
    assert!(setup.server.log().iter().all(|l| !l.contains(SECRET)));
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        metrics.contains(
            r#"switchboard_fetch_requests_total{flow="balance",node="lookup",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"switchboard_fetch_duration_seconds_count{flow="balance",node="lookup"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn every_backend_failure_takes_its_target() {
    let setup = setup().await;
    for (account, expected) in [
        ("22222222", "Sorry, we cannot look up your balance now."),
        ("33333333", "Sorry, we cannot look up your balance now."),
        ("44444444", "Sorry, we cannot look up your balance now."),
        ("55555555", "Sorry, we cannot look up your balance now."),
        ("99999999", "We do not know that account."),
    ] {
        let (_, answer) = look_up(&setup, account).await;
        assert_eq!(answer.spoken(), expected, "account {account}");
        assert_eq!(answer.actions(), ["say", "hangup"], "account {account}");
    }
    let metrics = setup.server.http().get("/metrics", None).await;
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    for outcome in [
        "http_error",
        "bad_json",
        "missing_field",
        "too_large",
        "status_case",
    ] {
        assert!(
            metrics.contains(&format!(
                r#"switchboard_fetch_requests_total{{flow="balance",node="lookup",outcome="{outcome}"}} 1"#
            )),
            "{outcome}: {metrics}"
        );
    }
}

#[tokio::test]
async fn a_backend_slower_than_the_timeout_takes_on_timeout() {
    let setup = setup().await;
    let (_, answer) = look_up(&setup, "66666666").await;
    assert_eq!(answer.spoken(), "Our systems are slow today.");
    assert_eq!(answer.actions(), ["say", "hangup"]);
}

#[tokio::test]
async fn the_answer_budget_cuts_a_fetch_short() {
    // timeout_ms is 1500 and the backend answers in 1.2 s, but the webhook must be answered
    // within 1 s: the fetch gets 900 ms and the call takes on_timeout.
    let tight = setup_with(None, &["--answer-budget", "1s"]).await;
    let (_, answer) = look_up(&tight, "88888888").await;
    assert_eq!(answer.spoken(), "Our systems are slow today.");
    // With the default budget (3 s) the same answer is in time.
    let roomy = setup().await;
    let (_, answer) = look_up(&roomy, "88888888").await;
    assert_eq!(answer.spoken(), "Hello Late, your balance is 88 dollars.");
}

#[tokio::test]
async fn a_backend_that_is_down_takes_on_error() {
    // A port that was bound and released: nothing listens there.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let setup = setup_with(Some(&format!("http://{dead}")), &[]).await;
    let (_, answer) = look_up(&setup, "11111111").await;
    assert_eq!(
        answer.spoken(),
        "Sorry, we cannot look up your balance now."
    );
    let metrics = setup.server.http().get("/metrics", None).await;
    assert!(String::from_utf8_lossy(&metrics.body).contains(
        r#"switchboard_fetch_requests_total{flow="balance",node="lookup",outcome="unreachable"} 1"#
    ));
}

#[tokio::test]
async fn a_duplicate_during_a_slow_fetch_waits_for_the_same_answer() {
    let setup = setup().await;
    let http = setup.server.http();
    let mut call = Call::new(NUMBER);
    call.start(&http).await;
    // The same delivery twice: the second arrives while the first waits for the backend.
    let body = call.completed(Some("77777777"), None);
    let first = {
        let http = http.clone();
        let body = body.clone();
        tokio::spawn(async move { http.webhook(body).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = http.webhook(body).await;
    let first = first.await.unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 200);
    assert_eq!(first.body, second.body, "byte-identical answers");
    assert!(
        String::from_utf8_lossy(&first.body).contains("Hello Dup, your balance is 77 dollars.")
    );
    assert_eq!(
        setup.seen.lock().unwrap().hits.get("/accounts/77777777"),
        Some(&1),
        "exactly one backend request"
    );
}

/// Polls `done` every 10 ms until it holds, at most 10 s; panics naming `what` otherwise.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_during_a_fetch_is_retried_on_another_that_completes_the_call() {
    let redis = RedisServer::start();
    let (addr, seen) = backend().await;
    let (_dir, file) = flow_file(&format!("http://{addr}"));
    let mut servers = Replicas::start(2, &redis.url(), PREFIX, &serve_args(&file, &[]), ENV);
    let balancer = Balancer::new(&servers.iter().collect::<Vec<_>>());
    let (a, b) = (0, 1);
    let path = format!("/accounts/{SLOW}");
    let hits = |seen: &Mutex<Seen>| seen.lock().unwrap().hits.get(&path).copied();

    // The call starts on replica A, which stores it in Redis waiting for the account number.
    let mut call = Call::new(NUMBER);
    let (start, entry) = (uuid(), uuid());
    let first = call.call_action("CALL_RECEIVED", &start, None, None, None);
    let first = call.accept(balancer.send_to(a, first.into()).await.expect("A answers"));
    assert_eq!(first.node().as_deref(), Some("account"));

    // The caller's entry reaches A, which asks the (slow) backend; A is killed while it waits.
    let body = Bytes::from(call.completed_as(&entry, Some(SLOW), None));
    let to_a = {
        let http = balancer.replica(a).clone();
        let body = body.clone();
        tokio::spawn(async move { http.try_webhook(body).await })
    };
    wait_until("the backend was asked by replica A", || {
        hits(&seen) == Some(1)
    })
    .await;
    servers[a].signal("KILL");
    assert!(
        servers[a].wait_exit(Duration::from_secs(5)).is_some(),
        "replica A survived SIGKILL"
    );
    let lost = to_a.await.unwrap();
    assert!(
        lost.is_err(),
        "replica A answered before it was killed (the backend was not slow enough): {:?}",
        lost.map(|r| String::from_utf8_lossy(&r.body).into_owned())
    );
    // Nothing of the entry reached Redis: the call still waits for the account number.
    let mut con = redis.connect();
    let before = stored(&mut con, PREFIX, &call.session).expect("the call is stored");
    assert_eq!((before.version, before.state.seq), (1, 1));
    assert_eq!(before.state.node, "account");

    // The platform retries the same webhook (same eventId) on replica B, which resumes the call
    // from Redis, asks the backend again and answers with what it said.
    let reply = balancer
        .send_to(b, body.clone())
        .await
        .expect("replica B answers");
    let answer = call.accept(reply);
    assert_eq!(answer.spoken(), "Hello Kim, your balance is 10.5 dollars.");
    assert_eq!(answer.actions(), ["say", "hangup"]);
    assert!(
        answer.action_id().is_some_and(|id| id.ends_with(":2")),
        "{:?}: the second step",
        answer.action_id()
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.hits.get(&path), Some(&2), "asked once by each replica");
        assert_eq!(seen.tokens, [SECRET, SECRET]);
        // The retry carries the idempotency key of the request the killed replica made: the
        // backend can tell it is the same request.
        assert_eq!(seen.keys.len(), 2, "{:?}", seen.keys);
        assert_eq!(seen.keys[0], seen.keys[1], "the same Idempotency-Key");
        // SESSION:SEQ-N-NODE: the seq the step started from, the first fetch of the step.
        assert_eq!(seen.keys[0], format!("{}:1-1-lookup", call.session));
    }
    // A third delivery of the same webhook (to either replica still up) is a duplicate: the
    // same answer, the backend not asked again.
    let again = balancer.send_to(b, body).await.expect("replica B answers");
    assert_eq!(again.body, answer.body, "byte-identical answers");
    assert_eq!(hits(&seen), Some(2));

    // The record in Redis is the step applied once, as scripted.
    let record = stored(&mut con, PREFIX, &call.session).expect("the call is stored");
    assert_eq!((record.version, record.state.seq), (2, 2));
    let path_taken: Vec<&str> = record.state.path.iter().map(String::as_str).collect();
    assert_eq!(path_taken, ["account", "lookup", "speak"]);
    let vars: Vec<(&str, &str)> = record
        .state
        .vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vars,
        [("account", SLOW), ("balance", "10.5"), ("name", "Kim")]
    );
    assert_eq!(record.events, [start, entry], "each event remembered once");

    // The call ends on B: its summary deletes the record, and B's report counts the end at
    // the node the flow hung up after.
    let http = balancer.replica(b);
    call.end(http, "COMPLETED").await;
    assert!(
        stored(&mut con, PREFIX, &call.session).is_none(),
        "the summary deletes the session's state"
    );
    let report = http
        .get("/v1/flows/balance/report", Some(ADMIN))
        .await
        .json();
    assert_eq!(report["sessions_ended"], 1, "{report}");
    let speak = report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["node"] == "speak")
        .expect("the speak node is reported");
    assert_eq!(speak["exits"], 1, "{report}");
    let metrics = http.get("/metrics", None).await;
    assert!(
        String::from_utf8_lossy(&metrics.body).contains(
            r#"switchboard_fetch_requests_total{flow="balance",node="lookup",outcome="ok"} 1"#
        ),
        "replica B's fetch counted"
    );
}

#[tokio::test]
async fn a_flow_reading_an_env_name_not_allow_listed_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("balance.yaml");
    std::fs::write(&file, flow("http://127.0.0.1:9")).unwrap();
    let (code, _, stderr) = switchboard_tests::run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--flows",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("which the server does not allow-list; add SB_TEST_TOKEN to the server's fetch_env setting"),
        "{stderr}"
    );
    assert!(stderr.contains("balance.yaml:7:"), "{stderr}");
}
