//! What the Redis tests share: a redis-server of their own on a spare port, webhooks of the
//! restaurant flow, and a direct connection to look at what is stored.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_protocol::webhook::{
    CallAction, CallStatus, EventData, SessionStatus, SessionSummary,
};
use switchboard_runtime::redis_store::{RedisConfig, RedisStore};
use switchboard_runtime::{Answer, Runtime, RuntimeConfig, SessionStore};

/// The Redis harness is the shared test kit's (`crates/testkit`).
pub use switchboard_testkit::RedisServer;

/// The restaurant flow of the repository's flows directory.
pub fn restaurant() -> switchboard_flow::FlowSet {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../flows/restaurant.yaml"
    ));
    switchboard_runtime::catalog::load_set(&[path])
        .expect("flows/restaurant.yaml compiles")
        .0
}

/// A store on `url` with the test defaults.
pub fn store(url: &str) -> Arc<RedisStore> {
    RedisStore::new(RedisConfig::new(url)).expect("a valid URL")
}

/// A runtime ("replica") on `store`.
pub fn replica(store: Arc<dyn SessionStore>) -> Runtime {
    let config = RuntimeConfig {
        shards: 2,
        ..RuntimeConfig::default()
    };
    Runtime::start(config, restaurant(), store).expect("the runtime starts")
}

pub const NUMBER: &str = "+6568888888";

/// `CALL_RECEIVED` of a new inbound call to the restaurant.
pub fn received(session: &str, event: &str) -> CallAction {
    CallAction {
        event_id: event.into(),
        call_id: format!("{session}-leg").into(),
        session_id: session.into(),
        sub_account_id: "acme".into(),
        call_status: CallStatus::CallReceived,
        source: "+6591234567".into(),
        destination: NUMBER.into(),
        ..CallAction::default()
    }
}

/// `ACTION_COMPLETED` answering `previous` with `dtmf`.
pub fn completed(session: &str, event: &str, previous: &Answer, dtmf: Option<&str>) -> CallAction {
    CallAction {
        call_status: CallStatus::ActionCompleted,
        client_action_id: client_action_id(previous).map(Into::into),
        event_data: Some(EventData {
            dtmf: dtmf.map(Into::into),
            asr_captured: None,
        }),
        ..received(session, event)
    }
}

pub fn summary(session: &str) -> SessionSummary {
    SessionSummary {
        session_id: session.to_owned(),
        session_status: SessionStatus::Completed,
        ..SessionSummary::default()
    }
}

pub fn body(answer: &Answer) -> serde_json::Value {
    serde_json::from_slice(&answer.body).expect("answers are JSON")
}

pub fn client_action_id(answer: &Answer) -> Option<String> {
    body(answer)["clientActionId"].as_str().map(str::to_owned)
}

/// The answer's actions, as `name` or `name:text`, for assertions.
pub fn actions(answer: &Answer) -> Vec<String> {
    body(answer)["callflow"]
        .as_array()
        .expect("a callflow array")
        .iter()
        .map(|a| {
            let name = a["action"].as_str().unwrap_or_default();
            let params = &a["params"];
            let text = params["text"]
                .as_str()
                .or_else(|| params["promptMessage"].as_str())
                .or_else(|| params["destination"].as_str());
            match text {
                Some(text) => format!("{name}:{text}"),
                None => name.to_owned(),
            }
        })
        .collect()
}

/// Polls `condition` until it holds, failing after `within`.
pub async fn eventually(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP relay to a Redis port that the test can cut (a network partition between one
/// replica and Redis, while others still reach it) and restore.
pub struct Partition {
    pub port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Partition {
    pub async fn start(target: u16) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let (cut, links) = (Arc::clone(&cut), Arc::clone(&links));
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if cut.load(Ordering::Acquire) {
                        continue; // dropped: the connection closes at once
                    }
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) =
                            tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                        {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().unwrap().push(link);
                }
            }
        });
        Self {
            port,
            cut,
            links,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Closes every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::Release);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
