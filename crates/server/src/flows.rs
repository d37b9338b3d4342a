//! Where the served flows come from, and reloading them.
//!
//! With no `flows` configured the server runs the bundled examples, compiled into the binary so
//! `switchboard serve` works from any directory. A reload reads the source again and swaps the
//! set in; a source that does not compile is reported and the previous flows keep serving.

use std::path::PathBuf;

use switchboard_flow::{Diagnostic, Flow, FlowSet, Options, compile_with};
use switchboard_runtime::catalog;

/// The bundled example flows: (file name, source).
pub const BUNDLED: &[(&str, &str)] = &[
    ("flows/bank.yaml", include_str!("../../../flows/bank.yaml")),
    (
        "flows/clinic.yaml",
        include_str!("../../../flows/clinic.yaml"),
    ),
    (
        "flows/restaurant.yaml",
        include_str!("../../../flows/restaurant.yaml"),
    ),
    (
        "flows/support.yaml",
        include_str!("../../../flows/support.yaml"),
    ),
    (
        "flows/verify.yaml",
        include_str!("../../../flows/verify.yaml"),
    ),
];

/// Where flows are read from, and what the server lets them use.
#[derive(Debug, Clone)]
pub struct FlowSource {
    origin: Origin,
    options: Options,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// The examples compiled into the binary.
    Bundled,
    /// A flow file or a directory of them.
    Path(PathBuf),
}

impl FlowSource {
    /// The source for a configured path (`None`: the bundled examples).
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            origin: path.map_or(Origin::Bundled, Origin::Path),
            options: Options::default(),
        }
    }

    /// The same source, compiled with `options` (the `fetch_env` allow-list).
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Reads and compiles every flow into a set; all problems of all files are returned
    /// together. `Ok` carries the warnings.
    pub fn load(&self) -> Result<(FlowSet, Vec<Diagnostic>), Vec<Diagnostic>> {
        let (flows, warnings) = self.compile()?;
        Ok((FlowSet::new(flows)?, warnings))
    }

    /// Loads the source again and returns `current` updated with it, keeping older versions for
    /// sessions in progress.
    pub fn reload(&self, current: &FlowSet) -> Result<(FlowSet, Vec<Diagnostic>), Vec<Diagnostic>> {
        let (flows, warnings) = self.compile()?;
        Ok((current.reload(flows)?, warnings))
    }

    fn compile(&self) -> Result<(Vec<Flow>, Vec<Diagnostic>), Vec<Diagnostic>> {
        match &self.origin {
            Origin::Path(path) => {
                let loaded = catalog::load_with(std::slice::from_ref(path), &self.options)?;
                Ok((loaded.flows, loaded.warnings))
            }
            Origin::Bundled => {
                let mut flows = Vec::new();
                let mut warnings = Vec::new();
                let mut errors = Vec::new();
                for (name, source) in BUNDLED {
                    match compile_with(source, name, &self.options) {
                        Ok(compiled) => {
                            warnings.extend(compiled.warnings);
                            flows.push(compiled.flow);
                        }
                        Err(diags) => errors.extend(diags),
                    }
                }
                if errors.is_empty() {
                    Ok((flows, warnings))
                } else {
                    Err(errors)
                }
            }
        }
    }

    /// A description for logs.
    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::Bundled => "the bundled example flows".to_owned(),
            Origin::Path(path) => path.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_flows_compile_without_warnings() {
        let (set, warnings) = FlowSource::new(None).load().expect("bundled flows compile");
        assert_eq!(set.len(), BUNDLED.len());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(set.for_number("+6568888888").is_some());
    }
}
