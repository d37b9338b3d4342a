//! The 8x8 platform emulator: the Callflows API that starts outbound IVR calls.
//!
//! `POST /api/v1/subaccounts/{subAccountId}/callflows` takes `{"callflow": [...], "validUntil"?,
//! "clientRequestId"?}`, validates it in [`Mode::Api`] (the first action must be `makeCall`)
//! and answers as the platform does (`crates/protocol/tests/fixtures/examples/callflows-api-*.json`):
//! `{"sessionId", "sessionStatus": "CREATED", "callFlowRequestId", "statusCode": 1,
//! "statusMessage": "Created"}`, or `NOT_CREATED` with the first violation's status code and a
//! message naming the JSON path. A created call is then played by [`Platform::outbound`]
//! against the webhook URL: the `makeCall` is dialled with the configured answered / busy /
//! no-answer mix, and if answered the rest of the callflow and every callflow the webhook
//! answers run with the caller model, ending with a session summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchboard_protocol::{Action, Callflow, ClientActionId, Mode, validate_slice};
use tokio::task::JoinSet;

use crate::call::{Outcome, VirtualCall};
use crate::ids::{self, Stream, Uuid};
use crate::player::Platform;

/// The largest API body accepted; a callflow of ten actions is a few kilobytes.
const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// The emulator's shared state.
#[derive(Debug)]
pub struct Emulator {
    platform: Arc<Platform>,
    api_key: Option<String>,
    next_index: AtomicU64,
    // A std mutex: only `spawn` and `try_join_next` run under it, never an await.
    calls: Mutex<JoinSet<Outcome>>,
}

/// The Callflows API request body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallflowRequest {
    callflow: Vec<Action>,
    client_action_id: Option<ClientActionId>,
    valid_until: Option<String>,
    client_request_id: Option<String>,
}

/// The Callflows API answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CallflowAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    session_status: &'static str,
    call_flow_request_id: String,
    status_code: i32,
    status_message: String,
}

impl CallflowAnswer {
    fn into_response(self, status: StatusCode) -> Response {
        (status, axum::Json(self)).into_response()
    }
}

impl Emulator {
    /// An emulator playing its calls on `platform`; with `api_key`, requests must carry
    /// `Authorization: Bearer <api_key>`.
    pub fn new(platform: Arc<Platform>, api_key: Option<String>) -> Self {
        Self {
            platform,
            api_key,
            next_index: AtomicU64::new(0),
            calls: Mutex::new(JoinSet::new()),
        }
    }

    /// The platform the calls are played on (its stats are the emulator's).
    pub fn platform(&self) -> &Arc<Platform> {
        &self.platform
    }

    /// Waits for every call placed so far to end.
    pub async fn drain(&self) {
        let mut calls = std::mem::take(&mut *self.lock_calls());
        while calls.join_next().await.is_some() {}
    }

    fn lock_calls(&self) -> std::sync::MutexGuard<'_, JoinSet<Outcome>> {
        // A panic under the lock leaves a JoinSet that is still usable.
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(key) = &self.api_key else {
            return true;
        };
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| given.trim() == key)
    }
}

/// The API's routes.
pub fn app(emulator: Arc<Emulator>) -> Router {
    Router::new()
        .route(
            "/api/v1/subaccounts/{sub_account}/callflows",
            post(create_callflow),
        )
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(emulator)
}

async fn create_callflow(
    State(emulator): State<Arc<Emulator>>,
    Path(sub_account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = emulator.next_index.fetch_add(1, Ordering::Relaxed);
    let config = emulator.platform.config.clone();
    // Request ids come from their own stream, apart from the call's leg and event ids.
    let mut rng = ids::call_rng(!config.run_nonce, index, Stream::Ids);
    let request_id = Uuid::random(&mut rng);
    let not_created = |status: StatusCode, code: i32, message: String| {
        CallflowAnswer {
            session_id: None,
            session_status: "NOT_CREATED",
            call_flow_request_id: request_id.to_string(),
            status_code: code,
            status_message: message,
        }
        .into_response(status)
    };
    if !emulator.authorized(&headers) {
        return not_created(
            StatusCode::UNAUTHORIZED,
            switchboard_protocol::StatusCode::Unknown.as_i32(),
            "Unauthorized: send the sub-account's API key as `Authorization: Bearer <key>`"
                .to_owned(),
        );
    }
    // Warnings are what the platform accepts although a rule frowns on it: only errors refuse.
    let violations = validate_slice(&body, Mode::Api);
    if let Some(first) = violations.iter().find(|v| v.is_error()) {
        return not_created(
            StatusCode::BAD_REQUEST,
            first.code.as_i32(),
            format!(
                "{}: {}: {}",
                first.code.message(),
                first.path,
                first.message
            ),
        );
    }
    let request: CallflowRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return not_created(
                StatusCode::BAD_REQUEST,
                switchboard_protocol::StatusCode::InvalidEntry.as_i32(),
                format!("Invalid call flow entry: {err}"),
            );
        }
    };
    let Some(Action::MakeCall(make_call)) = request.callflow.first().cloned() else {
        // The validator already requires it (-1013); this keeps the two in step.
        let code = switchboard_protocol::StatusCode::FirstActionNotMakeCall;
        return not_created(
            StatusCode::BAD_REQUEST,
            code.as_i32(),
            code.message().to_owned(),
        );
    };
    let session_id = Uuid::random(&mut rng);
    let now = SystemTime::now();
    let expired = request
        .valid_until
        .as_deref()
        .and_then(ids::parse_iso8601)
        .is_some_and(|until| until < now);
    let call = VirtualCall::outbound(
        config,
        index,
        session_id,
        &sub_account,
        &make_call,
        request.client_request_id,
        now,
    );
    let callflow = Callflow {
        client_action_id: request.client_action_id,
        actions: request.callflow,
    };
    let platform = emulator.platform.clone();
    {
        let mut calls = emulator.lock_calls();
        while calls.try_join_next().is_some() {}
        calls.spawn(async move {
            if expired {
                platform.expired(call).await
            } else {
                platform.outbound(call, &callflow).await
            }
        });
    }
    CallflowAnswer {
        session_id: Some(session_id.to_string()),
        session_status: "CREATED",
        call_flow_request_id: request_id.to_string(),
        status_code: switchboard_protocol::StatusCode::Created.as_i32(),
        status_message: switchboard_protocol::StatusCode::Created
            .message()
            .to_owned(),
    }
    .into_response(StatusCode::OK)
}
