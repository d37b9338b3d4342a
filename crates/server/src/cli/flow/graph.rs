//! `switchboard flow graph FILE`: the flow as a picture (SVG, Mermaid or DOT, drawn by
//! [`switchboard_server::graph`]), optionally with a funnel from `--report`: a running
//! server's `/v1/flows/{id}/report` URL (with the admin token) or that answer saved as JSON.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use switchboard_flow::Flow;
use switchboard_runtime::catalog;
use switchboard_server::graph::{Graph, render, report_figures};

use super::{flow_files, is_read_error, read_reason};
use crate::cli::Outcome;

/// How long to wait for a server's report.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `switchboard flow graph`.
#[derive(Debug, Args)]
pub(crate) struct GraphArgs {
    /// The flow file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The picture's format.
    #[arg(long, value_enum, default_value_t = Format::Svg)]
    format: Format,
    /// Show visits and drop-off per node: a running server's report URL
    /// (http://HOST:PORT/v1/flows/ID/report, with --admin-token) or that report saved as JSON.
    #[arg(long, value_name = "URL|FILE")]
    report: Option<String>,
    /// The server's admin token, for a --report URL.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SWITCHBOARD_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// Write the picture to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// What `flow graph` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// An SVG picture, laid out by Switchboard.
    Svg,
    /// A Mermaid flowchart (GitHub renders it in a ```mermaid block).
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// Draws the flow in `args.file`; the picture goes to `out` (or `--output`), problems to `err`.
pub(crate) fn graph(args: &GraphArgs, out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    match draw(args) {
        Ok(picture) => {
            let written = match &args.output {
                Some(path) => std::fs::write(path, &picture)
                    .map_err(|e| format!("cannot write '{}': {e}", path.display())),
                None => out
                    .write_all(picture.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("cannot write the picture: {e}")),
            };
            match written {
                Ok(()) => Outcome::Success,
                Err(reason) => {
                    let _ = writeln!(err, "switchboard: {reason}");
                    Outcome::Failed
                }
            }
        }
        Err(Problem::Rejected(lines)) => {
            for line in lines {
                let _ = writeln!(err, "{line}");
            }
            Outcome::Rejected
        }
        Err(Problem::Failed(reason)) => {
            let _ = writeln!(err, "switchboard: {reason}");
            Outcome::Failed
        }
    }
}

/// Why no picture was drawn.
enum Problem {
    /// The flow does not compile: its diagnostics.
    Rejected(Vec<String>),
    /// The command could not do its job: a sentence saying why.
    Failed(String),
}

fn draw(args: &GraphArgs) -> Result<String, Problem> {
    let flow = load(&args.file)?;
    let mut graph = Graph::of(&flow);
    if let Some(source) = &args.report {
        let report = read_report(source, args.admin_token.as_deref()).map_err(Problem::Failed)?;
        if let Some(id) = report.get("flow").and_then(|f| f.as_str())
            && id != flow.id
        {
            return Err(Problem::Failed(format!(
                "the report {source} is for flow '{id}', not for flow '{}' of '{}'",
                flow.id,
                args.file.display()
            )));
        }
        let figures =
            report_figures(&report).map_err(|e| Problem::Failed(format!("{source}: {e}")))?;
        graph = graph.with_report(&figures);
    }
    Ok(match args.format {
        Format::Svg => render::svg(&graph),
        Format::Mermaid => render::mermaid(&graph),
        Format::Dot => render::dot(&graph),
    })
}

/// The one flow of `file`.
fn load(file: &Path) -> Result<Flow, Problem> {
    let files = flow_files(file).map_err(Problem::Failed)?;
    let mut loaded = catalog::load(&files).map_err(|diagnostics| {
        match diagnostics.iter().find(|d| is_read_error(d)) {
            Some(read) => Problem::Failed(format!(
                "cannot read flow file '{}': {}",
                read.file,
                read_reason(read)
            )),
            None => Problem::Rejected(
                diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .chain(["fix the flow before drawing it".to_owned()])
                    .collect(),
            ),
        }
    })?;
    if loaded.flows.len() != 1 {
        return Err(Problem::Failed(format!(
            "'{}' holds {} flows; give one flow file",
            file.display(),
            loaded.flows.len()
        )));
    }
    Ok(loaded.flows.remove(0))
}

/// The report at `source`: fetched from an `http://` URL, else read from a file.
fn read_report(source: &str, token: Option<&str>) -> Result<serde_json::Value, String> {
    let text = if let Some(rest) = source.strip_prefix("http://") {
        fetch(rest, token).map_err(|e| format!("cannot fetch the report {source}: {e}"))?
    } else if source.starts_with("https://") {
        return Err(format!(
            "cannot fetch {source}: only http:// URLs are fetched; save the report with \
             `curl -H \"Authorization: Bearer $TOKEN\" {source} > report.json` and pass the file"
        ));
    } else {
        std::fs::read_to_string(source)
            .map_err(|e| format!("cannot read the report file '{source}': {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| format!("the report {source} is not JSON: {e}"))
}

/// `GET http://{rest}` with the admin token; the body of a 200 answer.
fn fetch(rest: &str, token: Option<&str>) -> Result<String, String> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let address = with_port
        .to_socket_addrs()
        .map_err(|e| format!("'{authority}' is not a reachable host: {e}"))?
        .next()
        .ok_or_else(|| format!("'{authority}' resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, REPORT_TIMEOUT)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let io = |e: std::io::Error| format!("the connection to {address} failed: {e}");
    stream.set_read_timeout(Some(REPORT_TIMEOUT)).map_err(io)?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    // HTTP/1.0 and Connection: close: the whole body, unchunked, then end of stream.
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\n{auth}Accept: application/json\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(io)?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or("the server's answer is not HTTP")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or("the server's answer has no HTTP status")?;
    match status {
        200 => Ok(body.to_owned()),
        401 | 403 => Err(format!(
            "the server refused the admin token ({status}); pass it with --admin-token or \
             SWITCHBOARD_ADMIN_TOKEN"
        )),
        _ => Err(format!("the server answered {status}: {}", body.trim())),
    }
}
