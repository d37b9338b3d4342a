//! `switchboard callflow ...`: tools for callflow JSON.
//!
//! `switchboard callflow validate [--api] [--strict] [--clid N,...] FILE|-` checks one callflow
//! with the same validator the server uses for its answers
//! (`switchboard_protocol::validate_slice_with`) and prints what the 8x8 platform would say:
//! one `CODE JSONPATH: message` line per error and one `warning: CODE JSONPATH: message` line
//! per warning, sorted by path, then `1 Created` when there is no error. Warnings alone exit 0;
//! `--strict` makes them errors. Reading the input and the clock are the only I/O here, so
//! [`validate`] takes the input and output streams as arguments and is tested without a
//! process.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Subcommand};
use switchboard_protocol::{Mode, Rules, StatusCode, SubAccountId, validate_slice_with};

use super::Outcome;

/// The `callflow` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CallflowCommand {
    /// Check a callflow against every rule of the 8x8 platform; exit 0 if valid (warnings
    /// allowed), 1 if not.
    Validate(ValidateArgs),
}

/// Arguments of `switchboard callflow validate`.
#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Validate as a Callflows API request (outbound call): the first action must be makeCall,
    /// and validUntil and clientRequestId are allowed. Default: a webhook answer.
    #[arg(long)]
    api: bool,
    /// Report warnings (equal digitTimeout and overallTimeout, an action after sayAndCapture)
    /// as errors.
    #[arg(long)]
    strict: bool,
    /// Comma-separated caller ids whitelisted for the sub-account: a makeCall source outside
    /// them is -1014. Unset: sources are not checked (only the platform knows the list).
    #[arg(long, value_name = "NUMBERS", value_delimiter = ',')]
    clid: Option<Vec<String>>,
    /// The sub-account the Callflows API request is for (the {subAccountId} of its URL):
    /// checked to be 3 to 50 letters, digits or `-._&`.
    #[arg(long, value_name = "ID", requires = "api")]
    sub_account: Option<String>,
    /// The callflow JSON file, or `-` for standard input.
    #[arg(value_name = "FILE|-")]
    file: PathBuf,
}

impl CallflowCommand {
    /// Runs the command against the process's standard streams.
    pub(crate) fn run(self) -> ExitCode {
        match self {
            Self::Validate(args) => validate(
                &args,
                &mut io::stdin().lock(),
                &mut io::stdout().lock(),
                &mut io::stderr().lock(),
            )
            .into(),
        }
    }
}

/// Reads one callflow from the file named in `args` (or `stdin` for `-`), validates it and
/// reports on `out`; a failure to read or write is reported on `err`.
pub(crate) fn validate(
    args: &ValidateArgs,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Outcome {
    let body = match read_input(&args.file, stdin) {
        Ok(body) => body,
        Err(reason) => {
            // If even stderr is gone there is nobody left to tell.
            let _ = writeln!(err, "switchboard: {reason}");
            return Outcome::Failed;
        }
    };
    let rules = Rules {
        mode: if args.api { Mode::Api } else { Mode::Webhook },
        strict: args.strict,
        caller_ids: args.clid.as_deref(),
        now: Some(Utc::now()),
    };
    let violations = validate_slice_with(&body, &rules);
    // The request's URL is part of it: a bad sub-account id refuses it like a bad body.
    let bad_sub_account = args
        .sub_account
        .as_deref()
        .and_then(|id| SubAccountId::new(id).err());
    let valid = bad_sub_account.is_none() && !violations.iter().any(|v| v.is_error());
    let written = bad_sub_account
        .map_or(Ok(()), |reason| writeln!(out, "--sub-account: {reason}"))
        // Sorted by path already: the validator's contract. A warning's line starts `warning: `.
        .and_then(|()| {
            violations
                .iter()
                .try_for_each(|violation| writeln!(out, "{violation}"))
        })
        .and_then(|()| {
            if valid {
                let created = StatusCode::Created;
                writeln!(out, "{created} {}", created.message())
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(reason) = written {
        let _ = writeln!(err, "switchboard: cannot write the result: {reason}");
        return Outcome::Failed;
    }
    if valid {
        Outcome::Success
    } else {
        Outcome::Rejected
    }
}

/// The bytes of the callflow, or a sentence saying what could not be read and why.
fn read_input(file: &Path, stdin: &mut dyn Read) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    if file == Path::new("-") {
        stdin
            .read_to_end(&mut body)
            .map_err(|err| format!("cannot read a callflow from standard input: {err}"))?;
    } else {
        body = std::fs::read(file)
            .map_err(|err| format!("cannot read callflow file '{}': {err}", file.display()))?;
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(file: &str, api: bool, stdin: &str) -> (Outcome, String, String) {
        let args = ValidateArgs {
            api,
            strict: false,
            clid: None,
            sub_account: None,
            file: PathBuf::from(file),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let outcome = validate(&args, &mut stdin.as_bytes(), &mut out, &mut err);
        (
            outcome,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn valid_callflow_from_stdin() {
        let got = run("-", false, r#"{"callflow":[{"action":"hangup"}]}"#);
        assert_eq!(got, (Outcome::Success, "1 Created\n".into(), String::new()));
    }

    #[test]
    fn api_mode_needs_make_call_first() {
        let got = run("-", true, r#"{"callflow":[{"action":"hangup"}]}"#);
        assert_eq!(got.0, Outcome::Rejected);
        assert_eq!(
            got.1,
            "-1013 $.callflow[0].action: the first action of a Callflows API request must be makeCall\n"
        );
    }

    #[test]
    fn warnings_alone_are_printed_and_the_callflow_is_created() {
        let equal = r#"{"callflow":[{"action":"sayAndCapture","params":{"promptMessage":"PIN?","voiceProfile":"en-US-ZiraRUS","digitTimeout":5000,"overallTimeout":5000}}]}"#;
        let (outcome, out, err) = run("-", false, equal);
        assert_eq!(outcome, Outcome::Success);
        assert_eq!(
            out,
            "warning: -1006 $.callflow[0].params.overallTimeout: equals digitTimeout (5000); the platform's rule is that it must be greater, so make it larger\n1 Created\n"
        );
        assert_eq!(err, "");
    }

    #[test]
    fn unreadable_file_names_the_file_and_the_reason() {
        let (outcome, out, err) = run("/nonexistent/switchboard/flow.json", false, "");
        assert_eq!(outcome, Outcome::Failed);
        assert_eq!(out, "");
        assert!(
            err.starts_with(
                "switchboard: cannot read callflow file '/nonexistent/switchboard/flow.json': "
            ),
            "{err}"
        );
    }

    #[test]
    fn a_closed_output_is_a_failure_not_a_panic() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let args = ValidateArgs {
            api: false,
            strict: false,
            clid: None,
            sub_account: None,
            file: PathBuf::from("-"),
        };
        let mut err = Vec::new();
        let outcome = validate(&args, &mut "{}".as_bytes(), &mut Closed, &mut err);
        assert_eq!(outcome, Outcome::Failed);
        assert!(
            String::from_utf8(err)
                .unwrap()
                .starts_with("switchboard: cannot write the result: ")
        );
    }
}
