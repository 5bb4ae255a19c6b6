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
//! and it behaves the same wherever run.s is defined (`docs/deviations.md`
//! lists the rest).
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
//! that fits at once 18 (`docs/original-behaviour.md` A.9); the port adds a
//! lock, a pointer check and a held-pool check. To keep that addition small, `allocate` and
//! `deallocate` are split the way production allocators split theirs:
//!
//! * a **fast path**, inlined into the exported function: the lock is free
//!   (a load, then a `lock cmpxchg`; while the process is single-threaded,
//!   a `cmpxchg` without the `lock` prefix), no Rust guard holds any pool
//!   (one load), and then
//!   the asm walk finds a block, or the hash index finds the pointer. It
//!   needs only caller-saved registers, so the exported functions save none;
//! * **slow paths**, out of line and named for their case:
//!   `*_after_waiting` (the lock was taken, or never used yet),
//!   `allocate_new_block` (no block fits), `allocate_while_pools_are_held`,
//!   `deallocate_rest` (the index does not know the pointer, or some pool is
//!   held). The fast path hands them the locked heap as its last act, so the
//!   call is a `jmp`; they are `extern "C"` only so that they cannot unwind,
//!   which is what lets that call be a `jmp`.
//!
//! Both paths run the heap's own functions for run.s's labels
//! ([`Heap::allocate_continue`](crate::Heap) and the rest): the C ABI adds
//! the lock, those checks and the split, nothing else. `benches/constant.sh` measures the
//! cost (docs/performance.md).

use core::ffi::{c_int, c_void};
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};

use crate::error::Error;
use crate::heap::size_with_header;
use crate::process::{self, ProcessHeap};

/// What run.s sees in a 64-bit register when a C caller passes `value`.
pub const fn zero_extended(value: c_int) -> u64 {
    value as u32 as u64
}

/// `void *allocate(int pool, int size)`: first fit from `pool`, else a new
/// block at the end of the heap ([`Heap::allocate`](crate::Heap::allocate)).
/// Returns NULL where run.s would return a block past a refused break, for
/// a pool a Rust [`Pool`](crate::pools::Pool) guard holds, and when called
/// on a thread that holds the heap's lock already (from Rust code holding
/// [`process::lock`]'s guard, or a signal handler that interrupted a heap
/// call on this thread), where waiting would deadlock. Like `malloc`, it is
/// not async-signal-safe: see the crate's [`process`] docs.
///
/// The fast path (the lock is free, no pool is held, a block fits) stays in
/// registers; the rest are calls at its ends, so a reuse saves no registers
/// at all.
#[cfg_attr(feature = "c-abi", unsafe(no_mangle))]
pub extern "C" fn allocate(pool: c_int, size: c_int) -> *mut c_void {
    let (pool, size) = (zero_extended(pool), zero_extended(size));
    match process::try_lock() {
        Some(heap) => allocate_fast(heap, pool, size),
        None => allocate_after_waiting(pool, size),
    }
}

/// `allocate` once the lock is held: when no guard holds any pool (one
/// load), run.s's steps up to the walk, inline; the rest out of line.
#[inline(always)]
fn allocate_fast(mut heap: ProcessHeap, pool: u64, size: u64) -> *mut c_void {
    if !heap.held.is_empty() {
        return allocate_while_pools_are_held(heap, size, pool);
    }
    // A zero-extended int plus 32 cannot wrap: the check compiles away.
    let Ok(size_with_header) = size_with_header(size) else {
        return ptr::null_mut();
    };
    match heap.allocate_continue(pool, size_with_header) {
        Some(found) => found.as_ptr().cast(),
        None => allocate_new_block(heap, size_with_header, pool),
    }
}

/// No block fits and no pool is held: the heap's first allocation, or a
/// new block at the end. Out of line, and it unlocks when it returns, so
/// the fast path's call to it is its last instruction: a `jmp`, since as an
/// `extern "C"` function it cannot unwind into `allocate`. (Its arguments
/// are in the order that leaves `size_with_header` in `%rdx`, where the
/// walk wants it: the heap's guard takes two registers.)
#[inline(never)]
extern "C" fn allocate_new_block(
    heap: ProcessHeap,
    size_with_header: u64,
    pool: u64,
) -> *mut c_void {
    unlock_after(heap, |heap| {
        c_pointer(heap.allocate_new_block(pool, size_with_header))
    })
}

/// Some guard holds some pool: the whole [`Heap::allocate`](crate::Heap::allocate),
/// which refuses a held `pool`. Out of line for the reasons given at
/// [`allocate_new_block`].
#[inline(never)]
extern "C" fn allocate_while_pools_are_held(
    heap: ProcessHeap,
    size: u64,
    pool: u64,
) -> *mut c_void {
    unlock_after(heap, |heap| c_pointer(heap.allocate(pool, size)))
}

/// The pointer C gets for an allocation: NULL for any error. (Made before
/// the unlock, so that only the pointer is kept across it.)
#[inline(always)]
fn c_pointer(block: Result<NonNull<u8>, Error>) -> *mut c_void {
    block.map_or(ptr::null_mut(), |block| block.as_ptr().cast())
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
extern "C" fn allocate_after_waiting(pool: u64, size: u64) -> *mut c_void {
    match process::lock_unless_reentered() {
        Ok(heap) => allocate_fast(heap, pool, size),
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
        Some(heap) => deallocate_fast(heap, ptr),
        None => deallocate_after_waiting(ptr),
    }
}

/// `deallocate` once the lock is held. The fast path: no guard holds any
/// pool (one load) and the index of block starts knows the pointer.
#[inline(always)]
fn deallocate_fast(mut heap: ProcessHeap, ptr: *mut c_void) {
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
/// Out of line and `extern "C"` for the reasons given at [`allocate_new_block`].
#[inline(never)]
extern "C" fn deallocate_rest(heap: ProcessHeap, ptr: *mut c_void) {
    let _ = unlock_after(heap, |heap| heap.try_deallocate(ptr.cast()));
}

/// `deallocate` when the lock was not free (see [`allocate_after_waiting`]).
#[cold]
#[inline(never)]
extern "C" fn deallocate_after_waiting(ptr: *mut c_void) {
    let heap = process::lock_unless_reentered().unwrap_or_else(|_| abort_reentered(b"deallocate"));
    deallocate_fast(heap, ptr);
}

/// Ends the process when C's `deallocate` or `deallocate_pool` is called on a
/// thread that holds the heap's lock (C has no error channel, and waiting
/// would never end). The message goes out with one `write(2)` and the end is
/// `abort()`: no formatting and no `malloc`, so reporting takes no lock that
/// the interrupted code may hold (a panic's message may allocate).
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
