//! The command line: flags, their documentation (`--help`), and their translation into the
//! typed settings of the other modules. Parsing is separate from running so that it is unit
//! tested without a process; `main.rs` only wires the result to the runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hyper::Uri;

use crate::call::{Pace, PlatformConfig, TransferMix};
use crate::caller::{CallerModel, Walk, parse_script};
use crate::client::{ClientConfig, Select, parse_target};
use crate::load::{Limit, Shape};
use crate::player::Faults;

const ABOUT: &str = "Load generator and 8x8 Voice platform emulator for Switchboard.";

const LONG_ABOUT: &str = "\
Load generator and 8x8 Voice platform emulator for Switchboard.

Without a subcommand, plays virtual inbound calls against one or more webhook servers: each call
gets fresh ids, posts CALL_RECEIVED to --destination, and executes every callflow it is answered
with as the platform would (validating it, speaking, capturing the caller model's keys, dialling
makeCall with a mix of answered/busy/no-answer results) until a hangup, a caller hang-up or a
failure ends it with a SESSION_SUMMARY.

With `emulate`, serves the 8x8 Callflows API (POST /api/v1/subaccounts/{id}/callflows) and plays
each outbound call it creates against --webhook.

While it runs, progress goes to stderr (a bar on a terminal, a plain line per interval in a
log; --quiet for none). At the end a summary is printed (and written as JSON with --json, and
as an HTML page with charts with --html; --compare puts two JSON reports side by side). The
exit status is 0 when the run had no errors (or an error rate within --max-error-rate), 1 when
it had more, and 2 on a usage or start-up error. Errors are: non-2xx answers, timeouts, connection failures, protocol
violations in callflows, duplicate-consistency failures, skipped open-loop calls and calls that
hit --max-steps.";

const EXAMPLES: &str = "\
Examples:
  switchboard-loadgen --target http://127.0.0.1:8080 --concurrency 50 --duration 30s
  switchboard-loadgen --rate 200 --calls 10000 --duplicate 0.05 --reorder 0.02 --json out.json
  switchboard-loadgen --duration 60s --json new.json --html new.html
  switchboard-loadgen --compare old.json new.json
  switchboard-loadgen --script 1,2,hangup --calls 1 --target http://127.0.0.1:8080/webhooks/vca
  switchboard-loadgen emulate --listen 127.0.0.1:9000 --webhook http://127.0.0.1:8080";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "switchboard-loadgen",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Run the platform emulator instead of a load run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The load run's flags.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the 8x8 Callflows API and play each created call against a webhook URL.
    Emulate(EmulateArgs),
    /// Serve JSON from a file, as the backend of flows' fetch nodes.
    Backend(BackendArgs),
}

/// Flags of `switchboard-loadgen backend`.
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// Address to serve on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8091")]
    pub listen: SocketAddr,
    /// JSON object of request paths to answers, e.g. loadtest/accounts.json.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Hold every answer back this many milliseconds (a slow backend).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub delay_ms: u64,
}

/// Flags of a load run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Webhook URL of a server under test; repeat for several replicas. A URL without a path
    /// gets /webhooks.
    #[arg(
        long = "target",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub targets: Vec<String>,
    /// How deliveries are spread over several targets.
    #[arg(long, value_enum, default_value_t = SelectArg::RoundRobin)]
    pub select: SelectArg,
    /// Closed loop: keep this many calls in flight (the default shape, with 10).
    #[arg(long, value_name = "N", conflicts_with = "rate")]
    pub concurrency: Option<usize>,
    /// Open loop: start this many calls per second, whatever the server does. Latency is
    /// measured from each call's scheduled time.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Open loop: the most calls in flight; a call due beyond it is skipped and counted as an
    /// error.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_in_flight: usize,
    /// Stop starting calls after this long (e.g. 30s, 2m, 500ms). Default 10s unless --calls
    /// is given.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after starting this many calls.
    #[arg(long, value_name = "N")]
    pub calls: Option<u64>,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Tolerate errors up to this share of webhooks sent (0 = none).
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_share)]
    pub max_error_rate: f64,
    /// Keep this many samples of each kind of problem (violations, duplicate mismatches).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub samples: usize,
    /// Also write the report as one self-contained HTML page (charts drawn inline, nothing
    /// fetched) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// No live progress on stderr (the summary is still printed). Without it, progress is a
    /// bar on a terminal and one plain line per --progress-interval otherwise.
    #[arg(long, short = 'q', alias = "no-progress")]
    pub quiet: bool,
    /// How often progress is shown (default 1s on a terminal, 5s in a log).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub progress_interval: Option<Duration>,
    /// Print two JSON reports (--json) side by side with the ratio B/A of each figure, and
    /// exit; no run is made.
    #[arg(long, num_args = 2, value_names = ["A.json", "B.json"])]
    pub compare: Option<Vec<PathBuf>>,
    /// Webhook client settings.
    #[command(flatten)]
    pub client: ClientArgs,
    /// How the platform behaves.
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Injected faults.
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// Flags of the emulator.
#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// Address to serve the Callflows API on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Where the created calls' webhooks go (a URL without a path gets /webhooks).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub webhook: String,
    /// Require `Authorization: Bearer KEY` on API requests.
    #[arg(
        long,
        value_name = "KEY",
        env = "SWITCHBOARD_LOADGEN_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Write the report as JSON to this file on shutdown (Ctrl-C).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page to this file on shutdown.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Keep this many samples of each kind of problem.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub samples: usize,
    /// Write one JSON line per API request (`event: request`, `at_ms`, destination,
    /// clientRequestId, status, statusCode, sessionId, repeated, callflow) and per call end (`event:
    /// ended`, `at_ms` of the session summary, sessionId, outcome, `summary`: the HTTP status
    /// the webhook answered the summary with, null if it did not answer) to this file, as they
    /// happen.
    #[arg(long, value_name = "FILE")]
    pub arrivals: Option<PathBuf>,
    /// Make the makeCall to a number end this way instead of by the mix:
    /// NUMBER=answered|busy|no-answer; repeat for several numbers.
    #[arg(long = "outcome", value_name = "NUMBER=RESULT", value_parser = parse_outcome)]
    pub outcomes: Vec<(String, crate::call::Transfer)>,
    /// Answer requests dialling a number with an HTTP error: NUMBER=STATUS, or
    /// NUMBER=STATUSxN for only the first N requests (e.g. +6591234567=500x2).
    #[arg(long = "fail", value_name = "NUMBER=STATUS[xN]", value_parser = parse_failure)]
    pub failures: Vec<(String, crate::emulator::Failure)>,
    /// The sub-accounts that exist (repeat); requests for any other get the platform's 404.
    /// Default: every sub-account exists.
    #[arg(long = "known-sub-account", value_name = "ID")]
    pub known_sub_accounts: Vec<String>,
    /// Webhook client settings.
    #[command(flatten)]
    pub client: ClientArgs,
    /// How the platform behaves.
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Injected faults.
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// `--select`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SelectArg {
    /// Each target in turn.
    RoundRobin,
    /// A target at random.
    Random,
}

/// Webhook client flags.
#[derive(Debug, Args)]
#[command(next_help_heading = "Webhook client")]
pub struct ClientArgs {
    /// Deadline of one webhook delivery (connect, send, read the answer); past it the delivery
    /// counts as a timeout and the call fails.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Send this value as the Authorization header, as the platform does with a webhook's
    /// httpAuthHeader (e.g. "Bearer s3cret"). The environment variable keeps it out of `ps`.
    #[arg(
        long,
        value_name = "HEADER",
        env = "SWITCHBOARD_LOADGEN_AUTH",
        hide_env_values = true
    )]
    pub auth: Option<String>,
    /// Open at most this many connections (default: one per delivery in flight). Waiting for
    /// one counts in the latency.
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
}

/// Platform and caller flags.
#[derive(Debug, Args)]
#[command(next_help_heading = "Platform and callers")]
pub struct PlatformArgs {
    /// The virtual number called (routes the flow); repeat to spread calls over several.
    #[arg(
        long = "destination",
        value_name = "E164",
        default_value = "+6568888888"
    )]
    pub destinations: Vec<String>,
    /// The sub-account named in webhooks.
    #[arg(long, value_name = "ID", default_value = "acme_voice")]
    pub sub_account: String,
    /// Seed of the callers' choices and the faults; the same seed repeats a run's calls.
    /// Default: from the clock (printed in the report).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Seed of session, call and event ids (default: fresh each run, so a stateful server
    /// never sees an id twice).
    #[arg(long, value_name = "N")]
    pub id_seed: Option<u64>,
    /// Fixed caller script instead of the random walk: keys per capture attempt, - for
    /// silence, `hangup`; e.g. 1,2,-,12345678#,hangup. When it runs out the caller hangs up.
    #[arg(long, value_name = "KEYS")]
    pub script: Option<String>,
    /// Random walk: share of capture attempts answered with a key the prompt did not offer.
    #[arg(long, value_name = "SHARE", default_value_t = 0.05, value_parser = parse_share)]
    pub invalid: f64,
    /// Random walk: share of capture attempts answered with silence (dtmf: null after all
    /// tries).
    #[arg(long, value_name = "SHARE", default_value_t = 0.05, value_parser = parse_share)]
    pub silence: f64,
    /// Random walk: share of calls whose caller hangs up early, at a random point.
    #[arg(long, value_name = "SHARE", default_value_t = 0.05, value_parser = parse_share)]
    pub hangup: f64,
    /// How makeCall attempts end, as weights: answered=W,busy=W,no-answer=W (SIP 200/486/480).
    #[arg(long, value_name = "MIX", default_value = "answered=0.7,busy=0.2,no-answer=0.1", value_parser = parse_mix)]
    pub transfer_mix: TransferMix,
    /// Simulated duration of each spoken action, silence and ring (0: as fast as possible).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub speak: Duration,
    /// Take as long as a real call: speech from text length and speed, silences until the
    /// capture's timeout, seconds of ringing and talk. Overrides --speak.
    #[arg(long)]
    pub realtime: bool,
    /// How long a bridged transfer talks before the call ends (default: --speak, or 20-120s
    /// with --realtime).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub talk_time: Option<Duration>,
    /// The most callflows one call executes before the caller gives up (a looping flow);
    /// reaching it counts as an error.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub max_steps: u32,
    /// Share of calls whose webhooks use the older v2 form (eventData and callDuration as
    /// strings).
    #[arg(long, value_name = "SHARE", default_value_t = 0.0, value_parser = parse_share)]
    pub v2_share: f64,
    /// Also send a CALL_STATUS event when each call starts.
    #[arg(long)]
    pub call_status: bool,
}

/// Fault injection flags.
#[derive(Debug, Args)]
#[command(next_help_heading = "Fault injection")]
pub struct FaultArgs {
    /// Share of deliveries sent twice at once; both answers must be byte-identical.
    #[arg(long, value_name = "SHARE", default_value_t = 0.0, value_parser = parse_share)]
    pub duplicate: f64,
    /// Share of deliveries sent again, out of order, after the session's next event was
    /// answered; the stale copy's answer must be byte-identical to the original's.
    #[arg(long, value_name = "SHARE", default_value_t = 0.0, value_parser = parse_share)]
    pub reorder: f64,
    /// Share of deliveries held back by a random delay up to --delay-max.
    #[arg(long, value_name = "SHARE", default_value_t = 0.0, value_parser = parse_share)]
    pub delay: f64,
    /// The longest injected delay.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
    pub delay_max: Duration,
}

/// Parses `500ms`, `10s`, `2m`, `1h` (anything `humantime` reads), a bare number of seconds
/// (`1.5`), or a fraction with a unit (`1.5s`, `0.5m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(seconds) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{text:?} is out of range"));
    }
    let unit_error = |e: humantime::DurationError| {
        format!("{text:?} is not a duration ({e}); write e.g. 500ms, 10s, 2m or 1h")
    };
    match humantime::parse_duration(t) {
        Ok(duration) => Ok(duration),
        Err(whole) => {
            // A fraction: humantime reads whole numbers only, so scale one of the unit.
            let split = t
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len());
            let (number, unit) = t.split_at(split);
            let Ok(value) = number.parse::<f64>() else {
                return Err(unit_error(whole));
            };
            let one =
                humantime::parse_duration(&format!("1{}", unit.trim())).map_err(unit_error)?;
            Duration::try_from_secs_f64(one.as_secs_f64() * value)
                .map_err(|_| format!("{text:?} is out of range"))
        }
    }
}

/// Parses a share between 0 and 1.
pub fn parse_share(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{text:?} is not a share; write a number from 0 to 1, e.g. 0.05"
        )),
    }
}

/// Parses `answered=0.7,busy=0.2,no-answer=0.1` (missing kinds weigh 0).
/// Parses `--outcome NUMBER=answered|busy|no-answer`.
pub fn parse_outcome(text: &str) -> Result<(String, crate::call::Transfer), String> {
    use crate::call::Transfer;
    let (number, result) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NUMBER=RESULT; write e.g. +6591234567=busy"))?;
    let result = match result.trim() {
        "answered" => Transfer::Answered,
        "busy" => Transfer::Busy,
        "no-answer" | "no_answer" | "noanswer" => Transfer::NoAnswer,
        other => {
            return Err(format!(
                "{other:?} is not a dial result; use answered, busy or no-answer"
            ));
        }
    };
    Ok((number.trim().to_owned(), result))
}

/// Parses `--fail NUMBER=STATUS[xN]`.
pub fn parse_failure(text: &str) -> Result<(String, crate::emulator::Failure), String> {
    let (number, spec) = text.split_once('=').ok_or_else(|| {
        format!("{text:?} is not NUMBER=STATUS[xN]; write e.g. +6591234567=500x2")
    })?;
    let (status, times) = match spec.split_once('x') {
        Some((status, times)) => (status, Some(times)),
        None => (spec, None),
    };
    let status: u16 = status
        .trim()
        .parse()
        .ok()
        .filter(|s| (400..600).contains(s))
        .ok_or_else(|| format!("{status:?} in {text:?} is not an HTTP error status (400-599)"))?;
    let times = times
        .map(|t| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("{t:?} in {text:?} is not a count of requests"))
        })
        .transpose()?;
    Ok((
        number.trim().to_owned(),
        crate::emulator::Failure { status, times },
    ))
}

/// Parses a transfer mix, `answered=0.6,busy=0.3,no_answer=0.1` (shares of transfers).
pub fn parse_mix(text: &str) -> Result<TransferMix, String> {
    let mut mix = TransferMix {
        answered: 0.0,
        busy: 0.0,
        no_answer: 0.0,
    };
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, weight) = part.split_once('=').ok_or_else(|| {
            format!("{part:?} has no weight; write e.g. answered=0.7,busy=0.2,no-answer=0.1")
        })?;
        let weight: f64 = weight
            .trim()
            .parse()
            .ok()
            .filter(|w: &f64| w.is_finite() && *w >= 0.0)
            .ok_or_else(|| format!("{weight:?} in {part:?} is not a weight (a number >= 0)"))?;
        match name.trim() {
            "answered" => mix.answered = weight,
            "busy" => mix.busy = weight,
            "no-answer" | "no_answer" | "noanswer" => mix.no_answer = weight,
            other => {
                return Err(format!(
                    "{other:?} is not a transfer result; use answered, busy or no-answer"
                ));
            }
        }
    }
    if mix.answered + mix.busy + mix.no_answer <= 0.0 {
        return Err("the transfer weights add up to 0; give at least one a weight".to_owned());
    }
    Ok(mix)
}

impl PlatformArgs {
    /// The platform's settings; `seed` and `run_nonce` already resolved.
    pub fn config(&self, seed: u64, run_nonce: u64) -> Result<PlatformConfig, String> {
        let caller = match &self.script {
            Some(script) => CallerModel::Script(
                parse_script(script).map_err(|e| format!("--script {script:?}: {e}"))?,
            ),
            None => CallerModel::Walk(Walk {
                invalid: self.invalid,
                silence: self.silence,
                hangup: self.hangup,
            }),
        };
        if self.invalid + self.silence > 1.0 {
            return Err(format!(
                "--invalid {} and --silence {} add up to more than 1",
                self.invalid, self.silence
            ));
        }
        for number in &self.destinations {
            switchboard_protocol::Msisdn::new(number.as_str())
                .map_err(|e| format!("--destination: {}", e.message))?;
        }
        if self.max_steps == 0 {
            return Err("--max-steps must be at least 1".to_owned());
        }
        Ok(PlatformConfig {
            sub_account: self.sub_account.clone(),
            destinations: self.destinations.clone(),
            caller,
            pace: if self.realtime {
                Pace::Realtime
            } else {
                Pace::Fixed(self.speak)
            },
            talk_time: self.talk_time,
            transfers: self.transfer_mix,
            max_steps: self.max_steps,
            v2_share: self.v2_share,
            call_status: self.call_status,
            seed,
            run_nonce,
            ..PlatformConfig::default()
        })
    }
}

impl ClientArgs {
    /// The client's settings.
    pub fn config(&self) -> Result<ClientConfig, String> {
        if self.timeout.is_zero() {
            return Err("--timeout must be longer than 0".to_owned());
        }
        if self.connections == Some(0) {
            return Err("--connections must be at least 1".to_owned());
        }
        Ok(ClientConfig {
            timeout: self.timeout,
            authorization: self.auth.clone(),
            connections: self.connections,
        })
    }
}

impl FaultArgs {
    /// The faults.
    pub fn faults(&self) -> Faults {
        Faults {
            duplicate: self.duplicate,
            reorder: self.reorder,
            delay: self.delay,
            delay_max: self.delay_max,
        }
    }
}

impl RunArgs {
    /// The load shape.
    pub fn shape(&self) -> Result<Shape, String> {
        match (self.rate, self.concurrency) {
            (Some(rate), _) if !(rate.is_finite() && rate > 0.0) => Err(format!(
                "--rate {rate} is not a rate; give calls per second above 0"
            )),
            (Some(rate), _) => Ok(Shape::Open {
                rate,
                max_in_flight: self.max_in_flight.max(1),
            }),
            (None, Some(0)) => Err("--concurrency must be at least 1".to_owned()),
            (None, concurrency) => Ok(Shape::Closed {
                concurrency: concurrency.unwrap_or(10),
            }),
        }
    }

    /// How long the run lasts: 10 seconds unless told.
    pub fn limit(&self) -> Limit {
        Limit {
            duration: self.duration.or(if self.calls.is_none() {
                Some(Duration::from_secs(10))
            } else {
                None
            }),
            calls: self.calls,
        }
    }

    /// The run's settings as the report lists them: flag name to value.
    pub fn parameters(&self, seed: u64) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        let mut put = |name: &str, value: String| p.insert(name.to_owned(), value);
        put("--target", self.targets.join(" "));
        if let Some(select) = self.select.to_possible_value()
            && self.targets.len() > 1
        {
            put("--select", select.get_name().to_owned());
        }
        match self.shape() {
            Ok(Shape::Open {
                rate,
                max_in_flight,
            }) => {
                put("--rate", format!("{rate} calls/s (open loop)"));
                put("--max-in-flight", max_in_flight.to_string());
            }
            Ok(Shape::Closed { concurrency }) => {
                put("--concurrency", format!("{concurrency} (closed loop)"));
            }
            Err(err) => {
                put("shape", err);
            }
        }
        let limit = self.limit();
        if let Some(duration) = limit.duration {
            put("--duration", format!("{duration:?}"));
        }
        if let Some(calls) = limit.calls {
            put("--calls", calls.to_string());
        }
        let platform = &self.platform;
        put("--destination", platform.destinations.join(" "));
        put("--seed", seed.to_string());
        match &platform.script {
            Some(script) => put("--script", script.clone()),
            None => put(
                "callers",
                format!(
                    "random walk: --invalid {} --silence {} --hangup {}",
                    platform.invalid, platform.silence, platform.hangup
                ),
            ),
        };
        let mix = platform.transfer_mix;
        put(
            "--transfer-mix",
            format!(
                "answered={} busy={} no-answer={}",
                mix.answered, mix.busy, mix.no_answer
            ),
        );
        put(
            "pace",
            if platform.realtime {
                "--realtime".to_owned()
            } else {
                format!("--speak {:?}", platform.speak)
            },
        );
        let f = &self.faults;
        put(
            "faults",
            format!(
                "--duplicate {} --reorder {} --delay {} (up to {:?})",
                f.duplicate, f.reorder, f.delay, f.delay_max
            ),
        );
        put("--timeout", format!("{:?}", self.client.timeout));
        put(
            "--connections",
            self.client
                .connections
                .map_or_else(|| "one per delivery".to_owned(), |n| n.to_string()),
        );
        put("--max-error-rate", self.max_error_rate.to_string());
        p
    }

    /// The targets, parsed.
    pub fn targets(&self) -> Result<(Vec<Uri>, Select), String> {
        let uris = self
            .targets
            .iter()
            .map(|t| parse_target(t).map_err(|e| format!("--target {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let select = match self.select {
            SelectArg::RoundRobin => Select::RoundRobin,
            SelectArg::Random => Select::Random,
        };
        Ok((uris, select))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("switchboard-loadgen").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_shares_and_mixes() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10min"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(
            parse_duration("10 parsecs")
                .unwrap_err()
                .contains("unknown time unit"),
            "{:?}",
            parse_duration("10 parsecs")
        );
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_share("0.25"), Ok(0.25));
        assert!(parse_share("1.5").is_err());
        let mix = parse_mix("busy=1").unwrap();
        assert_eq!((mix.answered, mix.busy, mix.no_answer), (0.0, 1.0, 0.0));
        assert!(parse_mix("ringing=1").unwrap_err().contains("ringing"));
        assert!(parse_mix("busy=0").is_err());
    }

    #[test]
    fn defaults_are_a_ten_second_closed_loop_on_the_restaurant() {
        let cli = parse(&[]);
        assert!(cli.command.is_none());
        assert_eq!(cli.run.shape(), Ok(Shape::Closed { concurrency: 10 }));
        assert_eq!(cli.run.limit().duration, Some(Duration::from_secs(10)));
        let config = cli.run.platform.config(1, 2).unwrap();
        assert_eq!(config.destinations, ["+6568888888"]);
        assert_eq!(config.pace, Pace::Fixed(Duration::ZERO));
        let (uris, _) = cli.run.targets().unwrap();
        assert_eq!(uris[0].to_string(), "http://127.0.0.1:8080/webhooks");
    }

    #[test]
    fn open_loop_with_calls_has_no_default_duration() {
        let cli = parse(&[
            "--rate",
            "50",
            "--calls",
            "100",
            "--target",
            "http://a:1",
            "--target",
            "http://b:2/x",
        ]);
        assert!(matches!(
            cli.run.shape(),
            Ok(Shape::Open { rate: 50.0, .. })
        ));
        assert_eq!(
            cli.run.limit(),
            Limit {
                duration: None,
                calls: Some(100)
            }
        );
        assert_eq!(cli.run.targets().unwrap().0.len(), 2);
    }

    #[test]
    fn bad_values_are_explained() {
        let cli = parse(&[
            "--target",
            "localhost:8080",
            "--destination",
            "nope",
            "--script",
            "1,x",
        ]);
        assert!(cli.run.targets().unwrap_err().contains("localhost:8080"));
        let err = cli.run.platform.config(0, 0).unwrap_err();
        assert!(err.contains("--script"), "{err}");
        let cli = parse(&["--destination", "nope"]);
        assert!(cli.run.platform.config(0, 0).unwrap_err().contains("nope"));
        assert!(parse(&["--rate", "0"]).run.shape().is_err());
        assert!(Cli::try_parse_from(["x", "--rate", "1", "--concurrency", "2"]).is_err());
    }

    #[test]
    fn report_and_progress_flags() {
        let cli = parse(&["--html", "r.html", "--progress-interval", "250ms"]);
        assert_eq!(
            cli.run.html.as_deref(),
            Some(std::path::Path::new("r.html"))
        );
        assert_eq!(cli.run.progress_interval, Some(Duration::from_millis(250)));
        assert!(!cli.run.quiet);
        // The older spelling still works (scripts use it).
        assert!(parse(&["--no-progress"]).run.quiet);
        assert!(parse(&["-q"]).run.quiet);
        let cli = parse(&["--compare", "a.json", "b.json"]);
        assert_eq!(cli.run.compare.unwrap().len(), 2);
        assert!(Cli::try_parse_from(["x", "--compare", "a.json"]).is_err());
        let p = parse(&["--rate", "5", "--calls", "9", "--seed", "3"])
            .run
            .parameters(3);
        assert_eq!(p["--rate"], "5 calls/s (open loop)");
        assert_eq!(p["--calls"], "9");
        assert_eq!(p["--seed"], "3");
        assert!(!p.contains_key("--select"), "{p:?}");
    }

    #[test]
    fn emulate_is_a_subcommand() {
        let cli = parse(&[
            "emulate",
            "--listen",
            "127.0.0.1:0",
            "--webhook",
            "http://h:1",
            "--script",
            "1",
        ]);
        let Some(Command::Emulate(e)) = cli.command else {
            panic!()
        };
        assert_eq!(e.webhook, "http://h:1");
        assert_eq!(e.platform.script.as_deref(), Some("1"));
    }
}
