//! `switchboard call --flow ID --to NUMBER [--from NUMBER] [--var k=v ...]`: place one
//! outbound call through a running server.
//!
//! The command is a client of the server's `POST /v1/calls` (admin API): the server registers
//! the session in its store, where every replica finds it, and places the call with its own
//! Callflows API credentials, so the command needs only the server's URL and admin token. It
//! prints the platform's session id, or the refusal (the field at fault, or the platform's
//! status code and message) and exits 1.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::Outcome;

/// Arguments of `switchboard call`.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The flow the callee is led through.
    #[arg(long, value_name = "ID")]
    flow: String,
    /// The callee, E.164 (+6591234567).
    #[arg(long, value_name = "NUMBER")]
    to: String,
    /// The caller id, E.164 (default: the server's outbound_from).
    #[arg(long, value_name = "NUMBER")]
    from: Option<String>,
    /// A session variable, name=value ({{vars.name}} in the flow); repeat for several.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// The server's base URL.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The server's admin token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SWITCHBOARD_ADMIN_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE (e.g. --var name=Ana)"))?;
    Ok((name.trim().to_owned(), value.to_owned()))
}

/// Runs `switchboard call`.
pub(crate) fn run(args: CallArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("switchboard call: cannot start the async runtime: {err}");
            return Outcome::Failed.into();
        }
    };
    let vars: BTreeMap<String, String> = args.vars.iter().cloned().collect();
    let body = json!({"flow": args.flow, "to": args.to, "from": args.from, "vars": vars});
    let url = format!("{}/v1/calls", args.server.trim_end_matches('/'));
    match runtime.block_on(post(&url, args.token.as_deref(), &body)) {
        Ok((200, answer)) => {
            println!(
                "placed: session {} (ticket {})",
                answer["sessionId"].as_str().unwrap_or("?"),
                answer["ticket"].as_str().unwrap_or("?")
            );
            Outcome::Success.into()
        }
        Ok((status, answer)) => {
            let error = &answer["error"];
            let message = error["message"].as_str().unwrap_or("no message");
            match error["field"].as_str() {
                Some(field) => eprintln!("switchboard call: {status}: {field}: {message}"),
                None => eprintln!("switchboard call: {status}: {message}"),
            }
            Outcome::Rejected.into()
        }
        Err(message) => {
            eprintln!("switchboard call: {message}");
            Outcome::Failed.into()
        }
    }
}

async fn post(url: &str, token: Option<&str>, body: &Value) -> Result<(u16, Value), String> {
    let (status, bytes) = request(
        "POST",
        url,
        token,
        "application/json",
        Bytes::from(body.to_string()),
    )
    .await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// One request to the server's admin API: the status and the body.
pub(super) async fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("--server: {url:?} is not a URL: {e}"))?;
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header(CONTENT_TYPE, content_type);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            format!("cannot reach the server at {url}: {e}; is `switchboard serve` running?")
        })?;
        let status = response.status().as_u16();
        let bytes = Limited::new(response.into_body(), 64 << 20)
            .collect()
            .await
            .map_err(|e| format!("cannot read the server's answer: {e}"))?
            .to_bytes();
        Ok((status, bytes))
    };
    // The server retries the platform a few times; give it room.
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| format!("the server at {url} did not answer within 60 s"))?
}
