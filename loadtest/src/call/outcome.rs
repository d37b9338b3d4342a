//! What a callflow's execution leads to, and how a call ends and is counted.

use std::time::Duration;

use super::Transfer;
use crate::ids::Uuid;

/// What executing a callflow leads to, after `spoken` of simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// How long the platform was busy speaking, listening and ringing.
    pub spoken: Duration,
    /// What happens next.
    pub next: Next,
}

/// The platform's move after a callflow.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Send `ACTION_COMPLETED` and ask for the next callflow.
    Continue(Completion),
    /// The call is over: send the session summary.
    End(End),
}

/// The content of an `ACTION_COMPLETED`.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// `eventData`: `None` when nothing was captured (a `say`-only callflow or a transfer
    /// result), `Some(None)` for a capture without valid input (`dtmf: null`).
    pub dtmf: Option<Option<String>>,
    /// The leg's SIP code: 200, or the failed transfer's 486/480.
    pub sip_code: u16,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server's callflow hung up.
    Hangup,
    /// The caller hung up mid-call.
    CallerHangup,
    /// A `makeCall` bridged the caller; the bridged call then ended.
    Transferred,
    /// An outbound call (Callflows API) was not answered.
    DialFailed(Transfer),
    /// The call executed `max_steps` callflows without ending; the caller gave up.
    StepLimit,
    /// The server failed to answer properly; the platform dropped the call.
    Failed(Failure),
    /// An outbound call's `validUntil` passed before it was placed.
    Expired,
}

/// Why the platform dropped a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The webhook answered a non-2xx status.
    Http(u16),
    /// The webhook did not answer in time.
    Timeout,
    /// The webhook could not be reached.
    Unreachable,
    /// The webhook answered a callflow the platform refuses.
    InvalidCallflow,
}

/// How a call ended, as counted in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The flow hung up.
    Hangup,
    /// The flow transferred the caller and the bridged call completed.
    Transferred,
    /// The caller hung up early.
    CallerHangup,
    /// An outbound call was busy.
    Busy,
    /// An outbound call was not answered.
    NoAnswer,
    /// An outbound call expired before it was placed.
    Expired,
    /// The call exceeded the step limit (a looping flow).
    StepLimit,
    /// The server failed the call (HTTP error, timeout, invalid callflow).
    Failed,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 8] = [
        Self::Hangup,
        Self::Transferred,
        Self::CallerHangup,
        Self::Busy,
        Self::NoAnswer,
        Self::Expired,
        Self::StepLimit,
        Self::Failed,
    ];

    /// A stable label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Hangup => "hangup",
            Self::Transferred => "transferred",
            Self::CallerHangup => "caller_hangup",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Expired => "expired",
            Self::StepLimit => "step_limit",
            Self::Failed => "failed",
        }
    }
}

impl End {
    /// How the end is counted.
    pub const fn outcome(self) -> Outcome {
        match self {
            Self::Hangup => Outcome::Hangup,
            Self::CallerHangup => Outcome::CallerHangup,
            Self::Transferred => Outcome::Transferred,
            Self::DialFailed(Transfer::Busy) => Outcome::Busy,
            Self::DialFailed(_) => Outcome::NoAnswer,
            Self::StepLimit => Outcome::StepLimit,
            Self::Failed(_) => Outcome::Failed,
            Self::Expired => Outcome::Expired,
        }
    }
}

/// A webhook ready to deliver.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The event's id (`eventId`; for a summary, a fresh id used only in reports).
    pub event_id: Uuid,
    /// The JSON body.
    pub body: Vec<u8>,
}
