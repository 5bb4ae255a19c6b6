//! The checked solutions of docs/exercises.md. Each test copies the crate
//! (without `target/` and `.git/`) into `target/exercises/crate/`, applies the
//! exercise's patch from `docs/exercises/` with `git apply`, runs the whole
//! `cargo test --release --no-fail-fast` there, and requires that the test
//! targets the exercise says it breaks fail, and every other one (including
//! the test the patch adds) passes. One target may fail or not, depending on
//! the process's memory layout; docs/exercises.md says which and why.
//!
//! Slow (a release build of the crate per exercise), so ignored by default:
//!
//! ```text
//! cargo test --release --test exercises -- --ignored --test-threads=1
//! ```
//!
//! One fast test is not ignored: every patch still applies to the checkout
//! (`git apply --check`), so a change to the code a solution touches fails
//! the default `cargo test` rather than only the slow check.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use support::root;

/// The solution patches, sorted by name.
fn patches() -> Vec<PathBuf> {
    let mut patches: Vec<PathBuf> = std::fs::read_dir(root().join("docs/exercises"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "patch"))
        .collect();
    patches.sort();
    patches
}

/// Says why a test did not run where `cargo test` shows it even without
/// `--nocapture` (the test harness captures `println!` and `eprintln!`, not
/// writes to the stderr handle).
fn skipped(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}");
}

/// The top of the git checkout the crate is in, if it is the crate's root
/// folder itself. None without git, outside a checkout, or in a copy of the
/// crate inside another checkout (the scratch copies the tests below make
/// lie in this repository's `target/`, with a patch already applied).
fn checkout_root(test: &str) -> Option<PathBuf> {
    let output = match Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(root())
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            skipped(test, &format!("git does not run ({e})"));
            return None;
        }
    };
    let top = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !output.status.success() || !same(&top, &root()) {
        skipped(
            test,
            &format!("{} is not the top of a git checkout", root().display()),
        );
        return None;
    }
    Some(top)
}

/// Every solution patch applies to the checkout as it is now.
#[test]
fn every_solution_patch_applies() {
    let Some(top) = checkout_root("every_solution_patch_applies") else {
        return;
    };
    let patches = patches();
    assert_eq!(
        patches.len(),
        4,
        "docs/exercises/ has one patch per exercise: {patches:?}"
    );
    let failures: Vec<String> = patches
        .iter()
        .filter_map(|patch| {
            let check = Command::new("git")
                .args(["apply", "--check"])
                .arg(patch)
                .current_dir(&top)
                .output()
                .unwrap();
            (!check.status.success()).then(|| {
                format!(
                    "{}:\n{}",
                    patch.display(),
                    String::from_utf8_lossy(&check.stderr)
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "solution patches that no longer apply (make the change again on \
         today's code and save it with `git diff`, docs/exercises.md):\n{}",
        failures.join("\n")
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Applies `patch` to a fresh copy of the crate, runs the whole test suite
/// there and returns the test targets that failed, as cargo names them
/// (`--test scenarios`, `--lib`, `--doc`), without the package.
fn failing_targets_with(patch: &str) -> BTreeSet<String> {
    // One copy at one path, one exercise at a time: with the same path the
    // crate's build artefacts have the same names, so a test of one exercise
    // can never pick up another exercise's `libbrk_pools-*.a` (the C tests
    // link the newest one they find), and the dependencies build once.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let base = root().join("target").join("exercises");
    let copy = base.join("crate");
    if copy.exists() {
        std::fs::remove_dir_all(&copy).unwrap();
    }
    copy_tree(&root(), &copy);
    // The copy lies inside this repository's `target/`: without the ceiling,
    // git would find the enclosing repository and silently skip every path
    // of the patch (they are ignored files there).
    let git_apply = |extra: &[&str]| {
        Command::new("git")
            .arg("apply")
            .args(extra)
            .arg(root().join("docs/exercises").join(patch))
            .current_dir(&copy)
            .env("GIT_CEILING_DIRECTORIES", &base)
            .output()
            .unwrap()
    };
    let applied = git_apply(&[]);
    assert!(
        applied.status.success(),
        "git apply {patch}: {}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let reverse = git_apply(&["--reverse", "--check"]);
    assert!(
        reverse.status.success(),
        "{patch} did not apply: {}",
        String::from_utf8_lossy(&reverse.stderr)
    );
    let output = Command::new(env!("CARGO"))
        .args(["test", "--release", "--no-fail-fast"])
        .current_dir(&copy)
        .env("CARGO_TARGET_DIR", base.join("target"))
        // Failing snapshots are the report; nothing is written.
        .env("INSTA_UPDATE", "no")
        .env_remove("BRK_POOLS_CACHE_DIR")
        // Real programs on a changed heap say nothing about the exercise
        // and can take hours (a checked free that walks, under CPython):
        // they skip there.
        .env("BRK_POOLS_SKIP_REAL_PROGRAMS", "1")
        .env_remove("BRK_POOLS_REQUIRE_PROGRAMS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The whole run, to read why a target failed.
    let log = base.join(patch.replace(".patch", ".log"));
    std::fs::write(&log, format!("{stdout}\n{stderr}")).unwrap();
    assert!(
        stdout.contains("test result:"),
        "{patch}: the tests did not run:\n{stderr}"
    );
    let failed: BTreeSet<String> = stderr
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix('`')
                .and_then(|l| l.strip_suffix('`'))
                // In the workspace cargo names the package first:
                // `-p brk-pools-tools --test cli`.
                .map(|t| match t.strip_prefix("-p ") {
                    Some(rest) => rest.split_once(' ').map_or(rest, |(_, target)| target),
                    None => t,
                })
                .filter(|t| t.starts_with("--"))
                .map(str::to_string)
        })
        .collect();
    println!(
        "{patch}: failing targets {failed:?} (log: {})",
        log.display()
    );
    failed
}

/// The step viewer's browser test: where Chromium is installed it fails with
/// `--test step` when step cannot find a changed walk, or when the machines'
/// registers differ (the page opens on the first difference); without
/// Chromium it skips.
const BROWSER: &str = "--test browser";

fn targets(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The real programs on the malloc shim (tools/tests): a changed heap may
/// change what they see (the shim's walk figures assume blocks that are
/// never split or merged), so no exercise is judged by them.
const REAL_PROGRAM_TARGETS: &[&str] = &["--test everyday_programs", "--test cpython_suite"];

/// Every target in `must` failed, and nothing outside `must`, `may` and
/// [`REAL_PROGRAM_TARGETS`].
fn assert_breaks(patch: &str, must: &[&str], may: &[&str]) {
    let failed = failing_targets_with(patch);
    let must = targets(must);
    let allowed: BTreeSet<String> = must
        .union(&targets(may))
        .cloned()
        .chain(targets(REAL_PROGRAM_TARGETS))
        .collect();
    assert!(
        must.is_subset(&failed) && failed.is_subset(&allowed),
        "{patch}: failed {failed:?}, expected {must:?} (and perhaps {may:?})"
    );
}

#[test]
#[ignore = "builds the crate in a scratch copy; see the module docs"]
fn exercise_1_split() {
    assert_breaks(
        "1-split.patch",
        &[
            "--test cli",
            "--test differential",
            "--test machine_code",
            "--test pools_props",
            "--test scenarios",
            "--test step",
            "--test walkthrough",
        ],
        &["--test single_threaded", BROWSER],
    );
}

#[test]
#[ignore = "builds the crate in a scratch copy; see the module docs"]
fn exercise_2_coalesce() {
    assert_breaks(
        "2-coalesce.patch",
        &[
            "--test batched",
            "--test cli",
            "--test differential",
            "--test first_fit_model",
            "--test machine_code",
            "--test pools_props",
            "--test scenarios",
            "--test step",
            "--test walkthrough",
        ],
        &[BROWSER],
    );
}

#[test]
#[ignore = "builds the crate in a scratch copy; see the module docs"]
fn exercise_3_skip_free_blocks() {
    assert_breaks(
        "3-skip-free.patch",
        &[
            "--test cli",
            "--test machine_code",
            "--test step",
            "--test walkthrough",
        ],
        &[BROWSER],
    );
}

#[test]
#[ignore = "builds the crate in a scratch copy; see the module docs"]
fn exercise_4_round_sizes() {
    assert_breaks(
        "4-round.patch",
        &[
            "--test cli",
            "--test differential",
            "--test faults",
            "--test hostile_source",
            "--test pools",
            "--test pools_props",
            "--test scenarios",
            "--test single_threaded",
            "--test step",
        ],
        &[BROWSER],
    );
}
