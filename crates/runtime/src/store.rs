//! Where session state lives beyond an actor: the [`SessionStore`] trait and the in-memory
//! store, the embedded default.
//!
//! The trait is shaped for optimistic concurrency (see `docs/architecture.md`): every write is a
//! compare-and-set on the record's version, made together with the de-duplication record of the
//! event that caused it, so a store backed by a server (Redis) needs one round trip per webhook
//! and a replica with a warm actor never reads before writing.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use switchboard_flow::SessionState;

/// A boxed future, so the trait can be used as `Arc<dyn SessionStore>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most event ids remembered per session for de-duplication.
pub const EVENTS_KEPT: usize = 16;

/// A session as stored: its state, the version of that state, and the answers to its latest
/// events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The state.
    pub state: SessionState,
    /// Increases by one with every committed write; the compare-and-set key.
    pub version: u64,
    /// `(eventId, answer)` of the latest events, oldest first, at most [`EVENTS_KEPT`].
    #[serde(with = "answers")]
    pub events: VecDeque<(String, Bytes)>,
}

impl Record {
    /// A first record for a new session.
    pub fn new(state: SessionState) -> Self {
        Self {
            state,
            version: 0,
            events: VecDeque::new(),
        }
    }

    /// The answer given to `event_id`, if remembered.
    pub fn answer_for(&self, event_id: &str) -> Option<&Bytes> {
        if event_id.is_empty() {
            return None;
        }
        self.events
            .iter()
            .rev()
            .find(|(id, _)| id == event_id)
            .map(|(_, answer)| answer)
    }

    /// Remembers the answer to `event_id`.
    pub fn remember(&mut self, event_id: &str, answer: Bytes) {
        if event_id.is_empty() {
            return;
        }
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back((event_id.to_owned(), answer));
    }
}

/// The result of a compare-and-set.
#[derive(Debug, Clone, PartialEq)]
pub enum Commit {
    /// Written.
    Written,
    /// The stored version was not the expected one, or the stored record already answered the
    /// event: this is what is stored now (`None`: the session is gone).
    Conflict(Option<Box<Record>>),
    /// The store is unreachable; the write was queued and will be made durable when it returns
    /// (write-behind). The caller keeps serving from the record it holds.
    Deferred,
}

/// A store failure (the store is unreachable, or answered something we cannot read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session store: {0}")]
pub struct StoreError(pub String);

/// Durable session state shared by the replicas of a deployment.
pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// The stored record of a session.
    fn load<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;

    /// Writes `record` if the stored version is `expected` (`None`: nothing is stored) and the
    /// stored record has not already answered `event_id` (empty: no event to check). The
    /// record's own version must be greater than `expected`.
    ///
    /// A store may re-create a record that vanished while `expected` is `Some` (expired,
    /// evicted, lost in a restart) rather than report it gone: the caller holds the latest
    /// state, and nothing newer is overwritten.
    fn commit<'a>(
        &'a self,
        session: &'a str,
        expected: Option<u64>,
        record: &'a Record,
        event_id: &'a str,
    ) -> BoxFuture<'a, Result<Commit, StoreError>>;

    /// The session is over: delete its record (or shorten its life).
    fn end<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Whether the store answers.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Whether the store gave up on a queued write of `session` since it was last asked (the
    /// question clears the answer). The caller's copy of the record then holds state that never
    /// became durable, possibly with the same version as a rival's stored state: it must read
    /// the record again rather than write over it. Stores without a write queue never do.
    fn take_stale(&self, _session: &str) -> bool {
        false
    }

    /// Makes queued writes durable (at shutdown); returns how many are still queued. Stores
    /// without a write-behind queue have nothing to do.
    fn flush(&self) -> BoxFuture<'_, usize> {
        Box::pin(std::future::ready(0))
    }

    /// A name for logs and metrics: `memory`, `redis`.
    fn kind(&self) -> &'static str;
}

/// The in-memory store: state survives actor passivation but not the process.
#[derive(Debug)]
pub struct MemoryStore {
    records: DashMap<String, (Record, Instant)>,
    ttl: Duration,
}

impl MemoryStore {
    /// A store whose records expire `ttl` after their last write.
    pub fn new(ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            records: DashMap::new(),
            ttl,
        })
    }

    /// Drops expired records; returns how many. The runtime calls this periodically.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let before = self.records.len();
        self.records
            .retain(|_, (_, written)| now.duration_since(*written) < self.ttl);
        before - self.records.len()
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl SessionStore for MemoryStore {
    fn load<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        let found = self
            .records
            .get(session)
            .filter(|entry| entry.1.elapsed() < self.ttl)
            .map(|entry| entry.0.clone());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn commit<'a>(
        &'a self,
        session: &'a str,
        expected: Option<u64>,
        record: &'a Record,
        event_id: &'a str,
    ) -> BoxFuture<'a, Result<Commit, StoreError>> {
        use dashmap::mapref::entry::Entry;
        let result = match self.records.entry(session.to_owned()) {
            Entry::Occupied(stored) if stored.get().0.answer_for(event_id).is_some() => {
                Commit::Conflict(Some(Box::new(stored.get().0.clone())))
            }
            Entry::Occupied(mut stored) if Some(stored.get().0.version) == expected => {
                stored.insert((record.clone(), Instant::now()));
                Commit::Written
            }
            Entry::Occupied(stored) => Commit::Conflict(Some(Box::new(stored.get().0.clone()))),
            Entry::Vacant(slot) if expected.is_none() => {
                slot.insert((record.clone(), Instant::now()));
                Commit::Written
            }
            Entry::Vacant(_) => Commit::Conflict(None),
        };
        Box::pin(std::future::ready(Ok(result)))
    }

    fn end<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.records.remove(session);
        Box::pin(std::future::ready(Ok(())))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// Answers are JSON text; store them as strings so a stored record reads as plain JSON.
mod answers {
    use std::collections::VecDeque;

    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(
        events: &VecDeque<(String, Bytes)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let as_text: Vec<(&str, &str)> = events
            .iter()
            .map(|(id, answer)| (id.as_str(), std::str::from_utf8(answer).unwrap_or("")))
            .collect();
        as_text.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<VecDeque<(String, Bytes)>, D::Error> {
        let as_text: Vec<(String, String)> = Vec::deserialize(d)?;
        Ok(as_text
            .into_iter()
            .map(|(id, answer)| (id, Bytes::from(answer)))
            .collect())
    }
}
