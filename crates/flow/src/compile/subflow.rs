//! Compiling a `subflow` node: `subflow: { flow: billing, start: pin }` and `next`.
//!
//! Only the node's own shape is checked here; whether the flow and its node exist, and whether
//! calls nest too deep or recurse, is checked by [`crate::FlowSet::new`], which knows every
//! flow.

use super::{Compiler, MAX_FLOW_ID, MAX_NODE_NAME, is_name};
use crate::model::{SubflowNode, Target};
use crate::yaml;

impl Compiler<'_> {
    pub(super) fn subflow(
        &mut self,
        body: &yaml::Node,
        next: Option<Target>,
    ) -> Option<SubflowNode> {
        let entries = self.mapping(body, "subflow", &["flow", "start"])?;
        let get = |key: &str| super::entry(&entries, key);
        let flow = match get("flow") {
            Some(n) => self.string(n, "subflow.flow").and_then(|id| {
                if is_name(id, MAX_FLOW_ID) {
                    Some((id.to_owned(), n.pos))
                } else {
                    self.error(n.pos, format!("subflow.flow {id:?} is not a flow id"));
                    None
                }
            }),
            None => {
                self.error(
                    body.pos,
                    "subflow needs 'flow', the id of the flow to run, e.g. `flow: billing`",
                );
                None
            }
        };
        let start = match get("start") {
            Some(n) => self.string(n, "subflow.start").and_then(|name| {
                if is_name(name, MAX_NODE_NAME) {
                    Some(Some((name.to_owned(), n.pos)))
                } else {
                    self.error(n.pos, format!("subflow.start {name:?} is not a node name"));
                    None
                }
            }),
            None => Some(None),
        };
        let ((flow, flow_pos), start, next) = (flow?, start?, next?);
        let (start, start_pos) = match start {
            Some((name, pos)) => (Some(name), pos),
            None => (None, flow_pos),
        };
        Some(SubflowNode {
            flow,
            flow_pos,
            start,
            start_pos,
            next,
        })
    }
}
