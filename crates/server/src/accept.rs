//! Handing accepted connections to the shards.
//!
//! One task accepts on the listening socket and gives each connection to the shard serving the
//! fewest open connections; each shard serves its connections on its own thread (see
//! `docs/architecture.md`, "One thread per webhook"). A webhook is then read, applied by its
//! session's actor and answered on one thread. Balancing by open connections, rather than
//! letting the kernel hash connections over one `SO_REUSEPORT` socket per shard, keeps a few
//! long-lived keep-alive connections (a platform's pool) spread evenly: a hash splits 16 of
//! them 11 to 5 about one time in five, and the busier shard then queues.
//!
//! The acceptor also caps the open connections of the replica (`max_connections`): one over
//! the cap is answered `503 Service Unavailable` with `Retry-After: 1` and a JSON error, then
//! closed, without reaching a shard, so a flood of connections cannot exhaust file
//! descriptors or the shards' memory and the client is told to come back.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A connection on its way to a shard: the socket, unregistered, and its peer.
type Handoff = (std::net::TcpStream, SocketAddr, ConnectionGuard);

/// The open-connection count of one shard, held while a connection lives.
#[derive(Debug)]
pub(crate) struct ConnectionGuard(Arc<AtomicUsize>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a shard accepts from: the connections the acceptor hands it.
#[derive(Debug)]
pub(crate) struct ShardListener {
    incoming: mpsc::UnboundedReceiver<Handoff>,
}

/// The acceptor's side: one sender and one open-connection count per shard.
#[derive(Debug)]
pub(crate) struct Shards {
    senders: Vec<mpsc::UnboundedSender<Handoff>>,
    open: Vec<Arc<AtomicUsize>>,
}

/// A listener per shard, and the acceptor's handles to them.
pub(crate) fn shards(count: usize) -> (Shards, Vec<ShardListener>) {
    let mut senders = Vec::with_capacity(count);
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        listeners.push(ShardListener { incoming: rx });
    }
    let open = (0..count).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    (Shards { senders, open }, listeners)
}

impl Shards {
    /// Accepts on `listener` until `stop` turns true, giving each connection to the shard with
    /// the fewest open ones, and refusing those over `max_connections` open in all.
    pub(crate) async fn accept(
        self,
        listener: TcpListener,
        max_connections: usize,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.wait_for(|stop| *stop) => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_error(err).await;
                    continue;
                }
            };
            // Webhook answers are small and waited on: no Nagle delay.
            let _ = stream.set_nodelay(true);
            if self.open_total() >= max_connections {
                tracing::warn!(%peer, max_connections, "too many open connections; answered 503");
                tokio::spawn(refuse(stream));
                continue;
            }
            let stream = match stream.into_std() {
                Ok(stream) => stream,
                Err(err) => {
                    tracing::warn!(%peer, error = %err, "a connection could not be handed to a shard");
                    continue;
                }
            };
            let shard = self.least_loaded();
            self.open[shard].fetch_add(1, Ordering::Relaxed);
            let guard = ConnectionGuard(Arc::clone(&self.open[shard]));
            // A shard's receiver lives as long as its accept loop: a closed one means the shard
            // is shutting down, and the connection is dropped (closed) with the guard.
            let _ = self.senders[shard].send((stream, peer, guard));
        }
    }

    fn open_total(&self) -> usize {
        self.open
            .iter()
            .map(|open| open.load(Ordering::Relaxed))
            .sum()
    }

    fn least_loaded(&self) -> usize {
        (0..self.open.len())
            .min_by_key(|&shard| self.open[shard].load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}

/// The body of the answer to a connection over the cap.
const REFUSAL_BODY: &str = r#"{"error":{"code":"too_many_connections","message":"this replica has max_connections connections open; retry shortly"}}"#;

/// How long a refused client gets to send its request and read the refusal.
const REFUSAL_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Answers 503 with `REFUSAL_BODY` and closes. The request is read (up to a bound, for at most
/// `REFUSAL_LINGER`) before closing: closing a socket with unread input makes the kernel reset
/// the connection, and the client would see the reset instead of the 503.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        let mut head = [0u8; 4096];
        let mut read = 0;
        // Read until the end of the request head (or the buffer is full), then answer.
        while read < head.len() {
            match stream.read(&mut head[read..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
            if head[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let refusal = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{REFUSAL_BODY}",
            REFUSAL_BODY.len()
        );
        if stream.write_all(refusal.as_bytes()).await.is_ok() {
            let _ = stream.shutdown().await;
            // Drain what else the client sends until it closes.
            let mut rest = [0u8; 1024];
            while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
        }
    })
    .await;
}

/// Too many open files and the like: log, and wait a little rather than spin (as axum does).
async fn accept_error(err: io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
}

/// A connection served by a shard; its shard's open count drops when it closes.
#[derive(Debug)]
pub(crate) struct ShardStream {
    stream: TcpStream,
    _guard: ConnectionGuard,
}

impl ShardListener {
    /// The next connection handed to this shard, registered with this thread's reactor.
    pub(crate) async fn next(&mut self) -> (ShardStream, SocketAddr) {
        loop {
            let Some((stream, peer, guard)) = self.incoming.recv().await else {
                // The acceptor has stopped: nothing more comes; the graceful shutdown ends the
                // serve loop.
                std::future::pending::<()>().await;
                unreachable!("a pending future never completes");
            };
            // Registered with this thread's reactor: the connection is served here.
            let registered = stream
                .set_nonblocking(true)
                .and_then(|()| TcpStream::from_std(stream));
            match registered {
                Ok(stream) => {
                    return (
                        ShardStream {
                            stream,
                            _guard: guard,
                        },
                        peer,
                    );
                }
                Err(err) => {
                    tracing::warn!(%peer, error = %err, "a shard could not take a connection")
                }
            }
        }
    }
}

impl AsyncRead for ShardStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ShardStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_go_to_the_shard_with_the_fewest_open() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        let (shards, mut listeners) = shards(2);
        let open: Vec<_> = shards.open.iter().map(Arc::clone).collect();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let acceptor = tokio::spawn(shards.accept(listener, usize::MAX, stop_rx));

        // Three connections: shard 0, shard 1, shard 0 (both had one).
        let mut clients = Vec::new();
        let mut served = Vec::new();
        for expected in [0, 1, 0] {
            clients.push(tokio::net::TcpStream::connect(local).await.unwrap());
            let (stream, peer) = listeners[expected].next().await;
            assert_eq!(peer, clients.last().unwrap().local_addr().unwrap());
            served.push(stream);
        }
        assert_eq!(open[0].load(Ordering::Relaxed), 2);
        assert_eq!(open[1].load(Ordering::Relaxed), 1);

        // Shard 0's connections close: the next two go there.
        served.remove(0);
        served.remove(1);
        assert_eq!(open[0].load(Ordering::Relaxed), 0);
        for _ in 0..2 {
            clients.push(tokio::net::TcpStream::connect(local).await.unwrap());
            served.push(listeners[0].next().await.0);
        }
        assert_eq!(
            (
                open[0].load(Ordering::Relaxed),
                open[1].load(Ordering::Relaxed)
            ),
            (2, 1)
        );
        stop_tx.send(true).unwrap();
        acceptor.await.unwrap();
    }
}
