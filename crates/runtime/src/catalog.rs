//! Reading flows from disk: one file, or every `.yaml`, `.yml` and `.json` file of a directory,
//! compiled into a [`FlowSet`]. This is the I/O that `switchboard-flow` deliberately lacks.
//!
//! A directory's flow test files (`*.test.yaml`, `*.test.yml`, `*.test.json`: the cases
//! `switchboard flow test` runs, kept next to the flow) are not flows and are skipped.

use std::path::{Path, PathBuf};

use switchboard_flow::{Compiled, Diagnostic, Flow, FlowSet, Options, Severity, compile_with};

/// Flows loaded from a path, with the warnings they had.
#[derive(Debug)]
pub struct Loaded {
    /// The compiled flows, in path order.
    pub flows: Vec<Flow>,
    /// Warnings of all files.
    pub warnings: Vec<Diagnostic>,
}

/// Whether `file` is named like a flow test file (`*.test.yaml`, `*.test.yml`, `*.test.json`).
pub fn is_test_file(file: &Path) -> bool {
    file.file_stem()
        .and_then(|stem| stem.to_str())
        .is_some_and(|stem| stem.ends_with(".test"))
}

/// The flow files of `path`: the file itself, or the flow files of the directory (not its
/// flow test files), sorted.
pub fn flow_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
    if meta.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| io_error(path, &e))? {
        let entry = entry.map_err(|e| io_error(path, &e))?;
        let file = entry.path();
        let is_flow = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if is_flow && !is_test_file(&file) && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Diagnostic {
            file: path.display().to_string(),
            pos: Default::default(),
            severity: Severity::Error,
            node: None,
            message: "the directory holds no flow files (*.yaml, *.yml, *.json)".to_owned(),
        });
    }
    Ok(files)
}

/// Reads and compiles every flow under each path. All errors of all files are returned together.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, Vec<Diagnostic>> {
    load_with(paths, &Options::default())
}

/// [`load`] with the server's [`Options`] (the `fetch_env` allow-list).
pub fn load_with(paths: &[PathBuf], options: &Options) -> Result<Loaded, Vec<Diagnostic>> {
    let mut flows = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let files = match flow_files(path) {
            Ok(files) => files,
            Err(err) => {
                errors.push(err);
                continue;
            }
        };
        for file in files {
            let name = file.display().to_string();
            let source = match std::fs::read_to_string(&file) {
                Ok(source) => source,
                Err(err) => {
                    errors.push(io_error(&file, &err));
                    continue;
                }
            };
            match compile_with(&source, &name, options) {
                Ok(Compiled { flow, warnings: w }) => {
                    warnings.extend(w);
                    flows.push(flow);
                }
                Err(diags) => errors.extend(diags),
            }
        }
    }
    if errors.is_empty() {
        Ok(Loaded { flows, warnings })
    } else {
        errors.extend(warnings);
        Err(errors)
    }
}

/// Loads `paths` into a set (checking that no two flows share an id or a number).
pub fn load_set(paths: &[PathBuf]) -> Result<(FlowSet, Vec<Diagnostic>), Vec<Diagnostic>> {
    load_set_with(paths, &Options::default())
}

/// [`load_set`] with compile `options` (the server's `fetch_env`).
pub fn load_set_with(
    paths: &[PathBuf],
    options: &Options,
) -> Result<(FlowSet, Vec<Diagnostic>), Vec<Diagnostic>> {
    let loaded = load_with(paths, options)?;
    let set = FlowSet::new(loaded.flows)?;
    Ok((set, loaded.warnings))
}

fn io_error(path: &Path, err: &std::io::Error) -> Diagnostic {
    Diagnostic {
        file: path.display().to_string(),
        pos: Default::default(),
        severity: Severity::Error,
        node: None,
        message: format!("cannot read: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_s_flow_test_files_are_not_flows() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let flow = "id: one\nstart: bye\nnodes:\n  bye: { say: \"Bye.\", next: hangup }\n";
        std::fs::write(dir.join("one.yaml"), flow).unwrap();
        // Not a flow: loading it as one would fail on every key.
        std::fs::write(dir.join("one.test.yaml"), "flow: one.yaml\ncases: []\n").unwrap();
        std::fs::write(dir.join("two.test.json"), "{}").unwrap();
        let files = flow_files(&dir).unwrap();
        assert_eq!(files, vec![dir.join("one.yaml")]);
        let loaded = load(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(loaded.flows.len(), 1);
        assert!(is_test_file(Path::new("flows/restaurant.test.yaml")));
        assert!(!is_test_file(Path::new("flows/restaurant.yaml")));
        assert!(!is_test_file(Path::new("flows/test.yaml")));
    }
}
