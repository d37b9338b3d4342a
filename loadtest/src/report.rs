//! The end-of-run report: a snapshot of [`Stats`] as a serializable value, its human rendering,
//! and the verdict that decides the exit status.
//!
//! The JSON form (`--json FILE`) is the machine-readable contract: field names are stable,
//! latencies are in milliseconds, maps are keyed by event type, HTTP status or platform code.
//! Fields are only ever added. Beside the totals it has the run's `parameters`, `series` (one
//! entry per second: throughput, calls, latency quantiles, errors by kind, webhooks by target;
//! they add up to the totals), `errors_by_kind`, `replicas` (one entry per `--target`) and
//! `latency_histogram_ms` (per event type); the HTML report ([`crate::html`]) is drawn from
//! the same value.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::call::Outcome;
use crate::series::{Bucket, ErrorKind, SecondLatency};
use crate::stats::{DuplicateSample, EventKind, Stats, TransportTally, ViolationSample};

/// Latency quantiles of one event type, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Quantiles {
    /// How many answers were timed.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

impl Quantiles {
    fn of(h: &Histogram<u64>) -> Option<Self> {
        let ms = |us: u64| us as f64 / 1000.0;
        (!h.is_empty()).then(|| Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

/// Calls of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Calls {
    /// Calls begun.
    pub started: u64,
    /// Calls that reached their session summary.
    pub completed: u64,
    /// Open-loop calls not started because too many were in flight.
    pub skipped: u64,
    /// Completed calls by how they ended.
    pub by_outcome: BTreeMap<&'static str, u64>,
    /// `makeCall` results by kind (answered, busy, no_answer).
    pub transfers: BTreeMap<&'static str, u64>,
}

/// Deliveries of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Webhooks {
    /// Every POST made, copies included.
    pub sent: u64,
    /// `sent` over the run's wall time.
    pub per_second: f64,
    /// Copies sent by fault injection (duplicated and reordered).
    pub copies: u64,
}

/// Protocol violations in answers.
#[derive(Debug, Clone, Serialize)]
pub struct Violations {
    /// Answers that broke at least one rule.
    pub answers: u64,
    /// Broken rules by the platform's status code.
    pub by_code: BTreeMap<String, u64>,
    /// The first few offending answers, with their JSON.
    pub samples: Vec<ViolationSample>,
}

/// Duplicate deliveries compared with their original.
#[derive(Debug, Clone, Serialize)]
pub struct Duplicates {
    /// Pairs of complete answers compared.
    pub compared: u64,
    /// Pairs whose status or body differed.
    pub failures: u64,
    /// Failures by delivery (`concurrent`, `late`).
    pub failures_by_delivery: BTreeMap<&'static str, u64>,
    /// The first few failures, with both answers.
    pub samples: Vec<DuplicateSample>,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// Seconds since the start of the load (0 is the first).
    pub second: u64,
    /// POSTs made in this second, copies included.
    pub webhooks: u64,
    /// Calls begun.
    pub calls_started: u64,
    /// Calls ended.
    pub calls_completed: u64,
    /// Latency from the intended send time of the answers of this second, every event type
    /// (ms); absent when nothing was answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<SecondLatency>,
    /// Every error of this second.
    pub errors: u64,
    /// Errors by kind (only the kinds that happened).
    pub errors_by_kind: BTreeMap<&'static str, u64>,
    /// POSTs by target, in `--target` order.
    pub webhooks_by_target: Vec<u64>,
}

impl Second {
    fn of(second: u64, bucket: &Bucket, targets: usize) -> Self {
        let mut by_target = bucket.webhooks_by_target.clone();
        by_target.resize(targets.max(by_target.len()), 0);
        Self {
            second,
            webhooks: bucket.webhooks,
            calls_started: bucket.calls_started,
            calls_completed: bucket.calls_completed,
            latency_ms: bucket.latency,
            errors: bucket.error_total(),
            errors_by_kind: ErrorKind::ALL
                .iter()
                .zip(bucket.errors)
                .filter(|(_, n)| *n > 0)
                .map(|(kind, n)| (kind.label(), n))
                .collect(),
            webhooks_by_target: by_target,
        }
    }
}

/// What one target (replica) saw.
#[derive(Debug, Clone, Serialize)]
pub struct Replica {
    /// Its webhook URL (`#N` when the report was made without the target list).
    pub target: String,
    /// POSTs made to it, copies included.
    pub webhooks: u64,
    /// Deliveries that failed: non-2xx, timeout or connection error.
    pub failed: u64,
    /// Latency from the intended send time of its answers (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Quantiles>,
}

/// One bin of a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bin {
    /// Upper bound of the bin, ms (the lower is the previous bin's).
    pub le: f64,
    /// Answers in the bin.
    pub count: u64,
}

/// Upper bounds of the histogram bins, µs: 1-2-5 steps from 10 µs to 5,000 s (beyond the
/// histograms' hour).
fn bin_bounds() -> Vec<u64> {
    let mut bounds = Vec::new();
    let mut decade = 10u64;
    while decade <= 1_000_000_000 {
        bounds.extend([1, 2, 5].map(|step| decade * step));
        decade *= 10;
    }
    bounds
}

/// The histogram of `h` on the 1-2-5 bins, from the first bin with answers to the last.
fn bins(h: &Histogram<u64>) -> Vec<Bin> {
    let bounds = bin_bounds();
    let mut counts = vec![0u64; bounds.len()];
    for v in h.iter_recorded() {
        let value = h.highest_equivalent(v.value_iterated_to());
        let i = bounds.partition_point(|&b| b < value);
        counts[i.min(bounds.len() - 1)] += v.count_at_value();
    }
    let first = counts.iter().position(|&n| n > 0);
    let last = counts.iter().rposition(|&n| n > 0);
    match (first, last) {
        (Some(first), Some(last)) => (first..=last)
            .map(|i| Bin {
                le: bounds[i] as f64 / 1000.0,
                count: counts[i],
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The report of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Wall time of the run, seconds.
    pub elapsed_seconds: f64,
    /// The caller seed: `--seed` this to repeat the callers' choices.
    pub seed: u64,
    /// Calls.
    pub calls: Calls,
    /// Deliveries.
    pub webhooks: Webhooks,
    /// Latency from the intended send time, by event type (ms).
    pub latency_ms: BTreeMap<&'static str, Quantiles>,
    /// Latency from the actual send time (the server's service time), by event type (ms).
    pub service_ms: BTreeMap<&'static str, Quantiles>,
    /// Non-2xx answers by HTTP status.
    pub http_errors: BTreeMap<String, u64>,
    /// Connection failures by kind.
    pub transport_errors: BTreeMap<&'static str, TransportTally>,
    /// Deliveries without an answer in time, by event type.
    pub timeouts: BTreeMap<&'static str, u64>,
    /// Protocol violations.
    pub protocol_violations: Violations,
    /// Duplicate-consistency checks.
    pub duplicate_consistency: Duplicates,
    /// Everything counted as an error: failed deliveries, violations, duplicate-consistency
    /// failures, skipped calls and calls that hit the step limit.
    pub errors: u64,
    /// `errors` over webhooks sent.
    pub error_rate: f64,
    /// The tolerated error rate (`--max-error-rate`).
    pub max_error_rate: f64,
    /// Whether the run passed: no errors, or an error rate within the tolerance.
    pub passed: bool,
    /// How the run was set up (flag name to value), for the reader of the report.
    pub parameters: BTreeMap<String, String>,
    /// `errors` by kind; every kind is listed.
    pub errors_by_kind: BTreeMap<&'static str, u64>,
    /// One entry per second of the run; each column adds up to its total above.
    pub series: Vec<Second>,
    /// One entry per target, in `--target` order.
    pub replicas: Vec<Replica>,
    /// Latency from the intended send time, by event type, in 1-2-5 bins (ms).
    pub latency_histogram_ms: BTreeMap<&'static str, Vec<Bin>>,
}

impl Report {
    /// Snapshots `stats` after a run of `elapsed`.
    pub fn new(stats: &Stats, elapsed: Duration, seed: u64, max_error_rate: f64) -> Self {
        let errors = stats.problems();
        let sent = stats.webhooks();
        let error_rate = if sent == 0 {
            if errors == 0 { 0.0 } else { 1.0 }
        } else {
            errors as f64 / sent as f64
        };
        let secs = elapsed.as_secs_f64();
        stats.with_tally(|t| {
            let by_kind = |hs: &[Histogram<u64>]| {
                EventKind::ALL
                    .iter()
                    .zip(hs)
                    .filter_map(|(kind, h)| Quantiles::of(h).map(|q| (kind.label(), q)))
                    .collect()
            };
            Self {
                elapsed_seconds: secs,
                seed,
                calls: Calls {
                    started: stats.started(),
                    completed: stats.completed(),
                    skipped: t.skipped_calls,
                    by_outcome: Outcome::ALL
                        .iter()
                        .filter_map(|o| t.outcomes.get(o).map(|n| (o.label(), *n)))
                        .collect(),
                    transfers: t.transfers.clone(),
                },
                webhooks: Webhooks {
                    sent,
                    per_second: if secs > 0.0 { sent as f64 / secs } else { 0.0 },
                    copies: t.duplicates_sent,
                },
                latency_ms: by_kind(&t.latency),
                service_ms: by_kind(&t.service),
                http_errors: t
                    .http_errors
                    .iter()
                    .map(|(code, n)| (code.to_string(), *n))
                    .collect(),
                transport_errors: t.transport_errors.clone(),
                timeouts: t.timeouts.clone(),
                protocol_violations: Violations {
                    answers: t.violating_answers,
                    by_code: t
                        .violations_by_code
                        .iter()
                        .map(|(code, n)| (code.to_string(), *n))
                        .collect(),
                    samples: t.violation_samples.clone(),
                },
                duplicate_consistency: Duplicates {
                    compared: t.duplicates_compared,
                    failures: t.duplicate_failures,
                    failures_by_delivery: t.duplicate_failures_by_delivery.clone(),
                    samples: t.duplicate_samples.clone(),
                },
                errors,
                error_rate,
                max_error_rate,
                passed: errors == 0 || error_rate <= max_error_rate,
                parameters: BTreeMap::new(),
                errors_by_kind: ErrorKind::ALL
                    .iter()
                    .zip(t.errors_by_kind)
                    .map(|(kind, n)| (kind.label(), n))
                    .collect(),
                series: series(&t.series.seconds(), secs, t.targets.len()),
                replicas: t
                    .targets
                    .iter()
                    .enumerate()
                    .map(|(i, target)| Replica {
                        target: format!("#{i}"),
                        webhooks: target.webhooks,
                        failed: target.failed,
                        latency_ms: Quantiles::of(&target.latency),
                    })
                    .collect(),
                latency_histogram_ms: EventKind::ALL
                    .iter()
                    .zip(&t.latency)
                    .filter(|(_, h)| !h.is_empty())
                    .map(|(kind, h)| (kind.label(), bins(h)))
                    .collect(),
            }
        })
    }

    /// Names the run's settings and its targets (in `--target` order) in the report.
    pub fn with_run(mut self, parameters: BTreeMap<String, String>, targets: &[String]) -> Self {
        self.parameters = parameters;
        for (i, target) in targets.iter().enumerate() {
            match self.replicas.get_mut(i) {
                Some(replica) => replica.target.clone_from(target),
                None => self.replicas.push(Replica {
                    target: target.clone(),
                    webhooks: 0,
                    failed: 0,
                    latency_ms: None,
                }),
            }
        }
        self
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // Every field is a string, number, bool or map with string keys: cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.calls;
        writeln!(
            f,
            "calls: {} started, {} completed{} in {:.1}s (seed {})",
            c.started,
            c.completed,
            if c.skipped > 0 {
                format!(", {} skipped (too many in flight)", c.skipped)
            } else {
                String::new()
            },
            self.elapsed_seconds,
            self.seed
        )?;
        if !c.by_outcome.is_empty() {
            writeln!(f, "  outcomes: {}", list(&c.by_outcome))?;
        }
        if !c.transfers.is_empty() {
            writeln!(f, "  transfers: {}", list(&c.transfers))?;
        }
        writeln!(
            f,
            "webhooks: {} sent, {:.1}/s{}",
            self.webhooks.sent,
            self.webhooks.per_second,
            if self.webhooks.copies > 0 {
                format!(" ({} fault-injected copies)", self.webhooks.copies)
            } else {
                String::new()
            }
        )?;
        if !self.latency_ms.is_empty() {
            writeln!(
                f,
                "latency from intended send time (ms):\n  {:<17} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "event", "count", "p50", "p90", "p99", "p99.9", "max"
            )?;
            for (kind, q) in &self.latency_ms {
                writeln!(
                    f,
                    "  {kind:<17} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    q.count, q.p50, q.p90, q.p99, q.p999, q.max
                )?;
            }
        }
        if !self.http_errors.is_empty() {
            writeln!(f, "HTTP errors: {}", list(&self.http_errors))?;
        }
        for (kind, t) in &self.transport_errors {
            writeln!(
                f,
                "connection errors ({kind}): {} (e.g. {})",
                t.count, t.example
            )?;
        }
        if !self.timeouts.is_empty() {
            writeln!(f, "timeouts: {}", list(&self.timeouts))?;
        }
        if self.replicas.len() > 1 {
            writeln!(f, "replicas:")?;
            for r in &self.replicas {
                writeln!(
                    f,
                    "  {}: {} webhooks, {} failed, p99 {}",
                    r.target,
                    r.webhooks,
                    r.failed,
                    r.latency_ms
                        .as_ref()
                        .map_or_else(|| "-".to_owned(), |q| format!("{:.2} ms", q.p99))
                )?;
            }
        }
        let v = &self.protocol_violations;
        if v.answers > 0 {
            writeln!(
                f,
                "protocol violations: {} answers ({})",
                v.answers,
                list(&v.by_code)
            )?;
            for s in &v.samples {
                writeln!(
                    f,
                    "  session {} {} from {}:",
                    s.session_id, s.event, s.target
                )?;
                for violation in &s.violations {
                    writeln!(f, "    {violation}")?;
                }
                writeln!(f, "    answer: {}", s.body)?;
            }
        }
        let d = &self.duplicate_consistency;
        if d.compared > 0 || d.failures > 0 {
            writeln!(
                f,
                "duplicate deliveries: {} compared, {} duplicate-consistency failures",
                d.compared, d.failures
            )?;
            for s in &d.samples {
                writeln!(
                    f,
                    "  session {} {} ({} copy):\n    first:  {}\n    second: {}",
                    s.session_id, s.event, s.delivery, s.first, s.second
                )?;
            }
        }
        let mut verdict = String::new();
        if self.errors == 0 {
            verdict.push_str("PASS: no errors");
        } else if self.passed {
            let _ = write!(
                verdict,
                "PASS: {} errors, rate {:.4} within --max-error-rate {}",
                self.errors, self.error_rate, self.max_error_rate
            );
        } else {
            let _ = write!(
                verdict,
                "FAIL: {} errors, rate {:.4} over --max-error-rate {}",
                self.errors, self.error_rate, self.max_error_rate
            );
        }
        writeln!(f, "{verdict}")
    }
}

/// The report's seconds: every bucket, then empty seconds up to the end of the run.
fn series(buckets: &[Bucket], elapsed: f64, targets: usize) -> Vec<Second> {
    let run_seconds = elapsed.ceil().max(0.0) as usize;
    let empty = Bucket::default();
    (0..buckets.len().max(run_seconds))
        .map(|i| Second::of(i as u64, buckets.get(i).unwrap_or(&empty), targets))
        .collect()
}

fn list<K: fmt::Display>(map: &BTreeMap<K, u64>) -> String {
    map.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio::time::Instant;

    use super::*;
    use crate::client::Reply;

    fn answered(status: u16) -> Reply {
        Reply::Answered {
            status,
            body: Bytes::new(),
        }
    }

    fn stats_with(statuses: &[u16]) -> Stats {
        let stats = Stats::new(2);
        let t = Instant::now();
        for &status in statuses {
            let kind = EventKind::CallReceived;
            stats.delivery(
                kind,
                0,
                t,
                t,
                t + Duration::from_millis(3),
                &answered(status),
                false,
            );
        }
        stats
    }

    #[test]
    fn errors_fail_the_run_unless_tolerated() {
        let clean = Report::new(&stats_with(&[200, 200]), Duration::from_secs(1), 5, 0.0);
        assert!(clean.passed);
        assert_eq!(clean.webhooks.per_second, 2.0);
        assert_eq!(clean.latency_ms["CALL_RECEIVED"].count, 2);
        assert!((clean.latency_ms["CALL_RECEIVED"].max - 3.0).abs() < 0.01);
        assert!(clean.to_string().contains("PASS: no errors"));

        let stats = stats_with(&[200, 200, 200, 500]);
        let strict = Report::new(&stats, Duration::from_secs(1), 5, 0.0);
        assert!(!strict.passed);
        assert_eq!(strict.http_errors["500"], 1);
        assert_eq!(strict.error_rate, 0.25);
        assert!(strict.to_string().contains("FAIL: 1 errors"));
        assert!(Report::new(&stats, Duration::from_secs(1), 5, 0.25).passed);
        assert!(!Report::new(&stats, Duration::from_secs(1), 5, 0.2).passed);
    }

    #[test]
    fn timeouts_and_samples_are_kept_and_capped() {
        let stats = Stats::new(1);
        let t = Instant::now();
        stats.delivery(
            EventKind::SessionSummary,
            0,
            t,
            t,
            t,
            &Reply::Timeout,
            false,
        );
        for _ in 0..3 {
            stats.violation([-1009, -1010], || ViolationSample {
                session_id: "s".into(),
                event: "CALL_RECEIVED",
                event_id: "e".into(),
                target: "http://x/webhooks".into(),
                violations: vec!["-1009 $.callflow: bad".into()],
                body: "{}".into(),
            });
        }
        let r = Report::new(&stats, Duration::from_secs(1), 0, 0.0);
        assert_eq!(r.timeouts["SESSION_SUMMARY"], 1);
        assert_eq!(r.protocol_violations.answers, 3);
        assert_eq!(r.protocol_violations.by_code["-1009"], 3);
        assert_eq!(r.protocol_violations.samples.len(), 1);
        assert_eq!(r.errors, 4);
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["protocol_violations"]["by_code"]["-1010"], 3);
        assert!(r.to_string().contains("$.callflow: bad"));
    }
}
