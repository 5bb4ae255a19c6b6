//! CPython's own test suite on the malloc shim: Debian's python3.11 with
//! every object through `malloc` (`PYTHONMALLOC=malloc`), its regression
//! tests (`python3.11 -m test`, the libpython3.11-testsuite package) with
//! the same outcome as on glibc's malloc.
//!
//! Only on the indexed-fit build: on run.s's walk, which visits every block
//! for every allocation, `python3.11 -c 'import unittest'` alone takes over
//! a minute (93 000 allocations, 37 000 blocks, 18 900 blocks visited per
//! allocation on average), and one test module many minutes; the walk build
//! runs Python in tests/everyday_programs.rs instead. The default set takes
//! 20 to 30 seconds on each allocator; `BRK_POOLS_CPYTHON_FULL=1` adds
//! the slower modules (several minutes), and `BRK_POOLS_CPYTHON_WALK=1` runs
//! one small module (test_bool) on the walk build too (about six minutes:
//! the interpreter's start-up alone walks for minutes). A missing python3.11
//! or test suite skips with a message (.ci/run installs both and requires
//! them).

mod shim_support;

use brk_pools_tools::shim::Fit;
use shim_support::{REQUIRE_VARIABLE, Run, available, command, run_on};

/// Debian's python3 (the one on PATH may be another build).
const PYTHON: &str = "/usr/bin/python3.11";

/// One of the test suite's modules, from libpython3.11-testsuite. (Not the
/// runner, `test/libregrtest`: libpython3.11-stdlib ships that without the
/// modules.)
const TEST_MODULE: &str = "/usr/lib/python3.11/test/test_list.py";

/// Modules that pass on glibc here and run in 20 to 30 seconds.
const DEFAULT_MODULES: &[&str] = &[
    "test_list",
    "test_dict",
    "test_tuple",
    "test_json",
    "test_bytes",
    "test_sort",
    "test_heapq",
    "test_mmap",
    "test_fork1",
];

/// Added by `BRK_POOLS_CPYTHON_FULL=1`: threads, signals, subprocesses and
/// the larger containers (test_signal and test_subprocess wait a lot).
const FULL_MODULES: &[&str] = &[
    "test_re",
    "test_collections",
    "test_set",
    "test_unicode",
    "test_itertools",
    "test_threading",
    "test_subprocess",
    "test_signal",
];

/// The part of regrtest's report that says what passed, failed or was
/// skipped (from `== Tests result` on, without the durations).
fn outcome(run: &Run) -> String {
    let stdout = run.stdout();
    let start = stdout.find("== Tests result").unwrap_or_else(|| {
        panic!(
            "no result in regrtest's output:\n{stdout}\n{}",
            run.stderr()
        )
    });
    stdout[start..]
        .lines()
        .filter(|line| !line.starts_with("Total duration"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn regrtest(fit: Option<Fit>, modules: &[&str]) -> Run {
    let mut python = command(PYTHON, &["-m", "test", "-j2"]);
    python.args(modules).env("PYTHONMALLOC", "malloc");
    run_on(fit, python)
}

#[test]
fn cpython_test_modules_pass_as_on_glibc() {
    let test = "cpython_test_modules_pass_as_on_glibc";
    if !available(test, PYTHON) {
        return;
    }
    if !std::path::Path::new(TEST_MODULE).is_file() {
        assert!(
            std::env::var_os(REQUIRE_VARIABLE).is_none(),
            "{test}: {TEST_MODULE} is missing (apt-get install libpython3.11-testsuite)"
        );
        eprintln!(
            "{test}: skipped: CPython's test suite is not installed (libpython3.11-testsuite)"
        );
        return;
    }
    let mut modules = DEFAULT_MODULES.to_vec();
    if std::env::var_os("BRK_POOLS_CPYTHON_FULL").is_some() {
        modules.extend_from_slice(FULL_MODULES);
    }
    let glibc = regrtest(None, &modules);
    let expected = outcome(&glibc);
    assert!(expected.contains("SUCCESS"), "on glibc:\n{expected}");
    let shim = regrtest(Some(Fit::Indexed), &modules);
    assert_eq!(
        outcome(&shim),
        expected,
        "stderr on the shim:\n{}",
        shim.stderr()
    );
    // Every interpreter of the run (regrtest and its workers) on the shim.
    assert!(
        shim.summaries.len() > 2,
        "{} heap summaries",
        shim.summaries.len()
    );
    eprintln!(
        "{test}: {} modules: glibc {:.1} s, indexed-fit shim {:.1} s",
        modules.len(),
        glibc.seconds,
        shim.seconds
    );
    if std::env::var_os("BRK_POOLS_CPYTHON_WALK").is_some() {
        let modules = ["test_bool"];
        let expected = outcome(&regrtest(None, &modules));
        let walk = regrtest(Some(Fit::Walk), &modules);
        assert_eq!(
            outcome(&walk),
            expected,
            "stderr on the walk shim:\n{}",
            walk.stderr()
        );
        eprintln!("{test}: test_bool on the walk shim: {:.1} s", walk.seconds);
    }
}
