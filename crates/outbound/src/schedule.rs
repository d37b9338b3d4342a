//! A campaign's schedule: which row to dial next, and when.
//!
//! [`Schedule`] is a plain state machine over the rows of a list. Every method takes the time
//! as an argument, so pacing, windows and retries are tested without a clock or a socket:
//!
//! * **rate**: two dials are at least `1 / rate` seconds apart (no bursts);
//! * **concurrency**: at most `concurrency` rows are dialling at once (from the request until
//!   the session's outcome is known);
//! * **windows**: a row is dialled only while the window is open in the *callee's* time zone;
//!   a window closing pauses that row until it reopens;
//! * **retries**: a busy or unanswered call, or a transient API failure, is tried again after
//!   the policy's delay, at most the policy's number of times;
//! * **pause / resume / cancel**: a paused campaign dials no one; a cancelled one never again
//!   (rows not yet finished end `canceled`);
//! * **deadline**: a row dialling for longer than the policy's `call_deadline` without an
//!   outcome (its session summary never came) is given up: it ends `TIMED_OUT` and frees its
//!   concurrency slot. It is not retried: the call may have reached the callee, and calling
//!   again could call someone twice.
//!
//! The schedule is serializable, and [`Schedule::restore`] rebuilds one from its stored parts:
//! the runner stores every row's [`Entry`], and a replica taking over continues from them.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Calling hours in the callee's local time, on some days of the week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Opens at (local time).
    pub start: NaiveTime,
    /// Closes at (local time); after `start`.
    pub end: NaiveTime,
    /// The days it opens; empty: every day.
    pub days: Vec<Weekday>,
}

impl Window {
    /// Whether the window is open at `now` in `zone`.
    pub fn is_open(&self, zone: Tz, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&zone);
        let time = local.time();
        self.day_allowed(local.weekday()) && time >= self.start && time < self.end
    }

    /// When the window next opens after `now` in `zone` (`now` if it is open).
    pub fn next_open(&self, zone: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(zone, now) {
            return Some(now);
        }
        let today = now.with_timezone(&zone).date_naive();
        (0..8)
            .filter_map(|offset| today.checked_add_days(chrono::Days::new(offset)))
            .filter(|day| self.day_allowed(day.weekday()))
            .filter_map(|day| {
                zone.from_local_datetime(&day.and_time(self.start))
                    .earliest()
            })
            .map(|open| open.with_timezone(&Utc))
            .find(|open| *open > now)
    }

    fn day_allowed(&self, day: Weekday) -> bool {
        self.days.is_empty() || self.days.contains(&day)
    }
}

/// Tries again after an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Retry {
    /// Tries after the first; 0: none.
    pub max: u32,
    /// Wait between tries.
    #[serde(with = "millis")]
    pub delay: Duration,
}

/// How a campaign dials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Calls started per second (> 0).
    pub rate: f64,
    /// Most rows dialling at once (>= 1).
    pub concurrency: usize,
    /// Calling hours; `None`: any time.
    pub window: Option<Window>,
    /// After a busy callee.
    pub busy: Retry,
    /// After no answer.
    pub no_answer: Retry,
    /// After the API failed transiently (5xx, unreachable, timeout).
    pub transient: Retry,
    /// A row dialling this long without an outcome ends `TIMED_OUT` (its slot is freed).
    #[serde(with = "millis", default = "default_call_deadline")]
    pub call_deadline: Duration,
}

/// One hour: longer than any reminder call, short enough that a lost summary does not hold a
/// slot for the rest of the day.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(3600);

fn default_call_deadline() -> Duration {
    DEFAULT_CALL_DEADLINE
}

impl Policy {
    /// Checks the numbers; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 1000.0) {
            return Err(format!(
                "rate: {} is not a number of calls per second in (0, 1000]",
                self.rate
            ));
        }
        if self.concurrency == 0 {
            return Err("concurrency: must be at least 1".to_owned());
        }
        if self.call_deadline < Duration::from_secs(1) {
            return Err(format!(
                "call_deadline: {:?} is shorter than a second; a call needs time to ring",
                self.call_deadline
            ));
        }
        if let Some(window) = &self.window
            && window.end <= window.start
        {
            return Err(format!(
                "window: closes at {} which is not after it opens at {}",
                window.end, window.start
            ));
        }
        Ok(())
    }

    fn deadline(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.call_deadline).unwrap_or(chrono::Duration::MAX)
    }

    fn interval(&self) -> chrono::Duration {
        chrono::Duration::microseconds((1_000_000.0 / self.rate).ceil() as i64)
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Attempted {
    /// The session ended with this `sessionStatus` (`COMPLETED`, `BUSY`, `NO_ANSWER`,
    /// `FAILED`, `CANCELED`, `ERROR`).
    Ended {
        /// The platform's status.
        status: String,
    },
    /// The API refused the request for good (a bad number, a bad key, ...).
    Rejected {
        /// HTTP status.
        http: u16,
        /// The platform's `statusCode`.
        code: i32,
        /// The platform's message.
        message: String,
    },
    /// The API failed transiently.
    Transient {
        /// What happened.
        message: String,
    },
    /// No outcome came within the policy's `call_deadline`.
    TimedOut,
}

/// Where a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not dialled yet, or waiting for a retry.
    Pending,
    /// A request is out or the call is live.
    Dialling,
    /// Over: see the outcome.
    Done,
}

/// A row's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Where it is.
    pub status: Status,
    /// Attempts started.
    pub attempts: u32,
    /// Not dialled before then (a retry's delay).
    pub not_before: Option<DateTime<Utc>>,
    /// The last attempt's result.
    pub last: Option<Attempted>,
    /// When the attempt under way started (for the deadline).
    #[serde(default)]
    pub dialled_at: Option<DateTime<Utc>>,
    /// The final outcome once done: a session status, `REJECTED`, `TRANSIENT`, `TIMED_OUT` or
    /// `CANCELED`.
    pub outcome: Option<String>,
}

/// Whether the campaign dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Dialling.
    Running,
    /// Dials no one until resumed.
    Paused,
    /// Dials no one, ever again.
    Canceled,
}

/// Counts of rows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Progress {
    /// Rows in the list.
    pub total: usize,
    /// Not finished and not dialling.
    pub pending: usize,
    /// Dialling now.
    pub dialling: usize,
    /// Finished.
    pub done: usize,
    /// Attempts started, retries included.
    pub attempts: u64,
    /// Finished rows by outcome.
    pub outcomes: BTreeMap<String, usize>,
}

/// The campaign's schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    policy: Policy,
    zones: Vec<Tz>,
    entries: Vec<Entry>,
    state: State,
    /// No dial before then (the rate).
    next_slot: Option<DateTime<Utc>>,
}

impl Schedule {
    /// A schedule of one row per zone (the callee's time zone), all pending.
    pub fn new(policy: Policy, zones: Vec<Tz>) -> Self {
        let entries = zones
            .iter()
            .map(|_| Entry {
                status: Status::Pending,
                attempts: 0,
                not_before: None,
                last: None,
                dialled_at: None,
                outcome: None,
            })
            .collect();
        Self {
            policy,
            zones,
            entries,
            state: State::Running,
            next_slot: None,
        }
    }

    /// A schedule from its stored parts: the rows' entries, the state and the next dial slot
    /// (see [`Schedule::next_slot`]). `None` when the entries do not match the zones.
    pub fn restore(
        policy: Policy,
        zones: Vec<Tz>,
        entries: Vec<Entry>,
        state: State,
        next_slot: Option<DateTime<Utc>>,
    ) -> Option<Self> {
        (entries.len() == zones.len()).then_some(Self {
            policy,
            zones,
            entries,
            state,
            next_slot,
        })
    }

    /// No dial before then (the rate's spacing); stored with the entries.
    pub fn next_slot(&self) -> Option<DateTime<Utc>> {
        self.next_slot
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Every row's progress, in list order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Running, paused or canceled.
    pub fn state(&self) -> State {
        self.state
    }

    /// Rows dialling now.
    pub fn dialling(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.status == Status::Dialling)
            .count()
    }

    /// The next row to dial at `now`, if the rate, the concurrency cap, the windows and the
    /// retry delays allow one; it is marked dialling (one more attempt). Call again for more.
    pub fn due(&mut self, now: DateTime<Utc>) -> Option<usize> {
        if self.state != State::Running
            || self.next_slot.is_some_and(|slot| now < slot)
            || self.dialling() >= self.policy.concurrency
        {
            return None;
        }
        let row = (0..self.entries.len()).find(|&i| self.ready(i, now))?;
        let entry = &mut self.entries[row];
        entry.status = Status::Dialling;
        entry.attempts += 1;
        entry.not_before = None;
        entry.dialled_at = Some(now);
        self.next_slot = Some(now + self.policy.interval());
        Some(row)
    }

    fn ready(&self, row: usize, now: DateTime<Utc>) -> bool {
        let entry = &self.entries[row];
        entry.status == Status::Pending
            && entry.not_before.is_none_or(|t| t <= now)
            && self
                .policy
                .window
                .as_ref()
                .is_none_or(|w| w.is_open(self.zones[row], now))
    }

    /// When [`Schedule::due`] may next give a row, if no outcome arrives before: `None` when
    /// nothing will ever be due without one (all dialling or done, paused, canceled).
    pub fn wake_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.state != State::Running {
            return None;
        }
        let earliest = self
            .entries
            .iter()
            .zip(&self.zones)
            .filter(|(e, _)| e.status == Status::Pending)
            .filter_map(|(entry, zone)| {
                let after = entry.not_before.map_or(now, |t| t.max(now));
                match &self.policy.window {
                    Some(window) => window.next_open(*zone, after),
                    None => Some(after),
                }
            })
            .min()?;
        if self.dialling() >= self.policy.concurrency {
            // A slot frees only with an outcome, which wakes the runner anyway.
            return None;
        }
        Some(self.next_slot.map_or(earliest, |slot| slot.max(earliest)))
    }

    /// When the first dialling row reaches its `call_deadline` (see [`Schedule::expire`]), in
    /// every state: a paused campaign's calls go on.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let deadline = self.policy.deadline();
        self.entries
            .iter()
            .filter(|e| e.status == Status::Dialling)
            .filter_map(|e| e.dialled_at.and_then(|at| at.checked_add_signed(deadline)))
            .min()
    }

    /// Records how row `row`'s attempt ended; a retry is scheduled if the policy has one left.
    /// An outcome for a row that is not dialling (a late or repeated report) is ignored, and
    /// `false` returned.
    pub fn finished(&mut self, row: usize, result: Attempted, now: DateTime<Utc>) -> bool {
        let canceled = self.state == State::Canceled;
        let Some(entry) = self.entries.get_mut(row) else {
            return false;
        };
        if entry.status != Status::Dialling {
            return false;
        }
        let (retry, outcome) = match &result {
            Attempted::Ended { status } => match status.as_str() {
                "BUSY" => (Some(self.policy.busy), status.clone()),
                "NO_ANSWER" => (Some(self.policy.no_answer), status.clone()),
                _ => (None, status.clone()),
            },
            Attempted::Rejected { .. } => (None, "REJECTED".to_owned()),
            Attempted::Transient { .. } => (Some(self.policy.transient), "TRANSIENT".to_owned()),
            // The call may have reached the callee: never again.
            Attempted::TimedOut => (None, "TIMED_OUT".to_owned()),
        };
        entry.last = Some(result);
        entry.dialled_at = None;
        match retry.filter(|r| !canceled && entry.attempts <= r.max) {
            Some(retry) => {
                entry.status = Status::Pending;
                entry.not_before = Some(
                    now + chrono::Duration::from_std(retry.delay).unwrap_or(chrono::Duration::MAX),
                );
            }
            None => {
                entry.status = Status::Done;
                entry.outcome = Some(outcome);
            }
        }
        true
    }

    /// Gives up the rows dialling for the policy's `call_deadline` or longer at `now`: they end
    /// `TIMED_OUT` (see the module documentation). Returns them.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<usize> {
        let deadline = self.policy.deadline();
        let late: Vec<usize> = (0..self.entries.len())
            .filter(|&i| {
                let entry = &self.entries[i];
                entry.status == Status::Dialling
                    && entry
                        .dialled_at
                        .and_then(|at| at.checked_add_signed(deadline))
                        .is_some_and(|due| due <= now)
            })
            .collect();
        for &row in &late {
            self.finished(row, Attempted::TimedOut, now);
        }
        late
    }

    /// Stops dialling until [`Schedule::resume`] (calls in progress go on).
    pub fn pause(&mut self) {
        if self.state == State::Running {
            self.state = State::Paused;
        }
    }

    /// Dials again after a pause.
    pub fn resume(&mut self) {
        if self.state == State::Paused {
            self.state = State::Running;
        }
    }

    /// Never dials again: rows not finished nor dialling end `CANCELED` (calls in progress
    /// end as they will).
    pub fn cancel(&mut self) {
        self.state = State::Canceled;
        for entry in &mut self.entries {
            if entry.status == Status::Pending {
                entry.status = Status::Done;
                entry.outcome = Some("CANCELED".to_owned());
            }
        }
    }

    /// Whether every row is done.
    pub fn is_finished(&self) -> bool {
        self.entries.iter().all(|e| e.status == Status::Done)
    }

    /// Counts of rows by status and outcome.
    pub fn progress(&self) -> Progress {
        let mut progress = Progress {
            total: self.entries.len(),
            ..Progress::default()
        };
        for entry in &self.entries {
            progress.attempts += u64::from(entry.attempts);
            match entry.status {
                Status::Pending => progress.pending += 1,
                Status::Dialling => progress.dialling += 1,
                Status::Done => {
                    progress.done += 1;
                    let outcome = entry.outcome.clone().unwrap_or_default();
                    *progress.outcomes.entry(outcome).or_default() += 1;
                }
            }
        }
        progress
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn policy(rate: f64, concurrency: usize) -> Policy {
        Policy {
            rate,
            concurrency,
            window: None,
            busy: Retry::default(),
            no_answer: Retry::default(),
            transient: Retry::default(),
            call_deadline: DEFAULT_CALL_DEADLINE,
        }
    }

    fn ended(status: &str) -> Attempted {
        Attempted::Ended {
            status: status.to_owned(),
        }
    }

    #[test]
    fn dials_are_spaced_by_the_rate_and_capped_by_concurrency() {
        let mut s = Schedule::new(policy(2.0, 2), vec![Tz::UTC; 4]);
        let t0 = at("2026-03-02T10:00:00Z");
        assert_eq!(s.due(t0), Some(0));
        assert_eq!(s.due(t0), None, "the rate spaces dials by 500 ms");
        assert_eq!(
            s.wake_at(t0),
            Some(t0 + chrono::Duration::milliseconds(500))
        );
        let t1 = t0 + chrono::Duration::milliseconds(500);
        assert_eq!(s.due(t1), Some(1));
        let t2 = t1 + chrono::Duration::seconds(5);
        assert_eq!(s.due(t2), None, "two dialling: the cap");
        assert_eq!(s.wake_at(t2), None);
        assert!(s.finished(0, ended("COMPLETED"), t2));
        assert!(
            !s.finished(0, ended("COMPLETED"), t2),
            "a repeated outcome is ignored"
        );
        assert_eq!(s.due(t2), Some(2));
        let progress = s.progress();
        assert_eq!(
            (progress.done, progress.dialling, progress.pending),
            (1, 2, 1)
        );
        assert_eq!(progress.outcomes["COMPLETED"], 1);
    }

    #[test]
    fn busy_and_no_answer_are_retried_after_their_delay_up_to_the_maximum() {
        let mut p = policy(100.0, 10);
        p.busy = Retry {
            max: 2,
            delay: Duration::from_secs(60),
        };
        let mut s = Schedule::new(p, vec![Tz::UTC; 2]);
        let t0 = at("2026-03-02T10:00:00Z");
        assert_eq!(s.due(t0), Some(0));
        s.finished(0, ended("BUSY"), t0);
        let t1 = t0 + chrono::Duration::seconds(1);
        assert_eq!(s.due(t1), Some(1), "row 0 waits for its retry");
        s.finished(1, ended("NO_ANSWER"), t1);
        assert!(
            s.entries()[1].status == Status::Done,
            "no retry for no-answer in this policy"
        );
        assert_eq!(s.due(t1 + chrono::Duration::seconds(1)), None);
        assert_eq!(s.wake_at(t1), Some(t0 + chrono::Duration::seconds(60)));
        let mut t = t0;
        for _ in 0..2 {
            t += chrono::Duration::seconds(60);
            assert_eq!(s.due(t), Some(0));
            s.finished(0, ended("BUSY"), t);
        }
        assert_eq!(s.entries()[0].attempts, 3);
        assert_eq!(s.entries()[0].outcome.as_deref(), Some("BUSY"));
        assert!(s.is_finished());
    }

    #[test]
    fn a_closing_window_pauses_dialling_until_it_reopens_in_the_callees_zone() {
        let mut p = policy(1.0, 5);
        p.window = Some(Window {
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
            days: vec![Weekday::Mon, Weekday::Tue],
        });
        // 16:59:59 in Singapore is 08:59:59 UTC, Monday.
        let mut s = Schedule::new(
            p,
            vec![Tz::Asia__Singapore, Tz::Europe__London, Tz::Asia__Singapore],
        );
        let t0 = at("2026-03-02T08:59:59Z");
        assert_eq!(
            s.due(t0),
            Some(0),
            "open in Singapore, closed in London (08:59)"
        );
        let t1 = at("2026-03-02T09:00:01Z");
        assert_eq!(
            s.due(t1),
            Some(1),
            "Singapore closed at 17:00; London open at 09:00"
        );
        let t2 = at("2026-03-02T17:00:00Z");
        assert_eq!(s.due(t2), None, "closed in both");
        // The next opening: Tuesday 09:00 in Singapore, 01:00 UTC.
        assert_eq!(s.wake_at(t2), Some(at("2026-03-03T01:00:00Z")));
        assert_eq!(s.due(at("2026-03-03T01:00:00Z")), Some(2));
    }

    #[test]
    fn pause_resume_and_cancel() {
        let mut s = Schedule::new(policy(10.0, 5), vec![Tz::UTC; 3]);
        let t0 = at("2026-03-02T10:00:00Z");
        assert_eq!(s.due(t0), Some(0));
        s.pause();
        let t1 = t0 + chrono::Duration::seconds(1);
        assert_eq!(s.due(t1), None);
        assert_eq!(s.wake_at(t1), None);
        s.resume();
        assert_eq!(s.due(t1), Some(1));
        s.cancel();
        assert_eq!(s.due(t1 + chrono::Duration::seconds(1)), None);
        assert_eq!(s.entries()[2].outcome.as_deref(), Some("CANCELED"));
        s.finished(0, ended("BUSY"), t1);
        s.finished(1, ended("COMPLETED"), t1);
        assert!(s.is_finished());
        assert_eq!(s.progress().outcomes["CANCELED"], 1);
    }

    #[test]
    fn rejections_are_final_and_transient_failures_retried() {
        let mut p = policy(100.0, 5);
        p.transient = Retry {
            max: 1,
            delay: Duration::from_secs(1),
        };
        let mut s = Schedule::new(p, vec![Tz::UTC; 2]);
        let t0 = at("2026-03-02T10:00:00Z");
        s.due(t0);
        s.finished(
            0,
            Attempted::Rejected {
                http: 422,
                code: -1013,
                message: "Invalid Callflow".to_owned(),
            },
            t0,
        );
        assert_eq!(s.entries()[0].outcome.as_deref(), Some("REJECTED"));
        let t1 = t0 + chrono::Duration::seconds(1);
        assert_eq!(s.due(t1), Some(1));
        s.finished(
            1,
            Attempted::Transient {
                message: "500".to_owned(),
            },
            t1,
        );
        assert_eq!(s.entries()[1].status, Status::Pending);
        assert_eq!(s.due(t1 + chrono::Duration::seconds(1)), Some(1));
        let json = serde_json::to_string(&s).unwrap();
        let back: Schedule = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s, "the schedule survives a store round trip");
    }

    #[test]
    fn a_row_without_an_outcome_by_its_deadline_times_out_and_frees_its_slot() {
        let mut p = policy(10.0, 1);
        p.call_deadline = Duration::from_secs(120);
        p.no_answer = Retry {
            max: 3,
            delay: Duration::from_secs(1),
        };
        let mut s = Schedule::new(p, vec![Tz::UTC; 2]);
        let t0 = at("2026-03-02T10:00:00Z");
        assert_eq!(s.due(t0), Some(0));
        let t1 = t0 + chrono::Duration::seconds(1);
        assert_eq!(s.due(t1), None, "the only slot is taken");
        assert_eq!(s.wake_at(t1), None, "no dial before an outcome");
        assert_eq!(
            s.next_deadline(),
            Some(t0 + chrono::Duration::seconds(120)),
            "the deadline wakes the runner though no outcome will come"
        );
        assert!(s.expire(t0 + chrono::Duration::seconds(119)).is_empty());
        let t2 = t0 + chrono::Duration::seconds(120);
        assert_eq!(s.expire(t2), vec![0]);
        assert_eq!(s.entries()[0].outcome.as_deref(), Some("TIMED_OUT"));
        assert_eq!(s.entries()[0].attempts, 1, "not retried");
        assert_eq!(s.due(t2), Some(1), "the slot is free");
        assert!(
            !s.finished(0, ended("COMPLETED"), t2),
            "a summary after the deadline is ignored"
        );
        s.pause();
        assert_eq!(
            s.next_deadline(),
            Some(t2 + chrono::Duration::seconds(120)),
            "a paused campaign's calls still time out"
        );
    }

    #[test]
    fn a_restored_schedule_continues_where_the_stored_one_was() {
        let mut s = Schedule::new(policy(1.0, 5), vec![Tz::UTC; 3]);
        let t0 = at("2026-03-02T10:00:00Z");
        assert_eq!(s.due(t0), Some(0));
        let back = Schedule::restore(
            s.policy().clone(),
            vec![Tz::UTC; 3],
            s.entries().to_vec(),
            s.state(),
            s.next_slot(),
        )
        .unwrap();
        assert_eq!(back, s);
        assert!(
            Schedule::restore(
                s.policy().clone(),
                vec![Tz::UTC; 2],
                s.entries().to_vec(),
                State::Running,
                None
            )
            .is_none()
        );
    }

    #[test]
    fn bad_policies_name_the_field() {
        assert!(policy(0.0, 1).check().unwrap_err().starts_with("rate:"));
        assert!(
            policy(1.0, 0)
                .check()
                .unwrap_err()
                .starts_with("concurrency:")
        );
    }
}
