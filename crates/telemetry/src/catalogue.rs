//! Every metric Switchboard exposes: name, type, labels and meaning, in one table.
//!
//! The table is the single source for the `# HELP` lines of the exposition, for the metric
//! catalogue in `docs/operations.md` (a test checks that the document names every entry), and
//! for the dashboards and alerts in `deploy/`. Names follow Prometheus conventions: base units
//! (`_seconds`), `_total` on counters, and labels whose values come from a small, fixed set
//! (flow ids and node names are bounded by the flow files; session ids and phone numbers never
//! appear).

use self::MetricKind::{Counter, Gauge, Histogram};

/// The type of a metric, as the exposition names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up (reset on restart).
    Counter,
    /// A current value.
    Gauge,
    /// Observations in buckets.
    Histogram,
}

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct MetricDoc {
    /// The metric's name.
    pub name: &'static str,
    /// Its type.
    pub kind: MetricKind,
    /// Its label names.
    pub labels: &'static [&'static str],
    /// What it counts or measures.
    pub help: &'static str,
    /// Whether another crate records it through the `metrics` facade (this crate only
    /// configures its histogram buckets and documents it).
    pub external: bool,
}

macro_rules! names {
    ($($(#[$doc:meta])* $const:ident = $name:literal;)*) => {
        $($(#[$doc])* pub const $const: &str = $name;)*
    };
}

names! {
    /// Callflows API requests for outbound calls, by result.
    OUTBOUND_REQUESTS = "switchboard_outbound_requests_total";
    /// Rows of the campaigns started.
    CAMPAIGN_ROWS = "switchboard_campaign_rows_total";
    /// Campaign call attempts started.
    CAMPAIGN_ATTEMPTS = "switchboard_campaign_attempts_total";
    /// Campaign rows finished, by outcome.
    CAMPAIGN_ROWS_DONE = "switchboard_campaign_rows_done_total";
    /// Campaigns whose dialling lease this replica holds.
    CAMPAIGN_LEASES = "switchboard_campaign_leases";
    /// Campaigns this replica continued from the store (after a restart, or another replica).
    CAMPAIGN_TAKEOVERS = "switchboard_campaign_takeovers_total";
    /// Campaign rows whose outcome did not come within the call deadline.
    CAMPAIGN_TIMEOUTS = "switchboard_campaign_timeouts_total";
    /// Time to answer one webhook, from the body read to the answer made.
    WEBHOOK_DURATION = "switchboard_webhook_duration_seconds";
    /// Time to answer any HTTP request.
    HTTP_DURATION = "switchboard_http_request_duration_seconds";
    /// HTTP responses by status code.
    HTTP_REQUESTS = "switchboard_http_requests_total";
    /// Requests refused by authentication.
    AUTH_FAILURES = "switchboard_auth_failures_total";
    /// Requests refused as malformed.
    BAD_REQUESTS = "switchboard_bad_requests_total";
    /// `CALL_STATUS` webhooks acknowledged.
    STATUS_EVENTS = "switchboard_status_events_total";
    /// Session actors alive on this replica.
    SESSIONS_LIVE = "switchboard_sessions_live";
    /// Calls that started a flow.
    SESSIONS_STARTED = "switchboard_sessions_started_total";
    /// Session summaries by final status.
    SESSIONS_ENDED = "switchboard_sessions_ended_total";
    /// Idle sessions passivated.
    SESSIONS_PASSIVATED = "switchboard_sessions_passivated_total";
    /// Sessions loaded back from the store.
    SESSIONS_REHYDRATED = "switchboard_sessions_rehydrated_total";
    /// Sessions this replica had no state for, by whether they could be resumed.
    SESSIONS_RESUMED = "switchboard_sessions_resumed_total";
    /// Callflow actions sent, by action.
    CALLFLOW_ACTIONS = "switchboard_callflow_actions_total";
    /// Nodes entered.
    NODE_VISITS = "switchboard_node_visits_total";
    /// Calls that ended while at a node.
    NODE_EXITS = "switchboard_node_exits_total";
    /// Flow steps that could not continue at a node and apologised.
    NODE_FAILURES = "switchboard_node_failures_total";
    /// Wrong keys at menus and refused entries at captures.
    MENU_INVALID = "switchboard_menu_invalid_total";
    /// Silences at menus and captures.
    MENU_NO_INPUT = "switchboard_menu_no_input_total";
    /// Good entries at captures.
    CAPTURES = "switchboard_captures_total";
    /// Retry counters that ran out.
    COUNTERS_EXHAUSTED = "switchboard_counters_exhausted_total";
    /// Transfers by result.
    TRANSFERS = "switchboard_transfers_total";
    /// Deliveries answered again without advancing a session.
    DELIVERIES_REPEATED = "switchboard_deliveries_repeated_total";
    /// Calls to numbers no flow claims.
    CALLS_UNROUTED = "switchboard_calls_unrouted_total";
    /// Webhooks refused because a session's mailbox was full.
    MAILBOX_FULL = "switchboard_mailbox_full_total";
    /// Compare-and-set conflicts on the session store.
    STORE_CONFLICTS = "switchboard_store_conflicts_total";
    /// Webhooks refused with a 503 because the session store failed, by kind of failure.
    STORE_ERRORS = "switchboard_store_errors_total";
    /// Session actors per shard.
    SHARD_ACTORS = "switchboard_shard_actors";
    /// Flow loads and reloads by result.
    FLOW_RELOADS = "switchboard_flow_reloads_total";
    /// Flows loaded.
    FLOWS_LOADED = "switchboard_flows_loaded";
    /// Constant 1, labelled with the build.
    BUILD_INFO = "switchboard_build_info";
    /// Redis command latency (recorded by the Redis store).
    REDIS_COMMAND_DURATION = "switchboard_redis_command_duration_seconds";
    /// Redis errors (recorded by the Redis store).
    REDIS_ERRORS = "switchboard_redis_errors_total";
    /// Session writes queued for the store (recorded by the Redis store).
    STORE_PENDING_WRITES = "switchboard_store_pending_writes";
    /// Session writes the store gave up on (recorded by the Redis store).
    STORE_WRITES_DROPPED = "switchboard_store_writes_dropped_total";
    /// 1 while Redis is unreachable (recorded by the Redis store).
    REDIS_UNREACHABLE = "switchboard_redis_unreachable";
    /// Durations of an outage's phases: detection, unreachable, recovery (the Redis store).
    REDIS_OUTAGE_PHASE = "switchboard_redis_outage_phase_seconds";
    /// Time of fetch nodes' HTTP requests (recorded by the runtime).
    FETCH_DURATION = "switchboard_fetch_duration_seconds";
    /// Fetch nodes' requests by outcome (recorded by the runtime).
    FETCH_REQUESTS = "switchboard_fetch_requests_total";
}

/// Buckets of every `_seconds` histogram: 100µs to 5s. Answers take well under a
/// millisecond; the top buckets catch store stalls up to the default request timeout (5s).
pub const LATENCY_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

const fn own(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDoc {
    MetricDoc {
        name,
        kind,
        labels,
        help,
        external: false,
    }
}

const fn external(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDoc {
    MetricDoc {
        external: true,
        ..own(name, kind, labels, help)
    }
}

/// The catalogue.
pub const CATALOGUE: &[MetricDoc] = &[
    own(
        WEBHOOK_DURATION,
        Histogram,
        &["event", "outcome"],
        "Time to answer a CALL_RECEIVED or ACTION_COMPLETED webhook, by how it was answered.",
    ),
    own(
        HTTP_DURATION,
        Histogram,
        &[],
        "Time to answer any HTTP request.",
    ),
    own(
        HTTP_REQUESTS,
        Counter,
        &["status"],
        "HTTP responses by status code.",
    ),
    own(
        AUTH_FAILURES,
        Counter,
        &["reason"],
        "Requests refused by authentication, by reason.",
    ),
    own(
        BAD_REQUESTS,
        Counter,
        &["reason"],
        "Requests refused as malformed, by reason.",
    ),
    own(
        STATUS_EVENTS,
        Counter,
        &[],
        "CALL_STATUS webhooks acknowledged.",
    ),
    own(
        SESSIONS_LIVE,
        Gauge,
        &[],
        "Session actors alive on this replica.",
    ),
    own(
        SESSIONS_STARTED,
        Counter,
        &["flow"],
        "Calls that started a flow.",
    ),
    own(
        SESSIONS_ENDED,
        Counter,
        &["flow", "status"],
        "Session summaries by flow (empty if unknown) and final status.",
    ),
    own(
        SESSIONS_PASSIVATED,
        Counter,
        &[],
        "Idle sessions whose actor was stopped, state kept in the store.",
    ),
    own(
        SESSIONS_REHYDRATED,
        Counter,
        &[],
        "Sessions whose state was loaded from the store by an actor that had none.",
    ),
    own(
        SESSIONS_RESUMED,
        Counter,
        &["result"],
        "Sessions this replica had no state for: resumed from the clientActionId, or unresolved (apology).",
    ),
    own(
        CALLFLOW_ACTIONS,
        Counter,
        &["action"],
        "Callflow actions sent, by action.",
    ),
    own(NODE_VISITS, Counter, &["flow", "node"], "Nodes entered."),
    own(
        NODE_EXITS,
        Counter,
        &["flow", "node"],
        "Calls that ended while at the node (drop-off).",
    ),
    own(
        NODE_FAILURES,
        Counter,
        &["flow", "node"],
        "Steps that could not continue at the node and apologised.",
    ),
    own(
        MENU_INVALID,
        Counter,
        &["flow", "node"],
        "Wrong keys at a menu, refused entries at a capture.",
    ),
    own(
        MENU_NO_INPUT,
        Counter,
        &["flow", "node"],
        "Silences at a menu or capture.",
    ),
    own(
        CAPTURES,
        Counter,
        &["flow", "node"],
        "Good entries stored by a capture.",
    ),
    own(
        COUNTERS_EXHAUSTED,
        Counter,
        &["flow", "node"],
        "Retry counters that ran out (the call went to on_fail).",
    ),
    own(
        TRANSFERS,
        Counter,
        &["flow", "result"],
        "Transfers by result: answered, busy, no_answer, failed.",
    ),
    own(
        DELIVERIES_REPEATED,
        Counter,
        &["kind"],
        "Deliveries answered again without advancing a session: duplicate eventId, or stale clientActionId.",
    ),
    own(
        CALLS_UNROUTED,
        Counter,
        &[],
        "Calls to numbers no flow claims (answered with the fallback message).",
    ),
    own(
        MAILBOX_FULL,
        Counter,
        &[],
        "Webhooks refused with 503 because the session's mailbox was full.",
    ),
    own(
        STORE_ERRORS,
        Counter,
        &["kind"],
        "Webhooks answered 503 because the session store failed, by kind (timeout, connection, busy, protocol, codec, backlog).",
    ),
    own(
        STORE_CONFLICTS,
        Counter,
        &[],
        "Compare-and-set conflicts on the session store, resolved by adopting the stored state.",
    ),
    own(
        SHARD_ACTORS,
        Gauge,
        &["shard"],
        "Session actors per shard (arbiter).",
    ),
    own(
        FLOW_RELOADS,
        Counter,
        &["result"],
        "Flow loads and reloads: ok, or error (the previous flows stay in service).",
    ),
    own(FLOWS_LOADED, Gauge, &[], "Flows in service."),
    own(
        BUILD_INFO,
        Gauge,
        &["version", "commit"],
        "Constant 1, labelled with the running build.",
    ),
    external(
        REDIS_COMMAND_DURATION,
        Histogram,
        &["command"],
        "Redis command latency.",
    ),
    external(REDIS_ERRORS, Counter, &["kind"], "Redis errors by kind."),
    external(
        STORE_PENDING_WRITES,
        Gauge,
        &[],
        "Session writes queued for the store.",
    ),
    external(
        STORE_WRITES_DROPPED,
        Counter,
        &[],
        "Session writes the store gave up on.",
    ),
    external(
        REDIS_UNREACHABLE,
        Gauge,
        &[],
        "1 while Redis is unreachable and writes are queued.",
    ),
    external(
        REDIS_OUTAGE_PHASE,
        Histogram,
        &["phase"],
        "Redis outages: time to detect, time unreachable, time to flush the queue.",
    ),
    external(
        FETCH_DURATION,
        Histogram,
        &["flow", "node"],
        "Time of fetch nodes' HTTP requests, from sending to the answer read (or the deadline).",
    ),
    external(
        FETCH_REQUESTS,
        Counter,
        &["flow", "node", "outcome"],
        "Fetch nodes' requests by outcome: ok, status_case, http_error, bad_json, missing_field, timeout, unreachable, too_large, bad_request.",
    ),
    external(
        OUTBOUND_REQUESTS,
        Counter,
        &["result"],
        "Callflows API requests for outbound calls: created, or the HTTP status (401, 404, 422, 500, ...), unreachable, timeout.",
    ),
    external(
        CAMPAIGN_ROWS,
        Counter,
        &[],
        "Rows of the campaigns started on this replica.",
    ),
    external(
        CAMPAIGN_ATTEMPTS,
        Counter,
        &[],
        "Campaign call attempts started, retries included.",
    ),
    external(
        CAMPAIGN_ROWS_DONE,
        Counter,
        &["outcome"],
        "Campaign rows finished, by outcome (COMPLETED, BUSY, NO_ANSWER, REJECTED, CANCELED, ...).",
    ),
    external(
        CAMPAIGN_LEASES,
        Gauge,
        &[],
        "Campaigns whose dialling lease this replica holds (only the holder dials).",
    ),
    external(
        CAMPAIGN_TAKEOVERS,
        Counter,
        &[],
        "Campaigns this replica continued from the store: after a restart, another replica's shutdown or lapsed lease, or a resume.",
    ),
    external(
        CAMPAIGN_TIMEOUTS,
        Counter,
        &[],
        "Campaign calls given up because no session summary came within the call deadline.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        for doc in CATALOGUE {
            assert!(doc.name.starts_with("switchboard_"), "{}", doc.name);
            assert_eq!(
                doc.kind == Counter,
                doc.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                doc.name
            );
            if doc.kind == Histogram {
                assert!(doc.name.ends_with("_seconds"), "{}", doc.name);
            }
        }
        let mut names: Vec<_> = CATALOGUE.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len(), "a name is listed twice");
    }

    /// Every `switchboard_*` name in `text`, with histogram suffixes removed.
    fn metric_names(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("switchboard_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            names.push(base.to_owned());
            rest = &tail[end..];
        }
        names
    }

    #[test]
    fn dashboards_and_alerts_use_only_catalogued_metrics() {
        let deploy = [
            (
                "alerts.yml",
                include_str!("../../../deploy/prometheus/alerts.yml"),
            ),
            (
                "alerts_test.yml",
                include_str!("../../../deploy/prometheus/alerts_test.yml"),
            ),
            (
                "switchboard.json",
                include_str!("../../../deploy/grafana/switchboard.json"),
            ),
        ];
        for (file, text) in deploy {
            let names = metric_names(text);
            assert!(names.len() > 5, "{file}: found only {names:?}");
            for name in names {
                assert!(
                    CATALOGUE.iter().any(|d| d.name == name),
                    "{file} uses {name}, which no crate records (see CATALOGUE)"
                );
            }
        }
    }

    #[test]
    fn the_operations_guide_documents_every_metric() {
        let guide = include_str!("../../../docs/operations.md");
        let missing: Vec<_> = CATALOGUE
            .iter()
            .filter(|d| !guide.contains(&format!("`{}`", d.name)))
            .map(|d| d.name)
            .collect();
        assert!(
            missing.is_empty(),
            "docs/operations.md does not document {missing:?}"
        );
    }
}
