//! Performing the requests of fetch nodes, for the session actor.
//!
//! One pooled HTTP/1.1 client (hyper-util's, with rustls for `https`, trusting the system's
//! certificate store) serves every session. Each request is bounded four ways: its node's
//! `timeout_ms`, what is left of the webhook's answer budget (the platform must get a callflow
//! in time whatever the backend does), a per-host cap on requests in flight (a slow backend
//! cannot take every connection), and a cap on the answer's size. Redirects are not followed
//! and only `http`/`https` URLs are requested.
//!
//! `{{env.NAME}}` values are filled here, from [`FetchConfig::env`]; they never reach logs
//! (which show the URL as written, with names), metrics or the session's state.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use switchboard_flow::fetch::{FetchFailure, FetchOutcome, FetchRequest, Method};
use switchboard_flow::{Flow, Pending, Reply, SessionState, Signal, Step, resume};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::clock::Clock;

/// How fetch nodes' requests are made.
#[derive(Clone)]
pub struct FetchConfig {
    /// The largest answer body read; a larger one takes `on_error`.
    pub max_body: usize,
    /// Most requests in flight to one host (`host:port`); more wait, within their deadline.
    pub per_host: usize,
    /// The whole webhook's answer budget: a fetch ends by the time 90 % of it has passed since
    /// the webhook arrived (the rest is kept for the store write and the answer).
    pub answer_budget: Duration,
    /// The values of the allow-listed environment variables (`fetch_env`), by name.
    pub env: BTreeMap<String, String>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            max_body: 64 * 1024,
            per_host: 64,
            answer_budget: Duration::from_secs(3),
            env: BTreeMap::new(),
        }
    }
}

impl fmt::Debug for FetchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchConfig")
            .field("max_body", &self.max_body)
            .field("per_host", &self.per_host)
            .field("answer_budget", &self.answer_budget)
            // Names only: the values are secrets.
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The shared client (the runtime's; `switchboard flow simulate` makes its own).
pub struct Fetcher {
    client: Client<Connector, Full<Bytes>>,
    hosts: DashMap<String, Arc<Semaphore>>,
    config: FetchConfig,
}

impl Fetcher {
    /// A client; `Err` says why TLS could not be set up.
    pub fn new(config: FetchConfig) -> Result<Self, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(4)));
        let mut roots = rustls::RootCertStore::empty();
        // Certificates the system store cannot parse are skipped; none at all is fine for a
        // server whose flows only fetch over http.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("fetch TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = Connector {
            http,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        };
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            client,
            hosts: DashMap::new(),
            config,
        })
    }

    /// Finishes a step stopped at a fetch node: performs its requests (there may be several in
    /// a row) and resumes the flow with each outcome. `received` is when the webhook arrived
    /// on `clock`, the runtime's: the time the flow sees after each fetch is read from it too.
    pub(crate) async fn complete(
        &self,
        session: &str,
        flow: &Flow,
        state: &mut SessionState,
        mut pending: Box<Pending>,
        received: DateTime<Utc>,
        clock: &dyn Clock,
    ) -> Reply {
        // The webhook's deadline, from when it arrived (it may have waited for its session).
        let budget = self.config.answer_budget.mul_f64(0.9);
        let waited = (clock.now() - received).to_std().unwrap_or_default();
        let deadline = tokio::time::Instant::now() + budget.saturating_sub(waited);
        let mut timed = Vec::new();
        loop {
            let node = &flow.node(pending.node).name;
            let started = Instant::now();
            let answer = self.fetch(session, &pending.request, deadline).await;
            timed.push((pending.node, started.elapsed()));
            let outcome = answer.outcome();
            if let FetchOutcome::Failed(failure) = outcome {
                // No URL: after templating it may hold what the caller entered.
                tracing::warn!(flow = %flow.id, node = %node, ?failure, "fetch failed");
            }
            match resume(flow, state, pending, outcome, clock.now()) {
                Step::Reply(reply) => {
                    record(flow, &reply, &timed);
                    return reply;
                }
                Step::Fetch(next) => pending = next,
            }
        }
    }

    /// Performs one request, ending by `deadline` at the latest.
    pub async fn fetch(
        &self,
        session: &str,
        request: &FetchRequest,
        deadline: tokio::time::Instant,
    ) -> Fetched {
        match self.perform(session, request, deadline).await {
            Ok((status, body)) => Fetched::Answer { status, body },
            Err(outcome) => Fetched::Failed(outcome),
        }
    }

    /// One request: `Ok((status, body))`, or the outcome without a usable answer.
    async fn perform(
        &self,
        session: &str,
        request: &FetchRequest,
        deadline: tokio::time::Instant,
    ) -> Result<(u16, Bytes), FetchOutcome<'static>> {
        let bad = FetchOutcome::Failed(FetchFailure::BadRequest);
        let deadline = deadline
            .min(tokio::time::Instant::now() + Duration::from_millis(request.timeout_ms.into()));
        let env = |name: &str| self.config.env.get(name).map(String::as_str);
        let url = request.url.resolve(env).map_err(|_| bad)?;
        let uri: Uri = url.parse().map_err(|_| bad)?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(bad);
        }
        let host = uri.authority().map(|a| a.as_str().to_owned()).ok_or(bad)?;
        let method = match request.method {
            Method::Get => hyper::Method::GET,
            Method::Post => hyper::Method::POST,
            Method::Put => hyper::Method::PUT,
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("accept", "application/json")
            .header(
                "user-agent",
                concat!("switchboard/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &request.headers {
            let value = value.resolve(env).map_err(|_| bad)?;
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad)?;
            builder = builder.header(name, HeaderValue::from_str(&value).map_err(|_| bad)?);
        }
        if request.method == Method::Post {
            // The same for every replica that runs this step, so a backend can de-duplicate a
            // retry after a replica was lost mid-request.
            let key = format!("{session}:{}", request.step_key);
            builder = builder.header(
                "idempotency-key",
                HeaderValue::from_str(&key).map_err(|_| bad)?,
            );
        }
        let body = match &request.body {
            Some(body) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(body.clone()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).map_err(|_| bad)?;
        let exchange = async {
            let slots = self
                .hosts
                .entry(host)
                .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_host)))
                .clone();
            let _slot = slots.acquire_owned().await.map_err(|_| bad)?;
            let response = self
                .client
                .request(request)
                .await
                .map_err(|_| FetchOutcome::Failed(FetchFailure::Unreachable))?;
            let status = response.status().as_u16();
            let too_large = FetchOutcome::Failed(FetchFailure::TooLarge);
            let declared = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > self.config.max_body as u64) {
                return Err(too_large);
            }
            let body = Limited::new(response.into_body(), self.config.max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        too_large
                    } else {
                        FetchOutcome::Failed(FetchFailure::Unreachable)
                    }
                })?
                .to_bytes();
            Ok((status, body))
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(result) => result,
            Err(_) => Err(FetchOutcome::TimedOut),
        }
    }
}

/// What a request got.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// An answer, any status.
    Answer {
        /// The HTTP status.
        status: u16,
        /// The body, at most the size cap.
        body: Bytes,
    },
    /// No usable answer.
    Failed(FetchOutcome<'static>),
}

impl Fetched {
    /// As the flow engine takes it.
    pub fn outcome(&self) -> FetchOutcome<'_> {
        match self {
            Self::Answer { status, body } => FetchOutcome::Response {
                status: *status,
                body,
            },
            Self::Failed(outcome) => *outcome,
        }
    }
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .field("hosts", &self.hosts.len())
            .finish()
    }
}

/// Metrics of a step's fetches: latency per flow and node, outcome per flow, node and result.
fn record(flow: &Flow, reply: &Reply, timed: &[(switchboard_flow::NodeId, Duration)]) {
    for (node, elapsed) in timed {
        let name = flow.node(*node).name.clone();
        metrics::histogram!("switchboard_fetch_duration_seconds", "flow" => flow.id.clone(), "node" => name)
            .record(elapsed.as_secs_f64());
    }
    for signal in &reply.trace.signals {
        if let Signal::Fetch(node, result) = signal {
            let name = flow.node(*node).name.clone();
            metrics::counter!("switchboard_fetch_requests_total", "flow" => flow.id.clone(), "node" => name, "outcome" => result.label())
                .increment(1);
        }
    }
}

/// TCP, and TLS over it for `https`.
#[derive(Clone)]
struct Connector {
    http: HttpConnector,
    tls: tokio_rustls::TlsConnector,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().unwrap_or_default().to_owned();
        let connecting = self.http.call(uri);
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            if !https {
                return Ok(TokioIo::new(Stream::Plain(tcp)));
            }
            let name = rustls::pki_types::ServerName::try_from(host)?;
            let stream = tls.connect(name, tcp).await?;
            Ok(TokioIo::new(Stream::Tls(Box::new(stream))))
        })
    }
}

/// A connection to a backend.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Self::Plain(tcp) => tcp.connected(),
            Self::Tls(tls) => tls.get_ref().0.connected(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
