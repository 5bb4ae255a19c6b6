//! An index of block starts, so that a checked `deallocate` need not walk.
//!
//! run.s's `deallocate` trusts its pointer and does two stores. The port's
//! checked [`Heap::try_deallocate`](crate::Heap::try_deallocate) (and so the
//! C ABI's `deallocate`) must first know that the pointer is a block's, and
//! walking the blocks to find out costs O(N). But the set of block starts
//! only ever grows: blocks are appended and never split or merged. So the
//! index records every start as it is appended, in append order (which is
//! walk order: segments in the order they were created, each segment's
//! blocks one run), and a hash table over those positions answers "is this
//! address a block start, and at which position?" in O(1) expected time:
//! a multiply, a shift and, at a load factor of at most 1/2, one or two
//! probes (linear probing, each a load of the slot and of the start it
//! names). A pointer that is not a recorded start (NULL, interior, foreign,
//! on the stack, past the end) is simply not found; its memory is never read.
//!
//! Both arrays live in their own anonymous `mmap` regions ([`MappedVec`]):
//! like the rest of the heap's bookkeeping they never touch `malloc` or the
//! program break. Each append adds two stores (and, when the table is half
//! full, a rebuild at twice the size: amortised O(1)); the index costs 8
//! bytes per block for the starts and 16–32 for the table (at least 32 KiB
//! of address space for the first table, of which only the pages that hold
//! entries are ever touched). If the kernel
//! ever refuses memory for it, the heap stops using it and walks instead.

use crate::mapped_vec::{MappedVec, NoMemory};

/// The address of every block's header, in append order, and a hash table
/// from address to position.
pub(crate) struct BlockIndex {
    starts: MappedVec<usize>,
    /// `position + 1` of a start, or 0 for an empty slot; the length is 0 or
    /// a power of two at least twice the number of starts.
    slots: MappedVec<usize>,
    /// The table [`position`](BlockIndex::position) reads: `slots`, or
    /// [`NO_SLOTS`] while `slots` is empty, so that a lookup needs no
    /// branch for that case.
    table: *const usize,
    /// The table's length minus one.
    mask: usize,
    /// `64 - log2(table length)`: the hash keeps the product's top bits.
    shift: u32,
}

// SAFETY: `table` points into `slots`, which the index owns, or at a
// `static` that is never written; nothing in it is tied to a thread.
unsafe impl Send for BlockIndex {}

/// The table of an index that has none yet: empty slots, so that every
/// lookup ends at its first slot. Two, not one: the hash keeps the top
/// `log2(length)` bits of a product by shifting it right by `64 - log2`,
/// and for one slot that would be a shift by 64, which Rust does not allow
/// (and x86-64 would take as a shift by 0).
static NO_SLOTS: [usize; 2] = [0; 2];

/// Slots in the first table: room for 2 048 blocks before the first rebuild
/// (each rebuild re-inserts every start; with 1 024 slots the mixed workload
/// of `benches/constant.sh`, 2 644 blocks, paid three).
const FIRST_SLOTS: usize = 4096;

/// Fibonacci hashing: 2^64 / φ, odd, so the product's top bits spread
/// numbers that differ in any bit.
const MULTIPLIER: usize = 0x9e37_79b9_7f4a_7c15;

/// Block starts are at least 32 bytes apart (every block has a header), so
/// `start >> 5` differs for any two of them; hashing that instead of the
/// address keeps blocks of one size, a fixed stride apart, from clustering
/// under linear probing (48-byte blocks at N = 10 000: 3.2 extra probes per
/// lookup with the address, none with `>> 5`, in a simulation of this table).
const START_SHIFT: u32 = 5;

impl BlockIndex {
    /// No blocks, no mapping yet.
    pub(crate) const EMPTY: BlockIndex = BlockIndex {
        starts: MappedVec::EMPTY,
        slots: MappedVec::EMPTY,
        table: NO_SLOTS.as_ptr(),
        mask: NO_SLOTS.len() - 1,
        shift: usize::BITS - NO_SLOTS.len().trailing_zeros(),
    };

    /// Records a block appended after every recorded one of its segment.
    /// Fails only if the kernel refuses memory; the index is unchanged then.
    #[inline]
    pub(crate) fn push(&mut self, block: usize) -> Result<(), NoMemory> {
        let needed = 2 * (self.starts.len() + 1);
        if needed > self.slots.len() {
            self.rebuild(needed.next_power_of_two().max(FIRST_SLOTS))?;
        }
        self.starts.push(block)?;
        let position = self.starts.len() - 1;
        self.insert(block, position);
        Ok(())
    }

    /// The position of `block` in append order (walk order), if it is a
    /// recorded start. O(1) expected; reads only the index.
    #[inline]
    pub(crate) fn position(&self, block: usize) -> Option<usize> {
        let starts = self.starts.as_slice();
        let mut slot = self.home(block);
        loop {
            // SAFETY: `home` keeps the top log2(length) bits of a product,
            // so it is below the table's length, and so is every `& mask`;
            // the table is `slots`' live mapping or NO_SLOTS.
            let position = unsafe { *self.table.add(slot) }.checked_sub(1)?;
            // SAFETY: a slot holds `position + 1` only for a position that
            // `push` recorded in `starts`, which never shrinks (NO_SLOTS
            // holds none).
            if unsafe { *starts.get_unchecked(position) } == block {
                return Some(position);
            }
            slot = (slot + 1) & self.mask;
        }
    }

    /// The start of the block at `position` in append order.
    #[cfg(feature = "indexed-fit")]
    pub(crate) fn start(&self, position: usize) -> usize {
        self.starts.as_slice()[position]
    }

    #[inline]
    fn home(&self, block: usize) -> usize {
        (block >> START_SHIFT).wrapping_mul(MULTIPLIER) >> self.shift
    }

    /// Puts `position` (whose start is `block`) in the first empty slot
    /// from `block`'s home on (there is one: the table is at most half full).
    fn insert(&mut self, block: usize, position: usize) {
        let home = self.home(block);
        let slots = self.slots.as_mut_slice();
        let mask = slots.len() - 1;
        let mut slot = home;
        while slots[slot] != 0 {
            slot = (slot + 1) & mask;
        }
        slots[slot] = position + 1;
    }

    /// A table of `size` (a power of two) empty slots, with every recorded
    /// start in it, and room for one more start.
    #[cold]
    #[inline(never)]
    fn rebuild(&mut self, size: usize) -> Result<(), NoMemory> {
        self.starts.reserve(1)?;
        self.slots = MappedVec::zeroed(size)?;
        self.table = self.slots.as_ptr();
        self.mask = size - 1;
        self.shift = usize::BITS - size.trailing_zeros();
        for position in 0..self.starts.len() {
            self.insert(self.starts.as_slice()[position], position);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_recorded_starts_with_their_positions() {
        // Two segments, the second below the first, many table rebuilds.
        let high: Vec<usize> = (0..10_000).map(|i| 0x10_0000 + i * 48 + i % 7).collect();
        let low: Vec<usize> = (0..100).map(|i| 0x1000 + i * 64).collect();
        let all: std::collections::HashSet<usize> = high.iter().chain(&low).copied().collect();
        let mut index = BlockIndex::EMPTY;
        for absent in [0, 8, 0x10_0000, usize::MAX - 31, usize::MAX] {
            assert_eq!(index.position(absent), None, "empty index: {absent:#x}");
        }
        for &start in high.iter().chain(&low) {
            index.push(start).unwrap();
        }
        for (position, &start) in high.iter().chain(&low).enumerate() {
            assert_eq!(index.position(start), Some(position));
            for near in [start + 1, start - 1, start + 8, start + 16, start + 31] {
                if !all.contains(&near) {
                    assert_eq!(index.position(near), None, "{near:#x}");
                }
            }
        }
        for absent in [
            0,
            8,
            0x1000 + 100 * 64,
            0x10_0001,
            usize::MAX,
            usize::MAX - 31,
        ] {
            assert_eq!(index.position(absent), None, "{absent:#x}");
        }
    }
}
