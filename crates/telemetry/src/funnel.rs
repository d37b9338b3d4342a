//! Per-flow figures: how callers move through each flow's nodes, where they leave, how its
//! transfers and sessions end.
//!
//! Every figure is a [`Tally`]: a Prometheus counter handle and an atomic beside it, so the
//! report API reads the same numbers the exposition shows without parsing it. Handles are
//! registered when a flow version is first seen (at load or reload, or lazily for a version
//! only an answer names), so recording a webhook formats no label and allocates nothing: the
//! trace's [`NodeId`]s index a table per flow version.
//!
//! Figures are kept per flow id and node *name*, across versions: a node that keeps its name
//! across a reload keeps its series (the labels are the same), and a version's table maps its
//! node ids onto those figures. Older versions' tables are kept while sessions may still run on
//! them (and rebuilt on demand if one comes back after being dropped).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{Counter, Recorder};
use serde::Serialize;
use switchboard_flow::{Flow, FlowVersion, NodeId, Signal, Trace, TransferResult};
use switchboard_protocol::SessionStatus;

use crate::catalogue as names;
use crate::counter;

/// Version tables kept per flow: more than the flow set keeps
/// ([`switchboard_flow::set::KEPT_VERSIONS`]), so every version a session can run on has one.
const KEPT_TABLES: usize = 2 * switchboard_flow::set::KEPT_VERSIONS;

/// Transfer results, in the order of [`transfer_index`].
pub(crate) const TRANSFER_RESULTS: [TransferResult; 4] = [
    TransferResult::Answered,
    TransferResult::Busy,
    TransferResult::NoAnswer,
    TransferResult::Failed,
];

/// Session statuses as labels, in the order of [`status_index`]: the documented ones, then
/// `OTHER` for anything else.
pub(crate) const STATUS_COUNT: usize = SessionStatus::KNOWN.len() + 1;

pub(crate) fn transfer_index(result: TransferResult) -> usize {
    match result {
        TransferResult::Answered => 0,
        TransferResult::Busy => 1,
        TransferResult::NoAnswer => 2,
        TransferResult::Failed => 3,
    }
}

pub(crate) fn status_index(status: &SessionStatus) -> usize {
    SessionStatus::KNOWN
        .iter()
        .position(|known| known == status)
        .unwrap_or(SessionStatus::KNOWN.len())
}

pub(crate) fn status_label(index: usize) -> &'static str {
    SessionStatus::KNOWN
        .get(index)
        .map_or("OTHER", SessionStatus::label)
}

/// A counted figure: the exposition's counter and the report's atomic.
#[derive(Debug)]
pub(crate) struct Tally {
    counter: Counter,
    count: AtomicU64,
}

impl Tally {
    pub(crate) fn new(counter: Counter) -> Self {
        Self {
            counter,
            count: AtomicU64::new(0),
        }
    }

    pub(crate) fn add(&self, n: u64) {
        self.counter.increment(n);
        self.count.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// The figures of one node (by name).
#[derive(Debug)]
struct NodeFigures {
    name: String,
    kind: &'static str,
    visits: Tally,
    exits: Tally,
    invalid: Tally,
    no_input: Tally,
    exhausted: Tally,
    captured: Tally,
    failed: Tally,
}

impl NodeFigures {
    fn new(recorder: &dyn Recorder, flow: &str, name: &str, kind: &'static str) -> Self {
        let tally =
            |metric| Tally::new(counter(recorder, metric, &[("flow", flow), ("node", name)]));
        Self {
            name: name.to_owned(),
            kind,
            visits: tally(names::NODE_VISITS),
            exits: tally(names::NODE_EXITS),
            invalid: tally(names::MENU_INVALID),
            no_input: tally(names::MENU_NO_INPUT),
            exhausted: tally(names::COUNTERS_EXHAUSTED),
            captured: tally(names::CAPTURES),
            failed: tally(names::NODE_FAILURES),
        }
    }
}

/// The figures of one flow id, across its versions.
#[derive(Debug)]
struct FlowFigures {
    started: Tally,
    transfers: [Tally; 4],
    outcomes: [Tally; STATUS_COUNT],
    nodes: Vec<NodeFigures>,
    by_name: HashMap<String, usize>,
    /// Per version, newest first: `NodeId` to an index into `nodes`.
    versions: VecDeque<(FlowVersion, Vec<usize>)>,
    /// The version in service (its nodes come first in a report).
    current: FlowVersion,
}

impl FlowFigures {
    fn new(recorder: &dyn Recorder, flow: &Flow) -> Self {
        let id = flow.id.as_str();
        Self {
            started: Tally::new(counter(recorder, names::SESSIONS_STARTED, &[("flow", id)])),
            transfers: TRANSFER_RESULTS.map(|r| {
                Tally::new(counter(
                    recorder,
                    names::TRANSFERS,
                    &[("flow", id), ("result", r.label())],
                ))
            }),
            outcomes: std::array::from_fn(|i| {
                Tally::new(counter(
                    recorder,
                    names::SESSIONS_ENDED,
                    &[("flow", id), ("status", status_label(i))],
                ))
            }),
            nodes: Vec::new(),
            by_name: HashMap::new(),
            versions: VecDeque::new(),
            current: flow.version,
        }
    }

    fn table(&self, version: FlowVersion) -> Option<&[usize]> {
        self.versions
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, table)| table.as_slice())
    }

    fn add_version(&mut self, recorder: &dyn Recorder, flow: &Flow) {
        if self.table(flow.version).is_some() {
            return;
        }
        let table = flow
            .nodes
            .iter()
            .map(|node| {
                *self.by_name.entry(node.name.clone()).or_insert_with(|| {
                    self.nodes.push(NodeFigures::new(
                        recorder,
                        &flow.id,
                        &node.name,
                        node.kind.name(),
                    ));
                    self.nodes.len() - 1
                })
            })
            .collect();
        self.versions.push_front((flow.version, table));
        self.versions.truncate(KEPT_TABLES);
    }

    fn node(&self, table: &[usize], id: NodeId) -> Option<&NodeFigures> {
        table.get(usize::from(id)).map(|&i| &self.nodes[i])
    }

    /// Counts visits and signals of this flow's version `table`.
    fn count(&self, table: &[usize], visits: &[NodeId], signals: &[Signal]) {
        for &id in visits {
            if let Some(node) = self.node(table, id) {
                node.visits.add(1);
            }
        }
        for signal in signals {
            match *signal {
                Signal::Invalid(id) => self.node(table, id).map(|n| n.invalid.add(1)),
                Signal::NoInput(id) => self.node(table, id).map(|n| n.no_input.add(1)),
                Signal::Exhausted(id) => self.node(table, id).map(|n| n.exhausted.add(1)),
                Signal::Captured(id) => self.node(table, id).map(|n| n.captured.add(1)),
                Signal::Failed(id) => self.node(table, id).map(|n| n.failed.add(1)),
                Signal::Transfer(_, result) => {
                    self.transfers[transfer_index(result)].add(1);
                    Some(())
                }
                // Fetch outcomes are counted by the runtime, which also times the request.
                Signal::Fetch(..) => None,
            };
        }
    }
}

/// Per-flow figures of every flow seen since the process started.
#[derive(Debug, Default)]
pub(crate) struct Funnel {
    /// Written only when a flow version is first seen; webhooks take the read side, which is
    /// held for a few atomic increments and never across an await.
    flows: RwLock<HashMap<String, FlowFigures>>,
}

impl Funnel {
    /// Registers `flow`'s version; `current` marks it as the version in service.
    pub(crate) fn register(&self, recorder: &dyn Recorder, flow: &Flow, current: bool) {
        let mut flows = self.flows.write().unwrap_or_else(|e| e.into_inner());
        let figures = flows
            .entry(flow.id.clone())
            .or_insert_with(|| FlowFigures::new(recorder, flow));
        figures.add_version(recorder, flow);
        if current {
            figures.current = flow.version;
        }
    }

    /// Counts a step's trace, and a started session if `started`. `false` if the flow's
    /// version is not registered (nothing was counted).
    pub(crate) fn record(&self, flow: &Flow, trace: &Trace, started: bool) -> bool {
        let flows = self.flows.read().unwrap_or_else(|e| e.into_inner());
        let Some(figures) = flows.get(flow.id.as_str()) else {
            return false;
        };
        let Some(table) = figures.table(flow.version) else {
            return false;
        };
        if started {
            figures.started.add(1);
        }
        if trace.flows.is_empty() {
            figures.count(table, &trace.visits, &trace.signals);
            return true;
        }
        // The step went into or out of sub-flows: each stretch counts for its own flow (a
        // version no reload announced is not counted; sub-flows are registered at load).
        let first = &trace.flows[0];
        figures.count(
            table,
            &trace.visits[..first.visit],
            &trace.signals[..first.signal],
        );
        for (i, change) in trace.flows.iter().enumerate() {
            let (visits_end, signals_end) = trace
                .flows
                .get(i + 1)
                .map_or((trace.visits.len(), trace.signals.len()), |c| {
                    (c.visit, c.signal)
                });
            if let Some(figures) = flows.get(change.flow.as_str())
                && let Some(table) = figures.table(change.version)
            {
                figures.count(
                    table,
                    &trace.visits[change.visit..visits_end],
                    &trace.signals[change.signal..signals_end],
                );
            }
        }
        true
    }

    /// Counts a session's end for `flow` at `node`. `false` if the flow was never registered.
    pub(crate) fn record_ended(&self, flow: &str, node: Option<&str>, status: usize) -> bool {
        let flows = self.flows.read().unwrap_or_else(|e| e.into_inner());
        let Some(figures) = flows.get(flow) else {
            return false;
        };
        figures.outcomes[status].add(1);
        if let Some(&i) = node.and_then(|name| figures.by_name.get(name)) {
            figures.nodes[i].exits.add(1);
        }
        true
    }

    /// The report of one flow.
    pub(crate) fn report(&self, flow: &str, since: String) -> Option<FlowReport> {
        let flows = self.flows.read().unwrap_or_else(|e| e.into_inner());
        let figures = flows.get(flow)?;
        let current = figures.table(figures.current).unwrap_or_default();
        let older = (0..figures.nodes.len()).filter(|i| !current.contains(i));
        let nodes = current
            .iter()
            .copied()
            .chain(older)
            .map(|i| {
                let node = &figures.nodes[i];
                NodeReport {
                    node: node.name.clone(),
                    kind: node.kind,
                    current: current.contains(&i),
                    visits: node.visits.get(),
                    exits: node.exits.get(),
                    invalid: node.invalid.get(),
                    no_input: node.no_input.get(),
                    exhausted: node.exhausted.get(),
                    captured: node.captured.get(),
                    failed: node.failed.get(),
                }
            })
            .collect();
        Some(FlowReport {
            flow: flow.to_owned(),
            version: figures.current.to_string(),
            since,
            sessions_started: figures.started.get(),
            sessions_ended: figures.outcomes.iter().map(Tally::get).sum(),
            outcomes: (0..STATUS_COUNT)
                .map(|i| (status_label(i), figures.outcomes[i].get()))
                .collect(),
            transfers: TRANSFER_RESULTS
                .iter()
                .map(|&r| (r.label(), figures.transfers[transfer_index(r)].get()))
                .collect(),
            nodes,
        })
    }
}

/// What `GET /v1/flows/{id}/report` answers: one flow's figures since the process started.
/// Each replica reports its own calls; sum the replicas (or use the Prometheus series) for the
/// whole fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowReport {
    /// The flow's id.
    pub flow: String,
    /// The version in service (8 hex digits).
    pub version: String,
    /// When counting started (RFC 3339): the process start.
    pub since: String,
    /// Calls that started this flow.
    pub sessions_started: u64,
    /// Session summaries received for this flow.
    pub sessions_ended: u64,
    /// Session summaries by final status (`COMPLETED`, `BUSY`, ..., `OTHER`).
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Transfers by result (`answered`, `busy`, `no_answer`, `failed`).
    pub transfers: BTreeMap<&'static str, u64>,
    /// The nodes of the version in service in file order, then nodes only older versions had.
    pub nodes: Vec<NodeReport>,
}

/// One node's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    /// The node's name.
    pub node: String,
    /// Its kind (`menu`, `capture`, `say`, ...).
    pub kind: &'static str,
    /// Whether the version in service has it.
    pub current: bool,
    /// Times a caller entered it.
    pub visits: u64,
    /// Calls that ended while here (drop-off).
    pub exits: u64,
    /// Wrong keys or refused entries.
    pub invalid: u64,
    /// Silences.
    pub no_input: u64,
    /// Retry counters that ran out here.
    pub exhausted: u64,
    /// Good entries (captures).
    pub captured: u64,
    /// Steps that could not continue here and apologised.
    pub failed: u64,
}
