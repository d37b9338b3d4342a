//! Test support shared by every suite that starts Redis or speaks TLS (the runtime's tests, the
//! end-to-end tests in `tests/`).
//!
//! * [`RedisServer`]: a private `redis-server` process per test, on a spare port below the
//!   ephemeral range, killed when dropped; it can be killed, frozen and restarted on its port.
//! * [`RedisConnection`] and [`Resp`]: a synchronous connection, through the `redis` crate, to
//!   read what a server holds.
//! * [`make_certificates`]: a CA of the test's own and a `localhost` certificate signed by it,
//!   for the TLS tests (Redis over TLS, the Callflows API over https).
//!
//! It depends on no Switchboard crate, so the runtime's own tests can use it.

mod certificates;
mod redis_server;

pub use certificates::{Certificates, make_certificates};
pub use redis_server::{RedisConnection, RedisServer, Resp, spare_port};
