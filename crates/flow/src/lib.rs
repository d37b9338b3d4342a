//! Switchboard's flow language and the IVR state machine.
//!
//! A business describes its phone menu once, in YAML (or the same structure in JSON); this
//! crate checks it and turns every caller's key presses into the right callflows. It is pure: no
//! I/O, no clock of its own, no randomness. Reading files is the caller's job.
//!
//! # Layout
//! * [`yaml`]: a YAML/JSON tree whose nodes carry line and column.
//! * [`compile`](mod@compile): source to a checked [`Flow`], with every problem reported as
//!   `file:line:col: node 'x': message`.
//! * [`model`]: the executable graph and branch conditions.
//! * [`template`]: `{{caller}}`, `{{called}}`, `{{digits}}`, `{{vars.NAME}}`.
//! * [`state`]: [`SessionState`], the small plain data a session is, and the `clientActionId`
//!   codec.
//! * [`engine`]: [`step`], the state machine; [`advance`] and [`resume`] for flows whose
//!   fetch nodes need the runtime to do a request in the middle of a step.
//! * [`fetch`]: the fetch node, the request it asks for and how its answer is settled.
//! * [`set`]: [`FlowSet`], routing by number and versions across reloads.
//! * [`split`]: the stable choice of an A/B split's branch.
//!
//! The language is documented for flow authors in `docs/flows.md`.

pub mod compile;
pub mod engine;
pub mod fetch;
pub mod model;
pub mod set;
pub mod split;
pub mod state;
pub mod template;
pub mod yaml;

pub use compile::{Compiled, DEFAULT_VOICE, Diagnostic, Options, Severity, compile, compile_with};
pub use engine::{
    Disposition, Event, FlowChange, Flows, NoFlows, Pending, Reply, Signal, Step, Trace,
    TransferResult, advance, advance_in, resume, resume_in, step, step_in,
};
pub use model::{Flow, FlowVersion, NodeId, NodeKind, Target};
pub use set::FlowSet;
pub use state::{ActionId, Awaiting, Frame, SessionState};
