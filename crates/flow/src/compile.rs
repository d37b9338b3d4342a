//! From flow source (YAML or JSON) to a checked, executable [`Flow`].
//!
//! The compiler reports every problem at once, each as `file:line:col: node 'x': message`, so an
//! author fixes a file in one pass. Errors stop the flow from loading; warnings (a node no caller
//! can reach) do not.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono_tz::Tz;
use switchboard_protocol::{Msisdn, VoiceProfile};

use crate::model::{Flow, FlowVersion, Language, Node, NodeId, NodeKind, Speech, Target};
use crate::yaml::{self, Pos, Value};

// One module per concern: scalars, one node and its kind, menus and captures, branch
// conditions, the whole-graph checks, and the newer node kinds (fetch, split, subflow) and
// prompts per language.
mod condition;
mod fetch;
mod graph;
mod language;
mod menu;
mod node;
mod scalar;
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

/// The value of `key` among a mapping's entries.
fn entry<'a>(entries: &Entries<'a>, key: &str) -> Option<&'a yaml::Node> {
    entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

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
        let get = |key: &str| entry(&top, key);

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
