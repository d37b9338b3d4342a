//! Serving one shard's connections with hyper, under the HTTP limits a webhook endpoint needs.
//!
//! `axum::serve` offers no knob for them, so each shard runs this loop instead: every
//! connection is an HTTP/1.1 connection of hyper's with
//! * a cap on the request head (request line and headers, `max_header_bytes`, 16 KiB by
//!   default) and on the number of headers (`max_headers`, 100): beyond either, hyper answers
//!   `431 Request Header Fields Too Large` and closes;
//! * a header-read timeout (`header_read_timeout`, 30 s): a client that does not finish sending
//!   a request head in time (a slow-loris client holding connections open byte by byte) is
//!   disconnected, and an idle keep-alive connection is closed after the same time;
//! * the peer address as axum's [`ConnectInfo`], which the IP allowlist reads.
//!
//! The cap on open connections is the acceptor's (`accept.rs`): a connection over it is
//! answered `503` with `Retry-After` before it reaches a shard.
//!
//! Graceful shutdown is axum's: when `stop` turns true the loop stops accepting, every open
//! connection finishes its in-flight request and closes, and `serve_shard` returns when the
//! last one has.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::accept::ShardListener;

/// hyper's default (and the most headers it parses without a heap allocation per request).
pub const DEFAULT_MAX_HEADERS: usize = 100;

/// The limits every connection is served under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request head (request line and headers), bytes; over it, 431.
    pub max_header_bytes: usize,
    /// Most request headers; over it, 431.
    pub max_headers: usize,
    /// Longest time a client may take to send a request head (and longest keep-alive idle).
    pub header_read_timeout: Duration,
    /// Most open webhook connections on this replica; over it, 503 with `Retry-After`.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_headers: DEFAULT_MAX_HEADERS,
            header_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// Serves the connections `listener` hands this shard until `stop` turns true, then drains
/// them (each finishes its in-flight request) and returns.
///
/// Runs on a shard (`Runtime::spawn_on_shards`): each connection is a task of the shard's
/// `LocalSet`, beside the session actors, so that a connection waking an actor (and the actor
/// answering) stays a push onto the thread's local queue (`docs/architecture.md`).
pub(crate) async fn serve_shard(
    mut listener: ShardListener,
    router: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    // Every connection task holds a receiver; `closed()` resolves when the last is dropped.
    let (open_tx, open_rx) = watch::channel(());
    let (drain_tx, drain_rx) = watch::channel(false);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.next() => accepted,
            _ = stopped(&mut stop) => break,
        };
        let service = connection_service(router.clone(), peer);
        let builder = builder(&limits);
        let open = open_rx.clone();
        let mut drain = drain_rx.clone();
        tokio::task::spawn_local(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = stopped(&mut drain) => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            if let Err(err) = served {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(open_rx);
    let _ = drain_tx.send(true);
    open_tx.closed().await;
}

/// Resolves when `flag` turns true (or its sender is gone); holds no borrow of the value
/// across an await, so the future stays `Send`.
async fn stopped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await.map(|_| ());
}

/// hyper's HTTP/1.1 connection builder, configured with `limits`.
fn builder(limits: &HttpLimits) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    // Setting it at all moves header parsing to the heap (hyper measures ~5 %): only when it
    // differs from the default.
    if limits.max_headers != DEFAULT_MAX_HEADERS {
        builder.max_headers(limits.max_headers);
    }
    builder
}

/// The router as a hyper service for one connection, tagging each request with its peer.
fn connection_service(
    router: Router,
    peer: SocketAddr,
) -> TowerToHyperService<
    impl tower::Service<
        hyper::Request<Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static,
> {
    TowerToHyperService::new(
        router.map_request(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        }),
    )
}
