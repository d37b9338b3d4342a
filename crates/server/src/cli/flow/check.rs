//! `switchboard flow check PATH...`: loads every flow file under the paths exactly as the
//! server does (`switchboard_runtime::catalog`) and prints one summary line per flow, or every
//! problem as `file:line:col: node 'x': message`. Flows are also checked against each other:
//! one id per flow, one flow per number.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use switchboard_flow::{Diagnostic, Flow, FlowSet, Severity};
use switchboard_runtime::catalog;

use super::{count, flow_files, is_read_error, read_reason};
use crate::cli::Outcome;

/// Arguments of `switchboard flow check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Flow files (.yaml, .yml, .json) or directories holding them.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
    /// Comma-separated environment variables fetch nodes may read as {{env.NAME}}, as the
    /// server's fetch_env setting allows.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    fetch_env: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// flow check

/// Checks every flow under `args.paths`; reports on `out`, and unreadable paths on `err`.
pub(crate) fn check(args: &CheckArgs, out: &mut dyn Write, err: &mut dyn Write) -> Outcome {
    let mut unreadable = false;
    let mut files = Vec::new();
    for path in &args.paths {
        match flow_files(path) {
            Ok(found) => files.extend(found),
            Err(reason) => {
                // If even stderr is gone there is nobody left to tell.
                let _ = writeln!(err, "switchboard: {reason}");
                unreadable = true;
            }
        }
    }
    // A file named twice (directly and through its directory) is checked once, or it would
    // clash with itself.
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));

    let mut report = Vec::new();
    let mut flows = Vec::new();
    for file in &files {
        let options = switchboard_flow::Options {
            fetch_env: args.fetch_env.clone(),
        };
        match catalog::load_with(std::slice::from_ref(file), &options) {
            Ok(loaded) => {
                for flow in &loaded.flows {
                    report.push(Line::Summary(summary(flow)));
                }
                report.extend(loaded.warnings.into_iter().map(Line::Diagnostic));
                flows.extend(loaded.flows);
            }
            Err(diagnostics) => {
                for diagnostic in diagnostics {
                    if is_read_error(&diagnostic) {
                        let _ = writeln!(
                            err,
                            "switchboard: cannot read flow file '{}': {}",
                            diagnostic.file,
                            read_reason(&diagnostic)
                        );
                        unreadable = true;
                    } else {
                        report.push(Line::Diagnostic(diagnostic));
                    }
                }
            }
        }
    }
    // Checks across files: only flows that compiled can clash.
    if let Err(clashes) = FlowSet::new(flows) {
        report.extend(clashes.into_iter().map(Line::Diagnostic));
    }

    let errors = report.iter().filter(|l| l.is_error()).count();
    let warnings = report.iter().filter(|l| l.is_warning()).count();
    let written = report
        .iter()
        .filter(|line| errors == 0 || !matches!(line, Line::Summary(_)))
        .try_for_each(|line| match line {
            Line::Summary(text) => writeln!(out, "{text}"),
            Line::Diagnostic(d) => writeln!(out, "{d}"),
        })
        .and_then(|()| {
            if errors > 0 {
                let warnings = match warnings {
                    0 => String::new(),
                    n => format!(" and {}", count(n, "warning")),
                };
                writeln!(
                    out,
                    "{}{warnings}: no flow was loaded",
                    count(errors, "error")
                )
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(reason) = written {
        let _ = writeln!(err, "switchboard: cannot write the result: {reason}");
        return Outcome::Failed;
    }
    if unreadable {
        Outcome::Failed
    } else if errors > 0 {
        Outcome::Rejected
    } else {
        Outcome::Success
    }
}

/// One line of `flow check`'s report.
enum Line {
    /// A flow that loaded.
    Summary(String),
    /// An error or a warning.
    Diagnostic(Diagnostic),
}

impl Line {
    fn is_error(&self) -> bool {
        matches!(self, Self::Diagnostic(d) if d.severity == Severity::Error)
    }

    fn is_warning(&self) -> bool {
        matches!(self, Self::Diagnostic(d) if d.severity == Severity::Warning)
    }
}

/// `flows/bank.yaml: ok: flow 'bank', 8 nodes, answers +6568889999 (version 1a2b3c4d)`.
fn summary(flow: &Flow) -> String {
    let numbers = if flow.numbers.is_empty() {
        "answers no number".to_owned()
    } else {
        format!("answers {}", flow.numbers.join(", "))
    };
    format!(
        "{}: ok: flow '{}', {}, {numbers} (version {})",
        flow.file,
        flow.id,
        count(flow.nodes.len(), "node"),
        flow.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reports_unreadable_paths_with_exit_2() {
        let args = CheckArgs {
            paths: vec![PathBuf::from("/nonexistent/flows")],
            fetch_env: Vec::new(),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(check(&args, &mut out, &mut err), Outcome::Failed);
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.starts_with("switchboard: cannot read '/nonexistent/flows': "),
            "{err}"
        );
    }
}
