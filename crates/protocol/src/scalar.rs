//! Constrained scalar values of a callflow.
//!
//! Each rule of the platform's callflow spec that concerns one value lives here exactly once: the
//! newtype constructors enforce it for callflows we build, and the [`crate::validate`] module
//! calls the same checks on arbitrary JSON. A value of one of these types is always acceptable to
//! the platform.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::code::StatusCode;

/// Longest text the platform speaks in one `say` or prompt.
pub const MAX_TEXT_CHARS: usize = 3000;
/// Longest `clientActionId` we emit or accept (our own limit).
pub const MAX_CLIENT_ACTION_ID: usize = 128;

/// Why a scalar value is not acceptable, with the platform's status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScalarError {
    /// The status code the platform would answer.
    pub code: StatusCode,
    /// What is wrong, phrased to follow a JSON path: `must be 1..=3, got 4`.
    pub message: String,
}

impl ScalarError {
    pub(crate) fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn entry(message: impl Into<String>) -> Self {
        Self::new(StatusCode::InvalidEntry, message)
    }
}

/// Checks spoken text: 1..=3000 characters, no control characters.
pub(crate) fn check_text(text: &str) -> Result<(), ScalarError> {
    if text.trim().is_empty() {
        return Err(ScalarError::entry("must not be empty"));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(ScalarError::entry(format!(
            "must be at most {MAX_TEXT_CHARS} characters, got {chars}"
        )));
    }
    // Control characters (other than ordinary whitespace) and U+FFFD, the mark of text that was
    // decoded with the wrong charset, make the text-to-speech engine fail or read garbage.
    if let Some((at, bad)) = text.chars().enumerate().find(|&(_, c)| is_unspeakable(c)) {
        return Err(ScalarError::new(
            StatusCode::InvalidCharacters,
            format!(
                "contains the invalid character U+{:04X} at position {at}",
                u32::from(bad)
            ),
        ));
    }
    Ok(())
}

/// Checks a voice profile name: `language-REGION-Name`, e.g. `en-US-BenjaminRUS`.
pub(crate) fn check_voice_profile(voice: &str) -> Result<(), ScalarError> {
    let mut parts = voice.splitn(3, '-');
    let (lang, region, name) = (parts.next(), parts.next(), parts.next());
    let ok = matches!((lang, region, name), (Some(l), Some(r), Some(n))
        if (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase())
        && (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
        && !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    if ok {
        Ok(())
    } else {
        Err(ScalarError::new(
            StatusCode::InvalidVoiceProfile,
            format!(
                "{voice:?} is not a voice profile; expected language-REGION-Name, e.g. en-US-BenjaminRUS"
            ),
        ))
    }
}

/// Checks an E.164 number, with or without the leading `+` (the platform's examples omit it).
pub(crate) fn check_msisdn(number: &str, code: StatusCode) -> Result<(), ScalarError> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    let ok = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(ScalarError::new(
            code,
            format!("{number:?} is not an E.164 number (+ and 2 to 15 digits, no leading 0)"),
        ))
    }
}

/// Checks a `playFile` URL: http(s), path ending in `.wav` or `.mp3`.
pub(crate) fn check_file_url(url: &str) -> Result<(), ScalarError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(ScalarError::entry(format!(
            "{url:?} must be an http:// or https:// URL"
        )));
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(ScalarError::entry(format!("{url:?} has no host")));
    }
    if url.contains(char::is_whitespace) {
        return Err(ScalarError::entry(format!(
            "{url:?} contains whitespace; percent-encode it"
        )));
    }
    let path = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if !(path.ends_with(".wav") || path.ends_with(".mp3")) {
        return Err(ScalarError::entry(format!(
            "{url:?} must name a .wav or .mp3 file"
        )));
    }
    Ok(())
}

/// Checks a `clientActionId`: 1..=128 printable ASCII characters.
pub(crate) fn check_client_action_id(id: &str) -> Result<(), ScalarError> {
    // The character check comes first: the length limit is in bytes, which equals characters
    // only for ASCII, and "got 65 characters" would be a confusing reason to refuse 65 `é`s.
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ScalarError::entry("must be printable ASCII without spaces"));
    }
    if id.is_empty() || id.len() > MAX_CLIENT_ACTION_ID {
        return Err(ScalarError::entry(format!(
            "must be 1..={MAX_CLIENT_ACTION_ID} characters, got {}",
            id.len()
        )));
    }
    Ok(())
}

/// Checks a sub-account id, the `{subAccountId}` of the Callflows API's URL:
/// `^[A-Za-z0-9\-._&]{3,50}$`.
pub(crate) fn check_sub_account_id(id: &str) -> Result<(), ScalarError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'&');
    if let Some(bad) = id.chars().find(|&c| !c.is_ascii() || !allowed(c as u8)) {
        return Err(ScalarError::entry(format!(
            "{id:?} contains {bad:?}; a sub-account id is letters, digits and - . _ &"
        )));
    }
    if !(3..=50).contains(&id.len()) {
        return Err(ScalarError::entry(format!(
            "{id:?} must be 3..=50 characters, got {}",
            id.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_range_u64(value: u64, min: u64, max: u64) -> Result<(), ScalarError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ScalarError::entry(format!(
            "must be {min}..={max}, got {value}"
        )))
    }
}

pub(crate) fn check_speed(speed: f64) -> Result<(), ScalarError> {
    if (Speed::MIN..=Speed::MAX).contains(&speed) {
        Ok(())
    } else {
        Err(ScalarError::entry(format!(
            "must be {:.1}..={:.1}, got {speed}",
            Speed::MIN,
            Speed::MAX
        )))
    }
}

/// How a string newtype holds its value: owned, or shared when many answers repeat it.
trait Repr {
    fn into_string(self) -> String;
}

impl Repr for String {
    fn into_string(self) -> String {
        self
    }
}

impl Repr for Arc<str> {
    fn into_string(self) -> String {
        self.as_ref().to_owned()
    }
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, repr = $repr:ty, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name($repr);

        impl $name {
            /// Checks `value` and wraps it.
            pub fn new(value: impl Into<String>) -> Result<Self, ScalarError> {
                let value = value.into();
                let check: fn(&str) -> Result<(), ScalarError> = $check;
                check(&value)?;
                Ok(Self(value.into()))
            }

            /// The value as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        // By hand rather than `#[serde(into = "String")]`, which clones the value (an
        // allocation) every time an answer is serialized.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ScalarError;
            fn try_from(value: String) -> Result<Self, ScalarError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                Repr::into_string(value.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        string_newtype!($(#[$doc])* $name, repr = String, $check);
    };
}

string_newtype!(
    /// Text the platform speaks: 1..=3000 characters without control characters.
    ///
    /// Shared, not owned: a flow's fixed prompts are checked once at load and every answer that
    /// speaks one holds a reference to it, so a live call's last answer costs no copy of it.
    Text,
    repr = Arc<str>,
    check_text
);
string_newtype!(
    /// A text-to-speech voice profile such as `en-US-BenjaminRUS` (shared like [`Text`]).
    VoiceProfile,
    repr = Arc<str>,
    check_voice_profile
);
string_newtype!(
    /// A phone number in E.164 form, with or without the `+`.
    Msisdn,
    |n| check_msisdn(n, StatusCode::InvalidMsisdn)
);
string_newtype!(
    /// The URL of a `.wav` or `.mp3` file served over http(s).
    FileUrl,
    check_file_url
);
string_newtype!(
    /// An 8x8 sub-account id: 3..=50 of letters, digits and `-._&`.
    SubAccountId,
    check_sub_account_id
);
string_newtype!(
    /// Our correlation id, echoed by the platform in the next webhook: ≤ 128 printable ASCII.
    ClientActionId,
    check_client_action_id
);

impl Text {
    /// Builds spoken text from arbitrary input, for text that comes from templates or data:
    /// control characters become spaces and text past the limit is cut at a word boundary.
    /// Returns `None` only when nothing but whitespace is left.
    pub fn sanitize(input: &str) -> Option<Self> {
        Self::sanitize_owned(input.to_owned())
    }

    /// [`Text::sanitize`] of a string the caller no longer needs: when it is speakable as it
    /// is (the common case), it is checked once and not rewritten.
    pub fn sanitize_owned(input: String) -> Option<Self> {
        if !input.chars().any(is_unspeakable) && input.chars().nth(MAX_TEXT_CHARS).is_none() {
            return Self::new(input).ok();
        }
        let clean = |c: char| if is_unspeakable(c) { ' ' } else { c };
        let mut chars = input.chars().map(clean);
        let mut out: String = chars.by_ref().take(MAX_TEXT_CHARS).collect();
        // Cut only when the limit falls inside a word, and never cut away all there is to say:
        // a single word longer than the limit is cut at the limit instead.
        if let Some(next) = chars.next()
            && !next.is_whitespace()
            && let Some(space) = out.rfind(char::is_whitespace)
            && !out[..space].trim().is_empty()
        {
            out.truncate(space);
        }
        Self::new(out).ok()
    }
}

/// Characters the text-to-speech engine cannot read (see [`check_text`]).
fn is_unspeakable(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || c == '\u{FFFD}'
}

impl Msisdn {
    /// The number with a leading `+`, as used for routing and display.
    pub fn e164(&self) -> String {
        if self.0.starts_with('+') {
            self.0.clone()
        } else {
            format!("+{}", self.0)
        }
    }

    /// Whether two numbers are the same, ignoring the optional `+`.
    pub fn same_number(a: &str, b: &str) -> bool {
        a.strip_prefix('+').unwrap_or(a) == b.strip_prefix('+').unwrap_or(b)
    }
}

macro_rules! int_newtype {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "u64", into = "u8")]
        pub struct $name(u8);

        impl $name {
            /// Smallest allowed value.
            pub const MIN: u8 = $min;
            /// Largest allowed value.
            pub const MAX: u8 = $max;

            /// Checks `value` and wraps it.
            pub fn new(value: u64) -> Result<Self, ScalarError> {
                check_range_u64(value, Self::MIN.into(), Self::MAX.into())?;
                // In range, so it fits in a u8.
                Ok(Self(value as u8))
            }

            /// The number as sent on the wire.
            pub const fn get(self) -> u8 {
                self.0
            }
        }

        impl TryFrom<u64> for $name {
            type Error = ScalarError;
            fn try_from(value: u64) -> Result<Self, ScalarError> {
                Self::new(value)
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> u8 {
                value.0
            }
        }
    };
}

int_newtype!(
    /// How many times a `say` or `playFile` is played: 1..=3.
    Repetition,
    1,
    3
);
int_newtype!(
    /// A digit count of `sayAndCapture` (`minDigits`, `maxDigits`): 1..=25.
    DigitCount,
    1,
    25
);

/// Speech speed: 0.5..=2.0, serialized as a JSON number.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Speed(f64);

impl Speed {
    /// Slowest speech.
    pub const MIN: f64 = 0.5;
    /// Fastest speech.
    pub const MAX: f64 = 2.0;
    /// The platform's default.
    pub const NORMAL: Speed = Speed(1.0);

    /// Checks `value` and wraps it.
    pub fn new(value: f64) -> Result<Self, ScalarError> {
        check_speed(value)?;
        Ok(Self(value))
    }

    /// The number as sent on the wire.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Speed {
    type Error = ScalarError;
    fn try_from(value: f64) -> Result<Self, ScalarError> {
        Self::new(value)
    }
}

impl From<Speed> for f64 {
    fn from(value: Speed) -> f64 {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits() {
        assert!(Text::new("Hello").is_ok());
        assert!(Text::new("a".repeat(3000)).is_ok());
        let err = Text::new("a".repeat(3001)).unwrap_err();
        assert_eq!(err.code, StatusCode::InvalidEntry);
        assert_eq!(err.message, "must be at most 3000 characters, got 3001");
        assert_eq!(
            Text::new("bell\u{7}").unwrap_err().code,
            StatusCode::InvalidCharacters
        );
        assert!(Text::new("  ").is_err());
        assert!(Text::new("line one\nline two").is_ok());
    }

    #[test]
    fn sanitize_cuts_at_a_word_and_replaces_controls() {
        let long = "word ".repeat(1000);
        let text = Text::sanitize(&long).unwrap();
        assert!(text.as_str().chars().count() <= MAX_TEXT_CHARS);
        assert!(text.as_str().ends_with("word"));
        assert_eq!(Text::sanitize("a\u{0}b").unwrap().as_str(), "a b");
        assert_eq!(Text::sanitize(""), None);
    }

    #[test]
    fn voice_profiles() {
        for ok in [
            "en-US-BenjaminRUS",
            "en-GB-Susan-Apollo",
            "zh-CN-HuihuiRUS",
            "fil-PH-Angelo",
        ] {
            assert!(VoiceProfile::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "english", "EN-US-Benjamin", "en-US-", "en-US-Ben jamin"] {
            assert_eq!(
                VoiceProfile::new(bad).unwrap_err().code,
                StatusCode::InvalidVoiceProfile,
                "{bad}"
            );
        }
    }

    #[test]
    fn msisdn() {
        for ok in ["+6568888888", "6512345678", "+14155550100"] {
            assert!(Msisdn::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "+",
            "0123456",
            "+65 6888 8888",
            "+1234567890123456",
            "abc",
        ] {
            assert_eq!(
                Msisdn::new(bad).unwrap_err().code,
                StatusCode::InvalidMsisdn,
                "{bad}"
            );
        }
        assert_eq!(Msisdn::new("6512345678").unwrap().e164(), "+6512345678");
        assert!(Msisdn::same_number("+65123", "65123"));
    }

    #[test]
    fn file_urls() {
        for ok in [
            "https://example.com/promo.mp3",
            "http://example.com/a/b.WAV?v=2",
            "https://cdn.example.com/x.mp3#t=1",
        ] {
            assert!(FileUrl::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://example.com/a.mp3",
            "https://example.com/a.ogg",
            "https:///a.mp3",
            "https://example.com/a b.mp3",
            "example.com/a.mp3",
        ] {
            assert!(FileUrl::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert!(Repetition::new(0).is_err());
        assert_eq!(Repetition::new(3).unwrap().get(), 3);
        assert_eq!(
            Repetition::new(4).unwrap_err().message,
            "must be 1..=3, got 4"
        );
        assert!(DigitCount::new(25).is_ok());
        assert!(DigitCount::new(26).is_err());
        assert!(Speed::new(0.5).is_ok());
        assert!(Speed::new(2.0).is_ok());
        assert_eq!(
            Speed::new(2.5).unwrap_err().message,
            "must be 0.5..=2.0, got 2.5"
        );
        assert!(Speed::new(f64::NAN).is_err());
    }

    #[test]
    fn client_action_ids() {
        assert!(ClientActionId::new("ivr1_level2").is_ok());
        assert!(ClientActionId::new("x".repeat(128)).is_ok());
        assert!(ClientActionId::new("x".repeat(129)).is_err());
        assert!(ClientActionId::new("has space").is_err());
        assert!(ClientActionId::new("").is_err());
    }

    #[test]
    fn sub_account_ids() {
        for ok in ["acme", "acme_voice", "A-b.c_d&e", "abc", &"x".repeat(50)] {
            assert!(SubAccountId::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "acme voice",
            "acme/voice",
            "acmé",
            &"x".repeat(51),
            "",
        ] {
            assert!(SubAccountId::new(bad).is_err(), "{bad}");
        }
        assert_eq!(
            SubAccountId::new("acme/voice").unwrap_err().message,
            "\"acme/voice\" contains '/'; a sub-account id is letters, digits and - . _ &"
        );
    }

    #[test]
    fn speed_is_any_number_in_range() {
        // Typed integer in the platform's spec, documented 0.5..2 and sent as 1.0.
        for ok in [0.5, 1.0, 1.25, 2.0] {
            assert!(Speed::new(ok).is_ok(), "{ok}");
        }
        for bad in [0.49, 2.01, 0.0, -1.0, f64::INFINITY] {
            assert!(Speed::new(bad).is_err(), "{bad}");
        }
    }
}
