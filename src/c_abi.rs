//! The original's three functions, exported unmangled with C linkage, over the
//! process heap.
//!
//! ```c
//! void *allocate(int pool, int size);
//! void deallocate(void *ptr);
//! void deallocate_pool(int pool);
//! ```
//!
//! Link a C program with `target/release/libbrk_pools.a` instead of `run.s`
//! and it behaves the same wherever run.s is defined (see the README's
//! deviations table for the rest).
//!
//! The unmangled names (and the `memory_start`/`memory_end` globals of
//! [`crate::process`]) are exported with the `c-abi` feature, on by default.
//! A Rust program that does not want those global names in its binary can
//! turn default features off; the functions stay callable from Rust.
//!
//! Arguments: gcc passes a C `int` in the 32-bit half of the register, which
//! zero-extends, and run.s reads the whole 64-bit register. So the port reads
//! the `int` and zero-extends it: pool -1 is stored as 4294967295 and size -1
//! asks for a 4 GiB + 31 byte block, exactly as in `docs/original-behaviour.md` A.4.

use core::ffi::{c_int, c_void};
use core::ptr;

use crate::process;

/// What run.s sees in a 64-bit register when a C caller passes `value`.
pub const fn zero_extended(value: c_int) -> u64 {
    value as u32 as u64
}

/// `void *allocate(int pool, int size)`: first fit from `pool`, else a new
/// block at the end of the heap. Returns NULL where run.s would return a
/// block past a refused break, for a pool a Rust
/// [`Pool`](crate::pools::Pool) guard holds, and when called on a thread
/// that holds the heap's lock already (from Rust code holding
/// [`process::lock`]'s guard, or a signal handler), where waiting would
/// deadlock.
#[cfg_attr(feature = "c-abi", unsafe(no_mangle))]
pub extern "C" fn allocate(pool: c_int, size: c_int) -> *mut c_void {
    process::lock_unless_reentered()
        .and_then(|mut heap| heap.allocate(zero_extended(pool), zero_extended(size)))
        .map_or(ptr::null_mut(), |p| p.as_ptr().cast())
}

/// `void deallocate(void *ptr)`: mark the block free. Pointers that are not a
/// block of the heap (NULL, foreign, interior) are ignored; run.s writes
/// through them (`docs/original-behaviour.md` A.6). So are blocks of a pool a Rust guard holds.
///
/// Called on a thread that holds the heap's lock already, it aborts the
/// process with a message (C has no error channel here, and waiting would
/// deadlock); so does [`deallocate_pool`].
#[cfg_attr(feature = "c-abi", unsafe(no_mangle))]
pub extern "C" fn deallocate(ptr: *mut c_void) {
    // The only error is NotABlock, for which C has no channel: ignore it.
    let _ = process::lock().try_deallocate(ptr.cast());
}

/// `void deallocate_pool(int pool)`: free every block of `pool` (nothing, if
/// a Rust guard holds it).
#[cfg_attr(feature = "c-abi", unsafe(no_mangle))]
pub extern "C" fn deallocate_pool(pool: c_int) {
    process::lock().deallocate_pool(zero_extended(pool));
}
