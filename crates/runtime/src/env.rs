//! What every session actor of a runtime shares ([`Shared`]: the configuration, the store,
//! the flows, the counters, the fetch client), what an actor shares with its handle in the
//! registry ([`Slot`]), and the [`Directory`] an actor leaves when it stops.
//!
//! The registry builds these and the actors read them; neither module needs the other's
//! types for it, so the actor does not depend on the registry.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_flow::{FlowSet, Trace};
use switchboard_protocol::{Action, Callflow, Text, VoiceProfile};

use crate::clock::Clock;
use crate::store::SessionStore;
use crate::{Answer, AnswerKind};

/// What a caller of a number no flow claims hears, unless configured.
pub const DEFAULT_FALLBACK_TEXT: &str = "Sorry, this number is not in service. Goodbye.";
/// What a caller hears when the call cannot be continued, unless configured.
pub const DEFAULT_APOLOGY_TEXT: &str =
    "We are sorry, we could not continue your call. Please call again. Goodbye.";

/// How the runtime runs. Its [`Default`] holds the server's defaults of the same keys.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Shards (arbiters); 0 means one per core.
    pub shards: usize,
    /// Webhooks in flight per session before answering 503.
    pub mailbox: usize,
    /// A session with no webhook for this long is passivated (its actor stopped, its state kept
    /// in the store).
    pub idle_timeout: Duration,
    /// Most live actors on this node; new sessions beyond it get 503.
    pub max_sessions: usize,
    /// Said to a caller whose number no flow claims.
    pub fallback_text: String,
    /// Said when a call cannot be continued.
    pub apology_text: String,
    /// The voice for those two.
    pub voice: String,
    /// How long one webhook may wait for its session's actor.
    pub request_timeout: Duration,
    /// The time of day flows see (business hours); the system clock unless a test or a
    /// rehearsal sets another.
    pub clock: Arc<dyn Clock>,
    /// How fetch nodes' requests are made.
    pub fetch: crate::FetchConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            shards: 0,
            mailbox: 16,
            idle_timeout: Duration::from_secs(600),
            max_sessions: 500_000,
            fallback_text: DEFAULT_FALLBACK_TEXT.to_owned(),
            apology_text: DEFAULT_APOLOGY_TEXT.to_owned(),
            voice: switchboard_flow::DEFAULT_VOICE.to_owned(),
            request_timeout: Duration::from_secs(5),
            clock: crate::clock::system(),
            fetch: crate::FetchConfig::default(),
        }
    }
}

/// Counters the runtime keeps (read by the metrics layer).
#[derive(Debug, Default)]
pub struct Counters {
    /// Sessions whose state was loaded from the store by an actor that had none.
    pub rehydrated: AtomicU64,
    /// Idle sessions passivated.
    pub passivated: AtomicU64,
    /// Compare-and-set conflicts resolved by adopting the stored state.
    pub conflicts: AtomicU64,
    /// Webhooks refused because the session's mailbox was full.
    pub mailbox_full: AtomicU64,
}

/// Where a runtime's actors are found by session id. An actor takes itself out when it stops,
/// through this trait, so it needs nothing of the registry's types.
pub(crate) trait Directory: Send + Sync {
    /// Removes `session`'s entry if it is still `incarnation`'s (a newer actor stays).
    fn forget(&self, session: &str, incarnation: u64);
}

/// What the registry and the actor share about one session, outside the actor's mailbox.
#[derive(Debug)]
pub(crate) struct Slot {
    /// Webhooks in flight (the mailbox bound).
    pub(crate) inflight: AtomicUsize,
    /// When the last webhook arrived, in milliseconds since the runtime started.
    pub(crate) last_active: AtomicU64,
}

impl Slot {
    pub(crate) fn new(now: u64) -> Self {
        Self {
            inflight: AtomicUsize::new(0),
            last_active: AtomicU64::new(now),
        }
    }

    /// Whether the session has had no webhook for `idle` at `now` (ms since start) and none
    /// is in flight.
    pub(crate) fn is_idle(&self, now: u64, idle: Duration) -> bool {
        self.inflight.load(Ordering::Acquire) == 0
            && now.saturating_sub(self.last_active.load(Ordering::Relaxed))
                >= idle.as_millis() as u64
    }
}

/// What actors share.
pub(crate) struct Shared {
    pub(crate) config: RuntimeConfig,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) flows: RwLock<Arc<FlowSet>>,
    /// Where actors are found; an actor takes itself out of it when it stops.
    pub(crate) directory: Arc<dyn Directory>,
    pub(crate) counters: Counters,
    /// Live actors per shard (index = arbiter).
    pub(crate) shard_actors: Vec<AtomicUsize>,
    pub(crate) voice: VoiceProfile,
    /// The time base of [`Slot::last_active`].
    pub(crate) epoch: Instant,
    /// Performs fetch nodes' requests.
    pub(crate) fetcher: crate::fetch::Fetcher,
}

impl Shared {
    /// Milliseconds since the runtime started.
    pub(crate) fn clock(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Takes `session`'s actor `incarnation` out of the directory (a newer one stays).
    pub(crate) fn forget(&self, session: &str, incarnation: u64) {
        self.directory.forget(session, incarnation);
    }

    pub(crate) fn flows(&self) -> Arc<FlowSet> {
        // The lock is held only to clone an Arc; no await happens under it.
        Arc::clone(&self.flows.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn fallback(&self) -> Answer {
        self.canned(&self.config.fallback_text, AnswerKind::Unrouted)
    }

    pub(crate) fn apology(&self, kind: AnswerKind) -> Answer {
        self.canned(&self.config.apology_text, kind)
    }

    fn canned(&self, text: &str, kind: AnswerKind) -> Answer {
        let callflow = say_and_hang_up(text, &self.voice);
        Answer {
            body: Bytes::from(callflow.to_json()),
            kind,
            flow: None,
            trace: Trace::default(),
            callflow: Some(Arc::new(callflow)),
        }
    }
}

/// `say text` + `hangup`, for answers that end a call we cannot serve.
pub(crate) fn say_and_hang_up(text: &str, voice: &VoiceProfile) -> Callflow {
    let mut actions = Vec::with_capacity(2);
    if let Some(text) = Text::sanitize(text) {
        actions.push(Action::Say(switchboard_protocol::Say::new(
            text,
            voice.clone(),
        )));
    }
    actions.push(Action::Hangup);
    Callflow {
        client_action_id: None,
        actions,
    }
}
