//! `switchboard flow test PATH...`: unit tests for flows.
//!
//! A test file (`restaurant.test.yaml`, next to `restaurant.yaml`) lists cases; each plays a
//! call through the real state machine ([`switchboard_flow::step`]) with a caller's script
//! (keys, silence, transfer results) at a given time of day, then checks what the caller
//! heard, the nodes reached, the variables, the transfer target and who hung up. The format
//! is in `docs/flows.md` ("Seeing and testing flows"); [`Spec`] is its parsed form, with every
//! problem of a test file reported as `file:line:col: message`.
//!
//! The runner prints one line per case, a `-expected`/`+actual` diff under a failing one, a
//! coverage line per flow (nodes and menu keys no case exercised) and `N passed, M failed`;
//! `--junit FILE` also writes a JUnit XML report. Exit 0 when every case passes, 1 when one
//! fails (or a test file or its flow is wrong), 2 when a path cannot be read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use clap::Args;
use switchboard_flow::fetch::{FetchFailure, FetchOutcome};
use switchboard_flow::yaml::{self, Node, Pos, Value};
use switchboard_flow::{
    Awaiting, Event, Flow, FlowSet, NodeKind, Reply, SessionState, Step, advance_in, resume_in,
};
use switchboard_protocol::Action;
use switchboard_runtime::catalog;

use super::simulate::{
    DEFAULT_CALLED, DEFAULT_CALLER, Entry, MAX_IDLE_ANSWERS, parse_number, platform_digits,
};
use super::{is_read_error, read_reason};
use crate::cli::Outcome;

/// When a case happens if it gives no `at`: Monday 5 January 2026, 10:00 in the flow's time
/// zone (inside common business hours).
const DEFAULT_LOCAL_TIME: &str = "2026-01-05T10:00:00";

/// Arguments of `switchboard flow test`.
#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// Test files (*.test.yaml) or directories holding them.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
    /// Also write the results as JUnit XML to this file, for CI systems.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Comma-separated environment variables fetch nodes may read as {{env.NAME}}, as the
    /// server's fetch_env setting allows. The cases run with no backend: a fetch node answers
    /// what the case's `fetch:` says, and finds the backend down if it says nothing.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    fetch_env: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// The test file

/// A parsed test file.
#[derive(Debug)]
struct Spec {
    /// The test file, as given.
    file: String,
    /// The flow file it tests.
    flow: PathBuf,
    /// Its cases.
    cases: Vec<Case>,
}

/// One case: a call and what must happen on it.
#[derive(Debug)]
struct Case {
    name: String,
    pos: Pos,
    caller: String,
    called: Option<String>,
    /// The session id, which picks `split` branches; default: the case's name.
    session: String,
    /// RFC 3339, or a local time in the flow's time zone; parsed once the flow is known.
    at: Option<(String, Pos)>,
    script: Vec<Entry>,
    /// Canned answers to the flow's fetch nodes, by node name; an unmocked fetch finds the
    /// backend down.
    mocks: BTreeMap<String, (Mock, Pos)>,
    expect: Expect,
}

/// What a case checks; `None` fields are not checked.
#[derive(Debug, Default)]
struct Expect {
    /// Texts heard in this order, each a part of a successive prompt.
    heard: Option<Vec<String>>,
    /// Texts heard somewhere in the call, in any order.
    mentions: Option<Vec<String>>,
    /// Nodes the call passes through (in any order).
    reaches: Option<Vec<String>>,
    /// Nodes the call must not pass through.
    avoids: Option<Vec<String>>,
    /// The node the call is at when it ends.
    ends_at: Option<String>,
    /// Variables and their values at the end.
    vars: Option<BTreeMap<String, String>>,
    /// The number of the last transfer (`none`: no transfer).
    transfer: Option<String>,
    /// Whether the flow hung up (`true`) or the caller did, the script running out (`false`).
    hangup: Option<bool>,
    /// The fetch nodes whose requests were made, in order (`[]`: no look-up).
    fetched: Option<Vec<String>>,
}

/// A problem in a test file, at a position.
#[derive(Debug)]
struct SpecError {
    pos: Pos,
    message: String,
}

fn spec_error(pos: Pos, message: impl Into<String>) -> SpecError {
    SpecError {
        pos,
        message: message.into(),
    }
}

/// The keys of a mapping, refusing any not in `known` (naming them and the known ones).
fn fields<'a>(
    node: &'a Node,
    what: &str,
    known: &[&str],
) -> Result<BTreeMap<String, &'a Node>, SpecError> {
    let Value::Map(entries) = &node.value else {
        return Err(spec_error(
            node.pos,
            format!("{what} must be a mapping, not {}", node.kind()),
        ));
    };
    let mut out = BTreeMap::new();
    for (key, value) in entries {
        let name = key.scalar_text().unwrap_or_default();
        if !known.contains(&name.as_str()) {
            return Err(spec_error(
                key.pos,
                format!(
                    "{what}: unknown key '{name}'; the keys are {}",
                    known.join(", ")
                ),
            ));
        }
        out.insert(name, value);
    }
    Ok(out)
}

fn text(node: &Node, what: &str) -> Result<String, SpecError> {
    match &node.value {
        Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            Ok(node.scalar_text().unwrap_or_default())
        }
        _ => Err(spec_error(
            node.pos,
            format!("{what} must be a text, not {}", node.kind()),
        )),
    }
}

fn texts(node: &Node, what: &str) -> Result<Vec<String>, SpecError> {
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| text(item, &format!("{what}[{i}]")))
            .collect(),
        _ => Ok(vec![text(node, what)?]),
    }
}

impl Spec {
    /// Parses a test file's source; `path` locates the flow it names.
    fn parse(path: &Path, source: &str) -> Result<Self, SpecError> {
        let root = yaml::parse(source).map_err(|e| spec_error(e.pos, e.message))?;
        let top = fields(&root, "the test file", &["flow", "cases"])?;
        let flow = match top.get("flow") {
            Some(node) => path
                .parent()
                .unwrap_or(Path::new(""))
                .join(text(node, "flow")?),
            None => default_flow(path).ok_or_else(|| {
                spec_error(
                    root.pos,
                    "no flow: name it with `flow: FILE`, or name the test file after the flow (restaurant.test.yaml tests restaurant.yaml)",
                )
            })?,
        };
        let cases_node = top
            .get("cases")
            .ok_or_else(|| spec_error(root.pos, "the test file has no `cases` list"))?;
        let Value::Seq(items) = &cases_node.value else {
            return Err(spec_error(
                cases_node.pos,
                format!("cases must be a list, not {}", cases_node.kind()),
            ));
        };
        let cases = items
            .iter()
            .enumerate()
            .map(|(i, item)| Case::parse(i, item))
            .collect::<Result<Vec<_>, _>>()?;
        if cases.is_empty() {
            return Err(spec_error(cases_node.pos, "cases is empty: add a case"));
        }
        let mut names = BTreeSet::new();
        for case in &cases {
            if !names.insert(case.name.as_str()) {
                return Err(spec_error(
                    case.pos,
                    format!(
                        "two cases are named '{}'; give each its own name",
                        case.name
                    ),
                ));
            }
        }
        Ok(Self {
            file: path.display().to_string(),
            flow,
            cases,
        })
    }
}

/// `x.test.yaml` tests `x.yaml` (or `x.yml`, `x.json`) in the same directory.
fn default_flow(path: &Path) -> Option<PathBuf> {
    let stem = path.file_stem()?.to_str()?.strip_suffix(".test")?;
    let dir = path.parent().unwrap_or(Path::new(""));
    ["yaml", "yml", "json"]
        .iter()
        .map(|ext| dir.join(format!("{stem}.{ext}")))
        .find(|candidate| candidate.is_file())
        .or_else(|| Some(dir.join(format!("{stem}.yaml"))))
}

impl Case {
    fn parse(index: usize, node: &Node) -> Result<Self, SpecError> {
        let what = format!("cases[{index}]");
        let map = fields(
            node,
            &what,
            &[
                "name", "caller", "called", "session", "at", "script", "fetch", "expect",
            ],
        )?;
        let name = match map.get("name") {
            Some(n) => text(n, &format!("{what}.name"))?,
            None => return Err(spec_error(node.pos, format!("{what} has no name"))),
        };
        let what = format!("case '{name}'");
        let number = |key: &str| -> Result<Option<String>, SpecError> {
            map.get(key)
                .map(|n| {
                    let value = text(n, &format!("{what}: {key}"))?;
                    parse_number(&value)
                        .map_err(|e| spec_error(n.pos, format!("{what}: {key}: {e}")))
                })
                .transpose()
        };
        let caller = number("caller")?.unwrap_or_else(|| DEFAULT_CALLER.to_owned());
        let called = number("called")?;
        let session = match map.get("session") {
            Some(n) => text(n, &format!("{what}: session"))?,
            None => name.clone(),
        };
        let at = map
            .get("at")
            .map(|n| text(n, &format!("{what}: at")).map(|t| (t, n.pos)))
            .transpose()?;
        let script = match map.get("script") {
            None => Vec::new(),
            Some(n) => {
                let entries = match &n.value {
                    Value::Seq(items) => items.iter().collect::<Vec<_>>(),
                    _ => vec![*n],
                };
                entries
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let token = text(e, &format!("{what}: script[{i}]"))?;
                        Entry::parse(&token)
                            .map_err(|m| spec_error(e.pos, format!("{what}: script[{i}]: {m}")))
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let mocks = match map.get("fetch") {
            None => BTreeMap::new(),
            Some(n) => Mock::parse_all(n, &what)?,
        };
        let expect = match map.get("expect") {
            Some(n) => Expect::parse(n, &what)?,
            None => {
                return Err(spec_error(
                    node.pos,
                    format!("{what} has no `expect`: a case must check something"),
                ));
            }
        };
        Ok(Self {
            name,
            pos: node.pos,
            caller,
            called,
            session,
            at,
            script,
            mocks,
            expect,
        })
    }
}

/// How a case's fetch node is answered (`fetch: { NODE: ANSWER }`): `{ status, body }`, where
/// a string body is sent as it is written (so a case can send malformed JSON) and any other
/// body as JSON; or `timeout` (no answer within the node's `timeout_ms`); or `down` (the
/// backend cannot be reached).
#[derive(Debug, Clone, PartialEq)]
enum Mock {
    Answer { status: u16, body: Vec<u8> },
    Timeout,
    Down,
}

impl Mock {
    fn parse_all(node: &Node, case: &str) -> Result<BTreeMap<String, (Self, Pos)>, SpecError> {
        let what = format!("{case}: fetch");
        let Value::Map(entries) = &node.value else {
            return Err(spec_error(
                node.pos,
                format!(
                    "{what} must map fetch nodes to answers, e.g. `fetch: {{ lookup: {{ status: 200, body: {{ balance: 12 }} }} }}`, not {}",
                    node.kind()
                ),
            ));
        };
        let mut mocks = BTreeMap::new();
        for (key, value) in entries {
            let name = key.scalar_text().unwrap_or_default();
            let mock = Self::parse(value, &format!("{what}.{name}"))?;
            mocks.insert(name, (mock, key.pos));
        }
        Ok(mocks)
    }

    fn parse(node: &Node, what: &str) -> Result<Self, SpecError> {
        match &node.value {
            Value::Str(s) if s == "timeout" => return Ok(Self::Timeout),
            Value::Str(s) if s == "down" => return Ok(Self::Down),
            Value::Map(_) => {}
            _ => {
                return Err(spec_error(
                    node.pos,
                    format!(
                        "{what} must be `{{ status: 200, body: ... }}`, `timeout` or `down`, not {}",
                        node.kind()
                    ),
                ));
            }
        }
        let map = fields(node, what, &["status", "body"])?;
        let status = match map.get("status") {
            None => 200,
            Some(n) => match n.value {
                Value::Int(code) if (100..=599).contains(&code) => code as u16,
                _ => {
                    return Err(spec_error(
                        n.pos,
                        format!("{what}.status must be an HTTP status, 100 to 599"),
                    ));
                }
            },
        };
        let body = match map.get("body") {
            None => Vec::new(),
            Some(n) => match &n.value {
                Value::Str(raw) => raw.clone().into_bytes(),
                _ => json(n).to_string().into_bytes(),
            },
        };
        Ok(Self::Answer { status, body })
    }

    /// What the engine is told the backend did.
    fn outcome(&self) -> FetchOutcome<'_> {
        match self {
            Self::Answer { status, body } => FetchOutcome::Response {
                status: *status,
                body,
            },
            Self::Timeout => FetchOutcome::TimedOut,
            Self::Down => FetchOutcome::Failed(FetchFailure::Unreachable),
        }
    }
}

/// A YAML value as JSON (a mock's body).
fn json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.clone()),
        Value::Seq(items) => J::Array(items.iter().map(json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.scalar_text().unwrap_or_default(), json(v)))
                .collect(),
        ),
    }
}

impl Expect {
    fn parse(node: &Node, case: &str) -> Result<Self, SpecError> {
        let what = format!("{case}: expect");
        let map = fields(
            node,
            &what,
            &[
                "heard", "mentions", "reaches", "avoids", "ends_at", "vars", "transfer", "hangup",
                "fetched",
            ],
        )?;
        let list = |key: &str| {
            map.get(key)
                .map(|n| texts(n, &format!("{what}.{key}")))
                .transpose()
        };
        let one = |key: &str| {
            map.get(key)
                .map(|n| text(n, &format!("{what}.{key}")))
                .transpose()
        };
        let vars = match map.get("vars") {
            None => None,
            Some(n) => {
                let Value::Map(entries) = &n.value else {
                    return Err(spec_error(
                        n.pos,
                        format!("{what}.vars must be a mapping of names to values"),
                    ));
                };
                let mut vars = BTreeMap::new();
                for (key, value) in entries {
                    let name = key.scalar_text().unwrap_or_default();
                    vars.insert(name.clone(), text(value, &format!("{what}.vars.{name}"))?);
                }
                Some(vars)
            }
        };
        let hangup = match map.get("hangup") {
            None => None,
            Some(n) => match n.value {
                Value::Bool(b) => Some(b),
                _ => {
                    return Err(spec_error(
                        n.pos,
                        format!(
                            "{what}.hangup must be true (the flow hangs up) or false (the caller does), not {}",
                            n.kind()
                        ),
                    ));
                }
            },
        };
        Ok(Self {
            heard: list("heard")?,
            mentions: list("mentions")?,
            reaches: list("reaches")?,
            avoids: list("avoids")?,
            ends_at: one("ends_at")?,
            vars,
            transfer: one("transfer")?,
            hangup,
            fetched: list("fetched")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Playing a case

/// What happened on a played call.
#[derive(Debug, Default)]
struct Played {
    /// Every text the caller heard (say, prompt), and `play URL` for audio.
    heard: Vec<String>,
    /// Nodes entered, in order.
    visits: Vec<String>,
    /// Numbers transferred to, in order.
    transfers: Vec<String>,
    /// The variables at the end.
    vars: BTreeMap<String, String>,
    /// Whether the flow hung up (rather than the script running out).
    hung_up: bool,
    /// The menu keys pressed that were options: (menu, key).
    keys: BTreeSet<(String, String)>,
    /// A problem that stopped the call: the script does not fit it, or it loops.
    problem: Option<String>,
    /// The fetch nodes whose requests were made, in order.
    fetches: Vec<String>,
}

/// The time a case happens at: `at` as RFC 3339, or as a local time in the flow's zone.
fn case_time(flow: &Flow, at: Option<&str>) -> Result<DateTime<Utc>, String> {
    let text = at.unwrap_or(DEFAULT_LOCAL_TIME);
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .map_err(|_| {
            format!(
                "'{text}' is not a time; give 2026-11-23T10:00:00+08:00, or 2026-11-23T10:00 for a local time in the flow's time zone ({})",
                flow.timezone
            )
        })?;
    flow.timezone
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            format!(
                "'{text}' does not exist in {} (a clock change)",
                flow.timezone
            )
        })
}

/// Plays `case` through `flow` (and the sub-flows of `set` it calls) at `now`.
fn play(set: &FlowSet, flow: &Flow, case: &Case, now: DateTime<Utc>) -> Played {
    let called = case
        .called
        .clone()
        .or_else(|| flow.numbers.first().cloned())
        .unwrap_or_else(|| DEFAULT_CALLED.to_owned());
    let mut state = SessionState::new(flow, &case.caller, &called);
    state.session.clone_from(&case.session);
    let mut played = Played::default();
    let mut script = case.script.iter().enumerate().peekable();
    let mut stepped = flow;
    let mut reply = step_mocked(
        set,
        stepped,
        &mut state,
        Event::Start,
        now,
        case,
        &mut played,
    );
    let mut stopped = false;
    for _ in 0..MAX_IDLE_ANSWERS * (case.script.len() + 1) {
        played.record(set, flow, stepped, &reply);
        let asked = reply.callflow.actions.last().cloned();
        let action_id = reply.callflow.client_action_id.clone();
        let (dtmf, sip_code) = match state.awaiting {
            Awaiting::Nothing => {
                played.hung_up = true;
                stopped = true;
                break;
            }
            Awaiting::Continue => (None, None),
            Awaiting::Transfer => match script.peek() {
                Some((_, Entry::Transfer(code))) => {
                    let code = *code;
                    script.next();
                    (None, Some(code))
                }
                _ => (None, Some(200)),
            },
            Awaiting::Input => match script.next() {
                None => {
                    stopped = true;
                    break;
                }
                Some((i, Entry::Transfer(code))) => {
                    played.problem = Some(format!(
                        "script[{i}] (!{code}) is a transfer result, but the call waits for keys at '{}'",
                        state.node
                    ));
                    stopped = true;
                    break;
                }
                Some((_, Entry::Silence)) => (None, None),
                Some((_, Entry::Keys(keys))) => {
                    let sent = platform_digits(keys, asked.as_ref());
                    if state.flow == flow.id {
                        played.note_key(flow, &state.node, &sent);
                    }
                    ((!sent.is_empty()).then_some(sent), None)
                }
            },
        };
        stepped = set
            .for_session(&state.flow, state.version)
            .map_or(flow, |f| &**f);
        reply = step_mocked(
            set,
            stepped,
            &mut state,
            Event::Completed {
                action_id: action_id.as_ref().map(|id| id.as_str()),
                dtmf: dtmf.as_deref(),
                sip_code,
            },
            now,
            case,
            &mut played,
        );
    }
    if played.problem.is_none() {
        let left: Vec<String> = script.map(|(_, e)| entry_text(e)).collect();
        if !left.is_empty() && played.hung_up {
            played.problem = Some(format!(
                "the call ended with script entries left: {}",
                left.join(", ")
            ));
        } else if !stopped {
            played.problem = Some(format!(
                "the flow answered {MAX_IDLE_ANSWERS} times in a row without a key from the caller; look for a loop"
            ));
        }
    }
    played.vars = state.vars.clone();
    played
}

/// One step, its fetch requests answered by the case's mocks (an unmocked fetch finds the
/// backend down, and takes the node's `on_error`).
fn step_mocked(
    set: &FlowSet,
    flow: &Flow,
    state: &mut SessionState,
    event: Event<'_>,
    now: DateTime<Utc>,
    case: &Case,
    played: &mut Played,
) -> Reply {
    let mut next = advance_in(set, flow, state, event, now);
    loop {
        match next {
            Step::Reply(reply) => return reply,
            Step::Fetch(pending) => {
                let name = &flow.node(pending.node).name;
                played.fetches.push(name.clone());
                let down = Mock::Down;
                let mock = case.mocks.get(name).map_or(&down, |(m, _)| m);
                next = resume_in(set, flow, state, pending, mock.outcome(), now);
            }
        }
    }
}

/// Every mock of `case` names a fetch node of `flow`; the problems otherwise, as diff lines.
fn check_mocks(file: &str, flow: &Flow, case: &Case) -> Vec<String> {
    let fetch_nodes: Vec<&str> = flow
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Fetch(_)))
        .map(|n| n.name.as_str())
        .collect();
    case.mocks
        .iter()
        .filter(|(name, _)| !fetch_nodes.contains(&name.as_str()))
        .map(|(name, (_, pos))| {
            let known = if fetch_nodes.is_empty() {
                format!("flow '{}' has no fetch node", flow.id)
            } else {
                format!(
                    "the fetch nodes of '{}' are {}",
                    flow.id,
                    fetch_nodes.join(", ")
                )
            };
            format!(
                "!{file}:{pos}: case '{}': fetch: '{name}' is not a fetch node; {known}",
                case.name
            )
        })
        .collect()
}

fn entry_text(entry: &Entry) -> String {
    match entry {
        Entry::Keys(keys) => keys.clone(),
        Entry::Silence => "-".to_owned(),
        Entry::Transfer(code) => format!("!{code}"),
    }
}

impl Played {
    /// Notes what one answer did (`stepped` is the flow it started on; nodes of flows other
    /// than the tested `flow` are named `flow:node`).
    fn record(
        &mut self,
        set: &FlowSet,
        flow: &Flow,
        stepped: &Flow,
        reply: &switchboard_flow::Reply,
    ) {
        self.visits
            .extend(reply.trace.visited(stepped, set).map(|(f, id)| {
                let name = &f.node(id).name;
                if f.id == flow.id {
                    name.clone()
                } else {
                    format!("{}:{name}", f.id)
                }
            }));
        for action in &reply.callflow.actions {
            match action {
                Action::Say(say) => self.heard.push(say.text.to_string()),
                Action::SayAndCapture(capture) => {
                    self.heard.push(capture.prompt_message().to_string());
                }
                Action::PlayFile(file) => self.heard.push(format!("play {}", file.file_url)),
                Action::MakeCall(call) => self.transfers.push(call.destination.e164()),
                Action::Hangup => {}
            }
        }
    }

    /// Notes a key pressed at `node` if it is one of the menu's options.
    fn note_key(&mut self, flow: &Flow, node: &str, digits: &str) {
        if let Some(NodeKind::Menu(menu)) = flow.node_id(node).map(|id| &flow.node(id).kind)
            && menu.option(digits).is_some()
        {
            self.keys.insert((node.to_owned(), digits.to_owned()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checking a case

/// The differences between what a case expects and what was played: `-expected` and
/// `+actual` lines, empty when the case passes.
fn diff(expect: &Expect, played: &Played) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(problem) = &played.problem {
        lines.push(format!("!{problem}"));
    }
    if let Some(heard) = &expect.heard
        && !in_order(heard, &played.heard)
    {
        lines.push("-heard (in order):".to_owned());
        lines.extend(heard.iter().map(|t| format!("-  {t:?}")));
        lines.push("+heard:".to_owned());
        lines.extend(played.heard.iter().map(|t| format!("+  {t:?}")));
    }
    if let Some(mentions) = &expect.mentions {
        for wanted in mentions {
            if !played.heard.iter().any(|t| t.contains(wanted.as_str())) {
                lines.push(format!("-mentions: {wanted:?}"));
                lines.push(format!("+heard: {}", quoted(&played.heard)));
            }
        }
    }
    if let Some(reaches) = &expect.reaches {
        for node in reaches {
            if !played.visits.contains(node) {
                lines.push(format!("-reaches: {node}"));
                lines.push(format!("+path: {}", path(&played.visits)));
            }
        }
    }
    if let Some(avoids) = &expect.avoids {
        for node in avoids {
            if played.visits.contains(node) {
                lines.push(format!("-avoids: {node}"));
                lines.push(format!("+path: {}", path(&played.visits)));
            }
        }
    }
    if let Some(fetched) = &expect.fetched
        && *fetched != played.fetches
    {
        lines.push(format!("-fetched: [{}]", fetched.join(", ")));
        lines.push(format!("+fetched: [{}]", played.fetches.join(", ")));
    }
    if let Some(ends_at) = &expect.ends_at {
        let last = played.visits.last().map_or("(nowhere)", String::as_str);
        if last != ends_at {
            lines.push(format!("-ends_at: {ends_at}"));
            lines.push(format!("+ends_at: {last}"));
        }
    }
    if let Some(vars) = &expect.vars {
        for (name, value) in vars {
            let actual = played.vars.get(name);
            if actual != Some(value) {
                lines.push(format!("-vars.{name}: {value:?}"));
                lines.push(match actual {
                    Some(actual) => format!("+vars.{name}: {actual:?}"),
                    None => format!("+vars.{name}: (not set)"),
                });
            }
        }
    }
    if let Some(transfer) = &expect.transfer {
        let actual = played.transfers.last().map_or("none", String::as_str);
        let wanted = if transfer == "none" {
            "none".to_owned()
        } else {
            parse_number(transfer).unwrap_or_else(|_| transfer.clone())
        };
        if actual != wanted {
            lines.push(format!("-transfer: {wanted}"));
            lines.push(format!("+transfer: {actual}"));
        }
    }
    if let Some(hangup) = expect.hangup
        && hangup != played.hung_up
    {
        let says = |flow: bool| {
            if flow {
                "true (the flow hangs up)"
            } else {
                "false (the caller hangs up)"
            }
        };
        lines.push(format!("-hangup: {}", says(hangup)));
        lines.push(format!("+hangup: {}", says(played.hung_up)));
    }
    lines
}

/// Whether each of `wanted` is part of a text of `heard`, in order.
fn in_order(wanted: &[String], heard: &[String]) -> bool {
    let mut texts = heard.iter();
    wanted.iter().all(|w| texts.any(|t| t.contains(w.as_str())))
}

fn quoted(texts: &[String]) -> String {
    texts
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn path(visits: &[String]) -> String {
    if visits.is_empty() {
        "(no node)".to_owned()
    } else {
        visits.join(" → ")
    }
}

// ---------------------------------------------------------------------------------------------
// The runner

/// A case's result.
#[derive(Debug)]
struct CaseResult {
    name: String,
    /// Empty when it passed.
    diff: Vec<String>,
}

/// A test file's results.
#[derive(Debug)]
struct FileResult {
    file: String,
    /// The flow's id, if it loaded.
    flow: Option<String>,
    cases: Vec<CaseResult>,
    /// A problem with the test file or its flow, which fails the file as a whole.
    error: Option<String>,
    /// `coverage restaurant: ...`.
    coverage: Option<String>,
}

/// Runs every test file under `args.paths`; reports on `out`, unreadable paths on `err`.
pub(crate) fn test(args: &TestArgs, out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    let mut files = Vec::new();
    for path in &args.paths {
        match test_files(path) {
            Ok(found) => files.extend(found),
            Err(reason) => {
                let _ = writeln!(err, "switchboard: {reason}");
                return Outcome::Failed;
            }
        }
    }
    let options = switchboard_flow::Options {
        fetch_env: args.fetch_env.clone(),
    };
    let results: Vec<FileResult> = files.iter().map(|f| run_file(f, &options)).collect();
    let report = report(&results);
    if let Err(reason) = out.write_all(report.as_bytes()).and_then(|()| out.flush()) {
        let _ = writeln!(err, "switchboard: cannot write the result: {reason}");
        return Outcome::Failed;
    }
    if let Some(junit_file) = &args.junit
        && let Err(reason) = std::fs::write(junit_file, junit(&results))
    {
        let _ = writeln!(
            err,
            "switchboard: cannot write the JUnit report '{}': {reason}",
            junit_file.display()
        );
        return Outcome::Failed;
    }
    let failed = results
        .iter()
        .any(|r| r.error.is_some() || r.cases.iter().any(|c| !c.diff.is_empty()));
    if failed {
        Outcome::Rejected
    } else {
        Outcome::Success
    }
}

/// The test files of a path: the file itself, or the `*.test.*` files of a directory.
fn test_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    if meta.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let entries =
        std::fs::read_dir(path).map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let file = entry
            .map_err(|e| format!("cannot read '{}': {e}", path.display()))?
            .path();
        if catalog::is_test_file(&file) && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "'{}' holds no flow test files (*.test.yaml): write one next to the flow",
            path.display()
        ));
    }
    Ok(files)
}

/// Runs one test file.
fn run_file(path: &Path, options: &switchboard_flow::Options) -> FileResult {
    let mut result = FileResult {
        file: path.display().to_string(),
        flow: None,
        cases: Vec::new(),
        error: None,
        coverage: None,
    };
    let spec = match std::fs::read_to_string(path) {
        Ok(source) => Spec::parse(path, &source),
        Err(e) => {
            result.error = Some(format!("{}: cannot read: {e}", result.file));
            return result;
        }
    };
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => {
            result.error = Some(format!("{}:{}: {}", result.file, e.pos, e.message));
            return result;
        }
    };
    let (set, flow) = match load_flow(&spec, options) {
        Ok(loaded) => loaded,
        Err(reason) => {
            result.error = Some(reason);
            return result;
        }
    };
    let mut covered = Played::default();
    for case in &spec.cases {
        let at = case.at.as_ref().map(|(t, _)| t.as_str());
        let mocks = check_mocks(&spec.file, &flow, case);
        let diff = match case_time(&flow, at) {
            _ if !mocks.is_empty() => mocks,
            Ok(now) => {
                let played = play(&set, &flow, case, now);
                covered.visits.extend(played.visits.iter().cloned());
                covered.keys.extend(played.keys.iter().cloned());
                diff(&case.expect, &played)
            }
            Err(reason) => {
                let pos = case.at.as_ref().map_or(case.pos, |(_, p)| *p);
                vec![format!(
                    "!{}:{pos}: case '{}': at: {reason}",
                    spec.file, case.name
                )]
            }
        };
        result.cases.push(CaseResult {
            name: case.name.clone(),
            diff,
        });
    }
    result.coverage = Some(coverage(&flow, &covered));
    result.flow = Some(flow.id.clone());
    result
}

/// The flow a spec tests, compiled as the server would, in a set with the flows it may call:
/// the flows of its directory when it has `subflow` nodes (checked together, as the server
/// checks them), else only itself.
fn load_flow(
    spec: &Spec,
    options: &switchboard_flow::Options,
) -> Result<(FlowSet, Arc<Flow>), String> {
    let flow = load_file(spec, options)?;
    let id = flow.id.clone();
    let set = if flow.calls_subflows {
        let dir = spec
            .flow
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        catalog::load_set_with(&[dir.to_owned()], options).map(|(set, _)| set)
    } else {
        FlowSet::new(vec![flow])
    };
    let set = set.map_err(|diagnostics| {
        let mut text = format!(
            "{}: the flow and the flows it calls do not load together:",
            spec.file
        );
        for d in &diagnostics {
            let _ = write!(text, "\n  {d}");
        }
        text
    })?;
    let flow = set.latest(&id).map(Arc::clone).ok_or_else(|| {
        format!(
            "{}: flow '{id}' is not among the flows of its directory",
            spec.file
        )
    })?;
    Ok((set, flow))
}

/// The flow file a spec names, compiled.
fn load_file(spec: &Spec, options: &switchboard_flow::Options) -> Result<Flow, String> {
    match catalog::load_with(std::slice::from_ref(&spec.flow), options) {
        Ok(mut loaded) if loaded.flows.len() == 1 => Ok(loaded.flows.remove(0)),
        Ok(loaded) => Err(format!(
            "{}: '{}' holds {} flows; name one flow file with `flow:`",
            spec.file,
            spec.flow.display(),
            loaded.flows.len()
        )),
        Err(diagnostics) => Err(match diagnostics.iter().find(|d| is_read_error(d)) {
            Some(read) => format!(
                "{}: cannot read the flow '{}': {}",
                spec.file,
                read.file,
                read_reason(read)
            ),
            None => {
                let mut text = format!("{}: the flow does not load:", spec.file);
                for d in &diagnostics {
                    let _ = write!(text, "\n  {d}");
                }
                text
            }
        }),
    }
}

/// `coverage restaurant: 10/11 nodes, 12/14 menu keys; never reached: promo; never pressed:
/// main 4, manage 9`.
fn coverage(flow: &Flow, covered: &Played) -> String {
    let reached: BTreeSet<&str> = covered.visits.iter().map(String::as_str).collect();
    let missed_nodes: Vec<&str> = flow
        .nodes
        .iter()
        .map(|n| n.name.as_str())
        .filter(|n| !reached.contains(n))
        .collect();
    let mut keys = 0;
    let mut missed_keys = Vec::new();
    for node in &flow.nodes {
        if let NodeKind::Menu(menu) = &node.kind {
            for (key, _) in &menu.options {
                keys += 1;
                if !covered.keys.contains(&(node.name.clone(), key.clone())) {
                    missed_keys.push(format!("{} {key}", node.name));
                }
            }
        }
    }
    let mut line = format!(
        "coverage {}: {}/{} nodes, {}/{keys} menu keys",
        flow.id,
        flow.nodes.len() - missed_nodes.len(),
        flow.nodes.len(),
        keys - missed_keys.len()
    );
    if !missed_nodes.is_empty() {
        let _ = write!(line, "; never reached: {}", missed_nodes.join(", "));
    }
    if !missed_keys.is_empty() {
        let _ = write!(line, "; never pressed: {}", missed_keys.join(", "));
    }
    line
}

/// The runner's text output.
fn report(results: &[FileResult]) -> String {
    let mut out = String::new();
    let (mut passed, mut failed) = (0, 0);
    for file in results {
        let _ = writeln!(out, "{}", file.file);
        if let Some(error) = &file.error {
            failed += 1;
            let _ = writeln!(out, "  ERROR {error}");
            continue;
        }
        for case in &file.cases {
            if case.diff.is_empty() {
                passed += 1;
                let _ = writeln!(out, "  ok   {}", case.name);
            } else {
                failed += 1;
                let _ = writeln!(out, "  FAIL {}", case.name);
                for line in &case.diff {
                    let _ = writeln!(out, "       {line}");
                }
            }
        }
        if let Some(coverage) = &file.coverage {
            let _ = writeln!(out, "  {coverage}");
        }
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    out
}

/// The results as JUnit XML: a test suite per file, a test case per case.
fn junit(results: &[FileResult]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for file in results {
        let failures = file.cases.iter().filter(|c| !c.diff.is_empty()).count();
        let errors = usize::from(file.error.is_some());
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
            xml(&file.file),
            file.cases.len().max(errors)
        );
        let class = xml(file.flow.as_deref().unwrap_or("flow"));
        if let Some(error) = &file.error {
            let _ = writeln!(
                out,
                "    <testcase classname=\"{class}\" name=\"load\"><error message=\"the test file or its flow is wrong\">{}</error></testcase>",
                xml(error)
            );
        }
        for case in &file.cases {
            if case.diff.is_empty() {
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"{class}\" name=\"{}\"/>",
                    xml(&case.name)
                );
            } else {
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"{class}\" name=\"{}\"><failure message=\"{}\">{}</failure></testcase>",
                    xml(&case.name),
                    xml(&case.diff[0]),
                    xml(&case.diff.join("\n"))
                );
            }
        }
        if let Some(coverage) = &file.coverage {
            let _ = writeln!(out, "    <system-out>{}</system-out>", xml(coverage));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
