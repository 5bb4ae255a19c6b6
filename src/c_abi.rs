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
//!
//! # Fast paths
//!
//! run.s's `deallocate` is three instructions and its `allocate` of a block
//! that fits at once about a dozen; the port adds a lock, a pointer check and
//! a held-pool check. To keep that addition small, `allocate` and
//! `deallocate` are split the way production allocators split theirs:
//!
//! * a **fast path**, inlined into the exported function: the lock is free
//!   (one `lock cmpxchg`), no Rust guard holds any pool (one load), and then
//!   the asm walk finds a block, or the hash index finds the pointer. It
//!   needs only caller-saved registers, so the exported functions save none;
//! * **slow paths** (`*_after_waiting`: the lock was taken or never used;
//!   `allocate_rest`: no block fits, or some pool is held), out of line. The
//!   fast path hands them the locked heap as its last act, so the call is a
//!   `jmp`; they are `extern "C"` only so that they cannot unwind, which is
//!   what lets that call be a `jmp`.
//!
//! `benches/constant.sh` measures the result: a `deallocate` plus a reusing
//! `allocate`, with the C driver's loop around them, cost 83 instructions
//! where run.s's cost 32 (`docs/perf/constant.txt`).

use core::ffi::{c_int, c_void};
use core::mem::ManuallyDrop;
use core::ptr;

use crate::header::HEADER_SIZE;
use crate::process::{self, ProcessHeap};

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
/// deadlock (wherever the signal lands: the lock word is its owner, see
/// `src/lock.rs`).
///
/// The fast path (the lock is free, a block fits) stays in registers; the
/// rest are calls at its ends, so a reuse saves no registers at all.
#[cfg_attr(feature = "c-abi", unsafe(no_mangle))]
pub extern "C" fn allocate(pool: c_int, size: c_int) -> *mut c_void {
    // movq %rdi, %r10              # save the pool number in r10
    // movq %rsi, %rdx              # save the amount requested into %rdx
    // addq $HEADER_SIZE, %rdx      # actual amount needed is actually larger
    // (A zero-extended int plus 32 cannot wrap.)
    let (pool, size_with_header) = (
        zero_extended(pool),
        zero_extended(size) + HEADER_SIZE as u64,
    );
    match process::try_lock() {
        Some(heap) => allocate_locked(heap, pool, size_with_header),
        None => allocate_after_waiting(pool, size_with_header),
    }
}

/// `allocate` once the lock is held. The fast path: no guard holds any pool
/// (one load) and a block fits.
#[inline(always)]
fn allocate_locked(mut heap: ProcessHeap, pool: u64, size_with_header: u64) -> *mut c_void {
    if !heap.held.is_empty() {
        return allocate_rest(heap, pool, size_with_header, false);
    }
    match heap.first_fit(pool, size_with_header) {
        Some(found) => found.as_ptr().cast(),
        None => allocate_rest(heap, pool, size_with_header, true),
    }
}

/// The rest of `allocate`: a guard holds some pool (`walked` false: the fast
/// path did nothing yet), or no block fits (`walked` true: no pool is held
/// and first fit already ran), so: the heap's first allocation, or a new
/// block at the end. It unlocks when it returns, so the fast path's call to
/// it is its last instruction: a `jmp`, since as an `extern "C"` function it
/// cannot unwind into `allocate`.
#[inline(never)]
extern "C" fn allocate_rest(
    heap: ProcessHeap,
    pool: u64,
    size_with_header: u64,
    walked: bool,
) -> *mut c_void {
    // Heap::allocate's steps (held-pool check, first fit, append), with the
    // first two skipped when the fast path made them; calling Heap::allocate
    // for the held-pool case instead cost every append 8 instructions
    // (callgrind, `workload ir append 1000`).
    let found = unlock_after(heap, |heap| {
        if !walked && heap.is_pool_held(pool) {
            return None;
        }
        let reused = if walked {
            None
        } else {
            heap.first_fit(pool, size_with_header)
        };
        reused.or_else(|| heap.allocate_init_or_append(pool, size_with_header).ok())
    });
    found.map_or(ptr::null_mut(), |found| found.as_ptr().cast())
}

/// Runs `work` on the locked heap, then unlocks. For the `extern "C"` slow
/// paths: a panic in them aborts the process, so nothing needs the guard
/// while unwinding; it is dropped by hand, and the compiler keeps no copy of
/// it for a cleanup that cannot happen.
#[inline(always)]
fn unlock_after<R>(heap: ProcessHeap, work: impl FnOnce(&mut ProcessHeap) -> R) -> R {
    let mut heap = ManuallyDrop::new(heap);
    let result = work(&mut heap);
    drop(ManuallyDrop::into_inner(heap));
    result
}

/// `allocate` when the lock was not free: wait for it, unless this thread
/// holds it (the first lock of all also ends up here).
#[cold]
#[inline(never)]
extern "C" fn allocate_after_waiting(pool: u64, size_with_header: u64) -> *mut c_void {
    match process::lock_unless_reentered() {
        Ok(heap) => allocate_locked(heap, pool, size_with_header),
        Err(_) => ptr::null_mut(),
    }
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
    match process::try_lock() {
        Some(heap) => deallocate_locked(heap, ptr),
        None => deallocate_after_waiting(ptr),
    }
}

/// `deallocate` once the lock is held. The fast path: no guard holds any
/// pool (one load) and the index of block starts knows the pointer.
#[inline(always)]
fn deallocate_locked(mut heap: ProcessHeap, ptr: *mut c_void) {
    if heap.held.is_empty()
        && let Some((block, position)) = heap.indexed_block(ptr.cast())
    {
        // SAFETY: the index holds only block starts of this heap, and no
        // guard holds any pool.
        unsafe { heap.free_block(block, Some(position)) };
        return;
    }
    deallocate_rest(heap, ptr);
}

/// The rest of `deallocate`: a guard holds some pool, or the index does not
/// know the pointer (not a block, or the kernel refused the index memory:
/// then [`Heap::try_deallocate`](crate::Heap::try_deallocate) walks). Its
/// errors (not a block, a held pool's block) have no C channel: ignored.
/// Out of line and `extern "C"` for the reasons given at [`allocate_rest`].
#[inline(never)]
extern "C" fn deallocate_rest(heap: ProcessHeap, ptr: *mut c_void) {
    let _ = unlock_after(heap, |heap| heap.try_deallocate(ptr.cast()));
}

/// `deallocate` when the lock was not free (see [`allocate_after_waiting`]).
#[cold]
#[inline(never)]
extern "C" fn deallocate_after_waiting(ptr: *mut c_void) {
    let heap = process::lock_unless_reentered().unwrap_or_else(|_| abort_reentered(b"deallocate"));
    deallocate_locked(heap, ptr);
}

/// Ends the process when C's `deallocate` or `deallocate_pool` is called on a
/// thread that holds the heap's lock (C has no error channel, and waiting
/// would never end). The message goes out with one `write(2)` and the end is
/// `abort()`: no formatting and no `malloc`, so it works from a signal
/// handler that interrupted `malloc` too (a panic's message may allocate).
#[cold]
fn abort_reentered(function: &[u8]) -> ! {
    let mut message = [0u8; 256];
    let parts: [&[u8]; 3] = [
        b"brk-pools: ",
        function,
        b": this thread already holds the heap's lock: called again from inside \
          the heap (a signal handler that interrupted a heap call) or while this \
          thread holds it (process::lock, a callback under the lock, a fork made \
          under it); waiting would deadlock; aborting\n",
    ];
    let mut len = 0;
    for part in parts {
        let part = &part[..part.len().min(message.len() - len)];
        message[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    // SAFETY: write(2) reads `len` initialised bytes of a live buffer;
    // abort(3) has no preconditions. Both are async-signal-safe.
    unsafe {
        libc::write(libc::STDERR_FILENO, message.as_ptr().cast(), len);
        libc::abort()
    }
}

/// `void deallocate_pool(int pool)`: free every block of `pool` (nothing, if
/// a Rust guard holds it).
#[cfg_attr(feature = "c-abi", unsafe(no_mangle))]
pub extern "C" fn deallocate_pool(pool: c_int) {
    process::lock_unless_reentered()
        .unwrap_or_else(|_| abort_reentered(b"deallocate_pool"))
        .deallocate_pool(zero_extended(pool));
}
