//! Campaigns: a list of callees dialled at a set pace, each through the outbound path of
//! [`crate::outbound`].
//!
//! A campaign is a validated list ([`switchboard_outbound::list`]) and a
//! [`switchboard_outbound::schedule::Schedule`]; a tokio task per campaign asks the schedule
//! for due rows, places each with a ticket `c{campaign}-r{row}-a{attempt}` (also the
//! `clientRequestId`, so the session summary names the row), and sleeps until the schedule's
//! next wake-up or an outcome. Outcomes come from the webhook handler: a `SESSION_SUMMARY`
//! whose `clientRequestId` is a campaign ticket finishes that row's attempt, with the digits
//! and variables the session captured.
//!
//! The time comes from a [`Clock`], so a test (or an operator dry run) can move it.
//!
//! Campaign state is held by this process: a replica that restarts forgets its campaigns
//! (see `docs/outbound.md`, "Limits").

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use switchboard_outbound::ApiError;
use switchboard_outbound::list::Row;
use switchboard_outbound::schedule::{Attempted, Policy, Progress, Schedule, State, Status};
use switchboard_runtime::Runtime;
use switchboard_telemetry::catalogue;
use tokio::sync::Notify;

use crate::outbound::{CallError, CallRequest, Dialer};

/// The time, for the schedule: the runtime's clock, so calling windows and business hours
/// are judged by one clock.
pub use switchboard_runtime::clock::{Clock, SystemClock};

/// What one row got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RowResult {
    /// The platform's session id of each created attempt.
    pub sessions: Vec<String>,
    /// The digits entered last in the call.
    pub digits: Option<String>,
    /// The node the call ended at.
    pub node: Option<String>,
    /// The session's variables when it ended (captures included).
    pub vars: BTreeMap<String, String>,
    /// The last refusal or failure of the API, with the platform's code.
    pub error: Option<String>,
    /// The platform's `statusCode` of that refusal.
    pub status_code: Option<i32>,
}

/// A campaign.
#[derive(Debug)]
pub struct Campaign {
    /// Its id.
    pub id: String,
    /// The flow.
    pub flow: String,
    /// Caller id (default: `outbound_from`).
    pub from: Option<String>,
    /// The list.
    pub rows: Vec<Row>,
    /// The schedule.
    pub schedule: Schedule,
    /// Per row.
    pub results: Vec<RowResult>,
}

/// A campaign's handle: its state, and the bell that wakes its task.
#[derive(Debug)]
struct Handle {
    campaign: Mutex<Campaign>,
    wake: Notify,
}

/// Every campaign of this process.
#[derive(Debug)]
pub struct Campaigns {
    campaigns: Mutex<HashMap<String, Arc<Handle>>>,
    next: AtomicU64,
    clock: Arc<dyn Clock>,
}

/// A campaign's progress, for `GET /v1/campaigns/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// Its id.
    pub id: String,
    /// The flow.
    pub flow: String,
    /// `running`, `paused` or `canceled`.
    pub state: State,
    /// Whether every row is done.
    pub finished: bool,
    /// Counts.
    pub progress: Progress,
    /// When the next row may be dialled, if no outcome comes first (`null`: not until one
    /// does, or never): a closed window shows here as the time it reopens.
    pub next_dial: Option<DateTime<Utc>>,
}

/// One row of an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRow {
    /// The list's line.
    pub line: usize,
    /// The callee.
    pub number: String,
    /// `pending`, `dialling` or `done`.
    pub status: Status,
    /// The outcome once done.
    pub outcome: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// Sessions, digits, variables, errors.
    #[serde(flatten)]
    pub result: RowResult,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic under the lock leaves data that is still consistent (every update is one step).
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A ticket's parts: campaign, row, attempt.
pub fn parse_ticket(ticket: &str) -> Option<(&str, usize, u32)> {
    let rest = ticket.strip_prefix('c')?;
    let (campaign, rest) = rest.split_once("-r")?;
    let (row, attempt) = rest.split_once("-a")?;
    Some((campaign, row.parse().ok()?, attempt.parse().ok()?))
}

impl Default for Campaigns {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl Campaigns {
    /// No campaigns yet, on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            campaigns: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            clock,
        }
    }

    /// Starts a campaign over `rows` (already validated) and returns its id.
    pub fn start(
        self: &Arc<Self>,
        runtime: Arc<Runtime>,
        dialer: Arc<Dialer>,
        flow: String,
        from: Option<String>,
        rows: Vec<Row>,
        policy: Policy,
    ) -> String {
        let id = format!(
            "{:x}{:x}",
            self.clock.now().timestamp_millis(),
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let zones = rows
            .iter()
            .map(|r| r.timezone.parse::<Tz>().unwrap_or(Tz::UTC))
            .collect();
        let results = vec![RowResult::default(); rows.len()];
        metrics::counter!(catalogue::CAMPAIGN_ROWS).increment(rows.len() as u64);
        let handle = Arc::new(Handle {
            campaign: Mutex::new(Campaign {
                id: id.clone(),
                flow,
                from,
                rows,
                schedule: Schedule::new(policy, zones),
                results,
            }),
            wake: Notify::new(),
        });
        lock(&self.campaigns).insert(id.clone(), Arc::clone(&handle));
        let clock = Arc::clone(&self.clock);
        tokio::spawn(run(handle, runtime, dialer, clock));
        id
    }

    fn handle(&self, id: &str) -> Option<Arc<Handle>> {
        lock(&self.campaigns).get(id).cloned()
    }

    /// Wakes every campaign to look at the clock again (after a [`Clock`] that is not the
    /// system's has moved).
    pub fn wake_all(&self) {
        for handle in lock(&self.campaigns).values() {
            handle.wake.notify_one();
        }
    }

    /// A campaign's progress.
    pub fn view(&self, id: &str) -> Option<View> {
        let handle = self.handle(id)?;
        let campaign = lock(&handle.campaign);
        Some(View {
            id: campaign.id.clone(),
            flow: campaign.flow.clone(),
            state: campaign.schedule.state(),
            finished: campaign.schedule.is_finished(),
            progress: campaign.schedule.progress(),
            next_dial: campaign.schedule.wake_at(self.clock.now()),
        })
    }

    /// Pauses, resumes or cancels a campaign; `false` if there is none.
    pub fn control(&self, id: &str, action: Control) -> bool {
        let Some(handle) = self.handle(id) else {
            return false;
        };
        {
            let mut campaign = lock(&handle.campaign);
            match action {
                Control::Pause => campaign.schedule.pause(),
                Control::Resume => campaign.schedule.resume(),
                Control::Cancel => {
                    let before = campaign.schedule.progress().outcomes;
                    campaign.schedule.cancel();
                    let after = campaign.schedule.progress().outcomes;
                    let canceled = after.get("CANCELED").copied().unwrap_or(0)
                        - before.get("CANCELED").copied().unwrap_or(0);
                    metrics::counter!(catalogue::CAMPAIGN_ROWS_DONE, "outcome" => "CANCELED")
                        .increment(canceled as u64);
                }
            }
        }
        handle.wake.notify_one();
        true
    }

    /// Every row: outcome, attempts, sessions, digits, variables.
    pub fn export(&self, id: &str) -> Option<Vec<ExportRow>> {
        let handle = self.handle(id)?;
        let campaign = lock(&handle.campaign);
        Some(
            campaign
                .rows
                .iter()
                .zip(campaign.schedule.entries())
                .zip(&campaign.results)
                .map(|((row, entry), result)| {
                    let mut result = result.clone();
                    // The list's variables, then what the call changed or captured.
                    let mut vars = row.vars.clone();
                    vars.extend(result.vars);
                    result.vars = vars;
                    ExportRow {
                        line: row.line,
                        number: row.number.clone(),
                        status: entry.status,
                        outcome: entry.outcome.clone(),
                        attempts: entry.attempts,
                        result,
                    }
                })
                .collect(),
        )
    }

    /// A session summary of a campaign call: finishes the row's attempt. `false` if the
    /// ticket is not one of this process's campaigns (or the attempt is over already).
    pub fn on_summary(&self, ticket: &str, status: &str, ended: Option<Ended>) -> bool {
        let Some((id, row, attempt)) = parse_ticket(ticket) else {
            return false;
        };
        let Some(handle) = self.handle(id) else {
            return false;
        };
        let finished = {
            let mut campaign = lock(&handle.campaign);
            let current = campaign.schedule.entries().get(row).map(|e| e.attempts);
            if current != Some(attempt) {
                return false;
            }
            if let (Some(ended), Some(result)) = (ended, campaign.results.get_mut(row)) {
                result.digits = Some(ended.digits).filter(|d| !d.is_empty());
                result.node = Some(ended.node);
                result.vars = ended.vars;
            }
            let now = self.clock.now();
            let finished = campaign.schedule.finished(
                row,
                Attempted::Ended {
                    status: status.to_owned(),
                },
                now,
            );
            if finished {
                count_done(&campaign.schedule, row);
            }
            finished
        };
        handle.wake.notify_one();
        finished
    }
}

/// Where a campaign call ended.
#[derive(Debug, Clone)]
pub struct Ended {
    /// The node.
    pub node: String,
    /// The digits entered last.
    pub digits: String,
    /// The session's variables.
    pub vars: BTreeMap<String, String>,
}

/// `POST /v1/campaigns/{id}/{pause|resume|cancel}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop dialling.
    Pause,
    /// Dial again.
    Resume,
    /// Never dial again.
    Cancel,
}

/// The campaign's task: dial what is due, sleep until the next wake-up or an outcome.
async fn run(
    handle: Arc<Handle>,
    runtime: Arc<Runtime>,
    dialer: Arc<Dialer>,
    clock: Arc<dyn Clock>,
) {
    loop {
        let now = clock.now();
        let (due, wake, finished) = {
            let mut campaign = lock(&handle.campaign);
            let mut due = Vec::new();
            while let Some(row) = campaign.schedule.due(now) {
                let attempt = campaign.schedule.entries()[row].attempts;
                let ticket = format!("c{}-r{row}-a{attempt}", campaign.id);
                let request = CallRequest {
                    flow: campaign.flow.clone(),
                    to: campaign.rows[row].number.clone(),
                    from: campaign.from.clone(),
                    vars: campaign.rows[row].vars.clone(),
                };
                due.push((row, ticket, request));
                metrics::counter!(catalogue::CAMPAIGN_ATTEMPTS).increment(1);
            }
            (
                due,
                campaign.schedule.wake_at(now),
                campaign.schedule.is_finished(),
            )
        };
        for (row, ticket, request) in due {
            tokio::spawn(dial(
                Arc::clone(&handle),
                Arc::clone(&runtime),
                Arc::clone(&dialer),
                Arc::clone(&clock),
                row,
                ticket,
                request,
            ));
        }
        if finished {
            return;
        }
        let sleep = wake.map(|at| (at - clock.now()).to_std().unwrap_or(Duration::ZERO));
        match sleep {
            Some(wait) => {
                tokio::select! {
                    () = handle.wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
            None => handle.wake.notified().await,
        }
    }
}

/// Places one attempt and records a refusal; a created call waits for its summary.
async fn dial(
    handle: Arc<Handle>,
    runtime: Arc<Runtime>,
    dialer: Arc<Dialer>,
    clock: Arc<dyn Clock>,
    row: usize,
    ticket: String,
    request: CallRequest,
) {
    let result = dialer.call_with_ticket(&runtime, request, &ticket).await;
    let mut campaign = lock(&handle.campaign);
    let now = clock.now();
    let attempted = match result {
        Ok(placed) => {
            if let Some(result) = campaign.results.get_mut(row) {
                result.sessions.push(placed.session_id);
            }
            return;
        }
        Err(CallError::Api(api)) => {
            if let Some(result) = campaign.results.get_mut(row) {
                result.error = Some(api.to_string());
                result.status_code = api.status_code();
            }
            attempted(&api)
        }
        Err(other) => {
            if let Some(result) = campaign.results.get_mut(row) {
                result.error = Some(other.to_string());
            }
            match other {
                CallError::Register(message) => Attempted::Transient { message },
                other => Attempted::Rejected {
                    http: 400,
                    code: 0,
                    message: other.to_string(),
                },
            }
        }
    };
    if campaign.schedule.finished(row, attempted, now) {
        count_done(&campaign.schedule, row);
    }
    drop(campaign);
    handle.wake.notify_one();
}

/// Counts a row that has just finished (a retry scheduled is not a finish).
fn count_done(schedule: &Schedule, row: usize) {
    if let Some(entry) = schedule.entries().get(row)
        && entry.status == Status::Done
    {
        let outcome = entry.outcome.clone().unwrap_or_default();
        metrics::counter!(catalogue::CAMPAIGN_ROWS_DONE, "outcome" => outcome).increment(1);
    }
}

fn attempted(api: &ApiError) -> Attempted {
    if api.is_transient() {
        Attempted::Transient {
            message: api.to_string(),
        }
    } else {
        Attempted::Rejected {
            http: api.http_status().unwrap_or(0),
            code: api.status_code().unwrap_or(0),
            message: api.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_name_campaign_row_and_attempt() {
        assert_eq!(parse_ticket("c18f3a2-r41-a2"), Some(("18f3a2", 41, 2)));
        assert_eq!(parse_ticket("18f3a2-r41-a2"), None);
        assert_eq!(parse_ticket("c1-rx-a2"), None);
    }
}
