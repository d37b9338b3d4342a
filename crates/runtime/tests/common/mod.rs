//! What the Redis tests share: a redis-server of their own on a spare port, webhooks of the
//! restaurant flow, and a direct connection to look at what is stored.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_protocol::webhook::{
    CallAction, CallStatus, EventData, SessionStatus, SessionSummary,
};
use switchboard_runtime::redis::{RedisConfig, RedisStore};
use switchboard_runtime::{Answer, Runtime, RuntimeConfig, SessionStore};

/// A redis-server started for one test, killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    started: bool,
}

impl RedisServer {
    /// A standalone server on a spare port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server with extra arguments (e.g. cluster mode), on a port whose cluster bus port
    /// (port + 10000) is free too.
    pub fn start_with(extra: &[&str]) -> Self {
        require_installed();
        let mut server = Self {
            port: spare_port(),
            child: None,
            dir: tempfile::tempdir().expect("a temporary directory for redis-server"),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            started: false,
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL: no goodbye to clients, no save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, commands go unanswered, data stays.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("the server runs")
            .id()
            .to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Starts it again on the same port, empty (nothing is persisted).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts redis-server on `self.port`. A fresh server may lose its port to another test
    /// between the probe and the bind: it then moves to another spare port (a restart cannot).
    fn spawn(&mut self) {
        let fresh = self.child.is_none() && !self.started;
        for _ in 0..5 {
            if self.try_spawn() {
                self.started = true;
                return;
            }
            assert!(
                fresh,
                "redis-server could not restart on port {}",
                self.port
            );
            self.port = spare_port();
        }
        panic!("redis-server did not start on any of 5 spare ports");
    }

    fn try_spawn(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().expect("the child's status").is_some() {
                return false;
            }
            // The server answering must be ours, not another test's on a reused port.
            if pong(self.port) && process_id(self.port) == Some(child.id()) {
                self.child = Some(child);
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A direct, synchronous connection, to look at what is stored.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("a direct connection to the test redis-server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.resume();
        }
        self.kill();
    }
}

fn require_installed() {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "redis-server is not installed: install it (apt-get install redis-server; .ci/run does \
         this) to run the Redis tests"
    );
}

/// A port free now whose cluster bus port (+10000) is free too.
fn spare_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("a local address").port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

fn process_id(port: u16) -> Option<u32> {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .ok()?
        .get_connection()
        .ok()?;
    let info: String = redis::cmd("INFO").arg("server").query(&mut con).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

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
