//! Placing outbound calls: a session registered in the store, then the Callflows API request.
//!
//! [`Dialer::call`] is what `POST /v1/calls` (and so `switchboard call`) runs:
//! 1. check the request (flow served, numbers in E.164), naming the field at fault;
//! 2. register the session under a fresh ticket (`switchboard_runtime::outbound`): the flow's
//!    first step is run now, with the request's variables, and stored where every replica
//!    looks, before the platform can send the call's first webhook;
//! 3. send `makeCall` + that first step to the Callflows API, the ticket as `clientActionId`
//!    and `clientRequestId`, retried only where safe ([`switchboard_outbound::client`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use switchboard_outbound::{ApiError, CallflowsClient, CreateRequest, list};
use switchboard_protocol::Action;
use switchboard_runtime::Runtime;
use switchboard_runtime::outbound::{Outbound, OutboundError};
use switchboard_telemetry::catalogue;

/// Most variables in one call.
const MAX_VARS: usize = 64;

/// One call to place.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// The flow the callee is led through.
    pub flow: String,
    /// The callee, E.164.
    pub to: String,
    /// Our caller id, E.164 (default: `outbound_from`).
    #[serde(default)]
    pub from: Option<String>,
    /// The session's variables.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

/// A placed call.
#[derive(Debug, Clone, Serialize)]
pub struct Placed {
    /// The platform's session id.
    pub session_id: String,
    /// The platform's request id.
    pub call_flow_request_id: String,
    /// Our ticket (also the `clientRequestId`).
    pub ticket: String,
    /// API attempts it took.
    pub attempts: u32,
}

/// Why a call was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The request is wrong; `field` names the part.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Outbound calling is not configured.
    #[error(
        "outbound calls are not configured: set callflows_url, callflows_sub_account and \
         callflows_api_key (SWITCHBOARD_CALLFLOWS_API_KEY)"
    )]
    NotConfigured,
    /// The session could not be registered (the store is down).
    #[error("the session could not be registered: {0}")]
    Register(String),
    /// The platform refused or failed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Places calls; one per server.
#[derive(Debug)]
pub struct Dialer {
    client: Option<CallflowsClient>,
    default_from: Option<String>,
    next: AtomicU64,
}

impl Dialer {
    /// A dialer using `client` (`None`: outbound calls are refused as not configured).
    pub fn new(client: Option<CallflowsClient>, default_from: Option<String>) -> Self {
        Self {
            client,
            default_from,
            next: AtomicU64::new(0),
        }
    }

    /// Whether outbound calls are configured.
    pub fn is_configured(&self) -> bool {
        self.client.is_some()
    }

    /// A ticket unique across replicas and restarts: time, process and a counter.
    pub fn ticket(&self) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{nanos:x}-{:x}-{n:x}", std::process::id())
    }

    /// Registers the session and places the call.
    pub async fn call(&self, runtime: &Runtime, request: CallRequest) -> Result<Placed, CallError> {
        let ticket = self.ticket();
        self.call_with_ticket(runtime, request, &ticket, false)
            .await
    }

    /// [`Dialer::call`] with a given ticket (a campaign's, stable across its retries of one
    /// attempt so the platform sees a repeat as one request). `again`: the ticket may have
    /// been registered already (a campaign attempt requested again after its replica
    /// stopped), which is then no error.
    pub async fn call_with_ticket(
        &self,
        runtime: &Runtime,
        request: CallRequest,
        ticket: &str,
        again: bool,
    ) -> Result<Placed, CallError> {
        let client = self.client.as_ref().ok_or(CallError::NotConfigured)?;
        let (to, from) = self.check(runtime, &request)?;
        let call = Outbound {
            flow: &request.flow,
            from: &from,
            to: &to,
            vars: request.vars,
            ticket,
        };
        let now = chrono::Utc::now();
        let first = if again {
            runtime.register_outbound_again(call, now).await
        } else {
            runtime.register_outbound(call, now).await
        };
        let first = first.map_err(|e| match e {
            OutboundError::Store(err) => CallError::Register(err.to_string()),
            other => CallError::Invalid {
                field: "flow",
                message: other.to_string(),
            },
        })?;
        let mut callflow = vec![make_call(&from, &to)?];
        callflow.extend(first.actions);
        let created = client
            .create(&CreateRequest {
                callflow,
                client_action_id: first.client_action_id,
                client_request_id: ticket.to_owned(),
                valid_until: None,
            })
            .await;
        let result = match &created {
            Ok(_) => "created".to_owned(),
            Err(err) => err.label(),
        };
        metrics::counter!(catalogue::OUTBOUND_REQUESTS, "result" => result).increment(1);
        let created = created?;
        Ok(Placed {
            session_id: created.session_id,
            call_flow_request_id: created.call_flow_request_id,
            ticket: ticket.to_owned(),
            attempts: created.attempts,
        })
    }

    /// The callee and caller id, normalized, or the field at fault.
    fn check(
        &self,
        runtime: &Runtime,
        request: &CallRequest,
    ) -> Result<(String, String), CallError> {
        if runtime.flows().latest(&request.flow).is_none() {
            return Err(CallError::Invalid {
                field: "flow",
                message: format!(
                    "flow {:?} is not served here; GET /v1/flows lists the flows",
                    request.flow
                ),
            });
        }
        let to = list::normalize(&request.to).map_err(|message| CallError::Invalid {
            field: "to",
            message,
        })?;
        let from = request
            .from
            .as_deref()
            .or(self.default_from.as_deref())
            .ok_or_else(|| CallError::Invalid {
                field: "from",
                message: "no caller id: give from, or set outbound_from".to_owned(),
            })?;
        let from = list::normalize(from).map_err(|message| CallError::Invalid {
            field: "from",
            message,
        })?;
        if request.vars.len() > MAX_VARS {
            return Err(CallError::Invalid {
                field: "vars",
                message: format!("{} variables; at most {MAX_VARS}", request.vars.len()),
            });
        }
        if let Some(name) = request
            .vars
            .keys()
            .find(|k| k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(CallError::Invalid {
                field: "vars",
                message: format!("{name:?} is not a variable name (letters, digits and _)"),
            });
        }
        Ok((to, from))
    }
}

/// The `makeCall` that starts the call.
fn make_call(from: &str, to: &str) -> Result<Action, CallError> {
    serde_json::from_value(serde_json::json!({
        "action": "makeCall",
        "params": {"source": from, "destination": to}
    }))
    .map_err(|e| CallError::Invalid {
        field: "to",
        message: format!("not a number the platform accepts: {e}"),
    })
}
