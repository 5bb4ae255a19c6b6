//! Stress tests on C programs linked with `libbrk_pools.a`, each
//! run as separate processes with a timeout (to catch hangs, never to time
//! anything): 0 crashes, 0 hangs and 0 changed bytes are expected.
//!
//! * `stress_race.c`: the main thread mallocs and frees 16 B – 124 KiB
//!   (glibc's main arena moves the break), a second thread allocates pool
//!   blocks and checks every byte. Two threads moving the break at once
//!   crash here; the heap moves it only while the process is single-threaded.
//! * `stress_fork.c`: 100 children forked while a thread works the heap; each
//!   child allocates. Without the lock's `fork` handlers most children
//!   deadlock.
//! * `stress_first_use.c`: threads race to the heap's first use while the
//!   main thread forks children at once (a new process every run, so a first
//!   use every run); each child allocates.
//! * `stress_long_run.c`: 10 000 rounds of an append and a `malloc(100000)`
//!   in a single-threaded program (the real break, a new segment every
//!   round). A segment table of fixed size would make `allocate` return
//!   NULL once it is full.
//!
//! Short form (a few seconds) in `cargo test`; long form: set
//! `BRK_POOLS_STRESS_SECS=<seconds>` and each test repeats its runs until
//! that many seconds have passed, e.g.
//! `BRK_POOLS_STRESS_SECS=600 cargo test --release --test stress --test stress_safe_race`.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::{Allocator, build_c, stress_runs};

fn c_program(name: &str) -> PathBuf {
    let source = support::root().join("tests/c").join(format!("{name}.c"));
    build_c(name, &[source], Allocator::Port, &["-pthread"])
}

/// The long form's time budget, if asked for.
/// Runs `args(i)` on `exe` `runs` times (or until the budget is spent) and
/// asserts that every run exited 0 in time.
fn stress(name: &str, exe: &PathBuf, runs: usize, args: impl Fn(usize) -> Vec<String>) {
    let tally = stress_runs(runs, Duration::from_secs(60), |i| {
        let mut command = Command::new(exe);
        command.args(args(i));
        command
    });
    report(name, tally);
}

/// Prints what the runs did; fails on the first failed run.
fn report(name: &str, tally: support::StressTally) {
    print_tally(name, &tally);
    if let Some(failure) = tally.first_failure {
        panic!("{name}: first failure:\n{}", failure.describe());
    }
}

fn print_tally(name: &str, tally: &support::StressTally) {
    println!(
        "{name}: {} runs: {} crashed, {} hung, {} NULL, {} failed their check; last clean run: {}",
        tally.runs,
        tally.crashes,
        tally.hangs,
        tally.nulls,
        tally.changed,
        tally.last_stdout.trim()
    );
}

#[test]
fn c_malloc_on_the_main_thread_races_a_pool_thread() {
    let exe = c_program("stress_race");
    stress("C race", &exe, 10, |i| {
        vec!["150".to_string(), (i + 1).to_string()]
    });
}

#[test]
fn fork_while_another_thread_works_the_heap() {
    let exe = c_program("stress_fork");
    stress("fork", &exe, 1, |_| vec!["100".to_string()]);
}

/// Every run a new process whose threads race to the heap's first use (the
/// lock's first-use hook registers the fork handlers) while the main thread
/// forks children at once.
#[test]
fn fork_while_threads_race_to_the_first_use() {
    let exe = c_program("stress_first_use");
    stress("first use", &exe, 20, |_| {
        vec!["4".to_string(), "8".to_string()]
    });
}

/// A signal handler that allocates while its thread is inside the heap gets
/// NULL (re-entry), wherever the signal lands. It hung in every run (within
/// seconds) while the lock kept its owner in a second word, stored after the
/// compare-exchange that took the lock (main at 65082f6).
#[test]
fn signal_handler_allocates_while_its_thread_is_inside_the_heap() {
    let exe = c_program("repro_signal_window");
    stress("signal window", &exe, 3, |_| vec!["3".to_string()]);
}

/// Another library's fork handlers call `allocate`, `deallocate` and
/// `deallocate_pool` in prepare, parent and child, registered in every order
/// relative to the heap's own handlers (which the heap registers on first
/// use): from a constructor, in `main` before or after the heap's first use,
/// or by a `dlopen`ed library's constructor; single-threaded and beside four
/// threads that work the heap.
#[test]
fn another_librarys_fork_handlers_use_the_heap() {
    let dir = support::profile_dir().join("fork-handlers");
    std::fs::create_dir_all(&dir).unwrap();
    let library = dir.join("libfork_handlers_library.so");
    support::run_ok(
        Command::new("gcc")
            .args(["-O2", "-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(support::root().join("tests/c/fork_handlers_library.c")),
    );
    let source = support::root().join("tests/c/fork_handlers.c");
    let exe = build_c(
        "fork_handlers",
        &[source],
        Allocator::Port,
        &["-pthread", "-rdynamic"],
    );
    let whens = [
        "constructor",
        "before",
        "after",
        "dlopen-before",
        "dlopen-after",
    ];
    let mut failures = Vec::new();
    for when in whens {
        for threads in ["0", "4"] {
            let name = format!("fork handlers {when}, {threads} threads");
            let tally = stress_runs(2, Duration::from_secs(60), |_| {
                let mut command = Command::new(&exe);
                command
                    .env("FORK_HANDLERS_WHEN", when)
                    .args([when, threads, "20"])
                    .arg(&library);
                command
            });
            print_tally(&name, &tally);
            if let Some(failure) = tally.first_failure {
                failures.push(format!("{name}: first failure:\n{}", failure.describe()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Another library's prepare handler (registered before the heap's first
/// use, so it runs after the heap's prepare) forks again while two threads
/// work the heap: the inner fork gives back only its own hold, so no worker
/// is inside the heap at the outer fork and every outer child can allocate
/// (10 of 10 outer children hung when the lock counted forks with one flag).
#[test]
fn a_fork_inside_another_librarys_prepare_handler() {
    let exe = c_program("fork_inside_prepare");
    stress("fork inside prepare", &exe, 2, |_| {
        vec!["1".to_string(), "10".to_string()]
    });
}

/// Another library's prepare handler starts the process's first thread,
/// which works the heap: the heap's prepare already holds the lock (it takes
/// it in single-threaded processes too), so the child can allocate (the
/// first child hung in 2 of 3 runs when no lock was taken while
/// single-threaded).
#[test]
fn a_thread_started_by_another_librarys_prepare_handler() {
    let exe = c_program("thread_from_prepare");
    stress("thread from prepare", &exe, 3, |_| vec!["5".to_string()]);
}

#[test]
fn ten_thousand_appends_between_main_arena_growths() {
    let exe = c_program("stress_long_run");
    stress("long run", &exe, 1, |_| vec!["10000".to_string()]);
}
