//! When Redis is lost: marking it down and up again (with the outage's figures), the
//! write-behind queue a write goes to meanwhile, the probe that finds Redis back, and the flush
//! of the queue through the same compare-and-set script. The module documentation of
//! [`super`] ("When Redis is lost") has the rules.

use std::collections::HashMap;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::link::{Failure, Link, with_connection};
use super::queue::{Pending, Queued, is_own};
use super::telemetry::Command;
use super::{FLUSH_BATCH, Ids, RedisStore};
use crate::store::{Commit, Record, StoreError};

/// The times of the last outage.
#[derive(Debug, Default)]
pub(super) struct Outage {
    /// Redis has been unreachable since.
    pub(super) down_since: Option<Instant>,
    /// Redis answered again at; the queue is being flushed.
    pub(super) recovering_since: Option<Instant>,
}

impl RedisStore {
    pub(super) fn queue(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn publish_pending(&self, queue: &HashMap<String, Pending>) {
        self.metrics.pending.set(queue.len() as f64);
    }

    pub(super) fn drop_write(&self, session: &str, why: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.metrics.dropped.increment(1);
        tracing::error!(session, redis = %self.target, "session write dropped: {why}");
    }

    /// Drops a queued write and tells the session's actor to re-read its record.
    pub(super) fn drop_queued(&self, session: &str, why: &str) {
        self.drop_write(session, why);
        let mut stale = self.stale.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded like the queue it comes from.
        if stale.len() < self.max_pending && stale.insert(session.to_owned()) {
            self.stale_count.fetch_add(1, Ordering::Release);
        }
    }

    pub(super) fn take_stale_session(&self, session: &str) -> bool {
        if self.stale_count.load(Ordering::Acquire) == 0 {
            return false;
        }
        let mut stale = self.stale.lock().unwrap_or_else(|e| e.into_inner());
        let taken = stale.remove(session);
        if taken {
            self.stale_count.fetch_sub(1, Ordering::Release);
        }
        taken
    }

    pub(super) fn outage(&self) -> MutexGuard<'_, Outage> {
        self.outage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `waited`: how long the failed command took, the detection time (the command timeout
    /// for a frozen Redis, near zero for a refused connection).
    pub(super) fn mark_down(&self, failure: &Failure, waited: Duration) {
        if !self.down.swap(true, Ordering::AcqRel) {
            self.link.reset();
            self.outage().down_since = Some(Instant::now());
            self.metrics.unreachable.set(1.0);
            self.metrics.detection.record(waited.as_secs_f64());
            tracing::warn!(
                redis = %self.target,
                error = %failure.message,
                detected_after_ms = waited.as_millis() as u64,
                "Redis is unreachable: calls are served from memory (sessions without a live \
                 actor are resumed from their clientActionId) and their writes queued"
            );
            self.wake.notify_one();
        }
    }

    pub(super) fn mark_up(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            let down_for = {
                let mut outage = self.outage();
                outage.recovering_since = Some(Instant::now());
                outage.down_since.take().map(|since| since.elapsed())
            }
            .unwrap_or_default();
            self.metrics.unreachable.set(0.0);
            self.metrics.outage.record(down_for.as_secs_f64());
            tracing::info!(
                redis = %self.target,
                pending = self.pending_writes(),
                down_for_ms = down_for.as_millis() as u64,
                "Redis is reachable again; flushing queued writes"
            );
            self.wake.notify_one();
        }
    }

    /// Redis answers and the queue is empty: the end of a recovery, if one was under way.
    pub(super) fn recovered(&self) {
        let Some(since) = self.outage().recovering_since.take() else {
            return;
        };
        let took = since.elapsed();
        self.metrics.recovery.record(took.as_secs_f64());
        tracing::info!(
            redis = %self.target,
            flushed_in_ms = took.as_millis() as u64,
            dropped_total = self.writes_dropped(),
            "every write queued while Redis was unreachable is settled; healthy"
        );
    }

    /// Queues `record` over the durable version `base`; fails when the queue is full.
    /// `attempted`: the write was sent and may yet be applied (a timeout, a dropped connection).
    pub(super) fn defer(
        &self,
        queue: &mut HashMap<String, Pending>,
        session: &str,
        base: Option<u64>,
        record: &Record,
        attempted: bool,
    ) -> Result<Commit, StoreError> {
        if let Some(pending) = queue.get_mut(session) {
            pending.replace(record);
            if attempted {
                pending.attempted(record);
            }
            return Ok(Commit::Deferred);
        }
        if queue.len() >= self.max_pending {
            let why = format!(
                "Redis at {} is unreachable and {} sessions already have writes queued (the \
                 limit, max_pending); the webhook is refused so the platform retries it",
                self.target,
                queue.len()
            );
            self.drop_write(session, &why);
            return Err(StoreError::Backlog { context: why });
        }
        let mut pending = Pending::new(Queued::Write {
            base,
            record: Box::new(record.clone()),
        });
        if attempted {
            pending.attempted(record);
        }
        queue.insert(session.to_owned(), pending);
        self.publish_pending(queue);
        Ok(Commit::Deferred)
    }

    pub(super) async fn probe(&self) -> Result<(), StoreError> {
        // While Redis is down, each probe gets a new connection: a connection manager whose
        // reconnect failed answers the next command with that old failure and only then
        // reconnects, in the background, so reusing it would see Redis back one probe late
        // (up to 2 s more) after a refused or closed connection.
        if !self.is_reachable() {
            self.link.reset();
            // A failover may be what made Redis unreachable: ask the sentinels which node is
            // the master now (the old one may answer PING as a replica).
            if let Link::Sentinel(sentinel) = &self.link
                && let Err(err) = sentinel.resolve(true).await
            {
                let failure = Failure::from(&err);
                self.metrics.error(failure.kind).increment(1);
                return Err(failure.into_store_error(
                    format!(
                        "the sentinels of {} name no reachable master {:?} (is a failover \
                         under way, or are the sentinels unreachable?)",
                        self.target,
                        sentinel.master_name()
                    ),
                    self.timeout,
                ));
            }
        }
        // A Sentinel group's master is probed with a write that changes nothing (`DEL` of a
        // key never set): a demoted master (`READONLY`) or one short of replicas
        // (`NOREPLICAS`) answers `PING` but refuses it, so the store stays away until the
        // sentinels name a master that takes writes, rather than coming back for one failed
        // command at a time.
        let sentinel = match &self.link {
            Link::Sentinel(sentinel) => Some(sentinel),
            _ => None,
        };
        let command = match sentinel {
            Some(_) => ::redis::cmd("DEL").arg(self.probe_key()).clone(),
            None => ::redis::cmd("PING"),
        };
        match self
            .timed(Command::Ping, async {
                with_connection!(&self.link, con => command.query_async::<::redis::Value>(&mut con).await)
            })
            .await
        {
            Ok(_) => {
                self.mark_up();
                Ok(())
            }
            Err(failure) => {
                let context = match sentinel {
                    Some(sentinel) => format!(
                        "the Redis master {:?} at {} (named by the sentinels of {}) does not take \
                         the probe's write (DEL {}; is it running, reachable, and a master with \
                         its replicas?)",
                        sentinel.master_name(),
                        sentinel.master().unwrap_or_else(|| "an unknown address".to_owned()),
                        self.target,
                        self.probe_key()
                    ),
                    None => format!(
                        "Redis at {} does not answer PING (is it running and reachable?)",
                        self.target
                    ),
                };
                Err(failure.into_store_error(context, self.timeout))
            }
        }
    }

    /// The key a Sentinel master's probe deletes; never written.
    pub(super) fn probe_key(&self) -> String {
        format!("{}:probe", self.prefix)
    }

    /// Drops queued writes older than `max_pending_age`; they can no longer be made durable in
    /// time. Runs whether or not Redis answers.
    pub(super) fn expire(&self) {
        let mut expired = Vec::new();
        {
            let mut queue = self.queue();
            queue.retain(|session, pending| {
                let keep = pending.claimed || pending.since.elapsed() < self.max_pending_age;
                if !keep {
                    expired.push(session.clone());
                }
                keep
            });
            self.publish_pending(&queue);
        }
        for session in expired {
            self.drop_queued(
                &session,
                &format!(
                    "Redis stayed unreachable longer than max_pending_age ({:?})",
                    self.max_pending_age
                ),
            );
        }
    }

    /// One flush round: writes up to a batch of queued entries. `Ok(true)`: entries remain to
    /// flush now; `Err`: Redis went away.
    pub(super) async fn flush_round(&self) -> Result<bool, ()> {
        let batch: Vec<(String, Queued)> = {
            let mut queue = self.queue();
            queue
                .iter_mut()
                .filter(|(_, pending)| !pending.claimed)
                .take(FLUSH_BATCH)
                .map(|(session, pending)| {
                    pending.claimed = true;
                    pending.touched = false;
                    (session.clone(), pending.op.clone())
                })
                .collect()
        };
        let mut more = batch.len() == FLUSH_BATCH;
        let mut batch = batch.into_iter();
        while let Some((session, op)) = batch.next() {
            let outcome = match &op {
                Queued::Write { base, record } => {
                    self.cas(&session, *base, record, "", Ids::Replace).await
                }
                Queued::End => self.delete(&session).await.map(|()| Commit::Written),
            };
            let flushed = match &op {
                Queued::Write { record, .. } => Some(record.version),
                Queued::End => None,
            };
            let mut queue = self.queue();
            let Some(pending) = queue.get_mut(&session) else {
                continue;
            };
            pending.claimed = false;
            if matches!(pending.op, Queued::End) != matches!(op, Queued::End) {
                // The session ended while its write was in flight: the delete comes next.
                continue;
            }
            match outcome {
                Ok(Commit::Conflict(Some(stored))) if is_own(&pending.attempts, &stored) => {
                    // A write of ours that timed out was applied after all.
                    if Some(stored.version) == flushed && !pending.touched {
                        queue.remove(&session);
                    } else {
                        pending.rebase(stored.version);
                        more = true;
                    }
                }
                Ok(Commit::Conflict(Some(stored))) if pending.rebase_if_lost(&stored) => {
                    if let Queued::Write { base, .. } = &op {
                        self.lost(&session, *base, &stored);
                    }
                    more = true;
                }
                Ok(Commit::Conflict(Some(stored))) if pending.rebase_if_further(&stored) => {
                    // Begun here while Redis was away (a new call, or resumed from its
                    // clientActionId) and further along than what another replica stored:
                    // the caller heard this replica's answers, so this state goes over it.
                    tracing::warn!(
                        session,
                        stored = stored.version,
                        "a session begun while Redis was unreachable is further along than the \
                         stored one; writing it over"
                    );
                    more = true;
                }
                Ok(Commit::Conflict(stored)) => {
                    queue.remove(&session);
                    drop(queue);
                    let stored = stored.map_or("none".to_owned(), |r| r.version.to_string());
                    self.drop_queued(
                        &session,
                        &format!(
                            "while Redis was unreachable from here another replica stored a \
                             newer state (version {stored}); that one is kept"
                        ),
                    );
                    queue = self.queue();
                }
                Ok(Commit::Written | Commit::Deferred) => match flushed {
                    // Written again while this write was in flight: keep the newer record,
                    // now over the version just made durable.
                    Some(version) if pending.touched => pending.rebase(version),
                    _ => {
                        queue.remove(&session);
                    }
                },
                Err(failure) if failure.unavailable() => {
                    if let Queued::Write { record, .. } = &op {
                        pending.attempted(record);
                    }
                    // Release the rest of this batch's claims (only those: a commit may hold
                    // others).
                    for (session, _) in batch {
                        if let Some(pending) = queue.get_mut(&session) {
                            pending.claimed = false;
                        }
                    }
                    return Err(());
                }
                Err(failure) => {
                    queue.remove(&session);
                    drop(queue);
                    self.drop_queued(&session, &failure.message);
                    queue = self.queue();
                }
            }
            self.publish_pending(&queue);
        }
        Ok(more)
    }

    pub(super) async fn flush_all(&self) -> usize {
        // The background flusher may hold some entries; wait for it rather than skip them.
        let mut idle_rounds = 0;
        while self.pending_writes() > 0 && idle_rounds < 100 {
            self.expire();
            if !self.is_reachable() && self.probe().await.is_err() {
                break;
            }
            let before = self.pending_writes();
            if self.flush_round().await.is_err() {
                break;
            }
            if self.pending_writes() >= before {
                idle_rounds += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.pending_writes()
    }
}
