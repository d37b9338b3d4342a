//! Where Redis is: [`RedisConfig`], the URLs it names (one server, several nodes of a cluster,
//! `redis+cluster://`), the CA file of `rediss://`, and [`OpenError`], what a wrong
//! configuration is reported as at start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ::redis::{IntoConnectionInfo, RedisError, TlsCertificates};

use super::RecordFormat;

/// Where Redis is and how sessions are kept in it.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`. Cluster mode when [`Self::cluster`] is set,
    /// when several comma-separated nodes are given (`redis://a:7000,redis://b:7000`, or
    /// `a:7000,b:7000`), or with the `redis+cluster://` scheme.
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
         for a cluster"
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

    #[test]
    fn a_malformed_url_is_named_and_its_password_masked() {
        let err = parse("http://:secret@host:1").unwrap_err();
        assert!(err.to_string().contains("\"http://:***@host:1\""), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(parse(" , ").unwrap_err().to_string().contains("empty"));
    }
}
