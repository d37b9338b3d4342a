//! `switchboard flow ...`: tools for flow authors.

use std::process::ExitCode;

use clap::Subcommand;

/// The `flow` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum FlowCommand {}

impl FlowCommand {
    /// Runs the command.
    pub(crate) fn run(self) -> ExitCode {
        match self {}
    }
}
