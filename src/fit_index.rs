//! First fit in O(log N): a tournament tree of the largest free size over the
//! blocks in walk order (the `indexed-fit` feature).
//!
//! run.s's `allocate_loop` walks the blocks from `memory_start` and takes the
//! first one that is free and big enough: O(N) per allocate. The same answer
//! comes out of a tree whose leaves are the blocks in walk order (the port's
//! segments in the order they were created, addresses within a segment;
//! blocks are only ever appended, so walk order is append order) and whose
//! leaf value is the block's size if it is free and 0 if it is in use. Every
//! inner node holds the largest value below it. The first fitting block is
//! then found from the root down: go left if the left subtree holds a big
//! enough free block, else right. Requests are never 0 bytes with the header
//! (at least 32), so an in-use block (0) never fits, exactly as the walk's
//! `cmpq $0, in_use` skips it.
//!
//! The tree is an implicit binary heap in one anonymous `mmap` region:
//! `capacity` leaves (a power of two) at `[capacity, 2 * capacity)`, node `i`'s
//! children at `2i` and `2i + 1`, the root at 1. It never touches `malloc` or
//! the program break. When the leaves run out, a region twice the size is
//! mapped, the leaves copied and the inner nodes rebuilt (O(N), amortised
//! O(1) per append). If the kernel refuses memory, [`FitIndex::push`] says so
//! and the heap goes back to the asm walk for good.

use core::ptr;

/// The largest free block size over every range of blocks, in walk order.
#[derive(Debug)]
pub(crate) struct FitIndex {
    /// `2 * capacity` nodes; node 0 is unused.
    nodes: *mut u64,
    /// Leaves in use: the blocks recorded so far.
    len: usize,
    /// Leaves the mapping has room for (0 or a power of two).
    capacity: usize,
}

// SAFETY: the index owns its mapping; nothing in it is tied to a thread.
unsafe impl Send for FitIndex {}

/// Leaves in the first mapping: 8 KiB of nodes.
const FIRST_CAPACITY: usize = 512;

impl FitIndex {
    /// No blocks, no mapping yet.
    pub(crate) const EMPTY: FitIndex = FitIndex {
        nodes: ptr::null_mut(),
        len: 0,
        capacity: 0,
    };

    /// How many blocks are recorded.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Records the block appended after every recorded one, with `free_size`
    /// (its size if free, 0 if in use). Fails only if the kernel refuses
    /// memory; the index is unchanged then.
    pub(crate) fn push(&mut self, free_size: u64) -> Result<(), ()> {
        if self.len == self.capacity {
            self.grow()?;
        }
        self.len += 1;
        self.set(self.len - 1, free_size);
        Ok(())
    }

    /// Block `position` is now free with `free_size` bytes, or in use (0).
    pub(crate) fn set(&mut self, position: usize, free_size: u64) {
        assert!(position < self.len, "block {position} not in the fit index");
        let mut node = self.capacity + position;
        let mut largest = free_size;
        // SAFETY: node < 2 * capacity, inside the mapping, and so are its
        // parents and their siblings.
        unsafe {
            *self.nodes.add(node) = free_size;
            while node > 1 {
                // The parent's value is the larger of this node's (known)
                // and its sibling's.
                largest = largest.max(*self.nodes.add(node ^ 1));
                node /= 2;
                if *self.nodes.add(node) == largest {
                    break; // then nothing above it changes either
                }
                *self.nodes.add(node) = largest;
            }
        }
    }

    /// The first block in walk order whose free size is at least `size`.
    /// `size` counts the header, so it is never 0 (an in-use block, 0 here,
    /// must never fit).
    pub(crate) fn first_fit(&self, size: u64) -> Option<usize> {
        assert!(size > 0, "a request with its header is at least 32 bytes");
        if self.len == 0 {
            return None;
        }
        // SAFETY: every node index below is in 1 .. 2 * capacity.
        unsafe {
            if *self.nodes.add(1) < size {
                return None;
            }
            let mut node = 1;
            while node < self.capacity {
                node *= 2;
                // Branch-free: left child if it fits, else the right one
                // (which then must, since the parent does).
                node += usize::from(*self.nodes.add(node) < size);
            }
            Some(node - self.capacity)
        }
    }

    /// Sets every leaf from `free_sizes` (one per recorded block, in walk
    /// order) and rebuilds the inner nodes: O(N), for `deallocate_pool`.
    pub(crate) fn refill(&mut self, free_sizes: impl Iterator<Item = u64>) {
        let mut position = 0;
        for free_size in free_sizes {
            assert!(position < self.len, "more blocks than the fit index holds");
            // SAFETY: capacity + position < 2 * capacity.
            unsafe { *self.nodes.add(self.capacity + position) = free_size };
            position += 1;
        }
        assert_eq!(position, self.len, "fewer blocks than the fit index holds");
        self.rebuild_inner_nodes();
    }

    fn rebuild_inner_nodes(&mut self) {
        for node in (1..self.capacity).rev() {
            // SAFETY: node, 2 node and 2 node + 1 are all < 2 * capacity.
            unsafe {
                let largest = (*self.nodes.add(2 * node)).max(*self.nodes.add(2 * node + 1));
                *self.nodes.add(node) = largest;
            }
        }
    }

    fn grow(&mut self) -> Result<(), ()> {
        let capacity = (self.capacity * 2).max(FIRST_CAPACITY);
        let bytes = capacity.checked_mul(2 * size_of::<u64>()).ok_or(())?;
        // SAFETY: a fresh anonymous private mapping aliases nothing; it comes
        // zeroed, so the unused leaves are 0 (in use: never a fit).
        let mapping = unsafe {
            libc::mmap(
                ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            return Err(());
        }
        let nodes: *mut u64 = mapping.cast();
        if !self.nodes.is_null() {
            // SAFETY: the old leaves [capacity, capacity + len) and the new
            // slots [new capacity, new capacity + len) are in two distinct
            // mappings; then the old mapping, ours alone, is unmapped.
            unsafe {
                ptr::copy_nonoverlapping(
                    self.nodes.add(self.capacity),
                    nodes.add(capacity),
                    self.len,
                );
                libc::munmap(self.nodes.cast(), self.capacity * 2 * size_of::<u64>());
            }
        }
        self.nodes = nodes;
        self.capacity = capacity;
        self.rebuild_inner_nodes();
        Ok(())
    }
}

impl Drop for FitIndex {
    fn drop(&mut self) {
        if !self.nodes.is_null() {
            // SAFETY: nodes/capacity describe exactly our mapping.
            unsafe { libc::munmap(self.nodes.cast(), self.capacity * 2 * size_of::<u64>()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*), so failures replay.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// The walk's answer: the first free block (non-zero) big enough.
    fn naive_first_fit(model: &[u64], size: u64) -> Option<usize> {
        model.iter().position(|&free| free != 0 && free >= size)
    }

    fn check_all_sizes(index: &FitIndex, model: &[u64], context: &str) {
        assert_eq!(index.len(), model.len(), "{context}");
        let mut sizes: Vec<u64> = model
            .iter()
            .flat_map(|&s| [s, s + 1, s.saturating_sub(1)])
            .collect();
        sizes.extend([1, 32, 33, u64::MAX]);
        for size in sizes.into_iter().filter(|&s| s > 0) {
            assert_eq!(
                index.first_fit(size),
                naive_first_fit(model, size),
                "{context}: size {size}"
            );
        }
    }

    #[test]
    fn an_empty_index_fits_nothing() {
        let index = FitIndex::EMPTY;
        assert_eq!(index.first_fit(32), None);
    }

    #[test]
    fn finds_the_first_fitting_block_not_the_best() {
        let mut index = FitIndex::EMPTY;
        for free in [0, 48, 0, 400, 96, 0] {
            index.push(free).unwrap();
        }
        assert_eq!(index.first_fit(40), Some(1));
        assert_eq!(index.first_fit(90), Some(3)); // not the tighter 96 at 4
        assert_eq!(index.first_fit(401), None);
        index.set(3, 0);
        assert_eq!(index.first_fit(90), Some(4));
        index.set(1, 0);
        assert_eq!(index.first_fit(40), Some(4));
    }

    /// Random pushes, frees, allocations and refills against a plain vector,
    /// across several regrowths of the mapping.
    #[test]
    fn agrees_with_a_naive_model_under_random_operations() {
        for seed in 1..=6u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut index = FitIndex::EMPTY;
            let mut model: Vec<u64> = Vec::new();
            for step in 0..6000 {
                let context = format!("seed {seed} step {step}");
                match rng.below(10) {
                    0..=2 => {
                        let free = if rng.below(3) == 0 {
                            32 + rng.below(200)
                        } else {
                            0
                        };
                        index.push(free).unwrap();
                        model.push(free);
                    }
                    3..=5 if !model.is_empty() => {
                        let position = rng.below(model.len() as u64) as usize;
                        let free = 32 + rng.below(200);
                        index.set(position, free);
                        model[position] = free;
                    }
                    6..=8 => {
                        // An allocate: take the first fit, as the heap does.
                        let size = 32 + rng.below(220);
                        let found = index.first_fit(size);
                        assert_eq!(found, naive_first_fit(&model, size), "{context}");
                        if let Some(position) = found {
                            index.set(position, 0);
                            model[position] = 0;
                        }
                    }
                    _ if !model.is_empty() => {
                        // deallocate_pool: some blocks change, then a refill.
                        for free in model.iter_mut() {
                            if rng.below(4) == 0 {
                                *free = if *free == 0 { 32 + rng.below(200) } else { 0 };
                            }
                        }
                        index.refill(model.iter().copied());
                    }
                    _ => {}
                }
                if step % 500 == 0 {
                    check_all_sizes(&index, &model, &context);
                }
            }
            assert!(index.capacity >= 2048, "the test must cross regrowths");
            check_all_sizes(&index, &model, &format!("seed {seed} end"));
        }
    }

    #[test]
    #[should_panic(expected = "not in the fit index")]
    fn setting_an_unrecorded_block_panics() {
        let mut index = FitIndex::EMPTY;
        index.push(0).unwrap();
        index.set(1, 48);
    }
}
