//! End-to-end test support: the real `switchboard` binary on a real socket, an HTTP client,
//! and a virtual call that writes the webhooks the 8x8 platform would send.
//!
//! The tests in `tests/` start one server process each ([`Server::start`]) on `127.0.0.1:0`
//! and learn its port from the "listening on" log line, so they run in parallel. The binary is
//! the one cargo built for the same profile as the tests (`target/<profile>/switchboard`):
//! `cargo test --workspace` builds it, and so does `.ci/test`.
//!
//! For several replicas on one Redis: [`RedisServer`] (a private redis-server, killed on drop,
//! restartable on its port) and [`RedisConnection`] (to read what is stored), both from the
//! shared test kit `switchboard-testkit`, and
//! [`Balancer`] (a random replica per webhook, another one after a connection error);
//! [`replicas`] starts several replicas on one Redis ([`Replicas`]) and reads the records they
//! stored ([`stored`]).
//!
//! For what a person would see: [`browser`] (headless Chromium: DOM after scripts, screenshots
//! and whether they are blank).
//!
//! For the faults of a network between a replica and Redis: [`proxy`] (a TCP relay that adds
//! latency, cuts the link or holds its bytes).
//!
//! For https: [`make_certificates`] (a test CA and a `localhost` certificate, from the shared
//! test kit) and [`tls`] (a TLS front that serves a plain-HTTP service, the emulator, as
//! `https://`).
//!
//! For campaigns that outlive the replica dialling them: [`campaign`] (replicas on one Redis
//! placing calls through an [`Emulator`], a scripted list, and the platform's record of it).

pub mod browser;
pub mod campaign;
pub mod proxy;
pub mod replicas;
pub mod tls;

pub use proxy::{LinkState, Proxy};
pub use replicas::{Replicas, decode_stored, state_key, stored};
pub use tls::TlsFront;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::Rng;
use serde_json::Value;
use switchboard_protocol::{Mode, validate_slice};

/// The path of a binary of this workspace, built for the profile the tests run in.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` (add --release when \
         testing with --release); the README's test command `.ci/test` does both",
        path.display()
    );
    path
}

/// A running `switchboard serve`. Killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `switchboard serve --listen 127.0.0.1:0 ARGS...` and waits until it listens.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::launch("127.0.0.1:0", args, env).unwrap_or_else(|log| {
            panic!(
                "switchboard did not start listening; its log:\n{}",
                log.join("\n")
            )
        })
    }

    /// Like [`Server::start_with_env`], listening on `addr`: a replica restarted where the
    /// platform sends its webhooks. While `addr` is still taken (the port of a process that
    /// just died), it tries again for a few seconds.
    pub fn start_on(addr: SocketAddr, args: &[&str], env: &[(&str, &str)]) -> Self {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Self::launch(&addr.to_string(), args, env) {
                Ok(server) => return server,
                Err(log)
                    if Instant::now() < deadline
                        && log.iter().any(|l| l.contains("cannot listen on")) =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(log) => panic!(
                    "switchboard did not start listening on {addr}; its log:\n{}",
                    log.join("\n")
                ),
            }
        }
    }

    /// Starts `switchboard serve --listen LISTEN ARGS...` and waits until it listens; its log
    /// if it exits first or is not listening within 20 s.
    fn launch(listen: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Self, Vec<String>> {
        let mut command = Command::new(binary("switchboard"));
        command
            .arg("serve")
            .args(["--listen", listen])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the switchboard binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split("listening on http://")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(addr) => return Ok(Self { child, addr, log }),
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if child.try_wait().expect("try_wait").is_some() {
                        // Exited: its whole log is read once the pipe closes.
                        let _ = reader.join();
                        return Err(log.lock().unwrap().clone());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = reader.join();
                    return Err(log.lock().unwrap().clone());
                }
            }
        }
    }

    /// `http://ADDR`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a log line contains `needle`, at most `timeout` (the log is read by a
    /// thread, so a line the server just wrote may not be in [`Server::log`] yet).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().iter().any(|line| line.contains(needle)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`TERM`, `HUP`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An HTTP client for this server.
    pub fn http(&self) -> Http {
        Http::new(&self.base())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `switchboard ARGS...` to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = Command::new(binary("switchboard"));
    command.args(args).stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("the switchboard binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A keep-alive HTTP/1.1 client.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: hyper::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Http {
    /// A client for `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.to_owned(),
        }
    }

    /// Sends a request.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(Full::new(body.into()))
            .expect("a valid request");
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .expect("the server answers within 30 s")
            .expect("the request succeeds");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body is read")
            .to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// POSTs a JSON webhook to `/webhooks`.
    pub async fn webhook(&self, body: impl Into<Bytes>) -> Reply {
        self.send(
            "POST",
            "/webhooks",
            &[("content-type", "application/json")],
            body,
        )
        .await
    }

    /// GET with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        self.send("GET", path, &headers, Bytes::new()).await
    }
}

/// A random UUID (v4 layout).
pub fn uuid() -> String {
    let n: u128 = rand::rng().random();
    let h = format!("{n:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// One virtual call: writes the platform's webhooks for one session and checks every answer.
#[derive(Debug, Clone)]
pub struct Call {
    /// The session id.
    pub session: String,
    /// The caller's number.
    pub caller: String,
    /// The number called.
    pub called: String,
    call_id: String,
    /// The `clientActionId` of the last answer (echoed by the next event).
    pub action_id: Option<String>,
}

/// One answer of the server to a `CALL_ACTION`.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The raw body.
    pub body: Bytes,
    /// The parsed body.
    pub json: Value,
}

impl Answer {
    /// The action names, in order.
    pub fn actions(&self) -> Vec<String> {
        self.json["callflow"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x["action"].as_str().unwrap_or("?").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Everything said or prompted, joined by ` | `.
    pub fn spoken(&self) -> String {
        let mut parts = Vec::new();
        for action in self.json["callflow"].as_array().into_iter().flatten() {
            let params = &action["params"];
            for key in ["text", "promptMessage", "fileUrl"] {
                if let Some(text) = params[key].as_str() {
                    parts.push(text.to_owned());
                }
            }
        }
        parts.join(" | ")
    }

    /// The node named by the answer's `clientActionId` (`flow:version:node:seq`).
    pub fn node(&self) -> Option<String> {
        let id = self.json["clientActionId"].as_str()?;
        id.split(':').nth(2).map(str::to_owned)
    }

    /// The `clientActionId`.
    pub fn action_id(&self) -> Option<String> {
        self.json["clientActionId"].as_str().map(str::to_owned)
    }

    /// The parameters of the action named `name`, if present.
    pub fn params(&self, name: &str) -> Option<&Value> {
        self.json["callflow"]
            .as_array()?
            .iter()
            .find(|a| a["action"] == name)
            .map(|a| &a["params"])
    }
}

impl Call {
    /// A new call from a random mobile number to `called`.
    pub fn new(called: &str) -> Self {
        let n: u32 = rand::rng().random_range(0..10_000_000);
        Self::from(&format!("+659{n:07}"), called)
    }

    /// A new call from `caller` to `called`.
    pub fn from(caller: &str, called: &str) -> Self {
        Self {
            session: uuid(),
            caller: caller.to_owned(),
            called: called.to_owned(),
            call_id: uuid(),
            action_id: None,
        }
    }

    /// The `CALL_RECEIVED` body.
    pub fn received(&self) -> Vec<u8> {
        self.call_action("CALL_RECEIVED", &uuid(), None, None, None)
    }

    /// An `ACTION_COMPLETED` body echoing the last `clientActionId`, with a fresh event id.
    pub fn completed(&self, dtmf: Option<&str>, sip_code: Option<u16>) -> Vec<u8> {
        self.call_action(
            "ACTION_COMPLETED",
            &uuid(),
            dtmf,
            sip_code,
            self.action_id.as_deref(),
        )
    }

    /// A `CALL_ACTION` body with every field chosen.
    pub fn call_action(
        &self,
        status: &str,
        event_id: &str,
        dtmf: Option<&str>,
        sip_code: Option<u16>,
        action_id: Option<&str>,
    ) -> Vec<u8> {
        let body = serde_json::json!({
            "namespace": "VOICE",
            "eventType": "CALL_ACTION",
            "description": "Action request of a call",
            "payload": {
                "eventId": event_id,
                "callId": self.call_id,
                "sessionId": self.session,
                "subAccountId": "acme_voice",
                "callStatus": status,
                "callDirection": "INBOUND",
                "callType": "PSTN",
                "source": self.caller,
                "destination": self.called,
                "sourceFormat": "MSISDN",
                "destinationFormat": "MSISDN",
                "callDuration": 12,
                "eventData": { "dtmf": dtmf, "asrCaptured": null },
                "sipCode": sip_code.unwrap_or(200),
                "timestamp": "2026-11-20T09:15:02.118Z",
                "clientActionId": action_id,
            }
        });
        serde_json::to_vec(&body).expect("json")
    }

    /// A `SESSION_SUMMARY` body.
    pub fn summary(&self, status: &str) -> Vec<u8> {
        let body = serde_json::json!({
            "namespace": "VOICE",
            "eventType": "SESSION_SUMMARY",
            "description": "Summary of a completed call session",
            "version": 1,
            "payload": {
                "sessionId": self.session,
                "subAccountId": "acme_voice",
                "sessionStatus": status,
                "startTime": "2026-11-20T09:15:02.118Z",
                "endTime": "2026-11-20T09:16:02.118Z",
                "lastAction": "HANGUP",
                "callCount": 1,
                "details": {}
            }
        });
        serde_json::to_vec(&body).expect("json")
    }

    /// Posts a `CALL_ACTION` body, asserts a 200 whose body passes the protocol validator,
    /// and remembers its `clientActionId` for the next event.
    pub async fn send(&mut self, http: &Http, body: Vec<u8>) -> Answer {
        let reply = http.webhook(body).await;
        self.accept(reply)
    }

    /// Starts the call.
    pub async fn start(&mut self, http: &Http) -> Answer {
        let body = self.received();
        self.send(http, body).await
    }

    /// Answers the last callflow with keys (`None`: silence).
    pub async fn press(&mut self, http: &Http, dtmf: Option<&str>) -> Answer {
        let body = self.completed(dtmf, None);
        self.send(http, body).await
    }

    /// Reports the transfer's SIP code.
    pub async fn transfer_result(&mut self, http: &Http, sip_code: u16) -> Answer {
        let body = self.completed(None, Some(sip_code));
        self.send(http, body).await
    }

    /// Ends the session; asserts 200.
    pub async fn end(&self, http: &Http, status: &str) {
        let reply = http.webhook(self.summary(status)).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
}

/// The Redis harness is the shared test kit's (`crates/testkit`), re-exported so the tests
/// here keep their imports.
pub use switchboard_testkit::{
    Certificates, RedisConnection, RedisServer, Resp, make_certificates, spare_port,
};

impl Http {
    /// POSTs a JSON webhook to `/webhooks`; `Err` when the request could not be made (the
    /// server is gone: refused or reset connection), as a load balancer would see it.
    pub async fn try_webhook(&self, body: impl Into<Bytes>) -> Result<Reply, String> {
        let request = Request::builder()
            .method("POST")
            .uri(format!("{}/webhooks", self.base))
            .header("content-type", "application/json")
            .body(Full::new(body.into()))
            .expect("a valid request");
        let response = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
            .await
            .expect("the server answers within 30 s")
            .map_err(|e| format!("{}: {e:?}", self.base))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{}: the body was cut: {e}", self.base))?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

impl Call {
    /// Takes an answer to a `CALL_ACTION` that reached the server some other way (e.g. through
    /// a [`Balancer`]): asserts a 200 whose body passes the protocol validator, and remembers
    /// its `clientActionId` for the next event.
    pub fn accept(&mut self, reply: Reply) -> Answer {
        assert_eq!(
            reply.status,
            200,
            "session {}: {}",
            self.session,
            String::from_utf8_lossy(&reply.body)
        );
        let violations = validate_slice(&reply.body, Mode::Webhook);
        assert!(
            violations.is_empty(),
            "session {}: the answer breaks the protocol: {violations:?}\n{}",
            self.session,
            String::from_utf8_lossy(&reply.body)
        );
        let answer = Answer {
            json: reply.json(),
            body: reply.body,
        };
        if let Some(id) = answer.action_id() {
            self.action_id = Some(id);
        }
        answer
    }

    /// An `ACTION_COMPLETED` body with the given event id (for duplicates), echoing the last
    /// `clientActionId`.
    pub fn completed_as(
        &self,
        event_id: &str,
        dtmf: Option<&str>,
        sip_code: Option<u16>,
    ) -> Vec<u8> {
        self.call_action(
            "ACTION_COMPLETED",
            event_id,
            dtmf,
            sip_code,
            self.action_id.as_deref(),
        )
    }
}

/// The platform's load balancer in front of several replicas: each webhook goes to a random
/// replica still thought alive; a connection error marks that replica dead and the same body
/// goes to another, and a 503 (busy, store unavailable) is retried after a pause, as the
/// platform retries it.
#[derive(Debug)]
pub struct Balancer {
    replicas: Vec<Http>,
    alive: Vec<std::sync::atomic::AtomicBool>,
    served: Vec<std::sync::atomic::AtomicU64>,
    /// Requests that failed to connect and were sent again elsewhere.
    pub connection_retries: std::sync::atomic::AtomicU64,
    /// 503 answers retried.
    pub unavailable_retries: std::sync::atomic::AtomicU64,
}

/// Most 503 answers one webhook may get before the balancer gives up on it.
const MAX_UNAVAILABLE: usize = 50;

impl Balancer {
    /// A balancer over `replicas`.
    pub fn new(replicas: &[&Server]) -> Self {
        Self {
            replicas: replicas.iter().map(|s| s.http()).collect(),
            alive: replicas
                .iter()
                .map(|_| std::sync::atomic::AtomicBool::new(true))
                .collect(),
            served: replicas.iter().map(|_| Default::default()).collect(),
            connection_retries: Default::default(),
            unavailable_retries: Default::default(),
        }
    }

    /// How many replicas there are.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// The client of replica `i`, to address it directly.
    pub fn replica(&self, i: usize) -> &Http {
        &self.replicas[i]
    }

    /// How many requests replica `i` answered.
    pub fn served(&self, i: usize) -> u64 {
        self.served[i].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether replica `i` is still thought alive.
    pub fn is_alive(&self, i: usize) -> bool {
        self.alive[i].load(std::sync::atomic::Ordering::Acquire)
    }

    /// Posts `body` to a random live replica; returns the answer that is not a 503 and the
    /// replica that gave it. Panics when no replica is left or one webhook keeps getting 503.
    pub async fn webhook(&self, body: Vec<u8>) -> (usize, Reply) {
        let body = Bytes::from(body);
        let mut unavailable = 0;
        loop {
            let live: Vec<usize> = (0..self.replicas.len())
                .filter(|&i| self.is_alive(i))
                .collect();
            assert!(!live.is_empty(), "every replica is down");
            let i = live[rand::rng().random_range(0..live.len())];
            match self.send_to(i, body.clone()).await {
                Some(reply) if reply.status == 503 => {
                    unavailable += 1;
                    assert!(
                        unavailable < MAX_UNAVAILABLE,
                        "a webhook got 503 {MAX_UNAVAILABLE} times: {}",
                        String::from_utf8_lossy(&reply.body)
                    );
                    self.unavailable_retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Some(reply) => return (i, reply),
                None => {}
            }
        }
    }

    /// Posts `body` to replica `i` only; `None` (and the replica marked dead) when it cannot be
    /// reached.
    pub async fn send_to(&self, i: usize, body: Bytes) -> Option<Reply> {
        match self.replicas[i].try_webhook(body).await {
            Ok(reply) => {
                self.served[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some(reply)
            }
            Err(_) => {
                self.alive[i].store(false, std::sync::atomic::Ordering::Release);
                self.connection_retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                None
            }
        }
    }
}

/// A running `switchboard-loadgen emulate`: the 8x8 Callflows API and the platform playing the
/// calls it creates against a webhook URL. Killed when dropped.
///
/// It listens on a port chosen up front (so a server can be configured with its URL before it
/// starts), requires the API key `k3y`, and logs every request and call end to a file of its
/// own ([`Emulator::arrivals`]).
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: PathBuf,
    _dir: tempfile_dir::TempDir,
}

mod tempfile_dir {
    /// A directory removed when dropped.
    #[derive(Debug)]
    pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The API key every [`Emulator`] requires.
pub const EMULATOR_API_KEY: &str = "k3y";

impl Emulator {
    /// A port for an emulator to be started on.
    pub fn reserve_port() -> u16 {
        spare_port()
    }

    /// Starts `switchboard-loadgen emulate --listen 127.0.0.1:PORT --webhook WEBHOOK ARGS...`
    /// and waits for its banner.
    pub fn start(port: u16, webhook: &str, args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("switchboard-emulator-{}", uuid()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let log = dir.join("arrivals.jsonl");
        let mut child = Command::new(binary("switchboard-loadgen"))
            .arg("emulate")
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--webhook",
                webhook,
            ])
            .args(["--api-key", EMULATOR_API_KEY, "--arrivals"])
            .arg(&log)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the switchboard-loadgen binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(banner)) = lines.next() {
                let _ = tx.send(banner);
            }
            // Keep draining so the emulator never blocks on a full pipe.
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(_) => Self {
                child,
                base: format!("http://127.0.0.1:{port}"),
                log,
                _dir: tempfile_dir::TempDir(dir),
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("switchboard-loadgen emulate did not start on port {port}");
            }
        }
    }

    /// Every line logged so far: `{"event": "request", "at_ms", "destination",
    /// "clientRequestId", "status", "statusCode", "sessionId", "repeated", "callflow"}` per API
    /// request and `{"event": "ended", "at_ms", "sessionId", "outcome", "summary"}` per call end
    /// (`summary`: the HTTP status the webhook answered the session summary with, `null` when
    /// it did not answer; the platform does not send it again).
    pub fn arrivals(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until `done` holds for the log, at most `timeout`; the log either way.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.arrivals();
            if done(&lines) || Instant::now() >= deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill();
    }
}
