//! The command line: `switchboard <group> <command> ...`.
//!
//! [`Command`] has one variant per subcommand group, and each group lives in its own module
//! with its own arguments and its own `run`. To add a group (`serve`, `flow ...`), add a module
//! here, a variant to [`Command`] and an arm to [`Cli::run`].
//!
//! Exit codes are shared by every command: 0 success, 1 the input was read but is not
//! acceptable (e.g. an invalid callflow), 2 the command could not do its job (unreadable
//! input, bad arguments; clap also exits 2 on a usage error).

mod call;
mod callflow;
mod campaign;
mod flow;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Switchboard: an IVR server for the 8x8 Voice platform.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommand groups.
#[derive(Debug, Subcommand)]
enum Command {
    /// Place one outbound call through a running server (POST /v1/calls).
    Call(Box<call::CallArgs>),
    /// Start, follow, control and export campaigns on a running server (/v1/campaigns).
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// Work with callflows, the JSON answers sent to the 8x8 platform.
    #[command(subcommand)]
    Callflow(callflow::CallflowCommand),
    /// Work with flows, the YAML IVR menus: check them, or play a call through one.
    #[command(subcommand)]
    Flow(flow::FlowCommand),
    /// Run the webhook server.
    Serve(Box<serve::ServeArgs>),
}

impl Cli {
    /// Runs the chosen command against the process's standard streams.
    pub(crate) fn run(self) -> ExitCode {
        match self.command {
            Command::Call(args) => call::run(*args),
            Command::Campaign(command) => command.run(),
            Command::Callflow(command) => command.run(),
            Command::Flow(command) => command.run(),
            Command::Serve(args) => serve::run(*args),
        }
    }
}

/// How a command ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: the input was read and is not acceptable.
    Rejected,
    /// Exit 2: the command could not do its job.
    Failed,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Rejected => ExitCode::from(1),
            Outcome::Failed => ExitCode::from(2),
        }
    }
}
