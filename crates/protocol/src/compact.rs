//! A compact binary encoding for storing callflows (and, built on the same [`Writer`] and
//! [`Reader`], the session records that hold them).
//!
//! A session store writes a record on every webhook, and the record carries the session's last
//! answer so a duplicate can be answered byte for byte on any replica. As JSON that answer is
//! mostly field names and punctuation (`"promptMessage":`, `"completeOnHash":false`, ...);
//! here it is a tag byte per action, a bit set for the optional fields, LEB128 integers and
//! length-prefixed strings. A string seen before in the same encoding (the voice profile of the
//! second `say`, a node name repeated in a path) is written as a back-reference to its first
//! occurrence, so repetition costs a byte or two.
//!
//! Decoding goes through the same constructors as JSON does ([`Text::new`], the
//! `sayAndCapture` cross-field rules, ...), so a stored callflow that decodes is one the
//! platform accepts, and a corrupted one is refused with a [`DecodeError`] rather than
//! answered.
//!
//! The format is Switchboard's own and versioned by whoever embeds it (the store puts a format
//! byte in front of every record); see `docs/architecture.md` for how records migrate.

use crate::callflow::{Action, Callflow, MakeCall, PlayFile, RawSayAndCapture, Say, SayAndCapture};
use crate::scalar::{
    ClientActionId, DigitCount, FileUrl, Msisdn, Repetition, Speed, Text, VoiceProfile,
};

/// Most strings remembered for back-references in one encoding; later ones are written out.
/// A session record has a few dozen strings at most, and the search is linear.
const MAX_REMEMBERED: usize = 64;

/// Why bytes are not a compact encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compact encoding: {0}")]
pub struct DecodeError(String);

impl DecodeError {
    /// An error saying what was wrong.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Builds a compact encoding.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
    /// `(offset, len)` in `buf` of the strings written out so far, for back-references.
    seen: Vec<(u32, u32)>,
}

impl Writer {
    /// An empty encoding with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
            seen: Vec::new(),
        }
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// How many bytes are written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// One byte.
    pub fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    /// An unsigned integer, LEB128 (7 bits per byte, low first).
    pub fn uint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    /// Four bytes, little-endian (for values that are spread over all 32 bits, like hashes).
    pub fn u32_fixed(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// A float, as its eight IEEE 754 bytes (so it reads back bit for bit).
    pub fn f64(&mut self, value: f64) {
        self.buf.extend_from_slice(&value.to_bits().to_le_bytes());
    }

    /// A string: `len << 1` then its bytes, or, if the same string was written before,
    /// `index << 1 | 1` naming it.
    pub fn str(&mut self, value: &str) {
        let bytes = value.as_bytes();
        let earlier = self
            .seen
            .iter()
            .position(|&(at, len)| &self.buf[at as usize..(at + len) as usize] == bytes);
        if let Some(index) = earlier {
            self.uint(((index as u64) << 1) | 1);
            return;
        }
        self.uint((bytes.len() as u64) << 1);
        let at = self.buf.len();
        self.buf.extend_from_slice(bytes);
        if self.seen.len() < MAX_REMEMBERED
            && let (Ok(at), Ok(len)) = (u32::try_from(at), u32::try_from(bytes.len()))
        {
            self.seen.push((at, len));
        }
    }

    /// An optional value: a presence byte, then the value.
    pub fn option<T>(&mut self, value: Option<T>, mut write: impl FnMut(&mut Self, T)) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                write(self, value);
            }
        }
    }
}

/// Reads a compact encoding.
#[derive(Debug)]
pub struct Reader<'a> {
    input: &'a [u8],
    at: usize,
    /// The strings read so far, for back-references.
    seen: Vec<&'a str>,
}

impl<'a> Reader<'a> {
    /// Reads `input` from its start.
    pub fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            at: 0,
            seen: Vec::new(),
        }
    }

    /// Whether every byte was read.
    pub fn is_done(&self) -> bool {
        self.at == self.input.len()
    }

    /// Fails unless every byte was read (trailing bytes mean a different format or corruption).
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.is_done() {
            Ok(())
        } else {
            Err(DecodeError::new(format!(
                "{} bytes left over after the end",
                self.input.len() - self.at
            )))
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.input.len())
            .ok_or_else(|| {
                DecodeError::new(format!("truncated: {n} more bytes expected at {}", self.at))
            })?;
        let bytes = &self.input[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// An unsigned integer written by [`Writer::uint`].
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::new(format!(
            "an integer at {} does not fit in 64 bits",
            self.at
        )))
    }

    /// An unsigned integer that must fit in `T` (`what` names it in the error).
    pub fn uint_as<T: TryFrom<u64>>(&mut self, what: &str) -> Result<T, DecodeError> {
        let value = self.uint()?;
        T::try_from(value).map_err(|_| DecodeError::new(format!("{what} {value} is out of range")))
    }

    /// Four bytes written by [`Writer::u32_fixed`].
    pub fn u32_fixed(&mut self) -> Result<u32, DecodeError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A float written by [`Writer::f64`].
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        let bytes = self.take(8)?;
        let mut raw = [0; 8];
        raw.copy_from_slice(bytes);
        Ok(f64::from_bits(u64::from_le_bytes(raw)))
    }

    /// A string written by [`Writer::str`].
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let head = self.uint()?;
        if head & 1 == 1 {
            let index = usize::try_from(head >> 1).unwrap_or(usize::MAX);
            return self.seen.get(index).copied().ok_or_else(|| {
                DecodeError::new(format!(
                    "a reference to string {index}, which was not written"
                ))
            });
        }
        let len = usize::try_from(head >> 1)
            .map_err(|_| DecodeError::new("a string longer than memory"))?;
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|e| DecodeError::new(format!("a string that is not UTF-8: {e}")))?;
        if self.seen.len() < MAX_REMEMBERED {
            self.seen.push(text);
        }
        Ok(text)
    }

    /// An optional value written by [`Writer::option`].
    pub fn option<T>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            other => Err(DecodeError::new(format!(
                "presence byte {other} (expected 0 or 1)"
            ))),
        }
    }

    /// A `bool` written as one byte (`Writer::u8(b as u8)`).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::new(format!("boolean byte {other}"))),
        }
    }

    /// A scalar built from a string by `make` (a [`crate::scalar`] constructor).
    fn scalar<T, E: std::fmt::Display>(
        &mut self,
        what: &str,
        make: impl FnOnce(String) -> Result<T, E>,
    ) -> Result<T, DecodeError> {
        let text = self.str()?;
        make(text.to_owned()).map_err(|e| DecodeError::new(format!("{what}: {e}")))
    }
}

// Action tags. Never renumber: stored records use them.
const MAKE_CALL: u8 = 0;
const SAY: u8 = 1;
const SAY_AND_CAPTURE: u8 = 2;
const PLAY_FILE: u8 = 3;
const HANGUP: u8 = 4;

// Presence bits of `sayAndCapture`'s optional fields. Never renumber.
const SUCCESS: u16 = 1 << 0;
const FAILURE: u16 = 1 << 1;
const SPEED: u16 = 1 << 2;
const HASH: u16 = 1 << 3;
const HASH_ON: u16 = 1 << 4;
const MIN_DIGITS: u16 = 1 << 5;
const MAX_DIGITS: u16 = 1 << 6;
const DIGIT_TIMEOUT: u16 = 1 << 7;
const OVERALL_TIMEOUT: u16 = 1 << 8;
const TRIES: u16 = 1 << 9;

impl Callflow {
    /// Appends the callflow's compact encoding. `action_id` is the `clientActionId` the reader
    /// will be able to supply (the session's current one): when the callflow carries exactly
    /// that id, it is not written out.
    pub fn write_compact(&self, out: &mut Writer, action_id: Option<&str>) {
        match &self.client_action_id {
            None => out.u8(0),
            Some(id) if Some(id.as_str()) == action_id => out.u8(1),
            Some(id) => {
                out.u8(2);
                out.str(id.as_str());
            }
        }
        out.uint(self.actions.len() as u64);
        for action in &self.actions {
            write_action(out, action);
        }
    }

    /// Reads a callflow written by [`Callflow::write_compact`] with the same `action_id`.
    pub fn read_compact(
        input: &mut Reader<'_>,
        action_id: Option<&str>,
    ) -> Result<Self, DecodeError> {
        let client_action_id = match input.u8()? {
            0 => None,
            1 => Some(
                action_id
                    .ok_or_else(|| {
                        DecodeError::new(
                            "the callflow's clientActionId is implied, but none is known",
                        )
                    })
                    .and_then(|id| {
                        ClientActionId::new(id)
                            .map_err(|e| DecodeError::new(format!("clientActionId: {e}")))
                    })?,
            ),
            2 => Some(input.scalar("clientActionId", ClientActionId::new)?),
            other => return Err(DecodeError::new(format!("clientActionId tag {other}"))),
        };
        let count: usize = input.uint_as("the action count")?;
        if count > crate::callflow::MAX_ACTIONS {
            return Err(DecodeError::new(format!(
                "{count} actions (at most {} are ever written)",
                crate::callflow::MAX_ACTIONS
            )));
        }
        let mut actions = Vec::with_capacity(count);
        for _ in 0..count {
            actions.push(read_action(input)?);
        }
        Ok(Self {
            client_action_id,
            actions,
        })
    }
}

fn write_repetition(out: &mut Writer, repetition: Option<Repetition>) {
    out.u8(repetition.map_or(0, Repetition::get));
}

fn write_action(out: &mut Writer, action: &Action) {
    match action {
        Action::MakeCall(call) => {
            out.u8(MAKE_CALL);
            out.str(call.source.as_str());
            out.str(call.destination.as_str());
            out.u8(match call.call_recording {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            });
        }
        Action::Say(say) => {
            out.u8(SAY);
            out.str(say.text.as_str());
            out.str(say.voice_profile.as_str());
            write_repetition(out, say.repetition);
            out.option(say.speed, |out, speed| out.f64(speed.get()));
        }
        Action::SayAndCapture(capture) => {
            out.u8(SAY_AND_CAPTURE);
            write_capture(out, capture);
        }
        Action::PlayFile(play) => {
            out.u8(PLAY_FILE);
            out.str(play.file_url.as_str());
            write_repetition(out, play.repetition);
        }
        Action::Hangup => out.u8(HANGUP),
    }
}

fn write_capture(out: &mut Writer, capture: &SayAndCapture) {
    let mut bits = 0u16;
    let mut set = |present: bool, bit: u16| {
        if present {
            bits |= bit;
        }
    };
    set(capture.success_message.is_some(), SUCCESS);
    set(capture.failure_message.is_some(), FAILURE);
    set(capture.speed.is_some(), SPEED);
    set(capture.complete_on_hash.is_some(), HASH);
    set(capture.complete_on_hash == Some(true), HASH_ON);
    set(capture.min_digits.is_some(), MIN_DIGITS);
    set(capture.max_digits.is_some(), MAX_DIGITS);
    set(capture.digit_timeout.is_some(), DIGIT_TIMEOUT);
    set(capture.overall_timeout.is_some(), OVERALL_TIMEOUT);
    set(capture.no_of_tries.is_some(), TRIES);
    out.uint(u64::from(bits));
    out.str(capture.prompt_message.as_str());
    out.str(capture.voice_profile.as_str());
    if let Some(text) = &capture.success_message {
        out.str(text.as_str());
    }
    if let Some(text) = &capture.failure_message {
        out.str(text.as_str());
    }
    if let Some(speed) = capture.speed {
        out.f64(speed.get());
    }
    if let Some(min) = capture.min_digits {
        out.u8(min.get());
    }
    if let Some(max) = capture.max_digits {
        out.u8(max.get());
    }
    if let Some(ms) = capture.digit_timeout {
        out.uint(u64::from(ms));
    }
    if let Some(ms) = capture.overall_timeout {
        out.uint(u64::from(ms));
    }
    if let Some(tries) = capture.no_of_tries {
        out.u8(tries);
    }
}

fn read_repetition(input: &mut Reader<'_>) -> Result<Option<Repetition>, DecodeError> {
    match input.u8()? {
        0 => Ok(None),
        n => Repetition::new(n.into())
            .map(Some)
            .map_err(|e| DecodeError::new(format!("repetition: {e}"))),
    }
}

fn read_speed(input: &mut Reader<'_>) -> Result<Speed, DecodeError> {
    Speed::new(input.f64()?).map_err(|e| DecodeError::new(format!("speed: {e}")))
}

fn read_digits(input: &mut Reader<'_>, what: &str) -> Result<DigitCount, DecodeError> {
    DigitCount::new(input.u8()?.into()).map_err(|e| DecodeError::new(format!("{what}: {e}")))
}

fn read_action(input: &mut Reader<'_>) -> Result<Action, DecodeError> {
    Ok(match input.u8()? {
        MAKE_CALL => Action::MakeCall(MakeCall {
            source: input.scalar("source", Msisdn::new)?,
            destination: input.scalar("destination", Msisdn::new)?,
            call_recording: match input.u8()? {
                0 => None,
                1 => Some(false),
                2 => Some(true),
                other => return Err(DecodeError::new(format!("callRecording byte {other}"))),
            },
        }),
        SAY => Action::Say(Say {
            text: input.scalar("text", Text::new)?,
            voice_profile: input.scalar("voiceProfile", VoiceProfile::new)?,
            repetition: read_repetition(input)?,
            speed: input.option(read_speed)?,
        }),
        SAY_AND_CAPTURE => Action::SayAndCapture(read_capture(input)?),
        PLAY_FILE => Action::PlayFile(PlayFile {
            file_url: input.scalar("fileUrl", FileUrl::new)?,
            repetition: read_repetition(input)?,
        }),
        HANGUP => Action::Hangup,
        other => return Err(DecodeError::new(format!("unknown action tag {other}"))),
    })
}

fn read_capture(input: &mut Reader<'_>) -> Result<SayAndCapture, DecodeError> {
    let bits: u16 = input.uint_as("sayAndCapture's field bits")?;
    let has = |bit: u16| bits & bit != 0;
    let raw = RawSayAndCapture {
        prompt_message: input.scalar("promptMessage", Text::new)?,
        voice_profile: input.scalar("voiceProfile", VoiceProfile::new)?,
        success_message: has(SUCCESS)
            .then(|| input.scalar("successMessage", Text::new))
            .transpose()?,
        failure_message: has(FAILURE)
            .then(|| input.scalar("failureMessage", Text::new))
            .transpose()?,
        speed: has(SPEED).then(|| read_speed(input)).transpose()?,
        complete_on_hash: has(HASH).then_some(has(HASH_ON)),
        min_digits: has(MIN_DIGITS)
            .then(|| read_digits(input, "minDigits"))
            .transpose()?,
        max_digits: has(MAX_DIGITS)
            .then(|| read_digits(input, "maxDigits"))
            .transpose()?,
        digit_timeout: has(DIGIT_TIMEOUT)
            .then(|| input.uint_as("digitTimeout"))
            .transpose()?,
        overall_timeout: has(OVERALL_TIMEOUT)
            .then(|| input.uint_as("overallTimeout"))
            .transpose()?,
        no_of_tries: has(TRIES).then(|| input.u8()).transpose()?,
    };
    SayAndCapture::try_from(raw).map_err(|e| DecodeError::new(format!("sayAndCapture: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_at_their_edges() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Writer::default();
            out.uint(value);
            let bytes = out.into_bytes();
            let mut input = Reader::new(&bytes);
            assert_eq!(input.uint().unwrap(), value);
            input.finish().unwrap();
        }
        // Eleven continuation bytes are not a 64-bit integer.
        let too_long = [0xff; 11];
        assert!(Reader::new(&too_long).uint().is_err());
    }

    #[test]
    fn a_repeated_string_is_a_back_reference() {
        let mut out = Writer::default();
        out.str("en-US-BenjaminRUS");
        let first = out.len();
        out.str("en-US-BenjaminRUS");
        assert_eq!(out.len() - first, 1, "the second copy is one byte");
        out.str("");
        let bytes = out.into_bytes();
        let mut input = Reader::new(&bytes);
        assert_eq!(input.str().unwrap(), "en-US-BenjaminRUS");
        assert_eq!(input.str().unwrap(), "en-US-BenjaminRUS");
        assert_eq!(input.str().unwrap(), "");
        input.finish().unwrap();
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        // A back-reference to nothing, a string longer than the input, bad UTF-8.
        for bytes in [&[0x03][..], &[0x20, b'a'][..], &[0x04, 0xff, 0xfe][..]] {
            assert!(Reader::new(bytes).str().is_err(), "{bytes:?}");
        }
        let mut input = Reader::new(&[9]);
        assert!(read_action(&mut input).is_err());
    }
}
