//! Putting a server together: flows, store and runtime behind the router, the listeners, and
//! the graceful shutdown (`serve(app, listener, grace, shutdown)`: shutdown is an argument).
//!
//! On shutdown the listener stops accepting, in-flight webhooks get `grace` to finish (idle
//! keep-alive connections are closed), then the actor system is stopped and its threads
//! joined. Session state needs no final flush on the memory store and the write-through Redis
//! store: every transition was committed before it was answered.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_flow::Diagnostic;
use switchboard_runtime::{MemoryStore, Runtime, RuntimeConfig, SessionStore};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::config::Config;
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
    Store(String),
    /// The runtime could not start.
    #[error("the session runtime could not start: {0}")]
    Runtime(String),
}

/// Builds the shared state: loads the flows, opens the store, starts the runtime.
pub fn build(config: &Config) -> Result<Arc<App>, StartError> {
    let source = FlowSource::new(config.flows.clone());
    let (flows, warnings) = source.load().map_err(|diagnostics| StartError::Flows {
        origin: source.describe(),
        diagnostics,
    })?;
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(flows = flows.len(), source = %source.describe(), "flows loaded");
    let store = open_store(config)?;
    let runtime = Runtime::start(runtime_config(config), flows, store)
        .map_err(|e| StartError::Runtime(e.to_string()))?;
    Ok(Arc::new(App {
        runtime: Arc::new(runtime),
        flows: source,
        auth: WebhookAuth {
            header: config.webhook_auth.clone(),
            allow: config.allow_ips.clone(),
            proxy_header: config.trusted_proxy_header.clone(),
        },
        admin_token: config.admin_token.clone(),
        body_limit: config.body_limit,
        reloading: Mutex::new(()),
    }))
}

fn runtime_config(config: &Config) -> RuntimeConfig {
    RuntimeConfig {
        shards: config.shards,
        mailbox: config.mailbox,
        idle_timeout: config.idle_timeout,
        max_sessions: config.max_sessions,
        fallback_text: config.fallback_text.clone(),
        apology_text: config.apology_text.clone(),
        voice: config.voice.clone(),
        request_timeout: config.request_timeout,
    }
}

fn open_store(config: &Config) -> Result<Arc<dyn SessionStore>, StartError> {
    if config.redis_url.is_some() {
        return Err(StartError::Store(
            "this build has no Redis store yet; remove redis_url to use the in-memory store"
                .to_owned(),
        ));
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
    Ok(store)
}

/// Serves webhooks on `listener` until `shutdown` completes, then drains and stops.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = http::app(Arc::clone(&app));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop_rx.changed().await;
    });
    let mut server = tokio::spawn(server.into_future());
    let result = tokio::select! {
        result = &mut server => flatten(result),
        () = shutdown => {
            tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down: no new connections, draining in-flight webhooks");
            let _ = stop_tx.send(true);
            match tokio::time::timeout(grace, &mut server).await {
                Ok(result) => flatten(result),
                Err(_) => {
                    tracing::warn!("the grace period ended with webhooks still in flight; closing them");
                    server.abort();
                    Ok(())
                }
            }
        }
    };
    let runtime = Arc::clone(&app.runtime);
    let sessions = runtime.live_sessions();
    // Joining the actor threads blocks.
    let _ = tokio::task::spawn_blocking(move || runtime.shutdown()).await;
    tracing::info!(sessions, "actor system stopped; shutdown complete");
    result
}

fn flatten(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    result.map_err(std::io::Error::other)?
}
