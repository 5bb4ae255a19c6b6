//! Re-entry: a call that needs a heap's lock, made on a thread that
//! already holds it, returns `Error::LockHeldByThisThread`, or panics (or,
//! through the C ABI, aborts) with a clear message where no error can be
//! returned. A lock that did not know its owner would deadlock in every case
//! here.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;

use brk_pools::pools::{self, Pools};
use brk_pools::{Error, c_abi, process};

fn panic_message(result: std::thread::Result<()>) -> String {
    let payload = result.expect_err("the call should panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn guard_operations_inside_inspect_are_errors_or_clear_panics() {
    let pools = Pools::on_arena(1 << 20).unwrap();
    let pool = pools.pool(1).unwrap();
    let early = pool.boxed([7u8; 64]).unwrap();
    let kept = pool.alloc_str("kept").unwrap();
    pools.inspect(|_| {
        assert_eq!(
            pool.alloc_zeroed(8).err(),
            Some(Error::LockHeldByThisThread)
        );
        assert_eq!(pools.pool(2).err(), Some(Error::LockHeldByThisThread));
    });
    // Dropping a PoolBox inside inspect cannot wait for the lock.
    let message = panic_message(catch_unwind(AssertUnwindSafe(|| {
        pools.inspect(move |_| drop(early));
    })));
    assert!(message.contains("dropping a PoolBox"), "{message}");
    assert!(message.contains("already holds"), "{message}");
    // The lock was released by the unwind; the heap still works.
    assert_eq!(kept, "kept");
    let other = pools.pool(3).unwrap();
    let message = panic_message(catch_unwind(AssertUnwindSafe(|| {
        pools.inspect(move |_| drop(other));
    })));
    assert!(message.contains("dropping a Pool guard"), "{message}");
    let message = panic_message(catch_unwind(AssertUnwindSafe(|| {
        pools.inspect(|_| pools.inspect(|_| ()));
    })));
    assert!(message.contains("Pools::inspect"), "{message}");
    assert!(pool.alloc_zeroed(8).is_ok());
}

#[test]
fn process_heap_calls_while_this_thread_holds_the_lock() {
    let heap = process::lock();
    assert_eq!(
        pools::process().pool(77).err(),
        Some(Error::LockHeldByThisThread)
    );
    assert!(c_abi::allocate(77, 16).is_null());
    assert_eq!(
        process::lock_unless_reentered().err(),
        Some(Error::LockHeldByThisThread)
    );
    let message = panic_message(catch_unwind(AssertUnwindSafe(|| {
        drop(process::lock());
    })));
    assert!(message.contains("already holds"), "{message}");
    drop(heap);
    assert!(!c_abi::allocate(77, 16).is_null());
    c_abi::deallocate_pool(77);
}

const ABORT_CASE: &str = "BRK_POOLS_REENTRY_ABORT";

/// `deallocate` and `deallocate_pool` from C have no error channel: they
/// abort with the message (written with one `write(2)`, no panic).
#[test]
fn c_abi_free_under_the_lock_aborts_with_a_message() {
    if let Ok(case) = std::env::var(ABORT_CASE) {
        let p = c_abi::allocate(78, 16);
        let _heap = process::lock();
        if case == "pool" {
            c_abi::deallocate_pool(78);
        } else {
            c_abi::deallocate(p);
        }
        unreachable!("{case} returned while this thread held the lock");
    }
    for (case, function) in [("block", "deallocate:"), ("pool", "deallocate_pool:")] {
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "c_abi_free_under_the_lock_aborts_with_a_message",
                "--exact",
                "--nocapture",
            ])
            .env(ABORT_CASE, case)
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(function), "{stderr}");
        assert!(stderr.contains("already holds the heap's lock"), "{stderr}");
    }
}
