//! Live progress of a load run, on stderr (stdout carries only the final summary, which
//! scripts parse).
//!
//! * On a terminal ([`Style::Bar`]): one line drawn at the start and redrawn in place every
//!   interval, with a bar of elapsed time (or calls started) against the run's limit, calls completed and started, webhooks/s over the
//!   last interval, p99 latency of the run so far and the errors so far. It is erased when the
//!   run ends.
//! * Elsewhere ([`Style::Lines`], a CI log): one plain line per interval, labelled with the
//!   interval's time (`progress 10s/60s: ...`). When the run ends, any line that fell due
//!   before its end and was not printed yet (a busy machine woke the ticker late) is printed,
//!   so a run of `T` seconds with interval `i` prints exactly `floor(T / i)` lines.
//! * `--quiet` ([`Style::Off`]): nothing.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::load::Limit;
use crate::stats::{Progress, Stats};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Not at all.
    Off,
    /// A line redrawn in place (a terminal).
    Bar,
    /// One plain line per interval (a log).
    Lines,
}

/// Default interval of the bar.
pub const BAR_INTERVAL: Duration = Duration::from_secs(1);
/// Default interval of plain lines (a log is read later, and should stay short).
pub const LINE_INTERVAL: Duration = Duration::from_secs(5);

/// How and how often progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How.
    pub style: Style,
    /// How often.
    pub interval: Duration,
}

impl Settings {
    /// No progress.
    pub const OFF: Self = Self {
        style: Style::Off,
        interval: BAR_INTERVAL,
    };

    /// What suits this process: nothing when `quiet`, a bar when stderr is a terminal, plain
    /// lines otherwise; every `interval`, or the style's default.
    pub fn for_stderr(quiet: bool, interval: Option<Duration>) -> Self {
        let style = if quiet {
            Style::Off
        } else if std::io::stderr().is_terminal() {
            Style::Bar
        } else {
            Style::Lines
        };
        let default = if style == Style::Lines {
            LINE_INTERVAL
        } else {
            BAR_INTERVAL
        };
        Self {
            style,
            interval: interval.filter(|i| !i.is_zero()).unwrap_or(default),
        }
    }
}

/// The task that draws progress while a run goes on.
#[derive(Debug)]
pub(crate) struct Ticker {
    task: Option<JoinHandle<()>>,
    /// The run's wall time, once it is over. Set and read under the lock, so that a line is
    /// printed only for an interval that ended before the run did.
    end: Arc<Mutex<Option<Duration>>>,
    done: Arc<Notify>,
}

impl Ticker {
    /// Starts drawing `stats` of a run that began at `start` (nothing for [`Style::Off`]).
    pub(crate) fn spawn(
        stats: Arc<Stats>,
        settings: Settings,
        limit: Limit,
        start: Instant,
    ) -> Self {
        let end = Arc::new(Mutex::new(None));
        let done = Arc::new(Notify::new());
        if settings.style == Style::Bar {
            // At once, so that the bar is there from the start (the first tick is an interval
            // away).
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K{}",
                bar(Duration::ZERO, &limit, &stats.progress(), 0.0)
            );
            let _ = err.flush();
        }
        let task = (settings.style != Style::Off).then(|| {
            let view = View {
                stats,
                settings,
                limit,
                start,
                end: end.clone(),
                done: done.clone(),
            };
            tokio::spawn(view.draw())
        });
        Self { task, end, done }
    }

    /// Ends the run now: returns its wall time since `start`, after the last lines are out.
    pub(crate) async fn finish(self, start: Instant) -> Duration {
        let elapsed = {
            let mut end = self.end.lock().unwrap_or_else(PoisonError::into_inner);
            let elapsed = start.elapsed();
            *end = Some(elapsed);
            elapsed
        };
        self.done.notify_one();
        if let Some(task) = self.task {
            let _ = task.await;
        }
        elapsed
    }
}

struct View {
    stats: Arc<Stats>,
    settings: Settings,
    limit: Limit,
    start: Instant,
    end: Arc<Mutex<Option<Duration>>>,
    done: Arc<Notify>,
}

impl View {
    async fn draw(self) {
        let interval = self.settings.interval;
        let mut last_webhooks = 0;
        for tick in 1u32.. {
            let due = interval.saturating_mul(tick);
            tokio::select! {
                () = tokio::time::sleep_until(self.start + due) => {}
                () = self.done.notified() => {}
            }
            let end = self.end.lock().unwrap_or_else(PoisonError::into_inner);
            match (*end, self.settings.style) {
                (Some(_), Style::Bar) => {
                    let _ = write!(std::io::stderr(), "\r\x1b[2K");
                    break;
                }
                (Some(end), _) if due > end => break,
                // Either a line due before the end, or the run is not over: it will end after
                // now, which is after `due`.
                _ => {}
            }
            let p = self.stats.progress();
            let rate = p.webhooks.saturating_sub(last_webhooks) as f64 / interval.as_secs_f64();
            last_webhooks = p.webhooks;
            let mut err = std::io::stderr().lock();
            let _ = match self.settings.style {
                Style::Bar => write!(err, "\r\x1b[2K{}", bar(due, &self.limit, &p, rate)),
                _ => writeln!(err, "{}", line(due, &self.limit, &p, rate)),
            };
            let _ = err.flush();
        }
    }
}

/// `5s`, `1.5s`, `0.25s`, `2m30s`.
fn clock(d: Duration) -> String {
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else if millis == 0 {
        format!("{secs}s")
    } else {
        let fraction = format!("{millis:03}");
        format!("{secs}.{}s", fraction.trim_end_matches('0'))
    }
}

fn p99_text(p: &Progress) -> String {
    p.p99.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1e3),
    )
}

/// `5s/30s` or `5s` when the run has no time limit.
fn elapsed_text(at: Duration, limit: &Limit) -> String {
    match limit.duration {
        Some(total) => format!("{}/{}", clock(at), clock(total)),
        None => clock(at),
    }
}

/// `12/100` started calls, or `12` without a call limit.
fn started_text(p: &Progress, limit: &Limit) -> String {
    match limit.calls {
        Some(total) => format!("{}/{total}", p.started),
        None => p.started.to_string(),
    }
}

/// The plain line of the interval that ended at `at`.
pub fn line(at: Duration, limit: &Limit, p: &Progress, rate: f64) -> String {
    format!(
        "progress {}: calls {} started, {} completed; webhooks {} ({rate:.1}/s); p99 {}; errors {}",
        elapsed_text(at, limit),
        started_text(p, limit),
        p.completed,
        p.webhooks,
        p99_text(p),
        p.problems
    )
}

/// Cells of the bar.
const BAR_CELLS: usize = 24;

/// The terminal line at `at`: a bar when the run has a limit, then the counters.
pub fn bar(at: Duration, limit: &Limit, p: &Progress, rate: f64) -> String {
    let mut out = String::new();
    if let Some(fraction) = limit.fraction(at, p.started) {
        let filled = ((fraction * BAR_CELLS as f64).round() as usize).min(BAR_CELLS);
        let _ = write!(
            out,
            "[{}{}] ",
            "#".repeat(filled),
            "-".repeat(BAR_CELLS - filled)
        );
    }
    let _ = write!(
        out,
        "{}  calls {} done / {} started  {rate:.0} webhooks/s  p99 {}  errors {}",
        elapsed_text(at, limit),
        p.completed,
        started_text(p, limit),
        p99_text(p),
        p.problems
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Progress {
        Progress {
            started: 12,
            completed: 10,
            webhooks: 40,
            problems: 1,
            p99: Some(Duration::from_micros(3_240)),
            window_p99: None,
        }
    }

    #[test]
    fn a_line_says_where_the_run_is_against_its_limit() {
        let limit = Limit {
            duration: Some(Duration::from_secs(3)),
            calls: None,
        };
        assert_eq!(
            line(Duration::from_millis(1500), &limit, &snapshot(), 80.0),
            "progress 1.5s/3s: calls 12 started, 10 completed; webhooks 40 (80.0/s); \
             p99 3.2 ms; errors 1"
        );
        let calls = Limit {
            duration: None,
            calls: Some(100),
        };
        assert!(
            line(Duration::from_millis(250), &calls, &snapshot(), 0.0)
                .starts_with("progress 0.25s:")
        );
        let text = line(Duration::from_secs(150), &calls, &snapshot(), 0.0);
        assert!(
            text.starts_with("progress 2m30s: calls 12/100 started"),
            "{text}"
        );
    }

    #[test]
    fn the_bar_fills_with_time_or_calls_whichever_is_further() {
        let limit = Limit {
            duration: Some(Duration::from_secs(10)),
            calls: Some(24),
        };
        // 1 s of 10 is 10%, 12 calls of 24 is half: half the cells.
        let text = bar(Duration::from_secs(1), &limit, &snapshot(), 40.0);
        assert!(
            text.starts_with(&format!("[{}{}] 1s/10s", "#".repeat(12), "-".repeat(12))),
            "{text}"
        );
        assert!(text.contains("calls 10 done / 12/24 started  40 webhooks/s  p99 3.2 ms"));
        let unlimited = bar(Duration::from_secs(1), &Limit::default(), &snapshot(), 1.0);
        assert!(unlimited.starts_with("1s  calls"), "{unlimited}");
    }

    #[test]
    fn quiet_turns_progress_off_and_zero_interval_means_the_default() {
        assert_eq!(Settings::for_stderr(true, None).style, Style::Off);
        let settings = Settings::for_stderr(false, Some(Duration::ZERO));
        assert!(
            settings.interval == BAR_INTERVAL || settings.interval == LINE_INTERVAL,
            "{settings:?}"
        );
    }
}
