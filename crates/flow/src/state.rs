//! A session's state: small, plain data that the runtime keeps in an actor and a store.
//!
//! It holds everything [`crate::step`] needs to continue a call on any replica: the flow and its
//! version, where the call is, the retry counters, the variables, a bounded path, the menus
//! `back` returns to, a sequence number, and the last answer (so a stale or duplicate event is
//! answered identically without advancing anything).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchboard_protocol::compact::{DecodeError, Reader, Writer};
use switchboard_protocol::{Callflow, ClientActionId};

use crate::model::{Flow, FlowVersion, NodeKind};

/// Most node names kept in [`SessionState::path`].
pub const PATH_LIMIT: usize = 32;
/// Most menus kept for `back`.
pub const MENU_STACK_LIMIT: usize = 16;
/// How deep sub-flow calls nest: a call inside this many sub-flows cannot enter another (the
/// flow set refuses flows that could; see [`crate::set`]).
pub const CALL_DEPTH_LIMIT: usize = 8;

/// A sub-flow call in progress: where to come back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The calling flow's id.
    pub flow: String,
    /// The version of it the session was on.
    pub version: FlowVersion,
    /// The calling `subflow` node; `return` goes on to its `next`.
    pub node: String,
    /// The caller's menus for `back`, set aside while the sub-flow runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub menus: Vec<String>,
}

/// What the last answer is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Awaiting {
    /// Digits for the menu or capture [`SessionState::node`].
    Input,
    /// The result of the transfer [`SessionState::node`].
    Transfer,
    /// The platform to finish playing; then run [`SessionState::node`].
    Continue,
    /// Nothing: the answer hung up.
    Nothing,
}

/// One call's progress through a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    /// The flow's id.
    pub flow: String,
    /// The flow version the session started on (it stays on it across reloads).
    pub version: FlowVersion,
    /// The node the session is at (see [`Awaiting`]).
    pub node: String,
    /// What the last answer waits for.
    pub awaiting: Awaiting,
    /// Increases with every answer that advanced the session; encoded in `clientActionId`.
    pub seq: u32,
    /// Wrong keys at the current menu.
    pub invalid: u8,
    /// Silences at the current menu.
    pub no_input: u8,
    /// Failed attempts at the current capture.
    pub attempts: u8,
    /// The session's variables.
    pub vars: BTreeMap<String, String>,
    /// The nodes visited, oldest first, at most [`PATH_LIMIT`].
    pub path: VecDeque<String>,
    /// Menus left through an option, for `back`.
    pub menus: Vec<String>,
    /// The caller's number.
    pub caller: String,
    /// The number called.
    pub called: String,
    /// The digits entered last.
    pub digits: String,
    /// The last answer, repeated for stale and duplicate events (shared with the [`crate::Reply`]
    /// that made it, not copied).
    pub last_reply: Option<Arc<Callflow>>,
    /// Sub-flow calls in progress, outermost first (`flow` is the innermost flow's id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<Frame>,
    /// The session's id, which picks the branch of a `split` (see [`crate::split`]). Not stored:
    /// it is the store's key, and whoever steps the session sets it (empty picks a fixed
    /// branch).
    #[serde(skip)]
    pub session: String,
}

/// Below this many elements, a session's lists grow one element at a time. A live call spends
/// most of its life in its first steps (at its first menu it has visited one or two nodes, has
/// one menu open and has answered one event), and `Vec`'s first allocation holds four: 72 bytes
/// per list that a call at its first menu does not use, at a cost of a reallocation at each
/// of the first few steps.
pub const SMALL: usize = 4;

/// Makes room for one more element in a full `list`, one at a time while it is small (past
/// [`SMALL`], `push_back` grows it as usual).
pub fn grow_small<T>(list: &mut VecDeque<T>) {
    if list.len() == list.capacity() && list.capacity() < SMALL {
        list.reserve_exact(1);
    }
}

impl SessionState {
    /// A session about to start `flow` (its first step is [`crate::Event::Start`]).
    pub fn new(flow: &Flow, caller: &str, called: &str) -> Self {
        Self {
            flow: flow.id.clone(),
            version: flow.version,
            node: flow.node(flow.start).name.clone(),
            awaiting: Awaiting::Continue,
            seq: 0,
            invalid: 0,
            no_input: 0,
            attempts: 0,
            vars: BTreeMap::new(),
            path: VecDeque::new(),
            menus: Vec::new(),
            caller: caller.to_owned(),
            called: called.to_owned(),
            digits: String::new(),
            last_reply: None,
            calls: Vec::new(),
            session: String::new(),
        }
    }

    /// A session rebuilt from the `clientActionId` of an event this server has no state for
    /// (after a restart on the in-memory store, say): at the node the id names, counters reset.
    /// `None` if the id is not ours or names a node the flow does not have.
    /// A sequence number above [`ActionId::MAX_SEQ`] (Switchboard never issues one) is clamped
    /// to it: the session resumes, its counter cannot overflow, and the ids of its next answers
    /// are greater than the clamped number, so later events are not taken for stale ones.
    pub fn resume(flow: &Flow, id: &ActionId<'_>, caller: &str, called: &str) -> Option<Self> {
        if id.flow != flow.id {
            return None;
        }
        let node = flow.node(flow.node_id(id.node)?);
        let awaiting = match node.kind {
            NodeKind::Menu(_) | NodeKind::Capture(_) => Awaiting::Input,
            NodeKind::Transfer(_) => Awaiting::Transfer,
            _ => Awaiting::Continue,
        };
        let mut state = Self::new(flow, caller, called);
        state.node = node.name.clone();
        state.awaiting = awaiting;
        state.seq = id.seq.min(ActionId::MAX_SEQ);
        Some(state)
    }

    /// Where the call is, for "where did callers leave": the node it waits at, or, once an
    /// answer hung up, the last node that answer went through (`goodbye`, not the menu whose
    /// key led there).
    pub fn ended_at(&self) -> &str {
        match (self.awaiting, self.path.back()) {
            (Awaiting::Nothing, Some(last)) => last,
            _ => &self.node,
        }
    }

    /// The `clientActionId` for the current position.
    pub fn action_id(&self) -> ClientActionId {
        let id = ActionId {
            flow: &self.flow,
            version: self.version,
            node: &self.node,
            seq: self.seq,
        };
        // Flow ids and node names are checked at load to keep this under 128 printable chars.
        ClientActionId::new(id.render()).unwrap_or_else(|_| {
            ClientActionId::new(format!("sb:{}", self.seq)).expect("a short ASCII id is valid")
        })
    }

    pub(crate) fn visit(&mut self, name: &str) {
        if self.path.len() == PATH_LIMIT {
            self.path.pop_front();
        }
        grow_small(&mut self.path);
        self.path.push_back(name.to_owned());
    }

    pub(crate) fn push_menu(&mut self, name: &str) {
        if let Some(at) = self.menus.iter().position(|m| m == name) {
            self.menus.truncate(at);
        }
        if self.menus.len() == MENU_STACK_LIMIT {
            self.menus.remove(0);
        }
        if self.menus.len() == self.menus.capacity() && self.menus.capacity() < SMALL {
            self.menus.reserve_exact(1);
        }
        self.menus.push(name.to_owned());
    }

    pub(crate) fn reset_counters(&mut self) {
        self.invalid = 0;
        self.no_input = 0;
        self.attempts = 0;
    }
}

/// The compact encoding of a state, for session stores (see [`switchboard_protocol::compact`]).
///
/// Field by field in declaration order; node names repeated in the path and the menu stack are
/// back-references, and the last answer's `clientActionId`, which is the state's own
/// [`SessionState::action_id`] whenever the answer advanced the call, is implied. Never
/// reorder: stored records are read by later versions (the store versions the whole record).
///
/// Fields added later follow as tagged sections (a tag byte, then the field), written only when
/// they are not empty and read to the end of the input: a record without them is exactly what
/// earlier versions wrote, so they read it, and this version reads theirs. Tag 1: the sub-flow
/// calls ([`SessionState::calls`]).
impl SessionState {
    /// Appends the state's compact encoding.
    pub fn write_compact(&self, out: &mut Writer) {
        out.str(&self.flow);
        out.u32_fixed(self.version.0);
        out.str(&self.node);
        out.u8(match self.awaiting {
            Awaiting::Input => 0,
            Awaiting::Transfer => 1,
            Awaiting::Continue => 2,
            Awaiting::Nothing => 3,
        });
        out.uint(self.seq.into());
        out.u8(self.invalid);
        out.u8(self.no_input);
        out.u8(self.attempts);
        out.uint(self.vars.len() as u64);
        for (name, value) in &self.vars {
            out.str(name);
            out.str(value);
        }
        out.uint(self.path.len() as u64);
        for node in &self.path {
            out.str(node);
        }
        out.uint(self.menus.len() as u64);
        for menu in &self.menus {
            out.str(menu);
        }
        out.str(&self.caller);
        out.str(&self.called);
        out.str(&self.digits);
        match &self.last_reply {
            None => out.u8(0),
            Some(reply) => {
                out.u8(1);
                reply.write_compact(out, Some(self.action_id().as_str()));
            }
        }
        if !self.calls.is_empty() {
            out.u8(SECTION_CALLS);
            out.uint(self.calls.len() as u64);
            for frame in &self.calls {
                out.str(&frame.flow);
                out.u32_fixed(frame.version.0);
                out.str(&frame.node);
                out.uint(frame.menus.len() as u64);
                for menu in &frame.menus {
                    out.str(menu);
                }
            }
        }
    }

    /// Reads a state written by [`SessionState::write_compact`]: the rest of `input` (the
    /// later sections are read to its end).
    pub fn read_compact(input: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flow = input.str()?.to_owned();
        let version = FlowVersion(input.u32_fixed()?);
        let node = input.str()?.to_owned();
        let awaiting = match input.u8()? {
            0 => Awaiting::Input,
            1 => Awaiting::Transfer,
            2 => Awaiting::Continue,
            3 => Awaiting::Nothing,
            other => return Err(DecodeError::new(format!("awaiting tag {other}"))),
        };
        let seq = input.uint_as("seq")?;
        let (invalid, no_input, attempts) = (input.u8()?, input.u8()?, input.u8()?);
        let mut vars = BTreeMap::new();
        for _ in 0..input.uint()? {
            let name = input.str()?.to_owned();
            vars.insert(name, input.str()?.to_owned());
        }
        let path = read_names(input, PATH_LIMIT, "path")?.into();
        let menus = read_names(input, MENU_STACK_LIMIT, "menu stack")?;
        let mut state = Self {
            flow,
            version,
            node,
            awaiting,
            seq,
            invalid,
            no_input,
            attempts,
            vars,
            path,
            menus,
            caller: input.str()?.to_owned(),
            called: input.str()?.to_owned(),
            digits: input.str()?.to_owned(),
            last_reply: None,
            calls: Vec::new(),
            session: String::new(),
        };
        state.last_reply = match input.u8()? {
            0 => None,
            1 => Some(Arc::new(Callflow::read_compact(
                input,
                Some(state.action_id().as_str()),
            )?)),
            other => return Err(DecodeError::new(format!("last answer tag {other}"))),
        };
        while !input.is_done() {
            match input.u8()? {
                SECTION_CALLS => {
                    let count: usize = input.uint_as("sub-flow calls")?;
                    if count > CALL_DEPTH_LIMIT {
                        return Err(DecodeError::new(format!(
                            "{count} sub-flow calls (at most {CALL_DEPTH_LIMIT} nest)"
                        )));
                    }
                    for _ in 0..count {
                        let flow = input.str()?.to_owned();
                        let version = FlowVersion(input.u32_fixed()?);
                        let node = input.str()?.to_owned();
                        let menus = read_names(input, MENU_STACK_LIMIT, "menu stack")?;
                        state.calls.push(Frame {
                            flow,
                            version,
                            node,
                            menus,
                        });
                    }
                }
                other => {
                    return Err(DecodeError::new(format!(
                        "state section {other}, which this version does not know; upgrade this replica"
                    )));
                }
            }
        }
        Ok(state)
    }
}

/// The tag of the sub-flow calls' section in the compact encoding.
const SECTION_CALLS: u8 = 1;

/// A list of at most `limit` names.
fn read_names(
    input: &mut Reader<'_>,
    limit: usize,
    what: &str,
) -> Result<Vec<String>, DecodeError> {
    let count: usize = input.uint_as(what)?;
    if count > limit {
        return Err(DecodeError::new(format!(
            "{count} entries in the {what} (at most {limit} are kept)"
        )));
    }
    (0..count).map(|_| input.str().map(str::to_owned)).collect()
}

/// A decoded `clientActionId`: `flow:version:node:seq`, e.g. `restaurant:9f86d081:main:3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionId<'a> {
    /// The flow id.
    pub flow: &'a str,
    /// The flow version.
    pub version: FlowVersion,
    /// The node name.
    pub node: &'a str,
    /// The session's sequence number when the answer was made.
    pub seq: u32,
}

impl<'a> ActionId<'a> {
    /// The largest sequence number a session resumes from. Half the `u32` range: a session
    /// steps about once a second, so no real call gets near it, and a session resumed at it
    /// still has two billion steps before `seq` could overflow. An id beyond it was not made by
    /// Switchboard; [`SessionState::resume`] clamps it.
    pub const MAX_SEQ: u32 = u32::MAX / 2;

    /// Whether the sequence number is one a session may resume from (see [`Self::MAX_SEQ`]).
    pub const fn seq_in_range(&self) -> bool {
        self.seq <= Self::MAX_SEQ
    }

    /// Decodes an id we made; `None` for anything else.
    pub fn parse(text: &'a str) -> Option<Self> {
        // Three `split_once`s rather than a `split` iterator: every webhook parses the id it
        // echoes, and this is a third of the iterator's cost.
        let (flow, rest) = text.split_once(':')?;
        let (version, rest) = rest.split_once(':')?;
        let (node, seq) = rest.split_once(':')?;
        if flow.is_empty() || node.is_empty() || seq.contains(':') {
            return None;
        }
        Some(Self {
            flow,
            version: FlowVersion::parse(version)?,
            node,
            seq: seq.parse().ok()?,
        })
    }
}

impl ActionId<'_> {
    /// `flow:version:node:seq`, the version as 8 lower-case hex digits. Written by hand rather
    /// than through `format!`: every answer and every stored record carries one, and the
    /// formatting machinery cost 1,500 instructions of a webhook's 57,000.
    pub fn render(&self) -> String {
        // The exact length: the id is kept in the session's last answer for as long as the
        // call lives, so no spare capacity.
        let digits = self.seq.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut out = String::with_capacity(self.flow.len() + self.node.len() + 11 + digits);
        out.push_str(self.flow);
        out.push(':');
        let hex = self.version.0;
        for shift in (0..8).rev() {
            let digit = (hex >> (shift * 4)) & 0xf;
            out.push(char::from(b"0123456789abcdef"[digit as usize]));
        }
        out.push(':');
        out.push_str(self.node);
        out.push(':');
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut seq = self.seq;
        loop {
            at -= 1;
            digits[at] = b'0' + (seq % 10) as u8;
            seq /= 10;
            if seq == 0 {
                break;
            }
        }
        for &digit in &digits[at..] {
            out.push(char::from(digit));
        }
        out
    }
}

impl fmt::Display for ActionId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_ids_round_trip() {
        let id = ActionId {
            flow: "restaurant",
            version: FlowVersion(0x9f86_d081),
            node: "main",
            seq: 3,
        };
        let text = id.to_string();
        assert_eq!(text, "restaurant:9f86d081:main:3");
        assert_eq!(ActionId::parse(&text), Some(id));
        for bad in [
            "",
            "a:b:c:d",
            "restaurant:9f86d081:main",
            "r:9f86d081:m:1:x",
            ":9f86d081:m:1",
            "r:9f86d081::1",
            "r:9f86d081:m:",
            "r:9f86d08:m:1",
            "ivr1_level2",
        ] {
            assert_eq!(ActionId::parse(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        /// Any id we can make parses back to itself and is a valid `clientActionId`.
        #[test]
        fn action_ids_round_trip_for_any_names(
            flow in "[A-Za-z0-9_-]{1,40}",
            node in "[A-Za-z0-9_-]{1,48}",
            version in proptest::prelude::any::<u32>(),
            seq in proptest::prelude::any::<u32>(),
        ) {
            let id = ActionId { flow: &flow, version: FlowVersion(version), node: &node, seq };
            let text = id.to_string();
            proptest::prop_assert_eq!(&text, &format!("{flow}:{version:08x}:{node}:{seq}"));
            proptest::prop_assert_eq!(ActionId::parse(&text), Some(id));
            proptest::prop_assert!(ClientActionId::new(text).is_ok());
        }
    }

    #[test]
    fn longest_names_fit_in_a_client_action_id() {
        let id = ActionId {
            flow: &"f".repeat(crate::compile::MAX_FLOW_ID),
            version: FlowVersion(u32::MAX),
            node: &"n".repeat(crate::compile::MAX_NODE_NAME),
            seq: u32::MAX,
        };
        assert!(ClientActionId::new(id.to_string()).is_ok());
    }
}
