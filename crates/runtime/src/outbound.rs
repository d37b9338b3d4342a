//! Outbound sessions: a call Switchboard places through the Callflows API rather than one the
//! platform announces with `CALL_RECEIVED`.
//!
//! The platform names an outbound session only in its answer to the API request, and the
//! callee can answer (and the first webhook arrive) before that answer is read. So the session
//! is registered *before* the request, under a **ticket**: the first step of the flow is run
//! here, its record stored under the ticket's key, and the callflow sent to the API carries the
//! ticket as its `clientActionId`. The platform echoes it on the first `CALL_ACTION`; a replica
//! that has no state for that session finds the ticket's record in the store (shared by every
//! replica with Redis) and continues from it, with the flow version and variables it was
//! registered with. A ticket never parses as a flow's own `clientActionId`, so the first event
//! is never mistaken for a stale one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use switchboard_flow::{SessionState, step};
use switchboard_protocol::{CallAction, Callflow, ClientActionId};

use crate::Runtime;
use crate::store::{Commit, Record, StoreError};

/// Every ticket starts with it; flow ids cannot (a flow's `clientActionId` starts with its id
/// and a colon follows, which a ticket never has).
pub const TICKET_PREFIX: &str = "outbound-";

/// Why an outbound session could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// No flow has the id.
    #[error("flow {0:?} is not served here; `GET /v1/flows` lists the flows")]
    UnknownFlow(String),
    /// The ticket is not a valid `clientActionId` once prefixed.
    #[error("ticket {0:?} must be up to 100 letters, digits, '-' or '_'")]
    BadTicket(String),
    /// The ticket is registered already (an outbound call is never registered twice).
    #[error("ticket {0:?} is registered already")]
    Duplicate(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to register.
#[derive(Debug, Clone)]
pub struct Outbound<'a> {
    /// The flow the callee is led through.
    pub flow: &'a str,
    /// Our number, the caller id (`source` of the `makeCall`).
    pub from: &'a str,
    /// The callee.
    pub to: &'a str,
    /// The session's variables (`{{vars.name}}` in the flow).
    pub vars: BTreeMap<String, String>,
    /// Unique per call attempt: `[A-Za-z0-9_-]`, at most 100 characters.
    pub ticket: &'a str,
}

/// The store key of a ticket's record.
pub fn ticket_key(ticket: &str) -> String {
    format!("{TICKET_PREFIX}{ticket}")
}

/// The ticket an event echoes, if it is the first event of an outbound session.
pub fn ticket_of(action: &CallAction) -> Option<&str> {
    action
        .client_action_id
        .as_deref()
        .and_then(|id| id.strip_prefix(TICKET_PREFIX))
        .filter(|ticket| valid_ticket(ticket))
}

fn valid_ticket(ticket: &str) -> bool {
    !ticket.is_empty()
        && ticket.len() <= 100
        && ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Runtime {
    /// Registers an outbound session under its ticket and returns the callflow of its first
    /// step, to follow the `makeCall` in the API request (its `clientActionId` is the ticket).
    pub async fn register_outbound(
        &self,
        call: Outbound<'_>,
        now: DateTime<Utc>,
    ) -> Result<Callflow, OutboundError> {
        if !valid_ticket(call.ticket) {
            return Err(OutboundError::BadTicket(call.ticket.to_owned()));
        }
        let flows = self.flows();
        let flow = flows
            .latest(call.flow)
            .ok_or_else(|| OutboundError::UnknownFlow(call.flow.to_owned()))?;
        // As for an inbound call, `caller` is the person and `called` our number.
        let mut state = SessionState::new(flow, call.to, call.from);
        state.vars = call.vars;
        // The platform's session id is not known yet: the ticket stands in for the first step.
        state.session.push_str(call.ticket);
        let reply = step(flow, &mut state, switchboard_flow::Event::Start, now);
        let mut record = Record::new(state);
        record.version = 1;
        let key = ticket_key(call.ticket);
        match self.store().commit(&key, None, &record, "").await? {
            Commit::Written | Commit::Deferred => {}
            Commit::Conflict(_) => return Err(OutboundError::Duplicate(call.ticket.to_owned())),
        }
        let ticket = ClientActionId::new(key)
            .map_err(|_| OutboundError::BadTicket(call.ticket.to_owned()))?;
        Ok(Callflow {
            client_action_id: Some(ticket),
            actions: reply.callflow.actions.clone(),
        })
    }

    /// [`Runtime::register_outbound`] for an attempt that may have been registered already
    /// (a campaign continuing after the replica that dialled it stopped): a ticket registered
    /// before is not an error, and the callflow of its first step is made again. If the
    /// platform created that call, the request it goes out with repeats the ticket as its
    /// `clientRequestId` and is answered with the call already made.
    pub async fn register_outbound_again(
        &self,
        call: Outbound<'_>,
        now: DateTime<Utc>,
    ) -> Result<Callflow, OutboundError> {
        let again = call.clone();
        match self.register_outbound(call, now).await {
            Err(OutboundError::Duplicate(_)) => {}
            other => return other,
        }
        let flows = self.flows();
        let flow = flows
            .latest(again.flow)
            .ok_or_else(|| OutboundError::UnknownFlow(again.flow.to_owned()))?;
        let mut state = SessionState::new(flow, again.to, again.from);
        state.vars = again.vars;
        let reply = step(flow, &mut state, switchboard_flow::Event::Start, now);
        let ticket = ClientActionId::new(ticket_key(again.ticket))
            .map_err(|_| OutboundError::BadTicket(again.ticket.to_owned()))?;
        Ok(Callflow {
            client_action_id: Some(ticket),
            actions: reply.callflow.actions.clone(),
        })
    }
}
