//! The hand-written competitor (server C of `benches/compare.sh`): the IVR a competent user
//! would write in an afternoon with axum and the `redis` crate, without Switchboard.
//!
//! Per webhook: parse it into a typed struct, `GET` the call's state (a small JSON object),
//! check the echoed `clientActionId` against it, step a hard-coded copy of the restaurant
//! flow's first menus, `SET key value EX ttl`, and answer a callflow serialized from typed
//! structs (the same texts, so the same size, as Switchboard's answers). The summary `DEL`s the
//! key. One multiplexed `ConnectionManager` is shared by every request, as the `redis` crate
//! recommends; no actor, no cache, no de-duplication beyond the `clientActionId` check.
//!
//! `cargo run --release -p switchboard-benches --example naive_redis -- 127.0.0.1:18091 redis://127.0.0.1:6379`

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

/// Lifetime of a call's state after its last webhook, in seconds.
const TTL_SECONDS: u64 = 7200;
const VOICE: &str = "en-US-BenjaminRUS";

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
    call_status: Option<String>,
    #[serde(default)]
    source: Option<String>,
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

/// What is kept in Redis per call.
#[derive(Debug, Serialize, Deserialize)]
struct CallState {
    node: Node,
    seq: u32,
    caller: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Node {
    Main,
    Reservations,
    Hours,
}

impl Node {
    const fn name(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::Reservations => "reservations",
            Self::Hours => "hours",
        }
    }

    /// Where a key press leads; anything unexpected replays the menu.
    fn next(self, dtmf: Option<&str>) -> Self {
        match (self, dtmf) {
            (Self::Main, Some("1")) => Self::Reservations,
            (Self::Main, Some("3")) => Self::Hours,
            (Self::Reservations, Some("9")) => Self::Main,
            (node, _) => node,
        }
    }
}

impl CallState {
    fn action_id(&self) -> String {
        format!("restaurant:00000000:{}:{}", self.node.name(), self.seq)
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Callflow {
    client_action_id: String,
    callflow: Vec<Action>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "action", content = "params", rename_all = "camelCase")]
enum Action {
    SayAndCapture(Capture),
    Say(Say),
    Hangup,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Capture {
    prompt_message: &'static str,
    voice_profile: &'static str,
    speed: f64,
    complete_on_hash: bool,
    min_digits: u8,
    max_digits: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    digit_timeout: Option<u32>,
    overall_timeout: u32,
    no_of_tries: u8,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Say {
    text: &'static str,
    voice_profile: &'static str,
    speed: f64,
}

fn capture(prompt: &'static str, digit_timeout: Option<u32>) -> Action {
    Action::SayAndCapture(Capture {
        prompt_message: prompt,
        voice_profile: VOICE,
        speed: 1.0,
        complete_on_hash: false,
        min_digits: 1,
        max_digits: 1,
        digit_timeout,
        overall_timeout: 10000,
        no_of_tries: 1,
    })
}

fn say(text: &'static str) -> Action {
    Action::Say(Say {
        text,
        voice_profile: VOICE,
        speed: 1.0,
    })
}

fn answer(state: &CallState) -> Callflow {
    let callflow = match state.node {
        Node::Main => vec![capture(
            "Welcome to ABC Restaurant. To book a table press 1, for a representative press 2, for our opening hours press 3, to hear this month's offer press 4.",
            Some(5000),
        )],
        Node::Reservations => vec![capture(
            "Reservations. For a new booking press 1. To change or cancel a booking press 2. For the previous menu press 9.",
            None,
        )],
        Node::Hours => vec![
            say("We are open 9AM to 9PM every day."),
            say("Thank you for calling. Goodbye."),
            Action::Hangup,
        ],
    };
    Callflow {
        client_action_id: state.action_id(),
        callflow,
    }
}

async fn webhook(
    State(mut redis): State<ConnectionManager>,
    Json(hook): Json<Webhook>,
) -> Result<Response, StatusCode> {
    let p = hook.payload;
    let key = format!("naive:{}", p.session_id);
    if hook.event_type == "SESSION_SUMMARY" {
        let _: i64 = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        return Ok(Json(serde_json::json!({})).into_response());
    }
    let stored: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .map_err(unavailable)?;
    let mut state = match stored {
        Some(json) => serde_json::from_str(&json).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?,
        None => CallState {
            node: Node::Main,
            seq: 0,
            caller: p.source.unwrap_or_default(),
        },
    };
    let dtmf = p.event_data.as_ref().and_then(|data| data.dtmf.as_deref());
    // A stale or duplicate event (its clientActionId is not the latest answer's) does not
    // advance the call; a new call (seq 0) always does.
    let current = state.seq == 0 || p.client_action_id.as_deref() == Some(&state.action_id());
    if current {
        if p.call_status.as_deref() != Some("CALL_RECEIVED") {
            state.node = state.node.next(dtmf);
        }
        state.seq += 1;
    }
    let value = serde_json::to_string(&state).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let () = redis::cmd("SET")
        .arg(&key)
        .arg(value)
        .arg("EX")
        .arg(TTL_SECONDS)
        .query_async(&mut redis)
        .await
        .map_err(unavailable)?;
    Ok(Json(answer(&state)).into_response())
}

fn unavailable(err: redis::RedisError) -> StatusCode {
    eprintln!("redis: {err}");
    StatusCode::SERVICE_UNAVAILABLE
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18091".to_owned());
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let redis = redis::Client::open(url.as_str())?
        .get_connection_manager()
        .await?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("naive axum + Redis listening on http://{addr} (store: {url})");
    let app = Router::new()
        .route("/webhooks", post(webhook))
        .with_state(redis);
    axum::serve(listener, app).await?;
    Ok(())
}
