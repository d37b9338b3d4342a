//! Switchboard's orchestration: every live call is an actix actor that owns its session state,
//! found through a sharded registry, persisted through a [`SessionStore`].
//!
//! # Layout
//! * [`registry`]: [`Runtime`], the facade the HTTP layer uses (no actix type leaks out of it),
//!   the actor system on its own thread with one arbiter per shard, and the registry.
//! * `actor`: the session actor and the processing of one webhook (de-duplication, rehydration,
//!   the flow step, the compare-and-set write).
//! * `env`: what the actors share (configuration, store, flows, counters) and the directory an
//!   actor leaves when it stops; the registry builds it, the actor reads it, and neither
//!   depends on the other's types for it.
//! * [`store`]: the [`SessionStore`] trait and [`MemoryStore`], the embedded default.
//! * [`redis_store`]: [`redis_store::RedisStore`], session state in Redis or a Redis Cluster, so any replica
//!   serves any webhook.
//! * [`campaign`]: [`campaign::CampaignStore`], campaign state shared by replicas and the
//!   lease that lets one of them dial, in memory or in Redis.
//! * [`outbound`]: registering a session before the Callflows API call that places it.
//! * [`clock`]: the time of day flows see, injectable ([`RuntimeConfig::clock`]).
//! * [`catalog`]: reading flow files from disk into a [`switchboard_flow::FlowSet`].
//! * [`fetch`]: the HTTP client that performs fetch nodes' requests for the actor
//!   ([`FetchConfig`]).

mod actor;
pub mod campaign;
pub mod catalog;
pub mod clock;
mod env;
pub mod fetch;
pub mod outbound;
pub mod redis_store;
/// The former name of [`redis_store`] (it shadowed the `redis` crate); kept so existing paths
/// (`switchboard_runtime::redis_store::RedisStore`) still resolve.
pub use redis_store as redis;
pub mod registry;
pub mod store;

use std::sync::Arc;

use bytes::Bytes;
use switchboard_flow::{Flow, Trace};
use switchboard_protocol::{Callflow, SessionStatus};

pub use fetch::{FetchConfig, Fetched, Fetcher};
pub use registry::{Counters, Runtime, RuntimeConfig, SessionView};
pub use store::{MemoryStore, Record, SessionStore, StoreError, StoreErrorKind};

/// The answer to a `CALL_ACTION`.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The callflow, serialized: the HTTP response body.
    pub body: Bytes,
    /// How it came about.
    pub kind: AnswerKind,
    /// The flow that answered, if any.
    pub flow: Option<Arc<Flow>>,
    /// What the step did (empty unless the session advanced).
    pub trace: Trace,
    /// The callflow (absent for a duplicate, whose stored body is repeated as is).
    pub callflow: Option<Arc<Callflow>>,
}

/// How an answer came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// A new call started.
    Started,
    /// The session advanced.
    Advanced,
    /// A session this server had no state for, resumed from its `clientActionId`.
    Resumed,
    /// A repeated `eventId`: the stored answer, repeated.
    Duplicate,
    /// An event echoing an older `clientActionId`: the last answer, repeated.
    Stale,
    /// No flow claims the called number: the fallback message.
    Unrouted,
    /// A session that could not be resumed: an apology.
    Unresolved,
}

impl AnswerKind {
    /// A metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Advanced => "advanced",
            Self::Resumed => "resumed",
            Self::Duplicate => "duplicate",
            Self::Stale => "stale",
            Self::Unrouted => "unrouted",
            Self::Unresolved => "unresolved",
        }
    }
}

/// The outcome of a session summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    /// The session's flow, if known.
    pub flow: Option<String>,
    /// The node the caller was at, if known.
    pub node: Option<String>,
    /// The platform's status.
    pub status: SessionStatus,
}

/// Why a webhook could not be answered. Every variant is retryable by the platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The session's mailbox (or the node's session limit) is full.
    #[error("the session is busy; retry shortly")]
    Busy,
    /// The session's actor did not answer in time.
    #[error("the session did not answer in time")]
    Timeout,
    /// Replicas kept racing on the session.
    #[error("the session was changed concurrently too many times")]
    Conflict,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why the runtime could not start: a start-up error, never a webhook's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configured voice is not a voice profile.
    #[error("voice: {0}")]
    Voice(#[from] switchboard_protocol::ScalarError),
    /// The actor system's thread could not be spawned.
    #[error("cannot start the actor thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The actor system stopped before it was ready.
    #[error("the actor system failed to start")]
    ActorSystem,
    /// The HTTP client of fetch nodes could not be built.
    #[error("the fetch client: {0}")]
    Fetch(String),
}
