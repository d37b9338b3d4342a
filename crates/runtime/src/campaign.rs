//! Where campaign state lives so that any replica can continue a campaign: the
//! [`CampaignStore`] trait and [`MemoryCampaigns`], the embedded default (the Redis store
//! implements it too, in `redis/campaign.rs`).
//!
//! A campaign is stored as opaque text the server writes and reads (JSON): its
//! **definition** (flow, list, policy), written once; one **row** record per list row (where
//! it is, attempts, outcome); a small **meta** record (state, next dial slot, whether it is
//! finished); the operator's **control** (`running`, `paused`, `canceled`); and an inbox of
//! **reports**, the outcomes of its calls as the replica that got each session summary
//! recorded it, keyed by the attempt's ticket.
//!
//! Only the replica holding the campaign's **lease** dials. The lease is a token with a time
//! to live ([`CampaignStore::acquire`] takes it or renews it); every write of rows and meta
//! ([`CampaignStore::write`]) is fenced by it: it is made only while the writer's token is
//! the one stored, in the same atomic step. So a replica that lost the lease (it stalled, or
//! another took over after it expired) cannot mark a row dialling, and dials no one: it marks
//! a row dialling durably *before* it sends the API request.
//!
//! Anyone may add a report or set the control; the lease holder reads both, applies them, and
//! deletes the reports it applied in the same fenced write.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::{BoxFuture, StoreError};

/// Every stored part of a campaign, as [`CampaignStore::load`] reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredCampaign {
    /// The definition, as created.
    pub definition: String,
    /// The meta record, once the lease holder wrote one.
    pub meta: Option<String>,
    /// The operator's control, if one was given.
    pub control: Option<String>,
    /// Row records by row index (rows never written are absent: not dialled yet).
    pub rows: BTreeMap<usize, String>,
    /// Reports not applied yet, by ticket.
    pub reports: BTreeMap<String, String>,
}

/// What a replica looks at to decide whether to take a campaign's lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peek {
    /// The meta record.
    pub meta: Option<String>,
    /// The operator's control.
    pub control: Option<String>,
    /// Whether some replica holds the lease.
    pub leased: bool,
    /// Whether reports wait to be applied.
    pub reports: bool,
}

/// One fenced write of the lease holder.
#[derive(Debug, Clone, Default)]
pub struct CampaignWrite {
    /// Row records to write, by row index.
    pub rows: Vec<(usize, String)>,
    /// The meta record.
    pub meta: String,
    /// Tickets of the reports applied (deleted from the inbox).
    pub applied: Vec<String>,
    /// The campaign is finished: it leaves the set of active campaigns.
    pub finished: bool,
}

/// Campaign state shared by the replicas of a deployment.
pub trait CampaignStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a new campaign's definition, its lease held by `token` for `ttl`, and lists it
    /// as active (in that order: no other replica sees it without a holder); `false` if the
    /// id is taken.
    fn create<'a>(
        &'a self,
        id: &'a str,
        definition: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// The ids of the campaigns not finished.
    fn active(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>>;

    /// Everything stored of a campaign; `None` if there is none.
    fn load<'a>(&'a self, id: &'a str)
    -> BoxFuture<'a, Result<Option<StoredCampaign>, StoreError>>;

    /// Meta, control, lease and inbox at a glance; `None` if there is no such campaign.
    fn peek<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Peek>, StoreError>>;

    /// Takes the lease for `ttl` if no one holds it, or renews it if `token` does; `false`
    /// if another token holds it (or there is no such campaign).
    fn acquire<'a>(
        &'a self,
        id: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Gives the lease up, if `token` holds it.
    fn release<'a>(&'a self, id: &'a str, token: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Writes rows and meta and deletes applied reports, all at once and only if `token`
    /// holds the lease; `false` (nothing written) if it does not.
    fn write<'a>(
        &'a self,
        id: &'a str,
        token: &'a str,
        write: &'a CampaignWrite,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Sets the operator's control; a `canceled` campaign stays canceled. Returns the control
    /// in force, or `None` if there is no such campaign.
    fn set_control<'a>(
        &'a self,
        id: &'a str,
        control: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;

    /// Adds a call's outcome to the inbox (a repeated ticket keeps the first); `false` if
    /// there is no such campaign.
    fn report<'a>(
        &'a self,
        id: &'a str,
        ticket: &'a str,
        report: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// The control and the reports waiting, for the lease holder's poll.
    fn inbox<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Inbox, StoreError>>;
}

/// What waits for a campaign's lease holder: the operator's control (pause, resume,
/// cancel), if any, and the call outcomes reported by ticket.
pub type Inbox = (Option<String>, BTreeMap<String, String>);

/// A campaign held in memory.
#[derive(Debug, Default)]
struct Held {
    stored: StoredCampaign,
    lease: Option<(String, Instant)>,
}

impl Held {
    fn holder(&self) -> Option<&str> {
        self.lease
            .as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(token, _)| token.as_str())
    }
}

/// Campaigns in this process's memory: one replica, and gone with it (the default store).
#[derive(Debug, Default)]
pub struct MemoryCampaigns {
    // std Mutex: held to read or update one campaign, never across an await.
    campaigns: Mutex<HashMap<String, Held>>,
    active: Mutex<BTreeSet<String>>,
}

impl MemoryCampaigns {
    /// No campaigns.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Held) -> T) -> Option<T> {
        let mut campaigns = self
            .campaigns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        campaigns.get_mut(id).map(f)
    }

    fn active_set(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, Result<T, StoreError>> {
    Box::pin(std::future::ready(Ok(value)))
}

impl CampaignStore for MemoryCampaigns {
    fn create<'a>(
        &'a self,
        id: &'a str,
        definition: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let created = {
            let mut campaigns = self
                .campaigns
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match campaigns.entry(id.to_owned()) {
                std::collections::hash_map::Entry::Occupied(_) => false,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Held {
                        stored: StoredCampaign {
                            definition: definition.to_owned(),
                            ..StoredCampaign::default()
                        },
                        lease: Some((token.to_owned(), Instant::now() + ttl)),
                    });
                    true
                }
            }
        };
        if created {
            self.active_set().insert(id.to_owned());
        }
        ready(created)
    }

    fn active(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        ready(self.active_set().iter().cloned().collect())
    }

    fn load<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredCampaign>, StoreError>> {
        ready(self.with(id, |held| held.stored.clone()))
    }

    fn peek<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Peek>, StoreError>> {
        ready(self.with(id, |held| Peek {
            meta: held.stored.meta.clone(),
            control: held.stored.control.clone(),
            leased: held.holder().is_some(),
            reports: !held.stored.reports.is_empty(),
        }))
    }

    fn acquire<'a>(
        &'a self,
        id: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        ready(
            self.with(id, |held| match held.holder() {
                Some(other) if other != token => false,
                _ => {
                    held.lease = Some((token.to_owned(), Instant::now() + ttl));
                    true
                }
            })
            .unwrap_or(false),
        )
    }

    fn release<'a>(&'a self, id: &'a str, token: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.with(id, |held| {
            if held.holder() == Some(token) {
                held.lease = None;
            }
        });
        ready(())
    }

    fn write<'a>(
        &'a self,
        id: &'a str,
        token: &'a str,
        write: &'a CampaignWrite,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let written = self
            .with(id, |held| {
                if held.holder() != Some(token) {
                    return false;
                }
                for (row, record) in &write.rows {
                    held.stored.rows.insert(*row, record.clone());
                }
                held.stored.meta = Some(write.meta.clone());
                for ticket in &write.applied {
                    held.stored.reports.remove(ticket);
                }
                true
            })
            .unwrap_or(false);
        if written && write.finished {
            self.active_set().remove(id);
        }
        ready(written)
    }

    fn set_control<'a>(
        &'a self,
        id: &'a str,
        control: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        ready(self.with(id, |held| {
            if held.stored.control.as_deref() != Some("canceled") {
                held.stored.control = Some(control.to_owned());
            }
            held.stored.control.clone().unwrap_or_default()
        }))
    }

    fn report<'a>(
        &'a self,
        id: &'a str,
        ticket: &'a str,
        report: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        ready(
            self.with(id, |held| {
                held.stored
                    .reports
                    .entry(ticket.to_owned())
                    .or_insert_with(|| report.to_owned());
            })
            .is_some(),
        )
    }

    fn inbox<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Inbox, StoreError>> {
        ready(
            self.with(id, |held| {
                (held.stored.control.clone(), held.stored.reports.clone())
            })
            .unwrap_or_default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(future: BoxFuture<'_, T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn only_the_lease_holder_writes_and_a_lapsed_lease_can_be_taken() {
        let store = MemoryCampaigns::new();
        let ttl = Duration::from_millis(50);
        assert!(block(store.create("c1", "{}", "a", ttl)).unwrap());
        assert!(
            !block(store.create("c1", "{}", "b", ttl)).unwrap(),
            "ids are unique"
        );
        assert!(block(store.acquire("c1", "a", ttl)).unwrap());
        assert!(!block(store.acquire("c1", "b", ttl)).unwrap());
        let write = CampaignWrite {
            rows: vec![(0, "dialling".to_owned())],
            meta: "m".to_owned(),
            ..CampaignWrite::default()
        };
        assert!(
            !block(store.write("c1", "b", &write)).unwrap(),
            "b holds nothing"
        );
        assert!(block(store.write("c1", "a", &write)).unwrap());
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            block(store.acquire("c1", "b", ttl)).unwrap(),
            "a's lease lapsed"
        );
        assert!(
            !block(store.write("c1", "a", &write)).unwrap(),
            "a was fenced off"
        );
        let stored = block(store.load("c1")).unwrap().unwrap();
        assert_eq!(stored.rows[&0], "dialling");
    }

    #[test]
    fn reports_wait_for_the_holder_and_cancel_is_final() {
        let store = MemoryCampaigns::new();
        assert!(!block(store.report("nope", "t", "r")).unwrap());
        block(store.create("c1", "{}", "a", Duration::from_secs(5))).unwrap();
        assert!(block(store.report("c1", "t1", "first")).unwrap());
        assert!(block(store.report("c1", "t1", "again")).unwrap());
        assert_eq!(
            block(store.set_control("c1", "canceled"))
                .unwrap()
                .as_deref(),
            Some("canceled")
        );
        assert_eq!(
            block(store.set_control("c1", "running"))
                .unwrap()
                .as_deref(),
            Some("canceled")
        );
        let (control, reports) = block(store.inbox("c1")).unwrap();
        assert_eq!(control.as_deref(), Some("canceled"));
        assert_eq!(reports["t1"], "first");
        block(store.acquire("c1", "a", Duration::from_secs(5))).unwrap();
        let write = CampaignWrite {
            meta: "m".to_owned(),
            applied: vec!["t1".to_owned()],
            finished: true,
            ..CampaignWrite::default()
        };
        assert!(block(store.write("c1", "a", &write)).unwrap());
        assert!(block(store.inbox("c1")).unwrap().1.is_empty());
        assert!(block(store.active()).unwrap().is_empty());
    }
}
