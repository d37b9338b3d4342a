//! The webhook bodies the platform sends, as small borrowed structs.
//!
//! A body is serialized once per delivery, straight into a buffer sized for it, from structs
//! that borrow every string from the virtual call: no intermediate `serde_json::Value`, no
//! per-field `String`. Field names, order and shapes follow the platform's webhooks
//! (`docs/protocol.md`, and the bodies in `crates/protocol/tests/fixtures/examples/`), including the older v2 form (`eventData` and `callDuration`
//! as strings) that the platform still sends for some accounts.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// A typical webhook body is 700-1500 bytes; one allocation of this size holds it.
const BODY_CAPACITY: usize = 1536;

/// Serializes a webhook envelope into a fresh buffer.
pub(crate) fn to_body<P: Serialize>(
    event_type: &'static str,
    version: Option<u32>,
    payload: P,
) -> Vec<u8> {
    let description = match event_type {
        "CALL_ACTION" => "Action request of a call",
        "CALL_STATUS" => "Status update of a call",
        _ => "Summary of a completed call session",
    };
    let envelope = Envelope {
        namespace: "VOICE",
        event_type,
        description,
        version,
        payload,
    };
    let mut body = Vec::with_capacity(BODY_CAPACITY);
    // Writing these structs into a Vec cannot fail: every field is a string, number or null.
    if serde_json::to_writer(&mut body, &envelope).is_err() {
        body.clear();
    }
    body
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<P> {
    namespace: &'static str,
    event_type: &'static str,
    description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    payload: P,
}

/// The numbers and places of a leg, shared by every webhook of the call.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Parties<'a> {
    pub source: &'a str,
    pub destination: &'a str,
    pub source_format: &'static str,
    pub destination_format: &'static str,
    pub source_country_code: &'a str,
    pub destination_country_code: &'a str,
    pub source_ref_id: Option<&'a str>,
    pub destination_ref_id: Option<&'a str>,
}

/// `callDuration`: a number, or (v2) a string of digits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seconds {
    pub value: u64,
    pub as_text: bool,
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.as_text {
            s.collect_str(&self.value)
        } else {
            s.serialize_u64(self.value)
        }
    }
}

/// `eventData`: `{"dtmf": ...}`, or (v2) the digits as a bare string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventData<'a> {
    pub dtmf: Option<&'a str>,
    pub v2: bool,
}

impl Serialize for EventData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.v2 {
            s.serialize_str(self.dtmf.unwrap_or(""))
        } else {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry("dtmf", &self.dtmf)?;
            map.end()
        }
    }
}

/// The payload of a `CALL_ACTION` (VCA).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallAction<'a> {
    pub event_id: &'a str,
    pub call_id: &'a str,
    pub session_id: &'a str,
    pub sub_account_id: &'a str,
    pub call_status: &'static str,
    pub call_direction: &'static str,
    pub call_type: &'static str,
    #[serde(flatten)]
    pub parties: Parties<'a>,
    pub call_duration: Seconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_data: Option<EventData<'a>>,
    pub sip_code: u16,
    pub timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_action_id: Option<&'a str>,
}

/// The payload of a `CALL_STATUS` (VCS).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallStatus<'a> {
    pub event_id: &'a str,
    pub call_id: &'a str,
    pub session_id: &'a str,
    pub sub_account_id: &'a str,
    pub call_status: &'static str,
    pub call_direction: &'static str,
    pub call_type: &'static str,
    #[serde(flatten)]
    pub parties: Parties<'a>,
    pub call_duration: u64,
    pub sip_code: u16,
    pub timestamp: &'a str,
}

/// The payload of a `SESSION_SUMMARY` (VSS).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionSummary<'a> {
    pub session_id: &'a str,
    pub sub_account_id: &'a str,
    pub session_status: &'static str,
    pub start_time: &'a str,
    pub end_time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_action: Option<&'static str>,
    pub call_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_details: Option<ErrorDetails<'a>>,
    pub details: Legs<'a>,
}

/// `errorDetails` of a session summary.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorDetails<'a> {
    pub error_msg: &'a str,
    pub error_code: i32,
}

/// `details`: the legs keyed `callA`, `callB`, ...
pub(crate) struct Legs<'a>(pub &'a [Leg<'a>]);

/// Leg keys; a session with more legs than this reports the first 26.
const LEG_KEYS: [&str; 26] = [
    "callA", "callB", "callC", "callD", "callE", "callF", "callG", "callH", "callI", "callJ",
    "callK", "callL", "callM", "callN", "callO", "callP", "callQ", "callR", "callS", "callT",
    "callU", "callV", "callW", "callX", "callY", "callZ",
];

impl Serialize for Legs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len().min(LEG_KEYS.len())))?;
        for (key, leg) in LEG_KEYS.iter().zip(self.0) {
            map.serialize_entry(key, leg)?;
        }
        map.end()
    }
}

/// One leg of a session summary.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Leg<'a> {
    pub call_id: &'a str,
    pub call_direction: &'static str,
    pub call_type: &'static str,
    pub initiated_timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_timestamp: Option<&'a str>,
    pub disconnected_timestamp: &'a str,
    #[serde(flatten)]
    pub parties: Parties<'a>,
    pub call_status: &'static str,
    pub call_duration: u64,
}

/// The maximum number of legs a summary reports.
pub(crate) const MAX_LEGS: usize = LEG_KEYS.len();
