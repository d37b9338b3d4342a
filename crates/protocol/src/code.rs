//! The platform's validation status codes (the platform's callflow rules, summarised in `docs/protocol.md`), reused by our validator so
//! that an error we report reads exactly like the one the platform would have sent.

use std::fmt;

/// A status code of the 8x8 Callflows API and of callflow validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusCode {
    /// `1`: valid / created.
    Created,
    /// `-1001`: the body is not valid JSON.
    InvalidJson,
    /// `-1002`: voice profile or language invalid.
    InvalidVoiceProfile,
    /// `-1003`: `maxDigits` is required when `minDigits` is given.
    MaxDigitsRequiredWithMin,
    /// `-1004`: the legacy DTMF callback URL is missing. Platform-only: it concerns the
    /// sub-account's webhook configuration, which a callflow does not carry.
    MissingDtmfCallbackUrl,
    /// `-1005`: `overallTimeout` is required when `digitTimeout` is given.
    OverallTimeoutRequired,
    /// `-1006`: `overallTimeout` must be greater than `digitTimeout`.
    OverallTimeoutNotGreater,
    /// `-1007`: unknown action name.
    UnknownAction,
    /// `-1008`: `maxDigits` is required when `completeOnHash` is false.
    MaxDigitsRequiredWithoutHash,
    /// `-1009`: an invalid call flow entry.
    InvalidEntry,
    /// `-1010`: actions beyond the allowed count (or after a `sayAndCapture`).
    TooManyActions,
    /// `-1011`: more than one destination number (more than one `makeCall`).
    MultipleDestinations,
    /// `-1012`: anything after `hangup`.
    HangupNotLast,
    /// `-1013`: the first action of a Callflows API request must be `makeCall`.
    FirstActionNotMakeCall,
    /// `-1014`: the caller id (`makeCall` `source`) is not whitelisted for the sub-account.
    /// Checked only against a list the caller gives (`Rules::caller_ids`).
    CallerIdNotWhitelisted,
    /// `-1015`: `validUntil` is already past.
    ValidityExpired,
    /// `-1016`: invalid special characters in content.
    InvalidCharacters,
    /// `-1017`: invalid MSISDN format in destination.
    InvalidMsisdn,
    /// `-1018`: a scenario error. Platform-only, as are -1019 and -1020: the status table
    /// names them scenario errors without saying more, and nothing in a callflow causes them.
    Scenario1018,
    /// `-1019`: a scenario error (platform-only).
    Scenario1019,
    /// `-1020`: a scenario error (platform-only).
    Scenario1020,
    /// `-9999`: unknown error.
    Unknown,
}

impl StatusCode {
    /// The platform's numeric code.
    pub const fn as_i32(self) -> i32 {
        match self {
            Self::Created => 1,
            Self::InvalidJson => -1001,
            Self::InvalidVoiceProfile => -1002,
            Self::MaxDigitsRequiredWithMin => -1003,
            Self::MissingDtmfCallbackUrl => -1004,
            Self::OverallTimeoutRequired => -1005,
            Self::OverallTimeoutNotGreater => -1006,
            Self::UnknownAction => -1007,
            Self::MaxDigitsRequiredWithoutHash => -1008,
            Self::InvalidEntry => -1009,
            Self::TooManyActions => -1010,
            Self::MultipleDestinations => -1011,
            Self::HangupNotLast => -1012,
            Self::FirstActionNotMakeCall => -1013,
            Self::CallerIdNotWhitelisted => -1014,
            Self::ValidityExpired => -1015,
            Self::InvalidCharacters => -1016,
            Self::InvalidMsisdn => -1017,
            Self::Scenario1018 => -1018,
            Self::Scenario1019 => -1019,
            Self::Scenario1020 => -1020,
            Self::Unknown => -9999,
        }
    }

    /// The code for a number the platform sent, if we know it.
    pub const fn from_i32(code: i32) -> Option<Self> {
        Some(match code {
            1 => Self::Created,
            -1001 => Self::InvalidJson,
            -1002 => Self::InvalidVoiceProfile,
            -1003 => Self::MaxDigitsRequiredWithMin,
            -1004 => Self::MissingDtmfCallbackUrl,
            -1005 => Self::OverallTimeoutRequired,
            -1006 => Self::OverallTimeoutNotGreater,
            -1007 => Self::UnknownAction,
            -1008 => Self::MaxDigitsRequiredWithoutHash,
            -1009 => Self::InvalidEntry,
            -1010 => Self::TooManyActions,
            -1011 => Self::MultipleDestinations,
            -1012 => Self::HangupNotLast,
            -1013 => Self::FirstActionNotMakeCall,
            -1014 => Self::CallerIdNotWhitelisted,
            -1015 => Self::ValidityExpired,
            -1016 => Self::InvalidCharacters,
            -1017 => Self::InvalidMsisdn,
            -1018 => Self::Scenario1018,
            -1019 => Self::Scenario1019,
            -1020 => Self::Scenario1020,
            -9999 => Self::Unknown,
            _ => return None,
        })
    }

    /// The platform's short description of the code.
    pub const fn message(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::InvalidJson => "Invalid JSON body",
            Self::InvalidVoiceProfile => "Speech profile or language parameter invalid",
            Self::MaxDigitsRequiredWithMin => "maxDigits is required when minDigits is given",
            Self::MissingDtmfCallbackUrl => "DTMF callback URL is missing",
            Self::OverallTimeoutRequired => "overallTimeout is required when digitTimeout is given",
            Self::OverallTimeoutNotGreater => "overallTimeout must be greater than digitTimeout",
            Self::UnknownAction => "Unknown action name",
            Self::MaxDigitsRequiredWithoutHash => {
                "maxDigits is required when completeOnHash is false"
            }
            Self::InvalidEntry => "Invalid call flow entry",
            Self::TooManyActions => "Actions beyond the allowed count",
            Self::MultipleDestinations => "More than one destination number",
            Self::HangupNotLast => "Incorrect use of hangup",
            Self::FirstActionNotMakeCall => "First action must be makeCall",
            Self::CallerIdNotWhitelisted => "Caller id is not whitelisted",
            Self::ValidityExpired => "validUntil has expired",
            Self::InvalidCharacters => "Invalid special characters in content",
            Self::InvalidMsisdn => "Invalid MSISDN format in destination",
            Self::Scenario1018 | Self::Scenario1019 | Self::Scenario1020 => "Scenario error",
            Self::Unknown => "Unknown error",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_i32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_codes_round_trip() {
        for code in [
            StatusCode::Created,
            StatusCode::InvalidJson,
            StatusCode::InvalidVoiceProfile,
            StatusCode::MaxDigitsRequiredWithMin,
            StatusCode::MissingDtmfCallbackUrl,
            StatusCode::OverallTimeoutRequired,
            StatusCode::OverallTimeoutNotGreater,
            StatusCode::UnknownAction,
            StatusCode::MaxDigitsRequiredWithoutHash,
            StatusCode::InvalidEntry,
            StatusCode::TooManyActions,
            StatusCode::MultipleDestinations,
            StatusCode::HangupNotLast,
            StatusCode::FirstActionNotMakeCall,
            StatusCode::CallerIdNotWhitelisted,
            StatusCode::ValidityExpired,
            StatusCode::InvalidCharacters,
            StatusCode::InvalidMsisdn,
            StatusCode::Scenario1018,
            StatusCode::Scenario1019,
            StatusCode::Scenario1020,
            StatusCode::Unknown,
        ] {
            assert_eq!(StatusCode::from_i32(code.as_i32()), Some(code));
        }
        assert_eq!(StatusCode::from_i32(-1021), None);
        assert_eq!(StatusCode::from_i32(-2003), None);
    }
}
