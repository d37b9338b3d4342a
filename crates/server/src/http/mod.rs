//! The HTTP front: `fn app(state) -> Router`.
//!
//! Routes:
//! * `POST /webhooks` (aliases `/webhooks/vca`, `/webhooks/vss`): the 8x8 webhooks.
//! * `GET /healthz` (the process is up), `GET /readyz` (flows loaded, store reachable).
//! * `GET /metrics`: Prometheus exposition.
//! * `/v1/...`: the admin API, behind its own bearer token (see [`admin`]).
//! * `/ui`: a web page over the admin API: flows, their graphs and live funnels (see [`ui`]).
//!
//! Handlers only authenticate, parse into typed values and route; the session logic is behind
//! [`switchboard_runtime::Runtime`], which hides the actors.

pub mod admin;
pub mod auth;
pub mod error;
pub mod extract;
mod outbound;
pub mod ui;
pub mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use switchboard_runtime::Runtime;
use switchboard_telemetry::Telemetry;
use tokio::sync::Mutex;

use crate::flows::FlowSource;

pub use error::ApiError;

/// What the handlers share.
#[derive(Debug)]
pub struct App {
    /// The session runtime.
    pub runtime: Arc<Runtime>,
    /// Where flows are (re)loaded from.
    pub flows: FlowSource,
    /// Who may post webhooks.
    pub auth: auth::WebhookAuth,
    /// The admin API's token (`None`: disabled).
    pub admin_token: Option<String>,
    /// Largest webhook body, bytes.
    pub body_limit: usize,
    /// Limits on connections and request heads (`conn.rs`).
    pub limits: crate::conn::HttpLimits,
    /// Serializes reloads (SIGHUP and the API may race).
    pub reloading: Mutex<()>,
    /// Metrics and the per-flow report.
    pub telemetry: Arc<Telemetry>,
    /// Places outbound calls (`POST /v1/calls`).
    pub dialer: Arc<crate::outbound::Dialer>,
    /// The campaigns of this process.
    pub campaigns: Arc<crate::campaign::Campaigns>,
}

/// The router of the webhook listener.
pub fn app(state: Arc<App>) -> Router {
    Router::new()
        .route("/webhooks", post(webhook::webhook))
        .route("/webhooks/vca", post(webhook::webhook))
        .route("/webhooks/vss", post(webhook::webhook))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/v1", admin::routes().merge(outbound::routes()))
        .merge(ui::routes())
        .fallback(not_found)
        .with_state(state)
}

/// The router of the separate metrics listener (`metrics_listen`): `GET /metrics` only.
pub fn metrics_app(state: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let body = render_metrics(&app);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The Prometheus exposition, with the gauges read from the runtime at scrape time.
pub fn render_metrics(app: &App) -> String {
    let telemetry = &app.telemetry;
    telemetry.set_live_sessions(app.runtime.live_sessions());
    for (shard, actors) in app.runtime.shard_actors().into_iter().enumerate() {
        telemetry.set_shard_actors(shard, actors);
    }
    telemetry.render_with(app.runtime.counters())
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let flows = app.runtime.flows().len();
    let store = app.runtime.store();
    let store_check = store.ping().await;
    let ready = flows > 0 && store_check.is_ok();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "flows": flows,
        "store": {
            "kind": store.kind(),
            "ok": store_check.is_ok(),
            // The kind of failure, not the store's words (its address, the client's error):
            // this route is unauthenticated. The whole error is logged.
            "error": store_check.err().map(|e| {
                tracing::warn!(error = %e, "not ready: the session store does not answer");
                let refusal = ApiError::from(e);
                format!("{}: {}", refusal.code(), refusal.message())
            }),
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("route {}", uri.path()))
}
