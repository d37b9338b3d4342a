//! Several `switchboard serve --redis` replicas on one Redis, and the records they left there.
//!
//! [`Replicas`] starts them (each on its own port, all on one Redis URL and key prefix) and,
//! when a test fails, prints each one's exit status and the end of its log, to tell a replica
//! that crashed from one the test killed. [`stored`] reads a session's record straight from
//! Redis, as the replicas wrote it, to check it against what the test scripted.

use std::time::Duration;

use switchboard_runtime::Record;
use switchboard_runtime::redis_store::RedisStore;

use crate::{RedisConnection, Resp, Server};

/// The replicas of a test, in the order they were started.
#[derive(Debug)]
pub struct Replicas(pub Vec<Server>);

impl Replicas {
    /// `n` replicas, each `switchboard serve --redis URL --redis-prefix PREFIX ARGS...` with
    /// the environment `env`.
    pub fn start(n: usize, url: &str, prefix: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all = vec!["--redis", url, "--redis-prefix", prefix];
        all.extend_from_slice(args);
        Self((0..n).map(|_| Server::start_with_env(&all, env)).collect())
    }
}

impl std::ops::Deref for Replicas {
    type Target = Vec<Server>;

    fn deref(&self) -> &Vec<Server> {
        &self.0
    }
}

impl std::ops::DerefMut for Replicas {
    fn deref_mut(&mut self) -> &mut Vec<Server> {
        &mut self.0
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (i, server) in self.0.iter_mut().enumerate() {
            // Long enough for an exiting replica to finish, and its last lines to be read.
            let status = server.wait_exit(Duration::from_millis(500));
            let log = server.log();
            let tail = &log[log.len().saturating_sub(8)..];
            eprintln!(
                "replica {i} ({}): {}\n{}",
                server.addr,
                status.map_or("running".to_owned(), |s| format!("exited: {s}")),
                tail.join("\n")
            );
        }
    }
}

/// The Redis key of `session`'s record under `prefix` (`PREFIX:{SESSION}:state`).
pub fn state_key(prefix: &str, session: &str) -> String {
    format!("{prefix}:{{{session}}}:state")
}

/// The record stored for `session` under `prefix`, read from Redis directly, with its `v`
/// field checked against the record's version; `None` when nothing is stored.
pub fn stored(con: &mut RedisConnection, prefix: &str, session: &str) -> Option<Record> {
    let key = state_key(prefix, session);
    let reply = con.command(&["HMGET", &key, "v", "r", "ids"]);
    decode_stored(&key, reply)
}

/// The record in the answer to `HMGET key v r ids`; panics, naming `key`, on a hash that is
/// not a whole record.
pub fn decode_stored(key: &str, reply: Resp) -> Option<Record> {
    let Resp::Array(Some(fields)) = reply else {
        panic!("HMGET {key} answered {reply:?}");
    };
    match fields.as_slice() {
        [Resp::Bulk(None), Resp::Bulk(None), Resp::Bulk(None)] => None,
        [Resp::Bulk(Some(v)), Resp::Bulk(Some(r)), Resp::Bulk(ids)] => {
            let record = RedisStore::decode_record(r, ids.as_deref())
                .unwrap_or_else(|e| panic!("{key}: the stored record does not decode: {e}"));
            assert_eq!(
                String::from_utf8_lossy(v),
                record.version.to_string(),
                "{key}: the v field and the record's version differ"
            );
            Some(record)
        }
        other => panic!("{key}: a hash with v or r missing: {other:?}"),
    }
}
