//! A private redis-server for one test, and a connection to read what it holds.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

/// A redis-server of one test, on a port of its own, killed when dropped.
///
/// Never the machine's shared instance: each test starts its own, so tests can kill, restart
/// and inspect it without disturbing one another. Nothing is persisted (`--save ""`), so a
/// [`RedisServer::restart`] comes back empty, as a Redis that lost its data does.
///
/// The same process serves as a replica ([`RedisServer::start_replica_of`]) or a sentinel
/// ([`RedisServer::start_sentinel`]) for the tests of a Sentinel failover.
#[derive(Debug)]
pub struct RedisServer {
    /// Its port (also [`RedisServer::port`]).
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    /// A configuration file, given first (a sentinel's: `redis-server FILE --sentinel`).
    config_file: Option<std::path::PathBuf>,
    started: bool,
}

impl RedisServer {
    /// Starts redis-server on a spare port and waits until it answers.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts redis-server with extra arguments (cluster mode, TLS, ...), on a port whose
    /// cluster bus port (port + 10000) is free too.
    pub fn start_with(extra: &[&str]) -> Self {
        let mut server = Self::prepare(extra);
        server.spawn();
        server
    }

    /// Starts a replica of `master` (`--replicaof 127.0.0.1 PORT`), with extra arguments; it
    /// answers at once, and is in sync once `INFO replication` says `master_link_status:up`.
    pub fn start_replica_of(master: &RedisServer, extra: &[&str]) -> Self {
        let port = master.port().to_string();
        let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
        args.extend_from_slice(extra);
        Self::start_with(&args)
    }

    /// Starts a sentinel (`redis-server sentinel.conf --sentinel`) whose configuration file,
    /// written into its private directory, holds `config` (`sentinel monitor ...` and the
    /// like; the sentinel rewrites the file as it learns, as sentinels do). Its port, bind
    /// address and directory are given on the command line, as for any [`RedisServer`].
    pub fn start_sentinel(config: &str) -> Self {
        let mut server = Self::prepare(&["--sentinel"]);
        let file = server.dir.path().join("sentinel.conf");
        std::fs::write(&file, config).expect("the sentinel's configuration file is written");
        server.config_file = Some(file);
        server.spawn();
        server
    }

    fn prepare(extra: &[&str]) -> Self {
        require_installed();
        Self {
            port: spare_port(),
            child: None,
            dir: tempfile::tempdir().expect("a temporary directory for redis-server"),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            config_file: None,
            started: false,
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its working directory (private to this server).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills it (SIGKILL: no goodbye to clients, nothing saved).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections stay open, commands go unanswered, data stays.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws it after [`RedisServer::pause`] (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("redis-server runs")
            .id()
            .to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts redis-server on `self.port`. A fresh server may lose its port to another test
    /// between the probe and the bind: it then moves to another spare port (a restart cannot).
    fn spawn(&mut self) {
        let fresh = !self.started;
        for _ in 0..5 {
            if self.try_spawn() {
                self.started = true;
                return;
            }
            assert!(
                fresh,
                "redis-server could not start again on port {}",
                self.port
            );
            self.port = spare_port();
        }
        panic!("redis-server did not start on any of 5 spare ports");
    }

    fn try_spawn(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(self.config_file.iter())
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().expect("the child's status").is_some() {
                return false; // the port was taken
            }
            // The server answering must be ours, not another test's on the same port. No
            // panic while the child runs: it would be left behind.
            if process_id(self.port) == Some(child.id()) {
                self.child = Some(child);
                return true;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "redis-server on port {} did not answer within 10 s",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A connection to it (panics if it does not answer).
    pub fn connect(&self) -> RedisConnection {
        RedisConnection::open(self.port)
            .unwrap_or_else(|e| panic!("redis-server on port {} refused: {e}", self.port))
    }

    /// The `redis` crate's own connection to it, for typed queries.
    pub fn connection(&self) -> redis::Connection {
        self.connect().inner
    }

    /// Runs one command on a new connection.
    pub fn command(&self, args: &[&str]) -> Resp {
        self.connect().command(args)
    }

    /// `INFO commandstats` as command name (lower case) to calls.
    pub fn command_calls(&self) -> BTreeMap<String, u64> {
        let Resp::Bulk(Some(info)) = self.command(&["INFO", "commandstats"]) else {
            panic!("INFO commandstats did not answer a bulk string");
        };
        // cmdstat_evalsha:calls=60,usec=...,usec_per_call=...,rejected_calls=0,failed_calls=0
        String::from_utf8_lossy(&info)
            .lines()
            .filter_map(|line| {
                let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
                Some((name.to_owned(), calls.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A frozen server would not die of SIGKILL before it is thawed on some systems.
            self.resume();
        }
        self.kill();
    }
}

fn require_installed() {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "redis-server is not installed or not on PATH: install it (apt-get install \
         redis-server; .ci/run does this) to run the tests that use Redis; they start their \
         own server on a spare port"
    );
}

/// A port that was free a moment ago, below Linux's ephemeral range (32768 and up), whose
/// cluster bus port (+10000) is free too. Below the ephemeral range because a port the kernel
/// hands to `bind(0)` and `connect` elsewhere could be taken while a restarted redis-server is
/// away, and its clients would then talk to a stranger.
pub fn spare_port() -> u16 {
    for _ in 0..200 {
        let port = rand::rng().random_range(20_000..32_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000 (with its +10000 bus port) in 200 tries");
}

fn process_id(port: u16) -> Option<u32> {
    let mut con = RedisConnection::open(port).ok()?;
    let Ok(Resp::Bulk(Some(info))) = con.try_command(&["INFO", "server"]) else {
        return None;
    };
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

/// A reply of Redis, as a test reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    /// `+OK`.
    Simple(String),
    /// `-ERR ...`.
    Error(String),
    /// `:1`.
    Integer(i64),
    /// `$3 abc` (`None`: the null bulk string).
    Bulk(Option<Vec<u8>>),
    /// `*2 ...` (`None`: the null array).
    Array(Option<Vec<Resp>>),
}

impl From<redis::Value> for Resp {
    fn from(value: redis::Value) -> Self {
        use redis::Value;
        match value {
            Value::Nil => Self::Bulk(None),
            Value::Int(n) => Self::Integer(n),
            Value::BulkString(data) => Self::Bulk(Some(data)),
            Value::Array(items) | Value::Set(items) => {
                Self::Array(Some(items.into_iter().map(Self::from).collect()))
            }
            Value::SimpleString(text) => Self::Simple(text),
            Value::Okay => Self::Simple("OK".to_owned()),
            Value::ServerError(err) => Self::Error(format!(
                "{} {}",
                err.code(),
                err.details().unwrap_or_default()
            )),
            other => Self::Bulk(Some(format!("{other:?}").into_bytes())),
        }
    }
}

/// A synchronous connection to a test's Redis (the `redis` crate's), answering [`Resp`].
pub struct RedisConnection {
    port: u16,
    inner: redis::Connection,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// Connects to `127.0.0.1:port`.
    pub fn open(port: u16) -> redis::RedisResult<Self> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
        let inner = client.get_connection_with_timeout(Duration::from_secs(2))?;
        inner.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self { port, inner })
    }

    /// Sends one command and reads its reply (panics on a broken connection).
    pub fn command(&mut self, args: &[&str]) -> Resp {
        self.try_command(args)
            .unwrap_or_else(|e| panic!("{args:?} on the Redis of port {} failed: {e}", self.port))
    }

    /// Sends one command and reads its reply; an error reply of Redis is [`Resp::Error`], a
    /// broken connection an `Err`.
    pub fn try_command(&mut self, args: &[&str]) -> redis::RedisResult<Resp> {
        let mut cmd = redis::Cmd::new();
        for arg in args {
            cmd.arg(*arg);
        }
        match cmd.query::<redis::Value>(&mut self.inner) {
            Ok(value) => Ok(value.into()),
            Err(err) if err.kind() == redis::ErrorKind::Io || err.is_connection_dropped() => {
                Err(err)
            }
            Err(err) if err.code().is_some() => Ok(Resp::Error(format!(
                "{} {}",
                err.code().unwrap_or_default(),
                err.detail().unwrap_or_default()
            ))),
            Err(err) => Err(err),
        }
    }
}
