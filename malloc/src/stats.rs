//! What the malloc family did to the heap, counted as it happens: the
//! figures of the summary ([`crate::summary`]) that the heap's final state
//! cannot tell.
//!
//! **Walk lengths.** run.s's first fit visits every block from the first
//! one until one fits (or all of them, before appending). Blocks are never
//! split, merged or removed, and new ones are appended at the end of the
//! newest segment, which the walk visits last: so a block's position in the
//! walk never changes. On every append the block's position (1 for the
//! first block) is written into its header's fourth quadword, which run.s
//! and the port never use; a reuse then visited that many blocks, an append
//! all the blocks before it. The `indexed-fit` build finds the same blocks
//! through its index: there the figures are what the walk would have
//! visited.
//!
//! **Break moves and mappings.** An append that moved the heap's
//! [`break_end`](brk_pools::Heap::break_end) while the heap grows on the
//! program break is one `brk`; one that started a new segment off the
//! break is one `mmap` reservation (growth inside a reservation needs no
//! system call).
//!
//! Every counter is updated under the heap's lock.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use brk_pools::header::{HDR_POOL_OFFSET, HEADER_SIZE};
use brk_pools::process::ProcessHeap;

use crate::MALLOC_POOL;

/// Byte offset of the header's fourth quadword, where a block's walk
/// position is kept.
const POSITION_OFFSET: usize = HDR_POOL_OFFSET + 8;

/// Allocations the heap served (including those of `realloc` and the
/// aligned family).
pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Allocations the heap refused.
pub static REFUSALS: AtomicU64 = AtomicU64::new(0);
/// Blocks appended (every block the heap has: none is ever removed).
pub static APPENDS: AtomicU64 = AtomicU64::new(0);
/// Blocks visited by all the walks together.
pub static WALK_TOTAL: AtomicU64 = AtomicU64::new(0);
/// Blocks visited by the longest walk.
pub static WALK_LONGEST: AtomicU64 = AtomicU64::new(0);
/// Appends that moved the program break.
pub static BREAK_MOVES: AtomicU64 = AtomicU64::new(0);
/// Appends that started a new segment off the break (mmap reservations).
pub static MAPPED_SEGMENTS: AtomicU64 = AtomicU64::new(0);

/// `heap.allocate(MALLOC_POOL, size)`, counted.
pub fn allocate_counted(heap: &mut ProcessHeap, size: usize) -> Option<NonNull<u8>> {
    let end_before = heap.memory_end();
    let break_before = heap.break_end();
    let segments_before = heap.segments().len();
    let on_break = heap.source().uses_break();
    let Ok(pointer) = heap.allocate(MALLOC_POOL, size as u64) else {
        REFUSALS.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    let position = pointer
        .as_ptr()
        .wrapping_sub(HEADER_SIZE - POSITION_OFFSET)
        .cast::<u64>();
    let appended = heap.memory_end() != end_before || heap.segments().len() != segments_before;
    let visited = if appended {
        let before = APPENDS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the header of the block just allocated, which this heap
        // wrote and nobody else holds; its fourth quadword is unused.
        unsafe { position.write_unaligned(before + 1) };
        if heap.break_end() != break_before {
            if on_break {
                BREAK_MOVES.fetch_add(1, Ordering::Relaxed);
            } else if heap.segments().len() != segments_before {
                MAPPED_SEGMENTS.fetch_add(1, Ordering::Relaxed);
            }
        }
        before
    } else {
        // SAFETY: as above; the quadword was written when the block was
        // appended.
        unsafe { position.read_unaligned() }
    };
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    WALK_TOTAL.fetch_add(visited, Ordering::Relaxed);
    WALK_LONGEST.fetch_max(visited, Ordering::Relaxed);
    Some(pointer)
}
