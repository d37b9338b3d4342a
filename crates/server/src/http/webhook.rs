//! `POST /webhooks`: read the body once, parse it into a [`Webhook`], and route it.
//!
//! `CALL_ACTION` goes to the session's actor and its callflow is the response body;
//! `SESSION_SUMMARY` ends the session; `CALL_STATUS` is acknowledged. A body that is too
//! large, not declared as JSON, not JSON, or missing what routing needs is a 4xx naming the
//! problem; a session that cannot be served right now is a 503 with `Retry-After`, which the
//! platform retries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_flow::ActionId;
use switchboard_protocol::Webhook;
use switchboard_protocol::webhook::CallStatus;
use switchboard_runtime::AnswerKind;
use switchboard_telemetry::EventKind;

use super::App;
use super::error::ApiError;

/// Every `reason` of `switchboard_auth_failures_total` this handler records.
pub const AUTH_FAILURE_REASONS: &[&str] =
    &["missing_credentials", "bad_credentials", "ip_not_allowed"];

/// Every `reason` of `switchboard_bad_requests_total` this handler records.
pub const BAD_REQUEST_REASONS: &[&str] = &[
    "invalid_json",
    "missing_field",
    "invalid_field",
    "unknown_event_type",
    "unreadable_body",
    "body_too_large",
    "unsupported_media_type",
];

/// The webhook handler.
pub async fn webhook(State(app): State<Arc<App>>, request: Request) -> Response {
    let started = Instant::now();
    let response = match handle(&app, request, started).await {
        Ok(response) => response,
        Err(err) => {
            tracing::debug!(code = err.code(), status = %err.status(), "webhook refused");
            match &err {
                ApiError::Unauthorized { code, .. } | ApiError::Forbidden { code, .. } => {
                    debug_assert!(AUTH_FAILURE_REASONS.contains(code), "{code}");
                    app.telemetry.record_auth_failure(code);
                }
                ApiError::BadRequest { .. }
                | ApiError::PayloadTooLarge { .. }
                | ApiError::UnsupportedMediaType { .. } => {
                    debug_assert!(BAD_REQUEST_REASONS.contains(&err.code()), "{}", err.code());
                    app.telemetry.record_bad_request(err.code());
                }
                _ => {}
            }
            err.into_response()
        }
    };
    app.telemetry
        .record_http(response.status().as_u16(), started.elapsed());
    response
}

async fn handle(app: &App, request: Request, started: Instant) -> Result<Response, ApiError> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = request.into_parts();
    app.auth.check(&parts.headers, peer)?;
    check_json(&parts.headers)?;
    let body = read_body(body, app.body_limit).await?;
    let webhook = Webhook::from_slice(&body)?;
    check_session_id(webhook.session_id())?;
    match webhook {
        Webhook::CallAction(action) => {
            let session = action.session_id.clone();
            check_action_id(session.as_str(), action.client_action_id.as_deref());
            let status = action.call_status.clone();
            let event = match status {
                CallStatus::CallReceived => EventKind::CallReceived,
                _ => EventKind::ActionCompleted,
            };
            let answer = app.runtime.call_action(action).await.inspect_err(|err| {
                app.telemetry.record_failure(event, err, started.elapsed());
                tracing::warn!(%session, error = %err, "webhook not answered");
            })?;
            app.telemetry
                .record_answer(event, &answer, started.elapsed());
            let flow = answer.flow.as_ref().map(|f| f.id.as_str());
            match answer.kind {
                AnswerKind::Started => {
                    tracing::info!(%session, flow, "session started");
                }
                AnswerKind::Resumed => {
                    tracing::info!(%session, flow, "session resumed from its clientActionId");
                }
                AnswerKind::Unrouted => {
                    tracing::warn!(%session, "no flow claims the called number; answered the fallback");
                }
                AnswerKind::Unresolved => {
                    tracing::warn!(%session, "unknown session could not be resumed; answered an apology");
                }
                _ => {}
            }
            tracing::debug!(
                %session,
                call_status = status.as_str(),
                answer = answer.kind.label(),
                micros = started.elapsed().as_micros() as u64,
                "webhook"
            );
            Ok(json_response(StatusCode::OK, answer.body))
        }
        Webhook::SessionSummary(summary) => {
            let session = summary.session_id.clone();
            let campaign = campaign_call(app, &summary).await;
            let ended = app.runtime.end(summary).await.inspect_err(|err| {
                tracing::warn!(%session, error = %err, "session summary not recorded");
            })?;
            if let Some((ticket, where_ended)) = campaign {
                app.campaigns
                    .on_summary(&ticket, ended.status.label(), where_ended)
                    .await;
            }
            app.telemetry.record_ended(&ended);
            tracing::info!(
                %session,
                flow = ended.flow.as_deref(),
                node = ended.node.as_deref(),
                status = ended.status.label(),
                "session ended"
            );
            Ok(json_response(StatusCode::OK, Bytes::from_static(b"{}")))
        }
        Webhook::CallStatus(status) => {
            app.telemetry.record_status_event();
            tracing::debug!(session = %status.session_id, "call status");
            Ok(json_response(StatusCode::OK, Bytes::from_static(b"{}")))
        }
    }
}

/// Refuses a `sessionId` holding control characters (a newline, a terminal escape): the id is
/// logged with every webhook, and such characters would forge log lines or recolour a
/// terminal. The platform's session ids are UUIDs.
fn check_session_id(session: &str) -> Result<(), ApiError> {
    if session.chars().any(char::is_control) {
        return Err(ApiError::BadRequest {
            code: "invalid_field",
            field: Some("payload.sessionId".to_owned()),
            message: "payload.sessionId: must not contain control characters (newlines, escapes)"
                .to_owned(),
        });
    }
    Ok(())
}

/// Logs a `clientActionId` in Switchboard's form whose sequence number is out of range
/// (`ActionId::MAX_SEQ`): Switchboard never issued it (a forged or corrupted id). The call is
/// not refused: a session resumed from it starts at the top of the range
/// (`SessionState::resume` clamps), so nothing wraps and the caller stays on the line.
fn check_action_id(session: &str, id: Option<&str>) {
    if let Some(parsed) = id.and_then(ActionId::parse)
        && !parsed.seq_in_range()
    {
        tracing::warn!(
            session,
            seq = parsed.seq,
            max = ActionId::MAX_SEQ,
            "payload.clientActionId has a sequence number Switchboard never issues; a session resumed from it starts at the maximum"
        );
    }
}

/// A campaign call's ticket and where its session ended (read before the record is deleted).
async fn campaign_call(
    app: &App,
    summary: &switchboard_protocol::SessionSummary,
) -> Option<(String, Option<crate::campaign::Ended>)> {
    let ticket = summary.client_request_id.as_deref()?;
    crate::campaign::parse_ticket(ticket)?;
    let view = app
        .runtime
        .session(&summary.session_id)
        .await
        .ok()
        .flatten();
    let ended = view.map(|v| crate::campaign::Ended {
        node: v.record.state.ended_at().to_owned(),
        digits: v.record.state.digits,
        vars: v.record.state.vars,
    });
    Some((ticket.to_owned(), ended))
}

fn check_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE);
    let is_json = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false);
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType {
            got: content_type.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        })
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        // Length-limit errors are the only ones a client causes; anything else is a broken
        // connection, reported the same way since the body was not read.
        let too_large = std::error::Error::source(&err)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::BadRequest {
                code: "unreadable_body",
                field: None,
                message: format!("the body could not be read: {err}"),
            }
        }
    })
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
