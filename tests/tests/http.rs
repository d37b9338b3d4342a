//! The HTTP contract of the real binary: bad input, authentication, the admin API, health,
//! reloads (API and SIGHUP), configuration errors and graceful shutdown.

use std::time::Duration;

use switchboard_tests::{Call, Server, run};

const RESTAURANT: &str = "+6568888888";
const ADMIN: &str = "t0k";

fn error_of(reply: &switchboard_tests::Reply) -> (String, String, Option<String>) {
    let json = reply.json();
    let error = &json["error"];
    (
        error["code"].as_str().expect("error.code").to_owned(),
        error["message"].as_str().expect("error.message").to_owned(),
        error["field"].as_str().map(str::to_owned),
    )
}

#[tokio::test]
async fn bad_webhooks_are_4xx_naming_the_problem() {
    let server = Server::start(&["--body-limit", "4096"]);
    let http = server.http();
    let json = [("content-type", "application/json")];

    // (what, body, status, error code, field)
    type Case = (
        &'static str,
        Vec<u8>,
        u16,
        &'static str,
        Option<&'static str>,
    );
    let cases: Vec<Case> = vec![
        ("malformed JSON", b"{\"eventType\":".to_vec(), 400, "invalid_json", None),
        ("not an object", b"[1,2]".to_vec(), 400, "invalid_field", Some("$")),
        (
            "missing sessionId",
            br#"{"eventType":"CALL_ACTION","payload":{"callStatus":"CALL_RECEIVED","destination":"+6568888888"}}"#.to_vec(),
            400,
            "missing_field",
            Some("payload.sessionId"),
        ),
        (
            "unknown eventType",
            br#"{"eventType":"CALL_PARTY","payload":{"sessionId":"s"}}"#.to_vec(),
            400,
            "unknown_event_type",
            Some("eventType"),
        ),
        (
            "wrong type",
            br#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"ACTION_COMPLETED","sipCode":"abc"}}"#.to_vec(),
            400,
            "invalid_field",
            Some("payload.sipCode"),
        ),
        (
            "missing destination of a new call",
            br#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"CALL_RECEIVED"}}"#.to_vec(),
            400,
            "missing_field",
            Some("payload.destination"),
        ),
        ("over the body limit", vec![b' '; 5000], 413, "body_too_large", None),
    ];
    for (what, body, status, code, field) in cases {
        let reply = http.send("POST", "/webhooks", &json, body).await;
        assert_eq!(
            reply.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let (got_code, message, got_field) = error_of(&reply);
        assert_eq!(got_code, code, "{what}: {message}");
        assert_eq!(got_field.as_deref(), field, "{what}: {message}");
        assert!(!message.is_empty());
    }

    // Wrong content type.
    let call = Call::new(RESTAURANT);
    let reply = http
        .send(
            "POST",
            "/webhooks",
            &[("content-type", "text/plain")],
            call.received(),
        )
        .await;
    assert_eq!(reply.status, 415);
    assert_eq!(error_of(&reply).0, "unsupported_media_type");

    // Unknown route and wrong method.
    assert_eq!(http.get("/nope", None).await.status, 404);
    assert_eq!(http.get("/webhooks", None).await.status, 405);

    // The server is still fine.
    let reply = http.webhook(call.received()).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn aliases_accept_every_event_type() {
    let server = Server::start(&[]);
    let http = server.http();
    let call = Call::new(RESTAURANT);
    let json = [("content-type", "application/json; charset=utf-8")];
    let reply = http
        .send("POST", "/webhooks/vca", &json, call.received())
        .await;
    assert_eq!(reply.status, 200);
    let status = format!(
        r#"{{"namespace":"VOICE","eventType":"CALL_STATUS","payload":{{"sessionId":"{}","callId":"c1","callStatus":"RINGING","callDuration":"0"}}}}"#,
        call.session
    );
    assert_eq!(
        http.send("POST", "/webhooks", &json, status).await.status,
        200
    );
    let reply = http
        .send("POST", "/webhooks/vss", &json, call.summary("COMPLETED"))
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn webhook_auth_and_the_ip_allowlist() {
    let server = Server::start(&[
        "--webhook-auth",
        "Basic c3dpdGNoYm9hcmQ6czNjcjN0",
        "--allow-ips",
        "127.0.0.0/8, 203.0.113.0/24",
        "--trusted-proxy-header",
        "X-Forwarded-For",
    ]);
    let http = server.http();
    let call = Call::new(RESTAURANT);
    let ok_auth = ("authorization", "Basic c3dpdGNoYm9hcmQ6czNjcjN0");
    let json = ("content-type", "application/json");

    let missing = http
        .send("POST", "/webhooks", &[json], call.received())
        .await;
    assert_eq!(missing.status, 401);
    assert_eq!(error_of(&missing).0, "missing_credentials");

    let wrong = http
        .send(
            "POST",
            "/webhooks",
            &[json, ("authorization", "Basic bm9wZQ==")],
            call.received(),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(error_of(&wrong).0, "bad_credentials");

    let forwarded_outside = http
        .send(
            "POST",
            "/webhooks",
            &[json, ok_auth, ("x-forwarded-for", "198.51.100.7")],
            call.received(),
        )
        .await;
    assert_eq!(forwarded_outside.status, 403);
    assert_eq!(error_of(&forwarded_outside).0, "ip_not_allowed");

    let forwarded_inside = http
        .send(
            "POST",
            "/webhooks",
            &[json, ok_auth, ("x-forwarded-for", "203.0.113.50, 10.0.0.1")],
            call.received(),
        )
        .await;
    assert_eq!(forwarded_inside.status, 200);

    // No proxy header: the socket's address (127.0.0.1) is in the allowlist.
    let direct = http
        .send(
            "POST",
            "/webhooks",
            &[json, ok_auth],
            call.completed(Some("3"), None),
        )
        .await;
    assert_eq!(direct.status, 200);

    // Health checks need no credentials.
    assert_eq!(http.get("/healthz", None).await.status, 200);
}

#[tokio::test]
async fn the_admin_api_needs_its_token_and_lists_flows() {
    let disabled = Server::start(&[]);
    let reply = disabled.http().get("/v1/flows", Some("anything")).await;
    assert_eq!(reply.status, 403);
    assert_eq!(error_of(&reply).0, "admin_disabled");

    let server = Server::start(&["--admin-token", ADMIN]);
    let http = server.http();
    assert_eq!(http.get("/v1/flows", None).await.status, 401);
    assert_eq!(http.get("/v1/flows", Some("wrong")).await.status, 401);
    let flows = http.get("/v1/flows", Some(ADMIN)).await;
    assert_eq!(flows.status, 200);
    let ids: Vec<String> = flows.json()["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["bank", "clinic", "restaurant", "support", "verify"]);

    let mut calls = Vec::new();
    for _ in 0..3 {
        let mut call = Call::new(RESTAURANT);
        call.start(&http).await;
        calls.push(call);
    }
    let page = http.get("/v1/sessions?limit=2", Some(ADMIN)).await.json();
    assert_eq!(page["count"], 3);
    assert_eq!(page["sessions"].as_array().unwrap().len(), 2);
    let one = http
        .get(&format!("/v1/sessions/{}", calls[0].session), Some(ADMIN))
        .await
        .json();
    assert_eq!(one["state"]["node"], "main");
    assert_eq!(one["state"]["invalid"], 0);
    assert_eq!(http.get("/v1/sessions/nope", Some(ADMIN)).await.status, 404);

    let ready = http.get("/readyz", None).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["store"]["kind"], "memory");
}

fn write_flow(dir: &std::path::Path, prompt: &str) {
    let flow = format!(
        r#"id: tiny
numbers: ["+6560000001"]
start: main
nodes:
  main:
    menu:
      prompt: "{prompt}"
      options: {{ "1": bye }}
  bye:
    say: "Bye."
    next: hangup
"#
    );
    std::fs::write(dir.join("tiny.yaml"), flow).unwrap();
}

#[tokio::test]
async fn reloads_swap_flows_keep_live_calls_and_refuse_broken_files() {
    let dir = tempdir();
    write_flow(&dir, "Version one. Press 1.");
    let server = Server::start(&["--flows", dir.to_str().unwrap(), "--admin-token", ADMIN]);
    let http = server.http();

    let mut old_call = Call::new("+6560000001");
    assert!(
        old_call
            .start(&http)
            .await
            .spoken()
            .starts_with("Version one.")
    );

    // A new version via the API: new calls get it.
    write_flow(&dir, "Version two. Press 1.");
    let reload = http
        .send(
            "POST",
            "/v1/flows/reload",
            &[("authorization", "Bearer t0k")],
            "",
        )
        .await;
    assert_eq!(
        reload.status,
        200,
        "{}",
        String::from_utf8_lossy(&reload.body)
    );
    let mut new_call = Call::new("+6560000001");
    assert!(
        new_call
            .start(&http)
            .await
            .spoken()
            .starts_with("Version two.")
    );

    // The call that started on version one finishes on it.
    let bye = old_call.press(&http, Some("1")).await;
    assert_eq!(bye.actions(), ["say", "hangup"]);

    // A broken file: 422 listing the problem with its position; version two keeps serving.
    std::fs::write(
        dir.join("tiny.yaml"),
        "id: tiny\nnumbers: [\"+6560000001\"]\nstart: nowhere\nnodes: {}\n",
    )
    .unwrap();
    let broken = http
        .send(
            "POST",
            "/v1/flows/reload",
            &[("authorization", "Bearer t0k")],
            "",
        )
        .await;
    assert_eq!(broken.status, 422);
    let json = broken.json();
    assert_eq!(json["error"]["code"], "flow_errors");
    let first = json["error"]["diagnostics"][0].as_str().unwrap();
    assert!(first.contains("tiny.yaml:"), "{first}");
    let mut third = Call::new("+6560000001");
    assert!(
        third
            .start(&http)
            .await
            .spoken()
            .starts_with("Version two.")
    );

    // SIGHUP reloads too.
    write_flow(&dir, "Version three. Press 1.");
    server.signal("HUP");
    let mut seen = false;
    for _ in 0..100 {
        let mut probe = Call::new("+6560000001");
        if probe
            .start(&http)
            .await
            .spoken()
            .starts_with("Version three.")
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "SIGHUP did not reload the flows: {:?}", server.log());
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let mut server = Server::start(&["--shutdown-grace", "5s"]);
    let http = server.http();
    let mut call = Call::new(RESTAURANT);
    call.start(&http).await;
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits after SIGTERM");
    assert!(
        status.success(),
        "exit status {status:?}; log: {:?}",
        server.log()
    );
    let log = server.log().join("\n");
    assert!(log.contains("shutdown complete"), "{log}");

    // A SIGTERM the moment the server has announced itself drains too: the handler is in
    // place before the "listening on" line, not installed later by the serving task.
    for _ in 0..5 {
        let mut fresh = Server::start(&[]);
        fresh.signal("TERM");
        let status = fresh
            .wait_exit(Duration::from_secs(15))
            .expect("the server exits after SIGTERM");
        assert!(
            status.success(),
            "exit status {status:?}; log: {:?}",
            fresh.log()
        );
    }
}

#[test]
fn invalid_configuration_exits_2_naming_the_key() {
    let (code, _, stderr) = run(&["serve", "--listen", "nowhere"], &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("config key listen (from --listen)"),
        "{stderr}"
    );

    let (code, _, stderr) = run(&["serve"], &[("SWITCHBOARD_IDLE_TIMEOUT", "ten")]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("config key idle_timeout (from SWITCHBOARD_IDLE_TIMEOUT)"),
        "{stderr}"
    );

    let dir = tempdir();
    let file = dir.join("sb.toml");
    std::fs::write(&file, "mailbx = 3\n").unwrap();
    let (code, _, stderr) = run(&["serve", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("config key mailbx") && stderr.contains("unknown key"),
        "{stderr}"
    );

    // A broken flow directory: every problem, then exit 2.
    std::fs::write(
        dir.join("bad.yaml"),
        "id: bad\nstart: main\nnodes:\n  main: { say: hi, next: nowhere }\n",
    )
    .unwrap();
    let (code, _, stderr) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--flows",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("bad.yaml:4:"), "{stderr}");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-test-{}", switchboard_tests::uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn json_logs_carry_the_session_id() {
    let server = Server::start(&["--log-format", "json"]);
    let http = server.http();
    let mut call = Call::new(RESTAURANT);
    call.start(&http).await;
    call.end(&http, "COMPLETED").await;
    let mut started = None;
    for _ in 0..100 {
        started = server
            .log()
            .into_iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
            .find(|line| line["message"] == "session ended");
        if started.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line =
        started.unwrap_or_else(|| panic!("no JSON 'session ended' line: {:?}", server.log()));
    assert_eq!(line["session"], call.session.as_str());
    assert_eq!(line["flow"], "restaurant");
    assert_eq!(line["status"], "COMPLETED");
    assert_eq!(line["level"], "INFO");
}
