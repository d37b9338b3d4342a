//! Where Redis is: [`RedisConfig`], the URLs it names (one server, several nodes of a cluster,
//! `redis+cluster://`, the sentinels of `redis+sentinel://`), the CA file of `rediss://`, and
//! [`OpenError`], what a wrong configuration is reported as at start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ::redis::{IntoConnectionInfo, RedisError, TlsCertificates};

use super::RecordFormat;

/// Where Redis is and how sessions are kept in it.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`. Cluster mode when [`Self::cluster`] is set,
    /// when several comma-separated nodes are given (`redis://a:7000,redis://b:7000`, or
    /// `a:7000,b:7000`), or with the `redis+cluster://` scheme. Sentinel mode with
    /// `redis+sentinel://[user:password@]host:port[,host:port...]/MASTER_NAME[/db]`: the
    /// sentinels (port 26379 when omitted) and the name of the master they watch; the
    /// credentials and the database are the master's.
    pub url: String,
    /// Talk to a Redis Cluster (also implied by the URL, see [`Self::url`]).
    pub cluster: bool,
    /// Prefix of every key: `{prefix}:{<sessionId>}:state`.
    pub prefix: String,
    /// A session's state lives this long after its last write.
    pub ttl: Duration,
    /// Most time one Redis command may take before Redis is considered down.
    pub command_timeout: Duration,
    /// Most sessions with writes queued while Redis is down; beyond it a write fails (503).
    pub max_pending: usize,
    /// A queued write not made durable within this time is dropped (logged and counted).
    pub max_pending_age: Duration,
    /// Store records zlib-compressed: less Redis memory per session, for more replica CPU per
    /// webhook (see `docs/architecture.md`). Off by default.
    pub compress: bool,
    /// How records are written: compact binary (the default), or JSON while replicas of a
    /// version before the binary layout still run (every form is read).
    pub format: RecordFormat,
    /// PEM file of the certificate authorities that sign Redis's TLS certificate (a private
    /// CA, or a test's). `None`: the system's trust store. Only with `rediss://` URLs.
    pub ca_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            cluster: false,
            prefix: "switchboard".to_owned(),
            ttl: Duration::from_secs(2 * 3600),
            command_timeout: Duration::from_secs(1),
            max_pending: 10_000,
            max_pending_age: Duration::from_secs(300),
            compress: false,
            format: RecordFormat::Binary,
            ca_file: None,
        }
    }
}

impl RedisConfig {
    /// The defaults, with `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

/// The scheme of a Sentinel URL.
const SENTINEL_SCHEME: &str = "redis+sentinel://";
/// The port of a sentinel given without one.
const SENTINEL_PORT: u16 = 26379;

/// What a `redis+sentinel://` URL names: the sentinels, and the master they watch.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct SentinelTarget {
    /// The sentinels, `(host, port)`, in the order given.
    pub(super) sentinels: Vec<(String, u16)>,
    /// The master's name (`sentinel monitor <name> ...`).
    pub(super) master: String,
    /// The master's ACL user, if any.
    pub(super) username: Option<String>,
    /// The master's password, if any (never printed: see the `Debug` impl).
    pub(super) password: Option<String>,
    /// The database selected on the master.
    pub(super) db: i64,
}

impl std::fmt::Debug for SentinelTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelTarget")
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .finish()
    }
}

/// The sentinels and master of `config`'s URL when it is a `redis+sentinel://` URL (`None`
/// for any other URL), checked: every mistake is named in a sentence, password masked.
pub(super) fn sentinel(config: &RedisConfig) -> Result<Option<SentinelTarget>, OpenError> {
    let url = config.url.trim();
    let shown = redact(url);
    let invalid = |problem: String| {
        OpenError::Invalid(format!(
            "invalid Redis Sentinel URL {shown:?}: {problem}; expected \
             redis+sentinel://[user:password@]host:port[,host:port...]/MASTER_NAME[/db]"
        ))
    };
    if url.starts_with("rediss+sentinel://") {
        return Err(OpenError::Invalid(format!(
            "the Redis URL {shown:?} asks for TLS through Sentinel (rediss+sentinel://), which \
             is not supported; use redis+sentinel:// on a private network, or a TLS Redis \
             Cluster or server (rediss://)"
        )));
    }
    let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) else {
        if url.contains("+sentinel://") {
            return Err(OpenError::Invalid(format!(
                "the Redis URL {shown:?} names Sentinel but not at its start: a Sentinel URL is \
                 one redis+sentinel://host:port,host:port/MASTER_NAME, not one of several \
                 comma-separated URLs"
            )));
        }
        return Ok(None);
    };
    if config.cluster {
        return Err(OpenError::Invalid(format!(
            "redis_cluster is set but the Redis URL {shown:?} names sentinels \
             (redis+sentinel://); a Sentinel group is not a Redis Cluster: unset redis_cluster"
        )));
    }
    if let Some(path) = &config.ca_file {
        return Err(OpenError::Invalid(format!(
            "redis_ca_file {} is set but the Redis URL {shown:?} is a Sentinel URL, which is \
             not TLS (rediss+sentinel:// is not supported); unset redis_ca_file",
            path.display()
        )));
    }
    if rest.contains('?') || rest.contains('#') {
        return Err(invalid(
            "it has a query or fragment (?... or #...), which a Sentinel URL does not take"
                .to_owned(),
        ));
    }
    if rest.contains("://") {
        return Err(invalid(
            "a sentinel carries a scheme; give the sentinels as host:port, comma-separated, \
             after the one redis+sentinel://"
                .to_owned(),
        ));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (user_info, hosts) = match authority.rsplit_once('@') {
        Some((user_info, hosts)) => (Some(user_info), hosts),
        None => (None, authority),
    };
    // The credentials are decoded as those of a redis:// URL (percent-encoding included).
    let (username, password) = match user_info {
        Some(user_info) => {
            let info = format!("redis://{user_info}@127.0.0.1")
                .as_str()
                .into_connection_info()
                .map_err(|e| invalid(format!("its user or password cannot be read ({e})")))?;
            let redis = info.redis_settings();
            (
                redis.username().map(str::to_owned),
                redis.password().map(str::to_owned),
            )
        }
        None => (None, None),
    };
    let mut sentinels = Vec::new();
    for host in hosts.split(',').map(str::trim) {
        if host.is_empty() {
            return Err(invalid(
                "a sentinel's address is empty (two commas, or none before the /)".to_owned(),
            ));
        }
        let info = format!("redis://{host}")
            .as_str()
            .into_connection_info()
            .map_err(|e| invalid(format!("the sentinel address {host:?} is malformed ({e})")))?;
        let ::redis::ConnectionAddr::Tcp(name, port) = info.addr() else {
            return Err(invalid(format!(
                "the sentinel address {host:?} is not host:port"
            )));
        };
        let port = if has_port(host) { *port } else { SENTINEL_PORT };
        sentinels.push((name.clone(), port));
    }
    let mut segments = path.split('/');
    let master = segments.next().unwrap_or_default().trim();
    if master.is_empty() {
        return Err(invalid(
            "it names no master: write the name the sentinels monitor it by after the \
             sentinels, as in redis+sentinel://host:26379/mymaster"
                .to_owned(),
        ));
    }
    let db = match segments.next().map(str::trim) {
        None | Some("") => 0,
        Some(db) => db
            .parse::<i64>()
            .ok()
            .filter(|db| *db >= 0)
            .ok_or_else(|| {
                invalid(format!(
                    "the database {db:?} after the master's name is not a number from 0 up"
                ))
            })?,
    };
    if let Some(extra) = segments.find(|s| !s.is_empty()) {
        return Err(invalid(format!(
            "{extra:?} follows the database; the path is /MASTER_NAME[/db]"
        )));
    }
    Ok(Some(SentinelTarget {
        sentinels,
        master: master.to_owned(),
        username,
        password,
        db,
    }))
}

/// Whether `host` (`name`, `name:port`, `[v6]` or `[v6]:port`) gives its port.
fn has_port(host: &str) -> bool {
    host.rsplit_once(':').is_some_and(|(before, port)| {
        !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && (!before.starts_with('[') || before.ends_with(']'))
    })
}

/// The node URLs of `config` and whether to use cluster mode.
pub(super) fn endpoints(config: &RedisConfig) -> Result<(Vec<String>, bool), OpenError> {
    let mut cluster = config.cluster;
    let mut nodes = Vec::new();
    for part in config
        .url
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let node = if let Some(rest) = part.strip_prefix("redis+cluster://") {
            cluster = true;
            format!("redis://{rest}")
        } else if part.contains("://") {
            part.to_owned()
        } else {
            format!("redis://{part}")
        };
        if let Err(err) = node.as_str().into_connection_info() {
            return Err(bad_url(&redact(&node), &err));
        }
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(OpenError::Invalid(
            "the Redis URL is empty; set it to redis://host:port (or several comma-separated \
             nodes for a cluster)"
                .to_owned(),
        ));
    }
    Ok((nodes.clone(), cluster || nodes.len() > 1))
}

/// The CA file's PEM text, checked: it must be readable, hold a certificate, and go with
/// `rediss://` URLs only (a CA for a plain-text connection is a configuration mistake).
pub(super) fn read_ca(path: Option<&Path>, nodes: &[String]) -> Result<Option<Vec<u8>>, OpenError> {
    let Some(path) = path else {
        return Ok(None);
    };
    if let Some(plain) = nodes.iter().find(|n| !n.starts_with("rediss://")) {
        return Err(OpenError::Invalid(format!(
            "redis_ca_file {} is set but the Redis URL {:?} is not TLS; write rediss://host:port, \
             or unset redis_ca_file",
            path.display(),
            redact(plain)
        )));
    }
    let pem = std::fs::read(path).map_err(|source| OpenError::CaFile {
        path: path.to_owned(),
        source,
    })?;
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(OpenError::Invalid(format!(
            "redis_ca_file {}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(Some(pem))
}

/// Trust `pem`'s certificate authorities (and no client certificate).
pub(super) fn tls_roots(pem: &[u8]) -> TlsCertificates {
    TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    }
}

pub(super) fn bad_url(url: &str, err: &RedisError) -> OpenError {
    OpenError::Url {
        url: url.to_owned(),
        source: err.clone(),
    }
}

/// Why a [`RedisStore`](super::RedisStore) could not be made: a start-up error (the configuration is wrong), not a
/// failure of Redis, which [`RedisStore::new`](super::RedisStore::new) does not contact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A URL is malformed.
    #[error(
        "invalid Redis URL {url:?}: {source}; expected redis://[user:password@]host:port[/db], \
         rediss://... for TLS, several comma-separated nodes, or redis+cluster://host:port \
         for a cluster, or redis+sentinel://host:port[,host:port...]/MASTER_NAME for Sentinel"
    )]
    Url {
        /// The URL, its password masked.
        url: String,
        /// What the client found wrong.
        source: RedisError,
    },
    /// The CA file cannot be read.
    #[error("redis_ca_file {}: cannot read it: {source}", .path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another mistake, said in full.
    #[error("{0}")]
    Invalid(String),
}

/// `url` with its password masked.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<(Vec<String>, bool), OpenError> {
        endpoints(&RedisConfig::new(url))
    }

    #[test]
    fn one_url_is_one_server() {
        assert_eq!(
            parse("redis://10.0.0.1:6379/2").unwrap(),
            (vec!["redis://10.0.0.1:6379/2".to_owned()], false)
        );
    }

    #[test]
    fn several_nodes_or_the_cluster_scheme_mean_a_cluster() {
        let (nodes, cluster) = parse("redis://a:7000, b:7001").unwrap();
        assert_eq!(nodes, ["redis://a:7000", "redis://b:7001"]);
        assert!(cluster);
        let (nodes, cluster) = parse("redis+cluster://a:7000").unwrap();
        assert_eq!(nodes, ["redis://a:7000"]);
        assert!(cluster);
    }

    fn sentinel_of(url: &str) -> Result<Option<SentinelTarget>, OpenError> {
        sentinel(&RedisConfig::new(url))
    }

    fn sentinel_error(url: &str) -> String {
        sentinel_of(url)
            .expect_err("a bad Sentinel URL is refused")
            .to_string()
    }

    #[test]
    fn other_urls_are_not_sentinel_urls() {
        for url in [
            "redis://a:6379",
            "rediss://a:6380",
            "a:7000,b:7000",
            "redis+cluster://a:1",
        ] {
            assert_eq!(sentinel_of(url).unwrap(), None, "{url}");
        }
    }

    #[test]
    fn a_sentinel_url_names_the_sentinels_the_master_and_its_credentials() {
        let target = sentinel_of("redis+sentinel://s1:26380, s2 ,10.0.0.3:5000/mymaster")
            .unwrap()
            .unwrap();
        assert_eq!(
            target.sentinels,
            [
                ("s1".to_owned(), 26380),
                ("s2".to_owned(), 26379),
                ("10.0.0.3".to_owned(), 5000)
            ]
        );
        assert_eq!(target.master, "mymaster");
        assert_eq!(
            (target.username, target.password, target.db),
            (None, None, 0)
        );

        let target = sentinel_of("redis+sentinel://app:p%40ss%2Fw@s1/cache-primary/3")
            .unwrap()
            .unwrap();
        assert_eq!(target.sentinels, [("s1".to_owned(), 26379)]);
        assert_eq!(target.master, "cache-primary");
        assert_eq!(target.username.as_deref(), Some("app"));
        assert_eq!(target.password.as_deref(), Some("p@ss/w"));
        assert_eq!(target.db, 3);
        assert!(!format!("{target:?}").contains("p@ss"), "{target:?}");

        let target = sentinel_of("redis+sentinel://:secret@[::1]:26381,[::1]/m/")
            .unwrap()
            .unwrap();
        assert_eq!(target.username, None);
        assert_eq!(target.password.as_deref(), Some("secret"));
        assert_eq!(target.sentinels.len(), 2);
        assert_eq!(target.sentinels[0].1, 26381);
        assert_eq!(target.sentinels[1].1, 26379);
    }

    #[test]
    fn a_bad_sentinel_url_is_named_in_a_sentence_its_password_masked() {
        for (url, problem) in [
            ("redis+sentinel://:secret@s1:26379", "names no master"),
            ("redis+sentinel://:secret@s1:26379/", "names no master"),
            ("redis+sentinel:///mymaster", "empty"),
            ("redis+sentinel://s1,,s2/mymaster", "empty"),
            ("redis+sentinel://s1:notaport/mymaster", "malformed"),
            ("redis+sentinel://s1:99999/mymaster", "malformed"),
            ("redis+sentinel://s1/mymaster/x", "not a number"),
            ("redis+sentinel://s1/mymaster/-1", "not a number"),
            (
                "redis+sentinel://s1/mymaster/0/extra",
                "follows the database",
            ),
            ("redis+sentinel://s1/mymaster?db=1", "query"),
            ("redis+sentinel://s1,redis://s2/mymaster", "scheme"),
            ("redis://a:1,redis+sentinel://s1/m", "not at its start"),
            ("rediss+sentinel://:secret@s1/mymaster", "not supported"),
        ] {
            let err = sentinel_error(url);
            assert!(err.contains(problem), "{url}: {err}");
            assert!(!err.contains("secret"), "{url}: {err}");
            assert!(!err.contains("panick"), "{url}: {err}");
        }
    }

    #[test]
    fn a_sentinel_url_goes_with_neither_cluster_mode_nor_a_ca_file() {
        let url = "redis+sentinel://:secret@s1/mymaster";
        let cluster = RedisConfig {
            cluster: true,
            ..RedisConfig::new(url)
        };
        let err = sentinel(&cluster).unwrap_err().to_string();
        assert!(err.contains("redis_cluster"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let ca = RedisConfig {
            ca_file: Some(PathBuf::from("/etc/ca.pem")),
            ..RedisConfig::new(url)
        };
        let err = sentinel(&ca).unwrap_err().to_string();
        assert!(err.contains("redis_ca_file /etc/ca.pem"), "{err}");
    }

    #[test]
    fn a_malformed_url_is_named_and_its_password_masked() {
        let err = parse("http://:secret@host:1").unwrap_err();
        assert!(err.to_string().contains("\"http://:***@host:1\""), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(parse(" , ").unwrap_err().to_string().contains("empty"));
    }
}
