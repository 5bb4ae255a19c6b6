//! Fault tests: the cases in which the original crashes or corrupts memory
//! (`docs/original-behaviour.md` A.6, A.7, A.8), each run in a child process so that a
//! crash fails the test instead of killing the harness.
//!
//! Rust cases re-run this test binary with `BRK_POOLS_FAULT_CASE=<test name>`
//! (the child runs only that test, on the real process heap); C cases build
//! small programs from `tests/c/` against both the original `run.s` and the
//! port's `libbrk_pools.a`. Cases that must see the real program break
//! (refused `brk` under `RLIMIT_DATA`, Rust collections on the break) run in
//! `tests/single_threaded.rs`: a libtest `#[test]` runs on a spawned thread,
//! and a process with threads never moves the break (see `ProcessBreak`).

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use brk_pools::{pools, process};
use support::{Allocator, Rng, build_c};

const CASE: &str = "BRK_POOLS_FAULT_CASE";

/// Runs `body` in a child process (this test binary, filtered to `name`).
/// In the child, runs it.
fn in_child(name: &str, body: fn()) {
    in_child_with_env(name, &[], body);
}

/// [`in_child`] with extra environment variables for the child.
fn in_child_with_env(name: &str, env: &[(&str, &str)], body: fn()) {
    if std::env::var(CASE).as_deref() == Ok(name) {
        body();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, name)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child for {name} failed: {}",
        output.status
    );
}

fn signal(output: &Output) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    output.status.signal()
}

fn c_program(name: &str, allocator: Allocator) -> PathBuf {
    let source = support::root().join("tests/c").join(format!("{name}.c"));
    build_c(name, &[source], allocator, &[])
}

fn run(exe: &PathBuf, args: &[&str]) -> Output {
    Command::new(exe).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

// ---------------------------------------------------------------------------
// The C ABI ([A.6](../docs/original-behaviour.md#a6-misuse), [A.7](../docs/original-behaviour.md#a7-brk-failure)) against the original.

#[test]
fn c_abi_int_max_under_rlimit_as() {
    let port = run(&c_program("fault_int_max", Allocator::Port), &[]);
    assert!(port.status.success(), "port: {port:?}");
    // The kernel break: the first block's end, or one 64 KiB step with
    // batched growth (memory_end is exact either way).
    let brk = if cfg!(feature = "batched-brk") {
        "+0x10000"
    } else {
        "+0x30"
    };
    assert_eq!(
        stdout(&port),
        format!(
            "allocate(1,INT_MAX)=NULL memory_end+=0 brk={brk}\nallocate(2,16)=non-NULL p intact=yes\n"
        )
    );
    let original = run(&c_program("fault_int_max", Allocator::OriginalGlobals), &[]);
    // run.s returns a block past the refused break ([A.7](../docs/original-behaviour.md#a7-brk-failure) case 3) and then
    // faults appending the next header (case 6).
    assert_eq!(
        stdout(&original),
        "allocate(1,INT_MAX)=non-NULL memory_end+=2147483679 brk=+0x30\n"
    );
    assert_eq!(signal(&original), Some(libc::SIGSEGV), "{original:?}");
}

#[test]
fn c_abi_ignores_pointers_that_are_not_blocks() {
    let port = c_program("fault_bad_pointers", Allocator::Port);
    let expected = "blocks=3 layout unchanged, buffer unchanged, stack unchanged\n\
                    +0 in_use=1 size=48 pool=1\n\
                    +0x30 in_use=0 size=72 pool=0\n\
                    +0x78 in_use=1 size=40 pool=3\n";
    for mode in ["null", "interior", "foreign", "all"] {
        let output = run(&port, &[mode]);
        assert!(output.status.success(), "port, {mode}: {output:?}");
        assert_eq!(stdout(&output), expected, "port, {mode}");
    }
    let original = c_program("fault_bad_pointers", Allocator::OriginalGlobals);
    // [A.6](../docs/original-behaviour.md#a6-misuse) item 6: deallocate(NULL) writes to 0xffffffffffffffe0.
    let null = run(&original, &["null"]);
    assert_eq!(signal(&null), Some(libc::SIGSEGV), "{null:?}");
    assert_eq!(stdout(&null), "");
    // [A.6](../docs/original-behaviour.md#a6-misuse) item 4: an interior pointer zeroes the block's pool word (and user data).
    let interior = stdout(&run(&original, &["interior"]));
    assert!(
        interior.starts_with("blocks=3 layout CHANGED")
            && interior.contains("+0 in_use=1 size=48 pool=0"),
        "{interior}"
    );
    // [A.6](../docs/original-behaviour.md#a6-misuse) item 5: a foreign pointer zeroes two quadwords of someone else's memory.
    let foreign = stdout(&run(&original, &["foreign"]));
    assert!(foreign.contains("buffer CHANGED"), "{foreign}");
}

#[test]
fn c_abi_survives_the_glibc_interleavings_that_crash_the_original() {
    // repro_malloc_crash: allocate; printf; allocate; malloc(10).
    let port = run(&c_program("repro_malloc_crash", Allocator::Port), &[]);
    assert!(port.status.success(), "port: {port:?}");
    assert_eq!(stdout(&port), "hello\nmalloc ok\n");
    let original = run(&c_program("repro_malloc_crash", Allocator::Original), &[]);
    assert_eq!(signal(&original), Some(libc::SIGSEGV), "{original:?}");
    assert_eq!(stdout(&original), "", "the buffered output is lost");

    // repro_garbage, stdout to a pipe.
    let port = run(&c_program("repro_garbage", Allocator::Port), &[]);
    assert!(port.status.success(), "port: {port:?}");
    assert_eq!(stdout(&port), "line1 hello world\nline2\n");
    let original = run(&c_program("repro_garbage", Allocator::Original), &[]);
    assert!(original.status.success(), "{original:?}");
    // The third block's header {1, 48, 1} over the pending first line ([A.8](../docs/original-behaviour.md#a8-interleaving-with-glibc-malloc)).
    let mut garbage = vec![1, 0, 0, 0, 0, 0, 0, 0, 0x30, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    garbage.extend_from_slice(b"line2\n");
    assert_eq!(original.stdout, garbage);
}

// ---------------------------------------------------------------------------
// The safe API on the process heap, next to glibc malloc and threads.

fn pattern(id: u64, i: usize) -> u8 {
    (id.wrapping_mul(0x9e37_79b9) as u8) ^ (i as u8).wrapping_mul(31) ^ ((i >> 8) as u8)
}

fn filled(len: usize, id: u64) -> Vec<u8> {
    (0..len).map(|i| pattern(id, i)).collect()
}

fn check(bytes: &[u8], id: u64) {
    assert!(
        bytes.iter().enumerate().all(|(i, &b)| b == pattern(id, i)),
        "contents of allocation {id} changed"
    );
}

#[test]
fn threads_with_their_own_pools() {
    in_child("threads_with_their_own_pools", || {
        const THREADS: u64 = 6;
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                scope.spawn(move || {
                    let mut rng = Rng(t);
                    let pool = pools::process().pool(100 + t).unwrap();
                    let mut live = Vec::new();
                    for i in 0..2000u64 {
                        let id = t << 32 | i;
                        let size = rng.below(500) as usize;
                        let block = pool.boxed_slice_copy(&filled(size, id)).unwrap();
                        live.push((block, id));
                        if rng.below(2) == 0 {
                            let j = rng.below(live.len() as u64) as usize;
                            live.swap_remove(j);
                        }
                        if i % 64 == 0 {
                            for (block, id) in &live {
                                check(block, *id);
                            }
                            let v: Vec<u64> = (0..rng.below(5000)).collect();
                            assert_eq!(
                                v.iter().sum::<u64>(),
                                v.len() as u64 * (v.len() as u64).saturating_sub(1) / 2
                            );
                        }
                    }
                    for (block, id) in &live {
                        check(block, *id);
                    }
                });
            }
        });
        let heap = process::lock();
        assert!(heap.blocks().all(|b| !b.header.is_in_use()));
        println!(
            "{THREADS} threads, {} blocks, {} segments",
            heap.blocks().count(),
            heap.segments().len()
        );
    });
}
