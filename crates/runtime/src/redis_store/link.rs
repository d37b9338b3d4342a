//! The connection to Redis (one server, a cluster, or the master a Sentinel group names) and
//! what its failures mean for the store.
//!
//! One server is reached through a reconnecting multiplexed connection **per thread**: the
//! connection's driver task runs on the runtime of the thread that first used it, so a session
//! actor's command is written, read and answered on the actor's own shard thread, with no hop
//! to another thread and back (which cost more than the command itself).
//!
//! A Sentinel group's master is reached the same way ([`SentinelLink`] holds a [`SingleLink`]);
//! the master's address is asked of the sentinels (`redis::sentinel::SentinelClient`, which
//! also checks the `ROLE` of the node it names) when first needed and again whenever the store
//! calls [`SentinelLink::resolve`]: while Redis counts as down, before each probe, and once a
//! second while it is up. A new address replaces the link's client, and every thread's
//! connection is made again, to the new master.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{Client, ConnectionAddr};
use ::redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};

use super::config::SentinelTarget;
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
            $crate::redis_store::link::Link::Sentinel(sentinel) => {
                let mut $con = sentinel.get().await?;
                $body
            }
        }
    };
}
pub(crate) use with_connection;

/// One server (through a reconnecting multiplexed connection per thread), a cluster, or the
/// master of a Sentinel group (one server, whose address the sentinels give).
pub(super) enum Link {
    Single(Box<SingleLink>),
    Cluster(Box<ClusterLink>),
    Sentinel(Box<SentinelLink>),
}

impl Link {
    /// Redis was found unreachable: every thread makes a new connection on its next command
    /// (a cluster's connection follows the cluster by itself).
    pub(super) fn reset(&self) {
        match self {
            Self::Single(single) => single.reset(),
            Self::Sentinel(sentinel) => sentinel.single.reset(),
            Self::Cluster(_) => {}
        }
    }
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
    /// The server's client; `None` until a Sentinel group's master is known, and replaced
    /// when it changes.
    // std Mutex: held to clone or swap the client, never across an await.
    client: Mutex<Option<Client>>,
    config: ConnectionManagerConfig,
}

impl SingleLink {
    /// Checks that a connection can be made from `client` (the URL is good); connects lazily.
    pub(super) fn new(client: Client, config: ConnectionManagerConfig) -> RedisResult<Self> {
        ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
        let link = Self::unresolved(config);
        link.replace(client);
        Ok(link)
    }

    /// A link to a server not known yet (a Sentinel group's master): [`Self::get`] fails
    /// until [`Self::replace`] names it.
    fn unresolved(config: ConnectionManagerConfig) -> Self {
        Self {
            id: NEXT_LINK.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            client: Mutex::new(None),
            config,
        }
    }

    fn client(&self) -> Option<Client> {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Talks to `client`'s server from now on: every thread's connection is made again.
    fn replace(&self, client: Client) {
        // The client first, the generation after: a thread that sees the new generation
        // makes its connection from the new client.
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
        self.reset();
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
            let client = self.client().ok_or_else(|| {
                RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "the Redis master is not known yet (no sentinel has named it)",
                ))
            })?;
            let manager = ConnectionManager::new_lazy_with_config(client, self.config.clone())?;
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

/// The master of a Sentinel group: a [`SingleLink`] whose client the sentinels name.
pub(super) struct SentinelLink {
    single: SingleLink,
    target: SentinelTarget,
    /// The sentinels' client; `async_get_client` needs it mutably, and one lookup at a time
    /// is enough. Built again, the sentinels' order turned by one, after a lookup that timed
    /// out: the crate takes the sentinels' answers in order, so a frozen first sentinel would
    /// hold every lookup up.
    sentinels: tokio::sync::Mutex<(SentinelClient, usize)>,
    /// The master's address (`host:port`) the link talks to, once named.
    // std Mutex: held to read or swap the address, never across an await.
    master: Mutex<Option<String>>,
    /// Longest wait for the sentinels to name the master (and it to confirm its `ROLE`).
    timeout: Duration,
    /// The last periodic check could not reach the sentinels (logged once, not each second).
    lost: AtomicBool,
}

impl SentinelLink {
    /// A link to the master `target` names; nothing is contacted until the first command or
    /// [`Self::resolve`].
    pub(super) fn new(
        target: SentinelTarget,
        config: ConnectionManagerConfig,
        timeout: Duration,
    ) -> RedisResult<Self> {
        let client = sentinel_client(&target, 0)?;
        Ok(Self {
            single: SingleLink::unresolved(config),
            target,
            sentinels: tokio::sync::Mutex::new((client, 0)),
            master: Mutex::new(None),
            timeout,
            lost: AtomicBool::new(false),
        })
    }

    /// The master's name, as the sentinels know it.
    pub(super) fn master_name(&self) -> &str {
        &self.target.master
    }

    /// The master's address, once named.
    pub(super) fn master(&self) -> Option<String> {
        self.master
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// This thread's connection to the master, the master asked of the sentinels first if it
    /// is not known yet.
    pub(super) async fn get(&self) -> RedisResult<ConnectionManager> {
        if self.master().is_none() {
            self.resolve(false).await?;
        }
        self.single.get()
    }

    /// Asks the sentinels which node is the master (`force`: even if one is known already)
    /// and talks to it from now on. The first master named is logged (info), a change of
    /// master too (warn); addresses only, never a password.
    pub(super) async fn resolve(&self, force: bool) -> RedisResult<()> {
        let mut sentinels = self.sentinels.lock().await;
        if !force && self.master().is_some() {
            // Named while this call waited for the lock.
            return Ok(());
        }
        let client = match tokio::time::timeout(self.timeout, sentinels.0.async_get_client()).await
        {
            Ok(found) => found?,
            Err(_) => {
                // Ask the next sentinel first next time.
                let turn = (sentinels.1 + 1) % self.target.sentinels.len().max(1);
                *sentinels = (sentinel_client(&self.target, turn)?, turn);
                return Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the sentinels did not name the master {:?} within {:?}",
                        self.target.master, self.timeout
                    ),
                )));
            }
        };
        let address = client.get_connection_info().addr().to_string();
        let previous = {
            let mut master = self.master.lock().unwrap_or_else(|e| e.into_inner());
            if master.as_deref() == Some(address.as_str()) {
                return Ok(());
            }
            master.replace(address.clone())
        };
        self.single.replace(client);
        match previous {
            None => tracing::info!(
                master_name = %self.target.master,
                master = %address,
                "Redis master named by Sentinel"
            ),
            Some(previous) => tracing::warn!(
                master_name = %self.target.master,
                master = %address,
                previous = %previous,
                "Redis master changed (a Sentinel failover): talking to the new master"
            ),
        }
        Ok(())
    }

    /// The check made once a second while Redis answers: a failover the old master does not
    /// reveal (it takes writes until the sentinels turn it into a replica, seconds later) is
    /// followed within a second. Sentinels that cannot be reached are logged once, and are no
    /// outage: the master still answers.
    pub(super) async fn check(&self) {
        match self.resolve(true).await {
            Ok(_) => {
                if self.lost.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        master_name = %self.target.master,
                        "the sentinels answer again"
                    );
                }
            }
            Err(err) => {
                if !self.lost.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        master_name = %self.target.master,
                        error = %err,
                        "the sentinels do not name the Redis master (the master still \
                         answers; a failover would be followed once they do)"
                    );
                }
            }
        }
    }
}

/// The sentinels' client of `target`, its sentinels turned by `turn` (see
/// [`SentinelLink::resolve`]).
fn sentinel_client(target: &SentinelTarget, turn: usize) -> RedisResult<SentinelClient> {
    let mut sentinels: Vec<ConnectionAddr> = target
        .sentinels
        .iter()
        .map(|(host, port)| ConnectionAddr::Tcp(host.clone(), *port))
        .collect();
    if !sentinels.is_empty() {
        let turn = turn % sentinels.len();
        sentinels.rotate_left(turn);
    }
    let mut builder =
        SentinelClientBuilder::new(sentinels, &target.master, SentinelServerType::Master)?
            .set_client_to_redis_db(target.db);
    if let Some(username) = &target.username {
        builder = builder.set_client_to_redis_username(username);
    }
    if let Some(password) = &target.password {
        builder = builder.set_client_to_redis_password(password);
    }
    builder.build()
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
    /// failover, a master short of replicas (`NOREPLICAS`), the cluster down or resharding,
    /// no master named by the sentinels.
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
        } else if err.code() == Some("NOREPLICAS")
            || matches!(
                err.kind(),
                ErrorKind::MasterNameNotFoundBySentinel | ErrorKind::NoValidReplicasFoundBySentinel
            )
        {
            // A master with too few replicas to take writes (`min-replicas-to-write`: a master
            // that was just failed over from), or sentinels that name no usable master (a
            // failover under way): Redis is away for now.
            ErrorClass::Busy
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
