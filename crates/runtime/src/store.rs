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

/// A session as stored: its state, the version of that state, and the ids of its latest
/// events.
///
/// The answer to a remembered event is the session's last answer, [`Record::last_answer`]:
/// a repeated event comes from the platform retrying the latest webhook (it waits for an answer
/// before it moves on), and an older one carries an older `clientActionId`, which a stale
/// event gets too. So one answer is kept, in the state, instead of one per event: records used
/// to hold up to 16 copies of answer text (1.5 KB after one webhook, ~10 KB for a long call).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The state.
    pub state: SessionState,
    /// Increases by one with every committed write; the compare-and-set key.
    pub version: u64,
    /// The `eventId`s of the latest events, oldest first, at most [`EVENTS_KEPT`]. Records
    /// stored by earlier versions as `(eventId, answer)` pairs are read too.
    #[serde(with = "event_ids")]
    pub events: VecDeque<String>,
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

    /// Whether `event_id` was answered.
    pub fn has_answered(&self, event_id: &str) -> bool {
        !event_id.is_empty() && self.events.iter().rev().any(|id| id == event_id)
    }

    /// The answer given to `event_id`, if remembered: the session's last answer.
    pub fn answer_for(&self, event_id: &str) -> Option<Bytes> {
        self.has_answered(event_id).then(|| self.last_answer())
    }

    /// The session's last answer, byte for byte as it was sent (the callflow serializes
    /// deterministically); a bare `hangup` for a session that has not answered yet.
    pub fn last_answer(&self) -> Bytes {
        match &self.state.last_reply {
            Some(callflow) => Bytes::from(callflow.to_json()),
            None => Bytes::from_static(br#"{"callflow":[{"action":"hangup"}]}"#),
        }
    }

    /// Remembers that `event_id` was answered (with the state's last answer).
    pub fn remember(&mut self, event_id: &str) {
        if event_id.is_empty() {
            return;
        }
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        switchboard_flow::state::grow_small(&mut self.events);
        self.events.push_back(event_id.to_owned());
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

/// A store failure, by kind. Each variant says what the store was asked (`context`: the
/// operation, the session and the store's address, never a password) and keeps the client's
/// error as its [`source`](std::error::Error::source). The HTTP layer answers each kind with
/// its own 503 code and logs the message; the message itself is never sent to a client.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer within its command timeout.
    #[error("session store: {context}: no answer within {after:?}")]
    Timeout {
        /// What was asked of whom.
        context: String,
        /// The timeout.
        after: Duration,
    },
    /// The connection failed, was refused or dropped.
    #[error("session store: {context}: the connection failed: {source}")]
    Connection {
        /// What was asked of whom.
        context: String,
        /// The client's error.
        source: Cause,
    },
    /// The store answered that it cannot serve now: loading its data, a read-only replica after
    /// a failover, a cluster down or resharding.
    #[error("session store: {context}: the store cannot serve now: {source}")]
    Busy {
        /// What was asked of whom.
        context: String,
        /// The client's error.
        source: Cause,
    },
    /// The store refused the command, or answered something the protocol does not allow.
    #[error("session store: {context}: {source}")]
    Protocol {
        /// What was asked of whom.
        context: String,
        /// The client's error.
        source: Cause,
    },
    /// A stored record could not be decoded.
    #[error("session store: {context}: {detail}")]
    Codec {
        /// Which record.
        context: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The store has been unreachable so long that the writes queued for it reached their
    /// limit; this write was refused.
    #[error("session store: {context}")]
    Backlog {
        /// Why, with the limit.
        context: String,
    },
}

/// The kind of a [`StoreError`]: its HTTP code (`store_<label>`) and metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// [`StoreError::Timeout`].
    Timeout,
    /// [`StoreError::Connection`].
    Connection,
    /// [`StoreError::Busy`].
    Busy,
    /// [`StoreError::Protocol`].
    Protocol,
    /// [`StoreError::Codec`].
    Codec,
    /// [`StoreError::Backlog`].
    Backlog,
}

impl StoreErrorKind {
    /// Every kind, for metrics registered at zero.
    pub const ALL: [Self; 6] = [
        Self::Timeout,
        Self::Connection,
        Self::Busy,
        Self::Protocol,
        Self::Codec,
        Self::Backlog,
    ];

    /// The label: `timeout`, `connection`, `busy`, `protocol`, `codec` or `backlog`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Busy => "busy",
            Self::Protocol => "protocol",
            Self::Codec => "codec",
            Self::Backlog => "backlog",
        }
    }
}

impl StoreError {
    /// The kind.
    pub const fn kind(&self) -> StoreErrorKind {
        match self {
            Self::Timeout { .. } => StoreErrorKind::Timeout,
            Self::Connection { .. } => StoreErrorKind::Connection,
            Self::Busy { .. } => StoreErrorKind::Busy,
            Self::Protocol { .. } => StoreErrorKind::Protocol,
            Self::Codec { .. } => StoreErrorKind::Codec,
            Self::Backlog { .. } => StoreErrorKind::Backlog,
        }
    }
}

/// Two errors are equal when they are of one kind and say the same (the sources are compared
/// by their messages).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.to_string() == other.to_string()
    }
}

impl Eq for StoreError {}

/// The store client's error behind a [`StoreError`], shared so the error stays cloneable.
#[derive(Debug, Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    /// Wraps the client's error.
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(err))
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

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
    ///
    /// The record's events are the stored record's plus `event_id` (the runtime remembers the
    /// event it answers on the record it loaded or last committed), so a store may append
    /// `event_id` to the ids it holds rather than write them all (Redis does).
    fn commit<'a>(
        &'a self,
        session: &'a str,
        expected: Option<u64>,
        record: &'a Record,
        event_id: &'a str,
    ) -> BoxFuture<'a, Result<Commit, StoreError>>;

    /// The session is over: delete its record (or shorten its life) and return what was
    /// stored, read in the same round trip (where the call ended, for the summary's metrics).
    fn end<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<Option<Record>, StoreError>>;

    /// [`SessionStore::end`] for a caller that holds the session's record at version `known`
    /// (its live actor): what was stored is returned only when it is newer (another replica
    /// moved the call on), and otherwise `None`, the caller's own copy saying where the call
    /// ended. The default reads the whole record; Redis reads the stored version first and
    /// decodes the record only when it is newer.
    fn end_newer_than<'a>(
        &'a self,
        session: &'a str,
        known: u64,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(async move {
            Ok(self
                .end(session)
                .await?
                .filter(|stored| stored.version > known))
        })
    }

    /// Whether the store answers.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Whether every transition must be committed here before it is answered. A store shared
    /// by replicas (Redis) must be; one that only has to outlive this process's actors need not
    /// be: the actor holds the session's truth while it lives, and hands its record over with
    /// [`SessionStore::keep`] when it passivates. The runtime then skips the write per webhook.
    fn commits_each_transition(&self) -> bool {
        true
    }

    /// Keeps the record of a passivating actor, for a store that does not commit each
    /// transition. Others have it already.
    fn keep(&self, _session: &str, _record: Record) {}

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
///
/// Live sessions are held by their actors alone; a record is put here when its actor
/// passivates (so a live session costs one copy of its state, and a webhook no store write).
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
            Entry::Occupied(stored) if stored.get().0.has_answered(event_id) => {
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

    fn end<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        let removed = self
            .records
            .remove(session)
            .filter(|(_, (_, written))| written.elapsed() < self.ttl)
            .map(|(_, (record, _))| record);
        Box::pin(std::future::ready(Ok(removed)))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn commits_each_transition(&self) -> bool {
        false
    }

    fn keep(&self, session: &str, record: Record) {
        self.records
            .insert(session.to_owned(), (record, Instant::now()));
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// Event ids as a JSON list of strings; earlier versions stored `[eventId, answer]` pairs,
/// whose answers are dropped on reading (a rolling upgrade reads the records the old version
/// wrote).
mod event_ids {
    use std::collections::VecDeque;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(
        ids: &VecDeque<String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        ids.serialize(s)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Id(String),
        Answered(String, serde::de::IgnoredAny),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<VecDeque<String>, D::Error> {
        let stored: Vec<Stored> = Vec::deserialize(d)?;
        Ok(stored
            .into_iter()
            .map(|event| match event {
                Stored::Id(id) | Stored::Answered(id, _) => id,
            })
            .collect())
    }
}
