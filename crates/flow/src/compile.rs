//! From flow source (YAML or JSON) to a checked, executable [`Flow`].
//!
//! The compiler reports every problem at once, each as `file:line:col: node 'x': message`, so an
//! author fixes a file in one pass. Errors stop the flow from loading; warnings (a node no caller
//! can reach) do not.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono_tz::Tz;
use regex::Regex;
use switchboard_protocol::{DigitCount, FileUrl, Msisdn, Repetition, Speed, Text, VoiceProfile};

use crate::model::{
    Branch, Capture, Condition, Flow, FlowVersion, Language, Menu, Node, NodeId, NodeKind,
    PlayNode, Prompt, SayNode, SetNode, Speech, Target, Transfer, VarTest,
};
use crate::template::{Template, is_var_name};
use crate::yaml::{self, Pos, Value};

mod fetch;
mod language;
mod split;
mod subflow;

/// The voice used when a flow sets none.
pub const DEFAULT_VOICE: &str = "en-US-BenjaminRUS";
/// Longest flow id (keeps `clientActionId` under 128 characters).
pub const MAX_FLOW_ID: usize = 40;
/// Longest node name (keeps `clientActionId` under 128 characters).
pub const MAX_NODE_NAME: usize = 48;
/// Most nodes in one flow.
pub const MAX_NODES: usize = 4096;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The flow does not load.
    Error,
    /// The flow loads, but something is probably wrong.
    Warning,
}

/// One problem in a flow file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The file.
    pub file: String,
    /// Where in it.
    pub pos: Pos,
    /// Error or warning.
    pub severity: Severity,
    /// The node concerned, if any.
    pub node: Option<String>,
    /// What is wrong, and what to do.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.pos)?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if let Some(node) = &self.node {
            write!(f, "node '{node}': ")?;
        }
        f.write_str(&self.message)
    }
}

/// A flow that compiled, and the warnings it had.
#[derive(Debug)]
pub struct Compiled {
    /// The flow.
    pub flow: Flow,
    /// Warnings (never errors).
    pub warnings: Vec<Diagnostic>,
}

/// What the server lets flows use.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The environment variables fetch nodes may read as `{{env.NAME}}` (`fetch_env`).
    pub fetch_env: Vec<String>,
}

/// Compiles one flow. `file` only names the source in messages. On failure, returns every
/// diagnostic, errors and warnings, sorted by position.
pub fn compile(source: &str, file: &str) -> Result<Compiled, Vec<Diagnostic>> {
    compile_with(source, file, &Options::default())
}

/// [`compile`] with the server's [`Options`].
pub fn compile_with(
    source: &str,
    file: &str,
    options: &Options,
) -> Result<Compiled, Vec<Diagnostic>> {
    let root = match yaml::parse(source) {
        Ok(root) => root,
        Err(err) => {
            return Err(vec![Diagnostic {
                file: file.to_owned(),
                pos: err.pos,
                severity: Severity::Error,
                node: None,
                message: format!("not valid YAML: {}", err.message),
            }]);
        }
    };
    let mut c = Compiler {
        file,
        diagnostics: Vec::new(),
        node: None,
        language: None,
        options,
        fetch_defaults: fetch::FetchDefaults::default(),
    };
    let flow = c.flow(&root, FlowVersion::of(source));
    let mut diagnostics = c.diagnostics;
    diagnostics.sort_by(|a, b| a.pos.cmp(&b.pos).then(a.severity.cmp(&b.severity)));
    match flow {
        Some(flow) if diagnostics.iter().all(|d| d.severity == Severity::Warning) => Ok(Compiled {
            flow,
            warnings: diagnostics,
        }),
        _ => Err(diagnostics),
    }
}

type Entries<'a> = Vec<(&'a str, &'a yaml::Node)>;

struct Compiler<'f> {
    file: &'f str,
    diagnostics: Vec<Diagnostic>,
    /// The node being compiled, named in every message.
    node: Option<String>,
    /// The flow's languages, once read (texts per language are checked against them).
    language: Option<Language>,
    options: &'f Options,
    /// The flow's `fetch:` defaults, read before the nodes.
    fetch_defaults: fetch::FetchDefaults,
}

impl Compiler<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.report(pos, Severity::Error, message.into());
    }

    fn report(&mut self, pos: Pos, severity: Severity, message: String) {
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            pos,
            severity,
            node: self.node.clone(),
            message,
        });
    }

    /// A mapping's entries with string keys; reports keys not in `allowed`.
    fn mapping<'a>(
        &mut self,
        node: &'a yaml::Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<Entries<'a>> {
        let Value::Map(pairs) = &node.value else {
            self.error(
                node.pos,
                format!("{what} must be a mapping, got {}", node.kind()),
            );
            return None;
        };
        let mut entries = Vec::with_capacity(pairs.len());
        let mut seen = HashSet::new();
        for (key, value) in pairs {
            let Some(name) = key.as_str() else {
                self.error(
                    key.pos,
                    format!("keys of {what} must be names, got {}", key.kind()),
                );
                continue;
            };
            if !seen.insert(name) {
                self.error(key.pos, format!("duplicate key '{name}' in {what}"));
                continue;
            }
            if !allowed.is_empty() && !allowed.contains(&name) {
                let hint = suggest(name, allowed)
                    .map(|s| format!("did you mean '{s}'? "))
                    .unwrap_or_default();
                self.error(
                    key.pos,
                    format!(
                        "unknown key '{name}' in {what}; {hint}allowed keys: {}",
                        allowed.join(", ")
                    ),
                );
                continue;
            }
            entries.push((name, value));
        }
        Some(entries)
    }

    fn string<'a>(&mut self, node: &'a yaml::Node, what: &str) -> Option<&'a str> {
        match &node.value {
            Value::Str(s) => Some(s),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a string, got {}", node.kind()),
                );
                None
            }
        }
    }

    fn uint(&mut self, node: &yaml::Node, what: &str, min: u64, max: u64) -> Option<u64> {
        match node.value {
            Value::Int(i) if i >= 0 && (min..=max).contains(&i.unsigned_abs()) => {
                Some(i.unsigned_abs())
            }
            Value::Int(i) => {
                self.error(node.pos, format!("{what} must be {min}..={max}, got {i}"));
                None
            }
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be an integer, got {}", node.kind()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &yaml::Node, what: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be true or false, got {}", node.kind()),
                );
                None
            }
        }
    }

    /// Spoken text in one language: a template; literal text is checked against the protocol
    /// now.
    fn template_text(&mut self, node: &yaml::Node, what: &str) -> Option<Template> {
        let raw = self.string(node, what)?;
        match Template::parse(raw) {
            Ok(template) => {
                if let Some(literal) = template.as_literal()
                    && let Err(err) = Text::new(literal)
                {
                    self.error(node.pos, format!("{what} {err}"));
                    return None;
                }
                Some(template)
            }
            Err(err) => {
                self.error(node.pos, format!("{what}: {err}"));
                None
            }
        }
    }

    /// A phone number: a template; a literal one must be E.164.
    fn number(&mut self, node: &yaml::Node, what: &str) -> Option<Template> {
        let raw = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a phone number, got {}", node.kind()),
                );
                return None;
            }
        };
        match Template::parse(&raw) {
            Ok(template) => {
                if let Some(literal) = template.as_literal()
                    && let Err(err) = Msisdn::new(literal)
                {
                    self.error(node.pos, format!("{what}: {err}"));
                    return None;
                }
                Some(template)
            }
            Err(err) => {
                self.error(node.pos, format!("{what}: {err}"));
                None
            }
        }
    }

    fn speed(&mut self, node: &yaml::Node) -> Option<Speed> {
        let value = match node.value {
            Value::Float(f) => f,
            Value::Int(i) => i as f64,
            _ => {
                self.error(
                    node.pos,
                    format!("speed must be a number, got {}", node.kind()),
                );
                return None;
            }
        };
        Speed::new(value)
            .map_err(|e| self.error(node.pos, format!("speed {e}")))
            .ok()
    }

    fn voice(&mut self, node: &yaml::Node) -> Option<VoiceProfile> {
        let raw = self.string(node, "voice")?;
        VoiceProfile::new(raw)
            .map_err(|e| self.error(node.pos, format!("voice: {e}")))
            .ok()
    }

    fn repeat(&mut self, node: &yaml::Node) -> Option<Repetition> {
        let n = self.uint(
            node,
            "repeat",
            Repetition::MIN.into(),
            Repetition::MAX.into(),
        )?;
        Repetition::new(n).ok()
    }

    fn regex(&mut self, node: &yaml::Node, what: &str) -> Option<Regex> {
        let raw = self.string(node, what)?;
        Regex::new(&format!("^(?:{raw})$"))
            .map_err(|e| {
                let first = e.to_string().lines().last().unwrap_or_default().to_owned();
                self.error(
                    node.pos,
                    format!("{what} is not a valid regular expression: {first}"),
                );
            })
            .ok()
    }

    fn timezone(&mut self, node: &yaml::Node) -> Option<Tz> {
        let raw = self.string(node, "timezone")?;
        raw.parse::<Tz>()
            .map_err(|_| {
                self.error(
                    node.pos,
                    format!("unknown time zone {raw:?}; use an IANA name such as Asia/Singapore or Europe/London"),
                );
            })
            .ok()
    }

    fn flow(&mut self, root: &yaml::Node, version: FlowVersion) -> Option<Flow> {
        let top = self.mapping(
            root,
            "the flow",
            &[
                "id",
                "description",
                "numbers",
                "defaults",
                "timezone",
                "start",
                "nodes",
                "language",
                "fetch",
            ],
        )?;
        let get = |key: &str| top.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);

        let id = match get("id") {
            None => {
                self.error(root.pos, "the flow has no 'id'; add e.g. `id: support`");
                None
            }
            Some(node) => self.string(node, "id").and_then(|id| {
                if is_name(id, MAX_FLOW_ID) {
                    Some(id.to_owned())
                } else {
                    self.error(
                        node.pos,
                        format!("id {id:?} must be 1..={MAX_FLOW_ID} letters, digits, '_' or '-'"),
                    );
                    None
                }
            }),
        };
        let description =
            get("description").and_then(|n| self.string(n, "description").map(str::to_owned));

        let mut numbers = Vec::new();
        let mut number_pos = Vec::new();
        if let Some(node) = get("numbers") {
            match &node.value {
                Value::Seq(items) => {
                    for item in items {
                        let raw = match &item.value {
                            Value::Str(s) => s.clone(),
                            Value::Int(i) => i.to_string(),
                            _ => {
                                self.error(
                                    item.pos,
                                    format!("numbers must be phone numbers, got {}", item.kind()),
                                );
                                continue;
                            }
                        };
                        match Msisdn::new(&raw) {
                            Ok(n) if numbers.contains(&n.e164()) => {
                                self.error(item.pos, format!("number {raw} is listed twice"));
                            }
                            Ok(n) => {
                                numbers.push(n.e164());
                                number_pos.push(item.pos);
                            }
                            Err(e) => self.error(item.pos, format!("numbers: {e}")),
                        }
                    }
                }
                _ => self.error(
                    node.pos,
                    format!("numbers must be a list, got {}", node.kind()),
                ),
            }
        }

        let mut speech = Speech {
            voice: VoiceProfile::new(DEFAULT_VOICE).ok()?,
            speed: None,
            languages: Vec::new(),
        };
        let mut voices = None;
        if let Some(node) = get("defaults")
            && let Some(defaults) = self.mapping(node, "defaults", &["voice", "speed", "voices"])
        {
            for (key, value) in defaults {
                match key {
                    "voice" => {
                        if let Some(v) = self.voice(value) {
                            speech.voice = v;
                        }
                    }
                    "voices" => voices = Some(value),
                    _ => speech.speed = self.speed(value),
                }
            }
        }
        let languages = self.languages(get("language"), voices, &mut speech);
        let timezone = get("timezone").map_or(Some(Tz::UTC), |n| self.timezone(n));
        if let Some(node) = get("fetch") {
            self.fetch_defaults = self.fetch_defaults(node);
        }

        let Some(nodes_node) = get("nodes") else {
            self.error(root.pos, "the flow has no 'nodes'");
            return None;
        };
        let Value::Map(pairs) = &nodes_node.value else {
            self.error(
                nodes_node.pos,
                format!(
                    "nodes must be a mapping of names to nodes, got {}",
                    nodes_node.kind()
                ),
            );
            return None;
        };
        if pairs.len() > MAX_NODES {
            self.error(
                nodes_node.pos,
                format!("a flow holds at most {MAX_NODES} nodes"),
            );
            return None;
        }

        // First pass: names, so targets can refer forwards.
        let mut index = HashMap::new();
        let mut defs = Vec::new();
        for (key, value) in pairs {
            let Some(name) = key.scalar_text() else {
                self.error(key.pos, "node names must be strings");
                continue;
            };
            if matches!(name.as_str(), "hangup" | "back" | "return") {
                self.error(
                    key.pos,
                    format!("'{name}' is built in and cannot be a node name"),
                );
                continue;
            }
            if !is_name(&name, MAX_NODE_NAME) {
                self.error(
                    key.pos,
                    format!(
                        "node name {name:?} must be 1..={MAX_NODE_NAME} letters, digits, '_' or '-'"
                    ),
                );
                continue;
            }
            if index.contains_key(&name) {
                self.error(key.pos, format!("node '{name}' is defined twice"));
                continue;
            }
            index.insert(name.clone(), defs.len() as NodeId);
            defs.push((name, key.pos, value));
        }

        let start = match get("start") {
            None => {
                self.error(
                    root.pos,
                    "the flow has no 'start'; name the node a call begins at, e.g. `start: main`",
                );
                None
            }
            Some(node) => self.string(node, "start").and_then(|s| match index.get(s) {
                Some(&id) => Some(id),
                None => {
                    self.error(
                        node.pos,
                        format!(
                            "start names node '{s}', which does not exist{}",
                            did_you_mean(s, &index)
                        ),
                    );
                    None
                }
            }),
        };

        let tz = timezone.unwrap_or(Tz::UTC);
        let mut nodes = Vec::with_capacity(defs.len());
        for (name, pos, value) in &defs {
            self.node = Some(name.clone());
            let kind = self.node_kind(value, &index, &speech, tz);
            self.node = None;
            if let Some(kind) = kind {
                nodes.push(Node {
                    name: name.clone(),
                    pos: *pos,
                    kind,
                });
            }
        }
        if nodes.len() != defs.len() {
            return None;
        }
        languages?;
        let nodes_call_subflows = nodes.iter().any(|n| matches!(n.kind, NodeKind::Subflow(_)));
        let nodes_split = nodes.iter().any(|n| matches!(n.kind, NodeKind::Split(_)));
        let flow = Flow {
            id: id?,
            id_pos: get("id").map_or(root.pos, |n| n.pos),
            version,
            file: self.file.to_owned(),
            description,
            numbers,
            number_pos,
            speech,
            timezone: timezone?,
            start: start?,
            nodes,
            index,
            language: self.language.take(),
            calls_subflows: nodes_call_subflows,
            splits: nodes_split,
        };
        self.check_graph(&flow);
        self.check_fetch_vars(&flow);
        Some(flow)
    }

    fn target(
        &mut self,
        node: &yaml::Node,
        what: &str,
        index: &HashMap<String, NodeId>,
    ) -> Option<Target> {
        let name = node
            .scalar_text()
            .filter(|_| !matches!(node.value, Value::Seq(_) | Value::Map(_)));
        let Some(name) = name else {
            self.error(
                node.pos,
                format!("{what} must name a node, got {}", node.kind()),
            );
            return None;
        };
        match name.as_str() {
            "hangup" => Some(Target::Hangup),
            "back" => Some(Target::Back),
            "return" => Some(Target::Return),
            _ => match index.get(&name) {
                Some(&id) => Some(Target::Node(id)),
                None => {
                    self.error(
                        node.pos,
                        format!(
                            "{what} goes to '{name}', which is not a node of this flow{}",
                            did_you_mean(&name, index)
                        ),
                    );
                    None
                }
            },
        }
    }

    fn node_kind(
        &mut self,
        value: &yaml::Node,
        index: &HashMap<String, NodeId>,
        defaults: &Speech,
        tz: Tz,
    ) -> Option<NodeKind> {
        const KINDS: [&str; 10] = [
            "menu", "say", "play", "transfer", "capture", "branch", "set", "split", "subflow",
            "fetch",
        ];
        let Value::Map(pairs) = &value.value else {
            self.error(
                value.pos,
                format!(
                    "a node must be a mapping with one of {}, got {}",
                    KINDS.join(", "),
                    value.kind()
                ),
            );
            return None;
        };
        let kinds: Vec<&str> = pairs
            .iter()
            .filter_map(|(k, _)| k.as_str())
            .filter(|k| KINDS.contains(k))
            .collect();
        let kind = match kinds.as_slice() {
            [one] => *one,
            [] => {
                self.error(
                    value.pos,
                    format!("the node has no kind; give it one of {}", KINDS.join(", ")),
                );
                return None;
            }
            many => {
                self.error(
                    value.pos,
                    format!(
                        "the node has several kinds ({}); split it into one node per kind",
                        many.join(", ")
                    ),
                );
                return None;
            }
        };
        let allowed: &[&str] = match kind {
            "menu" => &["menu", "description"],
            "say" => &["say", "next", "voice", "speed", "repeat", "description"],
            "play" => &["play", "next", "repeat", "description"],
            "transfer" => &[
                "transfer",
                "next",
                "on_busy",
                "on_no_answer",
                "on_error",
                "description",
            ],
            "capture" => &["capture", "next", "description"],
            "branch" => &["branch", "default", "description"],
            "split" => &["split", "description"],
            "subflow" => &["subflow", "next", "description"],
            "fetch" => &[
                "fetch",
                "next",
                "on_error",
                "on_timeout",
                "cases",
                "description",
            ],
            _ => &["set", "next", "description"],
        };
        let entries = self.mapping(value, &format!("a {kind} node"), allowed)?;
        let get = |key: &str| entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let body = get(kind)?;
        let next = match get("next") {
            Some(n) => self.target(n, "next", index),
            None => Some(Target::Hangup),
        };
        match kind {
            "menu" => self.menu(body, index, defaults).map(NodeKind::Menu),
            "say" => {
                // Every key is checked before giving up, so all of a node's errors are reported.
                let text = self.text(body, "say");
                let speech = self.speech_overrides(&entries, defaults);
                let repeat = get("repeat").map(|r| self.repeat(r));
                Some(NodeKind::Say(SayNode {
                    text: text?,
                    repeat: repeat.map_or(Some(None), |r| r.map(Some))?,
                    speech: speech?,
                    next: next?,
                }))
            }
            "play" => {
                let url = self.string(body, "play").and_then(|u| {
                    FileUrl::new(u)
                        .map_err(|e| self.error(body.pos, format!("play: {e}")))
                        .ok()
                });
                let repeat = get("repeat").map(|r| self.repeat(r));
                Some(NodeKind::Play(PlayNode {
                    url: url?,
                    repeat: repeat.map_or(Some(None), |r| r.map(Some))?,
                    next: next?,
                }))
            }
            "transfer" => {
                let t = self.mapping(body, "transfer", &["to", "from", "record"])?;
                let tget = |key: &str| t.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
                let to = match tget("to") {
                    Some(n) => self.number(n, "transfer.to"),
                    None => {
                        self.error(
                            body.pos,
                            "transfer needs 'to', the number to connect the caller to",
                        );
                        None
                    }
                };
                let from = tget("from").map(|n| self.number(n, "transfer.from"));
                let record = match tget("record") {
                    Some(n) => self.boolean(n, "transfer.record"),
                    None => Some(false),
                };
                let on = |c: &mut Self, key: &str| match get(key) {
                    Some(n) => c.target(n, key, index),
                    None => next,
                };
                let on_busy = on(self, "on_busy");
                let on_no_answer = on(self, "on_no_answer");
                let on_error = on(self, "on_error");
                Some(NodeKind::Transfer(Transfer {
                    to: to?,
                    from: from.map_or(Some(None), |f| f.map(Some))?,
                    record: record?,
                    next: next?,
                    on_busy: on_busy?,
                    on_no_answer: on_no_answer?,
                    on_error: on_error?,
                }))
            }
            "capture" => self
                .capture(body, index, defaults, next)
                .map(NodeKind::Capture),
            "split" => self.split(body, index).map(NodeKind::Split),
            "subflow" => self.subflow(body, next).map(NodeKind::Subflow),
            "fetch" => self
                .fetch_node(body, &entries, index, next, tz)
                .map(|f| NodeKind::Fetch(Box::new(f))),
            "branch" => {
                let default = match get("default") {
                    Some(n) => self.target(n, "default", index),
                    None => {
                        self.error(
                            value.pos,
                            "a branch needs a 'default' target, taken when no rule matches",
                        );
                        None
                    }
                };
                let Value::Seq(items) = &body.value else {
                    self.error(
                        body.pos,
                        format!(
                            "branch must be a list of rules (`- when: ...` / `goto: ...`), got {}",
                            body.kind()
                        ),
                    );
                    return None;
                };
                let mut rules = Vec::new();
                let mut ok = true;
                for item in items {
                    let Some(rule) = self.mapping(item, "a branch rule", &["when", "goto"]) else {
                        ok = false;
                        continue;
                    };
                    let rget = |key: &str| rule.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
                    let (Some(when), Some(goto)) = (rget("when"), rget("goto")) else {
                        self.error(item.pos, "a branch rule needs both 'when' and 'goto'");
                        ok = false;
                        continue;
                    };
                    let cond = self.condition(when, tz);
                    let target = self.target(goto, "goto", index);
                    match (cond, target) {
                        (Some(c), Some(t)) => rules.push((c, t)),
                        _ => ok = false,
                    }
                }
                (ok).then_some(())?;
                Some(NodeKind::Branch(Branch {
                    rules,
                    default: default?,
                }))
            }
            _ => {
                let Value::Map(pairs) = &body.value else {
                    self.error(
                        body.pos,
                        format!(
                            "set must be a mapping of variable names to values, got {}",
                            body.kind()
                        ),
                    );
                    return None;
                };
                let mut vars = Vec::new();
                let mut ok = true;
                for (key, value) in pairs {
                    let name = key.scalar_text().unwrap_or_default();
                    if !is_var_name(&name) {
                        self.error(key.pos, format!("variable name {name:?} must start with a letter and hold only letters, digits and '_'"));
                        ok = false;
                        continue;
                    }
                    let raw = match value.scalar_text() {
                        Some(raw) if !matches!(value.value, Value::Null) => raw,
                        _ => {
                            self.error(
                                value.pos,
                                format!(
                                    "the value of '{name}' must be text or a number, got {}",
                                    value.kind()
                                ),
                            );
                            ok = false;
                            continue;
                        }
                    };
                    match Template::parse(&raw) {
                        Ok(t) => vars.push((name, t)),
                        Err(e) => {
                            self.error(value.pos, format!("{name}: {e}"));
                            ok = false;
                        }
                    }
                }
                ok.then_some(())?;
                Some(NodeKind::Set(SetNode { vars, next: next? }))
            }
        }
    }

    fn speech_overrides(&mut self, entries: &Entries<'_>, defaults: &Speech) -> Option<Speech> {
        let mut speech = defaults.clone();
        let mut ok = true;
        for (key, value) in entries {
            match *key {
                "voice" => match self.voice(value) {
                    Some(voice) => {
                        // A node's own voice speaks every language.
                        for (v, _) in &mut speech.languages {
                            v.clone_from(&voice);
                        }
                        speech.voice = voice;
                    }
                    None => ok = false,
                },
                "speed" => match self.speed(value) {
                    Some(speed) => {
                        for (_, s) in &mut speech.languages {
                            *s = Some(speed);
                        }
                        speech.speed = Some(speed);
                    }
                    None => ok = false,
                },
                _ => {}
            }
        }
        ok.then_some(speech)
    }

    fn timeouts(
        &mut self,
        body: &yaml::Node,
        entries: &Entries<'_>,
        default_timeout: u32,
    ) -> Option<(u32, Option<u32>)> {
        let get = |key: &str| entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let timeout = match get("timeout_ms") {
            Some(n) => self.uint(n, "timeout_ms", 1000, 600_000).map(|t| t as u32),
            None => Some(default_timeout),
        };
        let digit = get("digit_timeout_ms").map(|n| {
            self.uint(n, "digit_timeout_ms", 500, 600_000)
                .map(|d| d as u32)
        });
        let (timeout, digit) = (timeout?, digit.map_or(Some(None), |d| d.map(Some))?);
        if let Some(d) = digit
            && d >= timeout
        {
            let pos = get("digit_timeout_ms").map_or(body.pos, |n| n.pos);
            self.error(
                pos,
                format!("digit_timeout_ms ({d}) must be less than timeout_ms ({timeout})"),
            );
            return None;
        }
        Some((timeout, digit))
    }

    fn optional_text(&mut self, entries: &Entries<'_>, key: &str) -> Result<Option<Prompt>, ()> {
        match entries.iter().find(|(k, _)| *k == key) {
            Some((_, n)) => self.text(n, key).map(Some).ok_or(()),
            None => Ok(None),
        }
    }

    fn menu(
        &mut self,
        body: &yaml::Node,
        index: &HashMap<String, NodeId>,
        defaults: &Speech,
    ) -> Option<Menu> {
        let entries = self.mapping(
            body,
            "menu",
            &[
                "prompt",
                "reprompt",
                "invalid",
                "no_input",
                "timeout_ms",
                "digit_timeout_ms",
                "max_invalid",
                "max_no_input",
                "on_fail",
                "options",
                "voice",
                "speed",
            ],
        )?;
        let get = |key: &str| entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let prompt = match get("prompt") {
            Some(n) => self.text(n, "prompt"),
            None => {
                self.error(body.pos, "menu needs a 'prompt', what the caller hears");
                None
            }
        };
        let reprompt = self.optional_text(&entries, "reprompt");
        let invalid = self.optional_text(&entries, "invalid");
        let no_input = self.optional_text(&entries, "no_input");
        let timeouts = self.timeouts(body, &entries, 10_000);
        let max_invalid = match get("max_invalid") {
            Some(n) => self.uint(n, "max_invalid", 1, 20).map(|v| v as u8),
            None => Some(3),
        };
        let max_no_input = match get("max_no_input") {
            Some(n) => self.uint(n, "max_no_input", 1, 20).map(|v| v as u8),
            None => Some(2),
        };
        let on_fail = match get("on_fail") {
            Some(n) => self.target(n, "on_fail", index),
            None => Some(Target::Hangup),
        };
        let speech = self.speech_overrides(&entries, defaults);
        let mut options = Vec::new();
        let mut options_ok = true;
        match get("options") {
            None => {
                self.error(
                    body.pos,
                    "menu needs 'options', e.g. `options: { \"1\": bookings }`",
                );
                options_ok = false;
            }
            Some(node) => {
                match &node.value {
                    Value::Map(pairs) if !pairs.is_empty() => {
                        for (key, target) in pairs {
                            let Some(digits) = key.scalar_text() else {
                                self.error(key.pos, "option keys must be keys of the phone pad");
                                options_ok = false;
                                continue;
                            };
                            if digits.is_empty()
                                || digits.len() > usize::from(DigitCount::MAX)
                                || !digits
                                    .bytes()
                                    .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
                            {
                                self.error(key.pos, format!("option key {digits:?} is not DTMF; use the keys 0-9, * and #"));
                                options_ok = false;
                                continue;
                            }
                            if options.iter().any(|(d, _)| *d == digits) {
                                self.error(key.pos, format!("option {digits:?} is given twice"));
                                options_ok = false;
                                continue;
                            }
                            match self.target(target, &format!("option {digits:?}"), index) {
                                Some(t) => options.push((digits, t)),
                                None => options_ok = false,
                            }
                        }
                    }
                    _ => {
                        self.error(
                            node.pos,
                            "options must be a non-empty mapping of keys to nodes",
                        );
                        options_ok = false;
                    }
                }
            }
        }
        let (timeout_ms, digit_timeout_ms) = timeouts?;
        options_ok.then_some(())?;
        Some(Menu {
            prompt: prompt?,
            reprompt: reprompt.ok()?,
            invalid: invalid.ok()?,
            no_input: no_input.ok()?,
            timeout_ms,
            digit_timeout_ms,
            max_invalid: max_invalid?,
            max_no_input: max_no_input?,
            on_fail: on_fail?,
            options,
            speech: speech?,
        })
    }

    fn capture(
        &mut self,
        body: &yaml::Node,
        index: &HashMap<String, NodeId>,
        defaults: &Speech,
        next: Option<Target>,
    ) -> Option<Capture> {
        let entries = self.mapping(
            body,
            "capture",
            &[
                "prompt",
                "reprompt",
                "invalid",
                "var",
                "min_digits",
                "max_digits",
                "finish_on_hash",
                "pattern",
                "max_attempts",
                "timeout_ms",
                "digit_timeout_ms",
                "on_fail",
                "voice",
                "speed",
            ],
        )?;
        let get = |key: &str| entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let prompt = match get("prompt") {
            Some(n) => self.text(n, "prompt"),
            None => {
                self.error(body.pos, "capture needs a 'prompt', what the caller hears");
                None
            }
        };
        let reprompt = self.optional_text(&entries, "reprompt");
        let invalid = self.optional_text(&entries, "invalid");
        let var = match get("var") {
            Some(n) => self.string(n, "var").and_then(|v| {
                if is_var_name(v) {
                    Some(v.to_owned())
                } else {
                    self.error(n.pos, format!("var {v:?} must start with a letter and hold only letters, digits and '_'"));
                    None
                }
            }),
            None => {
                self.error(body.pos, "capture needs 'var', the variable that receives the digits");
                None
            }
        };
        let max_digits = match get("max_digits") {
            Some(n) => self.uint(
                n,
                "max_digits",
                DigitCount::MIN.into(),
                DigitCount::MAX.into(),
            ),
            None => Some(DigitCount::MAX.into()),
        };
        let min_digits = match get("min_digits") {
            Some(n) => self.uint(
                n,
                "min_digits",
                DigitCount::MIN.into(),
                DigitCount::MAX.into(),
            ),
            None => Some(DigitCount::MIN.into()),
        };
        let mut digits_ok = true;
        if let (Some(min), Some(max)) = (min_digits, max_digits)
            && min > max
        {
            let pos = get("min_digits").map_or(body.pos, |n| n.pos);
            self.error(
                pos,
                format!("min_digits ({min}) must not exceed max_digits ({max})"),
            );
            digits_ok = false;
        }
        let finish_on_hash = match get("finish_on_hash") {
            Some(n) => self.boolean(n, "finish_on_hash"),
            None => Some(true),
        };
        let pattern = get("pattern").map(|n| self.regex(n, "pattern"));
        let max_attempts = match get("max_attempts") {
            Some(n) => self.uint(n, "max_attempts", 1, 20).map(|v| v as u8),
            None => Some(3),
        };
        let timeouts = self.timeouts(body, &entries, 20_000);
        let on_fail = match get("on_fail") {
            Some(n) => self.target(n, "on_fail", index),
            None => Some(Target::Hangup),
        };
        let speech = self.speech_overrides(&entries, defaults);
        let (timeout_ms, digit_timeout_ms) = timeouts?;
        digits_ok.then_some(())?;
        Some(Capture {
            prompt: prompt?,
            reprompt: reprompt.ok()?,
            invalid: invalid.ok()?,
            var: var?,
            min_digits: DigitCount::new(min_digits?).ok()?,
            max_digits: DigitCount::new(max_digits?).ok()?,
            finish_on_hash: finish_on_hash?,
            pattern: pattern.map_or(Some(None), |p| p.map(Some))?,
            max_attempts: max_attempts?,
            timeout_ms,
            digit_timeout_ms,
            speech: speech?,
            next: next?,
            on_fail: on_fail?,
        })
    }

    fn condition(&mut self, node: &yaml::Node, flow_tz: Tz) -> Option<Condition> {
        let entries = self.mapping(
            node,
            "a condition",
            &[
                "time",
                "days",
                "tz",
                "caller_prefix",
                "var",
                "equals",
                "not_equals",
                "in",
                "matches",
                "gt",
                "lt",
                "gte",
                "lte",
                "is_set",
                "all",
                "any",
                "not",
            ],
        )?;
        let get = |key: &str| entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let tz = match get("tz") {
            Some(n) => self.timezone(n)?,
            None => flow_tz,
        };
        let mut all = Vec::new();
        let mut ok = true;
        let var_tests = [
            "equals",
            "not_equals",
            "in",
            "matches",
            "gt",
            "lt",
            "gte",
            "lte",
            "is_set",
        ];
        let tests: Vec<&str> = entries
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| var_tests.contains(k))
            .collect();
        match (get("var"), tests.as_slice()) {
            (Some(_), []) => {
                self.error(
                    node.pos,
                    format!("'var' needs a comparison: one of {}", var_tests.join(", ")),
                );
                ok = false;
            }
            (None, [first, ..]) => {
                self.error(
                    node.pos,
                    format!("'{first}' compares a variable; name it with `var: NAME`"),
                );
                ok = false;
            }
            (Some(_), [_, second, ..]) => {
                self.error(node.pos, format!("one comparison per condition ('{second}' is one too many); use `all:` to combine"));
                ok = false;
            }
            _ => {}
        }
        for (key, value) in &entries {
            let cond = match *key {
                "time" => self.time_range(value, tz),
                "days" => self.days(value, tz),
                "caller_prefix" => {
                    let prefixes: Vec<&yaml::Node> = match &value.value {
                        Value::Seq(items) => items.iter().collect(),
                        _ => vec![value],
                    };
                    let mut out = Vec::new();
                    for p in prefixes {
                        match p.scalar_text() {
                            Some(t)
                                if !t.is_empty()
                                    && t.trim_start_matches('+')
                                        .bytes()
                                        .all(|b| b.is_ascii_digit()) =>
                            {
                                out.push(t.trim_start_matches('+').to_owned());
                            }
                            _ => {
                                self.error(p.pos, "caller_prefix must be digits, optionally after '+', e.g. \"+65\"");
                                ok = false;
                            }
                        }
                    }
                    Some(Condition::CallerPrefix(out))
                }
                "var" => {
                    let name = self.string(value, "var");
                    let test = tests.first().and_then(|t| {
                        let n = get(t)?;
                        self.var_test(t, n)
                    });
                    match (name, test) {
                        (Some(name), Some(test)) if is_var_name(name) => Some(Condition::Var {
                            name: name.to_owned(),
                            test,
                        }),
                        (Some(name), _) if !is_var_name(name) => {
                            self.error(value.pos, format!("var {name:?} is not a variable name"));
                            None
                        }
                        _ => None,
                    }
                }
                "all" | "any" => {
                    let Value::Seq(items) = &value.value else {
                        self.error(value.pos, format!("'{key}' must be a list of conditions"));
                        ok = false;
                        continue;
                    };
                    let subs: Vec<Option<Condition>> =
                        items.iter().map(|i| self.condition(i, tz)).collect();
                    if subs.iter().any(Option::is_none) {
                        None
                    } else {
                        let subs = subs.into_iter().flatten().collect();
                        Some(if *key == "all" {
                            Condition::All(subs)
                        } else {
                            Condition::Any(subs)
                        })
                    }
                }
                "not" => self
                    .condition(value, tz)
                    .map(|c| Condition::Not(Box::new(c))),
                // tz and comparisons are consumed above.
                _ => continue,
            };
            match cond {
                Some(c) => all.push(c),
                None => ok = false,
            }
        }
        if all.is_empty() && ok {
            self.error(
                node.pos,
                "an empty condition; give time, days, caller_prefix, var, all, any or not",
            );
            return None;
        }
        ok.then_some(())?;
        Some(if all.len() == 1 {
            all.remove(0)
        } else {
            Condition::All(all)
        })
    }

    fn var_test(&mut self, test: &str, node: &yaml::Node) -> Option<VarTest> {
        let number = |c: &mut Self| match node.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => {
                c.error(
                    node.pos,
                    format!(
                        "'{test}' compares numbers; give a number, got {}",
                        node.kind()
                    ),
                );
                None
            }
        };
        match test {
            "equals" | "not_equals" => {
                let Some(text) = node.scalar_text() else {
                    self.error(
                        node.pos,
                        format!("'{test}' needs a value, got {}", node.kind()),
                    );
                    return None;
                };
                Some(if test == "equals" {
                    VarTest::Equals(text)
                } else {
                    VarTest::NotEquals(text)
                })
            }
            "in" => {
                let Value::Seq(items) = &node.value else {
                    self.error(node.pos, "'in' needs a list of values");
                    return None;
                };
                Some(VarTest::In(
                    items.iter().filter_map(yaml::Node::scalar_text).collect(),
                ))
            }
            "matches" => self.regex(node, "matches").map(VarTest::Matches),
            "gt" => number(self).map(VarTest::Gt),
            "lt" => number(self).map(VarTest::Lt),
            "gte" => number(self).map(VarTest::Gte),
            "lte" => number(self).map(VarTest::Lte),
            _ => self.boolean(node, "is_set").map(VarTest::IsSet),
        }
    }

    fn time_range(&mut self, node: &yaml::Node, tz: Tz) -> Option<Condition> {
        let raw = self.string(node, "time")?;
        let parse = |s: &str| -> Option<u16> {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
        };
        match raw
            .split_once('-')
            .and_then(|(a, b)| Some((parse(a)?, parse(b)?)))
        {
            Some((from, to)) if from != to => Some(Condition::Time { from, to, tz }),
            _ => {
                self.error(node.pos, format!("time {raw:?} must be a range HH:MM-HH:MM such as \"09:00-17:30\" (it may wrap past midnight)"));
                None
            }
        }
    }

    fn days(&mut self, node: &yaml::Node, tz: Tz) -> Option<Condition> {
        const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        const FULL: [&str; 7] = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        // Exactly a short or a full English name: "monkey" is not Monday.
        let day = |s: &str| {
            let s = s.trim().to_ascii_lowercase();
            NAMES
                .iter()
                .position(|d| *d == s)
                .or_else(|| FULL.iter().position(|d| *d == s))
        };
        let parts: Vec<String> = match &node.value {
            Value::Str(s) => s.split(',').map(str::to_owned).collect(),
            // A non-scalar item becomes "", which names no day and is reported below.
            Value::Seq(items) => items
                .iter()
                .map(|item| item.scalar_text().unwrap_or_default())
                .collect(),
            _ => Vec::new(),
        };
        let mut mask = 0u8;
        for part in &parts {
            let range = match part.split_once('-') {
                Some((a, b)) => day(a).zip(day(b)),
                None => day(part).map(|d| (d, d)),
            };
            let Some((a, b)) = range else {
                mask = 0;
                break;
            };
            let mut d = a;
            loop {
                mask |= 1 << d;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
        if mask == 0 {
            self.error(
                node.pos,
                "days must name weekdays (mon..sun or monday..sunday), e.g. mon-fri, \"sat,sun\" or [mon, wed]",
            );
            return None;
        }
        Some(Condition::Days { mask, tz })
    }

    /// Whole-graph checks: reachability (a warning) and loops that would never speak.
    fn check_graph(&mut self, flow: &Flow) {
        let mut reached = vec![false; flow.nodes.len()];
        let mut todo = vec![flow.start];
        while let Some(id) = todo.pop() {
            if std::mem::replace(&mut reached[usize::from(id)], true) {
                continue;
            }
            for target in flow.node(id).kind.targets() {
                if let Target::Node(next) = target {
                    todo.push(next);
                }
            }
        }
        for (node, reached) in flow.nodes.iter().zip(&reached) {
            if !reached {
                self.node = Some(node.name.clone());
                self.report(
                    node.pos,
                    Severity::Warning,
                    format!(
                        "unreachable from start node '{}'",
                        flow.node(flow.start).name
                    ),
                );
                self.node = None;
            }
        }
        // A cycle of set/branch/split/fetch nodes never answers the platform: the call would
        // hang.
        let silent = |id: NodeId| {
            matches!(
                flow.node(id).kind,
                NodeKind::Set(_) | NodeKind::Branch(_) | NodeKind::Split(_) | NodeKind::Fetch(_)
            )
        };
        let mut state = vec![0u8; flow.nodes.len()]; // 0 new, 1 on stack, 2 done
        let mut reported = HashSet::new();
        for start in 0..flow.nodes.len() as NodeId {
            if silent(start) && state[usize::from(start)] == 0 {
                let mut stack = vec![(start, 0usize)];
                state[usize::from(start)] = 1;
                while let Some((id, i)) = stack.pop() {
                    let targets = flow.node(id).kind.targets();
                    if let Some(target) = targets.get(i) {
                        stack.push((id, i + 1));
                        if let Target::Node(next) = *target
                            && silent(next)
                        {
                            match state[usize::from(next)] {
                                0 => {
                                    state[usize::from(next)] = 1;
                                    stack.push((next, 0));
                                }
                                1 if reported.insert(next) => {
                                    let node = flow.node(next);
                                    self.node = Some(node.name.clone());
                                    self.error(node.pos, format!(
                                        "set/branch/split/fetch nodes loop back to '{}' without saying anything; the call would never get an answer",
                                        node.name
                                    ));
                                    self.node = None;
                                }
                                _ => {}
                            }
                        }
                    } else {
                        state[usize::from(id)] = 2;
                    }
                }
            }
        }
    }
}

fn is_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn did_you_mean(name: &str, index: &HashMap<String, NodeId>) -> String {
    let mut names: Vec<&str> = index.keys().map(String::as_str).collect();
    names.sort_unstable();
    suggest(name, &names)
        .map(|s| format!("; did you mean '{s}'?"))
        .unwrap_or_default()
}

/// The closest candidate within a small edit distance.
fn suggest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
