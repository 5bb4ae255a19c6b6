//! An index of block starts, so that a checked `deallocate` need not walk.
//!
//! run.s's `deallocate` trusts its pointer and does two stores. The port's
//! checked [`Heap::try_deallocate`](crate::Heap::try_deallocate) (and so the
//! C ABI's `deallocate`) must first know that the pointer is a block's, and
//! walking the blocks to find out costs O(N). But the set of block starts
//! only ever grows, and only at the end of the newest segment: blocks are
//! appended at increasing addresses within a segment and never split or
//! merged. So the starts, in the order they were appended, are sorted within
//! each segment's contiguous run of entries (segments themselves may lie in
//! any address order: see the `heap` module), and a binary search in the
//! right segment's run answers in O(log N).
//!
//! The array lives in its own anonymous `mmap` region ([`MappedVec`]): like
//! the rest of the heap's bookkeeping it never touches `malloc` or the
//! program break. Each append adds one store; the index costs 8 bytes per
//! block. If the kernel ever refuses memory for it, the heap stops using it
//! and walks instead.

use core::ops::Range;

use crate::mapped_vec::{MappedVec, NoMemory};

/// The address of every block's header, in append order.
pub(crate) struct BlockIndex {
    starts: MappedVec<usize>,
}

impl BlockIndex {
    /// No blocks, no mapping yet.
    pub(crate) const EMPTY: BlockIndex = BlockIndex {
        starts: MappedVec::EMPTY,
    };

    /// How many blocks are recorded: the position the next one gets.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// Records a block appended after every recorded one of its segment.
    pub(crate) fn push(&mut self, block: usize) -> Result<(), NoMemory> {
        self.starts.push(block)
    }

    /// Where `block` is among the recorded starts in positions `run` (one
    /// segment's run of entries, which is sorted), if there: its position in
    /// append order, which is walk order.
    pub(crate) fn position_in(&self, run: Range<usize>, block: usize) -> Option<usize> {
        let first = run.start;
        let entries = &self.starts.as_slice()[run];
        debug_assert!(entries.is_sorted());
        entries.binary_search(&block).ok().map(|slot| first + slot)
    }

    /// The start of the block at `position` in append order.
    #[cfg(feature = "indexed-fit")]
    pub(crate) fn start(&self, position: usize) -> usize {
        self.starts.as_slice()[position]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_recorded_starts_of_each_run() {
        let high: Vec<usize> = (0..10_000).map(|i| 0x10_0000 + i * 48 + i % 7).collect();
        let low: Vec<usize> = (0..100).map(|i| 0x1000 + i * 64).collect();
        let mut index = BlockIndex::EMPTY;
        for &start in high.iter().chain(&low) {
            index.push(start).unwrap();
        }
        let (high_run, low_run) = (0..high.len(), high.len()..index.len());
        assert!(
            high.iter()
                .all(|&s| index.position_in(high_run.clone(), s).is_some())
        );
        assert!(
            low.iter()
                .all(|&s| index.position_in(low_run.clone(), s).is_some())
        );
        assert_eq!(index.position_in(high_run.clone(), high[5]), Some(5));
        assert_eq!(
            index.position_in(low_run.clone(), low[3]),
            Some(high.len() + 3)
        );
        assert_eq!(index.position_in(high_run.clone(), low[0]), None);
        assert_eq!(index.position_in(low_run.clone(), high[0]), None);
        assert_eq!(index.position_in(high_run, 0x10_0001), None);
        assert_eq!(index.position_in(low_run, usize::MAX), None);
    }
}
