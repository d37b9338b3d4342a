//! The time of day, injectable: what business hours and calling windows are judged by.
//!
//! The flow engine takes the time as an argument (it has no clock of its own); the runtime
//! reads it from the [`Clock`] of its [`crate::RuntimeConfig`], so a test, or a rehearsal of a
//! deployment, can run the server at any hour. Durations (timeouts, idle passivation) are
//! measured with [`std::time::Instant`] and are not affected.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};

/// Now.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at a given instant and runs at the real pace from there: the server
/// behaves as if started at that time (`clock_start` of the server's configuration).
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    start: DateTime<Utc>,
    since: Instant,
}

impl ShiftedClock {
    /// A clock reading `start` now.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            start,
            since: Instant::now(),
        }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = TimeDelta::from_std(self.since.elapsed()).unwrap_or(TimeDelta::MAX);
        self.start
            .checked_add_signed(elapsed)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// The system clock, shared.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_starts_where_it_is_told_and_runs_forward() {
        let start = DateTime::parse_from_rfc3339("2026-01-05T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = ShiftedClock::starting_at(start);
        let first = clock.now();
        assert!(
            first >= start && first - start < TimeDelta::minutes(1),
            "{first}"
        );
        assert!(clock.now() >= first);
    }
}
