//! The callflow validator: every rule of the platform's callflow spec (`docs/protocol.md`), on arbitrary JSON.
//!
//! It reports *every* violation, not the first, each with the platform's status code and the
//! JSON path of the offending value, sorted by path:
//!
//! ```text
//! -1009 $.callflow[1].params.repetition: must be 1..=3, got 4
//! warning: -1006 $.callflow[0].params.overallTimeout: equals digitTimeout (10000); ...
//! ```
//!
//! A [`Severity::Warning`] is something the platform's own examples do although its rules
//! forbid it (`digitTimeout == overallTimeout`), or that it accepts but that loses what the
//! caller does (an action after `sayAndCapture`). Warnings are reported beside the errors;
//! [`Rules::strict`] makes them errors. Callflows Switchboard emits have neither.
//!
//! Codes the validator cannot check because only the platform knows the facts behind them:
//! -1004 (the sub-account has no DTMF callback URL, for the legacy API) and -1018..-1020
//! (scenario errors). -1014 (caller id not whitelisted) is checked only against a list given in
//! [`Rules::caller_ids`], and -1015 (`validUntil` expired) only against a given [`Rules::now`].
//!
//! Scalar rules are the ones in [`crate::scalar`]; this module adds types, required and unknown
//! fields, cross-field rules and the rules on the sequence of actions.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::callflow::{Callflow, MAX_ACTIONS};
use crate::code::StatusCode;
use crate::scalar::{
    self, DigitCount, MAX_TEXT_CHARS, Msisdn, Repetition, ScalarError, check_client_action_id,
    check_file_url, check_msisdn, check_text, check_voice_profile,
};

/// What the callflow is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Our answer to a `CALL_ACTION` webhook. The caller's leg exists, so at most one
    /// `makeCall` (-1011).
    Webhook,
    /// The body of a Callflows API request: the first action must be `makeCall` (-1013), a
    /// second `makeCall` is bridged to the first once answered (a third is -1010), and
    /// `validUntil` and `clientRequestId` are allowed beside `callflow`.
    Api,
}

/// What to validate against: the mode, and the facts about the account the caller knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules<'a> {
    /// What the callflow is for.
    pub mode: Mode,
    /// Report warnings as errors.
    pub strict: bool,
    /// The sub-account's whitelisted caller ids. When given, a `makeCall` `source` outside
    /// the list is -1014; when `None`, sources are not checked (the platform knows the list).
    pub caller_ids: Option<&'a [String]>,
    /// The current time. When given, a `validUntil` that is not later is -1015.
    pub now: Option<DateTime<Utc>>,
}

impl Rules<'_> {
    /// The platform's rules for `mode`, with no account facts and warnings as warnings.
    pub const fn new(mode: Mode) -> Self {
        Self {
            mode,
            strict: false,
            caller_ids: None,
            now: None,
        }
    }
}

/// How a violation weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The platform refuses the callflow (or, with [`Rules::strict`], we do).
    Error,
    /// The platform takes the callflow, but it is risky or breaks a documented rule the
    /// platform does not enforce.
    Warning,
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    /// An array index.
    Index(usize),
    /// An object key.
    Key(Cow<'static, str>),
}

/// A JSON path such as `$.callflow[1].params.repetition`. Paths order by their segments, so
/// `[2]` sorts before `[10]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct JsonPath(Vec<Segment>);

impl JsonPath {
    /// The root, `$`.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a key.
    pub fn key(&self, key: impl Into<Cow<'static, str>>) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.into()));
        Self(segments)
    }

    /// This path extended by an index.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for segment in &self.0 {
            match segment {
                Segment::Index(i) => write!(f, "[{i}]")?,
                Segment::Key(k) => write!(f, ".{k}")?,
            }
        }
        Ok(())
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// Where (first, so violations sort by path).
    pub path: JsonPath,
    /// The platform's status code (for a warning: the one the rule it bends would give).
    pub code: StatusCode,
    /// What is wrong.
    pub message: String,
    /// Whether it is an error or a warning.
    pub severity: Severity,
}

impl Violation {
    /// Whether the callflow is refused for it.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        write!(f, "{} {}: {}", self.code, self.path, self.message)
    }
}

/// Validates a callflow body given as bytes. Invalid JSON is one -1001 violation at `$` that
/// carries serde's line and column.
pub fn validate_slice(body: &[u8], mode: Mode) -> Vec<Violation> {
    validate_slice_with(body, &Rules::new(mode))
}

/// [`validate_slice`] against chosen [`Rules`].
pub fn validate_slice_with(body: &[u8], rules: &Rules<'_>) -> Vec<Violation> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => validate_json_with(&value, rules),
        Err(err) => vec![Violation {
            path: JsonPath::root(),
            code: StatusCode::InvalidJson,
            message: format!("invalid JSON: {err}"),
            severity: Severity::Error,
        }],
    }
}

/// Validates a typed callflow (for callflows assembled by hand rather than by the builder).
pub fn validate_callflow(callflow: &Callflow, mode: Mode) -> Vec<Violation> {
    match serde_json::to_value(callflow) {
        Ok(value) => validate_json(&value, mode),
        Err(err) => vec![Violation {
            path: JsonPath::root(),
            code: StatusCode::Unknown,
            message: format!("cannot serialize: {err}"),
            severity: Severity::Error,
        }],
    }
}

/// Validates a callflow given as JSON. Returns the violations, errors and warnings, sorted by
/// path; empty when the callflow is valid and has nothing to warn about.
pub fn validate_json(value: &Value, mode: Mode) -> Vec<Violation> {
    validate_json_with(value, &Rules::new(mode))
}

/// [`validate_json`] against chosen [`Rules`].
pub fn validate_json_with(value: &Value, rules: &Rules<'_>) -> Vec<Violation> {
    let mut v = Validator {
        rules,
        violations: Vec::new(),
    };
    v.callflow_body(value, rules.mode);
    v.violations.sort();
    v.violations
}

const ACTIONS: &str = "say, sayAndCapture, makeCall, hangup, playFile";

/// The platform's `validUntil` format: UTC, milliseconds (read as optional, as in 8x8's own
/// examples of other timestamps).
const VALID_UNTIL_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.fZ";
/// How we write a time in a message about `validUntil`.
const VALID_UNTIL_DISPLAY: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

struct Validator<'r> {
    rules: &'r Rules<'r>,
    violations: Vec<Violation>,
}

impl Validator<'_> {
    fn push(&mut self, path: JsonPath, code: StatusCode, message: impl Into<String>) {
        self.violations.push(Violation {
            path,
            code,
            message: message.into(),
            severity: Severity::Error,
        });
    }

    /// A warning, or an error under [`Rules::strict`].
    fn warn(&mut self, path: JsonPath, code: StatusCode, message: impl Into<String>) {
        let severity = if self.rules.strict {
            Severity::Error
        } else {
            Severity::Warning
        };
        self.violations.push(Violation {
            path,
            code,
            message: message.into(),
            severity,
        });
    }

    fn scalar(&mut self, path: JsonPath, result: Result<(), ScalarError>) {
        if let Err(err) = result {
            self.push(path, err.code, err.message);
        }
    }

    fn object<'v>(&mut self, path: &JsonPath, value: &'v Value) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.push(
                    path.clone(),
                    StatusCode::InvalidEntry,
                    format!("must be an object, got {}", kind(other)),
                );
                None
            }
        }
    }

    fn unknown_keys(&mut self, path: &JsonPath, map: &Map<String, Value>, allowed: &[&str]) {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.push(
                    path.key(key.clone()),
                    StatusCode::InvalidEntry,
                    format!("unknown field; expected one of {}", allowed.join(", ")),
                );
            }
        }
    }

    fn callflow_body(&mut self, value: &Value, mode: Mode) {
        let root = JsonPath::root();
        let Some(body) = self.object(&root, value) else {
            return;
        };
        let allowed: &[&str] = match mode {
            Mode::Webhook => &["clientActionId", "callflow"],
            Mode::Api => &[
                "clientActionId",
                "callflow",
                "validUntil",
                "clientRequestId",
            ],
        };
        self.unknown_keys(&root, body, allowed);
        if let Some(id) = self.string(&root, body, "clientActionId", false) {
            self.scalar(root.key("clientActionId"), check_client_action_id(id));
        }
        if mode == Mode::Api {
            if let Some(until) = self.string(&root, body, "validUntil", false) {
                self.valid_until(root.key("validUntil"), until);
            }
            self.string(&root, body, "clientRequestId", false);
        }
        let path = root.key("callflow");
        let actions = match body.get("callflow") {
            None | Some(Value::Null) => {
                self.push(
                    path,
                    StatusCode::InvalidEntry,
                    "is missing but it is required",
                );
                return;
            }
            Some(Value::Array(actions)) => actions,
            Some(other) => {
                self.push(
                    path,
                    StatusCode::InvalidEntry,
                    format!("must be an array of actions, got {}", kind(other)),
                );
                return;
            }
        };
        if actions.is_empty() {
            self.push(
                path,
                StatusCode::InvalidEntry,
                "must hold at least one action",
            );
            return;
        }
        if actions.len() > MAX_ACTIONS {
            self.push(
                path.clone(),
                StatusCode::TooManyActions,
                format!(
                    "holds {} actions; at most {MAX_ACTIONS} are allowed",
                    actions.len()
                ),
            );
        }
        let names: Vec<Option<&str>> = actions
            .iter()
            .enumerate()
            .map(|(i, action)| self.action(&path.index(i), action))
            .collect();
        self.sequence(&path, &names, mode);
    }

    /// The rules on the order of actions.
    fn sequence(&mut self, path: &JsonPath, names: &[Option<&str>], mode: Mode) {
        if mode == Mode::Api && names.first().copied().flatten() != Some("makeCall") {
            self.push(
                path.index(0).key("action"),
                StatusCode::FirstActionNotMakeCall,
                "the first action of a Callflows API request must be makeCall",
            );
        }
        // The caller's leg exists in a webhook reply; an API request may bridge a second call
        // to the first once answered.
        let make_calls_allowed = match mode {
            Mode::Webhook => 1,
            Mode::Api => 2,
        };
        let mut make_calls = Vec::new();
        let mut capture_at = None;
        let mut hangup_at = None;
        for (i, name) in names.iter().enumerate() {
            let here = path.index(i);
            if let Some(h) = hangup_at {
                self.push(
                    here.clone(),
                    StatusCode::HangupNotLast,
                    format!("nothing may follow the hangup at $.callflow[{h}]"),
                );
            } else if let Some(c) = capture_at {
                self.warn(
                    here.clone(),
                    StatusCode::TooManyActions,
                    format!(
                        "follows the sayAndCapture at $.callflow[{c}]: the platform may ignore the digits the caller enters; end the callflow with the sayAndCapture and send this in the answer to the next webhook"
                    ),
                );
            }
            match *name {
                Some("makeCall") if make_calls.len() >= make_calls_allowed => {
                    let earlier = make_calls
                        .iter()
                        .map(|i| format!("$.callflow[{i}]"))
                        .collect::<Vec<_>>()
                        .join(" and ");
                    match mode {
                        Mode::Webhook => self.push(
                            here,
                            StatusCode::MultipleDestinations,
                            format!(
                                "a webhook answer may hold one makeCall (the caller's leg is the other); the first is {earlier}"
                            ),
                        ),
                        Mode::Api => self.push(
                            here,
                            StatusCode::TooManyActions,
                            format!(
                                "a Callflows API request may hold at most two makeCall actions; they are {earlier}"
                            ),
                        ),
                    }
                }
                Some("makeCall") => make_calls.push(i),
                Some("sayAndCapture") => {
                    capture_at.get_or_insert(i);
                }
                Some("hangup") => {
                    hangup_at.get_or_insert(i);
                }
                _ => {}
            }
        }
    }

    /// Checks one action; returns its name when known.
    fn action<'v>(&mut self, path: &JsonPath, value: &'v Value) -> Option<&'v str> {
        let action = self.object(path, value)?;
        self.unknown_keys(path, action, &["action", "params"]);
        let name = self.string(path, action, "action", true)?;
        let params_path = path.key("params");
        let params = action.get("params").filter(|p| !p.is_null());
        match name {
            "hangup" => {
                if let Some(params) = params
                    && params.as_object().is_none_or(|p| !p.is_empty())
                {
                    self.push(
                        params_path,
                        StatusCode::InvalidEntry,
                        "hangup takes no parameters",
                    );
                }
                return Some("hangup");
            }
            "say" | "sayAndCapture" | "makeCall" | "playFile" => {}
            other => {
                self.push(
                    path.key("action"),
                    StatusCode::UnknownAction,
                    format!("unknown action {other:?}; expected one of {ACTIONS}"),
                );
                return None;
            }
        }
        let Some(params) = params else {
            self.push(
                params_path,
                StatusCode::InvalidEntry,
                "is missing but it is required",
            );
            return Some(name);
        };
        let Some(params) = self.object(&params_path, params) else {
            return Some(name);
        };
        let p = &params_path;
        match name {
            "say" => {
                self.unknown_keys(p, params, &["text", "voiceProfile", "repetition", "speed"]);
                self.text(p, params, "text", true);
                self.voice(p, params);
                self.int(
                    p,
                    params,
                    "repetition",
                    Repetition::MIN.into(),
                    Repetition::MAX.into(),
                );
                self.speed(p, params);
            }
            "sayAndCapture" => self.say_and_capture(p, params),
            "makeCall" => {
                self.unknown_keys(p, params, &["source", "destination", "callRecording"]);
                if let Some(source) = self.string(p, params, "source", true) {
                    let valid = check_msisdn(source, StatusCode::InvalidEntry);
                    let whitelisted = valid.is_ok() && self.caller_id_whitelisted(source);
                    self.scalar(p.key("source"), valid);
                    if !whitelisted && let Some(ids) = self.rules.caller_ids {
                        self.push(
                            p.key("source"),
                            StatusCode::CallerIdNotWhitelisted,
                            format!(
                                "{source:?} is not one of the sub-account's caller ids ({})",
                                ids.join(", ")
                            ),
                        );
                    }
                }
                if let Some(dest) = self.string(p, params, "destination", true) {
                    self.scalar(
                        p.key("destination"),
                        check_msisdn(dest, StatusCode::InvalidMsisdn),
                    );
                }
                self.bool(p, params, "callRecording");
            }
            "playFile" => {
                self.unknown_keys(p, params, &["fileUrl", "repetition"]);
                if let Some(url) = self.string(p, params, "fileUrl", true) {
                    self.scalar(p.key("fileUrl"), check_file_url(url));
                }
                self.int(
                    p,
                    params,
                    "repetition",
                    Repetition::MIN.into(),
                    Repetition::MAX.into(),
                );
            }
            _ => unreachable!("action names are matched above"),
        }
        Some(name)
    }

    fn say_and_capture(&mut self, p: &JsonPath, params: &Map<String, Value>) {
        self.unknown_keys(
            p,
            params,
            &[
                "promptMessage",
                "voiceProfile",
                "successMessage",
                "failureMessage",
                "speed",
                "completeOnHash",
                "minDigits",
                "maxDigits",
                "digitTimeout",
                "overallTimeout",
                "noOfTries",
            ],
        );
        self.text(p, params, "promptMessage", true);
        self.voice(p, params);
        self.text(p, params, "successMessage", false);
        self.text(p, params, "failureMessage", false);
        self.speed(p, params);
        let on_hash = self.bool(p, params, "completeOnHash");
        let digits = (DigitCount::MIN.into(), DigitCount::MAX.into());
        let min = self.int(p, params, "minDigits", digits.0, digits.1);
        let max = self.int(p, params, "maxDigits", digits.0, digits.1);
        let digit = self.int(p, params, "digitTimeout", 1, u64::from(u32::MAX));
        let overall = self.int(p, params, "overallTimeout", 1, u64::from(u32::MAX));
        self.int(p, params, "noOfTries", 1, u64::from(u8::MAX));

        let present = |key: &str| params.get(key).is_some_and(|v| !v.is_null());
        if on_hash == Some(false) && !present("maxDigits") {
            self.push(
                p.key("maxDigits"),
                StatusCode::MaxDigitsRequiredWithoutHash,
                "is required when completeOnHash is false",
            );
        }
        if present("minDigits") && !present("maxDigits") {
            self.push(
                p.key("maxDigits"),
                StatusCode::MaxDigitsRequiredWithMin,
                "is required when minDigits is given",
            );
        }
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            self.push(
                p.key("minDigits"),
                StatusCode::InvalidEntry,
                format!("must not exceed maxDigits ({max}), got {min}"),
            );
        }
        if present("digitTimeout") && !present("overallTimeout") {
            self.push(
                p.key("overallTimeout"),
                StatusCode::OverallTimeoutRequired,
                "is required when digitTimeout is given",
            );
        }
        match (digit, overall) {
            (Some(digit), Some(overall)) if digit > overall => self.push(
                p.key("overallTimeout"),
                StatusCode::OverallTimeoutNotGreater,
                format!("must be greater than digitTimeout ({digit}), got {overall}"),
            ),
            // Every sayAndCapture example of 8x8's own documentation does this, and the
            // platform runs it; the written rule says greater.
            (Some(digit), Some(overall)) if digit == overall => self.warn(
                p.key("overallTimeout"),
                StatusCode::OverallTimeoutNotGreater,
                format!(
                    "equals digitTimeout ({digit}); the platform's rule is that it must be greater, so make it larger"
                ),
            ),
            _ => {}
        }
    }

    /// Whether a `makeCall` source is allowed by [`Rules::caller_ids`] (always, without a list).
    fn caller_id_whitelisted(&self, source: &str) -> bool {
        self.rules
            .caller_ids
            .is_none_or(|ids| ids.iter().any(|id| Msisdn::same_number(id, source)))
    }

    /// `validUntil`: `YYYY-MM-DDTHH:MM:SS.SSSZ`, and later than [`Rules::now`] when given.
    fn valid_until(&mut self, path: JsonPath, until: &str) {
        let Ok(at) = NaiveDateTime::parse_from_str(until, VALID_UNTIL_FORMAT) else {
            self.push(
                path,
                StatusCode::InvalidEntry,
                format!(
                    "{until:?} is not a time like 2026-01-31T23:59:59.000Z (UTC, milliseconds)"
                ),
            );
            return;
        };
        if let Some(now) = self.rules.now
            && at.and_utc() <= now
        {
            self.push(
                path,
                StatusCode::ValidityExpired,
                format!(
                    "{until:?} is already past (now {}); the platform would not place the call",
                    now.format(VALID_UNTIL_DISPLAY)
                ),
            );
        }
    }

    /// A string field; reports a missing required one and a wrong type.
    fn string<'v>(
        &mut self,
        path: &JsonPath,
        map: &'v Map<String, Value>,
        key: &'static str,
        required: bool,
    ) -> Option<&'v str> {
        match map.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.push(
                        path.key(key),
                        StatusCode::InvalidEntry,
                        "is missing but it is required",
                    );
                }
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.push(
                    path.key(key),
                    StatusCode::InvalidEntry,
                    format!("must be a string, got {}", kind(other)),
                );
                None
            }
        }
    }

    fn text(
        &mut self,
        path: &JsonPath,
        map: &Map<String, Value>,
        key: &'static str,
        required: bool,
    ) {
        if let Some(text) = self.string(path, map, key, required) {
            self.scalar(path.key(key), check_text(text));
        }
    }

    fn voice(&mut self, path: &JsonPath, map: &Map<String, Value>) {
        if let Some(voice) = self.string(path, map, "voiceProfile", true) {
            self.scalar(path.key("voiceProfile"), check_voice_profile(voice));
        }
    }

    fn bool(
        &mut self,
        path: &JsonPath,
        map: &Map<String, Value>,
        key: &'static str,
    ) -> Option<bool> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.push(
                    path.key(key),
                    StatusCode::InvalidEntry,
                    format!("must be true or false, got {}", kind(other)),
                );
                None
            }
        }
    }

    /// An optional integer field in `min..=max`.
    fn int(
        &mut self,
        path: &JsonPath,
        map: &Map<String, Value>,
        key: &'static str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let value = map.get(key)?;
        let number = match value {
            Value::Null => return None,
            Value::Number(n) => n,
            other => {
                self.push(
                    path.key(key),
                    StatusCode::InvalidEntry,
                    format!("must be an integer, got {}", kind(other)),
                );
                return None;
            }
        };
        let Some(n) = number.as_u64() else {
            let message = if number.as_i64().is_some() {
                format!("must be {min}..={max}, got {number}")
            } else {
                format!("must be an integer, got {number}")
            };
            self.push(path.key(key), StatusCode::InvalidEntry, message);
            return None;
        };
        match scalar::check_range_u64(n, min, max) {
            Ok(()) => Some(n),
            Err(err) => {
                self.push(path.key(key), err.code, err.message);
                None
            }
        }
    }

    fn speed(&mut self, path: &JsonPath, map: &Map<String, Value>) {
        match map.get("speed") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => {
                let speed = n.as_f64().unwrap_or(f64::NAN);
                self.scalar(path.key("speed"), scalar::check_speed(speed));
            }
            Some(other) => self.push(
                path.key("speed"),
                StatusCode::InvalidEntry,
                format!("must be a number, got {}", kind(other)),
            ),
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// Text length is a scalar rule; keep the constant visible here for readers of the rules.
const _: () = assert!(MAX_TEXT_CHARS == 3000);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(value: Value) -> Vec<String> {
        validate_json(&value, Mode::Webhook)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn paths_sort_numerically() {
        let a = JsonPath::root().key("callflow").index(2);
        let b = JsonPath::root().key("callflow").index(10);
        assert!(a < b);
        assert_eq!(b.key("params").to_string(), "$.callflow[10].params");
    }

    #[test]
    fn reports_every_violation_sorted() {
        let got = check(json!({"callflow": [
            {"action": "say", "params": {"text": "hi", "voiceProfile": "en-US-ZiraRUS", "repetition": 4}},
            {"action": "dance"},
            {"action": "say", "params": {"voiceProfile": "en-US-ZiraRUS", "speed": 2.5}}
        ]}));
        assert_eq!(
            got,
            [
                "-1009 $.callflow[0].params.repetition: must be 1..=3, got 4",
                "-1007 $.callflow[1].action: unknown action \"dance\"; expected one of say, sayAndCapture, makeCall, hangup, playFile",
                "-1009 $.callflow[2].params.speed: must be 0.5..=2.0, got 2.5",
                "-1009 $.callflow[2].params.text: is missing but it is required",
            ]
        );
    }

    #[test]
    fn invalid_json_is_1001_with_position() {
        let v = validate_slice(b"{\"callflow\": [,]}", Mode::Webhook);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].code, StatusCode::InvalidJson);
        assert!(
            v[0].message.contains("line 1 column 15"),
            "{}",
            v[0].message
        );
    }
}
