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
//! completes; calls in flight then finish. [`run`] returns the wall time, and shows progress
//! meanwhile ([`crate::progress`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::player::wait_until;

use crate::player::Platform;
use crate::progress::{Settings, Ticker};

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
    /// How far through its limit a run is, 0 to 1, after `elapsed` with `started` calls;
    /// `None` when it has no limit (it runs until Ctrl-C).
    pub fn fraction(&self, elapsed: Duration, started: u64) -> Option<f64> {
        let by_time = self
            .duration
            .filter(|d| !d.is_zero())
            .map(|d| elapsed.as_secs_f64() / d.as_secs_f64());
        let by_calls = self
            .calls
            .filter(|&n| n > 0)
            .map(|n| started as f64 / n as f64);
        match (by_time, by_calls) {
            (Some(a), Some(b)) => Some(a.max(b).min(1.0)),
            (a, b) => a.or(b).map(|f| f.min(1.0)),
        }
    }

    fn allows(&self, index: u64, since_start: Duration) -> bool {
        self.calls.is_none_or(|n| index < n) && self.duration.is_none_or(|d| since_start < d)
    }
}

/// Runs calls of `shape` until `limit` or `shutdown`, then waits for the calls in flight.
/// Shows progress on stderr as `progress` says (see [`crate::progress`]).
pub async fn run(
    platform: Arc<Platform>,
    shape: Shape,
    limit: Limit,
    progress: Settings,
    shutdown: impl Future<Output = ()>,
) -> Duration {
    let start = Instant::now();
    platform.stats.start_clock(start);
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = Ticker::spawn(platform.stats.clone(), progress, limit, start);
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
    stop.store(true, Ordering::Relaxed);
    ticker.finish(start).await
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
