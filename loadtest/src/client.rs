//! The webhook client: HTTP/1.1 with a keep-alive connection pool, to one or more targets.
//!
//! One [`WebhookClient`] is shared by every virtual call of a run. Connections are kept alive
//! and reused (hyper-util's pool), `TCP_NODELAY` is set, bodies are `Bytes` handed over without
//! copying, and the whole exchange (connect, send, read the body) runs under one timeout. An
//! optional cap on connections (`--connections`) is a fair semaphore: callers wait their turn,
//! and that wait counts in the latency measured from the intended send time.
//!
//! [`Targets`] spreads deliveries over several replicas, round-robin or at random.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The largest answer body read; a callflow is at most a few tens of kilobytes.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why a target URL is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a URL.
    #[error("{url:?} is not a URL ({reason}); expected e.g. http://127.0.0.1:8080")]
    Invalid {
        /// The URL given.
        url: String,
        /// The parser's reason.
        reason: String,
    },
    /// Not plain http.
    #[error("{url:?}: only http:// targets are supported; put TLS termination in front")]
    Scheme {
        /// The URL given.
        url: String,
    },
}

/// Parses a target. A URL without a path (or with just `/`) gets `/webhooks`, the server's
/// webhook route; a URL with a path is used as it is.
pub fn parse_target(url: &str) -> Result<Uri, TargetError> {
    let uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| TargetError::Invalid {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    match uri.scheme_str() {
        Some("http") => {}
        None => {
            return Err(TargetError::Invalid {
                url: url.to_owned(),
                reason: "no scheme".to_owned(),
            });
        }
        Some(_) => {
            return Err(TargetError::Scheme {
                url: url.to_owned(),
            });
        }
    }
    let Some(authority) = uri.authority() else {
        return Err(TargetError::Invalid {
            url: url.to_owned(),
            reason: "no host".to_owned(),
        });
    };
    let path = uri.path_and_query().map_or("", |p| p.as_str());
    let path = if path.is_empty() || path == "/" {
        "/webhooks"
    } else {
        path
    };
    Uri::builder()
        .scheme("http")
        .authority(authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| TargetError::Invalid {
            url: url.to_owned(),
            reason: e.to_string(),
        })
}

/// How deliveries are spread over targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Select {
    /// In turn.
    #[default]
    RoundRobin,
    /// Uniformly at random.
    Random,
}

/// The targets of a run.
#[derive(Debug)]
pub struct Targets {
    uris: Vec<Uri>,
    select: Select,
    next: AtomicUsize,
}

impl Targets {
    /// Targets to spread over; there must be at least one.
    pub fn new(uris: Vec<Uri>, select: Select) -> Self {
        Self {
            uris,
            select,
            next: AtomicUsize::new(0),
        }
    }

    /// How many targets.
    pub fn len(&self) -> usize {
        self.uris.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.uris.is_empty()
    }

    /// The next target to use; a random choice draws from `rng`, so that a seeded run picks
    /// the same targets again.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> &Uri {
        self.get(self.pick_index(rng))
    }

    /// Like [`Targets::pick`], but the target's index in the list (what the stats count by).
    pub fn pick_index<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        match (self.uris.len(), self.select) {
            (0 | 1, _) => 0,
            (n, Select::RoundRobin) => self.next.fetch_add(1, Ordering::Relaxed) % n,
            (n, Select::Random) => rng.random_range(0..n),
        }
    }

    /// Target `i`.
    pub fn get(&self, i: usize) -> &Uri {
        &self.uris[i % self.uris.len()]
    }

    /// All targets, as given.
    pub fn uris(&self) -> &[Uri] {
        &self.uris
    }
}

/// What came back for one delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An HTTP answer (any status).
    Answered {
        /// The HTTP status.
        status: u16,
        /// The body.
        body: Bytes,
    },
    /// No complete answer within the timeout.
    Timeout,
    /// The connection failed.
    Transport {
        /// `connect`, `closed` or `body`.
        kind: &'static str,
        /// The error, for the report.
        message: String,
    },
}

/// One request and its timing.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What came back.
    pub reply: Reply,
    /// When the request went out (after waiting for a connection slot).
    pub sent: Instant,
    /// When the answer was complete.
    pub done: Instant,
}

/// Settings of the client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Deadline of one exchange.
    pub timeout: Duration,
    /// Sent as `Authorization`, as the platform does with a webhook's `httpAuthHeader`.
    pub authorization: Option<String>,
    /// The most connections open at once (`None`: as many as requests in flight).
    pub connections: Option<usize>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            authorization: None,
            connections: None,
        }
    }
}

/// The shared HTTP client.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    authorization: Option<HeaderValue>,
    slots: Option<Arc<Semaphore>>,
}

impl WebhookClient {
    /// A client with a keep-alive pool. Fails only on an authorization value that is not a
    /// valid header.
    pub fn new(config: &ClientConfig) -> Result<Self, String> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(usize::MAX)
            .build(connector);
        let authorization = config
            .authorization
            .as_deref()
            .map(|v| {
                HeaderValue::from_str(v)
                    .map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
                    .map_err(|_| "--auth: not a valid HTTP header value (no control characters or line breaks)".to_owned())
            })
            .transpose()?;
        Ok(Self {
            client,
            timeout: config.timeout,
            authorization,
            slots: config
                .connections
                .map(|n| Arc::new(Semaphore::new(n.max(1)))),
        })
    }

    /// POSTs a JSON body and reads the answer.
    pub async fn post(&self, uri: &Uri, body: Bytes) -> Exchange {
        // Held for the whole exchange: a connection is busy until its answer is read.
        let _slot = match &self.slots {
            Some(slots) => slots.clone().acquire_owned().await.ok(),
            None => None,
        };
        let sent = Instant::now();
        let reply = match tokio::time::timeout(self.timeout, self.exchange(uri, body)).await {
            Ok(reply) => reply,
            Err(_) => Reply::Timeout,
        };
        Exchange {
            reply,
            sent,
            done: Instant::now(),
        }
    }

    async fn exchange(&self, uri: &Uri, body: Bytes) -> Reply {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        let response = match self.client.request(request).await {
            Ok(response) => response,
            Err(err) => {
                return Reply::Transport {
                    kind: if err.is_connect() {
                        "connect"
                    } else {
                        "closed"
                    },
                    message: error_chain(&err),
                };
            }
        };
        let status = response.status().as_u16();
        match Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
        {
            Ok(collected) => Reply::Answered {
                status,
                body: collected.to_bytes(),
            },
            Err(err) => Reply::Transport {
                kind: "body",
                message: format!("reading the answer: {err}"),
            },
        }
    }
}

/// Checks that a target accepts TCP connections, so that a wrong URL or a server that is not
/// running is reported once, as a sentence, instead of as thousands of failed deliveries.
pub async fn check_reachable(uri: &Uri, timeout: Duration) -> Result<(), String> {
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(format!(
            "cannot reach {uri}: {err}. Is the server running, and are the host and port right?"
        )),
        Err(_) => Err(format!(
            "cannot reach {uri}: no connection within {timeout:?}. Is the host right and not \
             firewalled?"
        )),
    }
}

/// An error and its causes on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_without_path_gets_webhooks() {
        let t = |s| parse_target(s).map(|u| u.to_string());
        assert_eq!(
            t("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/webhooks"
        );
        assert_eq!(
            t("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080/webhooks"
        );
        assert_eq!(
            t("http://lb:80/v1/vca?x=1").unwrap(),
            "http://lb:80/v1/vca?x=1"
        );
        assert!(matches!(
            parse_target("https://x"),
            Err(TargetError::Scheme { .. })
        ));
        assert!(matches!(
            parse_target("127.0.0.1:8080"),
            Err(TargetError::Invalid { .. })
        ));
        assert!(matches!(
            parse_target("http://"),
            Err(TargetError::Invalid { .. })
        ));
    }

    #[test]
    fn round_robin_cycles() {
        let uris = ["http://a/", "http://b/"]
            .map(|u| parse_target(u).unwrap())
            .to_vec();
        let t = Targets::new(uris, Select::RoundRobin);
        let mut rng = rand::rng();
        let picks: Vec<String> = (0..4).map(|_| t.pick(&mut rng).to_string()).collect();
        assert_eq!(picks, ["http://a/webhooks", "http://b/webhooks"].repeat(2));
    }
}
