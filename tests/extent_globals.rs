//! The exported `memory_start`/`memory_end` globals (run.s's two quadwords,
//! read by C drivers such as `asm/trace.c`) follow every append at once: the
//! process heap publishes them where run.s stores `memory_end`, not when a
//! guard is dropped. So a Rust caller still holding [`process::lock`]'s guard,
//! or a C caller right after `allocate` returns, reads the heap's own values;
//! a refused append leaves them as they were.
//!
//! The only test in this binary, so nothing else moves the process heap
//! between its checks.

use std::sync::atomic::Ordering::Relaxed;

use brk_pools::{c_abi, process};

fn globals() -> (usize, usize) {
    (
        process::memory_start.load(Relaxed),
        process::memory_end.load(Relaxed),
    )
}

fn heap_extent(heap: &process::ProcessHeap) -> (usize, usize) {
    (heap.memory_start() as usize, heap.memory_end() as usize)
}

#[test]
fn the_globals_follow_every_append_while_the_guard_is_held() {
    let mut heap = process::lock();
    assert_eq!(globals(), heap_extent(&heap), "before the first block");
    // Reuses, appends, and (past the first 1 GiB reservation, on a thread)
    // a new segment.
    let sizes = [0u64, 1, 100, 5000, 24, 1 << 20, (1 << 30) + 7, 48];
    for (step, &size) in sizes.iter().enumerate() {
        heap.allocate(901, size).unwrap();
        assert_eq!(globals(), heap_extent(&heap), "step {step}: size {size}");
        assert_ne!(globals().1, 0, "step {step}");
        if step == 2 {
            heap.deallocate_pool(901); // later requests reuse these blocks
        }
    }
    let before = globals();
    assert!(heap.allocate(902, u64::MAX - 64).is_err());
    assert_eq!(globals(), before, "a refused append leaves the globals");
    assert_eq!(globals(), heap_extent(&heap));
    drop(heap);

    // The C ABI: right after allocate returns.
    for size in [16, 4000, 16] {
        assert!(!c_abi::allocate(903, size).is_null());
        let heap = process::lock();
        assert_eq!(globals(), heap_extent(&heap), "C allocate of {size}");
    }
    c_abi::deallocate_pool(901);
    c_abi::deallocate_pool(903);
}
