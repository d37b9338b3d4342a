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
//!
//! For testing a client, a [`Script`] makes chosen numbers end busy or unanswered, or answers
//! their requests with an HTTP error (a 500 a few times, say), and refuses sub-accounts it does
//! not know with the platform's 404. A repeated `clientRequestId` is answered with the session
//! it created the first time, without placing a second call (so a client's retries are
//! idempotent). An [`ArrivalLog`] writes one JSON line per request and per call end, with the
//! time, so a test can measure a client's rate and concurrency from the emulator's side.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path as FilePath;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use switchboard_protocol::{Action, Callflow, ClientActionId, Mode, validate_slice};
use tokio::task::JoinSet;

use crate::call::{Outcome, Transfer, VirtualCall};
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
    script: Script,
    state: Mutex<ScriptState>,
    log: Option<Arc<ArrivalLog>>,
}

/// How chosen numbers and sub-accounts behave, beside the random mix.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// How the `makeCall` to a number (E.164 digits, `+` optional) ends, instead of the mix.
    pub outcomes: HashMap<String, Transfer>,
    /// Requests dialling a number are answered with an HTTP error instead of being created.
    pub failures: HashMap<String, Failure>,
    /// The sub-accounts that exist; any other is a 404. Empty: every sub-account exists.
    pub sub_accounts: Vec<String>,
}

/// An HTTP error answered for a number's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status (e.g. 500, 503, 429).
    pub status: u16,
    /// How many requests get it before the number is served normally; `None`: all of them.
    pub times: Option<u32>,
}

/// What the script has done so far.
#[derive(Debug, Default)]
struct ScriptState {
    /// Failures answered per number.
    failed: HashMap<String, u32>,
    /// Answers of created sessions by `clientRequestId`.
    created: HashMap<String, (String, String)>,
}

/// One JSON line per API request and per call end, flushed as written.
#[derive(Debug)]
pub struct ArrivalLog {
    file: Mutex<std::fs::File>,
}

impl ArrivalLog {
    /// Creates (truncates) the log at `path`.
    pub fn create(path: &FilePath) -> std::io::Result<Self> {
        Ok(Self {
            file: Mutex::new(std::fs::File::create(path)?),
        })
    }

    fn write(&self, line: serde_json::Value) {
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A full disk loses log lines, never a call.
        let _ = writeln!(file, "{line}");
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn digits(number: &str) -> String {
    number.trim().trim_start_matches('+').to_owned()
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
            script: Script::default(),
            state: Mutex::new(ScriptState::default()),
            log: None,
        }
    }

    /// The same emulator, following `script` for chosen numbers and sub-accounts.
    pub fn with_script(mut self, script: Script) -> Self {
        self.script = Script {
            outcomes: script
                .outcomes
                .into_iter()
                .map(|(n, t)| (digits(&n), t))
                .collect(),
            failures: script
                .failures
                .into_iter()
                .map(|(n, f)| (digits(&n), f))
                .collect(),
            sub_accounts: script.sub_accounts,
        };
        self
    }

    /// The same emulator, logging every request and call end to `log`.
    pub fn with_log(mut self, log: ArrivalLog) -> Self {
        self.log = Some(Arc::new(log));
        self
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, ScriptState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The scripted HTTP error for a request dialling `number`, counting it.
    fn scripted_failure(&self, number: &str) -> Option<u16> {
        let failure = self.script.failures.get(number)?;
        let mut state = self.lock_state();
        let count = state.failed.entry(number.to_owned()).or_default();
        if failure.times.is_some_and(|times| *count >= times) {
            return None;
        }
        *count += 1;
        Some(failure.status)
    }

    fn log_request(&self, body: &[u8], destination: Option<&str>, answer: &Answer) {
        if let Some(log) = &self.log {
            let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            log.write(serde_json::json!({
                "event": "request",
                "at_ms": unix_ms(SystemTime::now()),
                "destination": destination,
                "clientRequestId": request.get("clientRequestId"),
                "status": answer.status.as_u16(),
                "statusCode": answer.body.status_code,
                "sessionId": answer.body.session_id,
                "repeated": answer.repeated,
                "callflow": request.get("callflow"),
            }));
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

/// An answer of the API, before it is sent.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: CallflowAnswer,
    /// A repeated `clientRequestId`: the first answer again, no new call.
    repeated: bool,
}

/// The first action's destination, read loosely (for the script and the log) before the body
/// is validated.
fn first_destination(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let destination = value.pointer("/callflow/0/params/destination")?;
    match destination {
        serde_json::Value::String(s) => Some(digits(s)),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn create_callflow(
    State(emulator): State<Arc<Emulator>>,
    Path(sub_account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let destination = first_destination(&body);
    let answer = answer(
        &emulator,
        &sub_account,
        &headers,
        &body,
        destination.as_deref(),
    );
    emulator.log_request(&body, destination.as_deref(), &answer);
    answer.body.into_response(answer.status)
}

fn answer(
    emulator: &Arc<Emulator>,
    sub_account: &str,
    headers: &HeaderMap,
    body: &[u8],
    destination: Option<&str>,
) -> Answer {
    let index = emulator.next_index.fetch_add(1, Ordering::Relaxed);
    let config = emulator.platform.config.clone();
    // Request ids come from their own stream, apart from the call's leg and event ids.
    let mut rng = ids::call_rng(!config.run_nonce, index, Stream::Ids);
    let request_id = Uuid::random(&mut rng);
    let not_created = |status: StatusCode, code: i32, message: String| Answer {
        status,
        body: CallflowAnswer {
            session_id: None,
            session_status: "NOT_CREATED",
            call_flow_request_id: request_id.to_string(),
            status_code: code,
            status_message: message,
        },
        repeated: false,
    };
    if !emulator.authorized(headers) {
        return not_created(
            StatusCode::UNAUTHORIZED,
            401,
            "Authentication header not found or token invalid".to_owned(),
        );
    }
    if !emulator.script.sub_accounts.is_empty()
        && !emulator
            .script
            .sub_accounts
            .iter()
            .any(|s| s == sub_account)
    {
        return not_created(
            StatusCode::NOT_FOUND,
            404,
            format!("SubAccount not found by Id : {sub_account}"),
        );
    }
    if let Some(status) = destination.and_then(|d| emulator.scripted_failure(d)) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return not_created(
            status,
            i32::from(status.as_u16()),
            format!(
                "Internal error ({} scripted by the emulator)",
                status.as_u16()
            ),
        );
    }
    // Warnings are what the platform accepts although a rule frowns on it: only errors refuse.
    let violations = validate_slice(body, Mode::Api);
    if let Some(first) = violations.iter().find(|v| v.is_error()) {
        let status = if first.code == switchboard_protocol::StatusCode::FirstActionNotMakeCall {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        };
        return not_created(
            status,
            first.code.as_i32(),
            format!(
                "{}: {}: {}",
                first.code.message(),
                first.path,
                first.message
            ),
        );
    }
    let request: CallflowRequest = match serde_json::from_slice(body) {
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
            StatusCode::UNPROCESSABLE_ENTITY,
            code.as_i32(),
            code.message().to_owned(),
        );
    };
    let created = |session_id: String, call_flow_request_id: String, repeated: bool| Answer {
        status: StatusCode::OK,
        body: CallflowAnswer {
            session_id: Some(session_id),
            session_status: "CREATED",
            call_flow_request_id,
            status_code: switchboard_protocol::StatusCode::Created.as_i32(),
            status_message: switchboard_protocol::StatusCode::Created
                .message()
                .to_owned(),
        },
        repeated,
    };
    let session_id = Uuid::random(&mut rng);
    if let Some(key) = &request.client_request_id {
        let mut state = emulator.lock_state();
        if let Some((session, request)) = state.created.get(key) {
            return created(session.clone(), request.clone(), true);
        }
        state.created.insert(
            key.clone(),
            (session_id.to_string(), request_id.to_string()),
        );
    }
    let now = SystemTime::now();
    let expired = request
        .valid_until
        .as_deref()
        .and_then(ids::parse_iso8601)
        .is_some_and(|until| until < now);
    let mut call = VirtualCall::outbound(
        config,
        index,
        session_id,
        sub_account,
        &make_call,
        request.client_request_id,
        now,
    );
    if let Some(result) = emulator
        .script
        .outcomes
        .get(&digits(&make_call.destination.e164()))
    {
        call.force_dial(*result);
    }
    let callflow = Callflow {
        client_action_id: request.client_action_id,
        actions: request.callflow,
    };
    let platform = emulator.platform.clone();
    let log = emulator.log.clone();
    {
        let mut calls = emulator.lock_calls();
        while calls.try_join_next().is_some() {}
        calls.spawn(async move {
            let end = if expired {
                platform.expired(call).await
            } else {
                platform.outbound(call, &callflow).await
            };
            if let Some(log) = log {
                log.write(serde_json::json!({
                    "event": "ended",
                    "at_ms": unix_ms(end.summary_at),
                    "sessionId": session_id.to_string(),
                    "outcome": end.outcome.label(),
                    "summary": end.summary_status,
                }));
            }
            end.outcome
        });
    }
    created(session_id.to_string(), request_id.to_string(), false)
}
