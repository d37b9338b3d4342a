//! `/ui`: a small web page over the admin API, for flow authors and operators: the flows
//! served, each flow's graph (the SVG of `GET /v1/flows/{id}/graph.svg`) with its live funnel
//! refreshed every few seconds, and the live session count.
//!
//! The page, its script and its style sheet are embedded in the binary (`include_str!`), with
//! no CDN and no build step. They hold no data, so they are served to anyone once the admin
//! API is on (and refused, like `/v1`, when no `admin_token` is set); everything they show
//! comes from `/v1`, with the admin token as a bearer header. The browser hands the token
//! over once, as `/ui?token=TOKEN`: the script keeps it in `sessionStorage` (gone when the
//! tab closes), drops it from the address bar, and sends it as `Authorization: Bearer`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::App;
use super::error::ApiError;

/// The page.
const INDEX_HTML: &str = include_str!("ui/index.html");
/// Its script.
const APP_JS: &str = include_str!("ui/app.js");
/// Its style sheet.
const APP_CSS: &str = include_str!("ui/app.css");

/// What the page may load: only its own assets and the API of this server.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/app.js", get(script))
        .route("/ui/app.css", get(style))
}

/// Refuses the page when the admin API is off.
fn enabled(app: &App) -> Result<(), ApiError> {
    if app.admin_token.is_some() {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "admin_disabled",
            message: "the web UI is off with the admin API; set admin_token (SWITCHBOARD_ADMIN_TOKEN) to enable both".to_owned(),
        })
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

async fn index(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    enabled(&app)?;
    Ok(asset("text/html; charset=utf-8", INDEX_HTML))
}

async fn script(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    enabled(&app)?;
    Ok(asset("text/javascript; charset=utf-8", APP_JS))
}

async fn style(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    enabled(&app)?;
    Ok(asset("text/css; charset=utf-8", APP_CSS))
}
