//! `switchboard flow simulate FILE` plays a call through a flow in the terminal. It drives
//! the real state machine ([`switchboard_flow::advance_in`]) the way the 8x8 platform would,
//! prints what the caller hears and which keys are expected, and runs every callflow it gets
//! through the protocol validator, so an author sees a violation before a caller does.
//!
//! A flow with `subflow` nodes is played with the flows it calls: those of its directory (or
//! of the directory given), loaded and checked together as the server loads them; the
//! transcript names a sub-flow's nodes `FLOW:NODE`.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use switchboard_flow::fetch::{FetchFailure, FetchOutcome, FetchRequest, FetchResult};
use switchboard_flow::model::{Capture, Menu};
use switchboard_flow::{
    Awaiting, Event, Flow, FlowSet, Flows, NodeKind, Reply, SessionState, Severity, Signal, Step,
    Target, Trace, TransferResult, advance_in, resume_in,
};
use switchboard_protocol::{Action, Mode, Msisdn, SayAndCapture, validate_callflow};
use switchboard_runtime::{Fetched, Fetcher, catalog};

use super::{count, flow_files, is_read_error, read_reason, target_name};
use crate::cli::Outcome;

/// The caller's number when `--caller` is not given.
pub(super) const DEFAULT_CALLER: &str = "+6591234567";
/// The session id of a simulated call (it picks `split` branches).
pub(super) const DEFAULT_SESSION: &str = "simulated-call";
/// The called number when `--called` is not given and the flow lists no number.
pub(super) const DEFAULT_CALLED: &str = "+6560000000";
/// Most answers in a row that a simulated call may take without a key from the caller (after
/// transfers and long chains): more means the flow loops on its own.
pub(super) const MAX_IDLE_ANSWERS: usize = 100;

/// Arguments of `switchboard flow simulate`.
#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// The flow file; or a directory of flows, with --called choosing the flow.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// What the caller does, comma separated, in order: keys such as `1` or `12345678#`, `-` for
    /// silence, and `!busy`, `!no-answer`, `!failed`, `!answered` or `!SIPCODE` for how a
    /// transfer ends. Without it, each entry is read from standard input (as --interactive).
    #[arg(long, value_name = "KEYS", allow_hyphen_values = true)]
    digits: Option<String>,
    /// Play the call at the terminal: each prompt is printed as the call reaches it, and the
    /// caller's keys (or `-` for silence, an empty line to hang up) are read from standard
    /// input one line at a time, as are transfer results. The default without --digits.
    #[arg(long, short, conflicts_with = "digits")]
    interactive: bool,
    /// How a transfer ends when the caller's entries give no `!result` for it.
    #[arg(long, value_enum, value_name = "RESULT", default_value_t = TransferChoice::Answered)]
    transfer: TransferChoice,
    /// Also print each callflow as the JSON answered to the 8x8 platform.
    #[arg(long)]
    json: bool,
    /// The caller's number.
    #[arg(long, value_name = "NUMBER", default_value = DEFAULT_CALLER, value_parser = parse_number)]
    caller: String,
    /// The number called; default: the flow's first number.
    #[arg(long, value_name = "NUMBER", value_parser = parse_number)]
    called: Option<String>,
    /// The session id, which picks the branch of every A/B `split` (the same id always takes
    /// the same branches).
    #[arg(long, value_name = "ID", default_value = DEFAULT_SESSION)]
    session: String,
    /// When the call happens (for time and day branches), e.g. 2026-11-23T10:00:00+08:00;
    /// default: now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    at: Option<DateTime<Utc>>,
    /// Answer the fetch requests whose URL starts with URL_PREFIX with the content of FILE
    /// instead of asking the backend (repeatable; the longest matching prefix wins). Requests
    /// no mock matches go to the real URL.
    #[arg(long, value_name = "URL_PREFIX=FILE")]
    mock: Vec<String>,
    /// The HTTP status of mocked answers.
    #[arg(long, value_name = "CODE", default_value_t = 200, value_parser = clap::value_parser!(u16).range(100..=599))]
    mock_status: u16,
    /// How long mocked answers take, in milliseconds; longer than a node's timeout_ms, the
    /// fetch times out (on_timeout).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    mock_delay: u64,
    /// Comma-separated environment variables fetch nodes may read as {{env.NAME}}, as the
    /// server's fetch_env setting allows.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    fetch_env: Vec<String>,
}

/// How a simulated transfer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TransferChoice {
    /// The agent answers (SIP 200); the flow continues at `next` when the bridged call ends.
    Answered,
    /// The line is busy (SIP 486): `on_busy`.
    Busy,
    /// Nobody answers (SIP 480): `on_no_answer`.
    NoAnswer,
    /// The call fails (SIP 503): `on_error`.
    Failed,
}

impl TransferChoice {
    /// The SIP code the platform reports for this result.
    const fn sip(self) -> u16 {
        match self {
            Self::Answered => 200,
            Self::Busy => 486,
            Self::NoAnswer => 480,
            Self::Failed => 503,
        }
    }
}

pub(super) fn parse_number(text: &str) -> Result<String, String> {
    Msisdn::new(text)
        .map(|n| n.e164())
        .map_err(|e| e.to_string())
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}; give an RFC 3339 time such as 2026-11-23T10:00:00+08:00"))
}

// ---------------------------------------------------------------------------------------------
// flow simulate

/// One thing the caller does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    /// Keys pressed, as typed (`12345678#`).
    Keys(String),
    /// Nothing pressed before the timeout.
    Silence,
    /// How the transfer in progress ends: a SIP code.
    Transfer(u16),
}

impl Entry {
    /// Parses one entry: `1`, `12345678#`, `-`, `!busy`, `!486`.
    pub(super) fn parse(token: &str) -> Result<Self, String> {
        let token = token.trim();
        if token == "-" {
            return Ok(Self::Silence);
        }
        if let Some(result) = token.strip_prefix('!') {
            let choice = match result.to_ascii_lowercase().replace('_', "-").as_str() {
                "answered" => Some(TransferChoice::Answered),
                "busy" => Some(TransferChoice::Busy),
                "no-answer" => Some(TransferChoice::NoAnswer),
                "failed" => Some(TransferChoice::Failed),
                _ => None,
            };
            return match (choice, result.parse::<u16>()) {
                (Some(choice), _) => Ok(Self::Transfer(choice.sip())),
                (None, Ok(code)) if (100..700).contains(&code) => Ok(Self::Transfer(code)),
                _ => Err(format!(
                    "'{token}' is not a transfer result; use !answered, !busy, !no-answer, !failed or a SIP code such as !486"
                )),
            };
        }
        if !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
        {
            return Ok(Self::Keys(token.to_owned()));
        }
        Err(format!(
            "'{token}' is not a key entry; use keys 0-9, * and # (e.g. 1 or 12345678#), - for silence, or !busy for a transfer result"
        ))
    }
}

/// Where the caller's entries come from.
enum Script<'a> {
    /// `--digits`, consumed in order.
    Listed(VecDeque<Entry>),
    /// Typed on standard input, one per line.
    Typed(&'a mut dyn BufRead),
}

/// Why a simulation stopped early.
enum Stop {
    /// Reading the caller's entries or writing the transcript failed.
    Io(io::Error),
    /// The `--digits` list does not fit the call.
    Script(String),
}

impl From<io::Error> for Stop {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}

impl Script<'_> {
    /// The caller's next entry at a menu or capture; `None` when the caller is done (hangs up).
    fn keys(&mut self, out: &mut dyn Write) -> Result<Option<Entry>, Stop> {
        match self {
            Self::Listed(entries) => match entries.pop_front() {
                Some(Entry::Transfer(code)) => Err(Stop::Script(format!(
                    "--digits gives a transfer result (!{code}) where the call waits for keys"
                ))),
                entry => Ok(entry),
            },
            Self::Typed(input) => loop {
                write!(out, "keys (digits, - for silence, empty to hang up)> ")?;
                out.flush()?;
                let Some(line) = read_line(*input)? else {
                    return Ok(None);
                };
                if line.is_empty() {
                    return Ok(None);
                }
                match Entry::parse(&line) {
                    Ok(Entry::Transfer(_)) => {
                        writeln!(out, "   the call waits for keys, not a transfer result")?;
                    }
                    Ok(entry) => return Ok(Some(entry)),
                    Err(reason) => writeln!(out, "   {reason}")?,
                }
            },
        }
    }

    /// How the transfer in progress ends, as a SIP code.
    fn transfer(&mut self, default: TransferChoice, out: &mut dyn Write) -> Result<u16, Stop> {
        match self {
            Self::Listed(entries) => match entries.front() {
                Some(Entry::Transfer(code)) => {
                    let code = *code;
                    entries.pop_front();
                    Ok(code)
                }
                _ => Ok(default.sip()),
            },
            Self::Typed(input) => loop {
                write!(
                    out,
                    "transfer result (answered, busy, no-answer, failed or a SIP code; empty = {})> ",
                    default
                        .to_possible_value()
                        .map_or("answered".to_owned(), |v| v.get_name().to_owned())
                )?;
                out.flush()?;
                let line = read_line(*input)?.unwrap_or_default();
                if line.is_empty() {
                    return Ok(default.sip());
                }
                let token = if line.starts_with('!') {
                    line
                } else {
                    format!("!{line}")
                };
                match Entry::parse(&token) {
                    Ok(Entry::Transfer(code)) => return Ok(code),
                    Ok(_) => {}
                    Err(reason) => writeln!(out, "   {reason}")?,
                }
            },
        }
    }
}

fn read_line(input: &mut dyn BufRead) -> io::Result<Option<String>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim().to_owned()))
}

/// Plays a call through the flow in `args.file`, reading the caller's entries from
/// `args.digits` or, without it, from `stdin`; `now` is the time of the call unless `--at`.
pub(crate) fn simulate(
    args: &SimulateArgs,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
    now: DateTime<Utc>,
) -> Outcome {
    let script = match &args.digits {
        Some(list) => match list
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .map(Entry::parse)
            .collect::<Result<VecDeque<_>, _>>()
        {
            Ok(entries) => Script::Listed(entries),
            Err(reason) => {
                let _ = writeln!(err, "switchboard: --digits: {reason}");
                return Outcome::Failed;
            }
        },
        None => Script::Typed(stdin),
    };
    if args.interactive {
        let _ = writeln!(
            out,
            "Interactive call: type the caller's keys when asked (- for silence, an empty line or Ctrl-D hangs up)."
        );
    }
    let backend = match Backend::new(args) {
        Ok(backend) => backend,
        Err(reason) => {
            let _ = writeln!(err, "switchboard: {reason}");
            return Outcome::Failed;
        }
    };
    let (set, flow) = match load_one(args, out) {
        Ok(loaded) => loaded,
        Err(Loading::Rejected) => return Outcome::Rejected,
        Err(Loading::Failed(reason)) => {
            let _ = writeln!(err, "switchboard: {reason}");
            return Outcome::Failed;
        }
    };
    let called = args
        .called
        .clone()
        .or_else(|| flow.numbers.first().cloned())
        .unwrap_or_else(|| DEFAULT_CALLED.to_owned());
    let mut state = SessionState::new(&flow, &args.caller, &called);
    state.session.clone_from(&args.session);
    let call = Simulation {
        set: &set,
        flow: &flow,
        state,
        now: args.at.unwrap_or(now),
        json: args.json,
        transfer: args.transfer,
        script,
        violations: 0,
        backend,
    };
    match call.run(out) {
        Ok(Ended {
            violations: 0,
            looped: false,
        }) => Outcome::Success,
        Ok(Ended { violations, looped }) => {
            if violations > 0 {
                let _ = writeln!(
                    err,
                    "switchboard: flow '{}' produced {} that the 8x8 platform would reject; see the transcript",
                    flow.id,
                    count(violations, "protocol violation")
                );
            }
            if looped {
                let _ = writeln!(
                    err,
                    "switchboard: flow '{}' answered {MAX_IDLE_ANSWERS} times in a row without a key from the caller; look for a loop through transfer results",
                    flow.id
                );
            }
            Outcome::Rejected
        }
        Err(Stop::Script(reason)) => {
            let _ = out.flush();
            let _ = writeln!(err, "switchboard: {reason}");
            Outcome::Failed
        }
        Err(Stop::Io(reason)) => {
            let _ = writeln!(
                err,
                "switchboard: cannot read the caller's entries or write the transcript: {reason}"
            );
            Outcome::Failed
        }
    }
}

/// Why no flow could be simulated.
enum Loading {
    /// The flow has errors (already printed).
    Rejected,
    /// A sentence saying what could not be done.
    Failed(String),
}

/// The flow to simulate (the one in the file, or the one of the directory that answers
/// `--called`) in a set with the flows it may run as sub-flows: with `subflow` nodes, the
/// flows of the directory given or of the file's directory, else only itself. Compile errors
/// and warnings are printed on `out`.
fn load_one(args: &SimulateArgs, out: &mut dyn Write) -> Result<(FlowSet, Arc<Flow>), Loading> {
    let files = flow_files(&args.file).map_err(Loading::Failed)?;
    let options = switchboard_flow::Options {
        fetch_env: args.fetch_env.clone(),
    };
    let loaded = match catalog::load_with(&files, &options) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            if let Some(read) = diagnostics.iter().find(|d| is_read_error(d)) {
                return Err(Loading::Failed(format!(
                    "cannot read flow file '{}': {}",
                    read.file,
                    read_reason(read)
                )));
            }
            for diagnostic in &diagnostics {
                let _ = writeln!(out, "{diagnostic}");
            }
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let _ = writeln!(
                out,
                "{}: fix the flow before simulating it",
                count(errors, "error")
            );
            return Err(Loading::Rejected);
        }
    };
    for warning in &loaded.warnings {
        let _ = writeln!(out, "{warning}");
    }
    let mut flows = loaded.flows;
    let chosen = choose(args, &flows)?;
    let id = flows[chosen].id.clone();
    let flows = if !flows[chosen].calls_subflows {
        vec![flows.swap_remove(chosen)]
    } else if args.file.is_dir() {
        flows
    } else {
        // The flows it calls are those of its directory, as the server and `flow test` see
        // them when they load that directory.
        let dir = args
            .file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        match catalog::load_with(&[dir.to_owned()], &options) {
            Ok(loaded) => loaded.flows,
            Err(diagnostics) => return Err(not_together(&id, &diagnostics, out)),
        }
    };
    let set = FlowSet::new(flows).map_err(|diagnostics| not_together(&id, &diagnostics, out))?;
    let flow = set.latest(&id).map(Arc::clone).ok_or_else(|| {
        Loading::Failed(format!(
            "flow '{id}' is not among the flows of the directory of '{}'",
            args.file.display()
        ))
    })?;
    Ok((set, flow))
}

/// Prints why flow `id` and the flows it calls do not load together.
fn not_together(
    id: &str,
    diagnostics: &[switchboard_flow::Diagnostic],
    out: &mut dyn Write,
) -> Loading {
    for diagnostic in diagnostics {
        let _ = writeln!(out, "{diagnostic}");
    }
    let _ = writeln!(
        out,
        "flow '{id}' runs sub-flows, and it and the flows of its directory do not load together: fix them before simulating it"
    );
    Loading::Rejected
}

/// Which of `flows` to simulate: the only one, or the one answering `--called`.
fn choose(args: &SimulateArgs, flows: &[Flow]) -> Result<usize, Loading> {
    if flows.len() == 1 {
        return Ok(0);
    }
    let ids: Vec<String> = flows.iter().map(|f| f.id.clone()).collect();
    let Some(called) = &args.called else {
        return Err(Loading::Failed(format!(
            "'{}' holds {} flows ({}); pass --called NUMBER to choose the one that answers it, or give one file",
            args.file.display(),
            flows.len(),
            ids.join(", ")
        )));
    };
    let index = flows
        .iter()
        .position(|f| f.numbers.iter().any(|n| Msisdn::same_number(n, called)));
    match index {
        Some(i) => Ok(i),
        None => Err(Loading::Failed(format!(
            "no flow in '{}' answers {called} (flows: {})",
            args.file.display(),
            ids.join(", ")
        ))),
    }
}

/// How a simulated call ended.
struct Ended {
    /// Protocol violations seen.
    violations: usize,
    /// Whether it was stopped after [`MAX_IDLE_ANSWERS`].
    looped: bool,
}

/// A call in progress: the platform's side, played against [`switchboard_flow::advance_in`].
struct Simulation<'a, 'i> {
    /// The flow the call started in and the flows it may run as sub-flows.
    set: &'a FlowSet,
    /// The flow the call started in.
    flow: &'a Flow,
    state: SessionState,
    now: DateTime<Utc>,
    json: bool,
    transfer: TransferChoice,
    script: Script<'i>,
    violations: usize,
    backend: Backend,
}

/// Where a simulated call's fetch requests are answered: canned answers, or the real URL.
struct Backend {
    /// (URL prefix, body), longest prefix first.
    mocks: Vec<(String, Bytes)>,
    status: u16,
    delay_ms: u64,
    /// The allow-listed environment variables that are set.
    env: BTreeMap<String, String>,
    /// Made at the first request that no mock answers.
    live: Option<(tokio::runtime::Runtime, Fetcher)>,
}

impl Backend {
    fn new(args: &SimulateArgs) -> Result<Self, String> {
        let mut mocks = Vec::new();
        for mock in &args.mock {
            let Some((prefix, file)) = mock.rsplit_once('=') else {
                return Err(format!(
                    "--mock {mock:?}: write URL_PREFIX=FILE, e.g. --mock http://127.0.0.1:9000/accounts/=balance.json"
                ));
            };
            let body =
                std::fs::read(file).map_err(|e| format!("--mock: cannot read '{file}': {e}"))?;
            mocks.push((prefix.to_owned(), Bytes::from(body)));
        }
        mocks.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let env = args
            .fetch_env
            .iter()
            .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
            .collect();
        Ok(Self {
            mocks,
            status: args.mock_status,
            delay_ms: args.mock_delay,
            env,
            live: None,
        })
    }

    /// The answer to `request`, and a line saying where it came from.
    fn answer(&mut self, request: &FetchRequest) -> (Fetched, String) {
        // Matched on the URL as written, so a mock needs no secret.
        let shown = request.url.to_string();
        if let Some((prefix, body)) = self.mocks.iter().find(|(p, _)| shown.starts_with(p)) {
            if self.delay_ms > u64::from(request.timeout_ms) {
                let line = format!(
                    "mock {prefix}: answers after {} ms, past the node's timeout_ms ({})",
                    self.delay_ms, request.timeout_ms
                );
                return (Fetched::Failed(FetchOutcome::TimedOut), line);
            }
            let line = format!("mock {prefix}: {} ({} bytes)", self.status, body.len());
            let fetched = Fetched::Answer {
                status: self.status,
                body: body.clone(),
            };
            return (fetched, line);
        }
        if self.live.is_none() {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let down = Fetched::Failed(FetchOutcome::Failed(FetchFailure::Unreachable));
                    return (down, format!("cannot start an HTTP client: {e}"));
                }
            };
            let config = switchboard_runtime::FetchConfig {
                env: self.env.clone(),
                ..Default::default()
            };
            match Fetcher::new(config) {
                Ok(fetcher) => self.live = Some((runtime, fetcher)),
                Err(e) => {
                    let down = Fetched::Failed(FetchOutcome::Failed(FetchFailure::Unreachable));
                    return (down, format!("cannot start an HTTP client: {e}"));
                }
            }
        }
        let Some((runtime, fetcher)) = &self.live else {
            unreachable!("made above");
        };
        let fetched = runtime.block_on(async {
            let deadline = tokio::time::Instant::now()
                + std::time::Duration::from_millis(request.timeout_ms.into());
            fetcher.fetch("simulate", request, deadline).await
        });
        let line = match &fetched {
            Fetched::Answer { status, body } => format!("{status} ({} bytes)", body.len()),
            Fetched::Failed(FetchOutcome::TimedOut) => {
                format!("no answer within {} ms", request.timeout_ms)
            }
            Fetched::Failed(other) => format!("failed: {other:?}"),
        };
        (fetched, line)
    }
}

impl<'a> Simulation<'a, '_> {
    /// Plays the call to its end.
    fn run(mut self, out: &mut dyn Write) -> Result<Ended, Stop> {
        let flow = self.flow;
        writeln!(
            out,
            "Flow '{}' ({}, version {})",
            flow.id, flow.file, flow.version
        )?;
        let called: Vec<String> = subflows(flow, self.set)
            .iter()
            .map(|f| format!("'{}' ({}, version {})", f.id, f.file, f.version))
            .collect();
        if !called.is_empty() {
            writeln!(out, "Sub-flows it may run: {}", called.join(", "))?;
        }
        writeln!(
            out,
            "Call from {} to {} at {} ({} time: {})",
            self.state.caller,
            self.state.called,
            self.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            flow.timezone,
            self.now
                .with_timezone(&flow.timezone)
                .format("%a %Y-%m-%d %H:%M"),
        )?;
        if !flow.numbers.is_empty()
            && !flow
                .numbers
                .iter()
                .any(|n| Msisdn::same_number(n, &self.state.called))
        {
            writeln!(
                out,
                "note: flow '{}' does not answer {}; simulating it anyway",
                flow.id, self.state.called
            )?;
        }
        writeln!(out)?;
        writeln!(out, "── the call arrives (CALL_RECEIVED)")?;
        let (reply, stepped) = self.step(Event::Start, out)?;
        self.show(&reply, stepped, out)?;
        let mut last = reply.callflow;
        let mut idle = 0;
        while idle < MAX_IDLE_ANSWERS {
            idle += 1;
            let action_id = last.client_action_id.as_ref().map(|id| id.as_str());
            let (dtmf, sip_code) = match self.state.awaiting {
                Awaiting::Nothing => {
                    writeln!(out, "── the call ends")?;
                    return Ok(self.ended(false));
                }
                Awaiting::Continue => {
                    writeln!(
                        out,
                        "── the platform has played that callflow (ACTION_COMPLETED); the flow goes on"
                    )?;
                    (None, None)
                }
                Awaiting::Transfer => {
                    let code = self.script.transfer(self.transfer, out)?;
                    let result = TransferResult::from_sip(Some(code));
                    writeln!(
                        out,
                        "── the transfer ends: {} (SIP {code})",
                        result.label().replace('_', " ")
                    )?;
                    (None, Some(code))
                }
                Awaiting::Input => {
                    let Some(entry) = self.script.keys(out)? else {
                        writeln!(
                            out,
                            "── no more entries while the call waits at '{}': the caller hangs up",
                            self.node_name(self.current(), &self.state.node)
                        )?;
                        return Ok(self.ended(false));
                    };
                    idle = 0;
                    let sent = self.caller_enters(&entry, last.actions.last(), out)?;
                    (sent, None)
                }
            };
            let (reply, stepped) = self.step(
                Event::Completed {
                    action_id,
                    dtmf: dtmf.as_deref(),
                    sip_code,
                },
                out,
            )?;
            self.show(&reply, stepped, out)?;
            last = reply.callflow;
        }
        writeln!(
            out,
            "!! stopped after {MAX_IDLE_ANSWERS} answers in a row without a key: the flow keeps going on its own"
        )?;
        Ok(self.ended(true))
    }

    /// The flow the call is in now: the one it started in, or a sub-flow it runs.
    fn current(&self) -> &'a Flow {
        self.set
            .for_session(&self.state.flow, self.state.version)
            .map_or(self.flow, |f| &**f)
    }

    /// How `flow`'s node `name` is shown: bare in the flow the call started in, `FLOW:NODE`
    /// in a sub-flow.
    fn node_name(&self, flow: &Flow, name: &str) -> String {
        if flow.id == self.flow.id {
            name.to_owned()
        } else {
            format!("{}:{name}", flow.id)
        }
    }

    /// One step, with its fetch requests answered by the backend; the reply, and the flow the
    /// step started in (its trace's node ids are that flow's until it enters or leaves a
    /// sub-flow).
    fn step(&mut self, event: Event<'_>, out: &mut dyn Write) -> io::Result<(Reply, &'a Flow)> {
        let stepped = self.current();
        let mut next = advance_in(self.set, stepped, &mut self.state, event, self.now);
        loop {
            match next {
                Step::Reply(reply) => return Ok((reply, stepped)),
                Step::Fetch(pending) => {
                    // A fetch node is one of the flow the step started in: the checker keeps
                    // them out of flows that run or are run as sub-flows.
                    let request = &pending.request;
                    writeln!(
                        out,
                        "   fetch '{}': {} {}",
                        stepped.node(pending.node).name,
                        request.method.as_str(),
                        request.url
                    )?;
                    let (fetched, line) = self.backend.answer(request);
                    writeln!(out, "   answer: {line}")?;
                    next = resume_in(
                        self.set,
                        stepped,
                        &mut self.state,
                        pending,
                        fetched.outcome(),
                        self.now,
                    );
                }
            }
        }
    }

    fn ended(&self, looped: bool) -> Ended {
        Ended {
            violations: self.violations,
            looped,
        }
    }

    /// Prints the caller's entry and returns the digits the platform would report, applying
    /// the capture's rules: `#` ends input (and is not part of the digits) when the capture
    /// completes on hash, and input stops at `maxDigits`.
    fn caller_enters(
        &mut self,
        entry: &Entry,
        asked: Option<&Action>,
        out: &mut dyn Write,
    ) -> Result<Option<String>, Stop> {
        let typed = match entry {
            Entry::Keys(keys) => keys,
            _ => {
                writeln!(out, "caller stays silent")?;
                return Ok(None);
            }
        };
        let sent = platform_digits(typed, asked);
        let verb = if typed.len() == 1 {
            "presses"
        } else {
            "enters"
        };
        if sent == *typed || sent.clone() + "#" == *typed {
            writeln!(out, "caller {verb} {typed}")?;
        } else if sent.is_empty() {
            writeln!(
                out,
                "caller {verb} {typed} (no digits before #: the platform reports no input)"
            )?;
        } else {
            writeln!(
                out,
                "caller {verb} {typed} (the platform takes {sent}: input stops at # or after the most digits the prompt allows)"
            )?;
        }
        Ok(Some(sent))
    }

    /// Prints one answer of a step that started in `stepped`: nodes entered, what happened,
    /// what the caller hears, and what the call waits for; validates the callflow.
    fn show(&mut self, reply: &Reply, stepped: &'a Flow, out: &mut dyn Write) -> io::Result<()> {
        let signals = signal_flows(&reply.trace, stepped, self.set);
        for (signal, flow) in reply.trace.signals.iter().zip(signals) {
            if let Some(flow) = flow {
                writeln!(
                    out,
                    "   · {}",
                    self.describe_signal(*signal, &reply.trace.signals, flow)
                )?;
            }
        }
        if !reply.trace.visits.is_empty() {
            let names: Vec<String> = reply
                .trace
                .visited(stepped, self.set)
                .map(|(flow, id)| self.node_name(flow, &flow.node(id).name))
                .collect();
            writeln!(out, "   → {}", names.join(" → "))?;
        }
        for action in &reply.callflow.actions {
            match action {
                Action::Say(say) => {
                    let times = say
                        .repetition
                        .filter(|r| r.get() > 1)
                        .map(|r| format!(" (×{})", r.get()))
                        .unwrap_or_default();
                    writeln!(out, "   says: \"{}\"{times}", say.text)?;
                }
                Action::PlayFile(play) => {
                    let times = play
                        .repetition
                        .filter(|r| r.get() > 1)
                        .map(|r| format!(" (×{})", r.get()))
                        .unwrap_or_default();
                    writeln!(out, "   plays: {}{times}", play.file_url)?;
                }
                Action::SayAndCapture(capture) => {
                    writeln!(out, "   asks: \"{}\"", capture.prompt_message())?;
                    self.expects(capture, out)?;
                }
                Action::MakeCall(call) => {
                    let recorded = if call.call_recording == Some(true) {
                        ", recorded"
                    } else {
                        ""
                    };
                    writeln!(
                        out,
                        "   transfers the caller to {} (calling from {}{recorded})",
                        call.destination.e164(),
                        call.source.e164()
                    )?;
                }
                Action::Hangup => writeln!(out, "   hangs up")?,
            }
        }
        if self.json {
            let json = serde_json::to_string_pretty(&reply.callflow)
                .unwrap_or_else(|e| format!("(cannot show the JSON: {e})"));
            writeln!(out, "   callflow JSON:")?;
            for line in json.lines() {
                writeln!(out, "     {line}")?;
            }
        }
        let violations = validate_callflow(&reply.callflow, Mode::Webhook);
        if !violations.is_empty() {
            self.violations += violations.len();
            writeln!(
                out,
                "   !! PROTOCOL VIOLATION: the 8x8 platform would reject this callflow:"
            )?;
            for violation in &violations {
                writeln!(out, "   !!   {violation}")?;
            }
        }
        Ok(())
    }

    /// What the prompt waits for: the menu's keys, or the capture's entry.
    fn expects(&self, capture: &SayAndCapture, out: &mut dyn Write) -> io::Result<()> {
        let flow = self.current();
        let Some(node) = flow.node_id(&self.state.node).map(|id| flow.node(id)) else {
            return Ok(());
        };
        let seconds = |ms: u32| {
            let s = f64::from(ms) / 1000.0;
            format!("{s} s")
        };
        let time = match capture.digit_timeout_ms() {
            Some(digit) => format!(
                "{} to answer, {} between keys",
                seconds(capture.overall_timeout_ms()),
                seconds(digit)
            ),
            None => format!("{} to answer", seconds(capture.overall_timeout_ms())),
        };
        match &node.kind {
            NodeKind::Menu(menu) => writeln!(out, "   keys: {} ({time})", options(flow, menu)),
            NodeKind::Capture(c) => writeln!(out, "   enters: {} ({time})", entry_rule(c)),
            _ => Ok(()),
        }
    }

    /// One signal, raised in `flow`, in words.
    fn describe_signal(&self, signal: Signal, all: &[Signal], flow: &Flow) -> String {
        let node = |id| flow.node(id);
        let name = |id| self.node_name(flow, &flow.node(id).name);
        let exhausted = |id| all.contains(&Signal::Exhausted(id));
        match signal {
            Signal::Invalid(id) => match &node(id).kind {
                NodeKind::Menu(menu) => format!(
                    "not an option at '{}' (wrong key {} of {})",
                    name(id),
                    if exhausted(id) {
                        menu.max_invalid
                    } else {
                        self.state.invalid
                    },
                    menu.max_invalid
                ),
                NodeKind::Capture(c) => format!(
                    "'{}' refuses the entry (failed attempt {} of {})",
                    name(id),
                    attempts(&self.state, c, exhausted(id)),
                    c.max_attempts
                ),
                _ => format!("wrong entry at '{}'", name(id)),
            },
            Signal::NoInput(id) => match &node(id).kind {
                NodeKind::Menu(menu) => format!(
                    "no key at '{}' (silence {} of {})",
                    name(id),
                    if exhausted(id) {
                        menu.max_no_input
                    } else {
                        self.state.no_input
                    },
                    menu.max_no_input
                ),
                NodeKind::Capture(c) => format!(
                    "no entry at '{}' (failed attempt {} of {})",
                    name(id),
                    attempts(&self.state, c, exhausted(id)),
                    c.max_attempts
                ),
                _ => format!("no input at '{}'", name(id)),
            },
            Signal::Exhausted(id) => {
                let on_fail = match &node(id).kind {
                    NodeKind::Menu(menu) => menu.on_fail,
                    NodeKind::Capture(c) => c.on_fail,
                    _ => Target::Hangup,
                };
                format!(
                    "'{}' ran out of tries: on_fail goes to {}",
                    name(id),
                    target_name(flow, on_fail)
                )
            }
            Signal::Captured(id) => match &node(id).kind {
                NodeKind::Capture(c) => format!(
                    "'{}' stores vars.{} = {}",
                    name(id),
                    c.var,
                    self.state.vars.get(&c.var).map_or("", String::as_str)
                ),
                _ => format!("'{}' stores the entry", name(id)),
            },
            Signal::Transfer(id, result) => format!(
                "transfer '{}' {}",
                name(id),
                match result {
                    TransferResult::Answered => "was answered: next",
                    TransferResult::Busy => "was busy: on_busy",
                    TransferResult::NoAnswer => "was not answered: on_no_answer",
                    TransferResult::Failed => "failed: on_error",
                }
            ),
            Signal::Fetch(id, result) => {
                let target = match &node(id).kind {
                    NodeKind::Fetch(f) => match result {
                        FetchResult::Ok => "next (or a case)".to_owned(),
                        FetchResult::Status => "a status case".to_owned(),
                        FetchResult::Timeout => {
                            format!("on_timeout {}", target_name(flow, f.on_timeout))
                        }
                        _ => format!("on_error {}", target_name(flow, f.on_error)),
                    },
                    _ => String::new(),
                };
                format!("fetch '{}' ended: {} -> {target}", name(id), result.label())
            }
            Signal::Failed(id) => format!(
                "!! the flow cannot continue at '{}' (a number that is not E.164 after templating, an empty prompt, or a loop) and apologises",
                name(id)
            ),
        }
    }
}

/// The flows `flow` runs as sub-flows, and those they run, in the order first met (the set was
/// checked: every one is there).
fn subflows<'f>(flow: &Flow, set: &'f FlowSet) -> Vec<&'f Flow> {
    let mut found: Vec<&'f Flow> = Vec::new();
    let mut queue: VecDeque<&Flow> = VecDeque::from([flow]);
    while let Some(caller) = queue.pop_front() {
        for node in &caller.nodes {
            if let NodeKind::Subflow(call) = &node.kind
                && call.flow != flow.id
                && !found.iter().any(|f| f.id == call.flow)
                && let Some(called) = set.entered(&call.flow)
            {
                found.push(called);
                queue.push_back(called);
            }
        }
    }
    found
}

/// The flow each of `trace`'s signals was raised in, for a step that started in `stepped`:
/// that flow until the step entered or left a sub-flow, then the one it went to (`None` for a
/// flow `set` no longer has).
fn signal_flows<'f>(trace: &Trace, stepped: &'f Flow, set: &'f FlowSet) -> Vec<Option<&'f Flow>> {
    let mut current = Some(stepped);
    let mut changes = trace.flows.iter().peekable();
    (0..trace.signals.len())
        .map(|i| {
            while let Some(change) = changes.next_if(|c| c.signal <= i) {
                current = set.returned_to(&change.flow, change.version);
            }
            current
        })
        .collect()
}

/// The digits the platform reports for keys typed at the prompt `asked`: `#` ends input (and
/// is not part of the digits) when the capture completes on hash, and input stops at
/// `maxDigits`.
pub(super) fn platform_digits(typed: &str, asked: Option<&Action>) -> String {
    let mut sent = typed.to_owned();
    if let Some(Action::SayAndCapture(capture)) = asked {
        if capture.completes_on_hash()
            && let Some(hash) = sent.find('#')
        {
            sent.truncate(hash);
        }
        if let Some(max) = capture.max_digits() {
            let max = usize::from(max.get());
            if sent.len() > max {
                sent.truncate(max);
            }
        }
    }
    sent
}

fn attempts(state: &SessionState, capture: &Capture, exhausted: bool) -> u8 {
    if exhausted {
        capture.max_attempts
    } else {
        state.attempts
    }
}

/// `1 → reservations, 2 → connect, 9 → back`.
fn options(flow: &Flow, menu: &Menu) -> String {
    menu.options
        .iter()
        .map(|(key, target)| format!("{key} → {}", target_name(flow, *target)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `1 to 2 digits then #, into vars.guests, matching [1-9]|1[0-9]|20`.
fn entry_rule(capture: &Capture) -> String {
    let (min, max) = (capture.min_digits.get(), capture.max_digits.get());
    let mut rule = if min == max {
        count(usize::from(min), "digit")
    } else {
        format!("{min} to {max} digits")
    };
    if capture.finish_on_hash {
        rule.push_str(" then #");
    }
    rule.push_str(&format!(", into vars.{}", capture.var));
    if let Some(pattern) = &capture.pattern {
        let text = pattern.as_str();
        let inner = text
            .strip_prefix("^(?:")
            .and_then(|t| t.strip_suffix(")$"))
            .unwrap_or(text);
        rule.push_str(&format!(", matching {inner}"));
    }
    rule
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn flows_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows")
    }

    fn simulate_with(file: &Path, digits: Option<&str>, stdin: &str) -> (Outcome, String, String) {
        simulate_mocked(file, digits, stdin, Vec::new(), 0)
    }

    fn simulate_mocked(
        file: &Path,
        digits: Option<&str>,
        stdin: &str,
        mock: Vec<String>,
        mock_delay: u64,
    ) -> (Outcome, String, String) {
        let args = SimulateArgs {
            file: file.to_owned(),
            digits: digits.map(str::to_owned),
            transfer: TransferChoice::Answered,
            interactive: digits.is_none(),
            json: false,
            caller: DEFAULT_CALLER.to_owned(),
            called: None,
            session: DEFAULT_SESSION.to_owned(),
            at: None,
            mock,
            mock_status: 200,
            mock_delay,
            fetch_env: Vec::new(),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let monday_morning = parse_time("2026-11-23T10:00:00+08:00").unwrap();
        let outcome = simulate(
            &args,
            &mut stdin.as_bytes(),
            &mut out,
            &mut err,
            monday_morning,
        );
        (
            outcome,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn entries_parse() {
        assert_eq!(Entry::parse("1"), Ok(Entry::Keys("1".into())));
        assert_eq!(
            Entry::parse(" 12345678# "),
            Ok(Entry::Keys("12345678#".into()))
        );
        assert_eq!(Entry::parse("-"), Ok(Entry::Silence));
        assert_eq!(Entry::parse("!busy"), Ok(Entry::Transfer(486)));
        assert_eq!(Entry::parse("!no-answer"), Ok(Entry::Transfer(480)));
        assert_eq!(Entry::parse("!no_answer"), Ok(Entry::Transfer(480)));
        assert_eq!(Entry::parse("!603"), Ok(Entry::Transfer(603)));
        assert!(Entry::parse("!maybe").unwrap_err().contains("!busy"));
        assert!(Entry::parse("1a").unwrap_err().contains("not a key entry"));
    }

    #[test]
    fn typed_entries_come_from_stdin_and_eof_hangs_up() {
        let file = flows_dir().join("restaurant.yaml");
        let (outcome, out, err) = simulate_with(&file, None, "x\n3\n");
        assert_eq!(outcome, Outcome::Success, "{err}");
        assert!(out.contains("'x' is not a key entry"), "{out}");
        assert!(
            out.contains("caller presses 3\n   → hours → goodbye"),
            "{out}"
        );
        assert!(out.ends_with("   hangs up\n── the call ends\n"), "{out}");
        let (outcome, out, _) = simulate_with(&file, None, "");
        assert_eq!(outcome, Outcome::Success);
        assert!(
            out.ends_with("waits at 'main': the caller hangs up\n"),
            "{out}"
        );
    }

    #[test]
    fn a_transfer_result_where_keys_are_expected_is_a_usage_error() {
        let file = flows_dir().join("restaurant.yaml");
        let (outcome, _, err) = simulate_with(&file, Some("!busy"), "");
        assert_eq!(outcome, Outcome::Failed);
        assert_eq!(
            err,
            "switchboard: --digits gives a transfer result (!486) where the call waits for keys\n"
        );
    }

    #[test]
    fn hash_ends_capture_input_and_max_digits_stop_a_menu() {
        let file = flows_dir().join("bank.yaml");
        let (_, out, _) = simulate_with(&file, Some("12345678#,12"), "");
        assert!(out.contains("caller enters 12345678#\n"), "{out}");
        assert!(
            out.contains("caller enters 12 (the platform takes 1:"),
            "{out}"
        );
    }

    #[test]
    fn a_fetch_is_answered_from_a_mock_file_or_times_out_after_its_delay() {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let flow = repo.join("flows/lookup/balance.yaml");
        let mock = format!(
            "http://127.0.0.1:8091/accounts/={}",
            repo.join("loadtest/accounts-12345678.json").display()
        );
        let (outcome, out, err) =
            simulate_mocked(&flow, Some("12345678#"), "", vec![mock.clone()], 0);
        assert_eq!(outcome, Outcome::Success, "{out}{err}");
        assert!(
            out.contains("fetch 'lookup': GET http://127.0.0.1:8091/accounts/12345678"),
            "{out}"
        );
        assert!(
            out.contains("Hello Ana. Your balance is 1520.75 pounds."),
            "{out}"
        );
        let (_, out, _) = simulate_mocked(&flow, Some("12345678#"), "", vec![mock], 2000);
        assert!(out.contains("past the node's timeout_ms (1500)"), "{out}");
        assert!(
            out.contains("Sorry, we cannot look up your balance right now."),
            "{out}"
        );
    }

    #[test]
    fn a_callflow_the_platform_would_reject_is_shown_loudly_and_counted() {
        let file = flows_dir().join("restaurant.yaml");
        let (set, _) = catalog::load_set(&[file]).unwrap();
        let flow = set.latest("restaurant").unwrap();
        let mut call = Simulation {
            set: &set,
            flow,
            state: SessionState::new(flow, DEFAULT_CALLER, "+6568888888"),
            now: Utc::now(),
            json: false,
            transfer: TransferChoice::Answered,
            script: Script::Listed(VecDeque::new()),
            violations: 0,
            backend: Backend {
                mocks: Vec::new(),
                status: 200,
                delay_ms: 0,
                env: BTreeMap::new(),
                live: None,
            },
        };
        // Nothing may follow a hangup (-1012): not a callflow `step` makes, but the check
        // must catch it if one ever does.
        let callflow = serde_json::from_str(
            r#"{"callflow":[{"action":"hangup"},{"action":"say","params":{"text":"Bye.","voiceProfile":"en-US-BenjaminRUS"}}]}"#,
        )
        .unwrap();
        let reply = Reply {
            callflow,
            disposition: switchboard_flow::Disposition::Advanced,
            trace: Default::default(),
        };
        let mut out = Vec::new();
        call.show(&reply, flow, &mut out).unwrap();
        assert_eq!(call.violations, 1);
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.ends_with(
                "   !! PROTOCOL VIOLATION: the 8x8 platform would reject this callflow:\n   !!   -1012 $.callflow[1]: nothing may follow the hangup at $.callflow[0]\n"
            ),
            "{out}"
        );
    }
}
