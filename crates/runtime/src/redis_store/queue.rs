//! The write-behind queue's entries: the latest write of a session made while Redis was away.

use std::time::Instant;

use crate::store::Record;

/// Whether `stored` is one of this replica's own writes whose fate was unknown.
pub(super) fn is_own(attempts: &[(u64, Option<String>)], stored: &Record) -> bool {
    let last = stored.events.back();
    attempts
        .iter()
        .any(|(version, id)| *version == stored.version && id.as_ref() == last)
}

/// A write waiting for Redis.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) op: Queued,
    /// When the oldest write not yet durable was queued.
    pub(super) since: Instant,
    /// A write of this entry is in flight (by the flusher or by a commit).
    pub(super) claimed: bool,
    /// Replaced while claimed: the in-flight write is not the latest.
    pub(super) touched: bool,
    /// `(version, last eventId)` of writes sent whose fate is unknown (they timed out): a
    /// stored record matching one is this replica's own, not a rival's.
    pub(super) attempts: Vec<(u64, Option<String>)>,
    /// Rebased over a state another replica stored (`rebase_if_further`): the queued record
    /// is numbered after the stored version, not in its actor's numbering.
    pub(super) rebased: bool,
}

impl Pending {
    pub(super) fn new(op: Queued) -> Self {
        Self {
            op,
            since: Instant::now(),
            claimed: false,
            touched: false,
            attempts: Vec::new(),
            rebased: false,
        }
    }

    pub(super) fn attempted(&mut self, record: &Record) {
        const KEPT: usize = 8;
        if self.attempts.len() == KEPT {
            self.attempts.remove(0);
        }
        self.attempts
            .push((record.version, record.events.back().cloned()));
    }

    /// The durable version is now `version`: the queued record builds on it.
    pub(super) fn rebase(&mut self, version: u64) {
        if let Queued::Write { base, record } = &mut self.op {
            *base = Some(version);
            if self.rebased {
                record.version = version + 1;
            }
        }
        self.touched = false;
    }

    /// The conflict rule for a session begun while Redis was away (queued over "nothing
    /// stored": a new call, or one resumed from its `clientActionId`) that meets a state
    /// another replica stored meanwhile: if the queued state is further along (a greater
    /// `seq`, the counter every `clientActionId` carries, which only grows along the caller's
    /// path), it is rebased to go over the stored version, and `true` is returned; otherwise
    /// the stored state wins and the queued write is dropped by the caller.
    pub(super) fn rebase_if_further(&mut self, stored: &Record) -> bool {
        let Queued::Write { base, record } = &mut self.op else {
            return false;
        };
        if base.is_some() || record.state.seq <= stored.state.seq {
            return false;
        }
        *base = Some(stored.version);
        record.version = stored.version + 1;
        self.rebased = true;
        self.touched = false;
        true
    }

    /// The rule for a write over a durable version that Redis no longer holds: Redis answers
    /// with `stored`, older than the version the queued write builds on, so it lost writes it
    /// had acknowledged (a failover to a replica they had not reached yet, a restart from an
    /// older snapshot). Versions only grow and every write is a compare-and-set, so `stored`
    /// is an ancestor of the queued state and nothing was written since the loss (a write
    /// would have stored the lost version or a greater one): the queued write is rebased to go
    /// over it, and `true` is returned.
    pub(super) fn rebase_if_lost(&mut self, stored: &Record) -> bool {
        let Queued::Write {
            base: Some(base), ..
        } = &self.op
        else {
            return false;
        };
        if stored.version >= *base {
            return false;
        }
        self.rebase(stored.version);
        true
    }

    pub(super) fn replace(&mut self, latest: &Record) {
        if let Queued::Write { base, record } = &mut self.op {
            **record = latest.clone();
            if let (true, Some(base)) = (self.rebased, *base) {
                record.version = base + 1;
            }
        }
        self.touched = true;
    }
}

#[derive(Debug, Clone)]
pub(super) enum Queued {
    /// Write `record` over the durable version `base`.
    Write {
        base: Option<u64>,
        record: Box<Record>,
    },
    /// Delete the session (its summary arrived).
    End,
}
