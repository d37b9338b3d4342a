//! The Switchboard load generator and 8x8 platform emulator.
//!
//! # Layout
//! * [`call`]: one virtual call as a pure state machine: writes the platform's webhooks and
//!   executes the callflows the server answers.
//! * [`caller`]: what a virtual caller presses (a seeded random walk or a fixed script).
//! * [`wire`]: the webhook bodies, serialized from borrowed structs.
//! * [`ids`]: seeded random streams, UUIDs and timestamps.
//! * [`client`]: the keep-alive HTTP client and the target list.
//! * [`stats`]: histograms and counters of a run.
pub mod call;
pub mod caller;
pub mod client;
pub mod ids;
pub mod stats;
pub(crate) mod wire;
