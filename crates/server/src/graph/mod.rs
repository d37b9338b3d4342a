//! A flow as a picture: the directed graph of its nodes and transitions, laid out and drawn.
//!
//! [`Graph::of`] reads a compiled [`Flow`] into boxes (one per node, with its kind and a short
//! prompt, plus the built-in `hangup` and `back` when used) and labelled edges (one per menu
//! key, branch rule, transfer result, ...), each edge of a [`EdgeKind`] so retries, failures,
//! busy, no-answer and error paths are drawn apart from the happy path. Nodes the start node
//! cannot reach are flagged. [`Graph::with_report`] adds a funnel (visits and drop-off per
//! node, from `/v1/flows/{id}/report`).
//!
//! [`render`] writes it as SVG (laid out here, by [`layout`], with no external `dot`), Mermaid
//! (pastes into a GitHub README) or Graphviz DOT. `switchboard flow graph` and the admin
//! API's `/ui` both draw with it.

pub mod layout;
pub mod render;

use std::collections::{BTreeMap, VecDeque};

use switchboard_flow::fetch::CaseTest;
use switchboard_flow::model::{Condition, VarTest};
use switchboard_flow::{Flow, NodeKind, Target};

/// Longest prompt shown in a box, in characters; longer ones end with `…`.
const PROMPT_CHARS: usize = 60;
/// Longest edge label, in characters.
const LABEL_CHARS: usize = 24;

/// What an edge means, and so how it is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Where the call goes on: `next`, a branch rule, a good capture, an answered transfer.
    Next,
    /// A menu key.
    Option,
    /// A wrong key or silence: the node prompts again (a loop onto itself).
    Retry,
    /// A retry counter ran out: `on_fail`.
    Fail,
    /// A transfer's line was busy: `on_busy`.
    Busy,
    /// Nobody answered a transfer (a timeout): `on_no_answer`.
    NoAnswer,
    /// A transfer failed: `on_error`.
    Error,
}

impl EdgeKind {
    /// Its name, used as the SVG class (`edge-fail`) and in legends.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Option => "option",
            Self::Retry => "retry",
            Self::Fail => "fail",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Error => "error",
        }
    }

    /// Whether this is a path off the happy one (drawn dashed).
    pub const fn is_unhappy(self) -> bool {
        !matches!(self, Self::Next | Self::Option)
    }
}

/// A box of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    /// The node's name (`hangup` and `back` for the built-ins).
    pub name: String,
    /// Its kind (`menu`, `say`, ...; `hangup` and `back` for the built-ins).
    pub kind: &'static str,
    /// A short text: the prompt, the transfer's number, the variables set.
    pub text: String,
    /// Whether it is the start node.
    pub start: bool,
    /// Whether a call can reach it from the start node.
    pub reachable: bool,
    /// Whether it is the built-in `hangup` or `back`.
    pub builtin: bool,
    /// Callers seen here, when a report was given.
    pub funnel: Option<Funnel>,
}

/// A node's figures from a flow report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Funnel {
    /// Times a caller entered the node.
    pub visits: u64,
    /// Calls that ended while there (drop-off).
    pub exits: u64,
}

impl Funnel {
    /// The share of visits that ended here, 0..=1 (0 without visits).
    pub fn drop_rate(self) -> f64 {
        if self.visits == 0 {
            0.0
        } else {
            (self.exits as f64 / self.visits as f64).min(1.0)
        }
    }
}

/// An arrow between two boxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Index of the source in [`Graph::nodes`].
    pub from: usize,
    /// Index of the target in [`Graph::nodes`].
    pub to: usize,
    /// The key, the condition or the result it stands for.
    pub label: String,
    /// What it means.
    pub kind: EdgeKind,
}

/// A flow as boxes and arrows.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// The flow's id.
    pub flow: String,
    /// The boxes: the flow's nodes in file order, then `hangup` and `back` if used.
    pub nodes: Vec<GraphNode>,
    /// The arrows, by source node then in file order.
    pub edges: Vec<Edge>,
}

impl Graph {
    /// The graph of a compiled flow.
    pub fn of(flow: &Flow) -> Self {
        let mut nodes: Vec<GraphNode> = flow
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| GraphNode {
                name: node.name.clone(),
                kind: node.kind.name(),
                text: node_text(&node.kind),
                start: i == usize::from(flow.start),
                reachable: false,
                builtin: false,
                funnel: None,
            })
            .collect();
        let mut builtins: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut edges = Vec::new();
        for (from, node) in flow.nodes.iter().enumerate() {
            for (target, label, kind) in transitions(&node.kind) {
                let to = match target {
                    Target::Node(id) => usize::from(id),
                    Target::Hangup | Target::Back | Target::Return => {
                        let name = match target {
                            Target::Hangup => "hangup",
                            Target::Back => "back",
                            _ => "return",
                        };
                        *builtins.entry(name).or_insert_with(|| {
                            nodes.push(GraphNode {
                                name: name.to_owned(),
                                kind: name,
                                text: match name {
                                    "hangup" => "the call ends".to_owned(),
                                    "back" => "the menu the caller came from".to_owned(),
                                    _ => "back to the calling flow".to_owned(),
                                },
                                start: false,
                                reachable: false,
                                builtin: true,
                                funnel: None,
                            });
                            nodes.len() - 1
                        })
                    }
                };
                edges.push(Edge {
                    from,
                    to,
                    label: shorten(&label, LABEL_CHARS),
                    kind,
                });
            }
            if let Some(label) = retry_label(&node.kind) {
                edges.push(Edge {
                    from,
                    to: from,
                    label,
                    kind: EdgeKind::Retry,
                });
            }
        }
        let mut graph = Self {
            flow: flow.id.clone(),
            nodes,
            edges,
        };
        graph.mark_reachable(usize::from(flow.start));
        graph
    }

    /// Marks every node reachable from `start` along the edges.
    fn mark_reachable(&mut self, start: usize) {
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            if std::mem::replace(&mut self.nodes[node].reachable, true) {
                continue;
            }
            queue.extend(
                self.edges
                    .iter()
                    .filter(|e| e.from == node)
                    .map(|e| e.to)
                    .filter(|&to| !self.nodes[to].reachable),
            );
        }
    }

    /// Adds each node's figures from a flow report's `nodes` (by node name); nodes the report
    /// does not list show zero visits.
    pub fn with_report(mut self, figures: &BTreeMap<String, Funnel>) -> Self {
        for node in &mut self.nodes {
            if !node.builtin {
                node.funnel = Some(figures.get(&node.name).copied().unwrap_or_default());
            }
        }
        self
    }

    /// The names of nodes no call can reach.
    pub fn unreachable(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| !n.reachable)
            .map(|n| n.name.as_str())
            .collect()
    }
}

/// A flow report's per-node figures (`/v1/flows/{id}/report`, parsed as JSON): visits and
/// exits by node name. The error names what is missing.
pub fn report_figures(report: &serde_json::Value) -> Result<BTreeMap<String, Funnel>, String> {
    let nodes = report
        .get("nodes")
        .and_then(|n| n.as_array())
        .ok_or("the report has no \"nodes\" list (is it a /v1/flows/{id}/report answer?)")?;
    let mut figures = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let field = |name: &str| {
            node.get(name)
                .ok_or(format!("nodes[{i}].{name}: is missing in the report"))
        };
        let name = field("node")?
            .as_str()
            .ok_or(format!("nodes[{i}].node: is not a string"))?;
        let number = |name: &str| {
            field(name)?
                .as_u64()
                .ok_or(format!("nodes[{i}].{name}: is not a whole number"))
        };
        figures.insert(
            name.to_owned(),
            Funnel {
                visits: number("visits")?,
                exits: number("exits")?,
            },
        );
    }
    Ok(figures)
}

/// A node's outgoing transitions: target, label, kind.
fn transitions(kind: &NodeKind) -> Vec<(Target, String, EdgeKind)> {
    match kind {
        NodeKind::Menu(menu) => {
            let mut out: Vec<_> = menu
                .options
                .iter()
                .map(|(key, target)| (*target, key.clone(), EdgeKind::Option))
                .collect();
            out.push((menu.on_fail, "on_fail".to_owned(), EdgeKind::Fail));
            out
        }
        NodeKind::Say(say) => vec![(say.next, String::new(), EdgeKind::Next)],
        NodeKind::Play(play) => vec![(play.next, String::new(), EdgeKind::Next)],
        NodeKind::Set(set) => vec![(set.next, String::new(), EdgeKind::Next)],
        NodeKind::Capture(capture) => vec![
            (capture.next, "ok".to_owned(), EdgeKind::Next),
            (capture.on_fail, "on_fail".to_owned(), EdgeKind::Fail),
        ],
        NodeKind::Transfer(t) => {
            let mut out = vec![(t.next, "answered".to_owned(), EdgeKind::Next)];
            for (target, label, kind) in [
                (t.on_busy, "busy", EdgeKind::Busy),
                (t.on_no_answer, "no answer", EdgeKind::NoAnswer),
                (t.on_error, "error", EdgeKind::Error),
            ] {
                out.push((target, label.to_owned(), kind));
            }
            out
        }
        NodeKind::Branch(branch) => branch
            .rules
            .iter()
            .map(|(condition, target)| (*target, describe(condition), EdgeKind::Next))
            .chain([(branch.default, "default".to_owned(), EdgeKind::Next)])
            .collect(),
        NodeKind::Subflow(call) => vec![(call.next, "returned".to_owned(), EdgeKind::Next)],
        NodeKind::Split(split) => split
            .branches
            .iter()
            .map(|(weight, target)| {
                let percent = f64::from(*weight) * 100.0 / f64::from(split.total);
                (*target, format!("{percent:.0}%"), EdgeKind::Next)
            })
            .collect(),
        NodeKind::Fetch(f) => {
            let mut out: Vec<_> = f
                .cases
                .iter()
                .map(|(test, target)| {
                    let label = match test {
                        CaseTest::Status(codes) => format!(
                            "status {}",
                            codes
                                .iter()
                                .map(u16::to_string)
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                        CaseTest::When(condition) => describe(condition),
                    };
                    (*target, label, EdgeKind::Next)
                })
                .collect();
            out.push((f.next, "ok".to_owned(), EdgeKind::Next));
            out.push((f.on_error, "error".to_owned(), EdgeKind::Error));
            out.push((f.on_timeout, "timeout".to_owned(), EdgeKind::NoAnswer));
            out
        }
    }
}

/// The label of a node's retry loop (a wrong key or silence prompts again), if it has one.
fn retry_label(kind: &NodeKind) -> Option<String> {
    matches!(kind, NodeKind::Menu(_) | NodeKind::Capture(_)).then(|| "retry".to_owned())
}

/// The short text of a box.
fn node_text(kind: &NodeKind) -> String {
    let text = match kind {
        NodeKind::Menu(menu) => menu.prompt.to_string(),
        NodeKind::Say(say) => say.text.to_string(),
        NodeKind::Play(play) => play.url.as_str().to_owned(),
        NodeKind::Transfer(t) => format!("to {}", t.to),
        NodeKind::Capture(c) => format!("→ vars.{}: {}", c.var, c.prompt),
        NodeKind::Branch(b) => format!("{} rules", b.rules.len()),
        NodeKind::Split(s) => format!("A/B split, {} branches", s.branches.len()),
        NodeKind::Subflow(call) => match &call.start {
            Some(start) => format!("runs flow {} at {start}", call.flow),
            None => format!("runs flow {}", call.flow),
        },
        NodeKind::Set(set) => set
            .vars
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(", "),
        // The URL as written: `{{env.NAME}}` shows its name, never a value.
        NodeKind::Fetch(f) => format!("{} {}", f.method.as_str(), f.url),
    };
    shorten(&text, PROMPT_CHARS)
}

/// A condition in a few words: `mon-fri 09:00-18:00`, `tier = gold`.
fn describe(condition: &Condition) -> String {
    match condition {
        Condition::All(all) => all.iter().map(describe).collect::<Vec<_>>().join(" "),
        Condition::Any(any) => any.iter().map(describe).collect::<Vec<_>>().join(" or "),
        Condition::Not(c) => format!("not {}", describe(c)),
        Condition::Time { from, to, .. } => format!(
            "{:02}:{:02}-{:02}:{:02}",
            from / 60,
            from % 60,
            to / 60,
            to % 60
        ),
        Condition::Days { mask, .. } => days(*mask),
        Condition::CallerPrefix(prefixes) => format!("caller +{}", prefixes.join(" +")),
        Condition::Var { name, test } => match test {
            VarTest::Equals(x) => format!("{name} = {x}"),
            VarTest::NotEquals(x) => format!("{name} ≠ {x}"),
            VarTest::In(xs) => format!("{name} in {}", xs.join(",")),
            VarTest::Matches(re) => format!("{name} ~ {}", re.as_str()),
            VarTest::Gt(x) => format!("{name} > {x}"),
            VarTest::Lt(x) => format!("{name} < {x}"),
            VarTest::Gte(x) => format!("{name} ≥ {x}"),
            VarTest::Lte(x) => format!("{name} ≤ {x}"),
            VarTest::IsSet(true) => format!("{name} set"),
            VarTest::IsSet(false) => format!("{name} unset"),
        },
    }
}

/// A weekday set (bit 0 = Monday) as `mon-fri`, `sat`, `mon,wed`.
fn days(mask: u8) -> String {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut runs: Vec<String> = Vec::new();
    let mut day = 0;
    while day < 7 {
        if mask & (1 << day) == 0 {
            day += 1;
            continue;
        }
        let first = day;
        while day + 1 < 7 && mask & (1 << (day + 1)) != 0 {
            day += 1;
        }
        runs.push(if first == day {
            NAMES[first].to_owned()
        } else {
            format!("{}-{}", NAMES[first], NAMES[day])
        });
        day += 1;
    }
    runs.join(",")
}

/// `text` cut to `max` characters, ending with `…` when cut; line breaks become spaces.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_read_as_runs() {
        assert_eq!(days(0b001_1111), "mon-fri");
        assert_eq!(days(0b010_0000), "sat");
        assert_eq!(days(0b000_0101), "mon,wed");
    }

    #[test]
    fn long_texts_are_shortened() {
        assert_eq!(shorten("a  b\nc", 10), "a b c");
        assert_eq!(shorten("abcdefghijkl", 5), "abcd…");
    }

    #[test]
    fn a_report_missing_figures_is_refused_naming_the_field() {
        let report = serde_json::json!({"nodes": [{"node": "main", "visits": 3}]});
        assert_eq!(
            report_figures(&report).unwrap_err(),
            "nodes[0].exits: is missing in the report"
        );
        assert!(report_figures(&serde_json::json!({})).is_err());
    }
}
