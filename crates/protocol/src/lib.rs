//! The 8x8 Voice IVR wire format, typed and validated.
//!
//! This crate is Switchboard's single source of truth for what crosses the wire between the
//! 8x8 Voice platform and us (see `docs/protocol.md`). It is pure: no I/O, no async runtime, no HTTP.
//!
//! # Layout
//! * [`webhook`]: what the platform POSTs to us. [`Webhook::from_slice`] parses a body once, at
//!   the boundary, tolerantly where the platform is loose (unknown fields, numbers as strings,
//!   the older string form of `eventData`) and strictly where routing needs it (`sessionId`,
//!   `eventType`).
//! * [`callflow`]: what we answer. [`Callflow`] and its five [`Action`]s serialize exactly as the
//!   platform expects; [`CallflowBuilder`] only builds callflows the platform accepts.
//! * [`scalar`]: newtypes for every constrained value (text length, repetition, speed, digit
//!   counts, E.164 numbers, file URLs, voice profiles, client action ids, sub-account ids), so an out-of-range
//!   value cannot be put into a [`Callflow`] in the first place.
//! * [`validate`]: checks an arbitrary JSON callflow against every rule of the platform and
//!   reports each violation, error or warning, with the platform's status code and a JSON path.
//! * [`code`]: the platform's status codes.
//! * [`compact`]: a compact binary encoding of callflows, for session stores.

pub mod callflow;
pub mod code;
pub mod compact;
pub mod scalar;
pub mod validate;
pub mod webhook;

pub use callflow::{Action, Callflow, CallflowBuilder, MakeCall, PlayFile, Say, SayAndCapture};
pub use code::StatusCode;
/// The string type of webhook fields: short ones (numbers, codes, digits) stored inline.
pub use compact_str::CompactString;
pub use scalar::{
    ClientActionId, DigitCount, FileUrl, Msisdn, Repetition, ScalarError, Speed, SubAccountId,
    Text, VoiceProfile,
};
pub use validate::{
    JsonPath, Mode, Rules, Severity, Violation, validate_callflow, validate_json,
    validate_json_with, validate_slice, validate_slice_with,
};
pub use webhook::{
    CallAction, CallLeg, CallStatus, CallStatusEvent, EventData, SessionStatus, SessionSummary,
    Webhook, WebhookError,
};
