//! `brk-pools step`: the walks of run.s and of the port, instruction by
//! instruction under ptrace, must agree on every scenario and on seeded
//! random scripts; the limit and the picture work from the command line.
//!
//! The drivers are `asm/trace.c` linked with run.s (`-no-pie`) and with this
//! build's `libbrk_pools.a` (PIE: so the tracer's load-bias path is tested
//! too). `BRK_POOLS_STEP_SCRIPTS=N` adds N longer random scripts
//! (see docs/tools.md for the command and its time).
//!
//! The mutation test (`jb` -> `jbe` in the port's `allocate_loop`, built in
//! a scratch copy of the crate) is `--ignored`: it builds the crate again.
//!
//! All of this is about the default build, whose allocate is the asm walk.
//! Built with `--features indexed-fit` there is no walk to step: each test
//! says it skips, and one checks that the command refuses clearly.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use brk_pools_tools::step::{self, Comparison, Drivers};
use support::{Allocator, Rng, root, staticlib, trace_driver};

/// False (after saying so) in an `indexed-fit` build, where these tests
/// do not apply.
fn walk_build(test: &str) -> bool {
    if brk_pools::build_info::INDEXED_FIT {
        eprintln!(
            "{test}: skipped: stepping compares run.s's walk with the port's, and this build \
             (--features indexed-fit) has no walk; run it without that feature"
        );
        return false;
    }
    true
}

fn drivers() -> &'static Drivers {
    static DRIVERS: OnceLock<Drivers> = OnceLock::new();
    DRIVERS.get_or_init(|| {
        Drivers::load(
            trace_driver(Allocator::Original),
            trace_driver(Allocator::Port),
        )
        .expect("both drivers load")
    })
}

/// `--compare` on `script`: the number of instructions compared and of
/// single steps taken (both sides), or a panic naming the first difference.
fn identical_steps(name: &str, script: &str) -> (usize, u64) {
    let outcome = drivers()
        .run(script, step::DEFAULT_MAX_STEPS, false)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    match outcome.compare() {
        Comparison::Identical { instructions, .. } => {
            (instructions, outcome.steps.original + outcome.steps.port)
        }
        difference => panic!("{name}:\n{difference}\nscript:\n{script}"),
    }
}

/// [`identical_steps`], the instructions compared only.
fn identical(name: &str, script: &str) -> usize {
    identical_steps(name, script).0
}

fn scenario_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("tests/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ops"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_steps_identically() {
    if !walk_build("every_scenario_steps_identically") {
        return;
    }
    let mut total = 0;
    for file in scenario_files() {
        let script = std::fs::read_to_string(&file).unwrap();
        let compared = identical(&file.display().to_string(), &script);
        assert!(compared > 0, "{}: nothing was compared", file.display());
        eprintln!("{}: {compared} instructions", file.display());
        total += compared;
    }
    eprintln!("scenarios: {total} instructions compared");
}

fn pool(rng: &mut Rng) -> i32 {
    match rng.below(16) {
        0 => -1,
        1 => i32::MAX,
        2 => 0,
        n => (n % 5) as i32,
    }
}

fn size(rng: &mut Rng) -> i32 {
    (match rng.below(10) {
        0 => 0,
        1..=6 => rng.below(64),
        7..=8 => rng.below(1024),
        _ => rng.below(70_000),
    }) as i32
}

/// A seeded script of `ops` operations: allocates, frees (stale and double
/// ones too) and pool releases, so that walks skip blocks in use and too
/// small, reuse exact fits and reach the end.
fn random_script(seed: u64, ops: u64) -> String {
    let mut rng = Rng(seed);
    let mut out = format!("# step, seed {seed}\n");
    let mut handles = 0;
    for _ in 0..ops {
        let roll = rng.below(100);
        if roll < 55 || handles == 0 {
            out.push_str(&format!("a {} {}\n", pool(&mut rng), size(&mut rng)));
            handles += 1;
        } else if roll < 85 {
            out.push_str(&format!("d {}\n", rng.below(handles)));
        } else {
            out.push_str(&format!("p {}\n", pool(&mut rng)));
        }
    }
    out
}

#[test]
fn short_random_scripts_step_identically() {
    if !walk_build("short_random_scripts_step_identically") {
        return;
    }
    let mut total = 0;
    for seed in 1..=30 {
        let script = random_script(seed, 10 + seed % 30);
        total += identical(&format!("seed {seed}"), &script);
    }
    eprintln!("30 random scripts: {total} instructions compared");
}

#[test]
fn longer_random_scripts_step_identically_behind_an_env_variable() {
    if !walk_build("longer_random_scripts_step_identically_behind_an_env_variable") {
        return;
    }
    let count: u64 = std::env::var("BRK_POOLS_STEP_SCRIPTS")
        .ok()
        .map(|v| v.parse().expect("BRK_POOLS_STEP_SCRIPTS is a number"))
        .unwrap_or(0);
    let started = std::time::Instant::now();
    let (mut total, mut steps) = (0, 0);
    for seed in 1000..1000 + count {
        let script = random_script(seed, 100 + seed % 200);
        let (compared, stepped) = identical_steps(&format!("seed {seed}"), &script);
        total += compared;
        steps += stepped;
    }
    eprintln!(
        "{count} longer random scripts: {total} instructions compared, {steps} single steps, in {:.1?}",
        started.elapsed()
    );
}

fn brk_pools(args: &[&str]) -> std::process::Output {
    support::brk_pools_command().args(args).output().unwrap()
}

fn seed_ops() -> String {
    root()
        .join("tests/scenarios/seed.ops")
        .display()
        .to_string()
}

#[test]
fn the_command_lists_both_sides_and_compares() {
    if !walk_build("the_command_lists_both_sides_and_compares") {
        return;
    }
    let lib = staticlib().display().to_string();
    let output = brk_pools(&["step", &seed_ops(), "--port-lib", &lib]);
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{listing}");
    assert!(
        listing.starts_with("op 0 (line 5: a 1 400): allocate(1, 400)\n"),
        "{listing}"
    );
    assert!(
        listing.contains("allocate_loop        je allocate_move_break       ZF=1 taken"),
        "{listing}"
    );
    assert!(listing.contains("xorl %eax, %eax"), "{listing}");

    let output = brk_pools(&["step", &seed_ops(), "--compare", "--port-lib", &lib]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "identical: 65 instructions over 5 operations\n"
    );
}

#[test]
fn the_command_says_it_does_not_apply_to_an_indexed_fit_build() {
    if !brk_pools::build_info::INDEXED_FIT {
        return; // the other tests here step the default build
    }
    let output = brk_pools(&["step", &seed_ops()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("step does not apply to this build")
            && stderr.contains("--features indexed-fit"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn the_listing_fits_100_columns_and_shows_run_s_s_break_move() {
    if !walk_build("the_listing_fits_100_columns_and_shows_run_s_s_break_move") {
        return;
    }
    let lib = staticlib().display().to_string();
    let output = brk_pools(&["step", &seed_ops(), "--port-lib", &lib]);
    assert!(output.status.success());
    let listing = String::from_utf8(output.stdout).unwrap();
    let widest = listing.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= 100, "{widest} columns:\n{listing}");
    // run.s's break move, row by row, before the header stores.
    for line in [
        "~    8 run.s allocate_move_break  movq %rcx, %r8               rcx=+0x1b0 r8:=+0x1b0",
        "~   11 run.s allocate_move_break  movq %rdi, memory_end        rdi=+0x1f0",
        "~   13 run.s allocate_move_break  syscall",
        "             rcx:=(return address) rdi=+0x1f0 rax:=+0x1f0",
        "~   14 port  allocate_loop        xorl %eax, %eax              rax:=0",
        "    15 both  allocate_move_break  movq $1, (%r8)               r8=+0x1b0",
    ] {
        assert!(
            listing.contains(&format!("\n{line}\n")),
            "{line:?} in\n{listing}"
        );
    }
    // --wide is the side-by-side; --op lists one operation.
    let wide = brk_pools(&["step", &seed_ops(), "--wide", "--port-lib", &lib]);
    let wide = String::from_utf8(wide.stdout).unwrap();
    assert!(wide.lines().any(|l| l.chars().count() > 140), "{wide}");
    let one = brk_pools(&["step", &seed_ops(), "--op", "3", "--port-lib", &lib]);
    let one = String::from_utf8(one.stdout).unwrap();
    assert!(
        one.starts_with("op 3 (line 8: p 2): deallocate_pool(2)\n"),
        "{one}"
    );
    assert_eq!(one.matches("\nop ").count(), 0, "{one}");
}

#[test]
fn arguments_that_cannot_be_stepped_are_refused() {
    if !walk_build("arguments_that_cannot_be_stepped_are_refused") {
        return;
    }
    let lib = staticlib().display().to_string();
    let refused = |args: &[&str], says: &str| {
        let output = brk_pools(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    refused(
        &["step", &seed_ops(), "--op", "5", "--port-lib", &lib],
        "there is no operation 5: the script has 5 (numbered from 0)",
    );
    refused(
        &["step", &seed_ops(), "--max-steps", "0", "--port-lib", &lib],
        "invalid value '0' for '--max-steps <N>'",
    );
    let dir = support::profile_dir().join("step-test");
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.ops");
    std::fs::write(&empty, "# only a comment\n\n").unwrap();
    refused(
        &["step", empty.to_str().unwrap(), "--port-lib", &lib],
        "the script has no operations",
    );
}

/// The viewer pages in docs/step/ are what `step --html` writes for their
/// scenarios today, byte for byte.
#[test]
fn the_docs_viewer_pages_are_regenerated_identically() {
    if !walk_build("the_docs_viewer_pages_are_regenerated_identically") {
        return;
    }
    let lib = staticlib().display().to_string();
    let dir = support::profile_dir().join("step-test");
    std::fs::create_dir_all(&dir).unwrap();
    let mut pages: Vec<_> = std::fs::read_dir(root().join("docs/step"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 2, "{pages:?}");
    for page in pages {
        let name = page.file_stem().unwrap().to_str().unwrap();
        let script = format!("tests/scenarios/{name}.ops");
        let fresh = dir.join(format!("{name}.html"));
        let output = brk_pools(&[
            "step",
            root().join(&script).to_str().unwrap(),
            "--html",
            fresh.to_str().unwrap(),
            "--port-lib",
            &lib,
        ]);
        assert!(output.status.success(), "{output:?}");
        assert!(
            std::fs::read(&fresh).unwrap() == std::fs::read(&page).unwrap(),
            "docs/step/{name}.html is not what step writes today; regenerate it with\n  \
             cargo run -- step {script} --html docs/step/{name}.html"
        );
    }
}

#[test]
fn the_step_limit_is_a_clear_error() {
    if !walk_build("the_step_limit_is_a_clear_error") {
        return;
    }
    let lib = staticlib().display().to_string();
    let output = brk_pools(&["step", &seed_ops(), "--max-steps", "20", "--port-lib", &lib]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("needs more than 20 single steps") && stderr.contains("--max-steps"),
        "{stderr}"
    );
}

#[test]
fn the_walk_picture_shows_header_words_and_verdicts() {
    if !walk_build("the_walk_picture_shows_header_words_and_verdicts") {
        return;
    }
    let lib = staticlib().display().to_string();
    let dir = support::profile_dir().join("step-test");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("walk.ops");
    // Blocks: in use, free but too small, free and big enough.
    std::fs::write(&script, "a 1 16\na 1 8\na 2 64\na 1 8\nd 1\nd 2\na 3 40\n").unwrap();
    let svg = dir.join("walk.svg");
    let output = brk_pools(&[
        "step",
        script.to_str().unwrap(),
        "--compare",
        "--svg",
        svg.to_str().unwrap(),
        "--op",
        "6",
        "--port-lib",
        &lib,
    ]);
    assert!(output.status.success(), "{output:?}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    for text in [
        "op 6: allocate(3, 40)",
        "in_use=1  size=48  pool=1",
        "skipped: in use (jne taken)",
        "skipped: too small, size 40 &lt; 72 (jb taken)",
        "walk stops: free, size 96 &gt;= 72",
        "%rcx = memory_end = +0xe0",
    ] {
        assert!(picture.contains(text), "{text} not in\n{picture}");
    }
}

/// `jb` -> `jbe` in the port's `allocate_loop` (a scratch copy of the crate,
/// built with cargo): `--compare` must fail at the first exact fit, where
/// the two conditions decide differently on the same flags.
#[test]
#[ignore = "builds a scratch copy of the crate (a minute or two)"]
fn the_jb_to_jbe_mutation_fails_at_the_first_exact_fit() {
    if !walk_build("the_jb_to_jbe_mutation_fails_at_the_first_exact_fit") {
        return;
    }
    let scratch = support::profile_dir().join("step-mutation");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let files = Command::new("git")
        .args(["ls-files"])
        .current_dir(root())
        .output()
        .unwrap();
    for file in String::from_utf8(files.stdout).unwrap().lines() {
        let to = scratch.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join(file), &to).unwrap();
    }
    let walk = scratch.join("src/walk.rs");
    let text = std::fs::read_to_string(&walk).unwrap();
    assert_eq!(text.matches("\"jb 4f\",").count(), 1);
    std::fs::write(&walk, text.replace("\"jb 4f\",", "\"jbe 4f\",")).unwrap();
    support::run_ok(
        Command::new(env!("CARGO"))
            .args(["build", "-p", "brk-pools", "--lib"])
            .current_dir(&scratch)
            .env("CARGO_TARGET_DIR", scratch.join("target")),
    );
    let lib = scratch.join("target/debug/libbrk_pools.a");
    assert!(Path::new(&lib).exists());
    let exact_fit = root().join("tests/scenarios/exact_fit.ops");
    let page = scratch.join("exact_fit.html");
    let output = brk_pools(&[
        "step",
        exact_fit.to_str().unwrap(),
        "--compare",
        "--html",
        page.to_str().unwrap(),
        "--port-lib",
        lib.to_str().unwrap(),
        "--other-sources",
    ]);
    // The page is written whatever the verdict and opens on the difference:
    // op 4's jb, row 11 of its listing.
    let page = std::fs::read_to_string(&page).unwrap();
    assert!(
        page.contains("\"differs\":true"),
        "the page marks the difference"
    );
    assert!(
        page.contains("\"open\":[4,11]"),
        "the page opens on op 4 row 11"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("has `jbe` where run.s has `jb`"),
        "{stdout}"
    );
    assert!(stdout.contains(": taken\n"), "{stdout}");
    assert!(stdout.contains("jb try_next_block"), "{stdout}");
    assert!(stdout.contains("jbe try_next_block"), "{stdout}");
}

/// `libbrk_pools.a` with another source fingerprint in its mark: what an
/// archive left from before an edit of the library looks like.
fn stale_archive(dir: &Path) -> std::path::PathBuf {
    let mut bytes = std::fs::read(staticlib()).unwrap();
    let tag = brk_pools::build_info::SOURCE_TAG.as_bytes();
    let at = bytes
        .windows(tag.len())
        .position(|window| window == tag)
        .expect("the archive carries the source mark");
    let digits = at + "brk-pools-source:".len()..at + tag.len() - 1;
    for digit in &mut bytes[digits] {
        *digit = if *digit == b'0' { b'1' } else { b'0' };
    }
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("libbrk_pools.a");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_stale_archive_is_refused_with_the_command_that_rebuilds_it() {
    if !walk_build("a_stale_archive_is_refused_with_the_command_that_rebuilds_it") {
        return;
    }
    let dir = support::profile_dir().join("step-stale-test");
    let _ = std::fs::remove_dir_all(&dir);
    let stale = stale_archive(&dir.join("bin"));
    let stale = stale.to_str().unwrap();

    let output = brk_pools(&["step", &seed_ops(), "--compare", "--port-lib", stale]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty(), "{output:?}");
    assert!(stderr.contains("is stale"), "{stderr}");
    // `--release` is in the command when this is a release build, and the
    // library's features after `-p brk-pools` when it has any on.
    assert!(stderr.contains("cargo build"), "{stderr}");
    assert!(stderr.contains(" -p brk-pools"), "{stderr}");
    assert!(stderr.contains("--other-sources"), "{stderr}");

    // Asked for on purpose, it is stepped (its code is this build's).
    let output = brk_pools(&[
        "step",
        &seed_ops(),
        "--compare",
        "--port-lib",
        stale,
        "--other-sources",
    ]);
    assert!(output.status.success(), "{output:?}");

    // The default archive, beside the executable, is checked the same way.
    let exe = dir.join("bin").join("brk-pools");
    std::fs::copy(env!("CARGO_BIN_EXE_brk-pools"), &exe).unwrap();
    let output = support::output_of_fresh_executable(
        Command::new(&exe)
            .args(["step", &seed_ops(), "--compare"])
            .env("BRK_POOLS_CACHE_DIR", support::tool_cache()),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is stale"), "{stderr}");
    // A copy outside target/debug reads as a release build.
    assert!(
        stderr.contains("cargo build --release -p brk-pools"),
        "{stderr}"
    );

    // No archive at all, as for an installed command.
    std::fs::remove_file(stale).unwrap();
    let output = support::output_of_fresh_executable(
        Command::new(&exe)
            .args(["step", &seed_ops(), "--compare"])
            .env("BRK_POOLS_CACHE_DIR", support::tool_cache()),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no libbrk_pools.a beside") && stderr.contains("--port-lib"),
        "{stderr}"
    );
}
