//! What we answer: a callflow of up to [`MAX_ACTIONS`] actions.
//!
//! The types serialize exactly as the platform expects (the platform's callflow rules, summarised in `docs/protocol.md`): camelCase
//! names, optional parameters omitted when absent, `speed` as a number, `hangup` without
//! `params`. Every scalar is a [`crate::scalar`] newtype and `sayAndCapture`'s cross-field rules
//! are enforced by its setters, so a [`Callflow`] built through [`CallflowBuilder`] always passes
//! [`crate::validate_callflow`].

use serde::{Deserialize, Serialize};

use crate::code::StatusCode;
use crate::scalar::{
    ClientActionId, DigitCount, FileUrl, Msisdn, Repetition, ScalarError, Speed, Text, VoiceProfile,
};

/// Most actions we put in one callflow. The platform documents a limit (-1010) without
/// naming it; ten is more than any menu step needs and keeps answers small.
pub const MAX_ACTIONS: usize = 10;

/// A callflow: the body of our answer to a `CALL_ACTION` webhook, or of a Callflows API request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Callflow {
    /// Echoed by the platform in the next webhook of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_action_id: Option<ClientActionId>,
    /// The actions, executed in order.
    #[serde(rename = "callflow")]
    pub actions: Vec<Action>,
}

impl Callflow {
    /// Starts a callflow that passes the validator by construction.
    pub fn builder() -> CallflowBuilder {
        CallflowBuilder::default()
    }

    /// The callflow as JSON bytes, as sent on the wire.
    pub fn to_json(&self) -> Vec<u8> {
        // One allocation of about the right size, instead of a small buffer doubled as it
        // fills (three allocations for a menu prompt).
        let mut out = Vec::with_capacity(self.json_len_estimate());
        // Serializing these types cannot fail: every field is a string, number or bool.
        match serde_json::to_writer(&mut out, self) {
            Ok(()) => out,
            Err(_) => b"{\"callflow\":[{\"action\":\"hangup\"}]}".to_vec(),
        }
    }

    /// A little more than the JSON's length: the strings, plus room for the field names and
    /// numbers of each action.
    fn json_len_estimate(&self) -> usize {
        let strings: usize = self
            .actions
            .iter()
            .map(|action| match action {
                Action::MakeCall(call) => {
                    call.source.as_str().len() + call.destination.as_str().len()
                }
                Action::Say(say) => say.text.as_str().len() + say.voice_profile.as_str().len(),
                Action::SayAndCapture(capture) => {
                    capture.prompt_message.as_str().len()
                        + capture.voice_profile.as_str().len()
                        + capture
                            .success_message
                            .as_ref()
                            .map_or(0, |t| t.as_str().len())
                        + capture
                            .failure_message
                            .as_ref()
                            .map_or(0, |t| t.as_str().len())
                }
                Action::PlayFile(play) => play.file_url.as_str().len(),
                Action::Hangup => 0,
            })
            .sum();
        let id = self
            .client_action_id
            .as_ref()
            .map_or(0, |id| id.as_str().len());
        // Field names and punctuation: ~190 bytes for the longest action, sayAndCapture.
        48 + id + strings + 200 * self.actions.len()
    }
}

/// One step of a callflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    content = "params",
    rename_all = "camelCase",
    from = "WireAction"
)]
pub enum Action {
    /// Bridge the caller to another number.
    MakeCall(MakeCall),
    /// Speak text.
    Say(Say),
    /// Speak a prompt and capture DTMF digits; the digits arrive in the next webhook.
    SayAndCapture(SayAndCapture),
    /// Play an audio file.
    PlayFile(PlayFile),
    /// End every leg of the call; the session summary follows.
    Hangup,
}

/// The wire shape [`Action`] is read from. It differs only for `hangup`, whose `params` may be
/// absent, null or `{}`: the validator accepts all three, and the typed callflow must read
/// whatever the validator accepts. (We always write the first form.)
#[derive(Deserialize)]
#[serde(tag = "action", content = "params", rename_all = "camelCase")]
enum WireAction {
    MakeCall(MakeCall),
    Say(Say),
    SayAndCapture(SayAndCapture),
    PlayFile(PlayFile),
    Hangup(Option<NoParams>),
}

/// `{}`, and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

impl From<WireAction> for Action {
    fn from(wire: WireAction) -> Self {
        match wire {
            WireAction::MakeCall(call) => Self::MakeCall(call),
            WireAction::Say(say) => Self::Say(say),
            WireAction::SayAndCapture(capture) => Self::SayAndCapture(capture),
            WireAction::PlayFile(play) => Self::PlayFile(play),
            WireAction::Hangup(None | Some(NoParams {})) => Self::Hangup,
        }
    }
}

impl Action {
    /// The action's wire name.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::MakeCall(_) => "makeCall",
            Self::Say(_) => "say",
            Self::SayAndCapture(_) => "sayAndCapture",
            Self::PlayFile(_) => "playFile",
            Self::Hangup => "hangup",
        }
    }

    /// Whether the platform can run nothing after this action in the same callflow.
    pub const fn ends_callflow(&self) -> bool {
        matches!(
            self,
            Self::MakeCall(_) | Self::SayAndCapture(_) | Self::Hangup
        )
    }
}

/// `makeCall`: bridge the caller to `destination`, calling from `source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MakeCall {
    /// One of the sub-account's virtual numbers.
    pub source: Msisdn,
    /// The number to bridge to.
    pub destination: Msisdn,
    /// Record the bridged call (needs recording set up on the account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_recording: Option<bool>,
}

/// `say`: speak text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Say {
    /// What to say.
    pub text: Text,
    /// The voice to say it with.
    pub voice_profile: VoiceProfile,
    /// How many times; the platform's default is 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition: Option<Repetition>,
    /// Speech speed; the platform's default is 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<Speed>,
}

impl Say {
    /// A `say` with the platform's defaults.
    pub fn new(text: Text, voice_profile: VoiceProfile) -> Self {
        Self {
            text,
            voice_profile,
            repetition: None,
            speed: None,
        }
    }
}

/// `playFile`: play an audio file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlayFile {
    /// A `.wav` or `.mp3` URL.
    pub file_url: FileUrl,
    /// How many times; the platform's default is 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition: Option<Repetition>,
}

impl PlayFile {
    /// A `playFile` played once.
    pub fn new(file_url: FileUrl) -> Self {
        Self {
            file_url,
            repetition: None,
        }
    }
}

/// `sayAndCapture`: speak a prompt and capture digits.
///
/// The fields are private because they constrain each other (`minDigits ≤ maxDigits`,
/// `digitTimeout < overallTimeout`, `maxDigits` required without `completeOnHash`); the setters
/// keep those rules, and deserialization checks them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawSayAndCapture")]
pub struct SayAndCapture {
    pub(crate) prompt_message: Text,
    pub(crate) voice_profile: VoiceProfile,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) success_message: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failure_message: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) speed: Option<Speed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) complete_on_hash: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) min_digits: Option<DigitCount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_digits: Option<DigitCount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) digit_timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) overall_timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) no_of_tries: Option<u8>,
}

impl SayAndCapture {
    /// A capture with the platform's defaults (`#` ends input, up to 25 digits, 30 s, 3 tries).
    pub fn new(prompt_message: Text, voice_profile: VoiceProfile) -> Self {
        Self {
            prompt_message,
            voice_profile,
            success_message: None,
            failure_message: None,
            speed: None,
            complete_on_hash: None,
            min_digits: None,
            max_digits: None,
            digit_timeout: None,
            overall_timeout: None,
            no_of_tries: None,
        }
    }

    /// Said after a successful capture.
    pub fn success_message(mut self, text: Text) -> Self {
        self.success_message = Some(text);
        self
    }

    /// Said after each failed capture.
    pub fn failure_message(mut self, text: Text) -> Self {
        self.failure_message = Some(text);
        self
    }

    /// Speech speed.
    pub fn speed(mut self, speed: Speed) -> Self {
        self.speed = Some(speed);
        self
    }

    /// How many digits to accept: `min..=max`.
    pub fn digits(mut self, min: Option<DigitCount>, max: DigitCount) -> Result<Self, ScalarError> {
        if let Some(min) = min
            && min > max
        {
            return Err(ScalarError::new(
                StatusCode::InvalidEntry,
                format!(
                    "minDigits {} must not exceed maxDigits {}",
                    min.get(),
                    max.get()
                ),
            ));
        }
        self.min_digits = min;
        self.max_digits = Some(max);
        Ok(self)
    }

    /// Whether `#` ends input. Without it, input ends at `maxDigits`, which must be set first.
    pub fn complete_on_hash(mut self, on: bool) -> Result<Self, ScalarError> {
        if !on && self.max_digits.is_none() {
            return Err(ScalarError::new(
                StatusCode::MaxDigitsRequiredWithoutHash,
                "maxDigits is required when completeOnHash is false",
            ));
        }
        self.complete_on_hash = Some(on);
        Ok(self)
    }

    /// Time limits in milliseconds: between digits (optional) and overall.
    pub fn timeouts(
        mut self,
        digit_timeout_ms: Option<u32>,
        overall_timeout_ms: u32,
    ) -> Result<Self, ScalarError> {
        if overall_timeout_ms == 0 || digit_timeout_ms == Some(0) {
            return Err(ScalarError::new(
                StatusCode::InvalidEntry,
                "timeouts must be positive",
            ));
        }
        if let Some(digit) = digit_timeout_ms
            && digit >= overall_timeout_ms
        {
            return Err(ScalarError::new(
                StatusCode::OverallTimeoutNotGreater,
                format!(
                    "overallTimeout {overall_timeout_ms} must be greater than digitTimeout {digit}"
                ),
            ));
        }
        self.digit_timeout = digit_timeout_ms;
        self.overall_timeout = Some(overall_timeout_ms);
        Ok(self)
    }

    /// How many times the platform replays the prompt on bad input (at least 1).
    pub fn tries(mut self, tries: u8) -> Result<Self, ScalarError> {
        if tries == 0 {
            return Err(ScalarError::new(
                StatusCode::InvalidEntry,
                "noOfTries must be at least 1, got 0",
            ));
        }
        self.no_of_tries = Some(tries);
        Ok(self)
    }

    /// The prompt.
    pub fn prompt_message(&self) -> &Text {
        &self.prompt_message
    }
    /// The voice.
    pub fn voice_profile(&self) -> &VoiceProfile {
        &self.voice_profile
    }
    /// Said after success, if set.
    pub fn success_message_text(&self) -> Option<&Text> {
        self.success_message.as_ref()
    }
    /// Said after each failure, if set.
    pub fn failure_message_text(&self) -> Option<&Text> {
        self.failure_message.as_ref()
    }
    /// Speech speed, if set.
    pub fn speed_value(&self) -> Option<Speed> {
        self.speed
    }
    /// Whether `#` ends input (platform default: true).
    pub fn completes_on_hash(&self) -> bool {
        self.complete_on_hash.unwrap_or(true)
    }
    /// `minDigits`, if set.
    pub fn min_digits(&self) -> Option<DigitCount> {
        self.min_digits
    }
    /// `maxDigits`, if set (platform default: 25).
    pub fn max_digits(&self) -> Option<DigitCount> {
        self.max_digits
    }
    /// `digitTimeout` in ms, if set.
    pub fn digit_timeout_ms(&self) -> Option<u32> {
        self.digit_timeout
    }
    /// `overallTimeout` in ms (platform default: 30000).
    pub fn overall_timeout_ms(&self) -> u32 {
        self.overall_timeout.unwrap_or(30_000)
    }
    /// `noOfTries` (platform default: 3).
    pub fn no_of_tries(&self) -> u8 {
        self.no_of_tries.unwrap_or(3)
    }
}

/// The wire shape of `sayAndCapture`, before its cross-field rules are checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawSayAndCapture {
    pub(crate) prompt_message: Text,
    pub(crate) voice_profile: VoiceProfile,
    pub(crate) success_message: Option<Text>,
    pub(crate) failure_message: Option<Text>,
    pub(crate) speed: Option<Speed>,
    pub(crate) complete_on_hash: Option<bool>,
    pub(crate) min_digits: Option<DigitCount>,
    pub(crate) max_digits: Option<DigitCount>,
    pub(crate) digit_timeout: Option<u32>,
    pub(crate) overall_timeout: Option<u32>,
    pub(crate) no_of_tries: Option<u8>,
}

impl TryFrom<RawSayAndCapture> for SayAndCapture {
    type Error = ScalarError;

    fn try_from(raw: RawSayAndCapture) -> Result<Self, ScalarError> {
        let mut capture = SayAndCapture::new(raw.prompt_message, raw.voice_profile);
        capture.success_message = raw.success_message;
        capture.failure_message = raw.failure_message;
        capture.speed = raw.speed;
        match (raw.min_digits, raw.max_digits) {
            (Some(_), None) => {
                return Err(ScalarError::new(
                    StatusCode::MaxDigitsRequiredWithMin,
                    "maxDigits is required when minDigits is given",
                ));
            }
            (min, Some(max)) => capture = capture.digits(min, max)?,
            (None, None) => {}
        }
        if let Some(on) = raw.complete_on_hash {
            capture = capture.complete_on_hash(on)?;
        }
        match (raw.digit_timeout, raw.overall_timeout) {
            (Some(_), None) => {
                return Err(ScalarError::new(
                    StatusCode::OverallTimeoutRequired,
                    "overallTimeout is required when digitTimeout is given",
                ));
            }
            (digit, Some(overall)) => capture = capture.timeouts(digit, overall)?,
            (None, None) => {}
        }
        if let Some(tries) = raw.no_of_tries {
            capture = capture.tries(tries)?;
        }
        Ok(capture)
    }
}

/// Why a [`CallflowBuilder`] could not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// More than [`MAX_ACTIONS`] actions.
    #[error("a callflow holds at most {MAX_ACTIONS} actions, this one has {0}")]
    TooManyActions(usize),
}

/// Builds a [`Callflow`] the platform accepts: any number of `say`/`playFile` actions (up to
/// [`MAX_ACTIONS`] in all), optionally ended by one `sayAndCapture`, `makeCall` or `hangup`.
#[derive(Debug, Clone, Default)]
pub struct CallflowBuilder {
    client_action_id: Option<ClientActionId>,
    actions: Vec<Action>,
}

impl CallflowBuilder {
    /// Sets the id the platform will echo in the next webhook.
    pub fn client_action_id(mut self, id: ClientActionId) -> Self {
        self.client_action_id = Some(id);
        self
    }

    /// Appends a `say`.
    pub fn say(mut self, say: Say) -> Self {
        self.actions.push(Action::Say(say));
        self
    }

    /// Appends a `playFile`.
    pub fn play_file(mut self, play: PlayFile) -> Self {
        self.actions.push(Action::PlayFile(play));
        self
    }

    /// How many actions are queued so far.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether no action is queued yet.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Ends the callflow with a capture.
    pub fn capture(mut self, capture: SayAndCapture) -> Result<Callflow, BuildError> {
        self.actions.push(Action::SayAndCapture(capture));
        self.finish()
    }

    /// Ends the callflow by bridging the caller.
    pub fn make_call(mut self, call: MakeCall) -> Result<Callflow, BuildError> {
        self.actions.push(Action::MakeCall(call));
        self.finish()
    }

    /// Ends the callflow and the call.
    pub fn hangup(mut self) -> Result<Callflow, BuildError> {
        self.actions.push(Action::Hangup);
        self.finish()
    }

    /// Ends the callflow after the queued actions; the platform will send an
    /// `ACTION_COMPLETED` when they have played. An empty callflow becomes a `hangup`.
    pub fn finish(mut self) -> Result<Callflow, BuildError> {
        if self.actions.is_empty() {
            self.actions.push(Action::Hangup);
        }
        if self.actions.len() > MAX_ACTIONS {
            return Err(BuildError::TooManyActions(self.actions.len()));
        }
        Ok(Callflow {
            client_action_id: self.client_action_id,
            actions: self.actions,
        })
    }
}
