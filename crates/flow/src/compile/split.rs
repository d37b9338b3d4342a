//! Compiling a `split` node: `split: { weights: { a_node: 70, b_node: 30 } }`.

use std::collections::HashMap;

use super::Compiler;
use crate::model::{NodeId, Split};
use crate::yaml::{self, Value};

/// The largest weight of one branch (and so, with [`MAX_BRANCHES`], the sum fits easily).
pub(super) const MAX_WEIGHT: u64 = 1_000_000;
/// Most branches of one split.
pub(super) const MAX_BRANCHES: usize = 64;

impl Compiler<'_> {
    pub(super) fn split(
        &mut self,
        body: &yaml::Node,
        index: &HashMap<String, NodeId>,
    ) -> Option<Split> {
        let entries = self.mapping(body, "split", &["weights"])?;
        let Some((_, weights)) = entries.iter().find(|(k, _)| *k == "weights") else {
            self.error(
                body.pos,
                "split needs 'weights', e.g. `weights: { offer_a: 70, offer_b: 30 }`",
            );
            return None;
        };
        let Value::Map(pairs) = &weights.value else {
            self.error(
                weights.pos,
                format!(
                    "split.weights must be a mapping of targets to weights, got {}",
                    weights.kind()
                ),
            );
            return None;
        };
        let mut branches = Vec::with_capacity(pairs.len());
        let mut ok = true;
        for (key, value) in pairs {
            let target = self.target(key, "a split branch", index);
            let weight = match value.value {
                Value::Int(i) if i > 0 && i.unsigned_abs() <= MAX_WEIGHT => {
                    Some(i.unsigned_abs() as u32)
                }
                _ => {
                    self.error(
                        value.pos,
                        format!(
                            "the weight of a split branch must be a whole number 1..={MAX_WEIGHT}, got {}",
                            yaml_text(value)
                        ),
                    );
                    None
                }
            };
            match (target, weight) {
                (Some(target), Some(weight)) => branches.push((weight, target)),
                _ => ok = false,
            }
        }
        if pairs.len() < 2 {
            self.error(
                weights.pos,
                "a split needs at least two branches; with one, go to it directly",
            );
            return None;
        }
        if pairs.len() > MAX_BRANCHES {
            self.error(
                weights.pos,
                format!("a split has at most {MAX_BRANCHES} branches"),
            );
            return None;
        }
        ok.then_some(())?;
        let total = branches.iter().map(|(w, _)| w).sum();
        Some(Split { branches, total })
    }
}

fn yaml_text(node: &yaml::Node) -> String {
    match &node.value {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        _ => node.kind().to_string(),
    }
}
