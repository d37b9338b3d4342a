//! The 8x8 Callflows API client: starts an outbound session.
//!
//! `POST {base}/api/v1/subaccounts/{subAccountId}/callflows` with `Authorization: Bearer
//! {apiKey}` and `{"callflow": [...], "clientActionId"?, "clientRequestId", "validUntil"?}`.
//! Every answer the platform documents becomes an [`ApiError`] variant carrying the platform's
//! own `statusCode` and `statusMessage`, so a campaign can report each row's refusal as 8x8
//! worded it.
//!
//! **Retries.** A request is retried, with exponential backoff, only when the platform cannot
//! have created the session: the connection was refused or failed before the request was sent,
//! or the platform answered 429 or a 5xx with `NOT_CREATED` (a TLS certificate that is not
//! trusted is not retried: it would be refused again). Every attempt carries the same
//! `clientRequestId`, which the platform uses to recognise a repeat. A timeout after the
//! request went out is *not* retried: the session may exist, and the caller must decide.
//!
//! **TLS.** An `https://` base URL (8x8's own, `https://voice.8x8.com`) is reached over rustls
//! with ring, trusting the system's certificate authorities, or only those of
//! [`ApiConfig::ca_file`] (a private CA, or a test's); `http://` stays for a local emulator or
//! a proxy.
//!
//! The API key is never logged: [`ApiConfig`]'s `Debug` prints it redacted, and errors never
//! include request headers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::{Deserialize, Serialize};
use switchboard_protocol::{Action, ClientActionId};

/// The largest answer read; the platform's are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Where the API is and who we are.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// `https://voice.8x8.com` or the emulator's `http://127.0.0.1:9000`; no trailing path.
    pub base_url: String,
    /// PEM file of the certificate authorities trusted for an `https://` base URL instead of
    /// the system's (a private CA, or a test's).
    pub ca_file: Option<PathBuf>,
    /// The sub-account (`subAccountId`) the calls are placed from.
    pub sub_account: String,
    /// The sub-account's API key, sent as `Authorization: Bearer`.
    pub api_key: String,
    /// Deadline of one attempt (connect, send, read the answer).
    pub timeout: Duration,
    /// Attempts after the first, when a retry is safe.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("base_url", &self.base_url)
            .field("ca_file", &self.ca_file)
            .field("sub_account", &self.sub_account)
            .field("api_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl ApiConfig {
    /// A configuration with the default timeout (10 s), 3 retries and 200 ms first backoff,
    /// trusting the system's certificate authorities.
    pub fn new(
        base_url: impl Into<String>,
        sub_account: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            ca_file: None,
            sub_account: sub_account.into(),
            api_key: api_key.into(),
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

/// One request: the callflow (first action `makeCall`) and its idempotency key.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    /// The actions; the platform requires the first to be `makeCall` (-1013).
    pub callflow: Vec<Action>,
    /// Echoed on the session's first `CALL_ACTION`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_action_id: Option<ClientActionId>,
    /// Unique per call attempt; the same on every retry of it.
    pub client_request_id: String,
    /// `YYYY-MM-DDTHH:MM:SS.SSSZ`: the platform does not place the call after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

/// A created session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The platform's session id, named by every webhook of the call.
    pub session_id: String,
    /// The platform's id of the request.
    pub call_flow_request_id: String,
    /// How many attempts it took (1: no retry).
    pub attempts: u32,
}

/// Why a session was not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 401: the API key is missing or wrong.
    #[error(
        "the Callflows API refused the API key (401 {code}): {message}; check the sub-account's API key"
    )]
    Unauthorized {
        /// The platform's `statusCode`.
        code: i32,
        /// The platform's `statusMessage`.
        message: String,
    },
    /// 404: no such sub-account.
    #[error("the Callflows API does not know the sub-account (404): {message}")]
    SubAccountNotFound {
        /// The platform's `statusMessage`.
        message: String,
    },
    /// 400 / 422: the platform refused this callflow (-1013 first action not `makeCall`, -1017
    /// a bad number, -1014 a caller id not whitelisted, -1015 `validUntil` passed, ...).
    #[error("the Callflows API refused the call ({status} {code}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The platform's `statusCode`.
        code: i32,
        /// The platform's `statusMessage`.
        message: String,
    },
    /// 429 or 5xx, still so after every retry.
    #[error("the Callflows API failed ({status}) {attempts} times: {message}")]
    Server {
        /// The HTTP status of the last attempt.
        status: u16,
        /// The platform's `statusMessage`, or the body.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// No connection could be made, after every retry.
    #[error("cannot reach the Callflows API at {url} ({attempts} attempts): {reason}")]
    Unreachable {
        /// The request URL.
        url: String,
        /// The last connection error.
        reason: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The request was sent but no answer came in time: the session may or may not exist.
    #[error("the Callflows API did not answer within {0:?}; the call may have been placed")]
    Timeout(Duration),
    /// An answer the API does not document.
    #[error("unexpected answer from the Callflows API ({status}): {body}")]
    Unexpected {
        /// The HTTP status.
        status: u16,
        /// The body, shortened.
        body: String,
    },
    /// The configuration cannot make a request (a bad base URL).
    #[error("Callflows API configuration: {0}")]
    Config(String),
}

impl ApiError {
    /// The platform's `statusCode`, when it gave one.
    pub fn status_code(&self) -> Option<i32> {
        match self {
            Self::Unauthorized { code, .. } | Self::Rejected { code, .. } => Some(*code),
            Self::SubAccountNotFound { .. } => Some(404),
            _ => None,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { .. } => Some(401),
            Self::SubAccountNotFound { .. } => Some(404),
            Self::Rejected { status, .. }
            | Self::Server { status, .. }
            | Self::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A short metric label: the HTTP status, or `unreachable`, `timeout`, `config`.
    pub fn label(&self) -> String {
        match (self, self.http_status()) {
            (_, Some(status)) => status.to_string(),
            (Self::Unreachable { .. }, None) => "unreachable".to_owned(),
            (Self::Timeout(_), None) => "timeout".to_owned(),
            _ => "config".to_owned(),
        }
    }

    /// Whether the same request may succeed later (a campaign retries such rows; a refusal of
    /// the request itself, like a bad number or key, never succeeds).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Server { .. } | Self::Unreachable { .. } | Self::Timeout(_)
        )
    }
}

/// The API's answer body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Answer {
    session_id: Option<String>,
    session_status: Option<String>,
    call_flow_request_id: Option<String>,
    status_code: Option<i32>,
    status_message: Option<String>,
}

/// How one attempt ended.
enum Attempt {
    Done(Result<Created, ApiError>),
    /// Safe to retry: the error to report if no retry is left.
    Retry(ApiError),
}

/// The Callflows API client; cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct CallflowsClient {
    config: ApiConfig,
    url: Uri,
    authorization: HeaderValue,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl CallflowsClient {
    /// A client for `config`; fails on a base URL, key or CA file that cannot make a
    /// request.
    pub fn new(config: ApiConfig) -> Result<Self, ApiError> {
        let base = config.base_url.trim_end_matches('/');
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(ApiError::Config(format!(
                "base URL {base:?} must start with https:// (or http:// for a local emulator)"
            )));
        }
        if config.ca_file.is_some() && !base.starts_with("https://") {
            return Err(ApiError::Config(format!(
                "a CA file is set but the base URL {base:?} is not https://; write https://, or \
                 unset the CA file"
            )));
        }
        let url: Uri = format!("{base}/api/v1/subaccounts/{}/callflows", config.sub_account)
            .parse()
            .map_err(|e| {
                ApiError::Config(format!(
                    "base URL {base:?} with sub-account {:?} is not a URL: {e}",
                    config.sub_account
                ))
            })?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", config.api_key))
            .map_err(|_| {
                ApiError::Config("the API key has characters a header cannot carry".to_owned())
            })?;
        authorization.set_sensitive(true);
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        // The TLS layer below takes https:// URLs.
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(config.ca_file.as_deref())?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            config,
            url,
            authorization,
            http,
        })
    }

    /// The configuration (its `Debug` redacts the key).
    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// Creates a session, retrying where it is safe.
    pub async fn create(&self, request: &CreateRequest) -> Result<Created, ApiError> {
        let body = Bytes::from(
            serde_json::to_vec(request)
                .map_err(|e| ApiError::Config(format!("the request cannot be serialized: {e}")))?,
        );
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(body.clone(), attempts).await {
                Attempt::Done(result) => {
                    return result.map(|created| Created {
                        attempts,
                        ..created
                    });
                }
                Attempt::Retry(error) if attempts > self.config.retries => return Err(error),
                Attempt::Retry(error) => {
                    let wait = backoff(self.config.backoff, attempts);
                    tracing::debug!(%error, attempt = attempts, ?wait, "Callflows API: retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(&self, body: Bytes, attempts: u32) -> Attempt {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, self.authorization.clone())
            .body(Full::new(body));
        let request = match request {
            Ok(request) => request,
            Err(e) => return Attempt::Done(Err(ApiError::Config(e.to_string()))),
        };
        let exchange = async {
            let response = self.http.request(request).await?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, hyper_util::client::legacy::Error>((status, body))
        };
        match tokio::time::timeout(self.config.timeout, exchange).await {
            Err(_) => Attempt::Done(Err(ApiError::Timeout(self.config.timeout))),
            // A certificate refused now is refused on every retry: said at once, with the fix.
            Ok(Err(err)) if err.is_connect() && certificate_refused(&err) => {
                Attempt::Done(Err(ApiError::Unreachable {
                    url: self.url.to_string(),
                    reason: format!(
                        "{}; the API's TLS certificate is not trusted: give the CA that signed \
                         it as the CA file (callflows_ca_file), or check the URL",
                        source_chain(&err)
                    ),
                    attempts,
                }))
            }
            Ok(Err(err)) if err.is_connect() => Attempt::Retry(ApiError::Unreachable {
                url: self.url.to_string(),
                reason: source_chain(&err),
                attempts,
            }),
            // The request may have gone out: not safe to repeat blindly.
            Ok(Err(err)) => Attempt::Done(Err(ApiError::Unexpected {
                status: 0,
                body: source_chain(&err),
            })),
            Ok(Ok((status, body))) => classify(status, &body, attempts),
        }
    }
}

/// The certificates of a PEM CA file ([`ApiConfig::ca_file`]) as trust roots; an error
/// sentence naming the file when it cannot be read, is not PEM, or holds no certificate.
/// The server checks the file with this at start-up, before any call needs it.
pub fn load_ca_file(path: &Path) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let pem = std::fs::read(path)
        .map_err(|e| format!("CA file {}: cannot read it: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("CA file {}: not PEM: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("CA file {}: a certificate is unusable: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "CA file {}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(roots)
}

/// rustls with ring, trusting `ca_file`'s certificates, or the system's without one.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ApiError> {
    let roots = match ca_file {
        Some(path) => load_ca_file(path).map_err(ApiError::Config)?,
        None => {
            let mut roots = rustls::RootCertStore::empty();
            // A certificate the system has but rustls cannot use is skipped, not fatal.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            roots
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ApiError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Turns an answer into a result, or a retry when the platform did not create the session.
fn classify(status: u16, body: &[u8], attempts: u32) -> Attempt {
    let answer: Answer = serde_json::from_slice(body).unwrap_or_default();
    let message = answer
        .status_message
        .clone()
        .unwrap_or_else(|| shorten(body));
    match status {
        200..=299 => match (answer.session_status.as_deref(), answer.session_id) {
            (Some("CREATED"), Some(session_id)) => Attempt::Done(Ok(Created {
                session_id,
                call_flow_request_id: answer.call_flow_request_id.unwrap_or_default(),
                attempts,
            })),
            _ => Attempt::Done(Err(ApiError::Unexpected {
                status,
                body: shorten(body),
            })),
        },
        401 => Attempt::Done(Err(ApiError::Unauthorized {
            code: answer.status_code.unwrap_or(401),
            message,
        })),
        404 => Attempt::Done(Err(ApiError::SubAccountNotFound { message })),
        429 | 500..=599 if answer.session_status.as_deref() != Some("CREATED") => {
            Attempt::Retry(ApiError::Server {
                status,
                message,
                attempts,
            })
        }
        400..=499 => match answer.status_code {
            Some(code) => Attempt::Done(Err(ApiError::Rejected {
                status,
                code,
                message,
            })),
            None => Attempt::Done(Err(ApiError::Unexpected {
                status,
                body: shorten(body),
            })),
        },
        _ => Attempt::Done(Err(ApiError::Unexpected {
            status,
            body: shorten(body),
        })),
    }
}

/// The wait before retry number `attempt` (1-based): `first`, doubled each time, at most 30 s.
pub fn backoff(first: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    first.saturating_mul(factor).min(Duration::from_secs(30))
}

fn shorten(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.into_owned(),
    }
}

/// Whether rustls refused the server's certificate somewhere in `err`'s chain. It travels
/// inside `io::Error`s (tokio-rustls wraps it in one, hyper-rustls that in another), whose
/// `source` skips what they wrap, so the walk goes into each `io::Error`'s inner error.
fn certificate_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(error) = next {
        if matches!(
            error.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_))
        ) {
            return true;
        }
        next = match error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    false
}

fn source_chain(err: &dyn std::error::Error) -> String {
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
    fn the_key_is_never_in_debug_output() {
        let config = ApiConfig::new("http://127.0.0.1:9", "acme", "s3cret-key");
        assert!(!format!("{config:?}").contains("s3cret"));
        let client = CallflowsClient::new(config).unwrap();
        assert!(!format!("{client:?}").contains("s3cret"));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let first = Duration::from_millis(100);
        assert_eq!(backoff(first, 1), first);
        assert_eq!(backoff(first, 3), Duration::from_millis(400));
        assert_eq!(backoff(first, 40), Duration::from_secs(30));
    }

    #[test]
    fn answers_are_classified_as_the_platform_documents() {
        let not_created = |code: i32, message: &str| {
            serde_json::json!({"sessionStatus": "NOT_CREATED", "callFlowRequestId": "r",
                "statusCode": code, "statusMessage": message})
            .to_string()
        };
        let first = "Invalid Callflow : First action should be a MakeCall action";
        match classify(422, not_created(-1013, first).as_bytes(), 1) {
            Attempt::Done(Err(ApiError::Rejected {
                status,
                code,
                message,
            })) => {
                assert_eq!((status, code, message.as_str()), (422, -1013, first));
            }
            _ => panic!("422 is a rejection"),
        }
        assert!(matches!(
            classify(500, not_created(-1, "oops").as_bytes(), 1),
            Attempt::Retry(ApiError::Server { status: 500, .. })
        ));
        assert!(matches!(
            classify(
                404,
                not_created(404, "SubAccount not found by Id : x").as_bytes(),
                1
            ),
            Attempt::Done(Err(ApiError::SubAccountNotFound { .. }))
        ));
        assert!(matches!(
            classify(200, b"{}", 1),
            Attempt::Done(Err(ApiError::Unexpected { status: 200, .. }))
        ));
    }

    #[test]
    fn a_refused_certificate_is_found_inside_nested_io_errors() {
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        // As hyper-rustls hands it over: io::Error::other(tokio-rustls's io::Error(rustls)).
        let nested = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            refused,
        ));
        assert!(certificate_refused(&nested));
        let refused_connection = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!certificate_refused(&std::io::Error::other(
            refused_connection
        )));
        let other_tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::HandshakeNotComplete,
        );
        assert!(!certificate_refused(&other_tls));
    }

    #[test]
    fn a_bad_base_url_is_a_config_error() {
        let err = CallflowsClient::new(ApiConfig::new("voice.8x8.com", "a", "k")).unwrap_err();
        assert!(
            err.to_string().contains("must start with https://"),
            "{err}"
        );
        let mut config = ApiConfig::new("http://127.0.0.1:9", "a", "k");
        config.ca_file = Some("/nonexistent/ca.pem".into());
        let err = CallflowsClient::new(config).unwrap_err();
        assert!(err.to_string().contains("is not https://"), "{err}");
        let mut config = ApiConfig::new("https://127.0.0.1:9", "a", "k");
        config.ca_file = Some("/nonexistent/ca.pem".into());
        let err = CallflowsClient::new(config).unwrap_err();
        assert!(err.to_string().contains("cannot read it"), "{err}");
    }
}
