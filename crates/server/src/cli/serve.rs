//! `switchboard serve`: the webhook server.

use std::process::ExitCode;

use clap::Args;

/// Arguments of `switchboard serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {}

/// Runs the server until SIGTERM or SIGINT.
pub(crate) fn run(_args: ServeArgs) -> ExitCode {
    ExitCode::from(2)
}
