//! The outbound admin API, behind the admin token like the rest of `/v1`:
//! * `POST /v1/calls` `{"flow", "to", "from"?, "vars"?}`: registers the session and places
//!   the call through the Callflows API; answers `{"sessionId", "callFlowRequestId",
//!   "ticket", "attempts"}`.
//!
//! * `POST /v1/campaigns?flow=ID&rate=&concurrency=&...` with the CSV list as the body:
//!   validates the whole list (a 422 listing every problem with its line) and starts dialling;
//!   answers `{"id", "rows"}`;
//! * `GET /v1/campaigns/{id}`: state and progress;
//! * `POST /v1/campaigns/{id}/pause`, `/resume`, `/cancel`;
//! * `GET /v1/campaigns/{id}/export?format=json|csv`: every row's outcome, attempts,
//!   sessions, captured digits and variables.
//!
//! A bad request is a 400 naming the field; a refusal by the platform is a 502 carrying the
//! platform's HTTP status, `statusCode` and message (`"error": {"code": "callflows_api",
//! ...}`), so a script can tell a bad number from a bad API key.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{NaiveTime, Weekday};
use serde::Deserialize;
use serde_json::json;
use switchboard_outbound::list;
use switchboard_outbound::schedule::{Policy, Retry, Window};

use super::App;
use super::error::ApiError;
use super::extract::{Admin, Path, Query};
use crate::campaign::{Control, ExportRow};
use crate::outbound::{CallError, CallRequest};

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/calls", post(call))
        .route("/campaigns", post(start_campaign))
        .route("/campaigns/{id}", get(campaign))
        .route("/campaigns/{id}/export", get(export))
        .route("/campaigns/{id}/{action}", post(control))
}

/// The query of `POST /v1/campaigns`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignQuery {
    flow: String,
    from: Option<String>,
    #[serde(default = "default_rate")]
    rate: f64,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    /// `HH:MM-HH:MM`, callee's local time.
    window: Option<String>,
    /// `mon,tue,...` or `mon-fri`.
    days: Option<String>,
    /// Zone of numbers whose country has several.
    timezone: Option<String>,
    #[serde(default)]
    busy_retries: u32,
    busy_delay: Option<String>,
    #[serde(default)]
    no_answer_retries: u32,
    no_answer_delay: Option<String>,
    #[serde(default = "default_transient_retries")]
    transient_retries: u32,
    transient_delay: Option<String>,
    /// A call without an outcome this long ends `TIMED_OUT` (default: the server's
    /// `campaign_call_deadline`).
    call_deadline: Option<String>,
}

fn default_rate() -> f64 {
    1.0
}

fn default_concurrency() -> usize {
    10
}

fn default_transient_retries() -> u32 {
    2
}

/// A bad field of a request: a 400 naming it.
#[derive(Debug)]
struct Invalid {
    field: String,
    message: String,
}

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        ApiError::BadRequest {
            code: "invalid_field",
            field: Some(self.field),
            message: self.message,
        }
        .into_response()
    }
}

fn invalid(field: &str, message: String) -> Invalid {
    Invalid {
        field: field.to_owned(),
        message,
    }
}

fn bad(field: &str, message: String) -> Response {
    invalid(field, message).into_response()
}

fn delay(field: &str, text: Option<&str>, default: &str) -> Result<std::time::Duration, Invalid> {
    crate::config::parse_duration(text.unwrap_or(default)).map_err(|m| invalid(field, m))
}

fn parse_window(window: &str, days: Option<&str>) -> Result<Window, Invalid> {
    let (start, end) = window.split_once('-').ok_or_else(|| {
        invalid(
            "window",
            format!("{window:?} is not HH:MM-HH:MM, e.g. 09:00-17:30"),
        )
    })?;
    let time = |t: &str| {
        NaiveTime::parse_from_str(t.trim(), "%H:%M")
            .map_err(|_| invalid("window", format!("{t:?} is not a time HH:MM")))
    };
    let days = match days {
        None => Vec::new(),
        Some(text) => parse_days(text).map_err(|m| invalid("days", m))?,
    };
    Ok(Window {
        start: time(start)?,
        end: time(end)?,
        days,
    })
}

fn parse_days(text: &str) -> Result<Vec<Weekday>, String> {
    const ORDER: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let day = |d: &str| {
        d.trim()
            .parse::<Weekday>()
            .map_err(|_| format!("{d:?} is not a day (mon, tue, ... sun)"))
    };
    let mut days = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                let start = ORDER.iter().position(|d| *d == from).unwrap_or(0);
                let end = ORDER.iter().position(|d| *d == to).unwrap_or(6);
                if end < start {
                    return Err(format!("{part:?}: the range runs backwards"));
                }
                days.extend_from_slice(&ORDER[start..=end]);
            }
            None => days.push(day(part)?),
        }
    }
    Ok(days)
}

fn policy(query: &CampaignQuery, call_deadline: std::time::Duration) -> Result<Policy, Invalid> {
    let call_deadline = match query.call_deadline.as_deref() {
        Some(text) => {
            crate::config::parse_duration(text).map_err(|m| invalid("call_deadline", m))?
        }
        None => call_deadline,
    };
    let policy = Policy {
        rate: query.rate,
        concurrency: query.concurrency,
        window: match &query.window {
            Some(window) => Some(parse_window(window, query.days.as_deref())?),
            None => None,
        },
        busy: Retry {
            max: query.busy_retries,
            delay: delay("busy_delay", query.busy_delay.as_deref(), "10m")?,
        },
        no_answer: Retry {
            max: query.no_answer_retries,
            delay: delay("no_answer_delay", query.no_answer_delay.as_deref(), "30m")?,
        },
        transient: Retry {
            max: query.transient_retries,
            delay: delay("transient_delay", query.transient_delay.as_deref(), "1m")?,
        },
        call_deadline,
    };
    policy.check().map_err(|message| {
        let field = message.split(':').next().unwrap_or("policy").to_owned();
        invalid(&field, message)
    })?;
    Ok(policy)
}

async fn start_campaign(
    _: Admin,
    State(app): State<Arc<App>>,
    query: Result<axum::extract::Query<CampaignQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    let axum::extract::Query(query) = match query {
        Ok(query) => query,
        Err(err) => {
            return ApiError::BadRequest {
                code: "invalid_query",
                field: None,
                message: format!("{}; flow is required", err.body_text()),
            }
            .into_response();
        }
    };
    if !app.dialer.is_configured() {
        return refusal(CallError::NotConfigured);
    }
    if app.runtime.flows().latest(&query.flow).is_none() {
        return bad(
            "flow",
            format!(
                "flow {:?} is not served here; GET /v1/flows lists the flows",
                query.flow
            ),
        );
    }
    let policy = match policy(&query, app.campaigns.settings().call_deadline) {
        Ok(policy) => policy,
        Err(invalid) => return invalid.into_response(),
    };
    let zone = match query.timezone.as_deref().map(str::parse::<chrono_tz::Tz>) {
        None => None,
        Some(Ok(zone)) => Some(zone),
        Some(Err(_)) => {
            return bad(
                "timezone",
                "not an IANA time zone (e.g. Europe/London)".to_owned(),
            );
        }
    };
    let from = match query.from.as_deref().map(list::normalize).transpose() {
        Ok(from) => from,
        Err(message) => return bad("from", message),
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return bad("body", "the list must be UTF-8 CSV text".to_owned());
    };
    let rows = match list::parse(text, zone) {
        Ok(rows) => rows,
        Err(err) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": {
                    "code": "invalid_list",
                    "message": format!("the list was refused, no call was placed:\n{err}"),
                    "problems": err.problems,
                }})),
            )
                .into_response();
        }
    };
    let count = rows.len();
    let id = match app.campaigns.start(query.flow, from, rows, policy).await {
        Ok(id) => id,
        Err(err) => return unavailable(&err.to_string()),
    };
    tracing::info!(campaign = %id, rows = count, "campaign started");
    (StatusCode::CREATED, Json(json!({"id": id, "rows": count}))).into_response()
}

async fn campaign(_: Admin, State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    view(&app, &id).await
}

async fn view(app: &App, id: &str) -> Response {
    match app.campaigns.view(id).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => ApiError::NotFound(format!("campaign {id}")).into_response(),
        Err(err) => unavailable(&err.to_string()),
    }
}

/// The campaign store failed: a 503 saying so.
fn unavailable(message: &str) -> Response {
    ApiError::Unavailable {
        code: "store_unavailable",
        message: format!("{message}; try again shortly"),
    }
    .into_response()
}

async fn control(
    _: Admin,
    State(app): State<Arc<App>>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let action = match action.as_str() {
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "cancel" => Control::Cancel,
        other => {
            return ApiError::NotFound(format!(
                "campaign action {other:?} (pause, resume, cancel)"
            ))
            .into_response();
        }
    };
    match app.campaigns.control(&id, action).await {
        Ok(true) => view(&app, &id).await,
        Ok(false) => ApiError::NotFound(format!("campaign {id}")).into_response(),
        Err(err) => unavailable(&err.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
}

async fn export(
    _: Admin,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Response {
    let rows = match app.campaigns.export(&id).await {
        Ok(Some(rows)) => rows,
        Ok(None) => return ApiError::NotFound(format!("campaign {id}")).into_response(),
        Err(err) => return unavailable(&err.to_string()),
    };
    match query.format.as_deref().unwrap_or("json") {
        "json" => Json(json!({"id": id, "rows": rows})).into_response(),
        "csv" => (
            [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            to_csv(&rows),
        )
            .into_response(),
        other => bad(
            "format",
            format!("{other:?} is not an export format; use json or csv"),
        ),
    }
}

/// The export as CSV: fixed columns, then one column per variable name seen.
fn to_csv(rows: &[ExportRow]) -> String {
    let mut names: Vec<&String> = rows.iter().flat_map(|r| r.result.vars.keys()).collect();
    names.sort();
    names.dedup();
    let mut out =
        String::from("line,number,status,outcome,attempts,sessions,digits,node,status_code,error");
    for name in &names {
        out.push(',');
        out.push_str(&field(name));
    }
    out.push('\n');
    for row in rows {
        let status = serde_json::to_value(row.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let cells = [
            row.line.to_string(),
            row.number.clone(),
            status,
            row.outcome.clone().unwrap_or_default(),
            row.attempts.to_string(),
            row.result.sessions.join(" "),
            row.result.digits.clone().unwrap_or_default(),
            row.result.node.clone().unwrap_or_default(),
            row.result
                .status_code
                .map(|c| c.to_string())
                .unwrap_or_default(),
            row.result.error.clone().unwrap_or_default(),
        ];
        let vars = names
            .iter()
            .map(|name| row.result.vars.get(*name).cloned().unwrap_or_default());
        let line: Vec<String> = cells.into_iter().chain(vars).map(|c| field(&c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it must be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

async fn call(_: Admin, State(app): State<Arc<App>>, body: Bytes) -> Response {
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
