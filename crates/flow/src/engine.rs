//! The IVR state machine: `step(&Flow, &mut SessionState, Event, now) -> Reply`.
//!
//! `step` is pure: no I/O, no clock (time is an argument), no randomness. It batches
//! consecutive non-blocking nodes into one callflow (a callflow ends at the first
//! `sayAndCapture`, `makeCall` or `hangup`), so a caller waits for one webhook round trip per
//! key press. Each answer carries a `clientActionId` naming flow, version, node and sequence
//! number; an event echoing an older one is stale and gets the previous answer again, with no
//! state change.
//!
//! A step that reaches a `fetch` node cannot finish on its own: [`advance`] then returns
//! [`Step::Fetch`], the request and the step so far; the runtime performs the request and calls
//! [`resume`] with the outcome, which continues from the node's target (and may stop at another
//! fetch). [`step`] is [`advance`] for callers with no HTTP client: every fetch fails as if the
//! backend were down. A flow without fetch nodes never sees [`Step::Fetch`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use switchboard_protocol::callflow::MAX_ACTIONS;
use switchboard_protocol::{
    Action, Callflow, MakeCall, Msisdn, PlayFile, Say, SayAndCapture, Text,
};

use crate::fetch::{FetchFailure, FetchOutcome, FetchRequest, FetchResult};
use crate::model::{
    Capture, Facts, Flow, FlowVersion, Menu, NodeId, NodeKind, Prompt, Speech, SubflowNode, Target,
};
use crate::state::{ActionId, Awaiting, CALL_DEPTH_LIMIT, Frame, SessionState};
use crate::template::{Scope, Template};

/// Most nodes one step may pass through; more means a loop of says, and the call is ended.
const MAX_HOPS: usize = 64;

/// Most fetches one step may do; a flow that needs more in one answer is a loop.
pub const MAX_FETCHES: u8 = 8;

/// Said when a flow cannot continue (a loop, or a number that is not a number after templating
/// with no `on_error`).
pub const APOLOGY: &str = "We are sorry, something went wrong. Please call again later. Goodbye.";

/// What happened on the call, as far as the flow is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// `CALL_RECEIVED`: the call starts.
    Start,
    /// `ACTION_COMPLETED`: the last callflow finished.
    Completed {
        /// The echoed `clientActionId`.
        action_id: Option<&'a str>,
        /// Digits entered; `None` for silence.
        dtmf: Option<&'a str>,
        /// SIP code of the leg (the transfer's result after a `makeCall`).
        sip_code: Option<u16>,
    },
}

/// The answer to an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The callflow to answer with (the same one the state keeps as its last answer).
    pub callflow: Arc<Callflow>,
    /// Whether the state moved.
    pub disposition: Disposition,
    /// What the step did, for metrics.
    pub trace: Trace,
}

/// Whether a step moved the session on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The event was new; the state advanced.
    Advanced,
    /// The event echoed an earlier answer (a duplicate or late delivery): the previous answer is
    /// repeated and nothing changed.
    Stale,
}

/// How a transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferResult {
    /// Answered (2xx, or no code).
    Answered,
    /// 486 or 600.
    Busy,
    /// 408, 480 or 487.
    NoAnswer,
    /// Any other failure.
    Failed,
}

impl TransferResult {
    /// Classifies a SIP code.
    pub fn from_sip(code: Option<u16>) -> Self {
        match code {
            None | Some(100..=299) => Self::Answered,
            Some(486 | 600) => Self::Busy,
            Some(408 | 480 | 487) => Self::NoAnswer,
            Some(_) => Self::Failed,
        }
    }

    /// A metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Failed => "failed",
        }
    }
}

/// Something worth counting that happened at a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A key that is not an option, or an entry a capture refused.
    Invalid(NodeId),
    /// Silence.
    NoInput(NodeId),
    /// A counter ran out; the call went to `on_fail`.
    Exhausted(NodeId),
    /// A capture stored a good entry.
    Captured(NodeId),
    /// A transfer ended.
    Transfer(NodeId, TransferResult),
    /// The flow could not continue at this node and apologised.
    Failed(NodeId),
    /// A fetch node's request ended.
    Fetch(NodeId, FetchResult),
}

/// What a step asks for: an answer, or a request to perform first.
#[derive(Debug)]
pub enum Step {
    /// The step is done.
    Reply(Reply),
    /// Perform [`Pending::request`], then call [`resume`] with its outcome.
    Fetch(Box<Pending>),
}

/// A step stopped at a fetch node: the request, and what the step did before it.
#[derive(Debug)]
pub struct Pending {
    /// The fetch node.
    pub node: NodeId,
    /// What to ask the backend.
    pub request: FetchRequest,
    actions: Vec<Action>,
    trace: Trace,
    fetches: u8,
}

/// What one step did: the nodes it entered, in order, and the signals.
///
/// Node ids are those of the flow the step started on, up to the first entry of
/// [`Trace::flows`]; from each entry on, those of the flow it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Nodes entered.
    pub visits: Vec<NodeId>,
    /// Signals raised.
    pub signals: Vec<Signal>,
    /// Where the step went into or came back from a sub-flow (empty in a step that did not).
    pub flows: Vec<FlowChange>,
}

impl Trace {
    /// The nodes entered, each with its flow: `flow` (the one the step started on), or the
    /// sub-flows and callers `flows` resolves. Nodes of a flow `flows` no longer has are left
    /// out.
    pub fn visited<'f>(
        &'f self,
        flow: &'f Flow,
        flows: &'f dyn Flows,
    ) -> impl Iterator<Item = (&'f Flow, NodeId)> + 'f {
        let mut current = Some(flow);
        let mut changes = self.flows.iter().peekable();
        self.visits.iter().enumerate().filter_map(move |(i, &id)| {
            while let Some(change) = changes.next_if(|c| c.visit <= i) {
                current = flows.returned_to(&change.flow, change.version);
            }
            current
                .filter(|f| usize::from(id) < f.nodes.len())
                .map(|f| (f, id))
        })
    }
}

/// A step moving into or out of a sub-flow: from `visits[visit..]` and `signals[signal..]` on,
/// node ids are those of flow `flow` at `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowChange {
    /// The first visit in the new flow.
    pub visit: usize,
    /// The first signal in the new flow.
    pub signal: usize,
    /// The flow's id.
    pub flow: String,
    /// Its version.
    pub version: FlowVersion,
}

/// The flows a step may go into (sub-flows) and back to (their callers).
pub trait Flows {
    /// The version of flow `id` that a sub-flow call enters: the current one.
    fn entered(&self, id: &str) -> Option<&Flow>;
    /// The version of flow `id` that a sub-flow returns to: `version` if still kept, else the
    /// current one.
    fn returned_to(&self, id: &str, version: FlowVersion) -> Option<&Flow>;
}

/// No other flows: a `subflow` node cannot run (the call apologises and ends).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFlows;

impl Flows for NoFlows {
    fn entered(&self, _: &str) -> Option<&Flow> {
        None
    }

    fn returned_to(&self, _: &str, _: FlowVersion) -> Option<&Flow> {
        None
    }
}

impl Flows for crate::FlowSet {
    fn entered(&self, id: &str) -> Option<&Flow> {
        self.latest(id).map(|f| &**f)
    }

    fn returned_to(&self, id: &str, version: FlowVersion) -> Option<&Flow> {
        self.for_session(id, version).map(|f| &**f)
    }
}

/// Runs one step of a session; every fetch node on the way fails as if its backend were down
/// (`on_error`). See the module documentation. A flow with `subflow` nodes needs [`step_in`].
pub fn step(flow: &Flow, state: &mut SessionState, event: Event<'_>, now: DateTime<Utc>) -> Reply {
    step_in(&NoFlows, flow, state, event, now)
}

/// [`step`] of a session whose flow is `flow` (the one [`SessionState::flow`] names), with
/// `flows` to enter sub-flows and return from them.
pub fn step_in(
    flows: &dyn Flows,
    flow: &Flow,
    state: &mut SessionState,
    event: Event<'_>,
    now: DateTime<Utc>,
) -> Reply {
    let mut next = advance_in(flows, flow, state, event, now);
    loop {
        match next {
            Step::Reply(reply) => return reply,
            Step::Fetch(pending) => {
                let down = FetchOutcome::Failed(FetchFailure::Unreachable);
                next = resume_in(flows, flow, state, pending, down, now);
            }
        }
    }
}

/// Runs one step of a session, stopping at a fetch node. See the module documentation.
pub fn advance(
    flow: &Flow,
    state: &mut SessionState,
    event: Event<'_>,
    now: DateTime<Utc>,
) -> Step {
    advance_in(&NoFlows, flow, state, event, now)
}

/// [`advance`] with `flows` to enter sub-flows and return from them.
pub fn advance_in<'a>(
    flows: &'a dyn Flows,
    flow: &'a Flow,
    state: &mut SessionState,
    event: Event<'_>,
    now: DateTime<Utc>,
) -> Step {
    let mut exec = Exec {
        flows,
        flow,
        state,
        now,
        actions: Vec::with_capacity(4),
        trace: Trace::default(),
        fetching: None,
        fetches: 0,
    };
    match event {
        Event::Start => {
            if exec.state.seq > 0 {
                return Step::Reply(exec.stale());
            }
            exec.goto(Target::Node(flow.start));
        }
        Event::Completed {
            action_id,
            dtmf,
            sip_code,
        } => {
            if let Some(seq) = action_id.and_then(ActionId::parse).map(|id| id.seq)
                && seq < exec.state.seq
            {
                return Step::Reply(exec.stale());
            }
            if exec.state.seq == 0 {
                // A completion before any answer: only a misdirected event can do this.
                return Step::Reply(exec.stale());
            }
            exec.completed(dtmf.filter(|d| !d.is_empty()), sip_code);
        }
    }
    exec.pause_or_finish()
}

/// Continues a step stopped at a fetch node with the request's `outcome`.
pub fn resume(
    flow: &Flow,
    state: &mut SessionState,
    pending: Box<Pending>,
    outcome: FetchOutcome<'_>,
    now: DateTime<Utc>,
) -> Step {
    resume_in(&NoFlows, flow, state, pending, outcome, now)
}

/// [`resume`] with `flows` to enter sub-flows and return from them. The fetch node must be one
/// of `flow` (the checker keeps fetch nodes out of flows that call or are called as sub-flows).
// Taken back as [`Step::Fetch`] handed it out, so callers need not unbox it.
#[allow(clippy::boxed_local)]
pub fn resume_in<'a>(
    flows: &'a dyn Flows,
    flow: &'a Flow,
    state: &mut SessionState,
    pending: Box<Pending>,
    outcome: FetchOutcome<'_>,
    now: DateTime<Utc>,
) -> Step {
    let Pending {
        node,
        actions,
        trace,
        fetches,
        ..
    } = *pending;
    let mut exec = Exec {
        flows,
        flow,
        state,
        now,
        actions,
        trace,
        fetching: None,
        fetches,
    };
    let kind = flow.nodes.get(usize::from(node)).map(|n| &n.kind);
    let Some(NodeKind::Fetch(fetch)) = kind else {
        // Only a caller mixing up flows gets here.
        exec.trace.signals.push(crate::Signal::Failed(node));
        exec.apologise();
        return Step::Reply(exec.finish());
    };
    let state = &mut *exec.state;
    let caller = state.caller.as_str();
    let (target, result) = fetch.settle(outcome, &mut state.vars, |condition, vars| {
        condition.holds(&Facts { now, caller, vars })
    });
    exec.trace.signals.push(crate::Signal::Fetch(node, result));
    exec.goto(target);
    exec.pause_or_finish()
}

struct Exec<'a> {
    flows: &'a dyn Flows,
    flow: &'a Flow,
    state: &'a mut SessionState,
    now: DateTime<Utc>,
    actions: Vec<Action>,
    trace: Trace,
    /// Set when `goto` stopped at a fetch node.
    fetching: Option<(NodeId, FetchRequest)>,
    /// Fetches so far in this step.
    fetches: u8,
}

impl<'a> Exec<'a> {
    fn pause_or_finish(mut self) -> Step {
        match self.fetching.take() {
            Some((node, request)) => Step::Fetch(Box::new(Pending {
                node,
                request,
                actions: self.actions,
                trace: self.trace,
                fetches: self.fetches,
            })),
            None => Step::Reply(self.finish()),
        }
    }

    fn stale(self) -> Reply {
        let callflow = self.state.last_reply.clone().unwrap_or_else(|| {
            Arc::new(Callflow {
                client_action_id: None,
                actions: vec![Action::Hangup],
            })
        });
        Reply {
            callflow,
            disposition: Disposition::Stale,
            trace: self.trace,
        }
    }

    fn finish(mut self) -> Reply {
        if self.actions.is_empty() {
            self.actions.push(Action::Hangup);
            self.state.awaiting = Awaiting::Nothing;
        }
        // Saturating: `seq` never wraps to 0, which would make every later event look stale
        // (resumed sessions start at most at `ActionId::MAX_SEQ`, far from the end).
        self.state.seq = self.state.seq.saturating_add(1);
        // A session whose version was dropped runs on the current one from now on: record it,
        // so its ids say which version answered and a later reload cannot switch it back.
        self.state.version = self.flow.version;
        // The answer lives on in the session as its last one: keep no spare capacity (three
        // unused actions are ~500 bytes per live call).
        let mut actions = self.actions;
        actions.shrink_to_fit();
        let callflow = Arc::new(Callflow {
            client_action_id: Some(self.state.action_id()),
            actions,
        });
        self.state.last_reply = Some(Arc::clone(&callflow));
        Reply {
            callflow,
            disposition: Disposition::Advanced,
            trace: self.trace,
        }
    }

    fn current(&self) -> Option<NodeId> {
        self.flow.node_id(&self.state.node)
    }

    fn completed(&mut self, dtmf: Option<&str>, sip_code: Option<u16>) {
        let Some(id) = self.current() else {
            // The state names a node the flow no longer has (only possible after a reload
            // that dropped the session's version): start over rather than fail the call.
            self.goto(Target::Node(self.flow.start));
            return;
        };
        let flow = self.flow;
        match (self.state.awaiting, &flow.node(id).kind) {
            (Awaiting::Input, NodeKind::Menu(menu)) => self.menu_input(id, menu, dtmf),
            (Awaiting::Input, NodeKind::Capture(capture)) => self.capture_input(id, capture, dtmf),
            (Awaiting::Transfer, NodeKind::Transfer(transfer)) => {
                let result = TransferResult::from_sip(sip_code);
                self.trace.signals.push(crate::Signal::Transfer(id, result));
                let target = match result {
                    TransferResult::Answered => transfer.next,
                    TransferResult::Busy => transfer.on_busy,
                    TransferResult::NoAnswer => transfer.on_no_answer,
                    TransferResult::Failed => transfer.on_error,
                };
                self.goto(target);
            }
            (Awaiting::Continue, _) => self.goto(Target::Node(id)),
            (Awaiting::Nothing, _) => self.actions.push(Action::Hangup),
            // The state and the node disagree (the node changed kind in a reload): re-enter it.
            _ => self.goto(Target::Node(id)),
        }
    }

    fn menu_input(&mut self, id: NodeId, menu: &Menu, dtmf: Option<&str>) {
        match dtmf {
            Some(digits) => {
                self.state.digits.clear();
                self.state.digits.push_str(digits);
                if let Some(target) = menu.option(digits) {
                    // `back` returns to the menu before this one, and an option that repeats
                    // this menu must not make it its own parent.
                    if target != Target::Back && target != Target::Node(id) {
                        let name = &self.flow.node(id).name;
                        self.state.push_menu(name);
                    }
                    self.state.reset_counters();
                    self.goto(target);
                    return;
                }
                self.trace.signals.push(crate::Signal::Invalid(id));
                self.state.invalid = self.state.invalid.saturating_add(1);
                if self.state.invalid >= menu.max_invalid {
                    self.exhausted(id, menu.on_fail);
                } else {
                    self.say_template(menu.invalid.as_ref(), &menu.speech, None);
                    self.prompt_menu(id, menu);
                }
            }
            None => {
                self.trace.signals.push(crate::Signal::NoInput(id));
                self.state.no_input = self.state.no_input.saturating_add(1);
                if self.state.no_input >= menu.max_no_input {
                    self.exhausted(id, menu.on_fail);
                } else {
                    self.say_template(menu.no_input.as_ref(), &menu.speech, None);
                    self.prompt_menu(id, menu);
                }
            }
        }
    }

    fn capture_input(&mut self, id: NodeId, capture: &Capture, dtmf: Option<&str>) {
        if let Some(digits) = dtmf
            && capture.accepts(digits)
        {
            self.trace.signals.push(crate::Signal::Captured(id));
            self.state.digits.clear();
            self.state.digits.push_str(digits);
            self.state
                .vars
                .insert(capture.var.clone(), digits.to_owned());
            self.state.reset_counters();
            self.goto(capture.next);
            return;
        }
        self.trace.signals.push(match dtmf {
            Some(_) => crate::Signal::Invalid(id),
            None => crate::Signal::NoInput(id),
        });
        self.state.attempts = self.state.attempts.saturating_add(1);
        if self.state.attempts >= capture.max_attempts {
            self.exhausted(id, capture.on_fail);
        } else {
            if dtmf.is_some() {
                self.say_template(capture.invalid.as_ref(), &capture.speech, None);
            }
            self.prompt_capture(id, capture);
        }
    }

    fn exhausted(&mut self, id: NodeId, on_fail: Target) {
        self.trace.signals.push(crate::Signal::Exhausted(id));
        self.state.reset_counters();
        self.goto(on_fail);
    }

    /// Follows transitions from `target` until a node that waits for the platform.
    fn goto(&mut self, mut target: Target) {
        for _ in 0..MAX_HOPS {
            let id = match target {
                Target::Hangup => {
                    self.actions.push(Action::Hangup);
                    self.state.awaiting = Awaiting::Nothing;
                    return;
                }
                Target::Back => {
                    let back = self.state.menus.pop();
                    match back.and_then(|name| self.flow.node_id(&name)) {
                        Some(id) => id,
                        None => self.flow.start,
                    }
                }
                Target::Return => match self.return_from_subflow() {
                    Some(next) => {
                        target = next;
                        continue;
                    }
                    None => {
                        self.actions.push(Action::Hangup);
                        self.state.awaiting = Awaiting::Nothing;
                        return;
                    }
                },
                Target::Node(id) => id,
            };
            let flow = self.flow;
            let node = flow.node(id);
            let emits = matches!(node.kind, NodeKind::Say(_) | NodeKind::Play(_));
            if emits && self.actions.len() + 2 > MAX_ACTIONS {
                // The callflow is full: end it here and continue at this node when the
                // platform reports that it has played what we sent.
                self.state.node.clone_from(&node.name);
                self.state.awaiting = Awaiting::Continue;
                return;
            }
            self.trace.visits.push(id);
            self.state.visit(&node.name);
            match &node.kind {
                NodeKind::Say(say) => {
                    self.say_template(Some(&say.text), &say.speech, say.repeat);
                    target = say.next;
                }
                NodeKind::Play(play) => {
                    self.actions.push(Action::PlayFile(PlayFile {
                        file_url: play.url.clone(),
                        repetition: play.repeat,
                    }));
                    target = play.next;
                }
                NodeKind::Set(set) => {
                    for (name, template) in &set.vars {
                        let value = template.render(&scope(self.state));
                        self.state.vars.insert(name.clone(), value);
                    }
                    target = set.next;
                }
                NodeKind::Branch(branch) => {
                    let facts = Facts {
                        now: self.now,
                        caller: &self.state.caller,
                        vars: &self.state.vars,
                    };
                    target = branch
                        .rules
                        .iter()
                        .find(|(condition, _)| condition.holds(&facts))
                        .map_or(branch.default, |(_, t)| *t);
                }
                NodeKind::Split(split) => {
                    target = split.choose(&flow.id, &node.name, &self.state.session);
                }
                NodeKind::Subflow(call) => match self.enter_subflow(id, call) {
                    Some(entry) => target = entry,
                    None => {
                        self.trace.signals.push(crate::Signal::Failed(id));
                        self.apologise();
                        return;
                    }
                },
                NodeKind::Fetch(fetch) => {
                    if self.fetches >= MAX_FETCHES {
                        self.trace.signals.push(crate::Signal::Failed(id));
                        self.apologise();
                        return;
                    }
                    self.fetches += 1;
                    // The same on every replica that runs this step: seq, count, node.
                    let key = format!("{}-{}-{}", self.state.seq, self.fetches, node.name);
                    self.fetching = Some((id, fetch.request(&scope(self.state), key)));
                    return;
                }
                NodeKind::Menu(menu) => {
                    self.state.reset_counters();
                    self.prompt_menu(id, menu);
                    return;
                }
                NodeKind::Capture(capture) => {
                    self.state.reset_counters();
                    self.prompt_capture(id, capture);
                    return;
                }
                NodeKind::Transfer(transfer) => {
                    let scope = scope(self.state);
                    let to = Msisdn::new(transfer.to.render(&scope));
                    let from = match &transfer.from {
                        Some(from) => Msisdn::new(from.render(&scope)),
                        None => Msisdn::new(self.state.called.clone()),
                    };
                    match (to, from) {
                        (Ok(destination), Ok(source)) => {
                            self.actions.push(Action::MakeCall(MakeCall {
                                source,
                                destination,
                                call_recording: transfer.record.then_some(true),
                            }));
                            self.state.node.clone_from(&node.name);
                            self.state.awaiting = Awaiting::Transfer;
                            return;
                        }
                        _ => {
                            self.trace.signals.push(crate::Signal::Failed(id));
                            target = transfer.on_error;
                            if target == transfer.next && transfer.next == Target::Hangup {
                                self.apologise();
                                return;
                            }
                        }
                    }
                }
            }
        }
        // A loop of says/plays longer than MAX_HOPS within one answer cannot happen (the
        // callflow fills first), so this is a loop through set/branch nodes the checker missed.
        if let Some(id) = self.current() {
            self.trace.signals.push(crate::Signal::Failed(id));
        }
        self.apologise();
    }

    /// Enters the sub-flow `call` (at node `id` of the current flow) names: pushes the frame,
    /// switches flows, and gives its entry node. `None` if it cannot: the flow or node is not
    /// loaded (the flow set checks both at load, so only a step without one gets here) or calls
    /// nest [`CALL_DEPTH_LIMIT`] deep.
    fn enter_subflow(&mut self, id: NodeId, call: &SubflowNode) -> Option<Target> {
        if self.state.calls.len() >= CALL_DEPTH_LIMIT {
            return None;
        }
        let callee = self.flows.entered(&call.flow)?;
        let entry = match &call.start {
            Some(name) => callee.node_id(name)?,
            None => callee.start,
        };
        self.state.calls.push(Frame {
            flow: std::mem::replace(&mut self.state.flow, callee.id.clone()),
            version: self.flow.version,
            node: self.flow.node(id).name.clone(),
            // `back` in the sub-flow stays in it; the caller's menus wait for the return.
            menus: std::mem::take(&mut self.state.menus),
        });
        self.switch_to(callee);
        Some(Target::Node(entry))
    }

    /// Pops the innermost sub-flow call and gives the calling node's `next`, in the caller.
    /// `None` outside a sub-flow (or if the caller is no longer loaded): the call ends.
    fn return_from_subflow(&mut self) -> Option<Target> {
        let frame = self.state.calls.pop()?;
        let caller = self.flows.returned_to(&frame.flow, frame.version)?;
        self.state.flow = frame.flow;
        self.state.menus = frame.menus;
        self.switch_to(caller);
        // The calling node may be gone if the caller's version was dropped: start it over,
        // as a step does for any node a reload removed.
        let next = caller
            .node_id(&frame.node)
            .and_then(|id| match &caller.node(id).kind {
                NodeKind::Subflow(call) => Some(call.next),
                _ => None,
            });
        Some(next.unwrap_or(Target::Node(caller.start)))
    }

    fn switch_to(&mut self, flow: &'a Flow) {
        self.flow = flow;
        self.state.version = flow.version;
        self.trace.flows.push(FlowChange {
            visit: self.trace.visits.len(),
            signal: self.trace.signals.len(),
            flow: flow.id.clone(),
            version: flow.version,
        });
    }

    fn apologise(&mut self) {
        self.actions.truncate(MAX_ACTIONS - 2);
        if let Ok(text) = Text::new(APOLOGY) {
            self.actions
                .push(Action::Say(Say::new(text, self.flow.speech.voice.clone())));
        }
        self.actions.push(Action::Hangup);
        self.state.awaiting = Awaiting::Nothing;
    }

    /// The index of the caller's language (0 in a flow with one).
    fn language(&self) -> usize {
        self.flow
            .language
            .as_ref()
            .map_or(0, |l| l.current(&self.state.vars))
    }

    fn say_template(
        &mut self,
        template: Option<&Prompt>,
        speech: &Speech,
        repetition: Option<switchboard_protocol::Repetition>,
    ) {
        let Some(template) = template else { return };
        let language = self.language();
        // Text that renders empty (an unset variable on its own) is skipped, not spoken.
        if let Some(text) = render_text(template.get(language), self.state) {
            let (voice, speed) = speech.in_language(language);
            self.actions.push(Action::Say(Say {
                text,
                voice_profile: voice.clone(),
                repetition,
                speed,
            }));
        }
    }

    fn prompt_menu(&mut self, id: NodeId, menu: &Menu) {
        let attempt = self.state.invalid + self.state.no_input;
        let template = match &menu.reprompt {
            Some(reprompt) if attempt > 0 => reprompt,
            _ => &menu.prompt,
        };
        let longest = menu.options.iter().map(|(k, _)| k.len()).max().unwrap_or(1);
        let uniform = menu.options.iter().all(|(k, _)| k.len() == longest);
        let has_hash = menu.options.iter().any(|(k, _)| k.contains('#'));
        // Same-length keys end input as soon as enough are pressed; `#` as an option must not
        // end input. Otherwise `#` ends a shorter key.
        let complete_on_hash = !(uniform || has_hash);
        let language = self.language();
        let capture = build_capture(
            render_text(template.get(language), self.state),
            menu.speech.in_language(language),
            1,
            longest as u64,
            complete_on_hash,
            menu.digit_timeout_ms,
            menu.timeout_ms,
        );
        self.await_input(id, capture);
    }

    fn prompt_capture(&mut self, id: NodeId, capture: &Capture) {
        let template = match &capture.reprompt {
            Some(reprompt) if self.state.attempts > 0 => reprompt,
            _ => &capture.prompt,
        };
        let language = self.language();
        let action = build_capture(
            render_text(template.get(language), self.state),
            capture.speech.in_language(language),
            capture.min_digits.get().into(),
            capture.max_digits.get().into(),
            capture.finish_on_hash,
            capture.digit_timeout_ms,
            capture.timeout_ms,
        );
        self.await_input(id, action);
    }

    fn await_input(&mut self, id: NodeId, capture: Option<SayAndCapture>) {
        match capture {
            Some(capture) => {
                self.actions.push(Action::SayAndCapture(capture));
                self.state.node.clone_from(&self.flow.node(id).name);
                self.state.awaiting = Awaiting::Input;
            }
            None => {
                self.trace.signals.push(crate::Signal::Failed(id));
                self.apologise();
            }
        }
    }
}

fn scope(state: &SessionState) -> Scope<'_> {
    Scope {
        caller: &state.caller,
        called: &state.called,
        digits: &state.digits,
        vars: &state.vars,
    }
}

fn render_text(template: &Template, state: &SessionState) -> Option<Text> {
    template.speak(&scope(state))
}

/// A `sayAndCapture` with our settings: the platform tries once and we count retries.
fn build_capture(
    prompt: Option<Text>,
    (voice, speed): (
        &switchboard_protocol::VoiceProfile,
        Option<switchboard_protocol::Speed>,
    ),
    min: u64,
    max: u64,
    complete_on_hash: bool,
    digit_timeout_ms: Option<u32>,
    timeout_ms: u32,
) -> Option<SayAndCapture> {
    use switchboard_protocol::DigitCount;
    let mut capture = SayAndCapture::new(prompt?, voice.clone());
    if let Some(speed) = speed {
        capture = capture.speed(speed);
    }
    capture
        .digits(Some(DigitCount::new(min).ok()?), DigitCount::new(max).ok()?)
        .ok()?
        .complete_on_hash(complete_on_hash)
        .ok()?
        .timeouts(digit_timeout_ms, timeout_ms)
        .ok()?
        .tries(1)
        .ok()
}
