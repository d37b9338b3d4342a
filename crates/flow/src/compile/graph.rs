//! Whole-graph checks, once every node has compiled.

use std::collections::HashSet;

use super::{Compiler, Severity};
use crate::model::{Flow, NodeId, NodeKind, Target};

impl Compiler<'_> {
    /// Whole-graph checks: reachability (a warning) and loops that would never speak.
    pub(super) fn check_graph(&mut self, flow: &Flow) {
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
