//! A set of flows: routing by called number, and versions kept across reloads.
//!
//! A session stays on the flow version it started with. When flows are reloaded, the previous
//! versions of each flow stay available (up to [`KEPT_VERSIONS`]) so calls in progress finish on
//! the menus they started with, while new calls get the new version.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::compile::{Diagnostic, Severity};
use crate::model::{Flow, FlowVersion};

mod calls;

/// Older versions kept per flow for sessions that started on them.
pub const KEPT_VERSIONS: usize = 8;

#[derive(Debug, Clone)]
struct Versions {
    current: Arc<Flow>,
    older: VecDeque<Arc<Flow>>,
}

/// The flows a server runs.
#[derive(Debug, Clone, Default)]
pub struct FlowSet {
    flows: HashMap<String, Versions>,
    /// Called number without `+` to flow id.
    by_number: HashMap<String, String>,
}

impl FlowSet {
    /// Builds a set; two flows with the same id or claiming the same number are errors, and so
    /// are sub-flow calls to flows or nodes that are not loaded, recursive ones, and ones nesting
    /// deeper than [`crate::state::CALL_DEPTH_LIMIT`].
    pub fn new(flows: Vec<Flow>) -> Result<Self, Vec<Diagnostic>> {
        let mut set = Self::default();
        let mut errors = Vec::new();
        let mut files: HashMap<String, String> = HashMap::new();
        for flow in flows {
            if let Some(other) = files.get(&flow.id) {
                errors.push(Diagnostic {
                    file: flow.file.clone(),
                    pos: flow.id_pos,
                    severity: Severity::Error,
                    node: None,
                    message: format!(
                        "flow id '{}' is also used by {other}; ids must be unique",
                        flow.id
                    ),
                });
                continue;
            }
            for (number, pos) in flow.numbers.iter().zip(&flow.number_pos) {
                let key = number.trim_start_matches('+').to_owned();
                if let Some(owner) = set.by_number.get(&key) {
                    errors.push(Diagnostic {
                        file: flow.file.clone(),
                        pos: *pos,
                        severity: Severity::Error,
                        node: None,
                        message: format!(
                            "number {number} is already claimed by flow '{owner}' ({}); a number routes to one flow",
                            files.get(owner).map_or("", String::as_str)
                        ),
                    });
                } else {
                    set.by_number.insert(key, flow.id.clone());
                }
            }
            files.insert(flow.id.clone(), flow.file.clone());
            set.flows.insert(
                flow.id.clone(),
                Versions {
                    current: Arc::new(flow),
                    older: VecDeque::new(),
                },
            );
        }
        let current = set
            .flows
            .iter()
            .map(|(id, v)| (id.as_str(), &*v.current))
            .collect();
        errors.extend(calls::check(&current));
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// A new set from freshly loaded `flows`, keeping this set's versions for live sessions.
    pub fn reload(&self, flows: Vec<Flow>) -> Result<Self, Vec<Diagnostic>> {
        let mut next = Self::new(flows)?;
        for (id, versions) in &mut next.flows {
            if let Some(old) = self.flows.get(id) {
                let mut older = old.older.clone();
                if old.current.version != versions.current.version {
                    older.push_front(Arc::clone(&old.current));
                }
                older.retain(|f| f.version != versions.current.version);
                older.truncate(KEPT_VERSIONS);
                versions.older = older;
            }
        }
        Ok(next)
    }

    /// The flow that answers calls to `called`.
    pub fn for_number(&self, called: &str) -> Option<&Arc<Flow>> {
        let id = self.by_number.get(called.trim_start_matches('+'))?;
        self.latest(id)
    }

    /// The current version of a flow.
    pub fn latest(&self, id: &str) -> Option<&Arc<Flow>> {
        self.flows.get(id).map(|v| &v.current)
    }

    /// A given version of a flow, if it is still kept.
    pub fn version(&self, id: &str, version: FlowVersion) -> Option<&Arc<Flow>> {
        let versions = self.flows.get(id)?;
        std::iter::once(&versions.current)
            .chain(&versions.older)
            .find(|f| f.version == version)
    }

    /// The version a session should run on: its own if kept, else the current one.
    pub fn for_session(&self, id: &str, version: FlowVersion) -> Option<&Arc<Flow>> {
        self.version(id, version).or_else(|| self.latest(id))
    }

    /// The current version of every flow, sorted by id.
    pub fn flows(&self) -> Vec<&Arc<Flow>> {
        let mut flows: Vec<_> = self.flows.values().map(|v| &v.current).collect();
        flows.sort_by(|a, b| a.id.cmp(&b.id));
        flows
    }

    /// How many flows.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}
