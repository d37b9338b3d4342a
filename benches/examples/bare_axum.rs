//! The baseline for "close to what bare axum can do": an axum server on the same runtime
//! settings as `switchboard serve` that reads the webhook body and answers a constant
//! callflow, doing none of Switchboard's work (no parsing, no actor, no flow, no store).
//!
//! `cargo run --release -p switchboard-benches --example bare_axum -- 127.0.0.1:18090`, then
//! drive it with the same `wrk` script as the real server (see `benches/wrk/README.md`).

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;

const ANSWER: &str = r#"{"clientActionId":"restaurant:fb1c233f:main:1","callflow":[{"action":"sayAndCapture","params":{"promptMessage":"Welcome to ABC Restaurant. To book a table press 1, for a representative press 2, for our opening hours press 3, to hear this month's offer press 4.","voiceProfile":"en-US-BenjaminRUS","speed":1.0,"completeOnHash":false,"minDigits":1,"maxDigits":1,"digitTimeout":5000,"overallTimeout":10000,"noOfTries":1}}]}"#;

async fn webhook(body: Bytes) -> impl IntoResponse {
    std::hint::black_box(body);
    ([(header::CONTENT_TYPE, "application/json")], ANSWER)
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
