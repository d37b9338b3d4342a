//! Records the commit the binary is built from, for `switchboard_build_info` and `--version`
//! logs. Outside a git checkout (a source tarball) the commit is `unknown`.
//!
//! The build reruns when this checkout's HEAD moves (a commit or a checkout), and only then:
//! it watches the HEAD file and the branch HEAD names (or `packed-refs`, where git packed it),
//! as git itself locates them, so a commit on another branch or in another worktree of the
//! same repository does not rebuild the server.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return;
    };
    println!("cargo:rustc-env=SWITCHBOARD_GIT_COMMIT={commit}");
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        let loose = git(&["rev-parse", "--git-path", &branch]);
        let packed = git(&["rev-parse", "--git-path", "packed-refs"]);
        match loose {
            Some(path) if Path::new(&path).exists() => watched.push(Some(path)),
            _ => watched.push(packed),
        }
    }
    for path in watched.into_iter().flatten() {
        println!("cargo:rerun-if-changed={path}");
    }
}
