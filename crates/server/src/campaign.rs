//! Campaigns: a list of callees dialled at a set pace, each through the outbound path of
//! [`crate::outbound`], with their state in the store so any replica can continue them.
//!
//! A campaign is a validated list ([`switchboard_outbound::list`]) and a
//! [`switchboard_outbound::schedule::Schedule`]. Its definition, every row's progress and
//! outcome, and its state are kept in a [`CampaignStore`] (Redis in production, see
//! `switchboard_runtime::campaign`), and only the replica holding the campaign's **lease**
//! dials it:
//!
//! * the holder's task asks the schedule for due rows, marks each dialling *in the store*
//!   (a write fenced by the lease), and only then places it with the ticket
//!   `c{campaign}-r{row}-a{attempt}`, also the request's `clientRequestId`, so the platform
//!   answers a repeat of the same attempt with the call it made the first time;
//! * it renews the lease while it runs and gives it up when the campaign is finished, paused
//!   with no call in progress, or the server shuts down; a failed renewal or fenced write
//!   stops it at once (another replica holds the campaign now);
//! * every replica watches the store's active campaigns, and takes the lease of one no one
//!   holds: after a SIGKILL, when the dead replica's lease lapses. It continues from the
//!   stored rows: rows that were dialling are requested again with their ticket (the platform
//!   de-duplicates those it placed), so no one is called twice and no one skipped;
//! * a `SESSION_SUMMARY` whose `clientRequestId` is a campaign ticket finishes that row's
//!   attempt, with the digits and variables the session captured: applied at once by the
//!   holder, or left in the campaign's inbox in the store for the holder to apply;
//! * a row whose summary never comes is given up after the policy's `call_deadline`: it ends
//!   `TIMED_OUT` and frees its concurrency slot (it is not retried: the call may have
//!   reached the callee).
//!
//! The time of the schedule comes from a [`Clock`], so a test (or an operator dry run) can
//! move it; the lease and the store's polling run on real time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use switchboard_outbound::ApiError;
use switchboard_outbound::list::Row;
use switchboard_outbound::schedule::{Attempted, Entry, Policy, Progress, Schedule, State, Status};
use switchboard_runtime::campaign::{CampaignStore, CampaignWrite, StoredCampaign};
use switchboard_runtime::{Runtime, StoreError};
use switchboard_telemetry::catalogue;
use tokio::sync::Notify;

use crate::outbound::{CallError, CallRequest, Dialer};

/// The time, for the schedule: the runtime's clock, so calling windows and business hours
/// are judged by one clock.
pub use switchboard_runtime::clock::{Clock, SystemClock};

/// How campaigns share the store (`campaign_lease`, `campaign_poll`,
/// `campaign_call_deadline` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The lease's time to live: how long a dead replica's campaign waits for another.
    pub lease: Duration,
    /// How often the holder reads the store's inbox and control, and every replica looks for
    /// campaigns no one holds.
    pub poll: Duration,
    /// The default `call_deadline` of a campaign's policy.
    pub call_deadline: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            poll: Duration::from_secs(1),
            call_deadline: switchboard_outbound::schedule::DEFAULT_CALL_DEADLINE,
        }
    }
}

/// What one row got.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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

/// A campaign's definition, stored once.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Definition {
    flow: String,
    from: Option<String>,
    rows: Vec<Row>,
    policy: Policy,
}

/// A row as stored.
#[derive(Debug, Serialize, Deserialize)]
struct RowRecord {
    entry: Entry,
    result: RowResult,
}

/// The campaign's state as stored.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Meta {
    state: Option<State>,
    next_slot: Option<DateTime<Utc>>,
    finished: bool,
    dialling: usize,
}

/// An attempt's outcome, left in the inbox by the replica that learnt it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    attempted: Attempted,
    ended: Option<Ended>,
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
    /// Rows changed since the last write to the store.
    dirty: BTreeSet<usize>,
    /// Inbox reports applied since the last write (deleted with it).
    applied: Vec<String>,
    /// Whether rows finishing here count in the metrics: not in a copy read for a view.
    counting: bool,
}

impl Campaign {
    /// The campaign as stored, with the operator's control and the inbox's reports applied.
    /// `counting`: this copy is to be dialled (its finishing rows count in the metrics).
    fn restore(
        id: &str,
        stored: StoredCampaign,
        now: DateTime<Utc>,
        counting: bool,
    ) -> Result<Self, String> {
        let definition: Definition = serde_json::from_str(&stored.definition)
            .map_err(|e| format!("campaign {id}: the stored definition is unreadable: {e}"))?;
        let meta: Meta = stored
            .meta
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| format!("campaign {id}: the stored state is unreadable: {e}"))?
            .unwrap_or_default();
        let fresh = Schedule::new(definition.policy.clone(), zones(&definition.rows));
        let mut entries = fresh.entries().to_vec();
        let mut results = vec![RowResult::default(); definition.rows.len()];
        for (row, text) in &stored.rows {
            let record: RowRecord = serde_json::from_str(text)
                .map_err(|e| format!("campaign {id}: row {row} is unreadable: {e}"))?;
            if let (Some(entry), Some(result)) = (entries.get_mut(*row), results.get_mut(*row)) {
                *entry = record.entry;
                *result = record.result;
            }
        }
        let schedule = Schedule::restore(
            definition.policy,
            zones(&definition.rows),
            entries,
            meta.state.unwrap_or(State::Running),
            meta.next_slot,
        )
        .ok_or_else(|| format!("campaign {id}: the stored rows do not match its list"))?;
        let mut campaign = Self {
            id: id.to_owned(),
            flow: definition.flow,
            from: definition.from,
            rows: definition.rows,
            schedule,
            results,
            dirty: BTreeSet::new(),
            applied: Vec::new(),
            counting,
        };
        if let Some(control) = stored.control.as_deref().and_then(Control::parse) {
            campaign.control(control);
        }
        for (ticket, text) in &stored.reports {
            campaign.apply_report(ticket, text, now);
        }
        Ok(campaign)
    }

    /// Applies the operator's control; the rows it changed are marked for writing.
    fn control(&mut self, action: Control) {
        match action {
            Control::Pause => self.schedule.pause(),
            Control::Resume => self.schedule.resume(),
            Control::Cancel if self.schedule.state() != State::Canceled => {
                let pending: Vec<usize> = (0..self.rows.len())
                    .filter(|&i| self.schedule.entries()[i].status == Status::Pending)
                    .collect();
                self.schedule.cancel();
                if self.counting {
                    metrics::counter!(catalogue::CAMPAIGN_ROWS_DONE, "outcome" => "CANCELED")
                        .increment(pending.len() as u64);
                }
                self.dirty.extend(pending);
            }
            Control::Cancel => {}
        }
    }

    /// Finishes `row`'s attempt `attempt`; `false` if that attempt is not the one under way.
    fn finish(&mut self, row: usize, attempt: u32, report: Report, now: DateTime<Utc>) -> bool {
        let current = self.schedule.entries().get(row).map(|e| e.attempts);
        if current != Some(attempt) || self.schedule.entries()[row].status != Status::Dialling {
            return false;
        }
        if let Some(result) = self.results.get_mut(row) {
            if let Some(ended) = report.ended {
                result.digits = Some(ended.digits).filter(|d| !d.is_empty());
                result.node = Some(ended.node);
                result.vars = ended.vars;
            }
            match &report.attempted {
                Attempted::Rejected { code, message, .. } => {
                    result.error = Some(message.clone());
                    result.status_code = Some(*code).filter(|c| *c != 0);
                }
                Attempted::Transient { message } => result.error = Some(message.clone()),
                _ => {}
            }
        }
        let finished = self.schedule.finished(row, report.attempted, now);
        if finished {
            if self.counting {
                count_done(&self.schedule, row);
            }
            self.dirty.insert(row);
        }
        finished
    }

    /// Applies a report of the inbox (and marks it for deletion whether it applied or not:
    /// a report of an attempt that is over already is stale).
    fn apply_report(&mut self, ticket: &str, text: &str, now: DateTime<Utc>) {
        self.applied.push(ticket.to_owned());
        let (Some((_, row, attempt)), Ok(report)) =
            (parse_ticket(ticket), serde_json::from_str::<Report>(text))
        else {
            tracing::warn!(campaign = %self.id, ticket, "unreadable campaign report dropped");
            return;
        };
        self.finish(row, attempt, report, now);
    }

    /// The write that makes every change since the last one durable (and clears them).
    fn take_write(&mut self) -> Result<CampaignWrite, String> {
        let mut rows = Vec::with_capacity(self.dirty.len());
        for row in std::mem::take(&mut self.dirty) {
            let record = RowRecord {
                entry: self.schedule.entries()[row].clone(),
                result: self.results[row].clone(),
            };
            let text = serde_json::to_string(&record)
                .map_err(|e| format!("row {row} cannot be serialized: {e}"))?;
            rows.push((row, text));
        }
        let finished = self.schedule.is_finished();
        let meta = Meta {
            state: Some(self.schedule.state()),
            next_slot: self.schedule.next_slot(),
            finished,
            dialling: self.schedule.dialling(),
        };
        Ok(CampaignWrite {
            rows,
            meta: serde_json::to_string(&meta).map_err(|e| e.to_string())?,
            applied: std::mem::take(&mut self.applied),
            finished,
        })
    }

    fn view(&self, now: DateTime<Utc>) -> View {
        View {
            id: self.id.clone(),
            flow: self.flow.clone(),
            state: self.schedule.state(),
            finished: self.schedule.is_finished(),
            progress: self.schedule.progress(),
            next_dial: self.schedule.wake_at(now),
        }
    }

    fn export(&self) -> Vec<ExportRow> {
        self.rows
            .iter()
            .zip(self.schedule.entries())
            .zip(&self.results)
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
            .collect()
    }

    fn request(&self, row: usize) -> (String, CallRequest) {
        let attempt = self.schedule.entries()[row].attempts;
        let ticket = format!("c{}-r{row}-a{attempt}", self.id);
        let request = CallRequest {
            flow: self.flow.clone(),
            to: self.rows[row].number.clone(),
            from: self.from.clone(),
            vars: self.rows[row].vars.clone(),
        };
        (ticket, request)
    }
}

fn zones(rows: &[Row]) -> Vec<Tz> {
    rows.iter()
        .map(|r| r.timezone.parse::<Tz>().unwrap_or(Tz::UTC))
        .collect()
}

/// A campaign this replica holds the lease of: its state, and the bell that wakes its task.
#[derive(Debug)]
struct Handle {
    campaign: Mutex<Campaign>,
    wake: Notify,
    /// Writes to the store one at a time, in the order their changes were made.
    writing: tokio::sync::Mutex<()>,
    /// The lease is lost or given up: dial no one, write nothing.
    stopped: AtomicBool,
}

impl Handle {
    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// The campaigns of a deployment, as this replica sees and dials them.
#[derive(Debug)]
pub struct Campaigns {
    /// The campaigns this replica holds the lease of.
    held: Mutex<HashMap<String, Arc<Handle>>>,
    next: AtomicU64,
    clock: Arc<dyn Clock>,
    store: Arc<dyn CampaignStore>,
    settings: Settings,
    /// This replica's lease token: unique per process.
    token: String,
    runtime: Arc<Runtime>,
    dialer: Arc<Dialer>,
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

/// Why a campaign could not be read or started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What the store holds cannot be read.
    #[error("{0}")]
    Corrupt(String),
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

impl Campaigns {
    /// The campaigns in `store`, dialled through `dialer` on `clock`. Call
    /// [`Campaigns::watch`] to continue the campaigns no replica holds.
    pub fn new(
        clock: Arc<dyn Clock>,
        store: Arc<dyn CampaignStore>,
        settings: Settings,
        runtime: Arc<Runtime>,
        dialer: Arc<Dialer>,
    ) -> Self {
        Self {
            held: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            clock,
            store,
            settings,
            token: dialer.ticket(),
            runtime,
            dialer,
        }
    }

    /// The settings.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Starts a campaign over `rows` (already validated) and returns its id. This replica
    /// holds its lease from the start, and dials it.
    pub async fn start(
        self: &Arc<Self>,
        flow: String,
        from: Option<String>,
        rows: Vec<Row>,
        policy: Policy,
    ) -> Result<String, CampaignError> {
        let definition = Definition {
            flow,
            from,
            rows,
            policy,
        };
        let text = serde_json::to_string(&definition)
            .map_err(|e| CampaignError::Corrupt(format!("the campaign cannot be stored: {e}")))?;
        let id = loop {
            // Time, process and a counter: ids of two replicas do not meet, and the store
            // refuses one that does.
            let id = format!(
                "{:x}{:x}{:x}",
                self.clock.now().timestamp_millis(),
                std::process::id(),
                self.next.fetch_add(1, Ordering::Relaxed)
            );
            if self
                .store
                .create(&id, &text, &self.token, self.settings.lease)
                .await?
            {
                break id;
            }
        };
        metrics::counter!(catalogue::CAMPAIGN_ROWS).increment(definition.rows.len() as u64);
        let stored = StoredCampaign {
            definition: text,
            ..StoredCampaign::default()
        };
        let campaign = Campaign::restore(&id, stored, self.clock.now(), true)
            .map_err(CampaignError::Corrupt)?;
        self.hold(campaign, false);
        Ok(id)
    }

    /// Runs `campaign` here (its lease is ours).
    fn hold(self: &Arc<Self>, campaign: Campaign, again: bool) {
        let id = campaign.id.clone();
        let handle = Arc::new(Handle {
            campaign: Mutex::new(campaign),
            wake: Notify::new(),
            writing: tokio::sync::Mutex::new(()),
            stopped: AtomicBool::new(false),
        });
        let previous = lock(&self.held).insert(id, Arc::clone(&handle));
        if let Some(previous) = previous {
            previous.stopped.store(true, Ordering::Release);
            previous.wake.notify_one();
        }
        self.publish_leases();
        tokio::spawn(Arc::clone(self).run(handle, again));
    }

    fn publish_leases(&self) {
        metrics::gauge!(catalogue::CAMPAIGN_LEASES).set(lock(&self.held).len() as f64);
    }

    fn handle(&self, id: &str) -> Option<Arc<Handle>> {
        lock(&self.held)
            .get(id)
            .filter(|h| !h.is_stopped())
            .cloned()
    }

    /// Wakes every campaign held here to look at the clock again (after a [`Clock`] that is
    /// not the system's has moved).
    pub fn wake_all(&self) {
        for handle in lock(&self.held).values() {
            handle.wake.notify_one();
        }
    }

    /// Whether this replica holds the campaign's lease and dials it.
    pub fn holds(&self, id: &str) -> bool {
        self.handle(id).is_some()
    }

    /// The campaign as this replica holds it, or as the store has it.
    async fn read<T>(
        &self,
        id: &str,
        f: impl FnOnce(&Campaign) -> T,
    ) -> Result<Option<T>, CampaignError> {
        if let Some(handle) = self.handle(id) {
            return Ok(Some(f(&lock(&handle.campaign))));
        }
        let Some(stored) = self.store.load(id).await? else {
            return Ok(None);
        };
        let campaign = Campaign::restore(id, stored, self.clock.now(), false)
            .map_err(CampaignError::Corrupt)?;
        Ok(Some(f(&campaign)))
    }

    /// A campaign's progress, from whichever replica.
    pub async fn view(&self, id: &str) -> Result<Option<View>, CampaignError> {
        let now = self.clock.now();
        self.read(id, |c| c.view(now)).await
    }

    /// Every row: outcome, attempts, sessions, digits, variables.
    pub async fn export(&self, id: &str) -> Result<Option<Vec<ExportRow>>, CampaignError> {
        self.read(id, Campaign::export).await
    }

    /// Pauses, resumes or cancels a campaign; `false` if there is none. The control is
    /// stored (the holder applies it, wherever it runs); a resumed campaign no one holds is
    /// taken here.
    pub async fn control(self: &Arc<Self>, id: &str, action: Control) -> Result<bool, StoreError> {
        if self.store.set_control(id, action.label()).await?.is_none() {
            return Ok(false);
        }
        match self.handle(id) {
            Some(handle) => {
                lock(&handle.campaign).control(action);
                handle.wake.notify_one();
            }
            None if action != Control::Pause => self.take(id).await,
            None => {}
        }
        Ok(true)
    }

    /// A session summary of a campaign call: finishes the row's attempt, here if this replica
    /// holds the campaign, or through the store's inbox. `false` if there is no such campaign.
    pub async fn on_summary(&self, ticket: &str, status: &str, ended: Option<Ended>) -> bool {
        let report = Report {
            attempted: Attempted::Ended {
                status: status.to_owned(),
            },
            ended,
        };
        self.report(ticket, report).await
    }

    async fn report(&self, ticket: &str, report: Report) -> bool {
        let Some((id, row, attempt)) = parse_ticket(ticket) else {
            return false;
        };
        if let Some(handle) = self.handle(id) {
            let applied = {
                let mut campaign = lock(&handle.campaign);
                campaign.finish(row, attempt, report.clone(), self.clock.now())
            };
            handle.wake.notify_one();
            // Durable before the webhook is answered: the platform does not send it again.
            if !applied || self.write(id, &handle).await {
                return true;
            }
        }
        let text = match serde_json::to_string(&report) {
            Ok(text) => text,
            Err(err) => {
                tracing::error!(ticket, error = %err, "campaign report cannot be serialized");
                return false;
            }
        };
        match self.store.report(id, ticket, &text).await {
            Ok(found) => found,
            Err(err) => {
                tracing::error!(ticket, error = %err, "campaign outcome lost: the store failed");
                false
            }
        }
    }

    /// Makes `handle`'s changes durable under the lease; on failure the campaign stops here.
    async fn write(&self, id: &str, handle: &Handle) -> bool {
        let _in_order = handle.writing.lock().await;
        if handle.is_stopped() {
            return false;
        }
        let write = lock(&handle.campaign).take_write();
        let result = match write {
            Ok(write) => self
                .store
                .write(id, &self.token, &write)
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err),
        };
        match result {
            Ok(true) => true,
            Ok(false) => {
                self.stop(id, handle, "its lease is held by another replica now");
                false
            }
            Err(err) => {
                self.stop(id, handle, &err);
                false
            }
        }
    }

    /// Stops dialling `id` here at once (its state in memory is dropped: the store has it).
    fn stop(&self, id: &str, handle: &Handle, why: &str) {
        if !handle.stopped.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                campaign = id,
                why,
                "campaign no longer dialled by this replica"
            );
        }
        handle.wake.notify_one();
        let mut held = lock(&self.held);
        if held
            .get(id)
            .is_some_and(|h| std::ptr::eq(Arc::as_ptr(h), handle))
        {
            held.remove(id);
        }
        drop(held);
        self.publish_leases();
    }

    /// Gives every lease held here up (at shutdown): the calls in progress go on, and their
    /// outcomes reach the store's inbox; another replica, or this one restarted, continues.
    pub async fn release_all(&self) {
        let held: Vec<(String, Arc<Handle>)> = lock(&self.held).drain().collect();
        for (id, handle) in held {
            handle.stopped.store(true, Ordering::Release);
            handle.wake.notify_one();
            let _in_order = handle.writing.lock().await;
            if let Err(err) = self.store.release(&id, &self.token).await {
                tracing::warn!(campaign = %id, error = %err, "campaign lease not released; it lapses by itself");
            }
        }
        self.publish_leases();
    }

    /// Takes the lease of `id` if no one holds it, and continues the campaign here.
    async fn take(self: &Arc<Self>, id: &str) {
        if self.handle(id).is_some() {
            return;
        }
        match self
            .store
            .acquire(id, &self.token, self.settings.lease)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                tracing::warn!(campaign = id, error = %err, "cannot take the campaign's lease");
                return;
            }
        }
        let stored = match self.store.load(id).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(campaign = id, error = %err, "cannot load the campaign");
                let _ = self.store.release(id, &self.token).await;
                return;
            }
        };
        match Campaign::restore(id, stored, self.clock.now(), true) {
            Ok(campaign) => {
                tracing::info!(
                    campaign = id,
                    dialling = campaign.schedule.dialling(),
                    "campaign continued on this replica"
                );
                metrics::counter!(catalogue::CAMPAIGN_TAKEOVERS).increment(1);
                self.hold(campaign, true);
            }
            Err(err) => {
                tracing::error!(campaign = id, error = %err, "campaign cannot be continued");
                let _ = self.store.release(id, &self.token).await;
            }
        }
    }

    /// Every `poll`, takes the campaigns that no replica holds and that have something to do.
    /// Runs until the process ends.
    pub async fn watch(self: Arc<Self>) {
        let mut every = tokio::time::interval(self.settings.poll);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let ids = match self.store.active().await {
                Ok(ids) => ids,
                Err(err) => {
                    tracing::debug!(error = %err, "campaigns not watched this time");
                    continue;
                }
            };
            for id in ids {
                if self.handle(&id).is_some() {
                    continue;
                }
                let Ok(Some(peek)) = self.store.peek(&id).await else {
                    continue;
                };
                let meta: Meta = peek
                    .meta
                    .as_deref()
                    .and_then(|m| serde_json::from_str(m).ok())
                    .unwrap_or_default();
                let paused = peek.control.as_deref() == Some(Control::Pause.label())
                    && meta.state != Some(State::Running);
                let idle = meta.dialling == 0 && !peek.reports;
                if peek.leased || meta.finished || (paused && idle) {
                    continue;
                }
                self.take(&id).await;
            }
        }
    }

    /// The task of a campaign held here: dial what is due, sleep until the next wake-up, an
    /// outcome or the next poll of the store; stop when the lease is lost.
    async fn run(self: Arc<Self>, handle: Arc<Handle>, again: bool) {
        let id = lock(&handle.campaign).id.clone();
        let renew_every = self.settings.lease / 3;
        let mut renewed = Instant::now();
        let mut polled = Instant::now();
        if again {
            // Rows that were dialling when their replica stopped: their request may or may
            // not have reached the platform. The same ticket again is one call either way.
            let dialling: Vec<usize> = {
                let campaign = lock(&handle.campaign);
                (0..campaign.rows.len())
                    .filter(|&i| campaign.schedule.entries()[i].status == Status::Dialling)
                    .collect()
            };
            if !self.write(&id, &handle).await {
                return;
            }
            for row in dialling {
                let (ticket, request) = lock(&handle.campaign).request(row);
                tokio::spawn(Arc::clone(&self).dial(
                    Arc::clone(&handle),
                    row,
                    ticket,
                    request,
                    true,
                ));
            }
        }
        loop {
            if handle.is_stopped() {
                return;
            }
            if renewed.elapsed() >= renew_every {
                match self
                    .store
                    .acquire(&id, &self.token, self.settings.lease)
                    .await
                {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => {
                        return self.stop(&id, &handle, "its lease was taken by another replica");
                    }
                    Err(err) => return self.stop(&id, &handle, &err.to_string()),
                }
            }
            if polled.elapsed() >= self.settings.poll {
                polled = Instant::now();
                match self.store.inbox(&id).await {
                    Ok((control, reports)) => {
                        let now = self.clock.now();
                        let mut campaign = lock(&handle.campaign);
                        if let Some(control) = control.as_deref().and_then(Control::parse) {
                            campaign.control(control);
                        }
                        for (ticket, text) in &reports {
                            campaign.apply_report(ticket, text, now);
                        }
                    }
                    Err(err) => return self.stop(&id, &handle, &err.to_string()),
                }
            }
            let now = self.clock.now();
            let (due, wake, deadline, finished, idle) = {
                let mut campaign = lock(&handle.campaign);
                for row in campaign.schedule.expire(now) {
                    metrics::counter!(catalogue::CAMPAIGN_TIMEOUTS).increment(1);
                    count_done(&campaign.schedule, row);
                    campaign.dirty.insert(row);
                }
                let mut due = Vec::new();
                while let Some(row) = campaign.schedule.due(now) {
                    campaign.dirty.insert(row);
                    due.push((row, campaign.request(row)));
                    metrics::counter!(catalogue::CAMPAIGN_ATTEMPTS).increment(1);
                }
                (
                    due,
                    campaign.schedule.wake_at(now),
                    campaign.schedule.next_deadline(),
                    campaign.schedule.is_finished(),
                    campaign.schedule.state() != State::Running
                        && campaign.schedule.dialling() == 0,
                )
            };
            // Durably dialling before the request goes out.
            if !self.write(&id, &handle).await {
                return;
            }
            for (row, (ticket, request)) in due {
                tokio::spawn(Arc::clone(&self).dial(
                    Arc::clone(&handle),
                    row,
                    ticket,
                    request,
                    false,
                ));
            }
            if finished || idle {
                let _in_order = handle.writing.lock().await;
                self.stop(&id, &handle, if finished { "finished" } else { "paused" });
                if let Err(err) = self.store.release(&id, &self.token).await {
                    tracing::debug!(campaign = %id, error = %err, "lease not released; it lapses");
                }
                return;
            }
            let until =
                |at: DateTime<Utc>| (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
            let store_due = (self.settings.poll.saturating_sub(polled.elapsed()))
                .min(renew_every.saturating_sub(renewed.elapsed()));
            let wait = [wake.map(until), deadline.map(until), Some(store_due)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(store_due);
            tokio::select! {
                () = handle.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Places one attempt and records its session, or its refusal; a created call then waits
    /// for its summary. `again`: the attempt may have been registered before.
    async fn dial(
        self: Arc<Self>,
        handle: Arc<Handle>,
        row: usize,
        ticket: String,
        request: CallRequest,
        again: bool,
    ) {
        let result = self
            .dialer
            .call_with_ticket(&self.runtime, request, &ticket, again)
            .await;
        let attempted = match result {
            Ok(placed) => {
                let mut campaign = lock(&handle.campaign);
                if let Some(result) = campaign.results.get_mut(row)
                    && !result.sessions.contains(&placed.session_id)
                {
                    result.sessions.push(placed.session_id);
                    campaign.dirty.insert(row);
                }
                return;
            }
            Err(CallError::Api(api)) => attempted(&api),
            Err(CallError::Register(message)) => Attempted::Transient {
                message: format!("the session could not be registered: {message}"),
            },
            Err(other) => Attempted::Rejected {
                http: 400,
                code: 0,
                message: other.to_string(),
            },
        };
        let report = Report {
            attempted,
            ended: None,
        };
        if self.report(&ticket, report).await {
            handle.wake.notify_one();
        }
    }
}

/// Where a campaign call ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

impl Control {
    /// As stored: `paused`, `running`, `canceled`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Pause => "paused",
            Self::Resume => "running",
            Self::Cancel => "canceled",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "paused" => Some(Self::Pause),
            "running" => Some(Self::Resume),
            "canceled" => Some(Self::Cancel),
            _ => None,
        }
    }
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

    #[test]
    fn controls_round_trip_through_their_stored_labels() {
        for control in [Control::Pause, Control::Resume, Control::Cancel] {
            assert_eq!(Control::parse(control.label()), Some(control));
        }
    }
}
