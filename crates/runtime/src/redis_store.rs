//! [`RedisStore`]: session state in Redis (one server, a Redis Cluster, or the master of a
//! Sentinel group), so any replica can serve any webhook. See `docs/architecture.md`, "Session state in Redis", for the protocol.
//!
//! # Layout
//! * One hash per session, `{prefix}:{<sessionId>}:state`, fields `v` (version), `ids` (the
//!   answered eventIds, `|id|id|`) and `r` (the [`Record`]). The hash tag keeps every key of a
//!   session in one cluster slot. Its TTL is set again on every write.
//! * Every write is one `EVALSHA` of `redis_store/commit.lua` (compare-and-set on `v` plus the
//!   eventId check; on `NOSCRIPT`, after a Redis restart, `SCRIPT LOAD` and again): a warm
//!   webhook costs one round trip, and a replica with a live actor never reads before writing.
//! * `r` is the record (state and version, with one answer, the last, inside the state) in a
//!   compact binary layout, or JSON for a rolling upgrade ([`RecordFormat`]); zlib-compressed
//!   with `compress`; every form is read (`codec`). The eventIds are only in `ids`, which the
//!   script appends to, so a warm webhook sends its own eventId and not the session's list.
//! * The summary deletes the hash and reads what it held in one round trip: `HMGET` and
//!   `DEL` in a `MULTI`/`EXEC` (no script: it decides nothing inside Redis).
//!
//! # When Redis is lost
//! A failed command marks Redis down. While it is down, writes are queued here (write-behind,
//! at most one entry per session, the latest record over the last durable version) and
//! answered [`Commit::Deferred`]: those of live sessions, of new calls, and of sessions resumed
//! from their `clientActionId` (a read answers "nothing known" at once, so the runtime resumes
//! them). A background task probes Redis with `PING` and, when it answers, flushes the queue
//! through the same script. A session begun during the outage that meets a state stored
//! meanwhile goes over it if it is further along (`seq`), and is dropped otherwise. A queued
//! write that meets a newer stored state, outlives [`RedisConfig::max_pending_age`], or does
//! not fit in
//! [`RedisConfig::max_pending`], is dropped with an error log and
//! `switchboard_store_writes_dropped_total`: nothing is lost silently.
//!
//! With Sentinel (`redis+sentinel://`) the master is asked of the sentinels when first needed,
//! before every probe while Redis is down, and once a second while it is up: a failover is one
//! more short outage (the old master refuses writes, or its connections are closed, or the
//! sentinels name no master for a while), served from memory and flushed to the new master.
//!
//! Submodules: `campaign` (campaign state and the dialling lease, see
//! [`crate::campaign`]), `codec` (how a record is laid out in the hash), `link` (the connection, one
//! server or a cluster, and what its errors mean), `outage` (Redis found down and up again, the
//! write-behind queue, the probe and the flush), `queue` (write-behind entries), `telemetry`
//! (metric handles); the script is `redis_store/commit.lua`.
//!
//! # Metrics
//! Handles are made once, in [`RedisStore::new`], so install the recorder before calling it:
//! `switchboard_redis_command_duration_seconds{command}`, `switchboard_redis_errors_total{kind}`,
//! `switchboard_store_pending_writes`, `switchboard_store_writes_dropped_total`,
//! `switchboard_redis_unreachable`, `switchboard_redis_outage_phase_seconds{phase}`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ::redis::aio::ConnectionManagerConfig;
use ::redis::cluster::ClusterClientBuilder;
use ::redis::{Client, RedisResult, Script};
use tokio::sync::Notify;

use crate::store::{BoxFuture, Commit, EVENTS_KEPT, Record, SessionStore, StoreError};

mod campaign;
mod codec;
mod config;
mod link;
mod outage;
mod queue;
mod telemetry;

pub use codec::RecordFormat;
pub use config::{OpenError, RedisConfig};
use config::{bad_url, endpoints, read_ca, redact, sentinel, tls_roots};
use link::{ClusterLink, ErrorClass, Failure, Link, SentinelLink, SingleLink, with_connection};
use outage::Outage;
use queue::{Pending, Queued, is_own};
use telemetry::{Command, Metrics};

/// The compare-and-set script (see the file for its contract).
const COMMIT_SCRIPT: &str = include_str!("redis_store/commit.lua");

/// The flusher's pause between probes while Redis is down: doubles from the first to the last.
const PROBE_FIRST: Duration = Duration::from_millis(100);
const PROBE_LAST: Duration = Duration::from_secs(2);
/// How often the flusher looks at an empty queue.
const IDLE: Duration = Duration::from_secs(1);
/// Queued writes flushed per batch, so the queue's lock is taken briefly.
const FLUSH_BATCH: usize = 256;

/// Session state in Redis. See the module documentation.
pub struct RedisStore {
    link: Link,
    script: Script,
    prefix: String,
    ttl_ms: u64,
    timeout: Duration,
    max_pending: usize,
    max_pending_age: Duration,
    compress: bool,
    format: RecordFormat,
    /// The URL with any password masked, for messages.
    target: String,
    /// Set by a failed command, cleared by a successful probe; while set, nothing waits on
    /// Redis on the request path.
    down: AtomicBool,
    /// When Redis was found unreachable (set with `down`), and when it answered again while
    /// writes were still queued: for the outage and recovery figures.
    // std Mutex: held to read or swap an instant, never across an await.
    outage: Mutex<Outage>,
    // std Mutex: held to look up, insert or remove entries, never across an await.
    queue: Mutex<HashMap<String, Pending>>,
    /// Sessions whose queued write was dropped: their actors must re-read (see
    /// [`SessionStore::take_stale`]). `stale_count` spares the lock on the hot path.
    // std Mutex: held to insert or remove one id, never across an await.
    stale: Mutex<HashSet<String>>,
    stale_count: AtomicUsize,
    wake: Arc<Notify>,
    dropped: AtomicU64,
    metrics: Metrics,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("cluster", &matches!(self.link, Link::Cluster(_)))
            .field("sentinel", &matches!(self.link, Link::Sentinel(_)))
            .field("prefix", &self.prefix)
            .field("down", &self.down.load(Ordering::Relaxed))
            .field("pending", &self.pending_writes())
            .finish()
    }
}

impl RedisStore {
    /// A store for `config`. Connects lazily: an unreachable Redis is not an error here (the
    /// first [`SessionStore::ping`] reports it); only a malformed URL is. Must be called inside
    /// a Tokio runtime, which runs the write-behind flusher.
    pub fn new(config: RedisConfig) -> Result<Arc<Self>, OpenError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            OpenError::Invalid(
                "RedisStore::new must be called inside a Tokio runtime (it starts the task that \
                 flushes writes queued while Redis is down)"
                    .to_owned(),
            )
        })?;
        let timeout = config.command_timeout;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(PROBE_LAST);
        let (link, target) = if let Some(group) = sentinel(&config)? {
            let target = redact(config.url.trim());
            let link = SentinelLink::new(group, manager_config, timeout)
                .map_err(|e| bad_url(&target, &e))?;
            (Link::Sentinel(Box::new(link)), target)
        } else {
            Self::server_link(&config, manager_config)?
        };
        let store = Arc::new(Self {
            link,
            script: Script::new(COMMIT_SCRIPT),
            prefix: config.prefix,
            ttl_ms: u64::try_from(config.ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            timeout,
            max_pending: config.max_pending,
            max_pending_age: config.max_pending_age,
            compress: config.compress,
            format: config.format,
            target,
            down: AtomicBool::new(false),
            outage: Mutex::new(Outage::default()),
            queue: Mutex::new(HashMap::new()),
            stale: Mutex::new(HashSet::new()),
            stale_count: AtomicUsize::new(0),
            wake: Arc::new(Notify::new()),
            dropped: AtomicU64::new(0),
            metrics: Metrics::new(),
        });
        runtime.spawn(flusher(Arc::downgrade(&store), Arc::clone(&store.wake)));
        Ok(store)
    }

    /// The link to one server or a cluster, and the URL for messages (passwords masked).
    fn server_link(
        config: &RedisConfig,
        manager_config: ConnectionManagerConfig,
    ) -> Result<(Link, String), OpenError> {
        let (nodes, cluster) = endpoints(config)?;
        let target = nodes
            .iter()
            .map(|n| redact(n))
            .collect::<Vec<_>>()
            .join(",");
        let timeout = config.command_timeout;
        let ca = read_ca(config.ca_file.as_deref(), &nodes)?;
        if nodes.iter().any(|n| n.starts_with("rediss://")) {
            // TLS through rustls with ring; an error means a provider is installed already.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let link = if cluster {
            let mut builder = ClusterClientBuilder::new(nodes.clone())
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(2);
            if let Some(pem) = &ca {
                builder = builder.certs(tls_roots(pem));
            }
            let client = builder.build().map_err(|e| bad_url(&target, &e))?;
            Link::Cluster(Box::new(ClusterLink::new(client)))
        } else {
            let client = match &ca {
                Some(pem) => Client::build_with_tls(nodes[0].as_str(), tls_roots(pem)),
                None => Client::open(nodes[0].as_str()),
            }
            .map_err(|e| bad_url(&target, &e))?;
            let single =
                SingleLink::new(client, manager_config).map_err(|e| bad_url(&target, &e))?;
            Link::Single(Box::new(single))
        };
        Ok((link, target))
    }

    /// The key of a session's state.
    pub fn state_key(&self, session: &str) -> String {
        // Pushed rather than `format!`ed: one key per webhook, and the formatting machinery
        // cost a thousand instructions of it.
        let mut key = String::with_capacity(self.prefix.len() + session.len() + 9);
        key.push_str(&self.prefix);
        key.push_str(":{");
        key.push_str(session);
        key.push_str("}:state");
        key
    }

    /// Reads a record as stored in the `r` field of a session's hash (for tools and tests),
    /// with its eventIds from the `ids` field when given (a binary `r` holds none).
    pub fn decode_record(stored: &[u8], ids: Option<&[u8]>) -> Result<Record, StoreError> {
        codec::decode(stored, ids).map_err(|detail| StoreError::Codec {
            context: "not a stored session record".to_owned(),
            detail,
        })
    }

    /// Sessions whose latest write is queued, waiting for Redis.
    pub fn pending_writes(&self) -> usize {
        self.queue().len()
    }

    /// Queued writes given up on since the start (also `switchboard_store_writes_dropped_total`).
    pub fn writes_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether the last command reached Redis.
    pub fn is_reachable(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    /// Runs `op` under the command timeout, timing it and counting its failures.
    async fn timed<T>(
        &self,
        command: Command,
        op: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, Failure> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, op).await;
        self.metrics
            .duration(command)
            .record(started.elapsed().as_secs_f64());
        let failure = match result {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => Failure::from(&err),
            Err(_) => Failure {
                kind: ErrorClass::Timeout,
                message: format!("no answer within {:?}", self.timeout),
                source: None,
            },
        };
        self.metrics.error(failure.kind).increment(1);
        if failure.unavailable() {
            self.mark_down(&failure, started.elapsed());
        }
        Err(failure)
    }

    /// The compare-and-set, one `EVALSHA`. `ids`: how the stored eventIds become the
    /// record's (see `redis_store/commit.lua`).
    async fn cas(
        &self,
        session: &str,
        expected: Option<u64>,
        record: &Record,
        event_id: &str,
        ids: Ids,
    ) -> Result<Commit, Failure> {
        let key = self.state_key(session);
        let body = codec::encode(record, self.format, self.compress);
        let event_id = if event_id.contains('|') { "" } else { event_id };
        let ids = match ids {
            // Only a write over a stored version can build on the stored ids.
            Ids::Append if expected.is_some() => {
                let mut ids = String::with_capacity(2 + event_id.len());
                ids.push('+');
                if !event_id.is_empty() {
                    ids.push_str(event_id);
                    ids.push('|');
                }
                ids
            }
            Ids::Append | Ids::Replace => {
                let mut ids = String::from("=");
                codec::push_ids(&mut ids, &record.events);
                ids
            }
        };
        // EVALSHA written straight into one command buffer (a `ScriptInvocation` copies every
        // argument twice more); `NOSCRIPT` (Redis restarted, or a new master) loads the script
        // and sends it again.
        let mut command = ::redis::cmd("EVALSHA");
        command.arg(self.script.get_hash()).arg(1).arg(&key);
        match expected {
            Some(version) => command.arg(version),
            None => command.arg(""),
        };
        command
            .arg(record.version)
            .arg(body)
            .arg(ids)
            .arg(self.ttl_ms)
            .arg(event_id)
            .arg(EVENTS_KEPT);
        let reply: ::redis::Value = self
            .timed(Command::Commit, async {
                with_connection!(&self.link, con => evalsha(&self.script, &command, &mut con).await)
            })
            .await?;
        // Written: `1`. Otherwise `{status, stored record, stored ids}`.
        if matches!(reply, ::redis::Value::Int(1)) {
            return Ok(Commit::Written);
        }
        let (_status, stored, stored_ids): (i64, Field, Field) = ::redis::from_redis_value(reply)
            .map_err(|e| {
            self.metrics.error(ErrorClass::Decode).increment(1);
            Failure {
                kind: ErrorClass::Decode,
                message: format!("the commit script's answer for {key} is not one it gives: {e}"),
                source: None,
            }
        })?;
        match stored {
            Some(stored) => Ok(Commit::Conflict(Some(Box::new(self.decode(
                &key,
                &stored,
                stored_ids.as_deref(),
            )?)))),
            None => Ok(Commit::Conflict(None)),
        }
    }

    /// Whether `stored` is older than `base`, the version a write of `session` builds on:
    /// Redis lost acknowledged writes (see `Pending::rebase_if_lost`), which is logged.
    fn lost(&self, session: &str, base: Option<u64>, stored: &Record) -> bool {
        let lost = base.is_some_and(|base| stored.version < base);
        if lost {
            tracing::warn!(
                session,
                redis = %self.target,
                stored = stored.version,
                expected = base.unwrap_or_default(),
                "Redis holds an older state of this session than it acknowledged (writes lost \
                 in a failover or a restart); this replica's state descends from it and is \
                 written over it"
            );
        }
        lost
    }

    fn decode(&self, key: &str, r: &[u8], ids: Option<&[u8]>) -> Result<Record, Failure> {
        codec::decode(r, ids).map_err(|e| {
            self.metrics.error(ErrorClass::Decode).increment(1);
            Failure {
                kind: ErrorClass::Decode,
                message: format!("the record at {key} is not a session record: {e}"),
                source: None,
            }
        })
    }

    async fn commit_record(
        &self,
        session: &str,
        expected: Option<u64>,
        record: &Record,
        event_id: &str,
    ) -> Result<Commit, StoreError> {
        // A session with a queued write: Redis holds the queue's base version, not `expected`.
        let mut base = expected;
        let mut attempts = Vec::new();
        let mut claimed = false;
        let mut rebased = false;
        {
            let mut queue = self.queue();
            let down = !self.is_reachable();
            match queue.get_mut(session) {
                Some(pending) if matches!(pending.op, Queued::End) => {
                    self.drop_write(session, "the session already ended (its summary arrived)");
                    return Ok(Commit::Deferred);
                }
                Some(pending) if pending.claimed || down => {
                    pending.replace(record);
                    return Ok(Commit::Deferred);
                }
                Some(pending) => {
                    // Claim the entry so the flusher leaves it to this write.
                    pending.claimed = true;
                    claimed = true;
                    rebased = pending.rebased;
                    attempts.clone_from(&pending.attempts);
                    if let Queued::Write { base: queued, .. } = &pending.op {
                        base = *queued;
                    }
                }
                // A live session, a new call or one resumed from its clientActionId: served
                // from memory, its write queued (a new one over "nothing stored").
                None if down => return self.defer(&mut queue, session, expected, record, false),
                None => {}
            }
        }
        // The queued state was rebased over a rival's (`Pending::rebase_if_further`): this
        // actor's numbering is behind the stored version; its next commit conflicts once and
        // adopts the stored record, its own state.
        let renumbered;
        let record = match base {
            Some(base) if rebased => {
                renumbered = Record {
                    version: base + 1,
                    ..record.clone()
                };
                &renumbered
            }
            _ => record,
        };
        // Over a queued write, Redis lacks the queued events: send them all.
        let ids = if claimed || rebased {
            Ids::Replace
        } else {
            Ids::Append
        };
        let mut outcome = self.cas(session, base, record, event_id, ids).await;
        // A queued write that timed out may have been applied after all: build on it. And a
        // stored state older than the one this write builds on is Redis's loss of writes it
        // acknowledged (`Pending::rebase_if_lost`): this state descends from it, and goes over.
        if let Ok(Commit::Conflict(Some(stored))) = &outcome
            && stored.version < record.version
            && (is_own(&attempts, stored) || self.lost(session, base, stored))
        {
            base = Some(stored.version);
            outcome = self
                .cas(session, base, record, event_id, Ids::Replace)
                .await;
        }
        let mut queue = self.queue();
        if claimed {
            match &outcome {
                Ok(Commit::Conflict(_)) => {
                    queue.remove(session);
                    drop(queue);
                    self.drop_write(
                        session,
                        "a newer state was stored by another replica while Redis was \
                         unreachable from here; the session continues from the stored one",
                    );
                    queue = self.queue();
                }
                Ok(_) => {
                    queue.remove(session);
                }
                Err(_) => {
                    if let Some(pending) = queue.get_mut(session) {
                        pending.claimed = false;
                    }
                }
            }
            self.publish_pending(&queue);
        }
        match outcome {
            Ok(commit) => Ok(commit),
            // The write may yet be applied (a timeout): the queue remembers it as attempted,
            // so meeting it stored later is recognised as this replica's own.
            Err(failure) if failure.unavailable() => {
                self.defer(&mut queue, session, base, record, true)
            }
            Err(failure) => Err(failure.into_store_error(
                format!("cannot write session {session} to Redis at {}", self.target),
                self.timeout,
            )),
        }
    }

    async fn load_record(&self, session: &str) -> Result<Option<Record>, StoreError> {
        {
            let queue = self.queue();
            if let Some(pending) = queue.get(session) {
                return Ok(match &pending.op {
                    Queued::Write { record, .. } => Some((**record).clone()),
                    Queued::End => None,
                });
            }
        }
        // Redis away: nothing is known of the session here, and the runtime resumes it from
        // the clientActionId its webhook echoes, as after a restart on the memory store. Its
        // write is queued over "nothing stored"; `flush_round` settles a conflict with a
        // state stored meanwhile (the caller's furthest position wins).
        if !self.is_reachable() {
            tracing::debug!(
                session,
                "Redis is unreachable: the session is resumed from its clientActionId"
            );
            return Ok(None);
        }
        let key = self.state_key(session);
        let command = ::redis::cmd("HMGET").arg(&key).arg("r").arg("ids").clone();
        let (found, ids): Fields = match self
            .timed(Command::Load, async {
                with_connection!(&self.link, con => command.query_async(&mut con).await)
            })
            .await
        {
            Ok(found) => found,
            Err(failure) if failure.unavailable() => return Ok(None),
            Err(failure) => {
                return Err(failure.into_store_error(
                    format!(
                        "cannot load session {session} from Redis at {}",
                        self.target
                    ),
                    self.timeout,
                ));
            }
        };
        found
            .map(|r| {
                self.decode(&key, &r, ids.as_deref())
                    .map_err(|f| f.into_store_error(format!("session {session}"), self.timeout))
            })
            .transpose()
    }

    /// Ends `session`; with `known`, returns only a record newer than that version.
    async fn end_session(
        &self,
        session: &str,
        known: Option<u64>,
    ) -> Result<Option<Record>, StoreError> {
        let newer =
            |record: Option<Record>| record.filter(|r| known.is_none_or(|known| r.version > known));
        // A queued write holds the latest state this replica knows of.
        let queued = {
            let mut queue = self.queue();
            let queued = match queue.remove(session).map(|pending| pending.op) {
                Some(Queued::Write { record, .. }) => Some(*record),
                _ => None,
            };
            if !self.is_reachable() {
                queue.insert(session.to_owned(), Pending::new(Queued::End));
                self.publish_pending(&queue);
                return Ok(newer(queued));
            }
            self.publish_pending(&queue);
            queued
        };
        match self.take(session, known).await {
            Ok(stored) => Ok(newer(match (stored, queued) {
                (Some(stored), Some(queued)) if queued.version > stored.version => Some(queued),
                (stored, queued) => stored.or(queued),
            })),
            Err(failure) if failure.unavailable() => {
                let mut queue = self.queue();
                queue.insert(session.to_owned(), Pending::new(Queued::End));
                self.publish_pending(&queue);
                Ok(newer(queued))
            }
            Err(failure) => Err(failure.into_store_error(
                format!(
                    "cannot delete session {session} from Redis at {}",
                    self.target
                ),
                self.timeout,
            )),
        }
    }

    /// Deletes a session's state and returns the record it held, in one round trip: `HMGET`
    /// and `DEL` in a `MULTI`/`EXEC` (a transaction rather than a script: a tenth of the
    /// Redis CPU, and nothing to decide inside Redis). With `known`, a record stored at that
    /// version or an older one is not decoded (the caller holds it): `None`. A record that
    /// cannot be decoded is deleted all the same (and counted).
    async fn take(&self, session: &str, known: Option<u64>) -> Result<Option<Record>, Failure> {
        let key = self.state_key(session);
        let mut transaction = ::redis::pipe();
        transaction
            .atomic()
            .cmd("HMGET")
            .arg(&key)
            .arg("v")
            .arg("r")
            .arg("ids")
            .cmd("DEL")
            .arg(&key)
            .ignore();
        let ((version, r, ids),): ((Field, Field, Field),) = self
            .timed(Command::End, async {
                with_connection!(&self.link, con => transaction.query_async(&mut con).await)
            })
            .await?;
        let version = version
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
        if let (Some(known), Some(version)) = (known, version)
            && version <= known
        {
            return Ok(None);
        }
        Ok(r.and_then(|r| match self.decode(&key, &r, ids.as_deref()) {
            Ok(record) => Some(record),
            Err(failure) => {
                tracing::warn!(session, error = %failure.message, "ended a session whose record could not be read");
                None
            }
        }))
    }

    async fn delete(&self, session: &str) -> Result<(), Failure> {
        let command = ::redis::cmd("DEL").arg(self.state_key(session)).clone();
        self.timed(Command::End, async {
            with_connection!(&self.link, con => command.query_async::<i64>(&mut con).await)
        })
        .await
        .map(drop)
    }
}

impl SessionStore for RedisStore {
    fn load<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(self.load_record(session))
    }

    fn commit<'a>(
        &'a self,
        session: &'a str,
        expected: Option<u64>,
        record: &'a Record,
        event_id: &'a str,
    ) -> BoxFuture<'a, Result<Commit, StoreError>> {
        Box::pin(self.commit_record(session, expected, record, event_id))
    }

    fn end<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(self.end_session(session, None))
    }

    fn end_newer_than<'a>(
        &'a self,
        session: &'a str,
        known: u64,
    ) -> BoxFuture<'a, Result<Option<Record>, StoreError>> {
        Box::pin(self.end_session(session, Some(known)))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.probe())
    }

    fn take_stale(&self, session: &str) -> bool {
        self.take_stale_session(session)
    }

    fn flush(&self) -> BoxFuture<'_, usize> {
        Box::pin(self.flush_all())
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// A field of a session's hash as `HMGET` reads it.
type Field = Option<Vec<u8>>;
/// Two fields of a session's hash as `HMGET` reads them: `r` and `ids`.
type Fields = (Field, Field);

/// `command`, an `EVALSHA` of `script`; on `NOSCRIPT` (a restarted Redis, a new master, a
/// cluster node that never saw it), `SCRIPT LOAD` and the command again.
async fn evalsha<T: ::redis::FromRedisValue>(
    script: &Script,
    command: &::redis::Cmd,
    con: &mut impl ::redis::aio::ConnectionLike,
) -> RedisResult<T> {
    match command.query_async(con).await {
        Err(err)
            if err.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) =>
        {
            script.prepare_invoke().load_async(con).await?;
            command.query_async(con).await
        }
        result => result,
    }
}

/// Probes Redis while it is down and flushes the queue when it is back. Holds the store weakly:
/// it ends when the store is dropped.
async fn flusher(store: Weak<RedisStore>, wake: Arc<Notify>) {
    // Connect now, from the runtime that made the store (the connection's tasks live there),
    // and say at start-up whether Redis answers (a failure is logged by `mark_down`).
    if let Some(store) = store.upgrade()
        && store.probe().await.is_ok()
    {
        tracing::info!(redis = %store.target, "Redis answers");
    }
    let mut pause = Duration::ZERO;
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
        let Some(store) = store.upgrade() else { return };
        let reachable = store.is_reachable();
        if reachable && store.pending_writes() == 0 {
            store.recovered();
            // A Sentinel failover the old master does not reveal yet: followed within IDLE.
            if let Link::Sentinel(sentinel) = &store.link {
                sentinel.check().await;
            }
            pause = IDLE;
            continue;
        }
        store.expire();
        let backoff = pause.clamp(PROBE_FIRST, PROBE_LAST / 2) * 2;
        if !reachable && store.probe().await.is_err() {
            pause = backoff;
            continue;
        }
        pause = match store.flush_round().await {
            Ok(true) => Duration::ZERO,
            Ok(false) => PROBE_FIRST,
            Err(()) => backoff,
        };
    }
}

/// How a write turns the stored eventIds into the record's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// Add the event this write answers (the stored ids are the record's but for it).
    Append,
    /// Store the record's ids (the stored ones may lack several).
    Replace,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_session_as_hash_tag() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = rt
            .block_on(async { RedisStore::new(RedisConfig::new("redis://127.0.0.1:1")) })
            .unwrap();
        assert_eq!(store.state_key("abc"), "switchboard:{abc}:state");
    }
}
