//! The Switchboard load generator and 8x8 platform emulator.
//!
//! # Layout
//! * [`call`]: one virtual call as a pure state machine: writes the platform's webhooks and
//!   executes the callflows the server answers.
//! * [`caller`]: what a virtual caller presses (a seeded random walk or a fixed script).
//! * `wire`: the webhook bodies, serialized from borrowed structs.
//! * [`ids`]: seeded random streams, UUIDs and timestamps.
//! * [`client`]: the keep-alive HTTP client and the target list.
//! * [`stats`]: histograms and counters of a run.
//! * [`series`]: the per-second buckets of a run (the report's time series).
//! * [`player`]: the async driver of one call, with fault injection.
//! * [`load`]: closed- and open-loop load shapes.
//! * [`progress`]: live progress on stderr: a bar on a terminal, plain lines in a log.
//! * [`report`]: the end-of-run summary, human and JSON.
//! * [`html`]: the report as one self-contained HTML page, with [`chart`]'s inline SVG charts.
//! * [`compare`]: two JSON reports side by side (`--compare`).
//! * [`emulator`]: the Callflows API that places outbound calls.
//! * [`cli`]: the command line and `--help`.
pub mod backend;
pub mod call;
pub mod caller;
pub mod chart;
pub mod cli;
pub mod client;
pub mod compare;
pub mod emulator;
pub mod html;
pub mod ids;
pub mod load;
pub mod player;
pub mod progress;
pub mod report;
pub mod series;
pub mod stats;
pub(crate) mod wire;
