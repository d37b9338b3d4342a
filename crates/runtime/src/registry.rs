//! The runtime: an actix `System` on its own thread with one `Arbiter` per shard, a sharded
//! registry from session id to actor, and [`Runtime`], the facade the HTTP layer talks to.
//!
//! Nothing outside this crate sees an actix type: [`Runtime`] turns mailbox errors into
//! [`RuntimeError`]s. Each session's mailbox is bounded by an in-flight counter checked before
//! sending, so a flood for one session is refused with [`RuntimeError::Busy`] (HTTP 503)
//! instead of queueing without bound.
//!
//! # One thread per webhook
//! The HTTP front can serve its connections on the shards themselves
//! ([`Runtime::spawn_on_shards`]). A new session's actor is then started on the shard whose
//! thread received its first webhook, so the later webhooks of the call (on the same
//! connection, or any connection that thread serves) reach their actor and get their answer
//! without crossing threads; a webhook received by another shard hops once. Called from any
//! other thread, sessions are spread over the shards by a hash of their id.
//!
//! Idle actors are found by one sweeper per shard, which reads the last-activity stamp the
//! handle keeps, instead of a timer per actor.

use std::cell::Cell;
use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix::prelude::*;
use dashmap::DashMap;
use switchboard_flow::FlowSet;
use switchboard_protocol::{CallAction, SessionSummary, VoiceProfile};

use crate::actor::{Deliver, End, Inspect, Passivate, SessionActor};
use crate::env::{Directory, Shared, Slot};
use crate::store::{Record, SessionStore};

pub use crate::env::{Counters, DEFAULT_APOLOGY_TEXT, DEFAULT_FALLBACK_TEXT, RuntimeConfig};
use crate::{Answer, Ended, RuntimeError, StartError};

/// The registry: each live session's actor, by session id. Hashed with foldhash, seeded at
/// random per process (session ids come from outside, so the seed matters): a look-up per
/// webhook cost 450 instructions in SipHash, the standard hasher.
#[derive(Default)]
struct Sessions(DashMap<String, SessionHandle, foldhash::fast::RandomState>);

impl Directory for Sessions {
    fn forget(&self, session: &str, incarnation: u64) {
        self.0
            .remove_if(session, |_, h| h.incarnation == incarnation);
    }
}

impl std::ops::Deref for Sessions {
    type Target = DashMap<String, SessionHandle, foldhash::fast::RandomState>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

#[derive(Clone)]
struct SessionHandle {
    addr: Addr<SessionActor>,
    pub(crate) incarnation: u64,
    /// The shard the actor runs on.
    shard: usize,
    pub(crate) slot: Arc<Slot>,
}

thread_local! {
    /// On a shard's thread: (the runtime's id, the shard's index).
    static LOCAL_SHARD: Cell<Option<(u64, usize)>> = const { Cell::new(None) };
}

/// Distinguishes runtimes in one process (tests start several), for [`LOCAL_SHARD`].
static NEXT_RUNTIME_ID: AtomicU64 = AtomicU64::new(1);

struct Shards {
    arbiters: Vec<Arbiter>,
    system: System,
    thread: JoinHandle<()>,
}

/// The session runtime. Cheap to share behind an `Arc`.
pub struct Runtime {
    id: u64,
    shared: Arc<Shared>,
    sessions: Arc<Sessions>,
    handles: Vec<ArbiterHandle>,
    shards: std::sync::Mutex<Option<Shards>>,
    next_incarnation: AtomicU64,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("shards", &self.handles.len())
            .field("sessions", &self.sessions.len())
            .field("store", &self.shared.store.kind())
            .finish()
    }
}

/// A live session, for the admin API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionView {
    /// Session id.
    pub session_id: String,
    /// Whether an actor holds it on this node (otherwise it was read from the store).
    pub live: bool,
    /// The stored record.
    #[serde(flatten)]
    pub record: Record,
}

impl Runtime {
    /// Starts the actor system with `flows` and `store`.
    pub fn start(
        config: RuntimeConfig,
        flows: FlowSet,
        store: Arc<dyn SessionStore>,
    ) -> Result<Self, StartError> {
        let voice = VoiceProfile::new(config.voice.clone())?;
        let shards = if config.shards == 0 {
            std::thread::available_parallelism().map_or(2, usize::from)
        } else {
            config.shards
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("switchboard-actors".to_owned())
            .spawn(move || {
                let system = System::new();
                system.block_on(async move {
                    let arbiters: Vec<Arbiter> = (0..shards).map(|_| Arbiter::new()).collect();
                    let _ = tx.send((System::current(), arbiters));
                });
                let _ = system.run();
            })?;
        let (system, arbiters) = rx.recv().map_err(|_| StartError::ActorSystem)?;
        let handles: Vec<ArbiterHandle> = arbiters.iter().map(Arbiter::handle).collect();
        let id = NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed);
        let fetcher =
            crate::fetch::Fetcher::new(config.fetch.clone()).map_err(StartError::Fetch)?;
        let sessions = Arc::new(Sessions::default());
        let shared = Arc::new(Shared {
            config,
            store,
            flows: RwLock::new(Arc::new(flows)),
            directory: Arc::clone(&sessions) as Arc<dyn Directory>,
            counters: Counters::default(),
            shard_actors: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
            voice,
            epoch: Instant::now(),
            fetcher,
        });
        for (index, shard) in handles.iter().enumerate() {
            // First on each shard's queue, so it runs before any webhook the shard serves.
            shard.spawn(async move { LOCAL_SHARD.set(Some((id, index))) });
            shard.spawn(sweep_idle(
                Arc::downgrade(&shared),
                Arc::downgrade(&sessions),
                index,
            ));
            shard.spawn(keep_a_timer_due());
        }
        Ok(Self {
            id,
            shared,
            sessions,
            handles,
            shards: std::sync::Mutex::new(Some(Shards {
                arbiters,
                system,
                thread,
            })),
            next_incarnation: AtomicU64::new(1),
        })
    }

    /// Applies a `CALL_ACTION` and returns the callflow to answer with.
    pub async fn call_action(&self, action: CallAction) -> Result<Answer, RuntimeError> {
        // Shared, not cloned, with the actor: a retry needs it again, since a message sent to a
        // closed mailbox is not given back.
        let action = Arc::new(action);
        let session = action.session_id.as_str();
        // One retry: the actor may have stopped (passivated or ended) between lookup and send.
        for _ in 0..2 {
            let handle = self.handle(session)?;
            handle
                .slot
                .last_active
                .store(self.shared.clock(), Ordering::Relaxed);
            let _inflight = Inflight::enter(&handle.slot.inflight, self.shared.config.mailbox)
                .ok_or_else(|| {
                    self.shared
                        .counters
                        .mailbox_full
                        .fetch_add(1, Ordering::Relaxed);
                    RuntimeError::Busy
                })?;
            let request = handle.addr.send(Deliver {
                action: Arc::clone(&action),
                now: self.shared.config.clock.now(),
            });
            match tokio::time::timeout(self.shared.config.request_timeout, request).await {
                Ok(Ok(result)) => return result,
                Ok(Err(MailboxError::Closed)) => {
                    self.forget(session, handle.incarnation);
                }
                Ok(Err(MailboxError::Timeout)) | Err(_) => return Err(RuntimeError::Timeout),
            }
        }
        Err(RuntimeError::Busy)
    }

    /// Ends a session after its summary: frees the actor and deletes the stored state.
    pub async fn end(&self, summary: SessionSummary) -> Result<Ended, RuntimeError> {
        let session = summary.session_id.clone();
        let existing = self.sessions.get(&session).map(|h| h.clone());
        if let Some(handle) = existing {
            match handle
                .addr
                .send(End {
                    summary: summary.clone(),
                })
                .await
            {
                Ok(result) => return result,
                Err(_) => self.forget(&session, handle.incarnation),
            }
        }
        let record = self.shared.store.end(&session).await?;
        Ok(Ended {
            flow: record.as_ref().map(|r| r.state.flow.clone()),
            node: record.as_ref().map(|r| r.state.ended_at().to_owned()),
            status: summary.session_status,
        })
    }

    /// A session's record: the newer of its actor's (if live here) and the stored one.
    pub async fn session(&self, session: &str) -> Result<Option<SessionView>, RuntimeError> {
        let existing = self.sessions.get(session).map(|h| h.clone());
        if let Some(handle) = existing
            && let Ok(Some(record)) = handle.addr.send(Inspect).await
        {
            // Another replica may have moved the session on since this actor's last webhook;
            // the actor only finds out on its next write. While the store is unreachable the
            // actor's copy is the best there is.
            let record = match self.shared.store.load(session).await {
                Ok(Some(stored)) if stored.version >= record.version => stored,
                _ => record,
            };
            return Ok(Some(SessionView {
                session_id: session.to_owned(),
                live: true,
                record,
            }));
        }
        let record = self.shared.store.load(session).await?;
        Ok(record.map(|record| SessionView {
            session_id: session.to_owned(),
            live: false,
            record,
        }))
    }

    /// Live sessions on this node: the count and up to `limit` ids after skipping `offset`
    /// (sorted, so pages are stable while sessions come and go).
    pub fn sessions(&self, offset: usize, limit: usize) -> (usize, Vec<String>) {
        let mut ids: Vec<String> = self.sessions.iter().map(|e| e.key().clone()).collect();
        ids.sort_unstable();
        let total = ids.len();
        (total, ids.into_iter().skip(offset).take(limit).collect())
    }

    /// How many shards (actor threads) there are.
    pub fn shard_count(&self) -> usize {
        self.handles.len()
    }

    /// Runs `make(shard)` on each shard's thread: the HTTP front's connections, so that a
    /// webhook is read, applied by its actor and answered on one thread. Returns `false` if a
    /// shard has stopped.
    pub fn spawn_on_shards<F, Fut>(&self, mut make: F) -> bool
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut all = true;
        for (index, shard) in self.handles.iter().enumerate() {
            all &= shard.spawn(make(index));
        }
        all
    }

    /// Live actors per shard.
    pub fn shard_actors(&self) -> Vec<usize> {
        self.shared
            .shard_actors
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    /// Live actors on this node.
    pub fn live_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The flows being served.
    pub fn flows(&self) -> Arc<FlowSet> {
        self.shared.flows()
    }

    /// Replaces the flows (sessions in progress keep their versions, see [`FlowSet::reload`]).
    pub fn set_flows(&self, flows: FlowSet) {
        *self.shared.flows.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(flows);
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.shared.store
    }

    /// The runtime's counters.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Stops every actor and the actor system, and joins its threads. Idempotent.
    pub fn shutdown(&self) {
        let shards = self.shards.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(shards) = shards {
            for arbiter in &shards.arbiters {
                arbiter.stop();
            }
            for arbiter in shards.arbiters {
                let _ = arbiter.join();
            }
            shards.system.stop();
            let _ = shards.thread.join();
        }
    }

    fn handle(&self, session: &str) -> Result<SessionHandle, RuntimeError> {
        if let Some(handle) = self.sessions.get(session) {
            return Ok(handle.clone());
        }
        if self.sessions.len() >= self.shared.config.max_sessions {
            return Err(RuntimeError::Busy);
        }
        let entry = self.sessions.entry(session.to_owned());
        let handle = entry.or_insert_with(|| {
            let incarnation = self.next_incarnation.fetch_add(1, Ordering::Relaxed);
            let shard_index = match LOCAL_SHARD.get() {
                Some((runtime, index)) if runtime == self.id => index,
                _ => shard_of(session, self.handles.len()),
            };
            let shard = &self.handles[shard_index];
            let shared = Arc::clone(&self.shared);
            let id: Arc<str> = Arc::from(session);
            let slot = Arc::new(Slot::new(self.shared.clock()));
            let actor_slot = Arc::clone(&slot);
            let addr = SessionActor::start_in_arbiter(shard, move |_ctx| {
                SessionActor::new(id, incarnation, shard_index, shared, actor_slot)
            });
            SessionHandle {
                addr,
                incarnation,
                shard: shard_index,
                slot,
            }
        });
        Ok(handle.clone())
    }

    fn forget(&self, session: &str, incarnation: u64) {
        self.sessions.forget(session, incarnation);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One shard's idle sweeper: every quarter of the idle timeout, asks the shard's idle actors to
/// passivate. The actor checks again when the request reaches it, so a webhook that arrived
/// in between keeps it alive. Ends when the runtime is dropped.
async fn sweep_idle(
    shared: std::sync::Weak<Shared>,
    sessions: std::sync::Weak<Sessions>,
    shard: usize,
) {
    let Some(idle) = shared.upgrade().map(|s| s.config.idle_timeout) else {
        return;
    };
    let mut every = tokio::time::interval((idle / 4).max(Duration::from_millis(10)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_actors = Vec::new();
    loop {
        every.tick().await;
        let (Some(shared), Some(sessions)) = (shared.upgrade(), sessions.upgrade()) else {
            return;
        };
        let now = shared.clock();
        idle_actors.extend(
            sessions
                .iter()
                .filter(|e| e.shard == shard && e.slot.is_idle(now, idle))
                .map(|e| e.addr.clone()),
        );
        // Sent outside the registry's locks. `try_send`: a full mailbox means a busy actor.
        for addr in idle_actors.drain(..) {
            let _ = addr.try_send(Passivate);
        }
    }
}

/// How often [`keep_a_timer_due`] ticks.
const TIMER_TICK: Duration = Duration::from_millis(250);

/// Keeps a timer due within [`TIMER_TICK`] on the shard, so that the request timeout each
/// webhook arms is never earlier than the timer the shard's driver sleeps until. tokio wakes
/// its driver (a write to an eventfd: a system call, and an extra turn of `epoll_wait`)
/// whenever a timer is registered earlier than that one; with only the idle sweeper and the
/// connections' 30 s header timers pending, that was every webhook that reached an idle
/// shard, 0.45 writes per webhook with wrk playing whole calls. Four wake-ups a second per
/// shard cost nothing by comparison. Ends with the shard.
async fn keep_a_timer_due() {
    let mut every = tokio::time::interval(TIMER_TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
    }
}

fn shard_of(session: &str, shards: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    session.hash(&mut hasher);
    (hasher.finish() % shards as u64) as usize
}

/// Counts a webhook in flight for a session; the count drops when the guard does, even if the
/// HTTP request is abandoned mid-way.
struct Inflight<'a>(&'a AtomicUsize);

impl<'a> Inflight<'a> {
    fn enter(count: &'a AtomicUsize, limit: usize) -> Option<Self> {
        if count.fetch_add(1, Ordering::AcqRel) >= limit {
            count.fetch_sub(1, Ordering::AcqRel);
            None
        } else {
            Some(Self(count))
        }
    }
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
