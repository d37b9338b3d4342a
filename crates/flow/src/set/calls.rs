//! Checking sub-flow calls across a flow set: every `subflow` node names a loaded flow and a
//! node of it, no call can re-enter a sub-flow it is already inside (recursion would be
//! unbounded), and calls nest at most [`CALL_DEPTH_LIMIT`] deep from any flow's start.
//!
//! The graph checked is one of *entries*: a flow and the node a call starts at (each flow's
//! `start`, and every sub-flow call's target). An entry calls every `subflow` node its flow
//! can reach from it without leaving the flow; the depth of an entry is the longest chain of
//! calls below it.

use std::collections::{HashMap, HashSet};

use crate::compile::{Diagnostic, Severity};
use crate::model::{Flow, Node, NodeId, NodeKind, SubflowNode, Target};
use crate::state::CALL_DEPTH_LIMIT;
use crate::yaml::Pos;

/// Every problem with the sub-flow calls of `flows` (the current version of each).
pub(super) fn check(flows: &HashMap<&str, &Flow>) -> Vec<Diagnostic> {
    let mut checker = Checker {
        flows,
        entries: HashMap::new(),
        errors: Vec::new(),
        reported: HashSet::new(),
    };
    let mut ids: Vec<&str> = flows.keys().copied().collect();
    ids.sort_unstable();
    for id in &ids {
        let flow = flows[id];
        for node in &flow.nodes {
            if let NodeKind::Subflow(call) = &node.kind {
                checker.resolve(flow, node, call, true);
            }
        }
    }
    // Not yet supported: a look-up inside a sub-flow call (the runtime performs a fetch for the
    // flow a session is on, not the one a call stack leads to). Refused rather than left to
    // fail at run time.
    let called: HashSet<&str> = ids
        .iter()
        .flat_map(|id| flows[id].nodes.iter())
        .filter_map(|node| match &node.kind {
            NodeKind::Subflow(call) => Some(call.flow.as_str()),
            _ => None,
        })
        .collect();
    for id in &ids {
        let flow = flows[id];
        let role = if flow.calls_subflows {
            "runs sub-flows"
        } else if called.contains(id) {
            "is run as a sub-flow"
        } else {
            continue;
        };
        for node in &flow.nodes {
            if matches!(node.kind, NodeKind::Fetch(_)) {
                checker.error(
                    flow,
                    node,
                    node.pos,
                    format!(
                        "flow '{}' {role}, and fetch nodes cannot be combined with sub-flows yet; \
                         move the look-up into a flow without subflow nodes that no subflow runs",
                        flow.id
                    ),
                );
            }
        }
    }
    for id in &ids {
        let flow = flows[id];
        let depth = checker.depth(flow, flow.start);
        if depth > CALL_DEPTH_LIMIT {
            checker.too_deep(flow, depth);
        }
    }
    checker.errors
}

#[derive(Clone, Copy)]
enum Mark<'a> {
    /// Being explored: reaching it again is recursion.
    Active,
    /// Explored: the longest chain of calls below it, and the call that starts that chain.
    Done(usize, Option<(&'a Flow, NodeId)>),
}

struct Checker<'a, 'm> {
    flows: &'m HashMap<&'a str, &'a Flow>,
    entries: HashMap<(&'a str, NodeId), Mark<'a>>,
    errors: Vec<Diagnostic>,
    reported: HashSet<(&'a str, NodeId)>,
}

impl<'a> Checker<'a, '_> {
    fn error(&mut self, flow: &Flow, node: &Node, pos: Pos, message: String) {
        self.errors.push(Diagnostic {
            file: flow.file.clone(),
            pos,
            severity: Severity::Error,
            node: Some(node.name.clone()),
            message,
        });
    }

    /// The flow and entry node `call` goes to; reports a missing one when `report`.
    fn resolve(
        &mut self,
        flow: &Flow,
        node: &Node,
        call: &SubflowNode,
        report: bool,
    ) -> Option<(&'a Flow, NodeId)> {
        let Some(&callee) = self.flows.get(call.flow.as_str()) else {
            if report {
                let mut loaded: Vec<&str> = self.flows.keys().copied().collect();
                loaded.sort_unstable();
                self.error(
                    flow,
                    node,
                    call.flow_pos,
                    format!(
                        "subflow runs flow '{}', which is not loaded (loaded: {}); check its id or add its file",
                        call.flow,
                        loaded.join(", ")
                    ),
                );
            }
            return None;
        };
        let entry = match &call.start {
            None => callee.start,
            Some(name) => match callee.node_id(name) {
                Some(id) => id,
                None => {
                    if report {
                        self.error(
                            flow,
                            node,
                            call.start_pos,
                            format!(
                                "subflow starts at node '{name}', which flow '{}' ({}) does not have",
                                callee.id, callee.file
                            ),
                        );
                    }
                    return None;
                }
            },
        };
        Some((callee, entry))
    }

    /// The `subflow` nodes `flow` reaches from `entry` without leaving it.
    fn calls_from(flow: &'a Flow, entry: NodeId) -> Vec<NodeId> {
        let mut seen = vec![false; flow.nodes.len()];
        let mut todo = vec![entry];
        let mut calls = Vec::new();
        while let Some(id) = todo.pop() {
            if std::mem::replace(&mut seen[usize::from(id)], true) {
                continue;
            }
            let kind = &flow.node(id).kind;
            if matches!(kind, NodeKind::Subflow(_)) {
                calls.push(id);
            }
            for target in kind.targets() {
                match target {
                    Target::Node(next) => todo.push(next),
                    // `back` may go to the flow's start.
                    Target::Back => todo.push(flow.start),
                    Target::Hangup | Target::Return => {}
                }
            }
        }
        calls.sort_unstable();
        calls
    }

    /// The longest chain of calls below the entry `(flow, entry)`; reports recursion.
    fn depth(&mut self, flow: &'a Flow, entry: NodeId) -> usize {
        let key = (flow.id.as_str(), entry);
        match self.entries.get(&key) {
            Some(Mark::Done(depth, _)) => return *depth,
            Some(Mark::Active) => return 0,
            None => {}
        }
        self.entries.insert(key, Mark::Active);
        let mut deepest = (0, None);
        for id in Self::calls_from(flow, entry) {
            let node = flow.node(id);
            let NodeKind::Subflow(call) = &node.kind else {
                continue;
            };
            let Some((callee, callee_entry)) = self.resolve(flow, node, call, false) else {
                continue;
            };
            if let Some(Mark::Active) = self.entries.get(&(callee.id.as_str(), callee_entry)) {
                if self.reported.insert((flow.id.as_str(), id)) {
                    self.error(
                        flow,
                        node,
                        node.pos,
                        format!(
                            "subflow calls flow '{}' at '{}', which this call is already inside: the recursion would be unbounded; go back with `return` instead",
                            callee.id,
                            callee.node(callee_entry).name
                        ),
                    );
                }
                continue;
            }
            let depth = 1 + self.depth(callee, callee_entry);
            if depth > deepest.0 {
                deepest = (depth, Some((flow, id)));
            }
        }
        self.entries.insert(key, Mark::Done(deepest.0, deepest.1));
        deepest.0
    }

    /// Reports a chain of calls from `root`'s start that nests `depth` deep, at its first call.
    fn too_deep(&mut self, root: &'a Flow, depth: usize) {
        let mut chain = vec![root.id.clone()];
        let mut first = None;
        let (mut flow, mut entry) = (root, root.start);
        while let Some(Mark::Done(_, Some((at, id)))) =
            self.entries.get(&(flow.id.as_str(), entry)).copied()
        {
            first.get_or_insert((at, id));
            let NodeKind::Subflow(call) = &at.node(id).kind else {
                break;
            };
            let Some((callee, callee_entry)) = self.resolve(at, at.node(id), call, false) else {
                break;
            };
            chain.push(callee.id.clone());
            (flow, entry) = (callee, callee_entry);
        }
        if let Some((at, id)) = first
            && self.reported.insert((at.id.as_str(), id))
        {
            let node = at.node(id);
            self.error(
                at,
                node,
                node.pos,
                format!(
                    "sub-flow calls from here nest {depth} deep ({}); at most {CALL_DEPTH_LIMIT} may nest",
                    chain.join(" → ")
                ),
            );
        }
    }
}
