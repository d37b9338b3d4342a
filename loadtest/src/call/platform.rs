//! How the emulated platform behaves: its configuration, how long it takes to speak, key,
//! wait and ring ([`Pace`]), and how dialled numbers answer ([`TransferMix`]).

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use switchboard_protocol::{Repetition, Speed};

use crate::caller::CallerModel;

/// How the platform behaves, shared by every call of a run.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// The tenant named in every webhook.
    pub sub_account: String,
    /// Virtual numbers the calls are made to (call `i` dials `destinations[i % len]`).
    pub destinations: Vec<String>,
    /// ISO 3166 country of the virtual numbers.
    pub destination_country: String,
    /// `destinationRefId` of the virtual numbers.
    pub destination_ref_id: Option<String>,
    /// Callers' numbers are this prefix followed by random digits (E.164, 12 digits in all).
    pub caller_prefix: String,
    /// ISO 3166 country of the callers.
    pub caller_country: String,
    /// What the callers do.
    pub caller: CallerModel,
    /// How long speech, key entry and ringing take.
    pub pace: Pace,
    /// How long a bridged transfer talks before hanging up (default: by `pace`).
    pub talk_time: Option<Duration>,
    /// How `makeCall` attempts end.
    pub transfers: TransferMix,
    /// The most callflows one call executes before the caller gives up (a looping flow).
    pub max_steps: u32,
    /// Share of calls whose webhooks use the older v2 form.
    pub v2_share: f64,
    /// Also send a `CALL_STATUS` when a call starts.
    pub call_status: bool,
    /// Seeds the caller's choices.
    pub seed: u64,
    /// Seeds ids; differs between runs so ids are never reused.
    pub run_nonce: u64,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            sub_account: "acme_voice".to_owned(),
            destinations: vec!["+6568888888".to_owned()],
            destination_country: "SG".to_owned(),
            destination_ref_id: Some("vn-acme-main".to_owned()),
            caller_prefix: "+6591".to_owned(),
            caller_country: "SG".to_owned(),
            caller: CallerModel::default(),
            pace: Pace::Fixed(Duration::ZERO),
            talk_time: None,
            transfers: TransferMix::default(),
            max_steps: 50,
            v2_share: 0.0,
            call_status: false,
            seed: 0,
            run_nonce: 0,
        }
    }
}

/// How long the platform takes to do things.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Every spoken action, silence and ring takes this long (0: as fast as possible).
    Fixed(Duration),
    /// As long as on a real call: speech from text length and speed, silences until the
    /// capture's timeout, a few seconds of ringing.
    Realtime,
}

/// Characters of text a TTS voice speaks per second at speed 1.0 (about 150 words a minute).
const CHARS_PER_SECOND: f64 = 14.0;

impl Pace {
    pub(super) fn speech(
        self,
        text: &str,
        speed: Option<Speed>,
        repetition: Option<Repetition>,
    ) -> Duration {
        match self {
            Self::Fixed(d) => d,
            Self::Realtime => {
                let speed = speed.map_or(1.0, Speed::get);
                let once = text.chars().count() as f64 / (CHARS_PER_SECOND * speed);
                Duration::from_secs_f64(once * f64::from(repetition.map_or(1, Repetition::get)))
            }
        }
    }

    pub(super) fn file(self, repetition: Option<Repetition>) -> Duration {
        match self {
            Self::Fixed(d) => d,
            // Files are not fetched; five seconds is a typical announcement.
            Self::Realtime => {
                Duration::from_secs(5) * u32::from(repetition.map_or(1, Repetition::get))
            }
        }
    }

    pub(super) fn keying(self, keys: usize) -> Duration {
        match self {
            Self::Fixed(_) => Duration::ZERO,
            Self::Realtime => Duration::from_millis(1500 + 300 * keys as u64),
        }
    }

    pub(super) fn silence(self, overall_timeout_ms: u32) -> Duration {
        match self {
            Self::Fixed(d) => d,
            Self::Realtime => Duration::from_millis(u64::from(overall_timeout_ms)),
        }
    }

    pub(super) fn ring(self, result: Transfer) -> Duration {
        match (self, result) {
            (Self::Fixed(d), _) => d,
            (Self::Realtime, Transfer::Answered) => Duration::from_secs(4),
            (Self::Realtime, Transfer::Busy) => Duration::from_secs(1),
            (Self::Realtime, Transfer::NoAnswer) => Duration::from_secs(30),
        }
    }
}

/// How a `makeCall` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// SIP 200: the callee answered.
    Answered,
    /// SIP 486: busy.
    Busy,
    /// SIP 480: nobody answered.
    NoAnswer,
}

impl Transfer {
    /// The final SIP code.
    pub const fn sip_code(self) -> u16 {
        match self {
            Self::Answered => 200,
            Self::Busy => 486,
            Self::NoAnswer => 480,
        }
    }

    /// The leg's `callStatus`.
    pub const fn leg_status(self) -> &'static str {
        match self {
            Self::Answered => "COMPLETED",
            Self::Busy => "BUSY",
            Self::NoAnswer => "NO_ANSWER",
        }
    }

    /// A label for reports.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
        }
    }
}

/// Relative weights of the ends of a `makeCall`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransferMix {
    /// Weight of SIP 200.
    pub answered: f64,
    /// Weight of SIP 486.
    pub busy: f64,
    /// Weight of SIP 480.
    pub no_answer: f64,
}

impl Default for TransferMix {
    fn default() -> Self {
        Self {
            answered: 0.7,
            busy: 0.2,
            no_answer: 0.1,
        }
    }
}

impl TransferMix {
    pub(super) fn roll(&self, rng: &mut StdRng) -> Transfer {
        let total = self.answered + self.busy + self.no_answer;
        if total <= 0.0 {
            return Transfer::Answered;
        }
        let x = rng.random::<f64>() * total;
        if x < self.answered {
            Transfer::Answered
        } else if x < self.answered + self.busy {
            Transfer::Busy
        } else {
            Transfer::NoAnswer
        }
    }
}
