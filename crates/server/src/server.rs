//! Putting a server together: flows, store and runtime behind the router, the listeners, and
//! the graceful shutdown (`serve(app, listener, grace, shutdown)`: shutdown is an argument).
//!
//! On shutdown the listener stops accepting, in-flight webhooks get `grace` to finish (idle
//! keep-alive connections are closed), then the actor system is stopped and its threads
//! joined. Every transition is committed before it is answered; only writes the Redis store
//! queued while Redis was unreachable are still pending, and they are flushed before exit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchboard_flow::Diagnostic;
use switchboard_runtime::campaign::{CampaignStore, MemoryCampaigns};
use switchboard_runtime::redis_store::{RedisConfig, RedisStore};
use switchboard_runtime::{MemoryStore, Runtime, RuntimeConfig, SessionStore};
use switchboard_telemetry::{BuildInfo, Telemetry};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::accept;
use crate::config::Config;
use crate::conn::{self, HttpLimits};
use crate::flows::FlowSource;
use crate::http::{self, App, auth::WebhookAuth};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The flows do not compile.
    #[error("the flows in {origin} do not compile ({} problems); fix them and start again (`switchboard flow check` shows the same list)", .diagnostics.iter().filter(|d| d.severity == switchboard_flow::Severity::Error).count())]
    Flows {
        /// Where they were read from.
        origin: String,
        /// Every problem.
        diagnostics: Vec<Diagnostic>,
    },
    /// The store could not be set up.
    #[error("the session store could not be set up: {0}")]
    Store(#[from] switchboard_runtime::redis_store::OpenError),
    /// The runtime could not start.
    #[error("the session runtime could not start: {0}")]
    Runtime(#[from] switchboard_runtime::StartError),
    /// Metrics could not be set up.
    #[error("metrics could not be set up: {0}")]
    Telemetry(String),
    /// The Callflows API client could not be built.
    #[error("{0}")]
    Outbound(String),
    /// An environment variable the configuration names is not set.
    #[error("{0}")]
    Env(String),
}

/// The running build: the crate version and the commit it was built from.
pub fn build_info() -> BuildInfo {
    BuildInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        commit: option_env!("SWITCHBOARD_GIT_COMMIT")
            .unwrap_or("unknown")
            .to_owned(),
    }
}

/// Builds the shared state: installs metrics, loads the flows, opens the store, starts the
/// runtime. Must run inside a tokio runtime (the Redis store spawns its connection tasks).
pub fn build(config: &Config) -> Result<Arc<App>, StartError> {
    let clock: Arc<dyn crate::campaign::Clock> = match config.clock_start {
        Some(start) => Arc::new(switchboard_runtime::clock::ShiftedClock::starting_at(start)),
        None => Arc::new(crate::campaign::SystemClock),
    };
    build_with_clock(config, clock)
}

/// [`build`] with the flows and the campaigns on `clock` (a test moves it across business
/// hours and calling windows).
pub fn build_with_clock(
    config: &Config,
    clock: Arc<dyn crate::campaign::Clock>,
) -> Result<Arc<App>, StartError> {
    // First: the Redis store takes its metric handles when it is built.
    let telemetry =
        Telemetry::install(build_info()).map_err(|e| StartError::Telemetry(e.to_string()))?;
    telemetry.register_refusals(
        crate::http::webhook::AUTH_FAILURE_REASONS,
        crate::http::webhook::BAD_REQUEST_REASONS,
    );
    register_outbound_series();
    let source = FlowSource::new(config.flows.clone()).with_options(switchboard_flow::Options {
        fetch_env: config.fetch_env.clone(),
    });
    let (flows, warnings) = source.load().map_err(|diagnostics| StartError::Flows {
        origin: source.describe(),
        diagnostics,
    })?;
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(flows = flows.len(), source = %source.describe(), "flows loaded");
    telemetry.on_flows(&flows);
    let (store, campaign_store) = open_store(config)?;
    let runtime = Arc::new(Runtime::start(
        runtime_config(config, Arc::clone(&clock))?,
        flows,
        store,
    )?);
    let dialer = Arc::new(dialer(config)?);
    let campaigns = Arc::new(crate::campaign::Campaigns::new(
        clock,
        campaign_store,
        crate::campaign::Settings {
            lease: config.campaign_lease,
            poll: config.campaign_poll,
            call_deadline: config.campaign_call_deadline,
        },
        Arc::clone(&runtime),
        Arc::clone(&dialer),
    ));
    if dialer.is_configured() {
        // Campaigns another replica (or this one, before a restart) left are continued here.
        tokio::spawn(Arc::clone(&campaigns).watch());
    }
    Ok(Arc::new(App {
        runtime,
        flows: source,
        auth: WebhookAuth {
            header: config.webhook_auth.clone(),
            allow: config.allow_ips.clone(),
            proxy_header: config.trusted_proxy_header.clone(),
        },
        admin_token: config.admin_token.clone(),
        body_limit: config.body_limit,
        limits: HttpLimits {
            max_header_bytes: config.max_header_bytes,
            max_headers: config.max_headers,
            header_read_timeout: config.header_read_timeout,
            max_connections: config.max_connections,
        },
        reloading: Mutex::new(()),
        telemetry,
        dialer,
        campaigns,
    }))
}

/// The outbound dialer: configured when the Callflows API's URL, sub-account and key are.
fn dialer(config: &Config) -> Result<crate::outbound::Dialer, StartError> {
    let client = match &config.callflows {
        Some(api) => Some(
            switchboard_outbound::CallflowsClient::new(api.clone())
                .map_err(|e| StartError::Outbound(e.to_string()))?,
        ),
        None => None,
    };
    Ok(crate::outbound::Dialer::new(
        client,
        config.outbound_from.clone(),
    ))
}

/// Registers the outbound and campaign counters at zero for their usual label values, so they
/// exist before the first call is placed (a rate over them is 0, not "no data"). Rarer values
/// (an HTTP status of the API) appear when first counted.
fn register_outbound_series() {
    use switchboard_telemetry::catalogue;
    for result in ["created", "unreachable", "timeout"] {
        metrics::counter!(catalogue::OUTBOUND_REQUESTS, "result" => result).increment(0);
    }
    metrics::counter!(catalogue::CAMPAIGN_ROWS).increment(0);
    metrics::gauge!(catalogue::CAMPAIGN_LEASES).set(0.0);
    metrics::counter!(catalogue::CAMPAIGN_TAKEOVERS).increment(0);
    metrics::counter!(catalogue::CAMPAIGN_TIMEOUTS).increment(0);
    // Fetch series are labelled by flow and node when a fetch runs; until then one unlabelled
    // zero series of each says "no look-ups" instead of "no data".
    metrics::counter!(catalogue::FETCH_REQUESTS).increment(0);
    let _registered = metrics::histogram!(catalogue::FETCH_DURATION);
    metrics::counter!(catalogue::CAMPAIGN_ATTEMPTS).increment(0);
    for outcome in [
        "COMPLETED",
        "BUSY",
        "NO_ANSWER",
        "FAILED",
        "CANCELED",
        "REJECTED",
        "TRANSIENT",
    ] {
        metrics::counter!(catalogue::CAMPAIGN_ROWS_DONE, "outcome" => outcome).increment(0);
    }
}

fn runtime_config(
    config: &Config,
    clock: Arc<dyn crate::campaign::Clock>,
) -> Result<RuntimeConfig, StartError> {
    // The allow-listed values, read once: a missing one is a start-up error, not a failed call.
    let mut env = std::collections::BTreeMap::new();
    for name in &config.fetch_env {
        match std::env::var(name) {
            Ok(value) => {
                env.insert(name.clone(), value);
            }
            Err(_) => {
                return Err(StartError::Env(format!(
                    "fetch_env allow-lists {name}, but the environment has no {name}; set it or remove it from fetch_env"
                )));
            }
        }
    }
    Ok(RuntimeConfig {
        shards: config.shards,
        mailbox: config.mailbox,
        idle_timeout: config.idle_timeout,
        max_sessions: config.max_sessions,
        fallback_text: config.fallback_text.clone(),
        apology_text: config.apology_text.clone(),
        voice: config.voice.clone(),
        request_timeout: config.request_timeout,
        clock,
        fetch: switchboard_runtime::FetchConfig {
            max_body: config.fetch_max_body,
            per_host: config.fetch_per_host,
            answer_budget: config.answer_budget,
            env,
        },
    })
}

/// The session store and the campaign store of one process.
type Stores = (Arc<dyn SessionStore>, Arc<dyn CampaignStore>);

/// The session store and the campaign store: both Redis, or both this process's memory.
fn open_store(config: &Config) -> Result<Stores, StartError> {
    if let Some(url) = &config.redis_url {
        let store = RedisStore::new(RedisConfig {
            url: url.clone(),
            cluster: config.redis_cluster,
            prefix: config.redis_prefix.clone(),
            ttl: config.session_ttl,
            compress: config.redis_compress,
            format: config.redis_record_format,
            ca_file: config.redis_ca_file.clone(),
            ..RedisConfig::default()
        })?;
        return Ok((store.clone(), store));
    }
    let store = MemoryStore::new(config.session_ttl);
    let sweeper = Arc::downgrade(&store);
    // Expired records of sessions that never got a summary are dropped once a minute.
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            let Some(store) = sweeper.upgrade() else {
                break;
            };
            let dropped = store.sweep();
            if dropped > 0 {
                tracing::debug!(dropped, "expired session records dropped");
            }
        }
    });
    Ok((store, Arc::new(MemoryCampaigns::new())))
}

/// Serves webhooks on `listener` and `/metrics` on `metrics`, if given, until `shutdown`
/// completes; then drains, flushes queued store writes and stops the actors.
///
/// The router runs on the shards' threads: one task accepts and hands each connection to the
/// shard with the fewest open connections (`accept.rs`), so a webhook is read, applied by its
/// session's actor and answered on one thread.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics_task = metrics.map(|listener| {
        let router = http::metrics_app(Arc::clone(&app));
        tokio::spawn(async move { axum::serve(listener, router).await })
    });
    let router = http::app(Arc::clone(&app));
    let limits = app.limits;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shards = app.runtime.shard_count();
    let (acceptor, listeners) = accept::shards(shards);
    let mut listeners: Vec<Option<accept::ShardListener>> =
        listeners.into_iter().map(Some).collect();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<()>>();
    let spawned = app.runtime.spawn_on_shards(|shard| {
        let listener = listeners[shard].take();
        let router = router.clone();
        let stop = stop_rx.clone();
        let done = done_tx.clone();
        async move {
            if let Some(listener) = listener {
                conn::serve_shard(listener, router, limits, stop).await;
                let _ = done.send(Ok(()));
            }
        }
    });
    if !spawned {
        return Err(std::io::Error::other(
            "a shard of the actor system has stopped",
        ));
    }
    drop(done_tx);
    let accepting =
        tokio::spawn(acceptor.accept(listener, limits.max_connections, stop_rx.clone()));
    let mut serving = shards;
    let mut result = Ok(());
    tokio::select! {
        // A shard's server failed on its own: stop the others and report it.
        Some(failed) = done_rx.recv() => {
            serving -= 1;
            result = failed;
            let _ = stop_tx.send(true);
        }
        () = shutdown => {
            tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down: no new connections, draining in-flight webhooks");
            let _ = stop_tx.send(true);
        }
    }
    let _ = accepting.await;
    let drained = tokio::time::timeout(grace, async {
        while serving > 0 {
            match done_rx.recv().await {
                Some(done) => {
                    serving -= 1;
                    if result.is_ok() {
                        result = done;
                    }
                }
                None => break,
            }
        }
    })
    .await;
    if drained.is_err() {
        // Stopping the actor system below closes what is left.
        tracing::warn!("the grace period ended with webhooks still in flight; closing them");
    }
    if let Some(task) = metrics_task {
        task.abort();
    }
    // Another replica continues the campaigns dialled here without waiting for the leases to
    // lapse.
    app.campaigns.release_all().await;
    let unflushed = app.runtime.store().flush().await;
    if unflushed > 0 {
        tracing::error!(
            unflushed,
            "session writes could not be made durable before exit; those calls lose their progress"
        );
    }
    let runtime = Arc::clone(&app.runtime);
    let sessions = runtime.live_sessions();
    // Joining the actor threads blocks.
    let _ = tokio::task::spawn_blocking(move || runtime.shutdown()).await;
    tracing::info!(sessions, "actor system stopped; shutdown complete");
    result
}
