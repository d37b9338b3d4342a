//! Opens many live calls fast, for `benches/memory.sh`: each call gets its `CALL_RECEIVED`
//! (and, with `--press`, one key press) but never a summary, so it stays live on the server.
//!
//! ```text
//! open_calls --target 127.0.0.1:8080 --calls 100000 [--connections 32] [--run HEX]
//!            [--press DIGIT --action-id ID]
//! ```
//! Call `i` (0-based) has the sessionId `{run:08x}-0000-4000-8000-{i:012x}`, so a second
//! invocation with the same `--run` reaches the same calls: `--press 1 --action-id ID` sends
//! call `i` an `ACTION_COMPLETED` with that key, echoing `ID` (the `clientActionId` the first
//! invocation printed). Prints one `OPENED k=v ...` line; exits 1 if any answer was not 2xx.
//!
//! A plain HTTP/1.1 keep-alive client over `TcpStream`: it does nothing a server would notice
//! beyond what the platform does, and costs the machine little while the server's memory is
//! measured.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone)]
struct Options {
    target: String,
    calls: u64,
    connections: u64,
    run: u32,
    press: Option<String>,
    action_id: String,
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "open_calls: {problem}\nusage: open_calls --target HOST:PORT --calls N [--connections C] [--run HEX] [--press DIGIT --action-id ID]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options {
        target: "127.0.0.1:8080".to_owned(),
        calls: 1000,
        connections: 32,
        run: 1,
        press: None,
        action_id: String::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let number = |v: &str| {
            v.parse::<u64>()
                .unwrap_or_else(|_| usage(&format!("{flag} takes a number, not {v:?}")))
        };
        match flag.as_str() {
            "--target" => o.target = value,
            "--calls" => o.calls = number(&value),
            "--connections" => o.connections = number(&value).max(1),
            "--run" => {
                o.run = u32::from_str_radix(&value, 16)
                    .unwrap_or_else(|_| usage(&format!("--run takes hex digits, not {value:?}")))
            }
            "--press" => o.press = Some(value),
            "--action-id" => o.action_id = value,
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    o
}

fn body(o: &Options, call: u64) -> String {
    let session = format!("{:08x}-0000-4000-8000-{call:012x}", o.run);
    let common = format!(
        r#"{{"namespace":"VOICE","eventType":"CALL_ACTION","description":"Action request of a call","payload":{{"eventId":"{session}-{step}","callId":"{session}-c","sessionId":"{session}","subAccountId":"acme_voice","callDirection":"INBOUND","callType":"PSTN","source":"+6591110000","destination":"+6568888888","sourceFormat":"MSISDN","destinationFormat":"MSISDN","sourceCountryCode":"SG","destinationCountryCode":"SG","sourceRefId":null,"destinationRefId":null,"#,
        step = if o.press.is_some() { 1 } else { 0 }
    );
    match &o.press {
        None => format!(
            r#"{common}"callStatus":"CALL_RECEIVED","callDuration":0,"sipCode":200,"timestamp":"2026-11-20T09:15:02.118Z"}}}}"#
        ),
        Some(key) => format!(
            r#"{common}"callStatus":"ACTION_COMPLETED","callDuration":7,"eventData":{{"dtmf":"{key}","asrCaptured":null}},"sipCode":200,"timestamp":"2026-11-20T09:15:09.118Z","clientActionId":"{}"}}}}"#,
            o.action_id
        ),
    }
}

/// Sends one request on a keep-alive connection; returns the status and the body.
async fn post(
    stream: &mut TcpStream,
    host: &str,
    body: &str,
    buf: &mut Vec<u8>,
) -> std::io::Result<(u16, String)> {
    let head = format!(
        "POST /webhooks HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    buf.clear();
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed before the answer's headers"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("no status line"))?;
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| bad("no content-length (chunked answers are not supported)"))?;
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed inside the answer's body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf[header_end..header_end + length]).into_owned();
    Ok((status, text))
}

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    failed: u64,
    first_failure: Option<String>,
    action_id: Option<String>,
}

async fn connection(o: Arc<Options>, next: Arc<AtomicU64>) -> std::io::Result<Tally> {
    let mut stream = TcpStream::connect(&o.target).await?;
    stream.set_nodelay(true)?;
    let mut tally = Tally::default();
    let mut buf = Vec::with_capacity(8192);
    loop {
        let call = next.fetch_add(1, Ordering::Relaxed);
        if call >= o.calls {
            return Ok(tally);
        }
        let (status, answer) = post(&mut stream, &o.target, &body(&o, call), &mut buf).await?;
        if (200..300).contains(&status) {
            tally.ok += 1;
            if tally.action_id.is_none() {
                tally.action_id = answer
                    .split(r#""clientActionId":""#)
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .map(str::to_owned);
            }
        } else {
            tally.failed += 1;
            if tally.first_failure.is_none() {
                tally.first_failure = Some(format!("call {call}: HTTP {status} {answer}"));
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let o = Arc::new(options());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..o.connections)
        .map(|_| tokio::spawn(connection(o.clone(), next.clone())))
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        match task.await {
            Ok(Ok(t)) => {
                total.ok += t.ok;
                total.failed += t.failed;
                total.first_failure = total.first_failure.or(t.first_failure);
                total.action_id = total.action_id.or(t.action_id);
            }
            Ok(Err(err)) => {
                eprintln!("open_calls: a connection to {} failed: {err}", o.target);
                std::process::exit(1);
            }
            Err(err) => {
                eprintln!("open_calls: a connection task panicked: {err}");
                std::process::exit(1);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "OPENED ok={} failed={} seconds={seconds:.3} rate={:.0} action_id={}",
        total.ok,
        total.failed,
        total.ok as f64 / seconds,
        total.action_id.as_deref().unwrap_or("-")
    );
    if let Some(failure) = total.first_failure {
        eprintln!(
            "open_calls: {} answers were not 2xx; the first: {failure}",
            total.failed
        );
        std::process::exit(1);
    }
}
