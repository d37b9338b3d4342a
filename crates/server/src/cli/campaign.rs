//! `switchboard campaign ...`: start, follow, control and export campaigns on a running
//! server (clients of its `/v1/campaigns` admin API).
//!
//! `campaign start FILE.csv --flow ID [--rate R --concurrency N --window 09:00-17:00 ...]`
//! sends the list; the server checks all of it before any call, and a refused list is printed
//! one problem per line (`line 7: column number: bad number "12ab": ...`) with exit 1. With
//! `--wait` the command then prints the progress once a second until the campaign is done.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::Outcome;
use super::call::request;

/// Where the server is.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
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

/// The `campaign` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CampaignCommand {
    /// Check a CSV list and start dialling it.
    Start(Box<StartArgs>),
    /// Print a campaign's progress.
    Status(IdArgs),
    /// Stop dialling until resumed (calls in progress go on).
    Pause(IdArgs),
    /// Dial again after a pause.
    Resume(IdArgs),
    /// Never dial again; rows not yet dialled end CANCELED.
    Cancel(IdArgs),
    /// Print every row's outcome, attempts, digits and variables.
    Export(ExportArgs),
}

/// Arguments of `campaign start`.
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The list: a header line with a `number` column, optional `timezone`, and variables.
    #[arg(value_name = "FILE.csv")]
    file: PathBuf,
    /// The flow each callee is led through.
    #[arg(long, value_name = "ID")]
    flow: String,
    /// Caller id, E.164 (default: the server's outbound_from).
    #[arg(long, value_name = "NUMBER")]
    from: Option<String>,
    /// Calls started per second.
    #[arg(long, value_name = "R", default_value_t = 1.0)]
    rate: f64,
    /// Most calls in progress at once.
    #[arg(long, value_name = "N", default_value_t = 10)]
    concurrency: usize,
    /// Calling hours in the callee's time zone, HH:MM-HH:MM.
    #[arg(long, value_name = "HH:MM-HH:MM")]
    window: Option<String>,
    /// Days of the window: mon-fri, or mon,wed,fri (default: every day).
    #[arg(long, value_name = "DAYS")]
    days: Option<String>,
    /// Time zone of numbers whose country has several (+1, +61, ...).
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
    /// Tries again after a busy callee, at most this many times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    busy_retries: u32,
    /// Wait before a busy retry.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    busy_delay: String,
    /// Tries again after no answer, at most this many times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    no_answer_retries: u32,
    /// Wait before a no-answer retry.
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    no_answer_delay: String,
    /// A call with no outcome this long ends TIMED_OUT and frees its slot (default: the
    /// server's campaign_call_deadline).
    #[arg(long, value_name = "DURATION")]
    call_deadline: Option<String>,
    /// Print the progress every second until the campaign is done.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// A campaign id.
#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    /// The campaign's id (printed by `campaign start`).
    id: String,
    #[command(flatten)]
    server: ServerArgs,
}

/// Arguments of `campaign export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The campaign's id.
    id: String,
    /// json or csv.
    #[arg(long, default_value = "csv")]
    format: String,
    #[command(flatten)]
    server: ServerArgs,
}

impl CampaignCommand {
    /// Runs the command.
    pub(crate) fn run(self) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("switchboard campaign: cannot start the async runtime: {err}");
                return Outcome::Failed.into();
            }
        };
        let result = runtime.block_on(async {
            match self {
                Self::Start(args) => start(&args).await,
                Self::Status(args) => status(&args).await,
                Self::Pause(args) => control(&args, "pause").await,
                Self::Resume(args) => control(&args, "resume").await,
                Self::Cancel(args) => control(&args, "cancel").await,
                Self::Export(args) => export(&args).await,
            }
        });
        match result {
            Ok(outcome) => outcome.into(),
            Err(message) => {
                eprintln!("switchboard campaign: {message}");
                Outcome::Failed.into()
            }
        }
    }
}

fn url(server: &ServerArgs, path: &str) -> String {
    format!("{}/v1/campaigns{path}", server.server.trim_end_matches('/'))
}

/// Prints a refusal of the server and returns `Rejected`.
fn refused(status: u16, body: &[u8]) -> Outcome {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &answer["error"];
    if let Some(problems) = error["problems"].as_array() {
        eprintln!("switchboard campaign: the list was refused, no call was placed:");
        for p in problems {
            let line = p["line"].as_u64().unwrap_or(0);
            let message = p["message"].as_str().unwrap_or("");
            match p["column"].as_str() {
                Some(column) => eprintln!("line {line}: column {column}: {message}"),
                None => eprintln!("line {line}: {message}"),
            }
        }
    } else {
        let message = error["message"].as_str().unwrap_or("no message");
        match error["field"].as_str() {
            Some(field) => eprintln!("switchboard campaign: {status}: {field}: {message}"),
            None => eprintln!("switchboard campaign: {status}: {message}"),
        }
    }
    Outcome::Rejected
}

async fn start(args: &StartArgs) -> Result<Outcome, String> {
    let list = std::fs::read(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let mut query = vec![
        ("flow", args.flow.clone()),
        ("rate", args.rate.to_string()),
        ("concurrency", args.concurrency.to_string()),
        ("busy_retries", args.busy_retries.to_string()),
        ("busy_delay", args.busy_delay.clone()),
        ("no_answer_retries", args.no_answer_retries.to_string()),
        ("no_answer_delay", args.no_answer_delay.clone()),
    ];
    for (key, value) in [
        ("from", &args.from),
        ("window", &args.window),
        ("days", &args.days),
        ("timezone", &args.timezone),
        ("call_deadline", &args.call_deadline),
    ] {
        if let Some(value) = value {
            query.push((key, value.clone()));
        }
    }
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    let url = format!("{}?{}", url(&args.server, ""), query.join("&"));
    let token = args.server.token.as_deref();
    let (status, body) = request("POST", &url, token, "text/csv", Bytes::from(list)).await?;
    if status != 201 {
        return Ok(refused(status, &body));
    }
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = answer["id"].as_str().unwrap_or("?").to_owned();
    println!("campaign {id}: {} rows", answer["rows"]);
    if !args.wait {
        return Ok(Outcome::Success);
    }
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (status, body) = request(
            "GET",
            &url_of(&args.server, &id),
            token,
            "application/json",
            Bytes::new(),
        )
        .await?;
        if status != 200 {
            return Ok(refused(status, &body));
        }
        let view: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        println!("{}", progress_line(&view));
        if view["finished"] == true {
            return Ok(Outcome::Success);
        }
    }
}

fn url_of(server: &ServerArgs, id: &str) -> String {
    url(server, &format!("/{}", encode(id)))
}

/// `campaign ID: 120/500 done (3 dialling), 131 attempts; COMPLETED 100, BUSY 20`.
fn progress_line(view: &Value) -> String {
    let p = &view["progress"];
    let outcomes = p["outcomes"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "campaign {} ({}): {}/{} done ({} dialling), {} attempts; {outcomes}",
        view["id"].as_str().unwrap_or("?"),
        view["state"].as_str().unwrap_or("?"),
        p["done"],
        p["total"],
        p["dialling"],
        p["attempts"],
    )
}

async fn status(args: &IdArgs) -> Result<Outcome, String> {
    let token = args.server.token.as_deref();
    let (status, body) = request(
        "GET",
        &url_of(&args.server, &args.id),
        token,
        "application/json",
        Bytes::new(),
    )
    .await?;
    if status != 200 {
        return Ok(refused(status, &body));
    }
    let view: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    println!("{}", progress_line(&view));
    Ok(Outcome::Success)
}

async fn control(args: &IdArgs, action: &str) -> Result<Outcome, String> {
    let token = args.server.token.as_deref();
    let url = format!("{}/{action}", url_of(&args.server, &args.id));
    let (status, body) = request("POST", &url, token, "application/json", Bytes::new()).await?;
    if status != 200 {
        return Ok(refused(status, &body));
    }
    let view: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    println!("{}", progress_line(&view));
    Ok(Outcome::Success)
}

async fn export(args: &ExportArgs) -> Result<Outcome, String> {
    let token = args.server.token.as_deref();
    let url = format!(
        "{}/export?format={}",
        url_of(&args.server, &args.id),
        encode(&args.format)
    );
    let (status, body) = request("GET", &url, token, "application/json", Bytes::new()).await?;
    if status != 200 {
        return Ok(refused(status, &body));
    }
    print!("{}", String::from_utf8_lossy(&body));
    Ok(Outcome::Success)
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
