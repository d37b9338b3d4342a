//! Records the commit the binary is built from, for `switchboard_build_info` and `--version`
//! logs. Outside a git checkout (a source tarball) the commit is `unknown`.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if let Some(commit) = commit {
        println!("cargo:rustc-env=SWITCHBOARD_GIT_COMMIT={commit}");
    }
    // Rebuild when HEAD moves (a commit or a checkout), not on every file change.
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
}
