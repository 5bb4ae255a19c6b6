//! Running programs on the malloc shim in tests: the shim's two builds,
//! programs that may be missing, the heap summaries, and scratch folders.

#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use brk_pools_tools::heap_summary::{self, HeapSummary};
use brk_pools_tools::shim::{self, Fit};

/// Set by .ci/run: a program these tests need must be there (a missing one
/// fails the test instead of skipping it).
pub const REQUIRE_VARIABLE: &str = "BRK_POOLS_REQUIRE_PROGRAMS";

/// Both builds of the shim.
pub const FITS: [Fit; 2] = [Fit::Walk, Fit::Indexed];

/// The shim for `fit`, built once per test process (cargo, release).
pub fn shim_library(fit: Fit) -> &'static Path {
    static WALK: OnceLock<PathBuf> = OnceLock::new();
    static INDEXED: OnceLock<PathBuf> = OnceLock::new();
    let cell = match fit {
        Fit::Walk => &WALK,
        Fit::Indexed => &INDEXED,
    };
    cell.get_or_init(|| shim::build(fit).unwrap_or_else(|e| panic!("building the shim: {e}")))
}

/// Whether `program` can be run; if not, says so on stderr and returns
/// false, or panics when .ci/run requires the programs.
pub fn available(test: &str, program: &str) -> bool {
    if std::env::var_os("BRK_POOLS_SKIP_REAL_PROGRAMS").is_some() {
        eprintln!("{test}: skipped: BRK_POOLS_SKIP_REAL_PROGRAMS is set (tests/exercises.rs)");
        return false;
    }
    let found = Path::new(program).is_absolute() && Path::new(program).exists()
        || std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
        });
    if found {
        return true;
    }
    assert!(
        std::env::var_os(REQUIRE_VARIABLE).is_none(),
        "{test}: {program} is missing, and {REQUIRE_VARIABLE} requires it (.ci/run installs it)"
    );
    eprintln!("{test}: skipped: {program} is not installed");
    false
}

/// A folder of its own under the system's temporary folder, removed when
/// dropped.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> ScratchDir {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "brk-pools-test-{name}-{}-{n:04}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A program's output, and the heap summaries the shim wrote (by pid).
pub struct Run {
    pub output: Output,
    pub summaries: BTreeMap<u32, HeapSummary>,
    pub seconds: f64,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
}

/// Runs `command` on the shim for `fit` (None: on glibc's malloc), in
/// `dir`, with the summaries collected.
pub fn run_on(fit: Option<Fit>, mut command: Command) -> Run {
    let scratch = ScratchDir::new("run");
    let summaries = scratch.path().join("summaries");
    std::fs::create_dir(&summaries).unwrap();
    if let Some(fit) = fit {
        // Programs copy their environment into the heap (Perl's %ENV): the
        // same length of environment for both builds, so that the same
        // program makes the same heap on each (the shim by a link of one
        // name, in a scratch directory of one length).
        let shim = scratch.path().join("shim.so");
        std::os::unix::fs::symlink(shim_library(fit), &shim).unwrap();
        command
            .env("LD_PRELOAD", &shim)
            .env("BRK_POOLS_SUMMARY_DIR", &summaries);
    }
    let started = std::time::Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let seconds = started.elapsed().as_secs_f64();
    let mut parsed = BTreeMap::new();
    for entry in std::fs::read_dir(&summaries).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let summary = heap_summary::parse(&text).unwrap();
        parsed.insert(summary.pid, summary);
    }
    Run {
        output,
        summaries: parsed,
        seconds,
    }
}

/// `program` with `args`.
pub fn command<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Command {
    let mut command = Command::new(program);
    command.args(args);
    command
}

/// Where the workspace's files are.
pub fn workspace() -> PathBuf {
    shim::workspace_dir()
}

/// The name of a run for messages.
pub fn fit_name(fit: Option<Fit>) -> &'static str {
    fit.map_or("glibc", Fit::name)
}
