//! The load generator against in-test servers: a correct scripted IVR, and servers broken in
//! one way each (invalid callflows, 500s, no answer, inconsistent duplicates, a stall). Every
//! test runs the built binary and asserts on its exit status and JSON report, as a user would.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{loadgen, num, scripted_ivr, serve, target};
use serde_json::Value;

fn answer(status: u16, body: String) -> (StatusCode, String) {
    (StatusCode::from_u16(status).unwrap(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_ivr_gives_zero_errors_and_exit_0() {
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let router = Router::new().route(
        "/webhooks",
        post(move |headers: HeaderMap, body: Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    != Some("Bearer t0ken")
                {
                    return answer(401, "missing the auth header".to_owned());
                }
                let (status, body) = scripted_ivr(&body);
                answer(status, body)
            }
        }),
    );
    let addr = serve(router).await;
    let run = loadgen(&[
        "--target",
        &target(addr),
        "--auth",
        "Bearer t0ken",
        "--script",
        "1",
        "--calls",
        "20",
        "--concurrency",
        "4",
        "--seed",
        "7",
        "--duplicate",
        "0.3",
        "--reorder",
        "0.3",
        "--delay",
        "0.2",
        "--delay-max",
        "20ms",
        "--call-status",
    ])
    .await;
    let r = &run.report;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(num(r, "/errors"), 0.0, "{}", run.stdout);
    assert_eq!(num(r, "/calls/started"), 20.0);
    assert_eq!(num(r, "/calls/completed"), 20.0);
    assert_eq!(num(r, "/calls/by_outcome/hangup"), 20.0, "{}", run.stdout);
    // CALL_STATUS, CALL_RECEIVED, ACTION_COMPLETED and SESSION_SUMMARY per call, plus copies.
    let copies = num(r, "/webhooks/copies");
    assert!(copies > 0.0, "no fault-injected copies were sent: {r}");
    assert_eq!(num(r, "/webhooks/sent"), 80.0 + copies);
    assert_eq!(seen.load(Ordering::Relaxed) as f64, 80.0 + copies);
    assert!(num(r, "/duplicate_consistency/compared") > 0.0);
    for kind in [
        "CALL_RECEIVED",
        "ACTION_COMPLETED",
        "SESSION_SUMMARY",
        "CALL_STATUS",
    ] {
        assert_eq!(
            num(r, &format!("/latency_ms/{kind}/count")),
            20.0,
            "{kind}: {r}"
        );
    }
    assert!(run.stdout.contains("PASS"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_callflows_are_reported_with_their_json() {
    let router = Router::new().route(
        "/webhooks",
        post(|| async {
            r#"{"callflow":[{"action":"say","params":{"text":"Hi","voiceProfile":"en-US-BenjaminRUS","repetition":4}}]}"#
        }),
    );
    let addr = serve(router).await;
    let run = loadgen(&[
        "--target",
        &target(addr),
        "--calls",
        "6",
        "--concurrency",
        "2",
    ])
    .await;
    let r = &run.report;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(num(r, "/protocol_violations/answers"), 6.0, "{r}");
    assert_eq!(num(r, "/protocol_violations/by_code/-1009"), 6.0, "{r}");
    assert_eq!(num(r, "/calls/by_outcome/failed"), 6.0, "{r}");
    let sample = &r["protocol_violations"]["samples"][0];
    assert!(
        sample["body"]
            .as_str()
            .unwrap()
            .contains(r#""repetition":4"#),
        "{sample}"
    );
    assert!(
        sample["violations"][0]
            .as_str()
            .unwrap()
            .contains("$.callflow[0].params.repetition"),
        "{sample}"
    );
    assert!(run.stdout.contains("protocol violations"), "{}", run.stdout);
    assert!(run.stdout.contains("FAIL"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500s_are_counted_by_code_and_fail_the_run() {
    let router = Router::new().route(
        "/webhooks",
        post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
    );
    let addr = serve(router).await;
    let run = loadgen(&[
        "--target",
        &target(addr),
        "--calls",
        "5",
        "--concurrency",
        "5",
    ])
    .await;
    let r = &run.report;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // The CALL_RECEIVED of each call and the SESSION_SUMMARY that reports its failure.
    assert_eq!(num(r, "/http_errors/500"), 10.0, "{r}");
    assert_eq!(num(r, "/calls/by_outcome/failed"), 5.0, "{r}");
    assert_eq!(num(r, "/errors"), 10.0, "{r}");
    assert!(run.stdout.contains("HTTP errors: 500 10"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_within_max_error_rate_pass() {
    // Every fourth answer is a 503; the others are the scripted IVR.
    let n = Arc::new(AtomicU64::new(0));
    let router = Router::new().route(
        "/webhooks",
        post(move |body: Bytes| {
            let n = n.clone();
            async move {
                if n.fetch_add(1, Ordering::Relaxed) % 4 == 3 {
                    return answer(503, String::new());
                }
                let (status, body) = scripted_ivr(&body);
                answer(status, body)
            }
        }),
    );
    let addr = serve(router).await;
    let args = [
        "--target",
        &target(addr),
        "--script",
        "1",
        "--calls",
        "8",
        "--concurrency",
        "1",
    ];
    let strict = loadgen(&args).await;
    assert_eq!(strict.code, 1, "{}", strict.stdout);
    assert!(num(&strict.report, "/http_errors/503") > 0.0);
    let lenient = loadgen(&[&args[..], &["--max-error-rate", "0.5"]].concat()).await;
    assert_eq!(lenient.code, 0, "{}", lenient.stdout);
    assert!(num(&lenient.report, "/errors") > 0.0);
    assert_eq!(lenient.report["passed"], Value::Bool(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_gives_timeouts() {
    let router = Router::new().route(
        "/webhooks",
        post(|| async {
            std::future::pending::<()>().await;
            ""
        }),
    );
    let addr = serve(router).await;
    let run = loadgen(&[
        "--target",
        &target(addr),
        "--calls",
        "3",
        "--concurrency",
        "3",
        "--timeout",
        "200ms",
    ])
    .await;
    let r = &run.report;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(num(r, "/timeouts/CALL_RECEIVED"), 3.0, "{r}");
    assert_eq!(num(r, "/timeouts/SESSION_SUMMARY"), 3.0, "{r}");
    assert_eq!(num(r, "/calls/by_outcome/failed"), 3.0, "{r}");
    assert!(
        run.stdout.contains("timeouts: CALL_RECEIVED 3"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inconsistent_duplicate_answers_are_caught() {
    // A server that is not idempotent: every answer carries a fresh clientActionId.
    let n = Arc::new(AtomicU64::new(0));
    let router = Router::new().route(
        "/webhooks",
        post(move |body: Bytes| {
            let n = n.clone();
            async move {
                let (status, body) = scripted_ivr(&body);
                let nth = n.fetch_add(1, Ordering::Relaxed);
                let body = body.replace(
                    r#""clientActionId":"menu""#,
                    &format!(r#""clientActionId":"menu{nth}""#),
                );
                // Accept the echo of any numbered menu.
                answer(status, body)
            }
        }),
    );
    let addr = serve(router).await;
    let run = loadgen(&[
        "--target",
        &target(addr),
        "--script",
        "1",
        "--calls",
        "4",
        "--concurrency",
        "2",
        "--duplicate",
        "1",
    ])
    .await;
    let r = &run.report;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(num(r, "/duplicate_consistency/failures") >= 4.0, "{r}");
    assert!(num(r, "/duplicate_consistency/failures_by_delivery/concurrent") >= 4.0);
    let sample = &r["duplicate_consistency"]["samples"][0];
    assert_eq!(sample["event"], "CALL_RECEIVED", "{sample}");
    assert_ne!(sample["first"], sample["second"]);
    assert!(
        run.stdout.contains("duplicate-consistency failures"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_copies_must_get_the_same_answer() {
    let consistent = serve(Router::new().route(
        "/webhooks",
        post(|body: Bytes| async move {
            let (status, body) = scripted_ivr(&body);
            answer(status, body)
        }),
    ))
    .await;
    let args = |addr| {
        [
            "--target".to_owned(),
            target(addr),
            "--script".to_owned(),
            "1".to_owned(),
            "--calls".to_owned(),
            "4".to_owned(),
            "--reorder".to_owned(),
            "1".to_owned(),
        ]
    };
    let run = loadgen(&args(consistent).each_ref().map(String::as_str)).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // Every delivery of the three per call was copied late, and every copy matched.
    assert_eq!(
        num(&run.report, "/duplicate_consistency/compared"),
        12.0,
        "{}",
        run.report
    );

    // A server that answers a late copy with the session's latest answer (as Switchboard
    // does: a session keeps one answer, its last) is consistent too; one that treats a second
    // CALL_RECEIVED of a session as a new call of its own is not.
    for (repeat, failures) in [(common::GOODBYE, 0.0), (FRESH_MENU, 4.0)] {
        let sessions = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let server = serve(Router::new().route(
            "/webhooks",
            post(move |body: Bytes| {
                let sessions = sessions.clone();
                async move {
                    if let Ok(switchboard_protocol::Webhook::CallAction(a)) =
                        switchboard_protocol::Webhook::from_slice(&body)
                        && a.client_action_id.is_none()
                        && !sessions.lock().unwrap().insert(a.session_id.clone())
                    {
                        return answer(200, repeat.to_owned());
                    }
                    let (status, body) = scripted_ivr(&body);
                    answer(status, body)
                }
            }),
        ))
        .await;
        let run = loadgen(&args(server).each_ref().map(String::as_str)).await;
        let r = &run.report;
        assert_eq!(
            num(r, "/duplicate_consistency/failures_by_delivery/late"),
            failures,
            "{r}"
        );
        if failures > 0.0 {
            assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
            assert_eq!(r["duplicate_consistency"]["samples"][0]["delivery"], "late");
        } else {
            assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        }
    }
}

/// The welcome menu of a new call: neither a session's first answer nor its latest.
const FRESH_MENU: &str = r#"{"clientActionId":"menu-again","callflow":[{"action":"sayAndCapture","params":{"promptMessage":"Welcome, new caller. Press 1.","voiceProfile":"en-US-BenjaminRUS","maxDigits":1}}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_latency_includes_a_stall_from_the_intended_send_time() {
    // The first request stalls the server's only connection for a second; the calls scheduled
    // meanwhile queue for it. Measured from when they were *meant* to go, they all waited.
    let first = Arc::new(AtomicBool::new(true));
    let router = Router::new().route(
        "/webhooks",
        post(move |body: Bytes| {
            let first = first.clone();
            async move {
                if first.swap(false, Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let (status, body) = scripted_ivr(&body);
                answer(status, body)
            }
        }),
    );
    let addr = serve(router).await;
    // 50 calls at 100/s are all scheduled within 0.5 s, inside the stall.
    let run = loadgen(&[
        "--target",
        &target(addr),
        "--script",
        "1",
        "--rate",
        "100",
        "--calls",
        "50",
        "--connections",
        "1",
    ])
    .await;
    let r = &run.report;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(num(r, "/calls/completed"), 50.0);
    // Call i was due at i*10 ms and answered after the 1 s stall: at least 510 ms each.
    let latency = num(r, "/latency_ms/CALL_RECEIVED/p50");
    assert!(latency >= 500.0, "p50 {latency} ms hides the stall: {r}");
    assert!(num(r, "/latency_ms/CALL_RECEIVED/max") >= 1000.0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_errors_are_sentences_with_exit_2() {
    let run = loadgen(&["--target", "localhost:8080", "--calls", "1"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("is not a URL"), "{}", run.stderr);
    // A port nothing listens on: bind one, then free it.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let run = loadgen(&["--target", &target(addr), "--calls", "1"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot reach"), "{}", run.stderr);
    let run = loadgen(&["--rate", "-3"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_repeats_the_callers() {
    // The server records the digits each call pressed, in call order of arrival per session.
    let digits = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = digits.clone();
    let router = Router::new().route(
        "/webhooks",
        post(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                if let Ok(switchboard_protocol::Webhook::CallAction(a)) =
                    switchboard_protocol::Webhook::from_slice(&body)
                    && a.client_action_id.as_deref() == Some("menu")
                {
                    seen.lock()
                        .unwrap()
                        .push(a.dtmf().unwrap_or("-").to_owned());
                }
                let (status, body) = scripted_ivr(&body);
                answer(status, body)
            }
        }),
    );
    let addr = serve(router).await;
    let args = [
        "--target",
        &target(addr),
        "--calls",
        "30",
        "--concurrency",
        "1",
        "--seed",
        "42",
    ];
    let first = loadgen(&args).await;
    let a = std::mem::take(&mut *digits.lock().unwrap());
    let second = loadgen(&args).await;
    let b = std::mem::take(&mut *digits.lock().unwrap());
    assert_eq!(first.report["calls"], second.report["calls"]);
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_spread_round_robin_over_targets() {
    let mut addrs = Vec::new();
    let mut counters = Vec::new();
    for _ in 0..2 {
        let n = Arc::new(AtomicU64::new(0));
        counters.push(n.clone());
        addrs.push(
            serve(Router::new().route(
                "/webhooks",
                post(move |body: Bytes| {
                    let n = n.clone();
                    async move {
                        n.fetch_add(1, Ordering::Relaxed);
                        let (status, body) = scripted_ivr(&body);
                        answer(status, body)
                    }
                }),
            ))
            .await,
        );
    }
    let (a, b) = (target(addrs[0]), target(addrs[1]));
    let run = loadgen(&[
        "--target",
        &a,
        "--target",
        &b,
        "--script",
        "1",
        "--calls",
        "4",
        "--concurrency",
        "1",
    ])
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // Three deliveries per call, alternating: a session spans both replicas.
    assert_eq!(counters[0].load(Ordering::Relaxed), 6);
    assert_eq!(counters[1].load(Ordering::Relaxed), 6);
}
