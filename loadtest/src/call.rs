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
use switchboard_protocol::{Action, Callflow, MakeCall, SayAndCapture};

use crate::caller::{Caller, Response};
use crate::ids::{self, Stream, Timestamp, Uuid};
use crate::wire;

mod outcome;
mod platform;

pub use outcome::{Completion, End, Execution, Failure, Next, Outcome, Outgoing};
pub use platform::{Pace, PlatformConfig, Transfer, TransferMix};

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
mod tests;
