//! The admin API under `/v1`, behind `Authorization: Bearer <admin_token>`:
//! * `GET /v1/sessions?offset=&limit=`: the count of live sessions on this node and a page of
//!   their ids (sorted, so pages are stable);
//! * `GET /v1/sessions/{id}`: one session: flow, node, counters, variables, path (the newer of
//!   its actor's copy, if live here, and the stored record: another replica may have moved the
//!   session on);
//! * `GET /v1/flows`: the flows served;
//! * `GET /v1/flows/{id}/report`: the flow's funnel (visits, drop-off, retries per node) and
//!   outcomes since this process started;
//! * `GET /v1/flows/{id}/graph.svg`: the flow drawn as a graph ([`crate::graph`]) with that
//!   funnel on it (visits and drop-off per node), as the `/ui` page shows it;
//! * `POST /v1/flows/reload`: reload the flows (also done on SIGHUP). A source that does not
//!   compile is a 422 listing every problem, and the previous flows keep serving.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::App;
use super::error::ApiError;
use super::extract::{Admin, Path, Query};
use crate::graph::{Funnel, Graph, render};

/// Most session ids in one page.
const MAX_PAGE: usize = 1000;

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/sessions", get(sessions))
        .route("/sessions/{id}", get(session))
        .route("/flows", get(flows))
        .route("/flows/reload", post(reload))
        .route("/flows/{id}/report", get(report))
        .route("/flows/{id}/graph.svg", get(graph_svg))
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

async fn sessions(
    _: Admin,
    State(app): State<Arc<App>>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = page.limit.min(MAX_PAGE);
    let (count, ids) = app.runtime.sessions(page.offset, limit);
    Ok(Json(json!({
        "count": count,
        "offset": page.offset,
        "limit": limit,
        "sessions": ids,
    })))
}

async fn session(
    _: Admin,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = app.runtime.session(&id).await?;
    let view = view.ok_or_else(|| ApiError::NotFound(format!("session {id}")))?;
    serde_json::to_value(view).map(Json).map_err(|e| {
        tracing::error!(session = %id, error = %e, "the session could not be serialized");
        ApiError::Unavailable {
            code: "internal",
            message: format!("session {id} could not be shown; the server logs say why"),
        }
    })
}

/// A flow as the API shows it.
#[derive(Debug, Serialize)]
pub struct FlowInfo {
    /// Its id.
    pub id: String,
    /// Its version (a content hash).
    pub version: String,
    /// Its description.
    pub description: Option<String>,
    /// The numbers routed to it.
    pub numbers: Vec<String>,
    /// How many nodes.
    pub nodes: usize,
    /// Its start node.
    pub start: String,
    /// Its file.
    pub file: String,
}

/// The flows being served.
pub fn flow_infos(app: &App) -> Vec<FlowInfo> {
    app.runtime
        .flows()
        .flows()
        .into_iter()
        .map(|f| FlowInfo {
            id: f.id.clone(),
            version: f.version.to_string(),
            description: f.description.clone(),
            numbers: f.numbers.clone(),
            nodes: f.nodes.len(),
            start: f.node(f.start).name.clone(),
            file: f.file.clone(),
        })
        .collect()
}

async fn flows(_: Admin, State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "flows": flow_infos(&app) })))
}

async fn report(
    _: Admin,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<switchboard_telemetry::FlowReport>, ApiError> {
    app.telemetry
        .report(&id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("flow {id}")))
}

async fn graph_svg(
    _: Admin,
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let flows = app.runtime.flows();
    let flow = flows
        .latest(&id)
        .ok_or_else(|| ApiError::NotFound(format!("flow {id}")))?;
    let figures: BTreeMap<String, Funnel> = app
        .telemetry
        .report(&id)
        .map(|report| {
            report
                .nodes
                .into_iter()
                .map(|n| {
                    let funnel = Funnel {
                        visits: n.visits,
                        exits: n.exits,
                    };
                    (n.node, funnel)
                })
                .collect()
        })
        .unwrap_or_default();
    let svg = render::svg(&Graph::of(flow).with_report(&figures));
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
}

async fn reload(_: Admin, State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    let warnings = reload_flows(&app).await?;
    Ok(Json(json!({
        "flows": flow_infos(&app),
        "warnings": warnings,
    })))
}

/// Reloads the flows from their source; on failure the previous flows keep serving. Returns
/// the warnings.
pub async fn reload_flows(app: &Arc<App>) -> Result<Vec<String>, ApiError> {
    let _one_at_a_time = app.reloading.lock().await;
    let current = app.runtime.flows();
    let source = app.flows.clone();
    // Reading and compiling files is blocking work.
    let result = tokio::task::spawn_blocking(move || source.reload(&current))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the flow reload task failed");
            ApiError::Unavailable {
                code: "internal",
                message: "the reload did not finish; the previous flows keep serving, and the \
                          server logs say why"
                    .to_owned(),
            }
        })?;
    match result {
        Ok((set, warnings)) => {
            let count = set.len();
            app.telemetry.on_flows(&set);
            app.telemetry.record_reload(true);
            app.runtime.set_flows(set);
            let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
            for warning in &warnings {
                tracing::warn!("{warning}");
            }
            tracing::info!(flows = count, source = %app.flows.describe(), "flows reloaded");
            Ok(warnings)
        }
        Err(diagnostics) => {
            app.telemetry.record_reload(false);
            let errors: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            for error in &errors {
                tracing::error!("{error}");
            }
            tracing::error!(
                problems = errors.len(),
                "flow reload failed; the previous flows keep serving"
            );
            Err(ApiError::FlowErrors(errors))
        }
    }
}
