//! Fork handlers of another library call the heap through the safe API, on
//! the forking thread, in prepare, parent and child, whether they were
//! registered before or after the heap's own (which it registers on first
//! use), in a single-threaded process and beside threads that work the heap.
//! The C ABI's side, with constructors and `dlopen`, is
//! `tests/c/fork_handlers.c`, run by `tests/stress.rs`.
//!
//! Each case runs in a child process of its own (`support::child_cases`).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};

use brk_pools::{pools, process};

const CASES: &[support::child_cases::Case] = &[
    ("registered_before_first_use", registered_before_first_use),
    ("registered_after_first_use", registered_after_first_use),
    (
        "registered_before_with_threads",
        registered_before_with_threads,
    ),
    (
        "registered_after_with_threads",
        registered_after_with_threads,
    ),
];

fn main() {
    support::child_cases::main("fork-handler", CASES, || {}, |_, _| {});
}

/// What a library's handler does: a guard's allocations, a raw allocation,
/// a free and a pool release.
fn use_heap(pool: u64) {
    let guard = pools::process()
        .pool(pool)
        .expect("pool guard in a fork handler");
    let text = guard.alloc_str("in a fork handler").expect("alloc_str");
    let numbers = guard
        .alloc_slice_copy(&[1u64, 2, 3])
        .expect("alloc_slice_copy");
    assert_eq!((&*text, &*numbers), ("in a fork handler", &[1, 2, 3][..]));
    drop(guard);
    let mut heap = process::lock();
    let block = heap
        .allocate(pool + 1, 64)
        .expect("allocate in a fork handler");
    heap.try_deallocate(block.as_ptr()).expect("deallocate");
    heap.allocate(pool + 1, 80).expect("allocate");
    heap.deallocate_pool(pool + 1);
}

extern "C" fn prepare() {
    use_heap(100);
}
extern "C" fn parent() {
    use_heap(110);
}
extern "C" fn child() {
    use_heap(120);
}

fn register() {
    // SAFETY: the handlers are plain functions that live for the program.
    assert_eq!(
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) },
        0
    );
}

/// The heap's first use (which registers its own handlers).
fn first_use() {
    process::lock().allocate(1, 100).unwrap();
}

/// Forks `n` times; each child uses the heap and exits 0.
fn forks(n: usize) {
    for _ in 0..n {
        // SAFETY: the child uses only this crate's heap and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: alarm has no preconditions; it ends a hung child.
            unsafe { libc::alarm(10) };
            use_heap(130);
            // SAFETY: leave without the parent's exit handlers.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waitpid writes one int.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child ended with status {status:#x}"
        );
    }
}

/// Runs `body` while two threads allocate and free in pools of their own.
fn with_threads(body: impl FnOnce()) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for pool in [40u64, 41] {
            let stop = &stop;
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut heap = process::lock();
                    let block = heap.allocate(pool, 48).unwrap();
                    heap.try_deallocate(block.as_ptr()).unwrap();
                }
            });
        }
        body();
        stop.store(true, Ordering::Relaxed);
    });
}

fn registered_before_first_use() {
    register();
    first_use();
    forks(20);
}

fn registered_after_first_use() {
    first_use();
    register();
    forks(20);
}

fn registered_before_with_threads() {
    register();
    first_use();
    with_threads(|| forks(20));
}

fn registered_after_with_threads() {
    first_use();
    register();
    with_threads(|| forks(20));
}
