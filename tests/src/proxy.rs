//! A TCP relay a test puts between a replica and Redis, to make the link slow or cut it
//! ([`Proxy`]): the faults of a network rather than of Redis, which keeps serving everyone
//! else.
//!
//! It runs on a thread of its own with its own Tokio runtime, so it relays whatever the test's
//! runtime is busy with, and a synchronous test can drive it as well as an async one. Every
//! connection it accepts is relayed to the target on a connection of its own; the link's state
//! ([`LinkState`]) and latency can be changed at any time and apply to the connections already
//! open.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// What the link does with the bytes it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Relayed, after the latency set for each direction.
    Open,
    /// Every relayed connection was closed when the link was cut; a new one is accepted and
    /// closed at once, so the client's next read sees the end of the stream.
    Cut,
    /// Held: nothing is delivered either way, on the connections open before and those made
    /// since, and nothing is closed. What was held is delivered when the link is restored, in
    /// order, as TCP retransmits across a partition that heals.
    Blackhole,
}

#[derive(Debug, Clone)]
struct Settings {
    state: LinkState,
    /// Bumped by every cut: the connections relayed before it are closed.
    epoch: u64,
    /// Added to every chunk from the client to the target, and back: a uniform pick in the range.
    upstream: RangeInclusive<Duration>,
    downstream: RangeInclusive<Duration>,
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Upstream,
    Downstream,
}

/// A TCP relay to `127.0.0.1:target` on a port of its own. Stopped (every connection closed)
/// when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    settings: watch::Sender<Settings>,
    accepted: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Relays `127.0.0.1:PORT` (a port of its own, returned by [`Proxy::port`]) to
    /// `127.0.0.1:target`, open and without added latency.
    pub fn start(target: u16) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("a local address");
        let (settings, _) = watch::channel(Settings {
            state: LinkState::Open,
            epoch: 0,
            upstream: Duration::ZERO..=Duration::ZERO,
            downstream: Duration::ZERO..=Duration::ZERO,
        });
        let accepted = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn({
                let settings = settings.subscribe();
                let accepted = Arc::clone(&accepted);
                move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("the proxy's runtime");
                    runtime.block_on(async move {
                        let listener = TcpListener::from_std(listener).expect("a Tokio listener");
                        tokio::select! {
                            () = relay(listener, target, settings, accepted) => {}
                            _ = stopped => {}
                        }
                    });
                    // Dropping the runtime cancels every link: their sockets close.
                }
            })
            .expect("the proxy's thread starts");
        Self {
            addr,
            settings,
            accepted,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `redis://127.0.0.1:PORT`: the target's URL, through the relay.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Adds a latency to every chunk relayed, picked uniformly in `upstream` (client to target)
    /// and `downstream` (back); the order of the bytes is kept. `ZERO..=ZERO` for none.
    pub fn set_latency(
        &self,
        upstream: RangeInclusive<Duration>,
        downstream: RangeInclusive<Duration>,
    ) {
        self.settings.send_modify(|s| {
            s.upstream = upstream;
            s.downstream = downstream;
        });
    }

    /// Cuts the link ([`LinkState::Cut`]): closes every relayed connection, and each new one
    /// as soon as it is accepted.
    pub fn cut(&self) {
        self.settings.send_modify(|s| {
            s.state = LinkState::Cut;
            s.epoch += 1;
        });
    }

    /// Holds every byte ([`LinkState::Blackhole`]) until [`Proxy::restore`].
    pub fn blackhole(&self) {
        self.settings
            .send_modify(|s| s.state = LinkState::Blackhole);
    }

    /// Opens the link again: new connections are relayed, and bytes held are delivered.
    pub fn restore(&self) {
        self.settings.send_modify(|s| s.state = LinkState::Open);
    }

    /// The link's state now.
    pub fn state(&self) -> LinkState {
        self.settings.borrow().state
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn relay(
    listener: TcpListener,
    target: u16,
    settings: watch::Receiver<Settings>,
    accepted: Arc<AtomicU64>,
) {
    while let Ok((client, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::Relaxed);
        let (state, epoch) = {
            let s = settings.borrow();
            (s.state, s.epoch)
        };
        if state == LinkState::Cut {
            drop(client);
            continue;
        }
        let settings = settings.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                return; // the target is down: the client sees the connection close
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let mut cut = settings.clone();
            tokio::select! {
                _ = async {
                    tokio::join!(
                        pump(client_read, server_write, settings.clone(), Direction::Upstream),
                        pump(server_read, client_write, settings, Direction::Downstream),
                    )
                } => {}
                // A cut after this connection was made closes it (both halves are dropped).
                _ = cut.wait_for(|s| s.epoch != epoch) => {}
            }
        });
    }
}

/// Copies `from` to `to`, each chunk delayed by the latency of `direction` and held while the
/// link is blackholed; ends at the end of `from`, once everything read is delivered.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    settings: watch::Receiver<Settings>,
    direction: Direction,
) {
    // Unbounded, as the kernel's buffers and retransmissions are, for what a test sends.
    let (chunks, mut delivery) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = {
        let settings = settings.clone();
        async move {
            let mut buffer = vec![0; 16 * 1024];
            let mut last = Instant::now();
            loop {
                let n = match from.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let delay = {
                    let s = settings.borrow();
                    let range = match direction {
                        Direction::Upstream => s.upstream.clone(),
                        Direction::Downstream => s.downstream.clone(),
                    };
                    if range.start() >= range.end() {
                        *range.start()
                    } else {
                        rand::rng().random_range(range)
                    }
                };
                // Never before the chunk ahead of it: the stream keeps its order.
                last = last.max(Instant::now() + delay);
                if chunks.send((last, buffer[..n].to_vec())).is_err() {
                    return;
                }
            }
        }
    };
    let write = async move {
        let mut open = settings;
        while let Some((at, chunk)) = delivery.recv().await {
            tokio::time::sleep_until(at).await;
            if open
                .wait_for(|s| s.state != LinkState::Blackhole)
                .await
                .is_err()
                || to.write_all(&chunk).await.is_err()
            {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An echo server on a port of its own, on a thread.
    fn echo() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut buffer = [0; 1024];
                    while let Ok(n) = stream.read(&mut buffer) {
                        if n == 0 || stream.write_all(&buffer[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn connect(proxy: &Proxy) -> std::net::TcpStream {
        let stream = std::net::TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    }

    fn round_trip(stream: &mut std::net::TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(text)?;
        let mut reply = vec![0; text.len()];
        stream.read_exact(&mut reply)?;
        Ok(reply)
    }

    #[test]
    fn relays_delays_cuts_holds_and_restores() {
        let proxy = Proxy::start(echo());
        let mut stream = connect(&proxy);
        assert_eq!(round_trip(&mut stream, b"one").unwrap(), b"one");

        // 40 ms each way: a round trip takes at least 80 ms, and the bytes keep their order.
        let ms = Duration::from_millis(40);
        proxy.set_latency(ms..=ms, ms..=ms);
        let sent = Instant::now();
        assert_eq!(round_trip(&mut stream, b"two").unwrap(), b"two");
        assert!(sent.elapsed() >= 2 * ms, "{:?}", sent.elapsed());
        proxy.set_latency(
            Duration::ZERO..=Duration::ZERO,
            Duration::ZERO..=Duration::ZERO,
        );

        // Held: no answer, then the answer once restored, on the same connection.
        proxy.blackhole();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        stream.write_all(b"held").unwrap();
        let mut reply = [0; 4];
        let err = stream.read_exact(&mut reply).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{err:?}"
        );
        proxy.restore();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"held");

        // Cut: the open connection ends, and so does a new one; restored, a new one works.
        proxy.cut();
        let mut end = [0; 1];
        assert_eq!(stream.read(&mut end).unwrap_or(0), 0);
        let mut refused = connect(&proxy);
        assert!(round_trip(&mut refused, b"x").is_err());
        assert_eq!(proxy.state(), LinkState::Cut);
        proxy.restore();
        let mut again = connect(&proxy);
        assert_eq!(round_trip(&mut again, b"three").unwrap(), b"three");
        assert!(proxy.accepted() >= 3);
    }
}
