//! The session actor: one per live call, owning its [`Record`] and applying webhooks to it one
//! at a time.
//!
//! A webhook's processing awaits the store, so the handler is an [`AtomicResponse`]: actix runs
//! no other message of this actor until it completes, which makes each transition atomic per
//! session while different sessions (different actors, spread over the shards) run in
//! parallel.

use actix::prelude::*;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use switchboard_flow::{
    ActionId, Disposition, Event, Flow, SessionState, Step, Trace, advance, step_in,
};
use switchboard_protocol::webhook::CallStatus;
use switchboard_protocol::{CallAction, SessionSummary};

use crate::env::{Shared, Slot};
use crate::store::{Commit, Record};
use crate::{Answer, AnswerKind, Ended, RuntimeError};

/// Most compare-and-set attempts for one webhook before giving up with a retryable error.
const MAX_CONFLICTS: usize = 4;

pub(crate) struct SessionActor {
    /// Shared with each webhook's processing future, which outlives a borrow of the actor.
    session: Arc<str>,
    incarnation: u64,
    /// The arbiter it runs on, for the per-shard actor count.
    shard: usize,
    shared: Arc<Shared>,
    record: Option<Record>,
    /// Its in-flight count and last-activity stamp, shared with the registry's handle.
    slot: Arc<Slot>,
}

impl SessionActor {
    /// The actor of `session`'s `incarnation`, to run on shard `shard`, with no state yet (its
    /// first webhook loads it from the store, or starts the call).
    pub(crate) fn new(
        session: Arc<str>,
        incarnation: u64,
        shard: usize,
        shared: Arc<Shared>,
        slot: Arc<Slot>,
    ) -> Self {
        Self {
            session,
            incarnation,
            shard,
            shared,
            record: None,
            slot,
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.shared.shard_actors[self.shard].fetch_add(1, Ordering::Relaxed);
        ctx.set_mailbox_capacity(self.shared.config.mailbox);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.shared.shard_actors[self.shard].fetch_sub(1, Ordering::Relaxed);
        self.shared.forget(&self.session, self.incarnation);
    }
}

/// Apply a `CALL_ACTION`.
pub(crate) struct Deliver {
    pub(crate) action: Arc<CallAction>,
    pub(crate) now: DateTime<Utc>,
}

impl Message for Deliver {
    type Result = Result<Answer, RuntimeError>;
}

/// The session is over.
pub(crate) struct End {
    pub(crate) summary: SessionSummary,
}

impl Message for End {
    type Result = Result<Ended, RuntimeError>;
}

/// The shard's sweeper found the session idle: stop unless a webhook came in since.
pub(crate) struct Passivate;

impl Message for Passivate {
    type Result = ();
}

impl Handler<Passivate> for SessionActor {
    type Result = ();

    fn handle(&mut self, _msg: Passivate, ctx: &mut Self::Context) {
        let idle = self.shared.config.idle_timeout;
        if self.slot.is_idle(self.shared.clock(), idle) {
            if let Some(record) = self.record.take()
                && !self.shared.store.commits_each_transition()
            {
                self.shared.store.keep(&self.session, record);
            }
            self.shared
                .counters
                .passivated
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(session = %self.session, "passivating idle session");
            ctx.stop();
        }
    }
}

/// Read the record (for the admin API).
pub(crate) struct Inspect;

impl Message for Inspect {
    type Result = Option<Record>;
}

impl Handler<Deliver> for SessionActor {
    type Result = AtomicResponse<Self, Result<Answer, RuntimeError>>;

    fn handle(&mut self, msg: Deliver, _ctx: &mut Self::Context) -> Self::Result {
        let shared = Arc::clone(&self.shared);
        let cached = self.record.take();
        let session = Arc::clone(&self.session);
        AtomicResponse::new(Box::pin(
            async move { deliver(&shared, &session, cached, &msg.action, msg.now).await }
                .into_actor(self)
                .map(|(record, result), actor, ctx| {
                    // No record: the call was not ours (unrouted, unresolved) or its state is
                    // unreachable. An actor without state is only a cost: stop it now rather
                    // than at the idle timeout. A message already queued gets a closed mailbox
                    // and the runtime retries it on a new actor.
                    if record.is_none() {
                        ctx.stop();
                    }
                    actor.record = record;
                    result
                }),
        ))
    }
}

impl Handler<End> for SessionActor {
    type Result = AtomicResponse<Self, Result<Ended, RuntimeError>>;

    fn handle(&mut self, msg: End, _ctx: &mut Self::Context) -> Self::Result {
        let shared = Arc::clone(&self.shared);
        let cached = self.record.take();
        let session = Arc::clone(&self.session);
        AtomicResponse::new(Box::pin(
            async move {
                // Another replica may have moved the session on since this actor's last
                // webhook, so the stored record (read as it is deleted) says where the call
                // ended; while the store is unreachable, this actor's copy is the best there
                // is (and the delete is queued).
                let record = match cached {
                    // Only a newer stored record is read back (and decoded).
                    Some(cached) => shared
                        .store
                        .end_newer_than(&session, cached.version)
                        .await
                        .map_err(RuntimeError::from)?
                        .or(Some(cached)),
                    None => shared
                        .store
                        .end(&session)
                        .await
                        .map_err(RuntimeError::from)?,
                };
                Ok(Ended {
                    flow: record.as_ref().map(|r| r.state.flow.clone()),
                    node: record.as_ref().map(|r| r.state.ended_at().to_owned()),
                    status: msg.summary.session_status.clone(),
                })
            }
            .into_actor(self)
            // Stopped once answered: stopping first dropped this future unanswered, and the
            // runtime then ended the session without the actor (a 503 while Redis is away).
            .map(|ended, _actor, ctx| {
                ctx.stop();
                ended
            }),
        ))
    }
}

impl Handler<Inspect> for SessionActor {
    type Result = Option<Record>;

    fn handle(&mut self, _msg: Inspect, _ctx: &mut Self::Context) -> Self::Result {
        self.record.clone()
    }
}

/// Applies one `CALL_ACTION` to a session; returns the record to keep and the answer.
async fn deliver(
    shared: &Shared,
    session: &str,
    cached: Option<Record>,
    action: &CallAction,
    now: DateTime<Utc>,
) -> (Option<Record>, Result<Answer, RuntimeError>) {
    // A record whose queued write the store gave up on is not the session's truth any more.
    let cached = cached.filter(|_| !shared.store.take_stale(session));
    if let Some(answer) = cached.as_ref().and_then(|r| duplicate(r, &action.event_id)) {
        return (cached, Ok(answer));
    }
    // Whether `record` is this actor's own copy, which another replica may have moved past.
    let mut from_cache = cached.is_some();
    let mut record = match cached {
        Some(record) => Some(record),
        // A new call: nothing to read. If another replica (or an earlier delivery) already
        // stored the session, the compare-and-set below reports it and we adopt it, so the
        // common case stays at one round trip. A store without that compare-and-set (memory)
        // is read instead: a retried CALL_RECEIVED may find its passivated session there.
        None if action.call_status == CallStatus::CallReceived
            && shared.store.commits_each_transition() =>
        {
            None
        }
        None => match shared.store.load(session).await {
            Ok(Some(record)) => {
                shared.counters.rehydrated.fetch_add(1, Ordering::Relaxed);
                if let Some(answer) = duplicate(&record, &action.event_id) {
                    return (Some(record), Ok(answer));
                }
                Some(record)
            }
            Ok(None) => None,
            Err(err) => return (None, Err(RuntimeError::Store(err))),
        },
    };
    // The first event of an outbound call: the session registered under its ticket.
    let mut registered = None;
    if record.is_none()
        && let Some(ticket) = crate::outbound::ticket_of(action)
    {
        match shared
            .store
            .load(&crate::outbound::ticket_key(ticket))
            .await
        {
            Ok(found) => registered = found,
            Err(err) => return (None, Err(RuntimeError::Store(err))),
        }
    }
    let event = match action.call_status {
        CallStatus::CallReceived => Event::Start,
        _ => Event::Completed {
            action_id: action.client_action_id.as_deref(),
            dtmf: action.dtmf(),
            sip_code: action.sip_code,
        },
    };
    for _ in 0..MAX_CONFLICTS {
        let expected = record.as_ref().map(|r| r.version);
        let (mut next, flow, mut kind) = match record.take() {
            Some(existing) => {
                let flows = shared.flows();
                match flows.for_session(&existing.state.flow, existing.state.version) {
                    Some(flow) => (existing, Arc::clone(flow), AnswerKind::Advanced),
                    None => {
                        // The session's flow was removed from the server: end the call politely.
                        return (Some(existing), Ok(shared.apology(AnswerKind::Unresolved)));
                    }
                }
            }
            None => match registered.take() {
                Some(outbound) => match adopt(shared, outbound) {
                    Ok(begun) => begun,
                    Err(answer) => return (None, Ok(*answer)),
                },
                None => match begin(shared, action) {
                    Ok(begun) => begun,
                    Err(answer) => return (None, Ok(*answer)),
                },
            },
        };
        let subflows = flow.calls_subflows || !next.state.calls.is_empty();
        if (flow.splits || subflows) && next.state.session.is_empty() {
            // For `split` (here or in a sub-flow); not stored with the state (the id is its
            // key): set once per actor.
            next.state.session.push_str(session);
        }
        let reply = if subflows {
            // Sub-flows are entered and returned from through the whole set (the checker keeps
            // fetch nodes out of flows that call or are called as sub-flows).
            step_in(&*shared.flows(), &flow, &mut next.state, event, now)
        } else {
            match advance(&flow, &mut next.state, event, now) {
                Step::Reply(reply) => reply,
                // A fetch node: the request runs inside this atomic handler, so a duplicate or
                // late copy of the event waits for its answer instead of asking the backend
                // again.
                Step::Fetch(pending) => {
                    shared
                        .fetcher
                        .complete(
                            session,
                            &flow,
                            &mut next.state,
                            pending,
                            now,
                            &*shared.config.clock,
                        )
                        .await
                }
            }
        };
        let body = Bytes::from(reply.callflow.to_json());
        if reply.disposition == Disposition::Stale {
            // Stale for this actor's copy; if another replica has answered since, the
            // session's latest answer is the stored one (one read, for late events only).
            if from_cache {
                from_cache = false;
                if let Ok(Some(stored)) = shared.store.load(session).await
                    && stored.version > next.version
                {
                    if let Some(answer) = duplicate(&stored, &action.event_id) {
                        return (Some(stored), Ok(answer));
                    }
                    record = Some(stored);
                    continue;
                }
            }
            return (
                Some(next),
                Ok(Answer {
                    body,
                    kind: AnswerKind::Stale,
                    flow: Some(flow),
                    trace: Trace::default(),
                    callflow: Some(reply.callflow),
                }),
            );
        }
        next.version = expected.map_or(1, |v| v + 1);
        next.remember(&action.event_id);
        let committed = if shared.store.commits_each_transition() {
            shared
                .store
                .commit(session, expected, &next, &action.event_id)
                .await
        } else {
            // The actor's record is the session's truth; the store gets it at passivation.
            Ok(Commit::Written)
        };
        match committed {
            // Deferred: the store is down and queued the write; this actor's record is the
            // truth until the queue is flushed.
            Ok(Commit::Written | Commit::Deferred) => {
                if kind == AnswerKind::Advanced && expected.is_none() {
                    kind = AnswerKind::Started;
                }
                return (
                    Some(next),
                    Ok(Answer {
                        body,
                        kind,
                        flow: Some(flow),
                        trace: reply.trace,
                        callflow: Some(reply.callflow),
                    }),
                );
            }
            Ok(Commit::Conflict(current)) => {
                // Another replica moved the session on: adopt its state and recompute.
                shared.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                let current = current.map(|r| *r);
                if let Some(answer) = current
                    .as_ref()
                    .and_then(|r| duplicate(r, &action.event_id))
                {
                    return (current, Ok(answer));
                }
                record = current;
            }
            Err(err) => return (None, Err(RuntimeError::Store(err))),
        }
    }
    (None, Err(RuntimeError::Conflict))
}

fn duplicate(record: &Record, event_id: &str) -> Option<Answer> {
    record.answer_for(event_id).map(|body| Answer {
        body,
        kind: AnswerKind::Duplicate,
        flow: None,
        trace: Trace::default(),
        callflow: None,
    })
}

/// The first record of a session this server has no state for: a new call, or one resumed from
/// the `clientActionId` it echoes. `Err` is the answer when neither is possible.
fn begin(
    shared: &Shared,
    action: &CallAction,
) -> Result<(Record, Arc<Flow>, AnswerKind), Box<Answer>> {
    let flows = shared.flows();
    match action.call_status {
        CallStatus::CallReceived => match flows.for_number(&action.destination) {
            Some(flow) => Ok((
                Record::new(SessionState::new(flow, &action.source, &action.destination)),
                Arc::clone(flow),
                AnswerKind::Advanced,
            )),
            None => Err(Box::new(shared.fallback())),
        },
        _ => {
            let resumed = action
                .client_action_id
                .as_deref()
                .and_then(ActionId::parse)
                .and_then(|id| {
                    let flow = flows
                        .version(id.flow, id.version)
                        .or_else(|| flows.latest(id.flow))?;
                    let state =
                        SessionState::resume(flow, &id, &action.source, &action.destination)?;
                    Some((Record::new(state), Arc::clone(flow)))
                });
            match resumed {
                Some((record, flow)) => Ok((record, flow, AnswerKind::Resumed)),
                None => Err(Box::new(shared.apology(AnswerKind::Unresolved))),
            }
        }
    }
}

/// The record an outbound session was registered with, as the session's first record.
fn adopt(
    shared: &Shared,
    mut record: Record,
) -> Result<(Record, Arc<Flow>, AnswerKind), Box<Answer>> {
    let flows = shared.flows();
    match flows.for_session(&record.state.flow, record.state.version) {
        Some(flow) => {
            // Versions count this session's writes; the ticket's was the registration.
            record.version = 0;
            Ok((record, Arc::clone(flow), AnswerKind::Started))
        }
        None => Err(Box::new(shared.apology(AnswerKind::Unresolved))),
    }
}
