//! The baseline for "close to what bare axum can do" (server A of `benches/compare.sh`): an
//! axum server on the same runtime settings as `switchboard serve` (tokio's multi-thread
//! runtime, one worker per core) that parses the webhook into a typed struct, as any user's
//! handler would, and answers a constant callflow. It keeps no state: no actor, no flow, no
//! store.
//!
//! So that the client can check every server the same way (`benches/wrk/call.lua` expects the
//! menu to advance) and every server sends the same bytes, the constant is picked by the key
//! pressed: the texts and sizes are those of Switchboard's answers to the restaurant flow's
//! main menu, reservations menu (key 1) and opening hours (key 3).
//!
//! `cargo run --release -p switchboard-benches --example bare_axum -- 127.0.0.1:18090`, then
//! drive it with the same `wrk` script as the real server (see `benches/README.md`).

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

const MAIN: &str = r#"{"clientActionId":"restaurant:fb1c233f:main:1","callflow":[{"action":"sayAndCapture","params":{"promptMessage":"Welcome to ABC Restaurant. To book a table press 1, for a representative press 2, for our opening hours press 3, to hear this month's offer press 4.","voiceProfile":"en-US-BenjaminRUS","speed":1.0,"completeOnHash":false,"minDigits":1,"maxDigits":1,"digitTimeout":5000,"overallTimeout":10000,"noOfTries":1}}]}"#;
const RESERVATIONS: &str = r#"{"clientActionId":"restaurant:fb1c233f:reservations:2","callflow":[{"action":"sayAndCapture","params":{"promptMessage":"Reservations. For a new booking press 1. To change or cancel a booking press 2. For the previous menu press 9.","voiceProfile":"en-US-BenjaminRUS","speed":1.0,"completeOnHash":false,"minDigits":1,"maxDigits":1,"overallTimeout":10000,"noOfTries":1}}]}"#;
const HOURS: &str = r#"{"clientActionId":"restaurant:fb1c233f:main:4","callflow":[{"action":"say","params":{"text":"We are open 9AM to 9PM every day.","voiceProfile":"en-US-BenjaminRUS","speed":1.0}},{"action":"say","params":{"text":"Thank you for calling. Goodbye.","voiceProfile":"en-US-BenjaminRUS","speed":1.0}},{"action":"hangup"}]}"#;

/// The fields of a webhook a hand-written IVR reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Webhook {
    event_type: String,
    payload: Payload,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    session_id: String,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    call_status: Option<String>,
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    event_data: Option<EventData>,
    #[serde(default)]
    client_action_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EventData {
    #[serde(default)]
    dtmf: Option<String>,
}

async fn webhook(Json(hook): Json<Webhook>) -> impl IntoResponse {
    let p = &hook.payload;
    // Read like a real handler would (to log, to route); the answer depends only on the key.
    std::hint::black_box((
        &p.session_id,
        &p.event_id,
        &p.call_status,
        &p.destination,
        &p.client_action_id,
    ));
    let answer = if hook.event_type == "SESSION_SUMMARY" {
        "{}"
    } else {
        match hook
            .payload
            .event_data
            .as_ref()
            .and_then(|data| data.dtmf.as_deref())
        {
            Some("1") => RESERVATIONS,
            Some("3") => HOURS,
            _ => MAIN,
        }
    };
    ([(header::CONTENT_TYPE, "application/json")], answer)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare axum listening on http://{addr}");
    axum::serve(listener, Router::new().route("/webhooks", post(webhook))).await
}
