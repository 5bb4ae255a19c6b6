//! The malloc shim, `libbrk_pools_malloc.so` (the workspace's `malloc/`
//! package), built with cargo from the checkout these tools were compiled
//! in: one build of it per fit, each in a target folder of its own, so that
//! both stay built.
//!
//! The folder is `brk-pools-shim/FIT` under `$CARGO_TARGET_DIR` if that is
//! set, else under the checkout's `target/`. An installed `brk-pools` (no
//! checkout) takes the library's path instead (`brk-pools run --shim`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How the shim's heap finds a free block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// run.s's walk over every block (the default build).
    Walk,
    /// The `indexed-fit` feature: the same block, found through an index.
    Indexed,
}

impl Fit {
    /// The name used for its build folder and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Fit::Walk => "walk",
            Fit::Indexed => "indexed-fit",
        }
    }
}

/// The workspace this crate was compiled in.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tools package sits in the workspace")
        .to_path_buf()
}

/// Where the shim for `fit` is built.
pub fn target_dir(fit: Fit) -> PathBuf {
    let base = match std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => workspace_dir().join(dir),
        None => workspace_dir().join("target"),
    };
    base.join("brk-pools-shim").join(fit.name())
}

/// The shared library a build for `fit` makes.
pub fn library_path(fit: Fit) -> PathBuf {
    target_dir(fit)
        .join("release")
        .join("libbrk_pools_malloc.so")
}

/// The cargo command that builds the shim for `fit` (release profile).
pub fn build_command(fit: Fit) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "--release", "-p", "brk-pools-malloc"])
        .arg("--manifest-path")
        .arg(workspace_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir(fit));
    if fit == Fit::Indexed {
        command.args(["--features", "brk-pools/indexed-fit"]);
    }
    command
}

/// Builds the shim for `fit` if its sources changed (cargo decides; a few
/// tenths of a second when nothing did) and returns the library's path.
///
/// # Errors
/// A message with cargo's output when cargo cannot be run or fails.
pub fn build(fit: Fit) -> Result<PathBuf, String> {
    let mut command = build_command(fit);
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(library_path(fit))
}
