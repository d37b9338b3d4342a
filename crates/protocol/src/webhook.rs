//! What the platform POSTs to us: the webhook envelope and its three payloads.
//!
//! [`Webhook::from_slice`] is the one place a body becomes typed values. It is tolerant where
//! the platform is loose, because a webhook we refuse is a call the platform drops: unknown
//! fields are ignored, nullable fields are optional, the caller's digits may sit in any of the
//! three places the platform has used (see [`CallAction::dtmf`]), integers may arrive as
//! strings, a reference id may be the string `"null"`, and status telemetry and session
//! summaries are never refused for their content. It is strict where routing needs it: a
//! missing `sessionId`, `callStatus` or (for a new call) `destination`, or an unknown
//! `eventType`, is a [`WebhookError`] naming the field.
//!
//! Parsing is single-pass on the happy path: when `eventType` comes before `payload` (as the
//! platform writes it), the payload is parsed into its type in the envelope's own pass. A body
//! in another order is parsed in two (the envelope with the payload as raw text, then the
//! payload), and a body that fails either way is parsed again by the two-pass path, field by
//! field if need be, to name the field that is wrong: the answer to a bad body does not
//! depend on which path met it first.

use std::collections::BTreeMap;
use std::fmt;

use compact_str::CompactString;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A parsed webhook.
// One value lives per request and is matched at once; boxing the large variant would only add
// an allocation to the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Webhook {
    /// VCA: the platform needs the next callflow.
    CallAction(CallAction),
    /// VCS: status telemetry.
    CallStatus(CallStatusEvent),
    /// VSS: the session is over.
    SessionSummary(SessionSummary),
}

impl Webhook {
    /// Parses a webhook body.
    pub fn from_slice(body: &[u8]) -> Result<Self, WebhookError> {
        // The platform writes `eventType` before `payload`, so the payload can be parsed into
        // its type in the envelope's own pass. Anything else (another order, a body that is
        // not a valid webhook) takes the two-pass path, which also names what is wrong.
        // The body is checked to be UTF-8 once, as a whole, rather than string by string as
        // it is parsed (which was a fifth of the instructions of parsing a key press).
        let one_pass = std::str::from_utf8(body)
            .ok()
            .and_then(|text| serde_json::from_str::<InOnePass>(text).ok());
        match one_pass {
            Some(InOnePass(Some(webhook))) => Ok(webhook),
            _ => Self::from_slice_in_two_passes(body),
        }
    }

    /// The envelope first (the payload kept as raw text), then the payload, by event type:
    /// what [`Webhook::from_slice`] falls back to. Public so that the tests and the fuzz
    /// target can check that both paths give the same answer for any body.
    #[doc(hidden)]
    pub fn from_slice_in_two_passes(body: &[u8]) -> Result<Self, WebhookError> {
        let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(WebhookError::json)?;
        let event_type = envelope
            .event_type
            .ok_or(WebhookError::MissingField { field: "eventType" })?;
        let payload = envelope
            .payload
            .ok_or(WebhookError::MissingField { field: "payload" })?;
        match event_type.as_ref() {
            "CALL_ACTION" => {
                let action: CallAction = parse_payload(payload)?;
                action.check()?;
                Ok(Self::CallAction(action))
            }
            "CALL_STATUS" => {
                let status: CallStatusEvent = parse_payload(payload)?;
                require(&status.session_id, "payload.sessionId")?;
                Ok(Self::CallStatus(status))
            }
            "SESSION_SUMMARY" => {
                let summary: SessionSummary = parse_payload(payload)
                    .or_else(|err| without_duplicate_keys(payload).ok_or(err))?;
                require(&summary.session_id, "payload.sessionId")?;
                Ok(Self::SessionSummary(summary))
            }
            other => Err(WebhookError::UnknownEventType(other.to_owned())),
        }
    }

    /// The session this webhook belongs to (never empty).
    pub fn session_id(&self) -> &str {
        match self {
            Self::CallAction(a) => &a.session_id,
            Self::CallStatus(s) => &s.session_id,
            Self::SessionSummary(s) => &s.session_id,
        }
    }

    /// The envelope's `eventType`.
    pub const fn event_type(&self) -> &'static str {
        match self {
            Self::CallAction(_) => "CALL_ACTION",
            Self::CallStatus(_) => "CALL_STATUS",
            Self::SessionSummary(_) => "SESSION_SUMMARY",
        }
    }
}

/// Why a webhook body was refused. Each variant names the field, as a dotted path from the
/// envelope (`payload.sessionId`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The body is not JSON (the platform's -1001).
    #[error("body is not valid JSON: {message} at line {line} column {column}")]
    InvalidJson {
        /// serde_json's description.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// A field routing needs is absent, null or empty.
    #[error("{field}: is missing but it is required")]
    MissingField {
        /// The field's path.
        field: &'static str,
    },
    /// A field has the wrong type or an impossible value.
    #[error("{field}: {message}")]
    InvalidField {
        /// The field's path.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// `eventType` is not one we know.
    #[error(
        "eventType: unknown event type {0:?}; expected CALL_ACTION, CALL_STATUS or SESSION_SUMMARY"
    )]
    UnknownEventType(String),
}

impl WebhookError {
    fn json(err: serde_json::Error) -> Self {
        if err.is_data() {
            // The body is JSON but not an object with the envelope's shape.
            return Self::InvalidField {
                field: "$".to_owned(),
                message: format!("the body must be a webhook object: {err}"),
            };
        }
        let message = err.to_string();
        // serde_json appends " at line L column C"; we report those separately.
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(head, _)| head)
            .to_owned();
        Self::InvalidJson {
            message,
            line: err.line(),
            column: err.column(),
        }
    }

    /// A stable, machine-readable name for the kind of error.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } => "invalid_json",
            Self::MissingField { .. } => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
            Self::UnknownEventType(_) => "unknown_event_type",
        }
    }

    /// The path of the offending field, if one is to blame.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidJson { .. } => None,
            Self::MissingField { field } => Some(field),
            Self::InvalidField { field, .. } => Some(field),
            Self::UnknownEventType(_) => Some("eventType"),
        }
    }
}

/// A webhook parsed in one pass, when that can be done: `eventType` comes before `payload`,
/// names a known event, and the payload parses and passes its checks. `None` (or an error)
/// sends the body to [`Webhook::from_slice_in_two_passes`], whose answer is then the answer;
/// this type never has to name an error itself.
struct InOnePass(Option<Webhook>);

impl<'de> Deserialize<'de> for InOnePass {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(InOnePassVisitor)
    }
}

/// The envelope's keys that matter; every other key is skipped.
enum EnvelopeKey {
    EventType,
    Payload,
    Other,
}

impl<'de> Deserialize<'de> for EnvelopeKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = EnvelopeKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<EnvelopeKey, E> {
                Ok(match key {
                    "eventType" => EnvelopeKey::EventType,
                    "payload" => EnvelopeKey::Payload,
                    _ => EnvelopeKey::Other,
                })
            }
        }

        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct InOnePassVisitor;

impl<'de> Visitor<'de> for InOnePassVisitor {
    type Value = InOnePass;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a webhook object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<InOnePass, A::Error> {
        let mut event_type: Option<CompactString> = None;
        let mut webhook: Option<Webhook> = None;
        while let Some(key) = map.next_key::<EnvelopeKey>()? {
            match key {
                EnvelopeKey::EventType => {
                    if event_type.is_some() {
                        return Err(de::Error::duplicate_field("eventType"));
                    }
                    // `null`, or a second `eventType` after the payload: the two-pass path.
                    let Some(kind) = map.next_value::<Option<CompactString>>()? else {
                        return Ok(InOnePass(None));
                    };
                    if webhook.is_some() {
                        return Ok(InOnePass(None));
                    }
                    event_type = Some(kind);
                }
                EnvelopeKey::Payload => {
                    if webhook.is_some() {
                        return Err(de::Error::duplicate_field("payload"));
                    }
                    webhook = Some(match event_type.as_deref() {
                        Some("CALL_ACTION") => Webhook::CallAction(map.next_value()?),
                        Some("CALL_STATUS") => Webhook::CallStatus(map.next_value()?),
                        Some("SESSION_SUMMARY") => Webhook::SessionSummary(map.next_value()?),
                        // No event type yet, or an unknown one.
                        _ => return Ok(InOnePass(None)),
                    });
                }
                EnvelopeKey::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        let checked = match &webhook {
            Some(Webhook::CallAction(action)) => action.check().is_ok(),
            Some(Webhook::CallStatus(status)) => !status.session_id.is_empty(),
            Some(Webhook::SessionSummary(summary)) => !summary.session_id.is_empty(),
            None => false,
        };
        Ok(InOnePass(webhook.filter(|_| checked)))
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "eventType", borrow, default)]
    event_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

fn require(value: &str, field: &'static str) -> Result<(), WebhookError> {
    if value.is_empty() {
        Err(WebhookError::MissingField { field })
    } else {
        Ok(())
    }
}

/// A summary whose objects repeat a key, read with the last value of each (as a
/// `serde_json::Value` holds it): the one thing that can make a summary's fields fail to
/// parse, since they are all loose, and not a reason to lose the record of how a call ended.
fn without_duplicate_keys(raw: &RawValue) -> Option<SessionSummary> {
    let value: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
    SessionSummary::deserialize(value).ok()
}

/// Parses a payload; on failure, finds the field to blame by parsing one field at a time.
/// Every payload type has only optional or defaulted fields, so a one-field object parses
/// unless that very field is wrong.
fn parse_payload<'de, T: Deserialize<'de>>(raw: &'de RawValue) -> Result<T, WebhookError> {
    serde_json::from_str(raw.get()).map_err(|err| {
        let fields: serde_json::Map<String, serde_json::Value> =
            match serde_json::from_str(raw.get()) {
                Ok(fields) => fields,
                Err(_) => {
                    return WebhookError::InvalidField {
                        field: "payload".to_owned(),
                        message: "must be an object".to_owned(),
                    };
                }
            };
        for (name, value) in fields {
            let single =
                serde_json::Value::Object(std::iter::once((name.clone(), value)).collect());
            if let Err(field_err) = T::deserialize(single) {
                let message = field_err.to_string();
                return WebhookError::InvalidField {
                    field: format!("payload.{name}"),
                    message,
                };
            }
        }
        WebhookError::InvalidField {
            field: "payload".to_owned(),
            message: err.to_string(),
        }
    })
}

/// `callStatus` of a `CALL_ACTION`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum CallStatus {
    /// A new inbound call: start the flow.
    CallReceived,
    /// The previous callflow finished: continue.
    ActionCompleted,
    /// Digits were captured (an older form of the event: the digits at `payload.dtmf` and no
    /// `clientActionId`). Continued exactly like [`CallStatus::ActionCompleted`].
    DtmfReceived,
    /// A value this version does not know (kept, so the error can quote it).
    Other(String),
    /// Absent.
    #[default]
    Missing,
}

impl CallStatus {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::CallReceived => "CALL_RECEIVED",
            Self::ActionCompleted => "ACTION_COMPLETED",
            Self::DtmfReceived => "DTMF_RECEIVED",
            Self::Other(s) => s,
            Self::Missing => "",
        }
    }
}

impl<'de> Deserialize<'de> for CallStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Reads the status from the string as the parser holds it: no copy for the
        /// statuses we know.
        struct Status;

        impl<'de> Visitor<'de> for Status {
            type Value = CallStatus;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a call status string, or null")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(match v {
                    "" => CallStatus::Missing,
                    "CALL_RECEIVED" => CallStatus::CallReceived,
                    "ACTION_COMPLETED" => CallStatus::ActionCompleted,
                    "DTMF_RECEIVED" => CallStatus::DtmfReceived,
                    other => CallStatus::Other(other.to_owned()),
                })
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(CallStatus::Missing)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(CallStatus::Missing)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_str(self)
            }
        }

        d.deserialize_option(Status)
    }
}

impl Serialize for CallStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The payload of a `CALL_ACTION` (VCA) webhook.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CallAction {
    /// Unique per delivery event: the idempotency key (empty if the platform sent none).
    #[serde(deserialize_with = "nullable_string")]
    pub event_id: CompactString,
    /// The call leg.
    #[serde(deserialize_with = "nullable_string")]
    pub call_id: CompactString,
    /// The IVR session: the actor key. Never empty after parsing.
    #[serde(deserialize_with = "nullable_string")]
    pub session_id: CompactString,
    /// The tenant.
    #[serde(deserialize_with = "nullable_string")]
    pub sub_account_id: CompactString,
    /// `CALL_RECEIVED`, `ACTION_COMPLETED` or `DTMF_RECEIVED`.
    pub call_status: CallStatus,
    /// `INBOUND` / `OUTBOUND`.
    pub call_direction: Option<CompactString>,
    /// `PSTN` / `VOIP`.
    pub call_type: Option<CompactString>,
    /// The caller's number.
    #[serde(deserialize_with = "nullable_string")]
    pub source: CompactString,
    /// The called number: our virtual number for an inbound call; flows are routed by it.
    #[serde(deserialize_with = "nullable_string")]
    pub destination: CompactString,
    /// `MSISDN`.
    pub source_format: Option<CompactString>,
    /// `MSISDN`.
    pub destination_format: Option<CompactString>,
    /// ISO 3166-1 alpha-2.
    pub source_country_code: Option<CompactString>,
    /// ISO 3166-1 alpha-2.
    pub destination_country_code: Option<CompactString>,
    /// Virtual-number reference id (`None` also when the platform wrote the string `"null"`).
    #[serde(deserialize_with = "ref_id")]
    pub source_ref_id: Option<CompactString>,
    /// Virtual-number reference id (`None` also when the platform wrote the string `"null"`).
    #[serde(deserialize_with = "ref_id")]
    pub destination_ref_id: Option<CompactString>,
    /// Seconds since the call started (documented as a string, sent as an integer).
    #[serde(deserialize_with = "lenient_u64")]
    pub call_duration: Option<u64>,
    /// What the caller entered.
    #[serde(deserialize_with = "event_data")]
    pub event_data: Option<EventData>,
    /// Digits at the top level of the payload: where the `DTMF_RECEIVED` form of the event and
    /// 8x8's sample backend put them. Read through [`CallAction::dtmf`].
    #[serde(deserialize_with = "digits")]
    pub dtmf: Option<CompactString>,
    /// Final SIP code of the leg (after a `makeCall`: how the transfer went).
    #[serde(deserialize_with = "lenient_u16")]
    pub sip_code: Option<u16>,
    /// ISO 8601.
    pub timestamp: Option<CompactString>,
    /// The echo of the `clientActionId` our previous answer set.
    pub client_action_id: Option<CompactString>,
}

impl CallAction {
    fn check(&self) -> Result<(), WebhookError> {
        require(&self.session_id, "payload.sessionId")?;
        match &self.call_status {
            CallStatus::Missing => Err(WebhookError::MissingField {
                field: "payload.callStatus",
            }),
            CallStatus::Other(other) => Err(WebhookError::InvalidField {
                field: "payload.callStatus".to_owned(),
                message: format!(
                    "unknown call status {other:?}; expected CALL_RECEIVED, ACTION_COMPLETED or DTMF_RECEIVED"
                ),
            }),
            CallStatus::CallReceived => require(&self.destination, "payload.destination"),
            CallStatus::ActionCompleted | CallStatus::DtmfReceived => Ok(()),
        }
    }

    /// The digits the caller entered, if any (`None` for silence or nothing valid).
    ///
    /// The platform has put them in three places; the first that holds digits wins:
    /// `eventData.dtmf` (the documented form), `eventData` as the digit string itself (the
    /// older v2 form), then `payload.dtmf` (the `DTMF_RECEIVED` form). `eventData` is either a
    /// map or a string, never both, so the first two are one field once parsed.
    pub fn dtmf(&self) -> Option<&str> {
        let non_empty = |d: &&str| !d.is_empty();
        self.event_data
            .as_ref()
            .and_then(|d| d.dtmf.as_deref())
            .filter(non_empty)
            .or_else(|| self.dtmf.as_deref().filter(non_empty))
    }
}

/// `eventData` of a `CALL_ACTION`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventData {
    /// Captured digits; null when nothing valid was entered after all tries.
    #[serde(deserialize_with = "digits")]
    pub dtmf: Option<CompactString>,
    /// Speech recognition result, passed through untouched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asr_captured: Option<serde_json::Value>,
}

/// The payload of a `CALL_STATUS` (VCS) webhook: telemetry we acknowledge.
///
/// Only `sessionId` can make one fail to parse. The platform says status events may carry
/// "additional parameters", and nothing in them steers a call, so every other field is read
/// when it has a usable value and left empty when it has not.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CallStatusEvent {
    /// The delivery's id.
    #[serde(deserialize_with = "loose_string")]
    pub event_id: String,
    /// The call leg.
    #[serde(deserialize_with = "loose_string")]
    pub call_id: String,
    /// The session. Never empty after parsing.
    #[serde(deserialize_with = "nullable_string")]
    pub session_id: String,
    /// The leg's status as the platform names it: `CALL_INITIATED`, `CALL_RECEIVED`,
    /// `CALL_CONNECTED`, `CALL_DISCONNECTED`, `CALL_UPDATED`, `DTMF_RECEIVED`, or any other.
    #[serde(deserialize_with = "loose_option")]
    pub call_status: Option<String>,
    /// SIP code of the leg.
    #[serde(deserialize_with = "loose_u16")]
    pub sip_code: Option<u16>,
    /// Seconds since the call started.
    #[serde(deserialize_with = "loose_u64")]
    pub call_duration: Option<u64>,
    /// ISO 8601.
    #[serde(deserialize_with = "loose_option")]
    pub timestamp: Option<String>,
}

/// `sessionStatus` of a session summary.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum SessionStatus {
    /// The session ended normally.
    Completed,
    /// A leg was busy.
    Busy,
    /// A leg was not answered.
    NoAnswer,
    /// The session failed.
    Failed,
    /// The session was canceled.
    Canceled,
    /// The platform hit an error (see `errorDetails`).
    Error,
    /// Voice messaging: the message was played and the contact unsubscribed.
    CompletedUnsubscribed,
    /// Voice messaging: the contact asked to unsubscribe and recording it failed.
    CompletedUnsubError,
    /// Voice messaging: the contact had unsubscribed before, so no call was made.
    UnsubscribedContact,
    /// A status this version does not know.
    Other(String),
    /// Absent.
    #[default]
    Missing,
}

impl SessionStatus {
    /// Every status the platform documents, for pre-registering metrics.
    pub const KNOWN: [SessionStatus; 9] = [
        Self::Completed,
        Self::Busy,
        Self::NoAnswer,
        Self::Failed,
        Self::Canceled,
        Self::Error,
        Self::CompletedUnsubscribed,
        Self::CompletedUnsubError,
        Self::UnsubscribedContact,
    ];

    /// The wire value (`OTHER` for unknown and missing ones, so it is safe as a metric label;
    /// `CANCELLED` is labelled `CANCELED`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Completed => "COMPLETED",
            Self::Busy => "BUSY",
            Self::NoAnswer => "NO_ANSWER",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
            Self::Error => "ERROR",
            Self::CompletedUnsubscribed => "COMPLETED_UNSUBSCRIBED",
            Self::CompletedUnsubError => "COMPLETED_UNSUB_ERROR",
            Self::UnsubscribedContact => "UNSUBSCRIBED_CONTACT",
            Self::Other(_) | Self::Missing => "OTHER",
        }
    }
}

impl SessionStatus {
    /// The status a wire value names (`CANCELLED` is [`SessionStatus::Canceled`]).
    pub fn from_wire(value: Option<&str>) -> Self {
        match value {
            None | Some("") => Self::Missing,
            Some("COMPLETED") => Self::Completed,
            Some("BUSY") => Self::Busy,
            Some("NO_ANSWER") => Self::NoAnswer,
            Some("FAILED") => Self::Failed,
            Some("CANCELED") | Some("CANCELLED") => Self::Canceled,
            Some("ERROR") => Self::Error,
            Some("COMPLETED_UNSUBSCRIBED") => Self::CompletedUnsubscribed,
            Some("COMPLETED_UNSUB_ERROR") => Self::CompletedUnsubError,
            Some("UNSUBSCRIBED_CONTACT") => Self::UnsubscribedContact,
            Some(other) => Self::Other(other.to_owned()),
        }
    }
}

impl<'de> Deserialize<'de> for SessionStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::from_wire(s.as_deref()))
    }
}

impl Serialize for SessionStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Other(other) => s.serialize_str(other),
            Self::Missing => s.serialize_none(),
            known => s.serialize_str(known.label()),
        }
    }
}

/// The payload of a `SESSION_SUMMARY` (VSS) webhook.
///
/// Only `sessionId` can make one fail to parse: the call is over, and refusing its summary
/// would only lose the record of how it ended. Other fields are read when they have a usable
/// value and left empty when they have not.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionSummary {
    /// The session. Never empty after parsing.
    #[serde(deserialize_with = "nullable_string")]
    pub session_id: String,
    /// The tenant.
    #[serde(deserialize_with = "loose_option")]
    pub sub_account_id: Option<String>,
    /// How the session ended.
    #[serde(deserialize_with = "loose_status")]
    pub session_status: SessionStatus,
    /// ISO 8601.
    #[serde(deserialize_with = "loose_option")]
    pub start_time: Option<String>,
    /// ISO 8601.
    #[serde(deserialize_with = "loose_option")]
    pub end_time: Option<String>,
    /// The last action run: `MAKE_CALL`, `HANGUP`, `SAY_AND_CAPTURE`, `SAY`, `PLAY_FILE`,
    /// `PLAY_TTS` have been seen.
    #[serde(deserialize_with = "loose_option")]
    pub last_action: Option<String>,
    /// How many legs the session had.
    #[serde(deserialize_with = "loose_u64")]
    pub call_count: Option<u64>,
    /// Echo of the Callflows API request id, for outbound sessions.
    #[serde(deserialize_with = "loose_option")]
    pub client_request_id: Option<String>,
    /// Set when the platform failed the session.
    #[serde(deserialize_with = "loose_error_details")]
    pub error_details: Option<ErrorDetails>,
    /// The legs, keyed `callA`, `callB`, ... The platform also spells them `CallA`, `CallB`;
    /// keys are stored with a lower-case first letter, so look legs up as `callA`. Entries that
    /// are not objects are skipped.
    #[serde(deserialize_with = "legs")]
    pub details: BTreeMap<String, CallLeg>,
}

/// `errorDetails` of a session summary.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorDetails {
    /// The platform's message.
    #[serde(deserialize_with = "loose_option")]
    pub error_msg: Option<String>,
    /// -2001 ... -2010, -9999; sent as an integer or as a string holding one (`None` when it
    /// is neither).
    #[serde(deserialize_with = "loose_i64")]
    pub error_code: Option<i64>,
}

/// One leg of a session summary.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CallLeg {
    /// The leg.
    #[serde(deserialize_with = "loose_option")]
    pub call_id: Option<String>,
    /// `INBOUND` / `OUTBOUND`.
    #[serde(deserialize_with = "loose_option")]
    pub call_direction: Option<String>,
    /// `PSTN` / `VOIP`.
    #[serde(deserialize_with = "loose_option")]
    pub call_type: Option<String>,
    /// ISO 8601.
    #[serde(deserialize_with = "loose_option")]
    pub initiated_timestamp: Option<String>,
    /// ISO 8601; absent if the leg never connected.
    #[serde(deserialize_with = "loose_option")]
    pub connected_timestamp: Option<String>,
    /// ISO 8601.
    #[serde(deserialize_with = "loose_option")]
    pub disconnected_timestamp: Option<String>,
    /// Calling number.
    #[serde(deserialize_with = "loose_option")]
    pub source: Option<String>,
    /// Called number.
    #[serde(deserialize_with = "loose_option")]
    pub destination: Option<String>,
    /// `MSISDN`.
    #[serde(deserialize_with = "loose_option")]
    pub source_format: Option<String>,
    /// `MSISDN`.
    #[serde(deserialize_with = "loose_option")]
    pub destination_format: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(deserialize_with = "loose_option")]
    pub source_country_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(deserialize_with = "loose_option")]
    pub destination_country_code: Option<String>,
    /// Virtual-number reference id (`None` also for the string `"null"`).
    #[serde(deserialize_with = "loose_ref_id")]
    pub source_ref_id: Option<String>,
    /// Virtual-number reference id (`None` also for the string `"null"`).
    #[serde(deserialize_with = "loose_ref_id")]
    pub destination_ref_id: Option<String>,
    /// COMPLETED, BUSY, NO_ANSWER, FAILED, CANCELED (or CANCELLED), ERROR, or another.
    #[serde(deserialize_with = "loose_option")]
    pub call_status: Option<String>,
    /// Seconds (documented as a string, sent as an integer).
    #[serde(deserialize_with = "loose_u64")]
    pub call_duration: Option<u64>,
    /// Voice quality, when measured.
    #[serde(deserialize_with = "loose_quality")]
    pub call_quality: Option<CallQuality>,
}

/// `callQuality` of a leg.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CallQuality {
    /// Mean opinion score.
    pub mos: Option<f64>,
    /// Share of packets lost.
    pub packet_loss_rate: Option<f64>,
    /// Milliseconds.
    pub jitter: Option<f64>,
}

fn nullable_string<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An integer that may arrive as a number, a string of digits, or null.
struct LenientInt;

impl<'de> Visitor<'de> for LenientInt {
    type Value = Option<i128>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer, a string holding an integer, or null")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.fract() == 0.0 && v.abs() < 1e18 {
            Ok(Some(v as i128))
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let v = v.trim();
        if v.is_empty() {
            return Ok(None);
        }
        v.parse()
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn lenient_int<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
    match d.deserialize_any(LenientInt)? {
        None => Ok(None),
        Some(v) => T::try_from(v)
            .map(Some)
            .map_err(|_| de::Error::custom(format!("{v} is out of range"))),
    }
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    lenient_int(d)
}

fn lenient_u16<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    lenient_int(d)
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    lenient_int(d)
}

/// A reference id: the platform writes an absent one as null or as the string `"null"`.
fn ref_id<'de, D: Deserializer<'de>, T: Deserialize<'de> + AsRef<str>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(Option::<T>::deserialize(d)?.filter(|id| id.as_ref() != "null"))
}

/// Digits: a string, or an integer (a backend that parsed them as a number), or null.
fn digits<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CompactString>, D::Error> {
    struct Digits;

    impl<'de> Visitor<'de> for Digits {
        type Value = Option<CompactString>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string of digits, or null")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.into()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(compact_str::format_compact!("{v}")))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    d.deserialize_any(Digits)
}

// The `loose_*` readers are for fields that steer nothing (status telemetry, session
// summaries): a value of the wrong shape is read as absent instead of refusing the webhook.

/// A string, a number or a boolean as text; anything else as the empty string.
fn loose_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(loose_option(d)?.unwrap_or_default())
}

/// A string, a number or a boolean as text; null, arrays and objects as `None`.
/// Numbers are written as `serde_json` writes them (`1.0` stays `1.0`).
fn loose_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Text;

    impl<'de> Visitor<'de> for Text {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any value")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(serde_json::Number::from_f64(v).map(|n| n.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
    }

    d.deserialize_any(Text)
}

fn loose_ref_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(loose_option(d)?.filter(|id| id != "null"))
}

/// Reads `T` from the value with `read`, or `None` if the value does not fit.
fn loose<'de, D, T>(
    d: D,
    read: impl FnOnce(serde_json::Value) -> Result<Option<T>, serde_json::Error>,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(read(serde_json::Value::deserialize(d)?).ok().flatten())
}

fn loose_u16<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    loose(d, lenient_u16)
}

fn loose_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    loose(d, lenient_u64)
}

fn loose_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    loose(d, lenient_i64)
}

fn loose_quality<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CallQuality>, D::Error> {
    loose(d, Option::<CallQuality>::deserialize)
}

fn loose_error_details<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ErrorDetails>, D::Error> {
    loose(d, Option::<ErrorDetails>::deserialize)
}

/// `sessionStatus`: any string is a status; any other value is a missing one.
fn loose_status<'de, D: Deserializer<'de>>(d: D) -> Result<SessionStatus, D::Error> {
    Ok(SessionStatus::from_wire(loose_option(d)?.as_deref()))
}

/// `details`: the legs, with `CallA` stored as `callA`; entries that are not legs are skipped.
/// Read as it streams by: building the whole map as a `serde_json::Value` first was four
/// fifths of the instructions of parsing a summary. Every field of a leg is loose, so an
/// object always reads as one.
fn legs<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, CallLeg>, D::Error> {
    Ok(IfObject::<Legs>::deserialize(d)?.0.unwrap_or_default().0)
}

/// The entries of `details` that are objects, keyed as [`lower_first`] spells them (a key
/// written twice, in either case, keeps its last leg).
#[derive(Default)]
struct Legs(BTreeMap<String, CallLeg>);

impl<'de> Deserialize<'de> for Legs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LegsVisitor;

        impl<'de> Visitor<'de> for LegsVisitor {
            type Value = Legs;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of call legs")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Legs, A::Error> {
                let mut legs = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if let IfObject(Some(leg)) = map.next_value::<IfObject<CallLeg>>()? {
                        legs.insert(lower_first(key), leg);
                    }
                }
                Ok(Legs(legs))
            }
        }

        d.deserialize_map(LegsVisitor)
    }
}

/// `CallA` → `callA`.
fn lower_first(key: String) -> String {
    match key.chars().next() {
        Some(first) if !first.is_lowercase() => {
            first.to_lowercase().chain(key.chars().skip(1)).collect()
        }
        _ => key,
    }
}

/// A value read as `T` when it is an object, and skipped (`None`) when it is anything else.
struct IfObject<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for IfObject<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = IfObject<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object, or any value to skip")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|value| IfObject(Some(value)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(IfObject(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }

        d.deserialize_any(ObjectVisitor(std::marker::PhantomData))
    }
}

/// `eventData`: a map (v3), the digits as a bare string (v2), or null.
fn event_data<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EventData>, D::Error> {
    struct EventDataVisitor;

    impl<'de> Visitor<'de> for EventDataVisitor {
        type Value = Option<EventData>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object with dtmf, a string of digits, or null")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(EventData {
                dtmf: Some(v.into()),
                asr_captured: None,
            }))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            EventData::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    d.deserialize_any(EventDataVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL_RECEIVED: &str = r#"{"namespace":"VOICE","eventType":"CALL_ACTION","payload":{
        "eventId":"e1","callId":"c1","sessionId":"s1","subAccountId":"acme",
        "callStatus":"CALL_RECEIVED","source":"+6591110000","destination":"+6568888888",
        "sourceRefId":null,"callDuration":0,"sipCode":200,"extraField":{"nested":true}}}"#;

    fn call_action(body: &str) -> CallAction {
        match Webhook::from_slice(body.as_bytes()).unwrap() {
            Webhook::CallAction(a) => a,
            other => panic!("not a call action: {other:?}"),
        }
    }

    /// The one-pass parse and the two-pass one agree on every body, valid or not.
    fn same_on_both_paths(body: &str) -> Result<Webhook, WebhookError> {
        let one = Webhook::from_slice(body.as_bytes());
        assert_eq!(
            one,
            Webhook::from_slice_in_two_passes(body.as_bytes()),
            "{body}"
        );
        one
    }

    #[test]
    fn the_platforms_bodies_are_parsed_in_one_pass_and_alike_in_two() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/examples");
        let mut webhooks = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let body = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            if !body.contains("\"eventType\"") {
                continue; // a Callflows API answer, not a webhook
            }
            webhooks += 1;
            same_on_both_paths(&body).unwrap();
            let one_pass = serde_json::from_str::<InOnePass>(&body).unwrap();
            assert!(one_pass.0.is_some(), "not parsed in one pass: {body}");
        }
        assert!(webhooks >= 5, "{webhooks} webhook fixtures");
        assert!(
            serde_json::from_str::<InOnePass>(CALL_RECEIVED)
                .unwrap()
                .0
                .is_some()
        );
    }

    #[test]
    fn bodies_the_one_pass_parse_leaves_to_the_two_pass_one_get_the_same_answer() {
        let action = r#"{"sessionId":"s","callStatus":"ACTION_COMPLETED"}"#;
        for body in [
            // The payload before the event type: parsed, in two passes.
            format!(r#"{{"payload":{action},"eventType":"CALL_ACTION"}}"#),
            format!(r#"{{"payload":{action},"namespace":"VOICE","eventType":"CALL_ACTION"}}"#),
            // Duplicates, nulls, unknown or mistyped event types.
            format!(r#"{{"eventType":"CALL_ACTION","payload":{action},"payload":{action}}}"#),
            format!(r#"{{"eventType":"CALL_ACTION","eventType":"CALL_STATUS","payload":{action}}}"#),
            format!(r#"{{"eventType":"CALL_ACTION","payload":{action},"eventType":"CALL_ACTION"}}"#),
            format!(r#"{{"eventType":null,"payload":{action}}}"#),
            format!(r#"{{"eventType":7,"payload":{action}}}"#),
            format!(r#"{{"eventType":"CALL_LATER","payload":{action}}}"#),
            r#"{"eventType":"CALL_ACTION"}"#.to_owned(),
            r#"{"eventType":"CALL_ACTION","payload":null}"#.to_owned(),
            // Payloads that fail to parse or their checks.
            r#"{"eventType":"CALL_ACTION","payload":{"callStatus":"CALL_RECEIVED"}}"#.to_owned(),
            r#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"LATER"}}"#
                .to_owned(),
            r#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"CALL_RECEIVED"}}"#
                .to_owned(),
            r#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"ACTION_COMPLETED","sipCode":"x"}}"#
                .to_owned(),
            r#"{"eventType":"SESSION_SUMMARY","payload":{"sessionStatus":"COMPLETED"}}"#.to_owned(),
            r#"{"eventType":"CALL_STATUS","payload":{"sessionId":""}}"#.to_owned(),
            r#"{"eventType":"CALL_STATUS","payload":[1]}"#.to_owned(),
            // Not a webhook object, or not JSON.
            format!(r#"{{"eventType":"CALL_ACTION","payload":{action}}} trailing"#),
            format!(r#"["CALL_ACTION",{action}]"#),
            r#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s""#.to_owned(),
            "[]".to_owned(),
            "".to_owned(),
        ] {
            let _ = same_on_both_paths(&body);
        }
        // And the first two did parse.
        let late = format!(r#"{{"payload":{action},"eventType":"CALL_ACTION"}}"#);
        assert!(matches!(
            same_on_both_paths(&late),
            Ok(Webhook::CallAction(_))
        ));
    }

    #[test]
    fn parses_call_received_ignoring_unknown_fields() {
        let a = call_action(CALL_RECEIVED);
        assert_eq!(a.session_id, "s1");
        assert_eq!(a.call_status, CallStatus::CallReceived);
        assert_eq!(a.destination, "+6568888888");
        assert_eq!(a.source_ref_id, None);
        assert_eq!(a.sip_code, Some(200));
        assert_eq!(a.dtmf(), None);
    }

    #[test]
    fn event_data_as_map_string_or_null() {
        let body = |ed: &str| {
            format!(
                r#"{{"eventType":"CALL_ACTION","payload":{{"sessionId":"s","callStatus":"ACTION_COMPLETED","eventData":{ed}}}}}"#
            )
        };
        assert_eq!(call_action(&body(r#"{"dtmf":"12"}"#)).dtmf(), Some("12"));
        assert_eq!(call_action(&body(r#""7""#)).dtmf(), Some("7"));
        assert_eq!(call_action(&body("null")).dtmf(), None);
        assert_eq!(
            call_action(&body(r#"{"dtmf":null,"asrCaptured":null}"#)).dtmf(),
            None
        );
        assert_eq!(call_action(&body(r#"{"dtmf":""}"#)).dtmf(), None);
    }

    #[test]
    fn integers_as_strings() {
        let a = call_action(
            r#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"ACTION_COMPLETED","callDuration":"14","sipCode":"486"}}"#,
        );
        assert_eq!(a.call_duration, Some(14));
        assert_eq!(a.sip_code, Some(486));
    }

    #[test]
    fn missing_session_id_names_the_field() {
        let err = Webhook::from_slice(
            br#"{"eventType":"CALL_ACTION","payload":{"callStatus":"CALL_RECEIVED","destination":"+65"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            WebhookError::MissingField {
                field: "payload.sessionId"
            }
        );
        assert_eq!(
            err.to_string(),
            "payload.sessionId: is missing but it is required"
        );
        let err =
            Webhook::from_slice(br#"{"eventType":"SESSION_SUMMARY","payload":{"sessionId":null}}"#)
                .unwrap_err();
        assert_eq!(err.field(), Some("payload.sessionId"));
    }

    #[test]
    fn unknown_event_type_and_missing_envelope_fields() {
        let err = Webhook::from_slice(br#"{"eventType":"CALL_PARTY","payload":{}}"#).unwrap_err();
        assert_eq!(err, WebhookError::UnknownEventType("CALL_PARTY".into()));
        assert_eq!(err.field(), Some("eventType"));
        let err = Webhook::from_slice(br#"{"payload":{}}"#).unwrap_err();
        assert_eq!(err.field(), Some("eventType"));
        let err = Webhook::from_slice(br#"{"eventType":"CALL_ACTION"}"#).unwrap_err();
        assert_eq!(err.field(), Some("payload"));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = Webhook::from_slice(
            br#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"ACTION_COMPLETED","sipCode":"busy"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("payload.sipCode"), "{err}");
        let err = Webhook::from_slice(
            br#"{"eventType":"CALL_ACTION","payload":{"sessionId":42,"callStatus":"ACTION_COMPLETED"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("payload.sessionId"), "{err}");
        let err = Webhook::from_slice(br#"{"eventType":"CALL_ACTION","payload":[1]}"#).unwrap_err();
        assert_eq!(err.field(), Some("payload"), "{err}");
        let err = Webhook::from_slice(br#"[1,2]"#).unwrap_err();
        assert_eq!(err.field(), Some("$"), "{err}");
    }

    #[test]
    fn unknown_or_missing_call_status() {
        let err = Webhook::from_slice(
            br#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"DANCING"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("payload.callStatus"));
        let err =
            Webhook::from_slice(br#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s"}}"#)
                .unwrap_err();
        assert_eq!(
            err,
            WebhookError::MissingField {
                field: "payload.callStatus"
            }
        );
        let err = Webhook::from_slice(
            br#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"CALL_RECEIVED"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            WebhookError::MissingField {
                field: "payload.destination"
            }
        );
    }

    #[test]
    fn invalid_json_reports_position() {
        let err = Webhook::from_slice(b"{\"eventType\": \n  \"CALL_ACTION\",,}").unwrap_err();
        match err {
            WebhookError::InvalidJson { line, column, .. } => {
                assert_eq!(line, 2);
                assert_eq!(column, 17);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn session_summary_statuses() {
        let summary = |s: &str| {
            let body = format!(
                r#"{{"eventType":"SESSION_SUMMARY","version":5,"payload":{{"sessionId":"s","sessionStatus":"{s}","callCount":"2","errorDetails":{{"errorMsg":"x","errorCode":"-2003"}}}}}}"#
            );
            match Webhook::from_slice(body.as_bytes()).unwrap() {
                Webhook::SessionSummary(s) => s,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(summary("NO_ANSWER").session_status, SessionStatus::NoAnswer);
        assert_eq!(summary("NO_ANSWER").call_count, Some(2));
        assert_eq!(
            summary("NO_ANSWER").error_details.unwrap().error_code,
            Some(-2003)
        );
        assert_eq!(summary("WEIRD").session_status.label(), "OTHER");
    }

    fn action_with(fields: &str) -> CallAction {
        call_action(&format!(
            r#"{{"eventType":"CALL_ACTION","payload":{{"sessionId":"s","callStatus":"ACTION_COMPLETED"{fields}}}}}"#
        ))
    }

    #[test]
    fn dtmf_in_each_of_its_three_places() {
        assert_eq!(
            action_with(r#","eventData":{"dtmf":"3"}"#).dtmf(),
            Some("3")
        );
        assert_eq!(action_with(r#","eventData":"3""#).dtmf(), Some("3"));
        assert_eq!(action_with(r#","dtmf":"3""#).dtmf(), Some("3"));
        // A backend that parsed the digits as a number.
        assert_eq!(action_with(r#","dtmf":3"#).dtmf(), Some("3"));
        assert_eq!(action_with(r#","dtmf":null"#).dtmf(), None);
        assert_eq!(action_with("").dtmf(), None);
    }

    #[test]
    fn dtmf_precedence_event_data_first_then_payload() {
        assert_eq!(
            action_with(r#","eventData":{"dtmf":"1"},"dtmf":"2""#).dtmf(),
            Some("1")
        );
        assert_eq!(
            action_with(r#","eventData":"1","dtmf":"2""#).dtmf(),
            Some("1")
        );
        // A null or empty eventData.dtmf holds no digits: the next place is read.
        assert_eq!(
            action_with(r#","eventData":{"dtmf":null},"dtmf":"2""#).dtmf(),
            Some("2")
        );
        assert_eq!(
            action_with(r#","eventData":"","dtmf":"2""#).dtmf(),
            Some("2")
        );
        assert_eq!(
            action_with(r#","eventData":null,"dtmf":"2""#).dtmf(),
            Some("2")
        );
    }

    #[test]
    fn malformed_dtmf_names_its_field() {
        let err = Webhook::from_slice(
            br#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"ACTION_COMPLETED","dtmf":{"x":1}}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("payload.dtmf"), "{err}");
        let err = Webhook::from_slice(
            br#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"ACTION_COMPLETED","eventData":[1]}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("payload.eventData"), "{err}");
    }

    #[test]
    fn dtmf_received_is_a_continuation_without_client_action_id() {
        let a = call_action(
            r#"{"eventType":"CALL_ACTION","payload":{"sessionId":"s","callStatus":"DTMF_RECEIVED","dtmf":"42"}}"#,
        );
        assert_eq!(a.call_status, CallStatus::DtmfReceived);
        assert_eq!(a.call_status.as_str(), "DTMF_RECEIVED");
        assert_eq!(a.client_action_id, None);
        assert_eq!(a.dtmf(), Some("42"));
    }

    #[test]
    fn ref_ids_written_as_the_string_null_are_absent() {
        let a = action_with(r#","sourceRefId":"null","destinationRefId":"vn-1""#);
        assert_eq!(a.source_ref_id, None);
        assert_eq!(a.destination_ref_id.as_deref(), Some("vn-1"));
    }

    #[test]
    fn call_status_events_are_never_refused_for_their_content() {
        for status in [
            "CALL_INITIATED",
            "CALL_RECEIVED",
            "CALL_CONNECTED",
            "CALL_DISCONNECTED",
            "CALL_UPDATED",
            "DTMF_RECEIVED",
            "SOMETHING_NEW",
        ] {
            let body = format!(
                r#"{{"eventType":"CALL_STATUS","payload":{{"sessionId":"s","callStatus":"{status}","sipCode":"busy","callDuration":[1],"timestamp":1763630102,"eventId":7,"dtmf":"5","more":{{"a":1}}}}}}"#
            );
            match Webhook::from_slice(body.as_bytes()) {
                Ok(Webhook::CallStatus(event)) => {
                    assert_eq!(event.call_status.as_deref(), Some(status));
                    assert_eq!(event.sip_code, None);
                    assert_eq!(event.call_duration, None);
                    assert_eq!(event.timestamp.as_deref(), Some("1763630102"));
                    assert_eq!(event.event_id, "7");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        // Only the session id routes it, and it is still required.
        let err =
            Webhook::from_slice(br#"{"eventType":"CALL_STATUS","payload":{"callStatus":"X"}}"#)
                .unwrap_err();
        assert_eq!(err.field(), Some("payload.sessionId"));
    }

    fn summary(payload: &str) -> SessionSummary {
        let body = format!(
            r#"{{"eventType":"SESSION_SUMMARY","version":1,"payload":{{"sessionId":"s"{payload}}}}}"#
        );
        match Webhook::from_slice(body.as_bytes()) {
            Ok(Webhook::SessionSummary(s)) => s,
            other => panic!("{payload}: {other:?}"),
        }
    }

    #[test]
    fn a_loose_text_field_reads_any_scalar_as_serde_json_writes_it() {
        for (value, text) in [
            (r#""HANGUP""#, Some("HANGUP")),
            (r#""a\"b""#, Some("a\"b")),
            ("5", Some("5")),
            ("-5", Some("-5")),
            ("1.0", Some("1.0")),
            ("2.5e3", Some("2500.0")),
            ("18446744073709551615", Some("18446744073709551615")),
            ("true", Some("true")),
            ("null", None),
            (r#"{"a":[1,{"b":2}]}"#, None),
            ("[1,[2]]", None),
        ] {
            let s = summary(&format!(r#","lastAction":{value},"endTime":"t""#));
            assert_eq!(s.last_action.as_deref(), text, "{value}");
            assert_eq!(
                s.end_time.as_deref(),
                Some("t"),
                "{value}: the next field is read"
            );
        }
    }

    #[test]
    fn a_summary_repeating_a_key_is_read_with_the_last_value() {
        let s = summary(
            r#","sessionStatus":"ERROR","sessionStatus":"COMPLETED","details":{
                "callA":{"callId":"a","callDuration":3,"callDuration":31},
                "callB":[1,2],"callC":null}"#,
        );
        assert_eq!(s.session_status, SessionStatus::Completed);
        assert_eq!(s.details.keys().collect::<Vec<_>>(), ["callA"]);
        assert_eq!(s.details["callA"].call_duration, Some(31));
    }

    #[test]
    fn every_session_status_spelling() {
        let status = |s: &str| summary(&format!(r#","sessionStatus":"{s}""#)).session_status;
        assert_eq!(status("CANCELED"), SessionStatus::Canceled);
        assert_eq!(status("CANCELLED"), SessionStatus::Canceled);
        assert_eq!(status("CANCELLED").label(), "CANCELED");
        assert_eq!(
            status("COMPLETED_UNSUBSCRIBED"),
            SessionStatus::CompletedUnsubscribed
        );
        assert_eq!(
            status("COMPLETED_UNSUB_ERROR").label(),
            "COMPLETED_UNSUB_ERROR"
        );
        assert_eq!(
            status("UNSUBSCRIBED_CONTACT").label(),
            "UNSUBSCRIBED_CONTACT"
        );
        assert_eq!(
            status("BRAND_NEW"),
            SessionStatus::Other("BRAND_NEW".into())
        );
        assert_eq!(status("BRAND_NEW").label(), "OTHER");
        assert_eq!(summary("").session_status, SessionStatus::Missing);
        assert_eq!(
            summary(r#","sessionStatus":5"#).session_status.label(),
            "OTHER"
        );
        // Every known status labels itself and reads back from its label.
        for known in SessionStatus::KNOWN {
            assert_eq!(SessionStatus::from_wire(Some(known.label())), known);
        }
    }

    #[test]
    fn legs_in_either_case_with_loose_fields() {
        let s = summary(
            r#","details":{
                "CallA":{"callId":"a","callStatus":"ERROR","callDuration":"31","sourceRefId":"null","destinationRefId":"vn"},
                "CallB":{"callId":"b","callStatus":"CANCELLED","callDuration":0,"callQuality":"n/a"},
                "note":"not a leg"}"#,
        );
        assert_eq!(s.details.keys().collect::<Vec<_>>(), ["callA", "callB"]);
        let a = &s.details["callA"];
        assert_eq!(a.call_status.as_deref(), Some("ERROR"));
        assert_eq!(a.call_duration, Some(31));
        assert_eq!(a.source_ref_id, None);
        assert_eq!(a.destination_ref_id.as_deref(), Some("vn"));
        let b = &s.details["callB"];
        assert_eq!(b.call_duration, Some(0));
        assert_eq!(b.call_quality, None);
    }

    #[test]
    fn error_codes_as_integers_or_strings() {
        let code = |c: &str| {
            summary(&format!(
                r#","sessionStatus":"ERROR","errorDetails":{{"errorMsg":"The call flow provided is invalid","errorCode":{c}}}"#
            ))
            .error_details
            .and_then(|e| e.error_code)
        };
        assert_eq!(code("-2003"), Some(-2003));
        assert_eq!(code(r#""-2003""#), Some(-2003));
        assert_eq!(code(r#""E_UNKNOWN""#), None);
        assert_eq!(code("null"), None);
        assert_eq!(summary(r#","errorDetails":"oops""#).error_details, None);
    }
}
