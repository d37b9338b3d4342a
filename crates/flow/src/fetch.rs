//! The `fetch` node: an HTTP look-up whose answer lands in the session's variables.
//!
//! The engine never does the request. When a step reaches a fetch node it stops and hands the
//! runtime a [`FetchRequest`] (everything rendered except `{{env.NAME}}` values, which the
//! runtime fills from its allow-listed environment); the runtime performs it within its answer
//! budget and gives the result back as a [`FetchOutcome`], and [`crate::engine::resume`] picks
//! the node's target from it with [`FetchNode::settle`]: pure, so a look-up flow is tested,
//! simulated and benchmarked like any other.
//!
//! Targets: `next` when the status is 2xx and every `save` pointer was found (then `cases`
//! on saved values may pick another), `on_error` for any other status, a body that is not
//! JSON, a missing or mistyped field, an unreachable backend or an answer over the size cap,
//! `on_timeout` when the backend did not answer in time. `cases` on the HTTP status come
//! first and win over `on_error`.

use std::collections::BTreeMap;

use crate::model::{Condition, Target};
use crate::template::{EnvText, Scope, Template};

/// The longest `timeout_ms` a fetch node may wait: the platform waits for our answer.
pub const MAX_TIMEOUT_MS: u32 = 4000;
/// `timeout_ms` when a node sets none.
pub const DEFAULT_TIMEOUT_MS: u32 = 1500;

/// An HTTP method a fetch node may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST` (carries an `Idempotency-Key`).
    Post,
    /// `PUT`.
    Put,
}

impl Method {
    /// The method's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
        }
    }
}

/// The type a saved value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveType {
    /// Any string, number or boolean (stored as its text).
    Any,
    /// A JSON string.
    String,
    /// A JSON number.
    Number,
    /// A JSON boolean (stored as `true` / `false`).
    Bool,
}

impl SaveType {
    /// The type's name in the flow language.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::String => "string",
            Self::Number => "number",
            Self::Bool => "bool",
        }
    }
}

/// One `save` entry: a variable, the JSON pointer it is read from and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Save {
    /// The variable.
    pub var: String,
    /// An RFC 6901 JSON pointer (`/account/balance`).
    pub pointer: String,
    /// The type the value must have.
    pub ty: SaveType,
}

/// A JSON request body whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyTemplate {
    /// A templated string.
    Text(Template),
    /// A number, boolean or null, as written.
    Literal(serde_json::Value),
    /// An array.
    Array(Vec<BodyTemplate>),
    /// An object, keys in file order.
    Object(Vec<(String, BodyTemplate)>),
}

impl BodyTemplate {
    fn render(&self, scope: &Scope<'_>) -> serde_json::Value {
        match self {
            Self::Text(t) => serde_json::Value::String(t.render(scope)),
            Self::Literal(v) => v.clone(),
            Self::Array(items) => items.iter().map(|i| i.render(scope)).collect(),
            Self::Object(pairs) => serde_json::Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.render(scope)))
                    .collect(),
            ),
        }
    }

    /// The variables the body reads.
    pub fn vars(&self) -> Vec<&str> {
        match self {
            Self::Text(t) => t.vars().collect(),
            Self::Literal(_) => Vec::new(),
            Self::Array(items) => items.iter().flat_map(Self::vars).collect(),
            Self::Object(pairs) => pairs.iter().flat_map(|(_, v)| v.vars()).collect(),
        }
    }
}

/// What a `cases` entry tests.
#[derive(Debug)]
pub enum CaseTest {
    /// The HTTP status is one of these (any answer, before `save`).
    Status(Vec<u16>),
    /// A condition on the variables, after every `save` succeeded.
    When(Condition),
}

/// A compiled fetch node.
#[derive(Debug)]
pub struct FetchNode {
    /// The method.
    pub method: Method,
    /// The URL (the flow's `base_url` already prefixed to a relative one).
    pub url: Template,
    /// Query parameters, appended percent-encoded.
    pub query: Vec<(String, Template)>,
    /// Request headers: the flow's defaults, then the node's own.
    pub headers: Vec<(String, Template)>,
    /// The JSON body.
    pub body: Option<BodyTemplate>,
    /// How long to wait for the answer.
    pub timeout_ms: u32,
    /// Values read from the answer.
    pub save: Vec<Save>,
    /// Status and value cases, first match wins.
    pub cases: Vec<(CaseTest, Target)>,
    /// 2xx with every saved value found.
    pub next: Target,
    /// Any other answer, or no usable answer.
    pub on_error: Target,
    /// No answer within the timeout.
    pub on_timeout: Target,
}

/// A request for the runtime to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    /// The method.
    pub method: Method,
    /// The URL with its query, `{{env.NAME}}` still unfilled.
    pub url: EnvText,
    /// The headers, values with `{{env.NAME}}` still unfilled.
    pub headers: Vec<(String, EnvText)>,
    /// The serialized JSON body.
    pub body: Option<String>,
    /// How long to wait for the answer (the runtime may wait less, to answer in time).
    pub timeout_ms: u32,
    /// Unique to this session's step and node, the same on every replica: with the session id
    /// it makes the `Idempotency-Key` of a POST.
    pub step_key: String,
}

/// How a request went, as the runtime reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome<'a> {
    /// The backend answered (any status).
    Response {
        /// The HTTP status.
        status: u16,
        /// The body (at most the runtime's size cap).
        body: &'a [u8],
    },
    /// No answer in time.
    TimedOut,
    /// No usable answer.
    Failed(FetchFailure),
}

/// Why a request had no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFailure {
    /// Connection refused, reset, DNS, TLS.
    Unreachable,
    /// The body was larger than the cap.
    TooLarge,
    /// The URL (after templating) is not an `http`/`https` URL, or a header is not valid, or an
    /// environment variable has no value.
    BadRequest,
}

/// How a fetch ended, for metrics and the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchResult {
    /// 2xx, every value saved.
    Ok,
    /// A status case matched.
    Status,
    /// A status that is not 2xx.
    HttpError,
    /// The body is not JSON.
    BadJson,
    /// A saved pointer is missing or has the wrong type.
    Missing,
    /// No answer in time.
    Timeout,
    /// The backend could not be reached.
    Unreachable,
    /// The answer was over the size cap.
    TooLarge,
    /// The request could not be made.
    BadRequest,
}

impl FetchResult {
    /// A metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Status => "status_case",
            Self::HttpError => "http_error",
            Self::BadJson => "bad_json",
            Self::Missing => "missing_field",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::TooLarge => "too_large",
            Self::BadRequest => "bad_request",
        }
    }
}

impl FetchNode {
    /// Every target, for reachability checks.
    pub fn targets(&self) -> Vec<Target> {
        self.cases
            .iter()
            .map(|(_, t)| *t)
            .chain([self.next, self.on_error, self.on_timeout])
            .collect()
    }

    /// The request, rendered against `scope`.
    pub fn request(&self, scope: &Scope<'_>, step_key: String) -> FetchRequest {
        let mut url = self.url.render_env(scope, true);
        if !self.query.is_empty() {
            let mut query = String::new();
            for (i, (name, value)) in self.query.iter().enumerate() {
                query.push(if i == 0 { '?' } else { '&' });
                crate::template::encode_into(name, &mut query);
                query.push('=');
                crate::template::encode_into(&value.render(scope), &mut query);
            }
            url = url.append(&query);
        }
        FetchRequest {
            method: self.method,
            url,
            headers: self
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.render_env(scope, false)))
                .collect(),
            body: self.body.as_ref().map(|b| b.render(scope).to_string()),
            timeout_ms: self.timeout_ms,
            step_key,
        }
    }

    /// The target for `outcome`; saved values are written to `vars` only when all are found.
    pub fn settle(
        &self,
        outcome: FetchOutcome<'_>,
        vars: &mut BTreeMap<String, String>,
        when: impl Fn(&Condition, &BTreeMap<String, String>) -> bool,
    ) -> (Target, FetchResult) {
        let (status, body) = match outcome {
            FetchOutcome::TimedOut => return (self.on_timeout, FetchResult::Timeout),
            FetchOutcome::Failed(failure) => {
                let result = match failure {
                    FetchFailure::Unreachable => FetchResult::Unreachable,
                    FetchFailure::TooLarge => FetchResult::TooLarge,
                    FetchFailure::BadRequest => FetchResult::BadRequest,
                };
                return (self.on_error, result);
            }
            FetchOutcome::Response { status, body } => (status, body),
        };
        for (test, target) in &self.cases {
            if let CaseTest::Status(codes) = test
                && codes.contains(&status)
            {
                return (*target, FetchResult::Status);
            }
        }
        if !(200..300).contains(&status) {
            return (self.on_error, FetchResult::HttpError);
        }
        if !self.save.is_empty() {
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
                return (self.on_error, FetchResult::BadJson);
            };
            let mut values = Vec::with_capacity(self.save.len());
            for save in &self.save {
                match json.pointer(&save.pointer).and_then(|v| typed(v, save.ty)) {
                    Some(value) => values.push(value),
                    None => return (self.on_error, FetchResult::Missing),
                }
            }
            for (save, value) in self.save.iter().zip(values) {
                vars.insert(save.var.clone(), value);
            }
        }
        for (test, target) in &self.cases {
            if let CaseTest::When(condition) = test
                && when(condition, vars)
            {
                return (*target, FetchResult::Ok);
            }
        }
        (self.next, FetchResult::Ok)
    }
}

/// A JSON value as a variable's text, if it has the type.
fn typed(value: &serde_json::Value, ty: SaveType) -> Option<String> {
    use serde_json::Value;
    match (value, ty) {
        (Value::String(s), SaveType::Any | SaveType::String) => Some(s.clone()),
        (Value::Number(n), SaveType::Any | SaveType::Number) => Some(n.to_string()),
        (Value::Bool(b), SaveType::Any | SaveType::Bool) => Some(b.to_string()),
        _ => None,
    }
}
