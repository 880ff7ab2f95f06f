//! Stamps the binary with the commit it was built from, so a benchmark or
//! an incident report can tell which code ran (`--version`). Without a git
//! checkout (a container build context) it is `ECS_RECONCILER_COMMIT` from
//! the environment, or `unknown`.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ECS_RECONCILER_COMMIT");
    let commit = std::env::var("ECS_RECONCILER_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    // A new commit or a checkout moves HEAD or the ref it names; only paths
    // that exist are watched (a missing one would rerun this every build).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for path in ["HEAD", "packed-refs", "refs/heads"] {
            let path = Path::new(&dir).join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    println!("cargo:rustc-env=ECS_RECONCILER_COMMIT={commit}");
}
