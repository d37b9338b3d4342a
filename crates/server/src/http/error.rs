//! The HTTP error type: every refusal is a status code and a small JSON body,
//! `{"error":{"code","message","field"?}}`, that says what was wrong and where. Internals
//! (store messages, actor errors) are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_protocol::WebhookError;
use switchboard_runtime::{RuntimeError, StoreError, StoreErrorKind};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: the body is not an acceptable webhook.
    BadRequest {
        /// Machine-readable reason (`invalid_json`, `missing_field`, ...).
        code: &'static str,
        /// The offending field, as a path from the envelope.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// 401: credentials missing or wrong.
    Unauthorized {
        /// `missing_credentials` or `bad_credentials`.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 403: not allowed from here, or the feature is disabled.
    Forbidden {
        /// `ip_not_allowed`, `admin_disabled`.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 404.
    NotFound(String),
    /// 413: the body is over the limit.
    PayloadTooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// 415: the body is not declared as JSON.
    UnsupportedMediaType {
        /// The content type received, if any.
        got: Option<String>,
    },
    /// 422: the flows did not compile (reload).
    FlowErrors(Vec<String>),
    /// 503: try again shortly.
    Unavailable {
        /// `busy`, `timeout`, `conflict`, or `store_<kind>` (`store_timeout`,
        /// `store_connection`, `store_busy`, `store_protocol`, `store_codec`, `store_backlog`).
        code: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl ApiError {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::FlowErrors(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The machine-readable reason, also the metric label of bad requests and auth failures.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::PayloadTooLarge { .. } => "body_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::FlowErrors(_) => "flow_errors",
        }
    }

    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            Self::BadRequest { message, .. }
            | Self::Unauthorized { message, .. }
            | Self::Forbidden { message, .. }
            | Self::Unavailable { message, .. } => message.clone(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::PayloadTooLarge { limit } => {
                format!("the body is over the limit of {limit} bytes (body_limit)")
            }
            Self::UnsupportedMediaType { got } => format!(
                "Content-Type must be application/json, got {}",
                got.as_deref().unwrap_or("none")
            ),
            Self::FlowErrors(errors) => format!(
                "the flows do not compile ({} problems); the previous flows keep serving",
                errors.len()
            ),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(err: WebhookError) -> Self {
        Self::BadRequest {
            code: err.kind(),
            field: err.field().map(str::to_owned),
            message: err.to_string(),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(err: RuntimeError) -> Self {
        match err {
            RuntimeError::Store(err) => Self::from(err),
            RuntimeError::Busy | RuntimeError::Timeout | RuntimeError::Conflict => {
                let code = match err {
                    RuntimeError::Busy => "busy",
                    RuntimeError::Timeout => "timeout",
                    _ => "conflict",
                };
                Self::Unavailable {
                    code,
                    message: err.to_string(),
                }
            }
        }
    }
}

/// A store failure is a 503 whose code names its kind (`store_timeout`, `store_connection`,
/// ...); the message says what that means for the client, never the store's address or the
/// client library's words (those are logged).
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        let (code, message) = match err.kind() {
            StoreErrorKind::Timeout => (
                "store_timeout",
                "the session store did not answer in time; retry shortly",
            ),
            StoreErrorKind::Connection => (
                "store_connection",
                "the session store cannot be reached right now; retry shortly",
            ),
            StoreErrorKind::Busy => (
                "store_busy",
                "the session store cannot serve right now (loading or failing over); retry shortly",
            ),
            StoreErrorKind::Protocol => (
                "store_protocol",
                "the session store refused the request; retry shortly",
            ),
            StoreErrorKind::Codec => ("store_codec", "the session's stored state cannot be read"),
            StoreErrorKind::Backlog => (
                "store_backlog",
                "the session store has been unreachable too long and this node's queue of writes is full; retry shortly",
            ),
        };
        Self::Unavailable {
            code,
            message: message.to_owned(),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostics: Option<&'a [String]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code(),
                message: self.message(),
                field: match &self {
                    Self::BadRequest { field, .. } => field.as_deref(),
                    _ => None,
                },
                diagnostics: match &self {
                    Self::FlowErrors(errors) => Some(errors),
                    _ => None,
                },
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        match &self {
            Self::Unavailable { .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::Unauthorized { .. } => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_session_is_a_503_with_retry_after_and_no_internals() {
        let refused = StoreError::Connection {
            context: "cannot load session s-1 from Redis at 10.0.0.5:6379".to_owned(),
            source: switchboard_runtime::store::Cause::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused (os error 111)",
            )),
        };
        for err in [
            RuntimeError::Busy,
            RuntimeError::Timeout,
            RuntimeError::Store(refused.clone()),
        ] {
            let response = ApiError::from(err).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        }
        let store = ApiError::from(RuntimeError::Store(refused));
        assert_eq!(store.code(), "store_connection");
        assert!(!store.message().contains("10.0.0.5"), "{}", store.message());
        assert!(!store.message().contains("os error"), "{}", store.message());
    }

    #[test]
    fn each_kind_of_store_failure_has_its_own_code() {
        let timeout = StoreError::Timeout {
            context: "cannot write session s-1 to Redis at 10.0.0.5:6379".to_owned(),
            after: std::time::Duration::from_secs(1),
        };
        let backlog = StoreError::Backlog {
            context: "Redis at 10.0.0.5:6379 is unreachable and 1000 sessions ...".to_owned(),
        };
        let codec = StoreError::Codec {
            context: "session s-1".to_owned(),
            detail: "bad JSON record".to_owned(),
        };
        let codes: Vec<_> = [timeout, backlog, codec]
            .into_iter()
            .map(|e| ApiError::from(e).code())
            .collect();
        assert_eq!(codes, ["store_timeout", "store_backlog", "store_codec"]);
    }
}
