//! `rediss://` end to end: the real binary against a real `redis-server` serving TLS only
//! (`--port 0 --tls-port P`) on a certificate this test generates with the `openssl` CLI, with
//! an ACL user and password in the URL and the test's CA given by `--redis-ca-file`.
//!
//! Negative controls prove the TLS and the credentials are really checked: without the CA the
//! certificate is not trusted, with a wrong password Redis refuses, and a CA file with a plain
//! `redis://` URL is refused at start-up with a sentence naming the key.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_tests::{Call, Server, make_certificates, run, spare_port};

const RESTAURANT: &str = "+6568888888";
const USER: &str = "switchboard";
const PASSWORD: &str = "s3cret-pw";

/// A redis-server speaking TLS only, with one ACL user and the default user disabled.
struct TlsRedis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl TlsRedis {
    fn start(dir: &Path) -> Self {
        for _ in 0..5 {
            let port = spare_port();
            let child = Command::new("redis-server")
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args([
                    "--tls-cert-file",
                    "server.pem",
                    "--tls-key-file",
                    "server.key",
                ])
                .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
                .args(["--user", USER, "on", &format!(">{PASSWORD}"), "~*", "&*"])
                .args(["+@all", "--user", "default", "off"])
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            let redis = Self {
                child,
                port,
                dir: dir.to_owned(),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if redis.cli(&["PING"]).trim() == "PONG" {
                    return redis;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(redis); // kills it: the port was taken, or it failed; try another
        }
        panic!("redis-server with TLS did not start on any of 5 spare ports");
    }

    /// `redis-cli` over TLS as the ACL user.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["--tls", "--cacert", "ca.pem", "-h", "localhost"])
            .args([
                "-p",
                &self.port.to_string(),
                "--user",
                USER,
                "--pass",
                PASSWORD,
            ])
            .arg("--no-auth-warning")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn url(&self, password: &str) -> String {
        format!("rediss://{USER}:{password}@localhost:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `/readyz` to answer `status`, at most 20 s; returns whether it did.
async fn ready_is(server: &Server, status: u16) -> bool {
    let http = server.http();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if http.get("/readyz", None).await.status == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn rediss_with_a_private_ca_and_an_acl_user_serves_calls() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca = make_certificates(dir.path()).ca;
    let redis = TlsRedis::start(dir.path());
    let ca = ca.to_str().expect("a UTF-8 path");

    let server = Server::start(&["--redis", &redis.url(PASSWORD), "--redis-ca-file", ca]);
    assert!(ready_is(&server, 200).await, "{:?}", server.log());
    let http = server.http();
    let mut call = Call::new(RESTAURANT);
    call.start(&http).await;
    let answer = call.press(&http, Some("3")).await;
    assert!(answer.actions().contains(&"hangup".to_owned()));
    // The state went to this Redis, over TLS, as the ACL user.
    let keys = redis.cli(&["KEYS", "switchboard:*"]);
    assert!(keys.contains(&call.session), "stored keys: {keys:?}");
    call.end(&http, "COMPLETED").await;

    // The password is never logged.
    assert!(
        !server.log().iter().any(|l| l.contains(PASSWORD)),
        "the password leaked into the log"
    );
}

#[tokio::test]
async fn rediss_refuses_an_untrusted_certificate_and_a_wrong_password() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca = make_certificates(dir.path()).ca;
    let redis = TlsRedis::start(dir.path());
    let ca = ca.to_str().expect("a UTF-8 path");

    // The system's trust store does not know the test's CA: not ready, and nothing reaches
    // Redis over an unverified connection (calls are served from memory meanwhile, as in any
    // Redis outage).
    let untrusted = Server::start(&["--redis", &redis.url(PASSWORD)]);
    assert!(ready_is(&untrusted, 503).await);
    let mut call = Call::new(RESTAURANT);
    call.start(&untrusted.http()).await;
    assert!(
        !redis.cli(&["KEYS", "*"]).contains(&call.session),
        "a session reached Redis through an untrusted certificate"
    );

    // The right CA, the wrong password: not ready either.
    let wrong = Server::start(&["--redis", &redis.url("nope"), "--redis-ca-file", ca]);
    assert!(ready_is(&wrong, 503).await);
    assert!(
        !wrong.log().iter().any(|l| l.contains(":nope@")),
        "the password is masked in logs"
    );

    // A CA file with a plain-text URL, or a file that holds no certificate: refused at start.
    let (code, _, stderr) = run(
        &[
            "serve",
            "--redis",
            "redis://127.0.0.1:6390",
            "--redis-ca-file",
            ca,
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("redis_ca_file"), "{stderr}");
    assert!(stderr.contains("not TLS"), "{stderr}");
    let not_pem = dir.path().join("ext.cnf");
    let (code, _, stderr) = run(
        &[
            "serve",
            "--redis",
            &redis.url(PASSWORD),
            "--redis-ca-file",
            not_pem.to_str().expect("a UTF-8 path"),
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no PEM certificate"), "{stderr}");
}
