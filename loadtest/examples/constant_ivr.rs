//! A webhook server that answers constants, for measuring the load generator's own ceiling:
//! the menu for `CALL_RECEIVED`, a goodbye with `hangup` for `ACTION_COMPLETED`, an empty 200
//! for everything else. It does not parse JSON, so nearly all the CPU goes to the generator.
//!
//! ```text
//! cargo run --release -p switchboard-loadgen --example constant_ivr -- 127.0.0.1:18080
//! switchboard-loadgen --target http://127.0.0.1:18080 --script 1 --concurrency 64 --duration 10s
//! ```

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

const MENU: &str = r#"{"clientActionId":"menu","callflow":[{"action":"sayAndCapture","params":{"promptMessage":"Press 1 for sales or 2 for support.","voiceProfile":"en-US-BenjaminRUS","maxDigits":1}}]}"#;
const GOODBYE: &str = r#"{"callflow":[{"action":"say","params":{"text":"Goodbye.","voiceProfile":"en-US-BenjaminRUS"}},{"action":"hangup"}]}"#;

fn contains(body: &[u8], needle: &[u8]) -> bool {
    body.windows(needle.len()).any(|w| w == needle)
}

async fn webhook(body: Bytes) -> &'static str {
    if contains(&body, b"\"CALL_RECEIVED\"") && contains(&body, b"\"CALL_ACTION\"") {
        MENU
    } else if contains(&body, b"\"ACTION_COMPLETED\"") {
        GOODBYE
    } else {
        ""
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "answering constants on http://{}/webhooks",
        listener.local_addr()?
    );
    axum::serve(listener, Router::new().route("/webhooks", post(webhook))).await
}
