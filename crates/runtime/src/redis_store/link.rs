//! The connection to Redis (one server or a cluster) and what its failures mean for the store.
//!
//! One server is reached through a reconnecting multiplexed connection **per thread**: the
//! connection's driver task runs on the runtime of the thread that first used it, so a session
//! actor's command is written, read and answered on the actor's own shard thread, with no hop
//! to another thread and back (which cost more than the command itself).

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::Client;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};

use crate::store::{Cause, StoreError};

/// Runs `$body` with `$con` bound to a connection of either kind.
macro_rules! with_connection {
    ($link:expr, $con:ident => $body:expr) => {
        match $link {
            $crate::redis_store::link::Link::Single(single) => {
                let mut $con = single.get()?;
                $body
            }
            $crate::redis_store::link::Link::Cluster(cluster) => {
                let mut $con = cluster.get().await?;
                $body
            }
        }
    };
}
pub(crate) use with_connection;

/// One server (through a reconnecting multiplexed connection per thread) or a cluster.
pub(super) enum Link {
    Single(Box<SingleLink>),
    Cluster(Box<ClusterLink>),
}

/// Distinguishes the stores of one process (tests make several) in [`CONNECTIONS`].
static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's connection of each store (by link id). Stores are few and long-lived; a
    /// dropped store's entry is removed by its [`SingleLink`]'s drop on the threads that run it
    /// later, and is otherwise freed with the thread.
    static CONNECTIONS: RefCell<Vec<(u64, u64, ConnectionManager)>> = const { RefCell::new(Vec::new()) };
}

pub(super) struct SingleLink {
    id: u64,
    /// Bumped when Redis is found unreachable: a connection made before is not used again
    /// (it may have broken meanwhile, and would fail the first command after Redis returns).
    generation: AtomicU64,
    client: Client,
    config: ConnectionManagerConfig,
}

impl SingleLink {
    /// Checks that a connection can be made from `client` (the URL is good); connects lazily.
    pub(super) fn new(client: Client, config: ConnectionManagerConfig) -> RedisResult<Self> {
        ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
        Ok(Self {
            id: NEXT_LINK.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            client,
            config,
        })
    }

    /// This thread's connection, made (lazily: it connects on first use) the first time and
    /// again after [`Self::reset`].
    pub(super) fn get(&self) -> RedisResult<ConnectionManager> {
        let generation = self.generation.load(Ordering::Acquire);
        CONNECTIONS.with(|connections| {
            let mut connections = connections.borrow_mut();
            let slot = connections.iter().position(|(id, _, _)| *id == self.id);
            if let Some(at) = slot
                && connections[at].1 == generation
            {
                return Ok(connections[at].2.clone());
            }
            let manager =
                ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())?;
            match slot {
                Some(at) => connections[at] = (self.id, generation, manager.clone()),
                None => connections.push((self.id, generation, manager.clone())),
            }
            Ok(manager)
        })
    }

    /// Redis was found unreachable: every thread makes a new connection on its next command.
    pub(super) fn reset(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for SingleLink {
    fn drop(&mut self) {
        let id = self.id;
        // The dropping thread's own entry; other threads' go with them.
        let _ = CONNECTIONS.try_with(|c| c.borrow_mut().retain(|(other, _, _)| *other != id));
    }
}

pub(super) struct ClusterLink {
    client: ClusterClient,
    // std Mutex: held only to clone or set the handle, never across an await.
    connection: Mutex<Option<ClusterConnection>>,
    /// One connection attempt at a time.
    connecting: tokio::sync::Mutex<()>,
}

impl ClusterLink {
    pub(super) fn new(client: ClusterClient) -> Self {
        Self {
            client,
            connection: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// The cluster connection, made on first use (it then follows the cluster by itself).
    pub(super) async fn get(&self) -> RedisResult<ClusterConnection> {
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let _attempt = self.connecting.lock().await;
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let connection = self.client.get_async_connection().await?;
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection.clone());
        Ok(connection)
    }

    fn current(&self) -> Option<ClusterConnection> {
        self.connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What kind of failure: the `kind` label of `switchboard_redis_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ErrorClass {
    /// The connection failed or was refused.
    Io,
    /// No answer within the command timeout.
    Timeout,
    /// Redis answered that it cannot serve now: loading, a read-only replica after a
    /// failover, the cluster down or resharding.
    Busy,
    /// Redis refused the command.
    Server,
    /// A stored record could not be read.
    Decode,
}

impl ErrorClass {
    pub(super) const ALL: [Self; 5] = [
        Self::Io,
        Self::Timeout,
        Self::Busy,
        Self::Server,
        Self::Decode,
    ];

    pub(super) const fn label(self) -> &'static str {
        match self {
            Self::Io => "io",
            Self::Timeout => "timeout",
            Self::Busy => "busy",
            Self::Server => "server",
            Self::Decode => "decode",
        }
    }
}

pub(super) struct Failure {
    pub(super) kind: ErrorClass,
    pub(super) message: String,
    /// The client's error, when there is one (not for a timeout of ours or a bad record).
    pub(super) source: Option<RedisError>,
}

/// A [`Failure`]'s message over the client's error: the source of a [`StoreError`].
#[derive(Debug)]
struct Detail {
    message: String,
    source: Option<RedisError>,
}

impl std::fmt::Display for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Detail {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Failure {
    /// The store error of this failure, `context` saying what was asked of whom; `timeout` is
    /// the store's command timeout.
    pub(super) fn into_store_error(self, context: String, timeout: Duration) -> StoreError {
        let cause = || {
            Cause::new(Detail {
                message: self.message.clone(),
                source: self.source.clone(),
            })
        };
        match self.kind {
            ErrorClass::Timeout => StoreError::Timeout {
                context,
                after: timeout,
            },
            ErrorClass::Io => StoreError::Connection {
                context,
                source: cause(),
            },
            ErrorClass::Busy => StoreError::Busy {
                context,
                source: cause(),
            },
            ErrorClass::Server => StoreError::Protocol {
                context,
                source: cause(),
            },
            ErrorClass::Decode => StoreError::Codec {
                context,
                detail: self.message,
            },
        }
    }

    /// Whether Redis is away (rather than refusing this command): writes are then queued.
    pub(super) fn unavailable(&self) -> bool {
        matches!(
            self.kind,
            ErrorClass::Io | ErrorClass::Timeout | ErrorClass::Busy
        )
    }
}

impl From<&RedisError> for Failure {
    fn from(err: &RedisError) -> Self {
        let kind = if err.is_timeout() {
            ErrorClass::Timeout
        } else if err.is_io_error()
            || err.is_connection_refusal()
            || err.is_connection_dropped()
            || err.is_unrecoverable_error()
        {
            ErrorClass::Io
        } else if matches!(
            err.kind(),
            ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask)
        ) {
            // Not an outage: a cluster node reached without cluster mode.
            return Self {
                kind: ErrorClass::Server,
                message: format!(
                    "{err}: this Redis is a cluster node; give several nodes, or use \
                     redis+cluster://, to select cluster mode"
                ),
                source: Some(err.clone()),
            };
        } else if matches!(
            err.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                )
        ) {
            ErrorClass::Busy
        } else {
            ErrorClass::Server
        };
        Self {
            kind,
            message: err.to_string(),
            source: Some(err.clone()),
        }
    }
}
