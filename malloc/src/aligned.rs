//! Alignments above 16: over-allocation, and a marker that leads back from
//! the pointer handed out to its block.
//!
//! `memalign(alignment, size)` takes a block of `size + alignment + 16`
//! bytes and hands out the first `alignment`-aligned address at least 16
//! bytes into it (the block's own pointer when that is aligned already).
//! The 16 bytes below that address hold the marker: [`MARKER_MAGIC`] xor the
//! address, then the block's pointer. `free`, `realloc` and
//! `malloc_usable_size` accept such an address when it lies inside a
//! segment of the heap, the marker names an in-use block, and the address
//! lies inside that block; freeing it clears the marker.

use core::ptr::NonNull;

use brk_pools::Block;
use brk_pools::header::HEADER_SIZE;
use brk_pools::process::ProcessHeap;

use crate::stats;

/// The marker's first word, xor the address it is stored below.
pub const MARKER_MAGIC: u64 = 0xb4b0_01a1_19ed_5eed;

/// Bytes of the marker below an aligned address.
const MARKER_SIZE: usize = 16;

/// A block of at least `size` bytes at an `alignment`-aligned address
/// (`alignment` a power of two), on the locked heap.
pub fn allocate_aligned(
    heap: &mut ProcessHeap,
    alignment: usize,
    size: usize,
) -> Option<NonNull<u8>> {
    let total = size.checked_add(alignment)?.checked_add(MARKER_SIZE)?;
    let block = stats::allocate_counted(heap, total)?;
    let start = block.as_ptr() as usize;
    if start.is_multiple_of(alignment) {
        return Some(block);
    }
    let aligned = (start + MARKER_SIZE).next_multiple_of(alignment);
    let marker = block.as_ptr().wrapping_add(aligned - MARKER_SIZE - start);
    // SAFETY: `aligned + size <= start + total`, so the marker's 16 bytes
    // below `aligned` lie inside the block just allocated.
    unsafe {
        marker
            .cast::<u64>()
            .write_unaligned(MARKER_MAGIC ^ aligned as u64);
        marker.cast::<u64>().add(1).write_unaligned(start as u64);
    }
    NonNull::new(block.as_ptr().wrapping_add(aligned - start))
}

/// The block `ptr` was handed out from: a block whose pointer it is, or the
/// in-use block an aligned address's marker names. None for anything else
/// (memory outside the heap's segments is never read).
pub fn owning_block(heap: &ProcessHeap, ptr: *mut u8) -> Option<Block> {
    if let Some(block) = heap.block_of(ptr) {
        return Some(block);
    }
    let (block, _) = marked_block(heap, ptr)?;
    Some(block)
}

/// The bytes from `ptr` to the end of [`owning_block`]'s block.
pub fn usable_size(heap: &ProcessHeap, ptr: *mut u8) -> Option<usize> {
    if let Some(block) = heap.block_of(ptr) {
        return usize::try_from(block.header.capacity()).ok();
    }
    let (_, end) = marked_block(heap, ptr)?;
    Some(end - ptr as usize)
}

/// Frees the block `ptr` was handed out from (see [`owning_block`]),
/// clearing an aligned address's marker first. Does nothing for pointers
/// that are no block's.
pub fn free(heap: &mut ProcessHeap, ptr: *mut u8) {
    if heap.block_of(ptr).is_some() {
        let _ = heap.try_deallocate(ptr);
        return;
    }
    if let Some((block, _)) = marked_block(heap, ptr) {
        // SAFETY: marked_block checked that the marker's 16 bytes lie inside
        // an in-use block of the heap.
        unsafe {
            ptr.wrapping_sub(MARKER_SIZE)
                .cast::<u64>()
                .write_unaligned(0)
        };
        let _ = heap.try_deallocate(block.pointer());
    }
}

/// The in-use block whose marker sits below `ptr`, and the end of its data.
fn marked_block(heap: &ProcessHeap, ptr: *mut u8) -> Option<(Block, usize)> {
    let address = ptr as usize;
    let marker = address.checked_sub(MARKER_SIZE)?;
    let inside_a_segment = heap.segments().iter().any(|segment| {
        segment.start as usize + HEADER_SIZE <= marker && address <= segment.end as usize
    });
    if !inside_a_segment {
        return None;
    }
    let marker = marker as *const u64;
    // SAFETY: the marker's 16 bytes lie inside a segment of the heap, which
    // is readable memory (headers and the blocks' data).
    let (magic, start) = unsafe { (marker.read_unaligned(), marker.add(1).read_unaligned()) };
    if magic != MARKER_MAGIC ^ address as u64 {
        return None;
    }
    let block = heap.block_of(start as usize as *mut u8)?;
    let end = start as usize + usize::try_from(block.header.capacity()).ok()?;
    let inside = block.header.is_in_use() && (start as usize) < address && address < end;
    inside.then_some((block, end))
}
