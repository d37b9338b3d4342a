//! A TLS front for a plain-HTTP test service ([`TlsFront`]): it terminates TLS on a port of its
//! own, with a certificate from [`crate::make_certificates`], and passes the bytes on to
//! `127.0.0.1:target`. The emulator speaks plain HTTP; behind this front it is an `https://`
//! Callflows API whose certificate only the test's CA vouches for.
//!
//! Like [`crate::Proxy`], it runs on a thread with its own Tokio runtime, so it serves whatever
//! the test's runtime is busy with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::Certificates;

/// Counts of a [`TlsFront`]'s connections.
#[derive(Debug, Default)]
struct Counts {
    handshakes: AtomicU64,
    refused: AtomicU64,
}

/// TLS on `127.0.0.1:PORT` in front of `127.0.0.1:target`. Stopped when dropped.
#[derive(Debug)]
pub struct TlsFront {
    addr: SocketAddr,
    counts: Arc<Counts>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// Serves `certificates`' server certificate on a port of its own, relaying to `target`.
    pub fn start(certificates: &Certificates, target: u16) -> Self {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certificates.cert)
            .expect("the server certificate is readable")
            .collect::<Result<_, _>>()
            .expect("the server certificate is PEM");
        let key = PrivateKeyDer::from_pem_file(&certificates.key).expect("the server key is PEM");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("the certificate and key match");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("a local address");
        let counts = Arc::new(Counts::default());
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("tls-front-{}", addr.port()))
            .spawn({
                let counts = Arc::clone(&counts);
                move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("the TLS front's runtime");
                    runtime.block_on(async move {
                        let listener = TcpListener::from_std(listener).expect("a Tokio listener");
                        tokio::select! {
                            () = serve(listener, acceptor, target, counts) => {}
                            _ = stopped => {}
                        }
                    });
                }
            })
            .expect("the TLS front's thread starts");
        Self {
            addr,
            counts,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://localhost:PORT`: a name the certificate holds.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port())
    }

    /// TLS handshakes completed (connections relayed).
    pub fn handshakes(&self) -> u64 {
        self.counts.handshakes.load(Ordering::Relaxed)
    }

    /// Handshakes that failed: a client that does not trust the certificate ends them.
    pub fn refused(&self) -> u64 {
        self.counts.refused.load(Ordering::Relaxed)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    target: u16,
    counts: Arc<Counts>,
) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let mut tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(_) => {
                    counts.refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            counts.handshakes.fetch_add(1, Ordering::Relaxed);
            let Ok(mut backend) = TcpStream::connect(("127.0.0.1", target)).await else {
                return; // the service is down: the client sees the connection close
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut backend).await;
        });
    }
}
