//! The Switchboard server: the HTTP front the 8x8 platform posts webhooks to, its
//! configuration, and the wiring that puts the runtime behind it.
//!
//! # Layout
//! * [`config`]: the one typed [`Config`], merged from defaults, a TOML file, `SWITCHBOARD_*`
//!   variables and flags.
//! * [`flows`]: where flows come from: the bundled examples or a file/directory, and reloads.
//! * [`http`]: the axum router (`fn app(state) -> Router`): webhooks, health, the admin API,
//!   authentication, and the JSON error type.
//! * [`campaign`]: campaigns, lists of callees dialled at a pace, with retries and windows.
//! * [`graph`]: a flow as a picture: SVG laid out here, Mermaid and DOT.
//! * [`outbound`]: placing outbound calls (`POST /v1/calls`) through the Callflows API.
//! * [`server`]: assembling store, runtime and listeners, and the graceful shutdown.
//! * [`logs`]: where log lines go (stderr, written in batches by a thread of their own).
//! * [`conn`]: serving a shard's connections with hyper under [`conn::HttpLimits`] (header
//!   size and count, header-read timeout); the acceptor caps open connections.
//!
//! The `switchboard` binary (`src/main.rs`, `src/cli`) only parses arguments and calls in here.

mod accept;
pub mod campaign;
pub mod config;
pub mod conn;
pub mod flows;
pub mod graph;
pub mod http;
pub mod logs;
pub mod outbound;
pub mod server;

pub use config::Config;
