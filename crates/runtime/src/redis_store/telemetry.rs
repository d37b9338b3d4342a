//! The store's metric handles, made once.

use metrics::{Counter, Gauge, Histogram};

use super::link::ErrorClass;

/// A Redis operation of the store: the `command` label of
/// `switchboard_redis_command_duration_seconds`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Command {
    Commit,
    Load,
    End,
    Ping,
}

/// The handles, registered with the recorder installed when the store was made.
pub(super) struct Metrics {
    pub(super) commit: Histogram,
    pub(super) load: Histogram,
    pub(super) end: Histogram,
    pub(super) ping: Histogram,
    pub(super) errors: [Counter; ErrorClass::ALL.len()],
    pub(super) pending: Gauge,
    pub(super) dropped: Counter,
    /// 1 while Redis is unreachable.
    pub(super) unreachable: Gauge,
    /// From the first command of an outage to Redis counting as down.
    pub(super) detection: Histogram,
    /// From Redis counting as down to its first answer again.
    pub(super) outage: Histogram,
    /// From Redis answering again to every queued write settled.
    pub(super) recovery: Histogram,
}

impl Metrics {
    pub(super) fn new() -> Self {
        let duration = |command: &'static str| metrics::histogram!("switchboard_redis_command_duration_seconds", "command" => command);
        Self {
            commit: duration("commit"),
            load: duration("load"),
            end: duration("end"),
            ping: duration("ping"),
            errors: ErrorClass::ALL.map(|class| {
                metrics::counter!("switchboard_redis_errors_total", "kind" => class.label())
            }),
            pending: metrics::gauge!("switchboard_store_pending_writes"),
            dropped: metrics::counter!("switchboard_store_writes_dropped_total"),
            unreachable: metrics::gauge!("switchboard_redis_unreachable"),
            detection: metrics::histogram!("switchboard_redis_outage_phase_seconds", "phase" => "detection"),
            outage: metrics::histogram!("switchboard_redis_outage_phase_seconds", "phase" => "unreachable"),
            recovery: metrics::histogram!("switchboard_redis_outage_phase_seconds", "phase" => "recovery"),
        }
    }

    pub(super) fn duration(&self, command: Command) -> &Histogram {
        match command {
            Command::Commit => &self.commit,
            Command::Load => &self.load,
            Command::End => &self.end,
            Command::Ping => &self.ping,
        }
    }

    pub(super) fn error(&self, class: ErrorClass) -> &Counter {
        &self.errors[class as usize]
    }
}
