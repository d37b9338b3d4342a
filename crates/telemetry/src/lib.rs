//! Switchboard's metrics: what the server records, exposed for Prometheus at `GET /metrics`,
//! and the per-flow report behind `GET /v1/flows/{id}/report`.
//!
//! The HTTP layer holds one [`Telemetry`] (from [`Telemetry::install`]) and tells it what
//! happened: an answer made ([`Telemetry::record_answer`]), a session ended
//! ([`Telemetry::record_ended`]), a response sent ([`Telemetry::record_http`]), flows loaded
//! ([`Telemetry::on_flows`]). It never names a metric; this crate owns the names, the labels and
//! the buckets, and keeps them bounded (no session ids, no phone numbers).
//!
//! Recording is cheap by construction: every series is registered up front (flows' nodes when
//! the flows are loaded), so a webhook costs a few atomic increments, one histogram sample and a
//! read lock, with no label formatting and no allocation.
//!
//! # Layout
//! * [`catalogue`]: every metric's name, type, labels and meaning; the histogram buckets.
//! * `funnel`: per-flow, per-node figures and the [`FlowReport`].
//! * this module: [`Telemetry`], the recorder and the global figures.
//!
//! Metrics the Redis store records itself through the `metrics` facade land in the same
//! exposition, because [`Telemetry::install`] makes its recorder the global one.

pub mod catalogue;
mod funnel;
#[cfg(test)]
mod tests;

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusRecorder};
use switchboard_flow::FlowSet;
use switchboard_protocol::Action;
use switchboard_runtime::{Answer, AnswerKind, Counters, Ended, RuntimeError, StoreErrorKind};

pub use funnel::{FlowReport, NodeReport};

use crate::catalogue::{self as names, CATALOGUE, LATENCY_BUCKETS, MetricKind};
use crate::funnel::{Funnel, STATUS_COUNT, status_index, status_label};

/// How often histogram samples are folded into buckets when nobody scrapes (a scrape does it
/// too); without it, samples would pile up in memory on a replica nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Most shards given their own `switchboard_shard_actors` series; the rest are not reported.
const MAX_SHARDS: usize = 1024;

/// Which webhook an answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `CALL_ACTION` with `CALL_RECEIVED`: a call starts.
    CallReceived,
    /// `CALL_ACTION` with `ACTION_COMPLETED`: the last callflow finished.
    ActionCompleted,
}

impl EventKind {
    const ALL: [Self; 2] = [Self::CallReceived, Self::ActionCompleted];

    /// The `event` label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::CallReceived => "call_received",
            Self::ActionCompleted => "action_completed",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::CallReceived => 0,
            Self::ActionCompleted => 1,
        }
    }
}

/// How a webhook was answered, for the `outcome` label: an [`AnswerKind`], or the
/// [`RuntimeError`] that made it a 503.
const OUTCOMES: [&str; 11] = [
    "started",
    "advanced",
    "resumed",
    "duplicate",
    "stale",
    "unrouted",
    "unresolved",
    "busy",
    "timeout",
    "conflict",
    "store_error",
];

const fn answer_outcome(kind: AnswerKind) -> usize {
    match kind {
        AnswerKind::Started => 0,
        AnswerKind::Advanced => 1,
        AnswerKind::Resumed => 2,
        AnswerKind::Duplicate => 3,
        AnswerKind::Stale => 4,
        AnswerKind::Unrouted => 5,
        AnswerKind::Unresolved => 6,
    }
}

const fn failure_outcome(error: &RuntimeError) -> usize {
    match error {
        RuntimeError::Busy => 7,
        RuntimeError::Timeout => 8,
        RuntimeError::Conflict => 9,
        RuntimeError::Store(_) => 10,
    }
}

/// Callflow actions, for the `action` label (the wire names).
const ACTIONS: [&str; 5] = ["say", "sayAndCapture", "playFile", "makeCall", "hangup"];

const fn action_index(action: &Action) -> usize {
    match action {
        Action::Say(_) => 0,
        Action::SayAndCapture(_) => 1,
        Action::PlayFile(_) => 2,
        Action::MakeCall(_) => 3,
        Action::Hangup => 4,
    }
}

/// The running build, exposed as `switchboard_build_info{version,commit} 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// The crate version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The source commit, or `unknown`.
    pub commit: String,
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The Prometheus recorder refused its configuration (a bucket list, say).
    #[error("the Prometheus recorder could not be built: {0}")]
    Recorder(#[from] BuildError),
    /// The thread that keeps histograms bounded could not be started.
    #[error("could not start the metrics upkeep thread: {0}")]
    Upkeep(#[source] std::io::Error),
}

/// Everything the server records. Share it behind the `Arc` that [`Telemetry::install`]
/// returns; every method takes `&self`.
pub struct Telemetry {
    recorder: Arc<PrometheusRecorder>,
    global: bool,
    started_at: DateTime<Utc>,
    /// `[event][outcome]`.
    webhook: [[Histogram; OUTCOMES.len()]; 2],
    http_duration: Histogram,
    /// By status code 100..=599, registered on first use (the codes a server sends are few).
    http_status: Box<[OnceLock<Counter>]>,
    status_events: Counter,
    live: Gauge,
    passivated: Counter,
    rehydrated: Counter,
    conflicts: Counter,
    /// By [`StoreErrorKind`], in the order of [`StoreErrorKind::ALL`].
    store_errors: [Counter; StoreErrorKind::ALL.len()],
    mailbox_full: Counter,
    resumed: Counter,
    unresolved: Counter,
    duplicate: Counter,
    stale: Counter,
    unrouted: Counter,
    actions: [Counter; ACTIONS.len()],
    reload_ok: Counter,
    reload_error: Counter,
    flows_loaded: Gauge,
    /// `switchboard_sessions_ended_total{flow=""}`: summaries of sessions whose flow this
    /// replica never loaded.
    ended_elsewhere: [Counter; STATUS_COUNT],
    /// Grown on first use of a shard; the lock is never held across an await.
    shards: RwLock<Vec<Gauge>>,
    funnel: Funnel,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("global", &self.global)
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Builds the Prometheus recorder, registers every series that does not depend on the
    /// flows, and makes the recorder the process's global one, so metrics other crates record
    /// through the `metrics` facade (the Redis store's) are in [`Telemetry::render`] too.
    ///
    /// Call it before anything registers metrics through the facade: the Redis store takes its
    /// handles when it is built, and a handle taken before a global recorder exists stays bound
    /// to the no-op recorder for good.
    ///
    /// Only the first call in a process can take the global slot; later ones (tests, mostly)
    /// get a recorder of their own that renders only what this crate records, and
    /// [`Telemetry::is_global`] says so. It never panics.
    pub fn install(build: BuildInfo) -> Result<Arc<Self>, TelemetryError> {
        let mut telemetry = Self::new(&build, Utc::now())?;
        telemetry.global = metrics::set_global_recorder(Arc::clone(&telemetry.recorder)).is_ok();
        let telemetry = Arc::new(telemetry);
        let weak = Arc::downgrade(&telemetry);
        std::thread::Builder::new()
            .name("metrics-upkeep".to_owned())
            .spawn(move || upkeep(&weak))
            .map_err(TelemetryError::Upkeep)?;
        Ok(telemetry)
    }

    fn new(build: &BuildInfo, started_at: DateTime<Utc>) -> Result<Self, TelemetryError> {
        let recorder = Arc::new(
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS)?
                .build_recorder(),
        );
        for doc in CATALOGUE {
            describe(recorder.as_ref(), doc);
        }
        let r: &dyn Recorder = recorder.as_ref();
        let plain = |name: &'static str| counter(r, name, &[]);
        let webhook = EventKind::ALL.map(|event| {
            OUTCOMES.map(|outcome| {
                let labels = [("event", event.label()), ("outcome", outcome)];
                histogram(r, names::WEBHOOK_DURATION, &labels)
            })
        });
        let build_info = gauge(
            r,
            names::BUILD_INFO,
            &[("version", &build.version), ("commit", &build.commit)],
        );
        build_info.set(1.0);
        Ok(Self {
            global: false,
            started_at,
            webhook,
            http_duration: histogram(r, names::HTTP_DURATION, &[]),
            http_status: (100..600).map(|_| OnceLock::new()).collect(),
            status_events: plain(names::STATUS_EVENTS),
            live: gauge(r, names::SESSIONS_LIVE, &[]),
            passivated: plain(names::SESSIONS_PASSIVATED),
            rehydrated: plain(names::SESSIONS_REHYDRATED),
            conflicts: plain(names::STORE_CONFLICTS),
            store_errors: StoreErrorKind::ALL
                .map(|kind| counter(r, names::STORE_ERRORS, &[("kind", kind.label())])),
            mailbox_full: plain(names::MAILBOX_FULL),
            resumed: counter(r, names::SESSIONS_RESUMED, &[("result", "resumed")]),
            unresolved: counter(r, names::SESSIONS_RESUMED, &[("result", "unresolved")]),
            duplicate: counter(r, names::DELIVERIES_REPEATED, &[("kind", "duplicate")]),
            stale: counter(r, names::DELIVERIES_REPEATED, &[("kind", "stale")]),
            unrouted: plain(names::CALLS_UNROUTED),
            actions: ACTIONS
                .map(|action| counter(r, names::CALLFLOW_ACTIONS, &[("action", action)])),
            reload_ok: counter(r, names::FLOW_RELOADS, &[("result", "ok")]),
            reload_error: counter(r, names::FLOW_RELOADS, &[("result", "error")]),
            flows_loaded: gauge(r, names::FLOWS_LOADED, &[]),
            ended_elsewhere: std::array::from_fn(|i| {
                counter(
                    r,
                    names::SESSIONS_ENDED,
                    &[("flow", ""), ("status", status_label(i))],
                )
            }),
            shards: RwLock::new(Vec::new()),
            funnel: Funnel::default(),
            recorder,
        })
    }

    /// Whether this instance's recorder is the process's global one (see [`Telemetry::install`]).
    pub fn is_global(&self) -> bool {
        self.global
    }

    /// The Prometheus text exposition, for `GET /metrics`
    /// (`Content-Type: text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }

    /// [`Telemetry::render`], after copying the runtime's own counters into their series.
    pub fn render_with(&self, counters: &Counters) -> String {
        let read = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        self.passivated.absolute(read(&counters.passivated));
        self.rehydrated.absolute(read(&counters.rehydrated));
        self.conflicts.absolute(read(&counters.conflicts));
        self.mailbox_full.absolute(read(&counters.mailbox_full));
        self.render()
    }

    /// Registers every flow of a freshly loaded (or reloaded) set, so webhooks on them record
    /// without registering anything. Versions registered before stay, for sessions that still
    /// run on them.
    pub fn on_flows(&self, flows: &FlowSet) {
        let all = flows.flows();
        for flow in &all {
            self.funnel.register(self.recorder.as_ref(), flow, true);
        }
        self.flows_loaded.set(all.len() as f64);
    }

    /// Records the answer to a `CALL_ACTION`: its latency, how it came about, the nodes it went
    /// through and the callflow actions it sent.
    pub fn record_answer(&self, event: EventKind, answer: &Answer, elapsed: Duration) {
        self.webhook[event.index()][answer_outcome(answer.kind)].record(elapsed.as_secs_f64());
        match answer.kind {
            AnswerKind::Resumed => self.resumed.increment(1),
            AnswerKind::Unresolved => self.unresolved.increment(1),
            AnswerKind::Duplicate => self.duplicate.increment(1),
            AnswerKind::Stale => self.stale.increment(1),
            AnswerKind::Unrouted => self.unrouted.increment(1),
            AnswerKind::Started | AnswerKind::Advanced => {}
        }
        if let Some(flow) = &answer.flow {
            let started = answer.kind == AnswerKind::Started;
            if !self.funnel.record(flow, &answer.trace, started) {
                // A version no reload announced (one dropped from the tables and back in use):
                // register it once, then count.
                self.funnel.register(self.recorder.as_ref(), flow, false);
                self.funnel.record(flow, &answer.trace, started);
            }
        }
        // Repeats re-send an answer already counted: they count as deliveries, not actions.
        let repeat = matches!(answer.kind, AnswerKind::Duplicate | AnswerKind::Stale);
        if let Some(callflow) = answer.callflow.as_ref().filter(|_| !repeat) {
            for action in &callflow.actions {
                self.actions[action_index(action)].increment(1);
            }
        }
    }

    /// Records a `CALL_ACTION` that got no answer (a 503 the platform will retry).
    pub fn record_failure(&self, event: EventKind, error: &RuntimeError, elapsed: Duration) {
        self.webhook[event.index()][failure_outcome(error)].record(elapsed.as_secs_f64());
        if let RuntimeError::Store(err) = error {
            let kind = err.kind();
            if let Some(i) = StoreErrorKind::ALL.iter().position(|k| *k == kind) {
                self.store_errors[i].increment(1);
            }
        }
    }

    /// Records a session summary: its status, and the node the caller was at when the call
    /// ended (that node's exit, or drop-off).
    pub fn record_ended(&self, ended: &Ended) {
        let status = status_index(&ended.status);
        let counted = ended.flow.as_deref().is_some_and(|flow| {
            self.funnel
                .record_ended(flow, ended.node.as_deref(), status)
        });
        if !counted {
            self.ended_elsewhere[status].increment(1);
        }
    }

    /// Records a `CALL_STATUS` webhook.
    pub fn record_status_event(&self) {
        self.status_events.increment(1);
    }

    /// Records an HTTP response (every route, `/metrics` included).
    pub fn record_http(&self, status: u16, elapsed: Duration) {
        self.http_duration.record(elapsed.as_secs_f64());
        let status = status.clamp(100, 599);
        self.http_status[usize::from(status - 100)]
            .get_or_init(|| {
                let code = status.to_string();
                counter(
                    self.recorder.as_ref(),
                    names::HTTP_REQUESTS,
                    &[("status", &code)],
                )
            })
            .increment(1);
    }

    /// Registers the refusal counters at zero for every reason the server can give, so
    /// `switchboard_auth_failures_total` and `switchboard_bad_requests_total` exist (at 0)
    /// before the first refusal: a rate over them is 0, not "no data", and an alert on them
    /// fires on a first burst.
    pub fn register_refusals(&self, auth: &[&'static str], bad: &[&'static str]) {
        for &reason in auth {
            counter(
                self.recorder.as_ref(),
                names::AUTH_FAILURES,
                &[("reason", reason)],
            )
            .increment(0);
        }
        for &reason in bad {
            counter(
                self.recorder.as_ref(),
                names::BAD_REQUESTS,
                &[("reason", reason)],
            )
            .increment(0);
        }
    }

    /// Records a request refused as malformed; `reason` is a fixed label (`invalid_json`,
    /// `missing_field`, `too_large`, ...), never text from the request.
    pub fn record_bad_request(&self, reason: &'static str) {
        counter(
            self.recorder.as_ref(),
            names::BAD_REQUESTS,
            &[("reason", reason)],
        )
        .increment(1);
    }

    /// Records a request refused by authentication; `reason` is a fixed label (`missing`,
    /// `wrong_secret`, `forbidden_ip`, ...).
    pub fn record_auth_failure(&self, reason: &'static str) {
        counter(
            self.recorder.as_ref(),
            names::AUTH_FAILURES,
            &[("reason", reason)],
        )
        .increment(1);
    }

    /// Records a flow load or reload; on success call [`Telemetry::on_flows`] too.
    pub fn record_reload(&self, ok: bool) {
        if ok {
            self.reload_ok.increment(1);
        } else {
            self.reload_error.increment(1);
        }
    }

    /// Sets the number of live session actors on this replica.
    pub fn set_live_sessions(&self, n: usize) {
        self.live.set(n as f64);
    }

    /// Sets the number of session actors on one shard (shards past 1024 are not reported).
    pub fn set_shard_actors(&self, shard: usize, n: usize) {
        if shard >= MAX_SHARDS {
            return;
        }
        {
            let shards = self.shards.read().unwrap_or_else(|e| e.into_inner());
            if let Some(gauge) = shards.get(shard) {
                gauge.set(n as f64);
                return;
            }
        }
        let mut shards = self.shards.write().unwrap_or_else(|e| e.into_inner());
        while shards.len() <= shard {
            let label = shards.len().to_string();
            shards.push(gauge(
                self.recorder.as_ref(),
                names::SHARD_ACTORS,
                &[("shard", &label)],
            ));
        }
        shards[shard].set(n as f64);
    }

    /// The figures of one flow since the process started, for `GET /v1/flows/{id}/report`;
    /// `None` for a flow this replica never loaded.
    pub fn report(&self, flow_id: &str) -> Option<FlowReport> {
        let since = self.started_at.to_rfc3339_opts(SecondsFormat::Secs, true);
        self.funnel.report(flow_id, since)
    }

    /// Folds histogram samples into their buckets. The upkeep thread calls it every few
    /// seconds; a scrape does it too.
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }
}

fn upkeep(telemetry: &Weak<Telemetry>) {
    loop {
        std::thread::sleep(UPKEEP_INTERVAL);
        match telemetry.upgrade() {
            Some(telemetry) => telemetry.upkeep(),
            None => return,
        }
    }
}

fn describe(recorder: &dyn Recorder, doc: &names::MetricDoc) {
    let name = KeyName::from_const_str(doc.name);
    let help = SharedString::const_str(doc.help);
    match doc.kind {
        MetricKind::Counter => recorder.describe_counter(name, None, help),
        MetricKind::Gauge => recorder.describe_gauge(name, None, help),
        MetricKind::Histogram => recorder.describe_histogram(name, Some(Unit::Seconds), help),
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

// Registration formats labels and allocates: it happens once per series, never per webhook
// (except for the rare refusals counted by reason).

pub(crate) fn counter(
    recorder: &dyn Recorder,
    name: &'static str,
    labels: &[(&str, &str)],
) -> Counter {
    recorder.register_counter(&key(name, labels), &METADATA)
}

fn gauge(recorder: &dyn Recorder, name: &'static str, labels: &[(&str, &str)]) -> Gauge {
    recorder.register_gauge(&key(name, labels), &METADATA)
}

fn histogram(recorder: &dyn Recorder, name: &'static str, labels: &[(&str, &str)]) -> Histogram {
    recorder.register_histogram(&key(name, labels), &METADATA)
}

fn key(name: &'static str, labels: &[(&str, &str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|&(k, v)| Label::new(k.to_owned(), v.to_owned()))
        .collect();
    Key::from_parts(name, labels)
}
