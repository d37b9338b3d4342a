//! `switchboard serve`: the webhook server.
//!
//! Configuration is merged in a fixed order, defaults < `--config FILE` (TOML) <
//! `SWITCHBOARD_*` variables < flags (see `switchboard_server::config`). An invalid value exits
//! 2 naming the key and where it came from. SIGTERM and SIGINT shut down gracefully; SIGHUP
//! reloads the flows.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use switchboard_server::config::{Config, ConfigError, LogFormat, Source, Values};
use switchboard_server::logs::{LogGuard, LogSink, Timestamp};
use switchboard_server::{http, server};
use tracing_subscriber::EnvFilter;

/// Arguments of `switchboard serve`. Every flag also has a `SWITCHBOARD_<KEY>` variable and a
/// `key` in the config file (`--idle-timeout` is `SWITCHBOARD_IDLE_TIMEOUT` and `idle_timeout`).
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// TOML config file (also SWITCHBOARD_CONFIG).
    #[arg(long, value_name = "FILE", env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Flow file or directory [default: the bundled examples].
    #[arg(long, value_name = "PATH")]
    flows: Option<String>,
    /// Serve GET /metrics on this address too.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Redis URL (redis://host:6379/0; redis+sentinel://sentinel:26379/MASTER_NAME for
    /// Sentinel); without it sessions live in memory.
    #[arg(long = "redis", value_name = "URL")]
    redis_url: Option<String>,
    /// Treat --redis as a Redis Cluster seed node.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    redis_cluster: Option<String>,
    /// PEM file of the CAs that sign Redis's TLS certificate (rediss:// only) [default: the
    /// system's trust store].
    #[arg(long, value_name = "FILE")]
    redis_ca_file: Option<String>,
    /// Namespace of Redis keys [default: switchboard].
    #[arg(long, value_name = "PREFIX")]
    redis_prefix: Option<String>,
    /// Store session records zlib-compressed in Redis: ~15 % less memory, more CPU per webhook.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    redis_compress: Option<String>,
    /// How session records are written to Redis: binary, or json while replicas of a version
    /// that wrote JSON still run (every form is read) [default: binary].
    #[arg(long, value_name = "FORMAT")]
    redis_record_format: Option<String>,
    /// Lifetime of stored session state after its last write [default: 2h].
    #[arg(long, value_name = "DURATION")]
    session_ttl: Option<String>,
    /// Actor shards; 0 = one per core [default: 0].
    #[arg(long, value_name = "N")]
    shards: Option<String>,
    /// Webhooks in flight per session before answering 503 [default: 16].
    #[arg(long, value_name = "N")]
    mailbox: Option<String>,
    /// Passivate a session after this long without a webhook [default: 10m].
    #[arg(long, value_name = "DURATION")]
    idle_timeout: Option<String>,
    /// Most live session actors on this node [default: 500000].
    #[arg(long, value_name = "N")]
    max_sessions: Option<String>,
    /// Largest webhook body in bytes [default: 65536].
    #[arg(long, value_name = "BYTES")]
    body_limit: Option<String>,
    /// Largest request line and headers in bytes; 431 beyond [default: 16384].
    #[arg(long, value_name = "BYTES")]
    max_header_bytes: Option<String>,
    /// Most request headers; 431 beyond [default: 100].
    #[arg(long, value_name = "N")]
    max_headers: Option<String>,
    /// Longest time a client may take to send its request headers, and longest keep-alive
    /// idle [default: 30s].
    #[arg(long, value_name = "DURATION")]
    header_read_timeout: Option<String>,
    /// Most open webhook connections on this node; 503 + Retry-After beyond [default: 10000].
    #[arg(long, value_name = "N")]
    max_connections: Option<String>,
    /// How long a webhook may wait for its session [default: 5s].
    #[arg(long, value_name = "DURATION")]
    request_timeout: Option<String>,
    /// How long in-flight webhooks may finish after SIGTERM [default: 10s].
    #[arg(long, value_name = "DURATION")]
    shutdown_grace: Option<String>,
    /// Expected Authorization header of webhooks (the 8x8 httpAuthHeader).
    #[arg(long, value_name = "VALUE")]
    webhook_auth: Option<String>,
    /// Bearer token of the /v1 admin API (unset: the admin API is disabled).
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Comma-separated CIDRs allowed to post webhooks (unset: any). `8x8` stands for 8x8's
    /// published webhook source IPs as of January 2026 (18.140.80.2, 52.220.253.234,
    /// 54.255.116.8, 52.74.232.241); check 8x8's developer documentation for changes.
    #[arg(long, value_name = "CIDRS")]
    allow_ips: Option<String>,
    /// Header a trusted proxy sets to the client address (e.g. X-Forwarded-For).
    #[arg(long, value_name = "HEADER")]
    trusted_proxy_header: Option<String>,
    /// Said to callers of a number no flow claims.
    #[arg(long, value_name = "TEXT")]
    fallback_text: Option<String>,
    /// Said when a call cannot be continued.
    #[arg(long, value_name = "TEXT")]
    apology_text: Option<String>,
    /// Voice profile of those two messages [default: en-US-BenjaminRUS].
    #[arg(long, value_name = "VOICE")]
    voice: Option<String>,
    /// Log format: text or json [default: text]. RUST_LOG sets the levels.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// Comma-separated environment variables fetch nodes may read as {{env.NAME}}.
    #[arg(long, value_name = "NAMES")]
    fetch_env: Option<String>,
    /// Largest answer body of a fetch node's backend, in bytes [default: 65536].
    #[arg(long, value_name = "BYTES")]
    fetch_max_body: Option<String>,
    /// Most fetch requests in flight to one backend host [default: 64].
    #[arg(long, value_name = "N")]
    fetch_per_host: Option<String>,
    /// A webhook's answer budget: fetches end in time to answer within it [default: 3s].
    #[arg(long, value_name = "DURATION")]
    answer_budget: Option<String>,
}

impl ServeArgs {
    fn flags(&self) -> [(&'static str, &Option<String>); 33] {
        [
            ("listen", &self.listen),
            ("flows", &self.flows),
            ("metrics_listen", &self.metrics_listen),
            ("redis_url", &self.redis_url),
            ("redis_cluster", &self.redis_cluster),
            ("redis_ca_file", &self.redis_ca_file),
            ("redis_prefix", &self.redis_prefix),
            ("redis_compress", &self.redis_compress),
            ("redis_record_format", &self.redis_record_format),
            ("session_ttl", &self.session_ttl),
            ("shards", &self.shards),
            ("mailbox", &self.mailbox),
            ("idle_timeout", &self.idle_timeout),
            ("max_sessions", &self.max_sessions),
            ("body_limit", &self.body_limit),
            ("max_header_bytes", &self.max_header_bytes),
            ("max_headers", &self.max_headers),
            ("header_read_timeout", &self.header_read_timeout),
            ("max_connections", &self.max_connections),
            ("request_timeout", &self.request_timeout),
            ("shutdown_grace", &self.shutdown_grace),
            ("webhook_auth", &self.webhook_auth),
            ("admin_token", &self.admin_token),
            ("allow_ips", &self.allow_ips),
            ("trusted_proxy_header", &self.trusted_proxy_header),
            ("fallback_text", &self.fallback_text),
            ("apology_text", &self.apology_text),
            ("voice", &self.voice),
            ("log_format", &self.log_format),
            ("fetch_env", &self.fetch_env),
            ("fetch_max_body", &self.fetch_max_body),
            ("fetch_per_host", &self.fetch_per_host),
            ("answer_budget", &self.answer_budget),
        ]
    }

    /// The merged configuration.
    fn config(&self) -> Result<Config, ConfigError> {
        let mut values = Values::new();
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                key: "config".to_owned(),
                origin: Some(Source::File(path.clone())),
                message: format!("cannot read the config file: {e}"),
            })?;
            values.add_toml(&text, path.clone())?;
        }
        values.add_env(std::env::vars());
        for (key, value) in self.flags() {
            if let Some(value) = value {
                let flag = if key == "redis_url" {
                    "--redis".to_owned()
                } else {
                    format!("--{}", key.replace('_', "-"))
                };
                values.set(key, value.clone(), Source::Flag(flag))?;
            }
        }
        Config::from_values(&values)
    }
}

/// Runs the server until SIGTERM or SIGINT.
pub(crate) fn run(args: ServeArgs) -> ExitCode {
    let config = match args.config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("switchboard: {err}");
            return ExitCode::from(2);
        }
    };
    let _logs = init_logs(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("switchboard-http")
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("switchboard: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> ExitCode {
    let app = match server::build(&config) {
        Ok(app) => app,
        Err(err) => {
            if let server::StartError::Flows { diagnostics, .. } = &err {
                for diagnostic in diagnostics {
                    eprintln!("{diagnostic}");
                }
            }
            tracing::error!("{err}");
            eprintln!("switchboard: {err}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "switchboard: cannot listen on {}: {err}; choose another address with --listen",
                config.listen
            );
            return ExitCode::from(2);
        }
    };
    let metrics = match config.metrics_listen {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let bound = listener.local_addr().map_or(addr, |a| a);
                tracing::info!("metrics on http://{bound}/metrics");
                Some(listener)
            }
            Err(err) => {
                eprintln!(
                    "switchboard: cannot listen on {addr} for metrics: {err}; choose another address with --metrics-listen"
                );
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    if let Err(err) = app.runtime.store().ping().await {
        tracing::error!(
            "{err}; /readyz answers 503 until the store is reachable (retrying in the background)"
        );
    }
    let shutdown = shutdown_signal();
    spawn_reload_on_sighup(&app);
    let addr = listener.local_addr().map_or(config.listen, |a| a);
    tracing::info!(
        "listening on http://{addr} (webhooks: POST http://{addr}/webhooks; store: {})",
        app.runtime.store().kind()
    );
    match server::serve(app, listener, metrics, config.shutdown_grace, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("the server failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr through the batching sink (`switchboard_server::logs`); colours only when
/// stderr is a terminal and `NO_COLOR` is unset (escape codes are noise in a log file, and
/// writing them cost about 1 % of the server's CPU). Keep the guard until the process ends.
fn init_logs(format: LogFormat) -> LogGuard {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (sink, guard) = LogSink::stderr();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_timer(Timestamp)
        .with_writer(sink);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

/// A future that completes on SIGTERM (Kubernetes) or SIGINT (Ctrl-C). The handlers are
/// installed when this is called, not when the future is first polled: a signal that arrives
/// after the server announced itself must start a drain, not kill the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            (term, int) => {
                let err = term
                    .err()
                    .or(int.err())
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                tracing::warn!("cannot watch SIGTERM/SIGINT ({err}); only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

fn spawn_reload_on_sighup(app: &std::sync::Arc<http::App>) {
    use tokio::signal::unix::{SignalKind, signal};
    // Installed now, before the server announces itself (see `shutdown_signal`).
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot watch SIGHUP; reload flows with POST /v1/flows/reload");
        return;
    };
    let app = std::sync::Arc::clone(app);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading flows");
            // Failures are logged by reload_flows; the previous flows keep serving.
            let _ = http::admin::reload_flows(&app).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// The `[default: X]` of a flag's help is the default itself: given explicitly, X changes
    /// nothing. So the help cannot drift from `Config::default()`, where the defaults live.
    #[test]
    fn the_defaults_in_the_help_are_the_configs_defaults() {
        let descriptive = ["flows", "redis_ca_file"];
        let mut checked = 0;
        for arg in Cli::command().get_arguments() {
            let key = arg.get_id().as_str().to_owned();
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let Some((_, rest)) = help.split_once("[default: ") else {
                continue;
            };
            let Some((value, _)) = rest.split_once(']') else {
                continue;
            };
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            if descriptive.contains(&key.as_str()) {
                continue;
            }
            let mut values = Values::new();
            values
                .set(&key, value.clone(), Source::Flag(format!("--{key}")))
                .unwrap();
            let config = Config::from_values(&values)
                .unwrap_or_else(|e| panic!("--{key}'s default {value:?} does not parse: {e}"));
            assert_eq!(
                config,
                Config::default(),
                "--{key}'s help says [default: {value}], which is not Config::default()"
            );
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} defaults found in the help");
    }
}
