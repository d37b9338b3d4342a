//! The connection to Redis (one server or a cluster) and what its failures mean for the store.

use std::sync::Mutex;

use ::redis::aio::ConnectionManager;
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};

/// Runs `$body` with `$con` bound to a connection of either kind.
macro_rules! with_connection {
    ($link:expr, $con:ident => $body:expr) => {
        match $link {
            $crate::redis::link::Link::Single(manager) => {
                let mut $con = manager.clone();
                $body
            }
            $crate::redis::link::Link::Cluster(cluster) => {
                let mut $con = cluster.get().await?;
                $body
            }
        }
    };
}
pub(crate) use with_connection;

/// One server (through a reconnecting multiplexed connection) or a cluster.
pub(super) enum Link {
    Single(ConnectionManager),
    Cluster(Box<ClusterLink>),
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
}

impl Failure {
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
        }
    }
}
