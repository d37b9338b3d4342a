//! Test support shared by every suite that starts Redis (the runtime's tests, the end-to-end
//! tests in `tests/`).
//!
//! * [`RedisServer`]: a private `redis-server` process per test, on a spare port below the
//!   ephemeral range, killed when dropped; it can be killed, frozen and restarted on its port.
//! * [`RedisConnection`] and [`Resp`]: a synchronous connection, through the `redis` crate, to
//!   read what a server holds.
//!
//! It depends on no Switchboard crate, so the runtime's own tests can use it.

mod redis_server;

pub use redis_server::{RedisConnection, RedisServer, Resp, spare_port};
