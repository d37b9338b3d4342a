//! `--compare A.json B.json`: two runs' JSON reports side by side, with the ratio B/A of every
//! figure, so a user checks that a new version (B) is not slower than the old one (A).
//!
//! The reports are read as plain JSON values, field by field, so a report written by an older
//! generator (without the newer fields) still compares. A row where B is more than
//! [`WORSE_BY`] worse than A (slower, less throughput, more errors) is marked `worse`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

/// How much worse than A a figure of B must be to be marked (10 %).
pub const WORSE_BY: f64 = 0.10;

/// Why two reports could not be compared.
#[derive(Debug, Error)]
pub enum CompareError {
    /// The file could not be read.
    #[error("--compare {}: cannot read it: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("--compare {}: not JSON ({source}); give a report written with --json", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and why.
        source: serde_json::Error,
    },
    /// The JSON is not a load generator report.
    #[error(
        "--compare {}: not a switchboard-loadgen report (it has no number at {field}); give a \
         report written with --json",
        path.display()
    )]
    NotAReport {
        /// The file.
        path: PathBuf,
        /// The missing field, as a JSON pointer.
        field: &'static str,
    },
}

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Lower,
    Higher,
    Neither,
}

/// Reads a report, checking that it is one.
fn read(path: &Path) -> Result<Value, CompareError> {
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
        path: path.to_owned(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|source| CompareError::Json {
        path: path.to_owned(),
        source,
    })?;
    for field in ["/elapsed_seconds", "/webhooks/sent", "/errors"] {
        if value.pointer(field).and_then(Value::as_f64).is_none() {
            return Err(CompareError::NotAReport {
                path: path.to_owned(),
                field,
            });
        }
    }
    Ok(value)
}

/// Reads both reports and renders the comparison.
pub fn compare_files(a: &Path, b: &Path) -> Result<String, CompareError> {
    let (ra, rb) = (read(a)?, read(b)?);
    Ok(compare(
        &a.display().to_string(),
        &ra,
        &b.display().to_string(),
        &rb,
    ))
}

/// The rows compared: label, JSON pointer, which way is better.
fn rows(a: &Value, b: &Value) -> Vec<(String, String, Better)> {
    let mut rows: Vec<(String, String, Better)> = [
        ("elapsed (s)", "/elapsed_seconds", Better::Neither),
        ("calls started", "/calls/started", Better::Neither),
        ("calls completed", "/calls/completed", Better::Neither),
        ("webhooks sent", "/webhooks/sent", Better::Neither),
        ("webhooks/s", "/webhooks/per_second", Better::Higher),
        ("errors", "/errors", Better::Lower),
        ("error rate", "/error_rate", Better::Lower),
    ]
    .into_iter()
    .map(|(label, pointer, better)| (label.to_owned(), pointer.to_owned(), better))
    .collect();
    let mut kinds: Vec<&String> = [a, b]
        .iter()
        .filter_map(|r| r.get("latency_ms").and_then(Value::as_object))
        .flat_map(|m| m.keys())
        .collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        for (q, name) in [
            ("p50", "p50"),
            ("p90", "p90"),
            ("p99", "p99"),
            ("p999", "p99.9"),
            ("max", "max"),
        ] {
            rows.push((
                format!("{kind} {name} (ms)"),
                format!("/latency_ms/{kind}/{q}"),
                Better::Lower,
            ));
        }
    }
    rows
}

fn number(report: &Value, pointer: &str) -> Option<f64> {
    report.pointer(pointer).and_then(Value::as_f64)
}

fn cell(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) if v.abs() < 0.01 => format!("{v:.4}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// The ratio B/A and whether B is worse by more than [`WORSE_BY`].
fn ratio(a: Option<f64>, b: Option<f64>, better: Better) -> (String, bool) {
    match (a, b) {
        (Some(a), Some(b)) if a == 0.0 && b == 0.0 => ("=".to_owned(), false),
        (Some(0.0), Some(_)) => ("new".to_owned(), better == Better::Lower),
        (Some(a), Some(b)) => {
            let r = b / a;
            let worse = match better {
                Better::Lower => r > 1.0 + WORSE_BY,
                Better::Higher => r < 1.0 - WORSE_BY,
                Better::Neither => false,
            };
            (format!("{r:.2}"), worse)
        }
        _ => ("-".to_owned(), false),
    }
}

/// The comparison of report `a` (named `name_a`) with `b`, as an aligned table.
pub fn compare(name_a: &str, a: &Value, name_b: &str, b: &Value) -> String {
    let mut out = format!("A: {name_a}\nB: {name_b}\n");
    let rows = rows(a, b);
    let width = rows.iter().map(|(l, ..)| l.len()).max().unwrap_or(0).max(6);
    let _ = writeln!(out, "{:<width$} {:>12} {:>12} {:>7}", "", "A", "B", "B/A");
    let mut worse = 0;
    for (label, pointer, better) in &rows {
        let (va, vb) = (number(a, pointer), number(b, pointer));
        if va.is_none() && vb.is_none() {
            continue;
        }
        let (r, is_worse) = ratio(va, vb, *better);
        worse += usize::from(is_worse);
        let _ = writeln!(
            out,
            "{label:<width$} {:>12} {:>12} {r:>7}{}",
            cell(va),
            cell(vb),
            if is_worse { "  worse" } else { "" }
        );
    }
    let _ = writeln!(
        out,
        "{}",
        if worse == 0 {
            format!(
                "B is nowhere worse than A by more than {:.0}%",
                WORSE_BY * 100.0
            )
        } else {
            format!(
                "B is worse than A by more than {:.0}% in {worse} figures",
                WORSE_BY * 100.0
            )
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report(per_second: f64, p99: f64, errors: u64) -> Value {
        json!({
            "elapsed_seconds": 10.0,
            "calls": {"started": 100, "completed": 100},
            "webhooks": {"sent": 400, "per_second": per_second},
            "errors": errors,
            "error_rate": errors as f64 / 400.0,
            "latency_ms": {"CALL_RECEIVED": {"count": 100, "p50": 1.0, "p90": 2.0, "p99": p99, "p999": 5.0, "max": 6.0}}
        })
    }

    #[test]
    fn ratios_are_b_over_a_and_regressions_are_marked() {
        let text = compare(
            "a.json",
            &report(40.0, 2.0, 0),
            "b.json",
            &report(20.0, 3.0, 0),
        );
        let row = |label: &str| {
            text.lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no {label} row in\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(row("webhooks/s"), "webhooks/s 40 20 0.50 worse");
        assert_eq!(
            row("CALL_RECEIVED p99 (ms)"),
            "CALL_RECEIVED p99 (ms) 2 3 1.50 worse"
        );
        assert_eq!(
            row("CALL_RECEIVED p50 (ms)"),
            "CALL_RECEIVED p50 (ms) 1 1 1.00"
        );
        assert_eq!(row("errors"), "errors 0 0 =");
        assert!(text.contains("in 2 figures"), "{text}");
        let same = compare("a", &report(40.0, 2.0, 0), "b", &report(41.0, 2.1, 0));
        assert!(same.contains("nowhere worse"), "{same}");
    }

    #[test]
    fn files_that_are_not_reports_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(&good, report(1.0, 1.0, 0).to_string()).unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "hello").unwrap();
        let other = dir.path().join("other.json");
        std::fs::write(&other, "{\"a\": 1}").unwrap();
        let err = compare_files(&good, &text).unwrap_err().to_string();
        assert!(err.contains("notes.txt: not JSON"), "{err}");
        let err = compare_files(&other, &good).unwrap_err().to_string();
        assert!(
            err.contains("other.json: not a switchboard-loadgen report"),
            "{err}"
        );
        assert!(err.contains("/elapsed_seconds"), "{err}");
        let err = compare_files(&dir.path().join("missing.json"), &good)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.json: cannot read it"), "{err}");
        assert!(
            compare_files(&good, &good)
                .unwrap()
                .contains("nowhere worse")
        );
    }
}
