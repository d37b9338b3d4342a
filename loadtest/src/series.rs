//! Per-second buckets of a run: what the report's time series (`series` in the JSON, the
//! charts of the HTML report) are made of.
//!
//! The hot path adds to the bucket of the current second: a few integer increments and one
//! histogram record under the stats mutex that is already held for the delivery. Nothing is
//! kept per request. The latency of the open second goes to one coarse histogram (2
//! significant digits); when the second is over, its quantiles are stored in the bucket and the
//! histogram is reset, so a run of any length holds a single histogram plus a few dozen bytes
//! per second.
//!
//! A second is counted from the run's start ([`Series::restart`]). Events are bucketed by when
//! they happened; one that arrives at the lock after the next second opened (another thread
//! took it first) goes to the open second, so buckets only ever grow at the end and every event
//! is in exactly one of them: the series add up to the run's totals.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

/// The kinds of error a run counts, as in the report's `errors_by_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// A non-2xx answer.
    Http,
    /// No answer within `--timeout`.
    Timeout,
    /// The connection failed.
    Connection,
    /// An answer the platform would refuse.
    Violation,
    /// A duplicate delivery answered differently from its original.
    DuplicateMismatch,
    /// An open-loop call not started because too many were in flight.
    Skipped,
    /// A call that reached `--max-steps`.
    StepLimit,
}

impl ErrorKind {
    /// How many kinds there are.
    pub const COUNT: usize = 7;

    /// Every kind, in report order.
    pub const ALL: [ErrorKind; Self::COUNT] = [
        Self::Http,
        Self::Timeout,
        Self::Connection,
        Self::Violation,
        Self::DuplicateMismatch,
        Self::Skipped,
        Self::StepLimit,
    ];

    /// The label used in reports.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Violation => "violation",
            Self::DuplicateMismatch => "duplicate_mismatch",
            Self::Skipped => "skipped",
            Self::StepLimit => "step_limit",
        }
    }
}

/// Latency quantiles of one second, in milliseconds (from the intended send time, every event
/// type together).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SecondLatency {
    /// Answers timed in this second.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

impl SecondLatency {
    fn of(h: &Histogram<u64>) -> Option<Self> {
        let ms = |us: u64| us as f64 / 1000.0;
        (!h.is_empty()).then(|| Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

/// What happened in one second of the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    /// POSTs made (copies included).
    pub webhooks: u64,
    /// Calls begun.
    pub calls_started: u64,
    /// Calls ended.
    pub calls_completed: u64,
    /// Errors, indexed like [`ErrorKind::ALL`].
    pub errors: [u64; ErrorKind::COUNT],
    /// POSTs made per target (indexed like the target list; empty before the first).
    pub webhooks_by_target: Vec<u64>,
    /// Latency of the answers timed in this second; `None` when there were none.
    pub latency: Option<SecondLatency>,
}

impl Bucket {
    /// Every error of the second.
    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }
}

/// The buckets of a run, one per second since its start.
#[derive(Debug)]
pub struct Series {
    origin: Instant,
    buckets: Vec<Bucket>,
    /// Latency of the last (open) bucket.
    open: Histogram<u64>,
}

fn coarse_histogram() -> Histogram<u64> {
    // 1 µs to 1 hour at 2 significant digits; constant bounds, so this cannot fail.
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant, valid histogram bounds")
}

impl Series {
    /// An empty series whose second 0 starts at `origin`.
    pub fn new(origin: Instant) -> Self {
        Self {
            origin,
            buckets: Vec::new(),
            open: coarse_histogram(),
        }
    }

    /// Starts over, with second 0 at `origin` (the start of the load).
    pub fn restart(&mut self, origin: Instant) {
        self.origin = origin;
        self.buckets.clear();
        self.open.reset();
    }

    /// The bucket of `when`, opening it (and closing the previous one) if need be.
    pub fn bucket(&mut self, when: Instant) -> &mut Bucket {
        let second = usize::try_from(when.saturating_duration_since(self.origin).as_secs())
            .unwrap_or(usize::MAX - 1);
        let open = self.buckets.len().checked_sub(1);
        let index = open.map_or(second, |open| second.max(open));
        if open != Some(index) {
            if let Some(open) = open {
                self.buckets[open].latency = SecondLatency::of(&self.open);
                self.open.reset();
            }
            self.buckets.resize_with(index + 1, Bucket::default);
        }
        &mut self.buckets[index]
    }

    /// Records an answer's latency at `when`.
    pub fn latency(&mut self, when: Instant, micros: u64) {
        self.bucket(when);
        self.open.saturating_record(micros);
    }

    /// Counts a POST to target `target` at `when`.
    pub fn webhook(&mut self, when: Instant, target: usize) {
        let bucket = self.bucket(when);
        bucket.webhooks += 1;
        if bucket.webhooks_by_target.len() <= target {
            bucket.webhooks_by_target.resize(target + 1, 0);
        }
        bucket.webhooks_by_target[target] += 1;
    }

    /// Every second so far, the open one included (its latency as it stands).
    pub fn seconds(&self) -> Vec<Bucket> {
        let mut seconds = self.buckets.clone();
        if let Some(last) = seconds.last_mut() {
            last.latency = SecondLatency::of(&self.open);
        }
        seconds
    }

    /// How far into the run `when` is.
    pub fn since_start(&self, when: Instant) -> Duration {
        when.saturating_duration_since(self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_land_in_their_second_and_late_ones_in_the_open_second() {
        let start = Instant::now();
        let mut s = Series::new(start);
        let at = |ms: u64| start + Duration::from_millis(ms);
        s.webhook(at(10), 0);
        s.latency(at(10), 2_000);
        s.latency(at(900), 4_000);
        s.webhook(at(2_500), 1);
        s.latency(at(2_500), 9_000);
        // Late: happened in second 1, but second 2 is open.
        s.bucket(at(1_200)).calls_started += 1;
        let seconds = s.seconds();
        assert_eq!(seconds.len(), 3);
        assert_eq!(seconds[0].webhooks, 1);
        assert_eq!(seconds[0].webhooks_by_target, [1]);
        let first = seconds[0].latency.unwrap();
        assert_eq!(first.count, 2);
        assert!((first.max - 4.0).abs() < 0.05, "{first:?}");
        assert_eq!(seconds[1], Bucket::default());
        assert_eq!(seconds[2].webhooks_by_target, [0, 1]);
        assert_eq!(seconds[2].calls_started, 1);
        assert_eq!(seconds[2].latency.unwrap().count, 1);
        s.restart(at(3_000));
        assert!(s.seconds().is_empty());
    }
}
