//! The async driver of virtual calls: plays a [`VirtualCall`] against the webhook server.
//!
//! [`Platform`] is what every call of a run shares: the platform's settings, the HTTP client,
//! the targets, the fault injection and the [`Stats`]. [`Platform::inbound`] plays one inbound
//! call from `CALL_RECEIVED` to `SESSION_SUMMARY`; [`Platform::outbound`] plays a call placed
//! through the Callflows API (the emulator), starting with its `makeCall`.
//!
//! Every answer to a `CALL_ACTION` is checked the way the platform checks it: a 2xx status, then
//! the validator in [`Mode::Webhook`] (what [`validate_slice`] does; a warning fails too, since our
//! own answers must draw none); a call whose answer fails is dropped and summarized
//! as `ERROR`, as the platform would. Simulated speech is waited out with tokio's timer, and the
//! next webhook's *intended* send time is the end of that speech, so latency is measured from
//! when the platform meant to send, not from when the generator got round to it.
//!
//! Faults ([`Faults`]) come from the call's own seeded stream: a duplicated delivery sends the
//! same body twice at once, a reordered one sends a stale copy after the session's next event
//! was answered (the last event's copy goes before the summary), a delayed one waits before it
//! goes. A concurrent copy must get a
//! byte-identical answer; a stale copy may get its own first answer or the session's latest one
//! (the answer to the event sent since), since a session keeps one answer, its last, to repeat.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::Uri;
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::Value;
use switchboard_protocol::{
    Callflow, Mode, Severity, StatusCode, Violation, validate_json, validate_slice,
};
use tokio::time::{Instant, sleep_until};

/// Waits until `deadline`, returning at once when it has passed: tokio's timer rounds every
/// sleep up to its next millisecond tick, which would add up to 1 ms to each webhook of a run
/// without simulated speech, and that wait would be charged to the server's latency.
pub(crate) async fn wait_until(deadline: Instant) {
    if deadline > Instant::now() {
        sleep_until(deadline).await;
    }
}

use crate::call::{End, Execution, Failure, Next, Outcome, Outgoing, PlatformConfig, VirtualCall};
use crate::client::{Exchange, Reply, Targets, WebhookClient};
use crate::ids::Uuid;
use crate::stats::{DuplicateSample, EventKind, Stats, ViolationSample, body_text};

/// Shares of deliveries that misbehave as a busy network and a retrying platform do.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Share of deliveries sent twice at once.
    pub duplicate: f64,
    /// Share of deliveries sent again after the session's next event was answered.
    pub reorder: f64,
    /// Share of deliveries held back for up to `delay_max` before they go.
    pub delay: f64,
    /// The longest injected delay.
    pub delay_max: Duration,
}

impl Faults {
    /// Whether any fault is injected.
    pub fn any(&self) -> bool {
        self.duplicate > 0.0 || self.reorder > 0.0 || self.delay > 0.0
    }
}

fn roll(rng: &mut StdRng, share: f64) -> bool {
    share > 0.0 && rng.random_bool(share.min(1.0))
}

/// What every call of a run shares.
#[derive(Debug)]
pub struct Platform {
    /// How the platform and its callers behave.
    pub config: Arc<PlatformConfig>,
    /// The keep-alive client.
    pub client: WebhookClient,
    /// Where webhooks go.
    pub targets: Targets,
    /// Injected faults.
    pub faults: Faults,
    /// What was observed.
    pub stats: Arc<Stats>,
}

/// How a call of the platform ended: its outcome, and what became of its session summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallEnd {
    /// How the call ended.
    pub outcome: Outcome,
    /// When the session summary was sent.
    pub summary_at: SystemTime,
    /// The HTTP status the webhook answered the summary with; `None` when it did not answer
    /// (unreachable, cut, timed out): the platform does not send a summary again, so a server
    /// down at that moment never learns how the call ended.
    pub summary_status: Option<u16>,
}

/// A delivery kept back to be sent again out of order.
#[derive(Debug)]
struct Stale {
    kind: EventKind,
    event_id: Uuid,
    body: Bytes,
    first: Reply,
}

/// The per-call state of delivering: its fault stream and any stale copy waiting to go.
#[derive(Debug)]
struct Delivery {
    session_id: Uuid,
    faults: StdRng,
    stale: Option<Stale>,
}

/// How an answer to a `CALL_ACTION` turned out.
enum Answer {
    Callflow(Box<Callflow>),
    Failed(Failure),
}

impl Platform {
    /// Plays inbound call `index`, whose `CALL_RECEIVED` is meant to go at `intended`.
    pub async fn inbound(&self, index: u64, intended: Instant) -> Outcome {
        self.stats.call_started();
        let now = SystemTime::now();
        let mut call = VirtualCall::inbound(self.config.clone(), index, now);
        let mut delivery = Delivery {
            session_id: call.session_id(),
            faults: call.fault_rng(),
            stale: None,
        };
        let received = call.call_received(now);
        let answer = if self.config.call_status {
            let status = call.call_status(now);
            let status_target = self.targets.pick_index(&mut delivery.faults);
            // The platform sends telemetry beside the call action, not before it.
            let (answer, ()) = tokio::join!(
                self.call_action(&mut delivery, EventKind::CallReceived, received, intended),
                self.notify_status(status_target, status, intended),
            );
            answer
        } else {
            self.call_action(&mut delivery, EventKind::CallReceived, received, intended)
                .await
        };
        let end = match answer {
            Answer::Callflow(callflow) => {
                let run = call.execute(&callflow, SystemTime::now());
                self.continue_call(&mut call, &mut delivery, run).await
            }
            Answer::Failed(failure) => End::Failed(failure),
        };
        self.finish(&mut call, &mut delivery, end).await.outcome
    }

    /// Plays an outbound call placed by the Callflows API: dials the callflow's `makeCall`,
    /// then runs the rest of it and whatever the webhook answers next.
    /// Returns the outcome and what became of the session summary.
    pub async fn outbound(&self, mut call: VirtualCall, callflow: &Callflow) -> CallEnd {
        self.stats.call_started();
        let mut delivery = Delivery {
            session_id: call.session_id(),
            faults: call.fault_rng(),
            stale: None,
        };
        let run = call.dial(callflow, SystemTime::now());
        let end = self.continue_call(&mut call, &mut delivery, run).await;
        self.finish(&mut call, &mut delivery, end).await
    }

    /// An outbound call that was never placed because its `validUntil` passed.
    pub async fn expired(&self, mut call: VirtualCall) -> CallEnd {
        self.stats.call_started();
        let mut delivery = Delivery {
            session_id: call.session_id(),
            faults: call.fault_rng(),
            stale: None,
        };
        self.finish(&mut call, &mut delivery, End::Expired).await
    }

    /// Waits out each execution and asks for the next callflow until the call ends.
    async fn continue_call(
        &self,
        call: &mut VirtualCall,
        delivery: &mut Delivery,
        mut run: Execution,
    ) -> End {
        loop {
            let intended = Instant::now() + run.spoken;
            let completion = match run.next {
                Next::End(end) => {
                    wait_until(intended).await;
                    return end;
                }
                Next::Continue(completion) => completion,
            };
            wait_until(intended).await;
            let out = call.action_completed(&completion, SystemTime::now());
            match self
                .call_action(delivery, EventKind::ActionCompleted, out, intended)
                .await
            {
                Answer::Callflow(callflow) => run = call.execute(&callflow, SystemTime::now()),
                Answer::Failed(failure) => return End::Failed(failure),
            }
        }
    }

    /// Sends the session summary, flushes any stale copy and counts the call.
    async fn finish(&self, call: &mut VirtualCall, delivery: &mut Delivery, end: End) -> CallEnd {
        // A late copy of the last event goes before the summary: the platform sends nothing
        // for a session after its summary, and a server has by then forgotten the session
        // (a copy after it is answered as a session with no state, not from its record).
        if let Some(stale) = delivery.stale.take() {
            let latest = stale.first.clone();
            self.send_stale(delivery, stale, &latest).await;
        }
        let summary_at = SystemTime::now();
        let summary = call.session_summary(end, summary_at);
        let intended = Instant::now();
        let (_, exchange) = self
            .deliver(delivery, EventKind::SessionSummary, summary, intended)
            .await;
        // A late copy of the summary itself (acknowledged either way).
        if let Some(stale) = delivery.stale.take() {
            self.send_stale(delivery, stale, &exchange.reply).await;
        }
        let summary_status = match exchange.reply {
            Reply::Answered { status, .. } => Some(status),
            Reply::Timeout | Reply::Transport { .. } => None,
        };
        let outcome = end.outcome();
        self.stats.call_finished(outcome, call.transfers());
        CallEnd {
            outcome,
            summary_at,
            summary_status,
        }
    }

    /// A `CALL_STATUS`: fire and count, no faults (it is telemetry).
    async fn notify_status(&self, target: usize, out: Outgoing, intended: Instant) {
        let exchange = self
            .client
            .post(self.targets.get(target), Bytes::from(out.body))
            .await;
        self.stats.delivery(
            EventKind::CallStatus,
            target,
            intended,
            exchange.sent,
            exchange.done,
            &exchange.reply,
            false,
        );
    }

    /// Delivers a `CALL_ACTION` and checks its answer as the platform does.
    async fn call_action(
        &self,
        delivery: &mut Delivery,
        kind: EventKind,
        out: Outgoing,
        intended: Instant,
    ) -> Answer {
        let event_id = out.event_id;
        let (target, exchange) = self.deliver(delivery, kind, out, intended).await;
        let body = match exchange.reply {
            Reply::Answered { status, body } if (200..300).contains(&status) => body,
            Reply::Answered { status, .. } => return Answer::Failed(Failure::Http(status)),
            Reply::Timeout => return Answer::Failed(Failure::Timeout),
            Reply::Transport { .. } => return Answer::Failed(Failure::Unreachable),
        };
        // One parse: the validator reads the tree, then the callflow takes its strings over.
        let (callflow, violations) = match serde_json::from_slice::<Value>(&body) {
            Ok(tree) => {
                let violations = validate_json(&tree, Mode::Webhook);
                if violations.is_empty() {
                    match serde_json::from_value::<Callflow>(tree) {
                        Ok(callflow) => (Some(callflow), violations),
                        // The validator and the typed callflow disagree: still an answer the
                        // platform cannot run.
                        Err(err) => (
                            None,
                            vec![Violation {
                                path: switchboard_protocol::JsonPath::root(),
                                code: StatusCode::Unknown,
                                message: format!("valid by the rules but not a callflow: {err}"),
                                severity: Severity::Error,
                            }],
                        ),
                    }
                } else {
                    (None, violations)
                }
            }
            Err(_) => (None, validate_slice(&body, Mode::Webhook)),
        };
        match callflow {
            Some(callflow) => Answer::Callflow(Box::new(callflow)),
            None => {
                self.stats
                    .violation(violations.iter().map(|v| v.code.as_i32()), || {
                        ViolationSample {
                            session_id: delivery.session_id.to_string(),
                            event: kind.label(),
                            event_id: event_id.to_string(),
                            target: target.to_string(),
                            violations: violations.iter().map(ToString::to_string).collect(),
                            body: body_text(&body),
                        }
                    });
                Answer::Failed(Failure::InvalidCallflow)
            }
        }
    }

    /// Sends one webhook with its faults, records it, and returns the original's exchange.
    async fn deliver(
        &self,
        delivery: &mut Delivery,
        kind: EventKind,
        out: Outgoing,
        mut intended: Instant,
    ) -> (Uri, Exchange) {
        let faults = self.faults;
        let duplicate = roll(&mut delivery.faults, faults.duplicate);
        let reorder = roll(&mut delivery.faults, faults.reorder);
        if roll(&mut delivery.faults, faults.delay) && !faults.delay_max.is_zero() {
            // The network's delay, not the server's: the platform meant to send it later.
            intended += faults
                .delay_max
                .mul_f64(delivery.faults.random_range(0.0..1.0));
        }
        wait_until(intended).await;
        let body = Bytes::from(out.body);
        let index = self.targets.pick_index(&mut delivery.faults);
        let target = self.targets.get(index).clone();
        let exchange = if duplicate {
            let copy_index = self.targets.pick_index(&mut delivery.faults);
            let (first, copy) = tokio::join!(
                self.client.post(&target, body.clone()),
                self.client.post(self.targets.get(copy_index), body.clone())
            );
            self.record(kind, copy_index, intended, &copy, true);
            self.compare(
                delivery.session_id,
                kind,
                out.event_id,
                "concurrent",
                &first.reply,
                &copy.reply,
            );
            first
        } else {
            self.client.post(&target, body.clone()).await
        };
        self.record(kind, index, intended, &exchange, false);
        // A stale copy of the previous event goes now that this one was answered.
        if let Some(stale) = delivery.stale.take() {
            self.send_stale(delivery, stale, &exchange.reply).await;
        }
        if reorder {
            delivery.stale = Some(Stale {
                kind,
                event_id: out.event_id,
                body,
                first: exchange.reply.clone(),
            });
        }
        (target, exchange)
    }

    /// Sends the stale copy; `latest` is the session's answer to the event sent since.
    async fn send_stale(&self, delivery: &mut Delivery, stale: Stale, latest: &Reply) {
        let session_id = delivery.session_id;
        let target = self.targets.pick_index(&mut delivery.faults);
        let copy = self.client.post(self.targets.get(target), stale.body).await;
        self.record(stale.kind, target, copy.sent, &copy, true);
        // The session's latest answer is as right as the copy's first one.
        let expected = if same_answer(latest, &copy.reply) {
            latest
        } else {
            &stale.first
        };
        self.compare(
            session_id,
            stale.kind,
            stale.event_id,
            "late",
            expected,
            &copy.reply,
        );
    }

    fn record(
        &self,
        kind: EventKind,
        target: usize,
        intended: Instant,
        exchange: &Exchange,
        duplicate: bool,
    ) {
        self.stats.delivery(
            kind,
            target,
            intended,
            exchange.sent,
            exchange.done,
            &exchange.reply,
            duplicate,
        );
    }

    /// Compares a copy's answer with the original's. Only two complete answers are compared:
    /// a copy that timed out or failed is already counted as such.
    fn compare(
        &self,
        session_id: Uuid,
        kind: EventKind,
        event_id: Uuid,
        delivery: &'static str,
        first: &Reply,
        second: &Reply,
    ) {
        let (
            Reply::Answered {
                status: s1,
                body: b1,
            },
            Reply::Answered {
                status: s2,
                body: b2,
            },
        ) = (first, second)
        else {
            return;
        };
        let consistent = s1 == s2 && b1 == b2;
        self.stats
            .duplicate_compared(consistent, delivery, || DuplicateSample {
                session_id: session_id.to_string(),
                event: kind.label(),
                event_id: event_id.to_string(),
                delivery,
                first: format!("HTTP {s1} {}", body_text(b1)),
                second: format!("HTTP {s2} {}", body_text(b2)),
            });
    }
}

/// Whether two replies are both complete answers with the same status and body.
fn same_answer(a: &Reply, b: &Reply) -> bool {
    matches!(
        (a, b),
        (
            Reply::Answered { status: s1, body: b1 },
            Reply::Answered { status: s2, body: b2 },
        ) if s1 == s2 && b1 == b2
    )
}
