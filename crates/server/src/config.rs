//! The server's configuration: one typed [`Config`], merged from four sources in a fixed order,
//! defaults < config file (TOML) < `SWITCHBOARD_*` environment < command-line flags.
//!
//! Every source is reduced to the same thing, a map from key to text tagged with where it came
//! from ([`Values`]), and [`Config::from_values`] is the one parser. That keeps parsing a pure
//! function, tested without touching the process environment, and makes every error name the
//! key and its source: `listen (from SWITCHBOARD_LISTEN): "x" is not a socket address ...`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use switchboard_runtime::redis_store::RecordFormat;

/// Every key, with its environment variable and a one-line description (for errors and docs).
pub const KEYS: &[(&str, &str)] = &[
    ("listen", "address the webhook server listens on"),
    (
        "flows",
        "flow file or directory (default: the bundled examples)",
    ),
    (
        "metrics_listen",
        "separate address serving only GET /metrics",
    ),
    ("redis_url", "Redis URL; without it sessions live in memory"),
    ("redis_cluster", "treat redis_url as a Redis Cluster seed"),
    (
        "redis_ca_file",
        "PEM file of the CAs that sign Redis's TLS certificate (rediss:// only; unset: the system's)",
    ),
    ("redis_prefix", "namespace of every Redis key"),
    (
        "redis_compress",
        "store session records zlib-compressed in Redis",
    ),
    (
        "redis_record_format",
        "how session records are written to Redis: binary, or json during an upgrade from a version that wrote JSON",
    ),
    (
        "session_ttl",
        "how long stored session state lives after its last write",
    ),
    ("shards", "actor shards (arbiters); 0 = one per core"),
    ("mailbox", "webhooks in flight per session before 503"),
    (
        "idle_timeout",
        "a session with no webhook this long is passivated",
    ),
    ("max_sessions", "most live session actors on this node"),
    ("body_limit", "largest webhook body accepted, in bytes"),
    (
        "max_header_bytes",
        "largest request line and headers, in bytes (431 beyond)",
    ),
    ("max_headers", "most request headers (431 beyond)"),
    (
        "header_read_timeout",
        "longest time a client may take to send its request headers, and longest keep-alive idle",
    ),
    (
        "max_connections",
        "most open webhook connections on this node (503 + Retry-After beyond)",
    ),
    (
        "request_timeout",
        "how long a webhook may wait for its session",
    ),
    (
        "shutdown_grace",
        "how long in-flight webhooks may finish after SIGTERM",
    ),
    ("webhook_auth", "expected Authorization header of webhooks"),
    (
        "admin_token",
        "bearer token of the /v1 admin API (unset: admin API disabled)",
    ),
    (
        "allow_ips",
        "comma-separated CIDRs allowed to post webhooks, or 8x8 for 8x8's published source IPs (unset: any)",
    ),
    (
        "trusted_proxy_header",
        "header carrying the client IP set by a trusted proxy",
    ),
    (
        "fallback_text",
        "said to callers of a number no flow claims",
    ),
    ("apology_text", "said when a call cannot be continued"),
    ("voice", "voice profile of those two messages"),
    ("log_format", "text or json"),
    (
        "callflows_url",
        "base URL of the 8x8 Callflows API for outbound calls (e.g. https://voice.8x8.com)",
    ),
    (
        "callflows_ca_file",
        "PEM file of the CAs trusted for an https:// callflows_url (unset: the system's)",
    ),
    (
        "callflows_sub_account",
        "8x8 sub-account that places outbound calls",
    ),
    (
        "callflows_api_key",
        "API key of that sub-account (prefer SWITCHBOARD_CALLFLOWS_API_KEY; never logged)",
    ),
    (
        "outbound_from",
        "default caller id of outbound calls, E.164",
    ),
    (
        "clock_start",
        "for tests and rehearsals: the server's clock starts at this RFC 3339 time and runs from there (business hours, calling windows)",
    ),
    (
        "fetch_env",
        "comma-separated environment variables fetch nodes may read as {{env.NAME}}",
    ),
    (
        "fetch_max_body",
        "largest answer body of a fetch node's backend, in bytes",
    ),
    (
        "fetch_per_host",
        "most fetch requests in flight to one backend host",
    ),
    (
        "answer_budget",
        "a webhook's answer budget; fetches end in time to answer within it",
    ),
    (
        "campaign_lease",
        "time to live of a campaign's dialling lease: how soon another replica continues a dead one's campaign",
    ),
    (
        "campaign_poll",
        "how often a campaign's holder reads outcomes left in the store, and replicas look for campaigns to continue",
    ),
    (
        "campaign_call_deadline",
        "a campaign call with no session summary this long ends TIMED_OUT and frees its slot (per campaign: call_deadline)",
    ),
];

/// The server's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where webhooks are served.
    pub listen: SocketAddr,
    /// Flow file or directory; `None` serves the bundled examples.
    pub flows: Option<PathBuf>,
    /// A second listener for `/metrics` only.
    pub metrics_listen: Option<SocketAddr>,
    /// Redis URL; `None` uses the in-memory store.
    pub redis_url: Option<String>,
    /// Whether `redis_url` names a cluster.
    pub redis_cluster: bool,
    /// CA certificates (PEM) for `rediss://`; `None`: the system's trust store.
    pub redis_ca_file: Option<PathBuf>,
    /// Namespace of Redis keys.
    pub redis_prefix: String,
    /// Whether Redis records are compressed.
    pub redis_compress: bool,
    /// How Redis records are written.
    pub redis_record_format: RecordFormat,
    /// Lifetime of stored session state after its last write.
    pub session_ttl: Duration,
    /// Actor shards; 0 = one per core.
    pub shards: usize,
    /// Webhooks in flight per session.
    pub mailbox: usize,
    /// Idle time before a session actor is passivated.
    pub idle_timeout: Duration,
    /// Most live session actors.
    pub max_sessions: usize,
    /// Largest webhook body, bytes.
    pub body_limit: usize,
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
    /// Most request headers.
    pub max_headers: usize,
    /// Longest time to receive a request head; also the keep-alive idle limit.
    pub header_read_timeout: Duration,
    /// Most open webhook connections.
    pub max_connections: usize,
    /// Longest wait of a webhook for its session.
    pub request_timeout: Duration,
    /// Drain time after SIGTERM.
    pub shutdown_grace: Duration,
    /// Expected `Authorization` header of webhooks.
    pub webhook_auth: Option<String>,
    /// Bearer token of the admin API.
    pub admin_token: Option<String>,
    /// Source networks allowed to post webhooks; empty allows any. The word `8x8` in the
    /// value stands for [`PLATFORM_SOURCE_IPS`].
    pub allow_ips: Vec<IpNet>,
    /// Header a trusted proxy sets to the client's IP.
    pub trusted_proxy_header: Option<String>,
    /// Said to callers of an unclaimed number.
    pub fallback_text: String,
    /// Said when a call cannot be continued.
    pub apology_text: String,
    /// Voice of the two messages above.
    pub voice: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// The Callflows API, when outbound calls are configured (URL, sub-account and key).
    pub callflows: Option<switchboard_outbound::ApiConfig>,
    /// Default caller id of outbound calls.
    pub outbound_from: Option<String>,
    /// For tests and rehearsals: the time the server's clock reads at start; `None`, the
    /// system clock.
    pub clock_start: Option<chrono::DateTime<chrono::Utc>>,
    /// Environment variables fetch nodes may read (`{{env.NAME}}`).
    pub fetch_env: Vec<String>,
    /// Largest fetch answer body, bytes.
    pub fetch_max_body: usize,
    /// Most fetch requests in flight per backend host.
    pub fetch_per_host: usize,
    /// A webhook's answer budget, which bounds its fetches.
    pub answer_budget: Duration,
    /// A campaign's dialling lease lives this long unless renewed.
    pub campaign_lease: Duration,
    /// How often campaign state is polled from the store.
    pub campaign_poll: Duration,
    /// Default per-call deadline of campaigns.
    pub campaign_call_deadline: Duration,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        // The runtime's and the store's defaults are the server's: defined once, there.
        let runtime = switchboard_runtime::RuntimeConfig::default();
        let redis = switchboard_runtime::redis_store::RedisConfig::default();
        let http = crate::conn::HttpLimits::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            flows: None,
            metrics_listen: None,
            redis_url: None,
            redis_cluster: false,
            redis_ca_file: None,
            redis_prefix: redis.prefix,
            redis_compress: false,
            redis_record_format: RecordFormat::Binary,
            session_ttl: redis.ttl,
            shards: runtime.shards,
            mailbox: runtime.mailbox,
            idle_timeout: runtime.idle_timeout,
            max_sessions: runtime.max_sessions,
            body_limit: 64 * 1024,
            max_header_bytes: http.max_header_bytes,
            max_headers: http.max_headers,
            header_read_timeout: http.header_read_timeout,
            max_connections: http.max_connections,
            request_timeout: runtime.request_timeout,
            shutdown_grace: Duration::from_secs(10),
            webhook_auth: None,
            admin_token: None,
            allow_ips: Vec::new(),
            trusted_proxy_header: None,
            fallback_text: runtime.fallback_text,
            apology_text: runtime.apology_text,
            voice: runtime.voice,
            log_format: LogFormat::Text,
            callflows: None,
            outbound_from: None,
            clock_start: None,
            fetch_env: Vec::new(),
            fetch_max_body: 64 * 1024,
            fetch_per_host: 64,
            answer_budget: Duration::from_secs(3),
            campaign_lease: Duration::from_secs(15),
            campaign_poll: Duration::from_secs(1),
            campaign_call_deadline: switchboard_outbound::schedule::DEFAULT_CALL_DEADLINE,
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The config file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Env(var) => f.write_str(var),
            Self::Flag(flag) => f.write_str(flag),
        }
    }
}

/// A configuration error: the key, where its value came from, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config key {key}{}: {message}", origin.as_ref().map(|s| format!(" (from {s})")).unwrap_or_default())]
pub struct ConfigError {
    /// The key.
    pub key: String,
    /// Where the bad value came from.
    pub origin: Option<Source>,
    /// What is wrong, and what to do.
    pub message: String,
}

/// Raw values by key; a later [`Values::set`] of the same key overrides an earlier one.
#[derive(Debug, Clone, Default)]
pub struct Values(BTreeMap<String, (String, Source)>);

impl Values {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` (which must be one of [`KEYS`]).
    pub fn set(&mut self, key: &str, value: String, source: Source) -> Result<(), ConfigError> {
        if !KEYS.iter().any(|(k, _)| *k == key) {
            return Err(ConfigError {
                key: key.to_owned(),
                origin: Some(source),
                message: format!("unknown key; known keys are {}", known_keys()),
            });
        }
        self.0.insert(key.to_owned(), (value, source));
        Ok(())
    }

    /// Adds the keys of a TOML config file (flat: `listen = "0.0.0.0:8080"`).
    pub fn add_toml(&mut self, text: &str, path: PathBuf) -> Result<(), ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            key: "config".to_owned(),
            origin: Some(Source::File(path.clone())),
            message: format!("not valid TOML: {}", e.message()),
        })?;
        for (key, value) in table {
            let source = Source::File(path.clone());
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => {
                    let mut parts = Vec::with_capacity(items.len());
                    for item in items {
                        match item {
                            toml::Value::String(s) => parts.push(s),
                            other => parts.push(other.to_string()),
                        }
                    }
                    parts.join(",")
                }
                _ => {
                    return Err(ConfigError {
                        key,
                        origin: Some(source),
                        message: "must be a string, number, boolean or array".to_owned(),
                    });
                }
            };
            self.set(&key, text, source)?;
        }
        Ok(())
    }

    /// Adds `SWITCHBOARD_<KEY>` variables from `vars`. Other variables are ignored, including
    /// unknown `SWITCHBOARD_*` ones: Kubernetes injects `SWITCHBOARD_PORT` and friends for a
    /// Service of that name.
    pub fn add_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        for (var, value) in vars {
            let Some(key) = var.strip_prefix("SWITCHBOARD_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if KEYS.iter().any(|(k, _)| *k == key) {
                self.0.insert(key, (value, Source::Env(var)));
            }
        }
    }

    fn get(&self, key: &str) -> Option<&(String, Source)> {
        self.0.get(key)
    }
}

fn known_keys() -> String {
    KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

impl Config {
    /// Builds the configuration from merged values: each key absent from `values` keeps its
    /// default.
    pub fn from_values(values: &Values) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        let p = Parser(values);
        p.parse("listen", &mut c.listen, parse_addr)?;
        p.parse_opt("flows", &mut c.flows, |s| Ok(PathBuf::from(s)))?;
        p.parse_opt("metrics_listen", &mut c.metrics_listen, parse_addr)?;
        p.parse_opt("redis_url", &mut c.redis_url, parse_redis_url)?;
        p.parse("redis_cluster", &mut c.redis_cluster, parse_bool)?;
        p.parse_opt("redis_ca_file", &mut c.redis_ca_file, |s| {
            Ok(PathBuf::from(s))
        })?;
        p.parse("redis_prefix", &mut c.redis_prefix, parse_prefix)?;
        p.parse("redis_compress", &mut c.redis_compress, parse_bool)?;
        p.parse("redis_record_format", &mut c.redis_record_format, |s| {
            RecordFormat::parse(s).ok_or_else(|| {
                format!(
                    "{s:?} is not a record format; write binary (the default) or json (while \
                     replicas of a version that wrote JSON records still run)"
                )
            })
        })?;
        p.parse("session_ttl", &mut c.session_ttl, parse_duration)?;
        p.parse("shards", &mut c.shards, |s| parse_count(s, 0, 1024))?;
        p.parse("mailbox", &mut c.mailbox, |s| parse_count(s, 1, 1 << 16))?;
        p.parse("idle_timeout", &mut c.idle_timeout, parse_duration)?;
        p.parse("max_sessions", &mut c.max_sessions, |s| {
            parse_count(s, 1, 100_000_000)
        })?;
        p.parse("body_limit", &mut c.body_limit, |s| {
            parse_count(s, 1024, 16 << 20)
        })?;
        // hyper's floor for its read buffer is 8 KiB; a request head needs far less.
        p.parse("max_header_bytes", &mut c.max_header_bytes, |s| {
            parse_count(s, 1024, 1 << 20)
        })?;
        p.parse("max_headers", &mut c.max_headers, |s| {
            parse_count(s, 8, 1024)
        })?;
        p.parse(
            "header_read_timeout",
            &mut c.header_read_timeout,
            parse_duration,
        )?;
        p.parse("max_connections", &mut c.max_connections, |s| {
            parse_count(s, 1, 1_000_000)
        })?;
        p.parse("request_timeout", &mut c.request_timeout, parse_duration)?;
        p.parse("shutdown_grace", &mut c.shutdown_grace, parse_duration)?;
        p.parse_opt("webhook_auth", &mut c.webhook_auth, parse_secret)?;
        p.parse_opt("admin_token", &mut c.admin_token, parse_secret)?;
        p.parse("allow_ips", &mut c.allow_ips, parse_networks)?;
        p.parse_opt(
            "trusted_proxy_header",
            &mut c.trusted_proxy_header,
            parse_header,
        )?;
        p.parse("fallback_text", &mut c.fallback_text, parse_text)?;
        p.parse("apology_text", &mut c.apology_text, parse_text)?;
        p.parse("voice", &mut c.voice, parse_voice)?;
        p.parse("log_format", &mut c.log_format, parse_log_format)?;
        c.callflows = parse_callflows(&p)?;
        p.parse_opt("outbound_from", &mut c.outbound_from, |s| {
            switchboard_outbound::list::normalize(s)
        })?;
        p.parse_opt("clock_start", &mut c.clock_start, parse_time)?;
        p.parse("fetch_env", &mut c.fetch_env, parse_env_names)?;
        p.parse("fetch_max_body", &mut c.fetch_max_body, |s| {
            parse_count(s, 1024, 16 << 20)
        })?;
        p.parse("fetch_per_host", &mut c.fetch_per_host, |s| {
            parse_count(s, 1, 100_000)
        })?;
        p.parse("answer_budget", &mut c.answer_budget, parse_duration)?;
        if c.answer_budget < Duration::from_millis(100) || c.answer_budget >= c.request_timeout {
            return Err(p.error(
                "answer_budget",
                format!(
                    "must be at least 100ms and shorter than request_timeout ({:?}), got {:?}",
                    c.request_timeout, c.answer_budget
                ),
            ));
        }
        p.parse("campaign_lease", &mut c.campaign_lease, parse_duration)?;
        p.parse("campaign_poll", &mut c.campaign_poll, parse_duration)?;
        p.parse(
            "campaign_call_deadline",
            &mut c.campaign_call_deadline,
            parse_duration,
        )?;
        if c.campaign_lease < Duration::from_millis(300) {
            return Err(p.error(
                "campaign_lease",
                "must be at least 300ms (it is renewed every third of it)".to_owned(),
            ));
        }
        if c.campaign_poll.is_zero() || c.campaign_poll >= c.campaign_lease {
            return Err(p.error(
                "campaign_poll",
                format!(
                    "must be longer than zero and shorter than campaign_lease ({:?})",
                    c.campaign_lease
                ),
            ));
        }
        if c.campaign_call_deadline < Duration::from_secs(1) {
            return Err(p.error(
                "campaign_call_deadline",
                "must be at least 1s: a call needs time to ring".to_owned(),
            ));
        }
        if c.idle_timeout.is_zero()
            || c.request_timeout.is_zero()
            || c.session_ttl.is_zero()
            || c.header_read_timeout.is_zero()
        {
            let key = [
                ("idle_timeout", c.idle_timeout),
                ("request_timeout", c.request_timeout),
                ("session_ttl", c.session_ttl),
                ("header_read_timeout", c.header_read_timeout),
            ]
            .into_iter()
            .find(|(_, d)| d.is_zero())
            .map_or("idle_timeout", |(k, _)| k);
            return Err(p.error(key, "must be longer than zero".to_owned()));
        }
        Ok(c)
    }
}

/// The Callflows API settings: all three keys, or none.
fn parse_callflows(p: &Parser<'_>) -> Result<Option<switchboard_outbound::ApiConfig>, ConfigError> {
    let mut url: Option<String> = None;
    let mut sub_account: Option<String> = None;
    let mut key: Option<String> = None;
    p.parse_opt("callflows_url", &mut url, |s| {
        if s.starts_with("https://") || s.starts_with("http://") {
            Ok(s.trim_end_matches('/').to_owned())
        } else {
            Err(format!(
                "{s:?} must be an https:// URL (e.g. https://voice.8x8.com), or http:// for a \
                 local emulator"
            ))
        }
    })?;
    let mut ca_file: Option<PathBuf> = None;
    // Read now: a file that is missing or holds no certificate stops the start, naming it,
    // rather than the first outbound call.
    p.parse_opt("callflows_ca_file", &mut ca_file, |s| {
        let path = PathBuf::from(s);
        switchboard_outbound::client::load_ca_file(&path)?;
        Ok(path)
    })?;
    if let (Some(path), Some(url)) = (&ca_file, &url)
        && !url.starts_with("https://")
    {
        return Err(p.error(
            "callflows_ca_file",
            format!(
                "{} is set but callflows_url {url:?} is not https://; write https://, or unset \
                 callflows_ca_file",
                path.display()
            ),
        ));
    }
    p.parse_opt("callflows_sub_account", &mut sub_account, |s| {
        if s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Ok(s.to_owned())
        } else {
            Err(format!(
                "{s:?} is not a sub-account id (letters, digits, _ and -)"
            ))
        }
    })?;
    p.parse_opt("callflows_api_key", &mut key, parse_secret)?;
    match (url, sub_account, key) {
        (None, None, None) => Ok(None),
        (Some(url), Some(sub_account), Some(key)) => {
            let mut api = switchboard_outbound::ApiConfig::new(url, sub_account, key);
            api.ca_file = ca_file;
            Ok(Some(api))
        }
        (url, sub_account, _) => {
            let missing = if url.is_none() {
                "callflows_url"
            } else if sub_account.is_none() {
                "callflows_sub_account"
            } else {
                "callflows_api_key"
            };
            Err(ConfigError {
                key: missing.to_owned(),
                origin: None,
                message: "outbound calls need callflows_url, callflows_sub_account and \
                          callflows_api_key together; this one is missing"
                    .to_owned(),
            })
        }
    }
}

struct Parser<'a>(&'a Values);

impl Parser<'_> {
    fn parse<T>(
        &self,
        key: &str,
        slot: &mut T,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<(), ConfigError> {
        if let Some((text, _)) = self.0.get(key) {
            *slot = f(text.trim()).map_err(|message| self.error(key, message))?;
        }
        Ok(())
    }

    fn parse_opt<T>(
        &self,
        key: &str,
        slot: &mut Option<T>,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<(), ConfigError> {
        if let Some((text, _)) = self.0.get(key) {
            let text = text.trim();
            *slot = if text.is_empty() {
                None
            } else {
                Some(f(text).map_err(|message| self.error(key, message))?)
            };
        }
        Ok(())
    }

    fn error(&self, key: &str, message: String) -> ConfigError {
        ConfigError {
            key: key.to_owned(),
            origin: self.0.get(key).map(|(_, s)| s.clone()),
            message,
        }
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not a socket address; write an IP and a port, like 127.0.0.1:8080 or [::]:8080")
    })
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean; write true or false")),
    }
}

fn parse_count(s: &str, min: usize, max: usize) -> Result<usize, String> {
    let n: usize = s
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be between {min} and {max}, got {n}"))
    }
}

/// `500ms`, `10s`, `10m`, `2h`, and whatever else `humantime` reads (`1h 30m`, `2days`); a
/// space between the number and its unit is allowed (`10 s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    humantime::parse_duration(text)
        .or_else(|first| {
            let joined: String = text.split_whitespace().collect();
            humantime::parse_duration(&joined).map_err(|_| first)
        })
        .map_err(|e| {
            format!(
                "{s:?} is not a duration ({e}); write a number and a unit: 500ms, 10s, 10m or 2h"
            )
        })
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            format!("{s:?} is not an RFC 3339 time ({e}); write e.g. 2026-01-05T09:30:00+08:00")
        })
}

fn parse_redis_url(s: &str) -> Result<String, String> {
    let ok = ["redis://", "rediss://", "redis+unix://", "unix://"]
        .iter()
        .any(|scheme| s.starts_with(scheme));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a Redis URL; write redis://HOST:PORT[/DB] (rediss:// for TLS)"
        ))
    }
}

fn parse_prefix(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}')
    {
        Ok(s.to_owned())
    } else {
        Err(
            "must be 1 to 64 printable ASCII characters without braces (braces are hash tags)"
                .to_owned(),
        )
    }
}

fn parse_secret(s: &str) -> Result<String, String> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Ok(s.to_owned())
    } else {
        Err("must be printable ASCII (it is compared with an HTTP header)".to_owned())
    }
}

/// The source IPs 8x8 publishes for its webhooks, as of January 2026: what `allow_ips = 8x8`
/// expands to. 8x8 may change them; its developer documentation has the current list.
pub const PLATFORM_SOURCE_IPS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(18, 140, 80, 2),
    Ipv4Addr::new(52, 220, 253, 234),
    Ipv4Addr::new(54, 255, 116, 8),
    Ipv4Addr::new(52, 74, 232, 241),
];

fn parse_networks(s: &str) -> Result<Vec<IpNet>, String> {
    let mut networks = Vec::new();
    for part in s.split(',').map(str::trim).filter(|part| !part.is_empty()) {
        if part.eq_ignore_ascii_case("8x8") {
            networks.extend(PLATFORM_SOURCE_IPS.map(|ip| IpNet::from(IpAddr::V4(ip))));
            continue;
        }
        let network = part
            .parse::<IpNet>()
            .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                format!(
                    "{part:?} is not an IP network; write CIDRs like 10.0.0.0/8, 192.0.2.7, or 8x8 for 8x8's webhook source IPs"
                )
            })?;
        networks.push(network);
    }
    Ok(networks)
}

fn parse_env_names(s: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !switchboard_flow::template::is_env_name(name) {
            return Err(format!(
                "{name:?} is not an environment variable name; use capitals, digits and '_', like BANK_API_TOKEN"
            ));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

fn parse_header(s: &str) -> Result<String, String> {
    axum::http::HeaderName::from_bytes(s.as_bytes())
        .map(|h| h.as_str().to_owned())
        .map_err(|_| format!("{s:?} is not an HTTP header name, like X-Forwarded-For"))
}

fn parse_text(s: &str) -> Result<String, String> {
    switchboard_protocol::Text::sanitize(s)
        .map(|_| s.to_owned())
        .ok_or_else(|| "must be speakable text of at most 3000 characters".to_owned())
}

fn parse_voice(s: &str) -> Result<String, String> {
    switchboard_protocol::VoiceProfile::new(s.to_owned())
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("{s:?} is not a log format; write text or json")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_serve_locally_on_the_memory_store() {
        let c = Config::from_values(&Values::new()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.body_limit, 65536);
        assert!(c.redis_url.is_none() && c.flows.is_none() && c.webhook_auth.is_none());
    }

    #[test]
    fn later_sources_override_earlier_ones() {
        let mut v = Values::new();
        v.add_toml(
            "listen = \"0.0.0.0:9000\"\nmailbox = 8\nallow_ips = [\"10.0.0.0/8\", \"192.0.2.7\"]\n",
            "sb.toml".into(),
        )
        .unwrap();
        v.add_env(env(&[
            ("SWITCHBOARD_LISTEN", "0.0.0.0:9100"),
            ("SWITCHBOARD_PORT", "tcp://10.0.0.1:80"),
            ("PATH", "/bin"),
        ]));
        v.set("mailbox", "4".into(), Source::Flag("--mailbox".into()))
            .unwrap();
        let c = Config::from_values(&v).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9100");
        assert_eq!(c.mailbox, 4);
        assert_eq!(c.allow_ips.len(), 2);
        assert_eq!(c.allow_ips[1].to_string(), "192.0.2.7/32");
    }

    #[test]
    fn errors_name_the_key_and_its_source() {
        let mut v = Values::new();
        v.add_env(env(&[("SWITCHBOARD_LISTEN", "localhost")]));
        let err = Config::from_values(&v).unwrap_err();
        assert_eq!(err.key, "listen");
        assert!(
            err.to_string().starts_with(
                "config key listen (from SWITCHBOARD_LISTEN): \"localhost\" is not a socket address"
            ),
            "{err}"
        );

        let mut v = Values::new();
        let err = v.add_toml("listn = \"x\"", "sb.toml".into()).unwrap_err();
        assert_eq!(err.key, "listn");
        assert!(err.to_string().contains("unknown key"), "{err}");

        for (key, value, needle) in [
            ("idle_timeout", "10", "not a duration"),
            ("idle_timeout", "0s", "longer than zero"),
            ("mailbox", "0", "between 1 and"),
            ("max_header_bytes", "100", "between 1024 and"),
            ("max_headers", "2000", "between 8 and"),
            ("max_connections", "0", "between 1 and"),
            ("header_read_timeout", "0s", "longer than zero"),
            ("redis_url", "localhost:6379", "not a Redis URL"),
            ("allow_ips", "10.0.0.0/33", "not an IP network"),
            ("log_format", "xml", "not a log format"),
            ("voice", "", "voice"),
            ("redis_prefix", "a{b}", "braces"),
            ("redis_cluster", "maybe", "not a boolean"),
        ] {
            let mut v = Values::new();
            v.set(key, value.into(), Source::Flag(format!("--{key}")))
                .unwrap();
            let err = Config::from_values(&v).unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.to_string().contains(needle), "{key}={value}: {err}");
        }
    }

    #[test]
    fn allow_ips_8x8_is_the_platforms_published_ips_and_combines_with_cidrs() {
        let ips = |value: &str| -> Vec<String> {
            let mut v = Values::new();
            v.set(
                "allow_ips",
                value.into(),
                Source::Flag("--allow-ips".into()),
            )
            .unwrap();
            Config::from_values(&v)
                .unwrap()
                .allow_ips
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        let platform = [
            "18.140.80.2/32",
            "52.220.253.234/32",
            "54.255.116.8/32",
            "52.74.232.241/32",
        ];
        assert_eq!(ips("8x8"), platform);
        assert_eq!(ips(" 8X8 "), platform);
        let mut combined = vec!["10.0.0.0/8"];
        combined.extend(platform);
        combined.push("192.0.2.7/32");
        assert_eq!(ips("10.0.0.0/8, 8x8,192.0.2.7"), combined);

        // The same in the config file and the environment.
        let mut v = Values::new();
        v.add_toml("allow_ips = [\"8x8\", \"10.0.0.0/8\"]\n", "sb.toml".into())
            .unwrap();
        assert_eq!(Config::from_values(&v).unwrap().allow_ips.len(), 5);
        let mut v = Values::new();
        v.add_env(env(&[("SWITCHBOARD_ALLOW_IPS", "8x8")]));
        assert_eq!(Config::from_values(&v).unwrap().allow_ips.len(), 4);

        let mut v = Values::new();
        v.set(
            "allow_ips",
            "8x9".into(),
            Source::Flag("--allow-ips".into()),
        )
        .unwrap();
        let err = Config::from_values(&v).unwrap_err();
        assert!(
            err.to_string()
                .contains("or 8x8 for 8x8's webhook source IPs"),
            "{err}"
        );
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("10min"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("10 s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10").is_err(), "a unit is required");
        let err = parse_duration("10 parsecs").unwrap_err();
        assert!(err.contains("write a number and a unit"), "{err}");
    }

    #[test]
    fn an_empty_value_unsets_an_optional_key() {
        let mut v = Values::new();
        v.add_toml("webhook_auth = \"Basic abc\"", "sb.toml".into())
            .unwrap();
        v.add_env(env(&[("SWITCHBOARD_WEBHOOK_AUTH", "")]));
        assert_eq!(Config::from_values(&v).unwrap().webhook_auth, None);
    }

    #[test]
    fn the_callflows_ca_file_is_read_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let config = |ca: &std::path::Path| {
            let mut v = Values::new();
            v.add_env(env(&[
                ("SWITCHBOARD_CALLFLOWS_URL", "https://voice.example.com"),
                ("SWITCHBOARD_CALLFLOWS_SUB_ACCOUNT", "acme"),
                ("SWITCHBOARD_CALLFLOWS_API_KEY", "k3y"),
                ("SWITCHBOARD_CALLFLOWS_CA_FILE", ca.to_str().unwrap()),
            ]));
            Config::from_values(&v)
        };

        // Missing: the key, where it came from, the file and why.
        let missing = dir.path().join("missing.pem");
        let err = config(&missing).unwrap_err();
        assert_eq!(err.key, "callflows_ca_file");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "config key callflows_ca_file (from SWITCHBOARD_CALLFLOWS_CA_FILE): CA file {}: \
                 cannot read it: ",
                missing.display()
            )),
            "{text}"
        );

        // Read, but no certificate in it (a key, say, given by mistake).
        let empty = dir.path().join("not-a-ca.pem");
        std::fs::write(
            &empty,
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = config(&empty).unwrap_err();
        assert_eq!(err.key, "callflows_ca_file");
        assert!(
            err.to_string().contains(&format!(
                "CA file {}: holds no PEM certificate",
                empty.display()
            )),
            "{err}"
        );

        // A CA certificate: accepted, and handed to the API client.
        let ca = switchboard_tests::make_certificates(dir.path()).ca;
        let api = config(&ca).unwrap().callflows.unwrap();
        assert_eq!(api.ca_file.as_deref(), Some(ca.as_path()));
        assert_eq!(api.base_url, "https://voice.example.com");
    }
}
