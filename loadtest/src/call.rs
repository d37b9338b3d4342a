//! A virtual call: the platform's side of one IVR session, as a pure state machine.
//!
//! [`VirtualCall`] knows the call's ids, legs and caller, writes the webhooks the platform
//! would send (`CALL_RECEIVED`, `ACTION_COMPLETED`, `CALL_STATUS`, `SESSION_SUMMARY`), and
//! executes a callflow the way the platform does ([`VirtualCall::execute`]): it "speaks" every
//! `say` and `playFile`, plays a `sayAndCapture` with the caller model (replaying the prompt up
//! to `noOfTries` times on silence or too few digits), dials a `makeCall` with a configured
//! mix of answered, busy and unanswered results, and stops at `hangup`.
//!
//! Nothing here does I/O or reads a clock: time is an argument, simulated speech comes back as
//! a [`Duration`] for the caller of `execute` to wait, and all randomness comes from the call's
//! seeded streams. The async driver is [`crate::player`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng;
use rand::rngs::StdRng;
use switchboard_protocol::{Action, Callflow, MakeCall, Repetition, SayAndCapture, Speed};

use crate::caller::{Caller, CallerModel, Response};
use crate::ids::{self, Stream, Timestamp, Uuid};
use crate::wire;

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
    fn speech(self, text: &str, speed: Option<Speed>, repetition: Option<Repetition>) -> Duration {
        match self {
            Self::Fixed(d) => d,
            Self::Realtime => {
                let speed = speed.map_or(1.0, Speed::get);
                let once = text.chars().count() as f64 / (CHARS_PER_SECOND * speed);
                Duration::from_secs_f64(once * f64::from(repetition.map_or(1, Repetition::get)))
            }
        }
    }

    fn file(self, repetition: Option<Repetition>) -> Duration {
        match self {
            Self::Fixed(d) => d,
            // Files are not fetched; five seconds is a typical announcement.
            Self::Realtime => {
                Duration::from_secs(5) * u32::from(repetition.map_or(1, Repetition::get))
            }
        }
    }

    fn keying(self, keys: usize) -> Duration {
        match self {
            Self::Fixed(_) => Duration::ZERO,
            Self::Realtime => Duration::from_millis(1500 + 300 * keys as u64),
        }
    }

    fn silence(self, overall_timeout_ms: u32) -> Duration {
        match self {
            Self::Fixed(d) => d,
            Self::Realtime => Duration::from_millis(u64::from(overall_timeout_ms)),
        }
    }

    fn ring(self, result: Transfer) -> Duration {
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
    fn roll(&self, rng: &mut StdRng) -> Transfer {
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

/// What executing a callflow leads to, after `spoken` of simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// How long the platform was busy speaking, listening and ringing.
    pub spoken: Duration,
    /// What happens next.
    pub next: Next,
}

/// The platform's move after a callflow.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Send `ACTION_COMPLETED` and ask for the next callflow.
    Continue(Completion),
    /// The call is over: send the session summary.
    End(End),
}

/// The content of an `ACTION_COMPLETED`.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// `eventData`: `None` when nothing was captured (a `say`-only callflow or a transfer
    /// result), `Some(None)` for a capture without valid input (`dtmf: null`).
    pub dtmf: Option<Option<String>>,
    /// The leg's SIP code: 200, or the failed transfer's 486/480.
    pub sip_code: u16,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server's callflow hung up.
    Hangup,
    /// The caller hung up mid-call.
    CallerHangup,
    /// A `makeCall` bridged the caller; the bridged call then ended.
    Transferred,
    /// An outbound call (Callflows API) was not answered.
    DialFailed(Transfer),
    /// The call executed `max_steps` callflows without ending; the caller gave up.
    StepLimit,
    /// The server failed to answer properly; the platform dropped the call.
    Failed(Failure),
    /// An outbound call's `validUntil` passed before it was placed.
    Expired,
}

/// Why the platform dropped a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The webhook answered a non-2xx status.
    Http(u16),
    /// The webhook did not answer in time.
    Timeout,
    /// The webhook could not be reached.
    Unreachable,
    /// The webhook answered a callflow the platform refuses.
    InvalidCallflow,
}

/// How a call ended, as counted in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The flow hung up.
    Hangup,
    /// The flow transferred the caller and the bridged call completed.
    Transferred,
    /// The caller hung up early.
    CallerHangup,
    /// An outbound call was busy.
    Busy,
    /// An outbound call was not answered.
    NoAnswer,
    /// An outbound call expired before it was placed.
    Expired,
    /// The call exceeded the step limit (a looping flow).
    StepLimit,
    /// The server failed the call (HTTP error, timeout, invalid callflow).
    Failed,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 8] = [
        Self::Hangup,
        Self::Transferred,
        Self::CallerHangup,
        Self::Busy,
        Self::NoAnswer,
        Self::Expired,
        Self::StepLimit,
        Self::Failed,
    ];

    /// A stable label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Hangup => "hangup",
            Self::Transferred => "transferred",
            Self::CallerHangup => "caller_hangup",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Expired => "expired",
            Self::StepLimit => "step_limit",
            Self::Failed => "failed",
        }
    }
}

impl End {
    /// How the end is counted.
    pub const fn outcome(self) -> Outcome {
        match self {
            Self::Hangup => Outcome::Hangup,
            Self::CallerHangup => Outcome::CallerHangup,
            Self::Transferred => Outcome::Transferred,
            Self::DialFailed(Transfer::Busy) => Outcome::Busy,
            Self::DialFailed(_) => Outcome::NoAnswer,
            Self::StepLimit => Outcome::StepLimit,
            Self::Failed(_) => Outcome::Failed,
            Self::Expired => Outcome::Expired,
        }
    }
}

/// A webhook ready to deliver.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The event's id (`eventId`; for a summary, a fresh id used only in reports).
    pub event_id: Uuid,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// One leg of the session.
#[derive(Debug, Clone)]
struct Leg {
    call_id: Uuid,
    direction: &'static str,
    source: String,
    destination: String,
    source_country: String,
    destination_country: String,
    source_ref_id: Option<String>,
    destination_ref_id: Option<String>,
    initiated: SystemTime,
    connected: Option<SystemTime>,
    disconnected: Option<SystemTime>,
    /// `None` while the leg is up; its final status once it is down.
    status: Option<&'static str>,
}

/// The platform's side of one call.
#[derive(Debug)]
pub struct VirtualCall {
    config: Arc<PlatformConfig>,
    index: u64,
    session_id: Uuid,
    sub_account: String,
    direction: &'static str,
    legs: Vec<Leg>,
    started: SystemTime,
    ids: StdRng,
    rng: StdRng,
    caller: Caller,
    v2: bool,
    actions_started: u32,
    steps: u32,
    last_action: Option<&'static str>,
    client_action_id: Option<String>,
    client_request_id: Option<String>,
    transfers: Vec<Transfer>,
    forced_dial: Option<Transfer>,
}

impl VirtualCall {
    /// A new inbound call `index`: a caller dials one of the configured virtual numbers.
    pub fn inbound(config: Arc<PlatformConfig>, index: u64, now: SystemTime) -> Self {
        let mut ids = ids::call_rng(config.run_nonce, index, Stream::Ids);
        let mut rng = ids::call_rng(config.seed, index, Stream::Caller);
        let caller = Caller::new(&config.caller, &mut rng);
        let v2 = config.v2_share > 0.0 && rng.random_bool(config.v2_share.min(1.0));
        let mut number = config.caller_prefix.clone();
        let digits = number.trim_start_matches('+').len();
        for _ in digits..11 {
            number.push(char::from(b'0' + rng.random_range(0..10u8)));
        }
        let destination = config
            .destinations
            .get((index % config.destinations.len().max(1) as u64) as usize)
            .cloned()
            .unwrap_or_default();
        let leg = Leg {
            call_id: Uuid::random(&mut ids),
            direction: "INBOUND",
            source: number,
            destination,
            source_country: config.caller_country.clone(),
            destination_country: config.destination_country.clone(),
            source_ref_id: None,
            destination_ref_id: config.destination_ref_id.clone(),
            initiated: now,
            // The IVR answers at once.
            connected: Some(now),
            disconnected: None,
            status: None,
        };
        Self {
            session_id: Uuid::random(&mut ids),
            sub_account: config.sub_account.clone(),
            direction: "INBOUND",
            legs: vec![leg],
            started: now,
            ids,
            rng,
            caller,
            v2,
            actions_started: 0,
            steps: 0,
            last_action: None,
            client_action_id: None,
            client_request_id: None,
            transfers: Vec::new(),
            forced_dial: None,
            config,
            index,
        }
    }

    /// A new outbound call `index` placed by the Callflows API: the platform dials
    /// `make_call.destination` from `make_call.source`.
    pub fn outbound(
        config: Arc<PlatformConfig>,
        index: u64,
        session_id: Uuid,
        sub_account: &str,
        make_call: &MakeCall,
        client_request_id: Option<String>,
        now: SystemTime,
    ) -> Self {
        let mut call = Self::inbound(config, index, now);
        let config = &call.config;
        call.session_id = session_id;
        call.sub_account = sub_account.to_owned();
        call.direction = "OUTBOUND";
        call.client_request_id = client_request_id;
        call.legs[0] = Leg {
            call_id: call.legs[0].call_id,
            direction: "OUTBOUND",
            source: make_call.source.e164(),
            destination: make_call.destination.e164(),
            source_country: config.destination_country.clone(),
            destination_country: config.caller_country.clone(),
            source_ref_id: config.destination_ref_id.clone(),
            destination_ref_id: None,
            initiated: now,
            connected: None,
            disconnected: None,
            status: None,
        };
        call
    }

    /// Makes the outbound dial end as `result` instead of rolling the transfer mix (the
    /// emulator's per-number outcomes).
    pub fn force_dial(&mut self, result: Transfer) {
        self.forced_dial = Some(result);
    }

    /// The call's index in the run.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The session id.
    pub fn session_id(&self) -> Uuid {
        self.session_id
    }

    /// How many callflows the call has executed.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// The results of the call's `makeCall`s so far.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    /// The `clientActionId` the platform echoes next.
    pub fn client_action_id(&self) -> Option<&str> {
        self.client_action_id.as_deref()
    }

    fn parties(leg: &Leg) -> wire::Parties<'_> {
        wire::Parties {
            source: &leg.source,
            destination: &leg.destination,
            source_format: "MSISDN",
            destination_format: "MSISDN",
            source_country_code: &leg.source_country,
            destination_country_code: &leg.destination_country,
            source_ref_id: leg.source_ref_id.as_deref(),
            destination_ref_id: leg.destination_ref_id.as_deref(),
        }
    }

    fn seconds_since_start(&self, now: SystemTime) -> u64 {
        now.duration_since(self.started)
            .unwrap_or_default()
            .as_secs()
    }

    fn call_action(
        &mut self,
        call_status: &'static str,
        completion: Option<&Completion>,
        now: SystemTime,
    ) -> Outgoing {
        let event_id = Uuid::random(&mut self.ids);
        let timestamp = Timestamp::millis(now);
        let leg = &self.legs[0];
        let payload = wire::CallAction {
            event_id: event_id.as_str(),
            call_id: leg.call_id.as_str(),
            session_id: self.session_id.as_str(),
            sub_account_id: &self.sub_account,
            call_status,
            call_direction: self.direction,
            call_type: "PSTN",
            parties: Self::parties(leg),
            call_duration: wire::Seconds {
                value: self.seconds_since_start(now),
                as_text: self.v2,
            },
            event_data: completion
                .and_then(|c| c.dtmf.as_ref())
                .map(|dtmf| wire::EventData {
                    dtmf: dtmf.as_deref(),
                    v2: self.v2,
                }),
            sip_code: completion.map_or(200, |c| c.sip_code),
            timestamp: timestamp.as_str(),
            client_action_id: self.client_action_id.as_deref(),
        };
        let body = wire::to_body("CALL_ACTION", None, payload);
        Outgoing { event_id, body }
    }

    /// The `CALL_RECEIVED` that starts an inbound call.
    pub fn call_received(&mut self, now: SystemTime) -> Outgoing {
        self.call_action("CALL_RECEIVED", None, now)
    }

    /// The `ACTION_COMPLETED` after a callflow, echoing its `clientActionId`.
    pub fn action_completed(&mut self, completion: &Completion, now: SystemTime) -> Outgoing {
        self.call_action("ACTION_COMPLETED", Some(completion), now)
    }

    /// A `CALL_STATUS` telemetry event for the caller's leg.
    pub fn call_status(&mut self, now: SystemTime) -> Outgoing {
        let event_id = Uuid::random(&mut self.ids);
        let timestamp = Timestamp::millis(now);
        let leg = &self.legs[0];
        let payload = wire::CallStatus {
            event_id: event_id.as_str(),
            call_id: leg.call_id.as_str(),
            session_id: self.session_id.as_str(),
            sub_account_id: &self.sub_account,
            call_status: if self.direction == "INBOUND" {
                "CALL_RECEIVED"
            } else {
                "CALL_INITIATED"
            },
            call_direction: self.direction,
            call_type: "PSTN",
            parties: Self::parties(leg),
            call_duration: self.seconds_since_start(now),
            sip_code: 200,
            timestamp: timestamp.as_str(),
        };
        let body = wire::to_body("CALL_STATUS", None, payload);
        Outgoing { event_id, body }
    }

    /// A random draw from the call's fault stream (kept apart from the caller's choices).
    pub fn fault_rng(&self) -> StdRng {
        ids::call_rng(self.config.seed, self.index, Stream::Faults)
    }

    /// Executes the first callflow of an outbound call: dials its `makeCall`, then (if
    /// answered) runs the rest of it.
    pub fn dial(&mut self, callflow: &Callflow, now: SystemTime) -> Execution {
        self.steps += 1;
        self.client_action_id = callflow
            .client_action_id
            .as_ref()
            .map(|id| id.as_str().to_owned());
        self.actions_started += 1;
        self.last_action = Some("MAKE_CALL");
        let rolled = self.config.transfers.roll(&mut self.rng);
        let result = self.forced_dial.unwrap_or(rolled);
        let ring = self.config.pace.ring(result);
        if result != Transfer::Answered {
            self.legs[0].status = Some(result.leg_status());
            self.legs[0].disconnected = Some(now + ring);
            return Execution {
                spoken: ring,
                next: Next::End(End::DialFailed(result)),
            };
        }
        self.legs[0].connected = Some(now + ring);
        let mut run = self.run_actions(callflow.actions.get(1..).unwrap_or_default(), now + ring);
        run.spoken += ring;
        run
    }

    /// Executes a callflow the server answered, as the platform does. Counts as one step; past
    /// `max_steps` the caller gives up.
    pub fn execute(&mut self, callflow: &Callflow, now: SystemTime) -> Execution {
        self.steps += 1;
        self.client_action_id = callflow
            .client_action_id
            .as_ref()
            .map(|id| id.as_str().to_owned());
        let run = self.run_actions(&callflow.actions, now);
        if self.steps >= self.config.max_steps && matches!(run.next, Next::Continue(_)) {
            return Execution {
                spoken: run.spoken,
                next: Next::End(End::StepLimit),
            };
        }
        run
    }

    fn run_actions(&mut self, actions: &[Action], now: SystemTime) -> Execution {
        let mut spoken = Duration::ZERO;
        let pace = self.config.pace;
        for action in actions {
            let n = self.actions_started;
            self.actions_started += 1;
            self.last_action = Some(last_action_name(action));
            let hangs_up = self.caller.hangs_up_during(n);
            let took = match action {
                Action::Say(say) => pace.speech(say.text.as_str(), say.speed, say.repetition),
                Action::PlayFile(play) => pace.file(play.repetition),
                Action::SayAndCapture(capture) if !hangs_up => {
                    return self.capture(capture, spoken);
                }
                Action::SayAndCapture(capture) => pace.speech(
                    capture.prompt_message().as_str(),
                    capture.speed_value(),
                    None,
                ),
                Action::MakeCall(make_call) if !hangs_up => {
                    return self.transfer(make_call, spoken, now);
                }
                Action::MakeCall(_) => pace.ring(Transfer::Answered),
                Action::Hangup => {
                    return Execution {
                        spoken,
                        next: Next::End(End::Hangup),
                    };
                }
            };
            if hangs_up {
                // Half-way through the action.
                return Execution {
                    spoken: spoken + took / 2,
                    next: Next::End(End::CallerHangup),
                };
            }
            spoken += took;
        }
        Execution {
            spoken,
            next: Next::Continue(Completion {
                dtmf: None,
                sip_code: 200,
            }),
        }
    }

    fn capture(&mut self, capture: &SayAndCapture, mut spoken: Duration) -> Execution {
        let pace = self.config.pace;
        let speed = capture.speed_value();
        for _ in 0..capture.no_of_tries().max(1) {
            spoken += pace.speech(capture.prompt_message().as_str(), speed, None);
            let response = self
                .caller
                .respond(&self.config.caller, capture, &mut self.rng);
            let keys = match response {
                Response::Hangup => {
                    return Execution {
                        spoken,
                        next: Next::End(End::CallerHangup),
                    };
                }
                Response::Silence => {
                    spoken += pace.silence(capture.overall_timeout_ms());
                    None
                }
                Response::Keys(keys) => {
                    spoken += pace.keying(keys.len());
                    accepted_digits(capture, &keys)
                }
            };
            if let Some(digits) = keys {
                if let Some(text) = capture.success_message_text() {
                    spoken += pace.speech(text.as_str(), speed, None);
                }
                return Execution {
                    spoken,
                    next: Next::Continue(Completion {
                        dtmf: Some(Some(digits)),
                        sip_code: 200,
                    }),
                };
            }
            if let Some(text) = capture.failure_message_text() {
                spoken += pace.speech(text.as_str(), speed, None);
            }
        }
        Execution {
            spoken,
            next: Next::Continue(Completion {
                dtmf: Some(None),
                sip_code: 200,
            }),
        }
    }

    fn transfer(&mut self, make_call: &MakeCall, spoken: Duration, now: SystemTime) -> Execution {
        let pace = self.config.pace;
        let result = self.config.transfers.roll(&mut self.rng);
        self.transfers.push(result);
        let ring = pace.ring(result);
        let initiated = now + spoken;
        let mut leg = Leg {
            call_id: Uuid::random(&mut self.ids),
            direction: "OUTBOUND",
            source: make_call.source.e164(),
            destination: make_call.destination.e164(),
            source_country: self.config.destination_country.clone(),
            destination_country: self.config.caller_country.clone(),
            source_ref_id: self.config.destination_ref_id.clone(),
            destination_ref_id: None,
            initiated,
            connected: None,
            disconnected: Some(initiated + ring),
            status: Some(result.leg_status()),
        };
        if result != Transfer::Answered {
            if self.legs.len() < wire::MAX_LEGS {
                self.legs.push(leg);
            }
            return Execution {
                spoken: spoken + ring,
                next: Next::Continue(Completion {
                    dtmf: None,
                    sip_code: result.sip_code(),
                }),
            };
        }
        let talk = self.config.talk_time.unwrap_or(match pace {
            Pace::Fixed(d) => d,
            Pace::Realtime => Duration::from_secs(self.rng.random_range(20..=120)),
        });
        leg.connected = Some(initiated + ring);
        leg.disconnected = Some(initiated + ring + talk);
        if self.legs.len() < wire::MAX_LEGS {
            self.legs.push(leg);
        }
        Execution {
            spoken: spoken + ring + talk,
            next: Next::End(End::Transferred),
        }
    }

    /// The `SESSION_SUMMARY` that closes the session, consistent with how it ended.
    pub fn session_summary(&mut self, end: End, now: SystemTime) -> Outgoing {
        let event_id = Uuid::random(&mut self.ids);
        let (session_status, caller_leg, error) = match end {
            End::Hangup | End::CallerHangup | End::Transferred | End::StepLimit => {
                ("COMPLETED", "COMPLETED", None)
            }
            End::DialFailed(result) => (
                if result == Transfer::Busy {
                    "BUSY"
                } else {
                    "NO_ANSWER"
                },
                result.leg_status(),
                None,
            ),
            End::Failed(failure) => ("ERROR", "FAILED", Some(failure)),
            End::Expired => ("ERROR", "CANCELED", None),
        };
        let a = &mut self.legs[0];
        a.status.get_or_insert(caller_leg);
        a.disconnected.get_or_insert(now);
        let error_message;
        let error_details = match (end, error) {
            (End::Expired, _) => Some(wire::ErrorDetails {
                error_msg: "Validity expired",
                error_code: -2007,
            }),
            (_, Some(failure)) => {
                let (code, message) = match failure {
                    Failure::InvalidCallflow => (-2003, "Invalid call flow".to_owned()),
                    Failure::Http(status) => (-2002, format!("Webhook answered HTTP {status}")),
                    Failure::Timeout => (-2002, "Webhook did not answer in time".to_owned()),
                    Failure::Unreachable => (-2002, "Webhook unreachable".to_owned()),
                };
                error_message = message;
                Some(wire::ErrorDetails {
                    error_msg: &error_message,
                    error_code: code,
                })
            }
            _ => None,
        };
        // An expired call never rang: it has no legs.
        let leg_count = if end == End::Expired {
            0
        } else {
            self.legs.len()
        };
        let stamps: Vec<[Option<Timestamp>; 3]> = self.legs[..leg_count]
            .iter()
            .map(|leg| {
                [
                    Some(Timestamp::seconds(leg.initiated)),
                    leg.connected.map(Timestamp::seconds),
                    Some(Timestamp::seconds(leg.disconnected.unwrap_or(now))),
                ]
            })
            .collect();
        let legs: Vec<wire::Leg<'_>> = self.legs[..leg_count]
            .iter()
            .zip(&stamps)
            .map(|(leg, [initiated, connected, disconnected])| {
                let talked = match (leg.connected, leg.disconnected) {
                    (Some(c), Some(d)) => d.duration_since(c).unwrap_or_default().as_secs(),
                    _ => 0,
                };
                wire::Leg {
                    call_id: leg.call_id.as_str(),
                    call_direction: leg.direction,
                    call_type: "PSTN",
                    initiated_timestamp: initiated.as_ref().map_or("", Timestamp::as_str),
                    connected_timestamp: connected.as_ref().map(Timestamp::as_str),
                    disconnected_timestamp: disconnected.as_ref().map_or("", Timestamp::as_str),
                    parties: Self::parties(leg),
                    call_status: leg.status.unwrap_or("COMPLETED"),
                    call_duration: talked,
                }
            })
            .collect();
        let start = Timestamp::seconds(self.started);
        let end_time = Timestamp::seconds(now);
        let payload = wire::SessionSummary {
            session_id: self.session_id.as_str(),
            sub_account_id: &self.sub_account,
            session_status,
            start_time: start.as_str(),
            end_time: end_time.as_str(),
            last_action: if end == End::Expired {
                None
            } else {
                self.last_action
            },
            call_count: leg_count,
            client_request_id: self.client_request_id.as_deref(),
            error_details,
            details: wire::Legs(&legs),
        };
        let body = wire::to_body("SESSION_SUMMARY", Some(5), payload);
        Outgoing { event_id, body }
    }
}

fn last_action_name(action: &Action) -> &'static str {
    match action {
        Action::MakeCall(_) => "MAKE_CALL",
        Action::Say(_) => "SAY",
        Action::SayAndCapture(_) => "SAY_AND_CAPTURE",
        Action::PlayFile(_) => "PLAY_FILE",
        Action::Hangup => "HANGUP",
    }
}

/// The digits the platform captures from `keys`, or `None` if it refuses them and asks again.
/// With `completeOnHash`, `#` ends input and is not part of the digits; input stops at
/// `maxDigits`; fewer than `minDigits` (or nothing) is no valid input.
fn accepted_digits(capture: &SayAndCapture, keys: &str) -> Option<String> {
    let keys = if capture.completes_on_hash() {
        keys.split('#').next().unwrap_or("")
    } else {
        keys
    };
    let max = capture.max_digits().map_or(25, |d| usize::from(d.get()));
    let digits: String = keys.chars().take(max).collect();
    let min = capture.min_digits().map_or(1, |d| usize::from(d.get()));
    (digits.len() >= min).then_some(digits)
}

#[cfg(test)]
mod tests {
    use switchboard_protocol::{
        CallLeg, DigitCount, Msisdn, Say, SessionStatus, Text, VoiceProfile, Webhook,
    };

    use super::*;
    use crate::caller::{ScriptEntry, Walk};

    fn voice() -> VoiceProfile {
        VoiceProfile::new("en-US-BenjaminRUS").unwrap()
    }

    fn config(caller: CallerModel) -> Arc<PlatformConfig> {
        Arc::new(PlatformConfig {
            caller,
            seed: 9,
            run_nonce: 1,
            ..PlatformConfig::default()
        })
    }

    fn script(entries: &str) -> CallerModel {
        CallerModel::Script(crate::caller::parse_script(entries).unwrap())
    }

    fn menu() -> Callflow {
        Callflow::builder()
            .say(Say::new(Text::new("Welcome").unwrap(), voice()))
            .capture(SayAndCapture::new(
                Text::new("Press 1 for sales").unwrap(),
                voice(),
            ))
            .unwrap()
    }

    fn parse(out: &Outgoing) -> Webhook {
        Webhook::from_slice(&out.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.body)))
    }

    #[test]
    fn call_received_parses_and_names_the_destination() {
        let now = SystemTime::now();
        let mut call = VirtualCall::inbound(config(CallerModel::default()), 0, now);
        let Webhook::CallAction(a) = parse(&call.call_received(now)) else {
            panic!("not a call action")
        };
        assert_eq!(a.destination, "+6568888888");
        assert_eq!(a.source.len(), 12, "{}", a.source);
        assert_eq!(a.session_id, call.session_id().as_str());
        assert_eq!(a.client_action_id, None);
        assert_eq!(a.event_data, None);
    }

    #[test]
    fn capture_echoes_client_action_id_and_keys() {
        let now = SystemTime::now();
        let mut call = VirtualCall::inbound(config(script("1")), 0, now);
        let mut flow = menu();
        flow.client_action_id =
            Some(switchboard_protocol::ClientActionId::new("main-menu").unwrap());
        let run = call.execute(&flow, now);
        let Next::Continue(completion) = run.next else {
            panic!("{run:?}")
        };
        assert_eq!(completion.dtmf, Some(Some("1".to_owned())));
        let Webhook::CallAction(a) = parse(&call.action_completed(&completion, now)) else {
            panic!()
        };
        assert_eq!(a.client_action_id.as_deref(), Some("main-menu"));
        assert_eq!(a.dtmf(), Some("1"));
    }

    #[test]
    fn silence_and_short_input_retry_then_null() {
        let now = SystemTime::now();
        let account = SayAndCapture::new(Text::new("Account number?").unwrap(), voice())
            .digits(
                Some(DigitCount::new(4).unwrap()),
                DigitCount::new(4).unwrap(),
            )
            .unwrap()
            .tries(3)
            .unwrap();
        let flow = Callflow::builder().capture(account).unwrap();
        let mut call = VirtualCall::inbound(config(script("-,12,1234#")), 0, now);
        let run = call.execute(&flow, now);
        assert_eq!(
            run.next,
            Next::Continue(Completion {
                dtmf: Some(Some("1234".into())),
                sip_code: 200
            })
        );
        let mut call = VirtualCall::inbound(config(script("-,12,-")), 1, now);
        let run = call.execute(&flow, now);
        let Next::Continue(completion) = run.next else {
            panic!()
        };
        assert_eq!(completion.dtmf, Some(None));
        let Webhook::CallAction(a) = parse(&call.action_completed(&completion, now)) else {
            panic!()
        };
        assert_eq!(a.event_data.unwrap().dtmf, None);
    }

    #[test]
    fn say_only_callflow_completes_without_event_data() {
        let now = SystemTime::now();
        let mut call = VirtualCall::inbound(config(script("-")), 0, now);
        let flow = Callflow::builder()
            .say(Say::new(Text::new("Hello").unwrap(), voice()))
            .finish()
            .unwrap();
        // An empty builder becomes a hangup; this one has a say.
        let run = call.execute(&flow, now);
        assert_eq!(
            run.next,
            Next::Continue(Completion {
                dtmf: None,
                sip_code: 200
            })
        );
    }

    fn transfer_flow() -> Callflow {
        Callflow::builder()
            .make_call(MakeCall {
                source: Msisdn::new("+6568888888").unwrap(),
                destination: Msisdn::new("6531589338").unwrap(),
                call_recording: None,
            })
            .unwrap()
    }

    fn summary(out: &Outgoing) -> switchboard_protocol::SessionSummary {
        match parse(out) {
            Webhook::SessionSummary(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn busy_transfer_continues_and_summary_has_both_legs() {
        let now = SystemTime::now();
        let cfg = Arc::new(PlatformConfig {
            transfers: TransferMix {
                answered: 0.0,
                busy: 1.0,
                no_answer: 0.0,
            },
            ..(*config(script("1"))).clone()
        });
        let mut call = VirtualCall::inbound(cfg, 0, now);
        let run = call.execute(&transfer_flow(), now);
        assert_eq!(
            run.next,
            Next::Continue(Completion {
                dtmf: None,
                sip_code: 486
            })
        );
        let hangup = Callflow::builder().hangup().unwrap();
        let run = call.execute(&hangup, now);
        assert_eq!(run.next, Next::End(End::Hangup));
        let s = summary(&call.session_summary(End::Hangup, now));
        assert_eq!(s.session_status, SessionStatus::Completed);
        assert_eq!(s.last_action.as_deref(), Some("HANGUP"));
        assert_eq!(s.call_count, Some(2));
        let b: &CallLeg = &s.details["callB"];
        assert_eq!(b.call_status.as_deref(), Some("BUSY"));
        assert_eq!(b.destination.as_deref(), Some("+6531589338"));
        assert_eq!(b.connected_timestamp, None);
        assert_eq!(s.details["callA"].call_status.as_deref(), Some("COMPLETED"));
    }

    #[test]
    fn answered_transfer_ends_the_call() {
        let now = SystemTime::now();
        let cfg = Arc::new(PlatformConfig {
            transfers: TransferMix {
                answered: 1.0,
                busy: 0.0,
                no_answer: 0.0,
            },
            talk_time: Some(Duration::from_secs(30)),
            ..(*config(script("1"))).clone()
        });
        let mut call = VirtualCall::inbound(cfg, 0, now);
        let run = call.execute(&transfer_flow(), now);
        assert_eq!(run.next, Next::End(End::Transferred));
        assert_eq!(run.spoken, Duration::from_secs(30));
        let s = summary(&call.session_summary(End::Transferred, now + run.spoken));
        assert_eq!(s.last_action.as_deref(), Some("MAKE_CALL"));
        assert_eq!(s.details["callB"].call_status.as_deref(), Some("COMPLETED"));
        assert_eq!(s.details["callB"].call_duration, Some(30));
        assert!(s.details["callB"].connected_timestamp.is_some());
    }

    #[test]
    fn step_limit_ends_a_looping_flow() {
        let now = SystemTime::now();
        let cfg = Arc::new(PlatformConfig {
            max_steps: 3,
            ..(*config(script("1,1,1,1"))).clone()
        });
        let mut call = VirtualCall::inbound(cfg, 0, now);
        let nexts: Vec<Next> = (0..3).map(|_| call.execute(&menu(), now).next).collect();
        assert!(matches!(nexts[1], Next::Continue(_)));
        assert_eq!(nexts[2], Next::End(End::StepLimit));
    }

    #[test]
    fn early_hangup_happens_within_the_horizon() {
        let model = CallerModel::Walk(Walk {
            invalid: 0.0,
            silence: 0.0,
            hangup: 1.0,
        });
        let now = SystemTime::now();
        let mut hung_up = 0;
        for index in 0..20 {
            let mut call = VirtualCall::inbound(config(model.clone()), index, now);
            for _ in 0..10 {
                match call.execute(&menu(), now).next {
                    Next::End(End::CallerHangup) => {
                        hung_up += 1;
                        break;
                    }
                    Next::End(other) => panic!("{other:?}"),
                    Next::Continue(_) => {}
                }
            }
        }
        assert_eq!(hung_up, 20);
    }

    #[test]
    fn failed_and_v2_bodies() {
        let now = SystemTime::now();
        let cfg = Arc::new(PlatformConfig {
            v2_share: 1.0,
            ..(*config(script("5"))).clone()
        });
        let mut call = VirtualCall::inbound(cfg, 0, now);
        let Next::Continue(c) = call.execute(&menu(), now).next else {
            panic!()
        };
        let out = call.action_completed(&c, now);
        let text = String::from_utf8(out.body.clone()).unwrap();
        assert!(text.contains(r#""eventData":"5""#), "{text}");
        assert!(text.contains(r#""callDuration":"0""#), "{text}");
        let s = summary(&call.session_summary(End::Failed(Failure::Http(500)), now));
        assert_eq!(s.session_status, SessionStatus::Error);
        let e = s.error_details.unwrap();
        assert_eq!(e.error_code, Some(-2002));
        assert_eq!(s.details["callA"].call_status.as_deref(), Some("FAILED"));
    }

    #[test]
    fn script_entry_keys_are_kept_verbatim() {
        assert_eq!(
            "12#".parse::<ScriptEntry>(),
            Ok(ScriptEntry::Keys("12#".into()))
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use switchboard_protocol::{
        ClientActionId, Msisdn, Say, SessionStatus, Text, VoiceProfile, Webhook,
    };

    use super::*;
    use crate::caller::Walk;

    fn voice() -> VoiceProfile {
        VoiceProfile::new("en-US-BenjaminRUS").unwrap()
    }

    /// A small IVR: a menu; 1 transfers, 2 says goodbye and hangs up, anything else repeats.
    fn answer(dtmf: Option<&str>, first: bool) -> Callflow {
        let menu = || {
            Callflow::builder()
                .client_action_id(ClientActionId::new("menu").unwrap())
                .capture(SayAndCapture::new(
                    Text::new("Press 1 for sales or 2 to leave.").unwrap(),
                    voice(),
                ))
                .unwrap()
        };
        match (first, dtmf) {
            (true, _) => menu(),
            (false, Some("1")) => Callflow::builder()
                .client_action_id(ClientActionId::new("transfer").unwrap())
                .make_call(MakeCall {
                    source: Msisdn::new("+6568888888").unwrap(),
                    destination: Msisdn::new("+6531589338").unwrap(),
                    call_recording: None,
                })
                .unwrap(),
            (false, Some("2")) => Callflow::builder()
                .say(Say::new(Text::new("Goodbye").unwrap(), voice()))
                .hangup()
                .unwrap(),
            _ => menu(),
        }
    }

    proptest! {
        /// Every body a call writes parses as the webhook it claims to be, echoes the last
        /// clientActionId, and the summary agrees with how the call ended.
        #[test]
        fn every_call_writes_consistent_webhooks(
            seed in any::<u64>(),
            index in 0u64..1000,
            invalid in 0.0f64..0.5,
            silence in 0.0f64..0.5,
            hangup in 0.0f64..1.0,
            v2 in any::<bool>(),
        ) {
            let config = Arc::new(PlatformConfig {
                caller: CallerModel::Walk(Walk { invalid, silence, hangup }),
                seed,
                run_nonce: seed ^ 1,
                max_steps: 20,
                v2_share: if v2 { 1.0 } else { 0.0 },
                ..PlatformConfig::default()
            });
            let now = SystemTime::now();
            let mut call = VirtualCall::inbound(config, index, now);
            let session = call.session_id().to_string();
            let out = call.call_received(now);
            let Webhook::CallAction(a) = Webhook::from_slice(&out.body).unwrap() else { panic!() };
            prop_assert_eq!(&a.session_id, &session);
            let mut callflow = answer(None, true);
            let end = loop {
                let run = call.execute(&callflow, now);
                match run.next {
                    Next::End(end) => break end,
                    Next::Continue(completion) => {
                        let out = call.action_completed(&completion, now);
                        let Webhook::CallAction(a) = Webhook::from_slice(&out.body).unwrap() else {
                            panic!()
                        };
                        prop_assert_eq!(
                            a.client_action_id.as_deref(),
                            callflow.client_action_id.as_ref().map(|c| c.as_str())
                        );
                        prop_assert_eq!(&a.event_id, &out.event_id.to_string());
                        callflow = answer(a.dtmf(), false);
                    }
                }
            };
            let out = call.session_summary(end, now);
            let Webhook::SessionSummary(s) = Webhook::from_slice(&out.body).unwrap() else { panic!() };
            prop_assert_eq!(&s.session_id, &session);
            prop_assert_eq!(s.call_count, Some(s.details.len() as u64));
            prop_assert_eq!(s.details.len(), 1 + call.transfers().len());
            let expected = match end {
                End::Failed(_) | End::Expired => SessionStatus::Error,
                End::DialFailed(Transfer::Busy) => SessionStatus::Busy,
                End::DialFailed(_) => SessionStatus::NoAnswer,
                _ => SessionStatus::Completed,
            };
            prop_assert_eq!(s.session_status, expected);
            prop_assert_eq!(s.details["callA"].call_status.as_deref(), Some("COMPLETED"));
            if end == End::Transferred {
                prop_assert_eq!(s.last_action.as_deref(), Some("MAKE_CALL"));
                prop_assert_eq!(call.transfers().last(), Some(&Transfer::Answered));
            }
        }
    }
}
