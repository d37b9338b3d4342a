//! `switchboard flow ...`: tools for flow authors, one module per subcommand.
//!
//! * [`check`]: `flow check PATH...` loads every flow file under the paths exactly as the
//!   server does and prints one summary line per flow, or every problem.
//! * [`simulate`]: `flow simulate FILE` plays a call through a flow in the terminal.
//! * [`graph`]: `flow graph FILE` draws the flow (SVG, Mermaid, DOT), with a live funnel from
//!   a server's report.
//! * [`test`](mod@test): `flow test PATH...` runs the cases of `*.test.yaml` files against their flows.
//!
//! Every command takes its streams as arguments and is tested without a process. Exit codes
//! are the CLI's (see the parent module): 0 fine, 1 the flow is wrong (or produced an invalid
//! callflow), 2 the command could not do its job.

mod check;
mod graph;
mod simulate;
mod test;

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Utc;
use clap::Subcommand;
use switchboard_flow::yaml::Pos;
use switchboard_flow::{Diagnostic, Flow, Target};
use switchboard_runtime::catalog;

/// The `flow` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum FlowCommand {
    /// Check flow files (or directories of them) as the server would load them; exit 0 if all
    /// are valid, 1 if not.
    Check(check::CheckArgs),
    /// Play a call through a flow: what the caller hears, the keys it expects, transfers, and
    /// (with --json) the callflow JSON sent to 8x8.
    Simulate(simulate::SimulateArgs),
    /// Draw a flow as a graph (SVG, Mermaid or DOT): a box per node, an arrow per key and
    /// result, unreachable nodes flagged; with --report, visits and drop-off per node.
    Graph(graph::GraphArgs),
    /// Run a flow's test cases (*.test.yaml next to the flow): one line per case, a diff for
    /// each failure, coverage per flow; exit 1 if a case fails.
    Test(test::TestArgs),
}

impl FlowCommand {
    /// Runs the command against the process's standard streams.
    pub(crate) fn run(self) -> ExitCode {
        let (mut out, mut err) = (io::stdout().lock(), io::stderr().lock());
        match self {
            Self::Check(args) => check::check(&args, &mut out, &mut err),
            Self::Graph(args) => graph::graph(&args, &mut out, &mut err),
            Self::Test(args) => test::test(&args, &mut out, &mut err),
            Self::Simulate(args) => simulate::simulate(
                &args,
                &mut io::stdin().lock(),
                &mut out,
                &mut err,
                Utc::now(),
            ),
        }
        .into()
    }
}

pub(super) fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The flow files of a path, or a sentence saying why there are none.
pub(super) fn flow_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if let Err(reason) = std::fs::metadata(path) {
        return Err(format!("cannot read '{}': {reason}", path.display()));
    }
    catalog::flow_files(path).map_err(|d| {
        if is_read_error(&d) {
            format!("cannot read '{}': {}", d.file, read_reason(&d))
        } else {
            format!("nothing to check in '{}': {}", d.file, d.message)
        }
    })
}

/// Whether a catalog diagnostic is about reading the disk rather than about a flow: those are
/// the only ones without a position.
pub(super) fn is_read_error(diagnostic: &Diagnostic) -> bool {
    diagnostic.pos == Pos::default() && diagnostic.message.starts_with("cannot read")
}

pub(super) fn read_reason(diagnostic: &Diagnostic) -> &str {
    diagnostic
        .message
        .strip_prefix("cannot read: ")
        .unwrap_or(&diagnostic.message)
}

pub(super) fn target_name(flow: &Flow, target: Target) -> String {
    match target {
        Target::Node(id) => flow.node(id).name.clone(),
        Target::Hangup => "hangup".to_owned(),
        Target::Back => "back".to_owned(),
        Target::Return => "return".to_owned(),
    }
}
