//! The HTTP layer without a socket: the router built in this process and driven with
//! `tower::ServiceExt::oneshot`, asserting status codes and the JSON error shape of refusals.
//! (The subprocess tests in `tests/` cover the same routes end to end.)

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use switchboard_server::{Config, http, server};
use tower::ServiceExt;

const TOKEN: &str = "router-test-token";

fn app() -> Arc<switchboard_server::http::App> {
    let config = Config {
        shards: 1,
        admin_token: Some(TOKEN.to_owned()),
        // Monday 11:00 in Singapore, so the support flow is open.
        clock_start: Some("2026-01-05T03:00:00Z".parse().unwrap()),
        ..Config::default()
    };
    server::build(&config).expect("the server builds")
}

async fn send(
    app: &Arc<switchboard_server::http::App>,
    request: Request<Body>,
) -> (StatusCode, Value) {
    let response = http::app(Arc::clone(app)).oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, json)
}

fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

fn webhook(body: &str) -> Request<Body> {
    Request::post("/webhooks")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not the JSON error shape: {body}"))
}

#[tokio::test]
async fn a_bad_query_without_the_token_is_a_401_not_a_400() {
    let app = app();
    let (status, body) = send(&app, get("/v1/sessions?limit=many", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(code(&body), "missing_credentials");
    let (status, body) = send(&app, get("/v1/sessions?limit=many", Some("wrong"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(code(&body), "bad_credentials");
}

#[tokio::test]
async fn a_bad_query_with_the_token_is_a_json_400_naming_the_parameter() {
    let app = app();
    let (status, body) = send(&app, get("/v1/sessions?limit=many", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_query");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("limit"), "{message}");

    let (status, body) = send(&app, get("/v1/sessions?offset=0&limit=5", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["limit"], 5);
}

#[tokio::test]
async fn a_bad_path_is_a_json_400() {
    let app = app();
    // %FF is not UTF-8: the path parameter cannot be decoded.
    let (status, body) = send(&app, get("/v1/sessions/%FF", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_path");
    let (status, body) = send(&app, get("/v1/flows/no-such-flow/report", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(code(&body), "not_found");
}

#[tokio::test]
async fn the_campaign_routes_check_the_token_before_their_path_and_query() {
    let app = app();
    // `%FF` is not UTF-8 (a bad path); `format` twice is a bad query.
    let bad = [
        "/v1/campaigns/%FF",
        "/v1/campaigns/%FF/export",
        "/v1/campaigns/c1/export?format=json&format=csv",
    ];
    for uri in bad {
        let (status, body) = send(&app, get(uri, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {body}");
        assert_eq!(code(&body), "missing_credentials", "{uri}");
    }
    let (status, body) = send(&app, get(bad[0], Some(TOKEN))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_path");
    let (status, body) = send(&app, get(bad[1], Some(TOKEN))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_path");
    let (status, body) = send(&app, get(bad[2], Some(TOKEN))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_query");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("format"),
        "{body}"
    );

    let control = Request::post("/v1/campaigns/%FF/pause")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, control).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let start = Request::post("/v1/campaigns?rate=fast")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, start).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let call = Request::post("/v1/calls")
        .body(Body::from("not json"))
        .unwrap();
    let (status, body) = send(&app, call).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // With the token, an unknown campaign is a JSON 404.
    let (status, body) = send(&app, get("/v1/campaigns/c1", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(code(&body), "not_found");
}

#[tokio::test]
async fn webhook_refusals_have_their_status_and_json_body() {
    let app = app();
    let (status, body) = send(&app, webhook("{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "invalid_json");

    let (status, body) = send(
        &app,
        webhook(r#"{"eventType":"CALL_ACTION","payload":{"callStatus":"CALL_RECEIVED"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "payload.sessionId");

    let request = Request::post("/webhooks")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let (status, body) = send(&app, request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(code(&body), "unsupported_media_type");

    let (status, body) = send(&app, get("/no/such/route", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(code(&body), "not_found");
}

#[tokio::test]
async fn a_call_is_answered_and_the_refusal_counters_exist_before_any_refusal() {
    let app = app();
    let (status, body) = send(&app, get("/metrics", None)).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = body.as_str().unwrap();
    for series in [
        r#"switchboard_auth_failures_total{reason="bad_credentials"} 0"#,
        r#"switchboard_bad_requests_total{reason="invalid_json"} 0"#,
        r#"switchboard_store_errors_total{kind="timeout"} 0"#,
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from:\n{metrics}"
        );
    }

    let (status, body) = send(
        &app,
        webhook(
            r#"{"namespace":"VOICE","eventType":"CALL_ACTION","payload":{"eventId":"e-1","sessionId":"router-1","callStatus":"CALL_RECEIVED","source":"+6591110000","destination":"+6568880001"}}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The support line is open at the pinned clock's hour.
    let prompt = body["callflow"].to_string();
    assert!(prompt.contains("Welcome to Acme support."), "{body}");
}
