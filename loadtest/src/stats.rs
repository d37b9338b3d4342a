//! What a run observed, collected from every call as it happens.
//!
//! Counters the progress bar reads many times a second are atomics; everything else
//! (latency histograms, errors by code, samples of bad answers) sits behind one `std` mutex
//! that is held for a few hundred nanoseconds per delivery and never across an `.await`.
//!
//! Latency is recorded twice per delivery, in microseconds:
//! * from the *intended* send time (when the platform decided to send the webhook: the call's
//!   scheduled start in open loop, or the end of the simulated speech before it), so time spent
//!   queueing in the generator or waiting for a connection is not hidden (no coordinated
//!   omission);
//! * from the actual send time (the server's service time as seen on the wire).
//!
//! Every delivery, call and error is also counted in the [`Series`] bucket of its second, and
//! every delivery by its target, for the report's time series and per-replica table.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::call::{Outcome, Transfer};
use crate::client::Reply;
use crate::series::{ErrorKind, Series};

/// The kinds of webhook the platform sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// VCA `CALL_RECEIVED`.
    CallReceived,
    /// VCA `ACTION_COMPLETED`.
    ActionCompleted,
    /// VSS.
    SessionSummary,
    /// VCS.
    CallStatus,
}

impl EventKind {
    /// Every kind, in report order.
    pub const ALL: [EventKind; 4] = [
        Self::CallReceived,
        Self::ActionCompleted,
        Self::SessionSummary,
        Self::CallStatus,
    ];

    /// The label used in reports.
    pub const fn label(self) -> &'static str {
        match self {
            Self::CallReceived => "CALL_RECEIVED",
            Self::ActionCompleted => "ACTION_COMPLETED",
            Self::SessionSummary => "SESSION_SUMMARY",
            Self::CallStatus => "CALL_STATUS",
        }
    }

    /// Whether the answer must be a callflow.
    pub const fn wants_callflow(self) -> bool {
        matches!(self, Self::CallReceived | Self::ActionCompleted)
    }

    const fn slot(self) -> usize {
        self as usize
    }
}

/// Longest text of a body kept in a sample.
const SAMPLE_BODY_CHARS: usize = 4096;

/// A body as text for a report, cut to a readable size.
pub fn body_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.chars().count() <= SAMPLE_BODY_CHARS {
        return text.into_owned();
    }
    let mut cut: String = text.chars().take(SAMPLE_BODY_CHARS).collect();
    cut.push_str("...(truncated)");
    cut
}

/// An answer the platform would refuse.
#[derive(Debug, Clone, Serialize)]
pub struct ViolationSample {
    /// The session.
    pub session_id: String,
    /// The webhook that was answered.
    pub event: &'static str,
    /// Its `eventId`.
    pub event_id: String,
    /// The target that answered.
    pub target: String,
    /// Every violation, as `code path: message`.
    pub violations: Vec<String>,
    /// The offending body.
    pub body: String,
}

/// A duplicate delivery answered differently from the original.
#[derive(Debug, Clone, Serialize)]
pub struct DuplicateSample {
    /// The session.
    pub session_id: String,
    /// The webhook that was delivered twice.
    pub event: &'static str,
    /// Its `eventId`.
    pub event_id: String,
    /// `concurrent` (both in flight together) or `late` (the copy after the session moved on).
    pub delivery: &'static str,
    /// The original's status and body.
    pub first: String,
    /// The copy's status and body.
    pub second: String,
}

/// A transport failure kind with its first message.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TransportTally {
    /// How many.
    pub count: u64,
    /// The first one's message.
    pub example: String,
}

/// What was seen of one target.
#[derive(Debug)]
pub struct TargetTally {
    /// POSTs made to it (copies included).
    pub webhooks: u64,
    /// Deliveries that failed (non-2xx, timeout, connection).
    pub failed: u64,
    /// Latency from the intended send time of its answers, µs.
    pub latency: Histogram<u64>,
}

/// Everything behind the mutex.
#[derive(Debug)]
pub struct Tally {
    /// Latency per event type from the intended send time, µs (index: `EventKind::ALL`).
    pub latency: Vec<Histogram<u64>>,
    /// Service time per event type, from the actual send, µs.
    pub service: Vec<Histogram<u64>>,
    /// Latency of the answers of the current progress window, µs.
    pub window: Histogram<u64>,
    /// Latency of every answer of the run, all event types (the progress line's p99).
    pub overall: Histogram<u64>,
    /// The run as a time series, for the charts.
    pub series: Series,
    /// Per target server.
    pub targets: Vec<TargetTally>,
    /// Errors by kind.
    pub errors_by_kind: [u64; ErrorKind::COUNT],
    /// Calls by how they ended.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Transfers by result.
    pub transfers: BTreeMap<&'static str, u64>,
    /// Non-2xx answers by status code.
    pub http_errors: BTreeMap<u16, u64>,
    /// Transport errors (no HTTP answer) by kind.
    pub transport_errors: BTreeMap<&'static str, TransportTally>,
    /// Requests that timed out, by event type.
    pub timeouts: BTreeMap<&'static str, u64>,
    /// Answers the callflow validator refused.
    pub violating_answers: u64,
    /// Validator violations by status code.
    pub violations_by_code: BTreeMap<i32, u64>,
    /// A few refused answers, kept for the report.
    pub violation_samples: Vec<ViolationSample>,
    /// Repeated deliveries sent.
    pub duplicates_sent: u64,
    /// Repeated deliveries whose answer was compared with the first.
    pub duplicates_compared: u64,
    /// Repeated deliveries answered differently from the first.
    pub duplicate_failures: u64,
    /// Those, by how the repeat was delivered.
    pub duplicate_failures_by_delivery: BTreeMap<&'static str, u64>,
    /// A few of them, kept for the report.
    pub duplicate_samples: Vec<DuplicateSample>,
    /// Open-loop calls not started because too many were in flight.
    pub skipped_calls: u64,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 hour at 3 significant digits; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant, valid histogram bounds")
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: EventKind::ALL.iter().map(|_| histogram()).collect(),
            service: EventKind::ALL.iter().map(|_| histogram()).collect(),
            window: histogram(),
            overall: histogram(),
            series: Series::new(Instant::now()),
            targets: Vec::new(),
            errors_by_kind: [0; ErrorKind::COUNT],
            outcomes: BTreeMap::new(),
            transfers: BTreeMap::new(),
            http_errors: BTreeMap::new(),
            transport_errors: BTreeMap::new(),
            timeouts: BTreeMap::new(),
            violating_answers: 0,
            violations_by_code: BTreeMap::new(),
            violation_samples: Vec::new(),
            duplicates_sent: 0,
            duplicates_compared: 0,
            duplicate_failures: 0,
            duplicate_failures_by_delivery: BTreeMap::new(),
            duplicate_samples: Vec::new(),
            skipped_calls: 0,
        }
    }
}

/// A point-in-time view for the progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Calls started.
    pub started: u64,
    /// Calls finished.
    pub completed: u64,
    /// Deliveries made.
    pub webhooks: u64,
    /// Problems so far.
    pub problems: u64,
    /// p99 latency of the run so far.
    pub p99: Option<Duration>,
    /// p99 latency since the previous view.
    pub window_p99: Option<Duration>,
}

/// The run's observations.
#[derive(Debug)]
pub struct Stats {
    started: AtomicU64,
    completed: AtomicU64,
    webhooks: AtomicU64,
    problems: AtomicU64,
    sample_limit: usize,
    // A std mutex: held briefly and never across an await.
    tally: Mutex<Tally>,
}

impl Stats {
    /// Empty stats that keep up to `sample_limit` samples of each kind of problem.
    pub fn new(sample_limit: usize) -> Self {
        Self {
            started: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            webhooks: AtomicU64::new(0),
            problems: AtomicU64::new(0),
            sample_limit,
            tally: Mutex::new(Tally::new()),
        }
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        // A panic while holding the lock leaves counters that are still meaningful.
        self.tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts an error of `kind` at `when`, in the totals and in its second.
    fn problem(&self, t: &mut Tally, kind: ErrorKind, when: Instant) {
        self.problems.fetch_add(1, Ordering::Relaxed);
        t.errors_by_kind[kind as usize] += 1;
        t.series.bucket(when).errors[kind as usize] += 1;
    }

    /// Second 0 of the time series starts now (call it when the load starts).
    pub fn start_clock(&self, start: Instant) {
        self.tally().series.restart(start);
    }

    /// A call began.
    pub fn call_started(&self) {
        let now = Instant::now();
        self.tally().series.bucket(now).calls_started += 1;
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// A call ended.
    pub fn call_finished(&self, outcome: Outcome, transfers: &[Transfer]) {
        let now = Instant::now();
        {
            let mut t = self.tally();
            if outcome == Outcome::StepLimit {
                self.problem(&mut t, ErrorKind::StepLimit, now);
            }
            *t.outcomes.entry(outcome).or_default() += 1;
            for transfer in transfers {
                *t.transfers.entry(transfer.label()).or_default() += 1;
            }
            t.series.bucket(now).calls_completed += 1;
        }
        self.completed.fetch_add(1, Ordering::Relaxed);
    }

    /// An open-loop call was not started because too many were in flight.
    pub fn call_skipped(&self) {
        let now = Instant::now();
        let mut t = self.tally();
        self.problem(&mut t, ErrorKind::Skipped, now);
        t.skipped_calls += 1;
    }

    /// Records one delivery to target number `target` (its index in the target list).
    /// `intended` is when the platform meant to send it; a duplicate's latency is not recorded
    /// (its original's is).
    #[allow(clippy::too_many_arguments)] // one delivery's facts, straight from the exchange
    pub fn delivery(
        &self,
        kind: EventKind,
        target: usize,
        intended: Instant,
        sent: Instant,
        done: Instant,
        reply: &Reply,
        duplicate: bool,
    ) {
        self.webhooks.fetch_add(1, Ordering::Relaxed);
        let failure = match reply {
            Reply::Answered { status, .. } if (200..300).contains(status) => None,
            Reply::Answered { .. } => Some(ErrorKind::Http),
            Reply::Timeout => Some(ErrorKind::Timeout),
            Reply::Transport { .. } => Some(ErrorKind::Connection),
        };
        let mut t = self.tally();
        if let Some(kind) = failure {
            self.problem(&mut t, kind, done);
        }
        t.series.webhook(done, target);
        let by_target = target_tally(&mut t.targets, target);
        by_target.webhooks += 1;
        by_target.failed += u64::from(failure.is_some());
        if duplicate {
            t.duplicates_sent += 1;
        }
        match reply {
            Reply::Answered { status, .. } => {
                if !duplicate {
                    let latency = micros(done.saturating_duration_since(intended));
                    let service = micros(done.saturating_duration_since(sent));
                    t.latency[kind.slot()].saturating_record(latency);
                    t.service[kind.slot()].saturating_record(service);
                    t.window.saturating_record(latency);
                    t.overall.saturating_record(latency);
                    t.targets[target].latency.saturating_record(latency);
                    t.series.latency(done, latency);
                }
                if failure.is_some() {
                    *t.http_errors.entry(*status).or_default() += 1;
                }
            }
            Reply::Timeout => *t.timeouts.entry(kind.label()).or_default() += 1,
            Reply::Transport { kind, message } => {
                let e = t.transport_errors.entry(kind).or_default();
                if e.count == 0 {
                    e.example.clone_from(message);
                }
                e.count += 1;
            }
        }
    }

    /// An answer broke the protocol.
    pub fn violation(
        &self,
        codes: impl IntoIterator<Item = i32>,
        sample: impl FnOnce() -> ViolationSample,
    ) {
        let now = Instant::now();
        let mut t = self.tally();
        self.problem(&mut t, ErrorKind::Violation, now);
        t.violating_answers += 1;
        for code in codes {
            *t.violations_by_code.entry(code).or_default() += 1;
        }
        if t.violation_samples.len() < self.sample_limit {
            t.violation_samples.push(sample());
        }
    }

    /// A duplicate's answer was compared with the original's.
    pub fn duplicate_compared(
        &self,
        consistent: bool,
        delivery: &'static str,
        sample: impl FnOnce() -> DuplicateSample,
    ) {
        let now = Instant::now();
        let mut t = self.tally();
        if !consistent {
            self.problem(&mut t, ErrorKind::DuplicateMismatch, now);
        }
        t.duplicates_compared += 1;
        if !consistent {
            t.duplicate_failures += 1;
            *t.duplicate_failures_by_delivery
                .entry(delivery)
                .or_default() += 1;
            if t.duplicate_samples.len() < self.sample_limit {
                t.duplicate_samples.push(sample());
            }
        }
    }

    /// Calls started so far.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Calls finished so far.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Problems so far.
    pub fn problems(&self) -> u64 {
        self.problems.load(Ordering::Relaxed)
    }

    /// A view for the progress bar; resets the window of the live p99.
    pub fn progress(&self) -> Progress {
        let p99 = |h: &Histogram<u64>| {
            (!h.is_empty()).then(|| Duration::from_micros(h.value_at_quantile(0.99)))
        };
        let (overall, window) = {
            let mut t = self.tally();
            let window = p99(&t.window);
            t.window.reset();
            (p99(&t.overall), window)
        };
        Progress {
            started: self.started(),
            completed: self.completed(),
            webhooks: self.webhooks.load(Ordering::Relaxed),
            problems: self.problems(),
            p99: overall,
            window_p99: window,
        }
    }

    /// Runs `f` on the tally (for building the report).
    pub fn with_tally<R>(&self, f: impl FnOnce(&Tally) -> R) -> R {
        f(&self.tally())
    }

    /// Deliveries made.
    pub fn webhooks(&self) -> u64 {
        self.webhooks.load(Ordering::Relaxed)
    }
}

/// The tally of target `index`, added when first seen.
fn target_tally(targets: &mut Vec<TargetTally>, index: usize) -> &mut TargetTally {
    while targets.len() <= index {
        targets.push(TargetTally {
            webhooks: 0,
            failed: 0,
            latency: histogram(),
        });
    }
    &mut targets[index]
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}
