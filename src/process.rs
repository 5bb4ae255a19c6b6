//! The one heap on the process's real program break.
//!
//! A process has one break, so it has one [`Heap<ProcessBreak>`]. It lives in
//! a `static` behind a [`std::sync::Mutex`] (a futex: no allocation, so locking
//! it cannot move the break). Rust code reaches it with [`lock`]; the C ABI in
//! [`crate::c_abi`] takes the same lock, so Rust and C callers can share it
//! from any thread.
//!
//! While the guard lives, the original's two globals `memory_start` and
//! `memory_end` (exported unmangled, as C drivers such as `asm/trace.c` read
//! them) are refreshed from the heap when the guard is dropped.
//!
//! For safe, scoped pools on this heap, see [`crate::pools::process`]: its
//! guards take the same lock for each operation, and the heap refuses to let
//! [`lock`] users or C callers allocate into or free a pool a guard holds.
//!
//! # Living with glibc `malloc`
//!
//! glibc's `malloc` also moves the break (its main arena grows and trims its
//! heap with `sbrk`), so the two allocators take turns at the top of the data
//! segment. run.s assumes it is alone and calls `brk(memory_end + n)`, which
//! pulls the break back under malloc's chunks (original-behaviour A.8). The
//! port instead:
//!
//! * moves the break only through glibc's own `sbrk` ([`ProcessBreak`]), so
//!   glibc's cached break stays right and it never trims below a block of
//!   ours (glibc trims only when the break is still the end of its own top
//!   chunk);
//! * continues in a new *segment* at the current break when someone else has
//!   moved it since the heap last grew: the blocks of one segment are
//!   contiguous, the segments are walked in address order, and malloc's
//!   chunks between them are never touched. With nobody else moving the break
//!   there is one segment and the layout is the original's to the byte.
//!
//! The heap itself never calls `malloc` (its segment table and the table of
//! held pools are fixed arrays), so it cannot move the break under itself.
//! One race remains: `sbrk` is not thread-safe, and glibc calls it under its
//! main-arena lock, not under this module's lock. A thread that grows the
//! *main* malloc arena while another thread appends a block here can break
//! both. Threads other than the main one normally get their own (mmap'd)
//! malloc arenas; see the README's deviations table.

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::heap::{Growth, Heap};
use crate::source::ProcessBreak;

/// How the process heap grows the break: one `brk` per append, as run.s
/// does, unless the `batched-brk` feature asks for [`BATCH_STEP`] steps.
#[cfg(not(feature = "batched-brk"))]
pub const GROWTH: Growth = Growth::Exact;

/// How the process heap grows the break: in [`BATCH_STEP`] steps (the
/// `batched-brk` feature). Layouts, pointers and `memory_end` are the same as
/// with [`Growth::Exact`]; only the number of `brk` calls drops.
#[cfg(feature = "batched-brk")]
pub const GROWTH: Growth = Growth::Batched { step: BATCH_STEP };

/// Bytes per break move with the `batched-brk` feature: 64 KiB.
pub const BATCH_STEP: usize = 64 * 1024;

#[cfg(not(feature = "batched-brk"))]
macro_rules! growth_name {
    () => {
        "exact"
    };
}
#[cfg(feature = "batched-brk")]
macro_rules! growth_name {
    () => {
        "batched"
    };
}
#[cfg(feature = "indexed-fit")]
macro_rules! fit_name {
    () => {
        "indexed"
    };
}
#[cfg(not(feature = "indexed-fit"))]
macro_rules! fit_name {
    () => {
        "walk"
    };
}
#[cfg(feature = "c-abi")]
macro_rules! c_abi_name {
    () => {
        "yes"
    };
}
#[cfg(not(feature = "c-abi"))]
macro_rules! c_abi_name {
    () => {
        "no"
    };
}

/// Names this build's features in the compiled library, where tools can find
/// it: the tests link C programs with `libbrk_pools.a` and must pick the
/// archive built with the same features as themselves.
pub const BUILD_TAG: &str = concat!(
    "brk-pools-build:growth=",
    growth_name!(),
    ",c-abi=",
    c_abi_name!(),
    ",fit=",
    fit_name!(),
    ";"
);

/// [`BUILD_TAG`]'s bytes, kept in the library's data by `#[used]`.
#[used]
#[unsafe(no_mangle)]
pub static BRK_POOLS_BUILD_TAG: [u8; BUILD_TAG.len()] = tag_bytes();

const fn tag_bytes() -> [u8; BUILD_TAG.len()] {
    let mut bytes = [0; BUILD_TAG.len()];
    let mut i = 0;
    while i < bytes.len() {
        bytes[i] = BUILD_TAG.as_bytes()[i];
        i += 1;
    }
    bytes
}

static PROCESS_HEAP: Mutex<Heap<ProcessBreak>> =
    Mutex::new(Heap::with_growth(ProcessBreak::new(), GROWTH));

/// run.s's `memory_start` quadword, mirrored for C code that reads it
/// (0 before the first allocation).
#[cfg_attr(feature = "c-abi", unsafe(no_mangle))]
#[allow(non_upper_case_globals)]
pub static memory_start: AtomicUsize = AtomicUsize::new(0);

/// run.s's `memory_end` quadword, mirrored for C code that reads it: the end
/// of the last block (0 before the first allocation).
#[cfg_attr(feature = "c-abi", unsafe(no_mangle))]
#[allow(non_upper_case_globals)]
pub static memory_end: AtomicUsize = AtomicUsize::new(0);

/// Exclusive access to the process heap. Dropping it publishes
/// `memory_start` and `memory_end`.
pub struct ProcessHeap {
    guard: MutexGuard<'static, Heap<ProcessBreak>>,
}

/// Locks the process heap.
///
/// A panic while the lock was held does not poison it for good: the heap's
/// state is only changed by code that cannot panic half-way, so the guard is
/// taken back.
///
/// ```
/// let mut heap = brk_pools::process::lock();
/// let p = heap.allocate(1, 64).unwrap();
/// assert!(heap.is_block_pointer(p.as_ptr()));
/// heap.deallocate_pool(1);
/// ```
pub fn lock() -> ProcessHeap {
    let guard = PROCESS_HEAP
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    ProcessHeap { guard }
}

impl Deref for ProcessHeap {
    type Target = Heap<ProcessBreak>;

    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl DerefMut for ProcessHeap {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

impl Drop for ProcessHeap {
    fn drop(&mut self) {
        memory_start.store(self.guard.memory_start() as usize, Ordering::Relaxed);
        memory_end.store(self.guard.memory_end() as usize, Ordering::Relaxed);
    }
}
