//! [`CampaignStore`] on Redis: campaigns shared by every replica, the lease in a key with a
//! time to live.
//!
//! Keys, with the campaign id as hash tag so one script can touch them all (one cluster
//! slot): `{prefix}:campaign:{<id>}:def` (the definition), `:lease` (the holder's token,
//! `PX` the lease's time to live), `:rows` (a hash, row index to row record), `:meta`,
//! `:control`, `:reports` (a hash, ticket to report). `{prefix}:campaigns` is the set of
//! active campaign ids. The fenced write and the lease's acquisition and release are Lua
//! scripts, so the token check and the write are one atomic step.

use std::collections::BTreeMap;
use std::time::Duration;

use ::redis::{RedisResult, Script};

use super::RedisStore;
use super::link::with_connection;
use crate::campaign::{CampaignStore, CampaignWrite, Inbox, Peek, StoredCampaign};
use crate::store::{BoxFuture, Cause, StoreError};

/// KEYS: lease, def. ARGV: token, ttl in ms.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if held then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// KEYS: lease. ARGV: token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
";

/// KEYS: lease, rows, meta, reports. ARGV: token, meta, number of rows, then row and record
/// pairs, then the tickets of applied reports.
const WRITE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[3], ARGV[2])
local n = tonumber(ARGV[3])
local i = 4
for _ = 1, n do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[4], ARGV[i])
  i = i + 1
end
return 1
";

/// KEYS: def, control. ARGV: the control.
const CONTROL: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local now = redis.call('GET', KEYS[2])
if now == 'canceled' then return now end
redis.call('SET', KEYS[2], ARGV[1])
return ARGV[1]
";

/// KEYS: def, reports. ARGV: ticket, report.
const REPORT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
return 1
";

impl RedisStore {
    fn campaign_key(&self, id: &str, part: &str) -> String {
        format!("{}:campaign:{{{id}}}:{part}", self.prefix)
    }

    fn campaigns_key(&self) -> String {
        format!("{}:campaigns", self.prefix)
    }

    /// Runs a command or script under the command timeout; a failure names the campaign.
    async fn campaign_op<T>(
        &self,
        id: &str,
        what: &str,
        op: impl std::future::Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                let context = format!("campaign {id}: {what} at Redis {}", self.target);
                Err(
                    if err.is_io_error()
                        || err.is_connection_refusal()
                        || err.is_connection_dropped()
                    {
                        StoreError::Connection {
                            context,
                            source: Cause::new(err),
                        }
                    } else {
                        StoreError::Protocol {
                            context,
                            source: Cause::new(err),
                        }
                    },
                )
            }
            Err(_) => Err(StoreError::Timeout {
                context: format!("campaign {id}: {what} at Redis {}", self.target),
                after: self.timeout,
            }),
        }
    }
}

fn rows(stored: BTreeMap<String, String>) -> BTreeMap<usize, String> {
    stored
        .into_iter()
        .filter_map(|(row, record)| Some((row.parse().ok()?, record)))
        .collect()
}

impl CampaignStore for RedisStore {
    fn create<'a>(
        &'a self,
        id: &'a str,
        definition: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let set = ::redis::cmd("SET")
                .arg(self.campaign_key(id, "def"))
                .arg(definition)
                .arg("NX")
                .clone();
            let created: Option<String> = self
                .campaign_op(id, "create", async {
                    with_connection!(&self.link, con => set.query_async(&mut con).await)
                })
                .await?;
            if created.is_none() {
                return Ok(false);
            }
            if !self.acquire(id, token, ttl).await? {
                return Err(StoreError::Protocol {
                    context: format!("campaign {id}: create"),
                    source: Cause::new(std::io::Error::other(
                        "its new lease is held by another replica",
                    )),
                });
            }
            let add = ::redis::cmd("SADD")
                .arg(self.campaigns_key())
                .arg(id)
                .clone();
            self.campaign_op(id, "list as active", async {
                with_connection!(&self.link, con => add.query_async::<i64>(&mut con).await)
            })
            .await?;
            Ok(true)
        })
    }

    fn active(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            let members = ::redis::cmd("SMEMBERS").arg(self.campaigns_key()).clone();
            self.campaign_op("*", "list", async {
                with_connection!(&self.link, con => members.query_async(&mut con).await)
            })
            .await
        })
    }

    fn load<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredCampaign>, StoreError>> {
        Box::pin(async move {
            let mut pipe = ::redis::pipe();
            pipe.cmd("MGET")
                .arg(self.campaign_key(id, "def"))
                .arg(self.campaign_key(id, "meta"))
                .arg(self.campaign_key(id, "control"))
                .cmd("HGETALL")
                .arg(self.campaign_key(id, "rows"))
                .cmd("HGETALL")
                .arg(self.campaign_key(id, "reports"));
            type Loaded = (
                (Option<String>, Option<String>, Option<String>),
                BTreeMap<String, String>,
                BTreeMap<String, String>,
            );
            let ((definition, meta, control), stored_rows, reports): Loaded = self
                .campaign_op(id, "load", async {
                    with_connection!(&self.link, con => pipe.query_async(&mut con).await)
                })
                .await?;
            Ok(definition.map(|definition| StoredCampaign {
                definition,
                meta,
                control,
                rows: rows(stored_rows),
                reports,
            }))
        })
    }

    fn peek<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Peek>, StoreError>> {
        Box::pin(async move {
            let mut pipe = ::redis::pipe();
            pipe.cmd("MGET")
                .arg(self.campaign_key(id, "def"))
                .arg(self.campaign_key(id, "meta"))
                .arg(self.campaign_key(id, "control"))
                .arg(self.campaign_key(id, "lease"))
                .cmd("HLEN")
                .arg(self.campaign_key(id, "reports"));
            type Peeked = (
                (
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                ),
                u64,
            );
            let ((definition, meta, control, lease), reports): Peeked = self
                .campaign_op(id, "peek", async {
                    with_connection!(&self.link, con => pipe.query_async(&mut con).await)
                })
                .await?;
            Ok(definition.map(|_| Peek {
                meta,
                control,
                leased: lease.is_some(),
                reports: reports > 0,
            }))
        })
    }

    fn acquire<'a>(
        &'a self,
        id: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let script = Script::new(ACQUIRE);
            let mut invocation = script.prepare_invoke();
            invocation
                .key(self.campaign_key(id, "lease"))
                .key(self.campaign_key(id, "def"))
                .arg(token)
                .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
            let taken: i64 = self
                .campaign_op(id, "take the lease", async {
                    with_connection!(&self.link, con => invocation.invoke_async(&mut con).await)
                })
                .await?;
            Ok(taken == 1)
        })
    }

    fn release<'a>(&'a self, id: &'a str, token: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let script = Script::new(RELEASE);
            let mut invocation = script.prepare_invoke();
            invocation.key(self.campaign_key(id, "lease")).arg(token);
            self.campaign_op(id, "release the lease", async {
                with_connection!(&self.link, con => invocation.invoke_async::<i64>(&mut con).await)
            })
            .await?;
            Ok(())
        })
    }

    fn write<'a>(
        &'a self,
        id: &'a str,
        token: &'a str,
        write: &'a CampaignWrite,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let script = Script::new(WRITE);
            let mut invocation = script.prepare_invoke();
            invocation
                .key(self.campaign_key(id, "lease"))
                .key(self.campaign_key(id, "rows"))
                .key(self.campaign_key(id, "meta"))
                .key(self.campaign_key(id, "reports"))
                .arg(token)
                .arg(&write.meta)
                .arg(write.rows.len());
            for (row, record) in &write.rows {
                invocation.arg(*row).arg(record);
            }
            for ticket in &write.applied {
                invocation.arg(ticket);
            }
            let written: i64 = self
                .campaign_op(id, "write", async {
                    with_connection!(&self.link, con => invocation.invoke_async(&mut con).await)
                })
                .await?;
            if written == 1 && write.finished {
                let remove = ::redis::cmd("SREM")
                    .arg(self.campaigns_key())
                    .arg(id)
                    .clone();
                self.campaign_op(id, "list as finished", async {
                    with_connection!(&self.link, con => remove.query_async::<i64>(&mut con).await)
                })
                .await?;
            }
            Ok(written == 1)
        })
    }

    fn set_control<'a>(
        &'a self,
        id: &'a str,
        control: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            let script = Script::new(CONTROL);
            let mut invocation = script.prepare_invoke();
            invocation
                .key(self.campaign_key(id, "def"))
                .key(self.campaign_key(id, "control"))
                .arg(control);
            self.campaign_op(id, "control", async {
                with_connection!(&self.link, con => invocation.invoke_async(&mut con).await)
            })
            .await
        })
    }

    fn report<'a>(
        &'a self,
        id: &'a str,
        ticket: &'a str,
        report: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let script = Script::new(REPORT);
            let mut invocation = script.prepare_invoke();
            invocation
                .key(self.campaign_key(id, "def"))
                .key(self.campaign_key(id, "reports"))
                .arg(ticket)
                .arg(report);
            let added: i64 = self
                .campaign_op(id, "report an outcome", async {
                    with_connection!(&self.link, con => invocation.invoke_async(&mut con).await)
                })
                .await?;
            Ok(added == 1)
        })
    }

    fn inbox<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Inbox, StoreError>> {
        Box::pin(async move {
            let mut pipe = ::redis::pipe();
            pipe.cmd("GET")
                .arg(self.campaign_key(id, "control"))
                .cmd("HGETALL")
                .arg(self.campaign_key(id, "reports"));
            self.campaign_op(id, "read the inbox", async {
                with_connection!(&self.link, con => pipe.query_async(&mut con).await)
            })
            .await
        })
    }
}
