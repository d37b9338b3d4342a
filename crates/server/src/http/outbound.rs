//! The outbound admin API, behind the admin token like the rest of `/v1`:
//! * `POST /v1/calls` `{"flow", "to", "from"?, "vars"?}`: registers the session and places
//!   the call through the Callflows API; answers `{"sessionId", "callFlowRequestId",
//!   "ticket", "attempts"}`.
//!
//! A bad request is a 400 naming the field; a refusal by the platform is a 502 carrying the
//! platform's HTTP status, `statusCode` and message (`"error": {"code": "callflows_api",
//! ...}`), so a script can tell a bad number from a bad API key.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::App;
use super::auth::check_admin;
use super::error::ApiError;
use crate::outbound::{CallError, CallRequest};

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new().route("/calls", post(call))
}

async fn call(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = check_admin(app.admin_token.as_deref(), &headers) {
        return err.into_response();
    }
    let request: CallRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return ApiError::BadRequest {
                code: "invalid_request",
                field: None,
                message: format!(
                    "the body must be {{\"flow\", \"to\", \"from\"?, \"vars\"?}}: {err}"
                ),
            }
            .into_response();
        }
    };
    match app.dialer.call(&app.runtime, request).await {
        Ok(placed) => (
            StatusCode::OK,
            Json(json!({
                "sessionId": placed.session_id,
                "callFlowRequestId": placed.call_flow_request_id,
                "ticket": placed.ticket,
                "attempts": placed.attempts,
            })),
        )
            .into_response(),
        Err(err) => refusal(err),
    }
}

/// The response for a call that was not placed.
pub(crate) fn refusal(err: CallError) -> Response {
    match err {
        CallError::Invalid { field, message } => ApiError::BadRequest {
            code: "invalid_field",
            field: Some(field.to_owned()),
            message,
        }
        .into_response(),
        CallError::NotConfigured => ApiError::Forbidden {
            code: "outbound_disabled",
            message: CallError::NotConfigured.to_string(),
        }
        .into_response(),
        CallError::Register(message) => {
            tracing::warn!(%message, "outbound session not registered");
            ApiError::Unavailable {
                code: "store_unavailable",
                message: "session state is unavailable right now; retry shortly".to_owned(),
            }
            .into_response()
        }
        CallError::Api(api) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": {
                "code": "callflows_api",
                "message": api.to_string(),
                "status": api.http_status(),
                "statusCode": api.status_code(),
            }})),
        )
            .into_response(),
    }
}
