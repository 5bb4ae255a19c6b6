//! An index of block starts, so that a checked `deallocate` need not walk.
//!
//! run.s's `deallocate` trusts its pointer and does two stores. The port's
//! checked [`Heap::try_deallocate`](crate::Heap::try_deallocate) (and so the
//! C ABI's `deallocate`) must first know that the pointer is a block's, and
//! walking the blocks to find out costs O(N). But the set of block starts
//! only ever grows, and only at the end: blocks are appended at increasing
//! addresses (segments too, since the break only grows) and never split or
//! merged. So the starts, in the order they were appended, are a sorted
//! array, and a binary search answers in O(log N).
//!
//! The array lives in its own anonymous `mmap` region, mapped at the first
//! append and grown with `mremap` (doubling): like the rest of the heap's
//! bookkeeping it never touches `malloc` or the program break. Each append
//! adds one store; the index costs 8 bytes per block. If the kernel ever
//! refuses memory for it, the heap stops using it and walks instead.

use core::ptr;

/// Sorted addresses of every block's header.
#[derive(Debug)]
pub(crate) struct BlockIndex {
    starts: *mut usize,
    len: usize,
    capacity: usize,
}

// SAFETY: the index owns its mapping; nothing in it is tied to a thread.
unsafe impl Send for BlockIndex {}

const FIRST_CAPACITY: usize = 4096 / size_of::<usize>();

impl BlockIndex {
    /// No blocks, no mapping yet.
    pub(crate) const EMPTY: BlockIndex = BlockIndex {
        starts: ptr::null_mut(),
        len: 0,
        capacity: 0,
    };

    /// Records a block appended after every recorded one.
    pub(crate) fn push(&mut self, block: usize) -> Result<(), ()> {
        debug_assert!(self.entries().last().is_none_or(|&last| last < block));
        if self.len == self.capacity {
            self.grow()?;
        }
        // SAFETY: len < capacity, so the slot lies in the mapping.
        unsafe { self.starts.add(self.len).write(block) };
        self.len += 1;
        Ok(())
    }

    /// Whether `block` is a recorded block start.
    pub(crate) fn contains(&self, block: usize) -> bool {
        self.position(block).is_some()
    }

    /// Where `block` is in append order (which is walk order), if recorded.
    pub(crate) fn position(&self, block: usize) -> Option<usize> {
        self.entries().binary_search(&block).ok()
    }

    /// The start of the block at `position` in append order.
    #[cfg(feature = "indexed-fit")]
    pub(crate) fn start(&self, position: usize) -> usize {
        self.entries()[position]
    }

    fn entries(&self) -> &[usize] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the first len entries of the mapping were written by push.
        unsafe { core::slice::from_raw_parts(self.starts, self.len) }
    }

    fn grow(&mut self) -> Result<(), ()> {
        let capacity = (self.capacity * 2).max(FIRST_CAPACITY);
        let bytes = capacity.checked_mul(size_of::<usize>()).ok_or(())?;
        let mapping = if self.starts.is_null() {
            // SAFETY: a fresh anonymous private mapping aliases nothing.
            unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            }
        } else {
            // SAFETY: starts/capacity describe our own mapping; MAYMOVE keeps
            // its contents and no reference into it outlives this call.
            unsafe {
                libc::mremap(
                    self.starts.cast(),
                    self.capacity * size_of::<usize>(),
                    bytes,
                    libc::MREMAP_MAYMOVE,
                )
            }
        };
        if mapping == libc::MAP_FAILED {
            return Err(());
        }
        self.starts = mapping.cast();
        self.capacity = capacity;
        Ok(())
    }
}

impl Drop for BlockIndex {
    fn drop(&mut self) {
        if !self.starts.is_null() {
            // SAFETY: starts/capacity describe exactly our mapping.
            unsafe { libc::munmap(self.starts.cast(), self.capacity * size_of::<usize>()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_recorded_starts_across_regrowths() {
        let starts: Vec<usize> = (0..10_000).map(|i| 0x1000 + i * 48 + i % 7).collect();
        let mut index = BlockIndex::EMPTY;
        assert!(!index.contains(0x1000));
        for &start in &starts {
            index.push(start).unwrap();
        }
        assert!(starts.iter().all(|&s| index.contains(s)));
        assert!(!index.contains(0x1001));
        assert!(!index.contains(0));
        assert!(!index.contains(usize::MAX));
    }
}
