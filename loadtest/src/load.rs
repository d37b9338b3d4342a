//! Load shapes: how many calls run, and when they start.
//!
//! * **Closed loop** ([`Shape::Closed`]): `concurrency` workers, each starting its next call as
//!   soon as the previous one ends. Throughput follows the server's speed.
//! * **Open loop** ([`Shape::Open`]): calls start on a fixed schedule, call `i` at
//!   `start + i / rate`, whatever the server does. Each call carries its scheduled time, and the
//!   latency of its first webhook is measured from it: a stalled server, a full connection pool
//!   or a slow generator all show up in the latency instead of silently lowering the rate
//!   (no coordinated omission).
//!
//! A run ends at `--calls` or `--duration`, whichever comes first, or when `shutdown`
//! completes; calls in flight then finish. [`run`] returns the wall time.

use std::future::Future;
use std::io::{IsTerminal, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::player::wait_until;

use crate::player::Platform;
use crate::stats::Stats;

/// When calls start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// This many calls at all times.
    Closed {
        /// Calls in flight.
        concurrency: usize,
    },
    /// This many new calls per second.
    Open {
        /// Calls per second.
        rate: f64,
        /// The most calls in flight; a call due beyond it is skipped and counted as an error.
        max_in_flight: usize,
    },
}

/// How long a run lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limit {
    /// Stop starting calls after this long.
    pub duration: Option<Duration>,
    /// Stop after starting this many calls.
    pub calls: Option<u64>,
}

impl Limit {
    fn allows(&self, index: u64, since_start: Duration) -> bool {
        self.calls.is_none_or(|n| index < n) && self.duration.is_none_or(|d| since_start < d)
    }
}

/// Runs calls of `shape` until `limit` or `shutdown`, then waits for the calls in flight.
/// Draws a progress line on stderr every second when `progress` is set.
pub async fn run(
    platform: Arc<Platform>,
    shape: Shape,
    limit: Limit,
    progress: bool,
    shutdown: impl Future<Output = ()>,
) -> Duration {
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = progress.then(|| {
        let stats = platform.stats.clone();
        let stop = stop.clone();
        tokio::spawn(async move { draw_progress(&stats, &stop, start).await })
    });
    let load = async {
        match shape {
            Shape::Closed { concurrency } => {
                closed(&platform, concurrency, limit, start, &stop).await;
            }
            Shape::Open {
                rate,
                max_in_flight,
            } => open(&platform, rate, max_in_flight, limit, start, &stop).await,
        }
    };
    tokio::pin!(load);
    tokio::select! {
        () = &mut load => {}
        () = shutdown => {
            // Stop starting calls; let those in flight end.
            stop.store(true, Ordering::Relaxed);
            load.await;
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    if let Some(ticker) = ticker {
        // It may be waiting for its next tick; the run is over now.
        ticker.abort();
        let _ = ticker.await;
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
    elapsed
}

async fn closed(
    platform: &Arc<Platform>,
    concurrency: usize,
    limit: Limit,
    start: Instant,
    stop: &Arc<AtomicBool>,
) {
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let platform = platform.clone();
        let next = next.clone();
        let stop = stop.clone();
        workers.spawn(async move {
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                if !limit.allows(index, start.elapsed()) {
                    break;
                }
                platform.inbound(index, Instant::now()).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

async fn open(
    platform: &Arc<Platform>,
    rate: f64,
    max_in_flight: usize,
    limit: Limit,
    start: Instant,
    stop: &AtomicBool,
) {
    let mut calls = JoinSet::new();
    let mut index = 0u64;
    loop {
        // Scheduled from the start, not from the previous call: a late tick does not shift
        // every later call.
        let intended = start + Duration::from_secs_f64(index as f64 / rate);
        if stop.load(Ordering::Relaxed) || !limit.allows(index, intended - start) {
            break;
        }
        wait_until(intended).await;
        while calls.try_join_next().is_some() {}
        if calls.len() >= max_in_flight {
            platform.stats.call_skipped();
        } else {
            let platform = platform.clone();
            calls.spawn(async move { platform.inbound(index, intended).await });
        }
        index += 1;
    }
    while calls.join_next().await.is_some() {}
}

/// Redraws one status line on stderr every second until `stop`.
async fn draw_progress(stats: &Stats, stop: &AtomicBool, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last_webhooks = 0;
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let p = stats.progress();
        let now = Instant::now();
        let rate = (p.webhooks - last_webhooks) as f64 / now.duration_since(last).as_secs_f64();
        last_webhooks = p.webhooks;
        last = now;
        let p99 = p.window_p99.map_or_else(
            || "-".to_owned(),
            |d| format!("{:.1}ms", d.as_secs_f64() * 1e3),
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{:>5.0}s  calls {} done / {} started  {:.0} webhooks/s  p99 {}  errors {}",
            start.elapsed().as_secs_f64(),
            p.completed,
            p.started,
            rate,
            p99,
            p.problems
        );
        let _ = err.flush();
    }
}

/// Whether a progress line makes sense: stderr is a terminal.
pub fn progress_wanted() -> bool {
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_stops_at_calls_or_duration() {
        let both = Limit {
            duration: Some(Duration::from_secs(2)),
            calls: Some(3),
        };
        assert!(both.allows(2, Duration::from_secs(1)));
        assert!(!both.allows(3, Duration::from_secs(1)));
        assert!(!both.allows(0, Duration::from_secs(2)));
        assert!(Limit::default().allows(u64::MAX - 1, Duration::MAX));
    }
}
