//! The C ABI's fast paths respect the safe API's guards: while a
//! [`brk_pools::pools::Pool`] holds a pool, C's `deallocate` leaves that
//! pool's blocks in use and C's `allocate` into it returns NULL, even though
//! the lock is free and the block index knows the pointer (the fast paths'
//! conditions). A test binary of its own: it owns its process heap.

use brk_pools::{c_abi, pools, process};

#[test]
fn c_calls_leave_a_held_pools_blocks_alone() {
    let guard = pools::process().pool(41).unwrap();
    let kept = guard.boxed([7u8; 16]).unwrap();
    let block = kept.block_pointer().cast_mut();
    let in_use = || process::lock().block_of(block).unwrap().header.is_in_use();
    assert!(in_use());

    c_abi::deallocate(block.cast());
    assert!(in_use(), "C's deallocate freed a block of a held pool");
    assert!(
        c_abi::allocate(41, 16).is_null(),
        "C allocated into a held pool"
    );

    // Other pools go on as usual, through the same fast paths.
    let other = c_abi::allocate(42, 16);
    assert!(!other.is_null());
    c_abi::deallocate(other);
    assert!(
        !process::lock()
            .block_of(other.cast())
            .unwrap()
            .header
            .is_in_use()
    );
    assert_eq!(*kept, [7u8; 16]);

    drop(kept);
    drop(guard);
    // Released: now C may use pool 41 again.
    assert!(!c_abi::allocate(41, 16).is_null());
}
