//! First fit in O(log N): a tournament tree of the largest free size over the
//! blocks in walk order, eight children to a node (the `indexed-fit` feature).
//!
//! run.s's `allocate_loop` walks the blocks from `memory_start` and takes the
//! first one that is free and big enough: O(N) per allocate. The same answer
//! comes out of a tree whose leaves are the blocks in walk order (the port's
//! segments in the order they were created, addresses within a segment;
//! blocks are only ever appended, so walk order is append order) and whose
//! leaf value is the block's size if it is free and 0 if it is in use. Every
//! inner node holds the largest value of its children. The first fitting
//! block is then found from the root down: at each node, go to the leftmost
//! child that holds a big enough free block (one must, since the node does).
//! Requests are never 0 bytes with the header (at least 32), so an in-use
//! block (0) never fits, exactly as the walk's `cmpq $0, in_use` skips it.
//!
//! # Why eight children
//!
//! A binary tree over 10 000 blocks is 14 levels deep, and both the descent
//! and the update after it are chains of 14 dependent loads: each level's
//! address is known only once the level above is read. With eight children a
//! node, the same blocks need 5 levels. The eight children of a node are
//! eight `u64`s side by side, 64 bytes: one cache line (the mapping is
//! page-aligned and every group of siblings starts at a multiple of eight
//! slots). One level of the descent reads that line and scans it from the
//! left for the first child whose maximum fits: once the line is in cache,
//! each step is a compare and a branch, and the next level's address follows.
//! (A branch-free version, a mask of all eight compares and its
//! `trailing_zeros`, was measured slower, with the rest of the allocate as
//! it was then: 549 instructions and ~73 ns per reusing allocate at
//! N = 10 000 against the scan's 392 and ~38 ns, since the
//! mask lengthens each level's chain; the scan's branches can mispredict on
//! workloads whose requests jump around, the mask's cannot.)
//!
//! # Updates
//!
//! A block freed (a leaf raised) climbs only while the parent is smaller,
//! setting it to the new value: no sibling is read. A block taken or shrunk
//! (a leaf lowered) changes a parent only if the parent held the old value:
//! going up, each level recomputes the largest of the eight siblings (one
//! line) and stops as soon as a parent keeps its value.
//!
//! # Deferred lowering
//!
//! A lowering is not applied at once: the index remembers it (one at most)
//! and applies it at the start of the next call that reads or changes the
//! tree ([`FitIndex::first_fit`], or [`FitIndex::set`] of another block). If
//! that next call is a `set` of the same block, the lowering is dropped and
//! only the new value counts: a block taken and freed again with its size
//! (`allocate` then `deallocate`, the commonest reuse) leaves the tree above
//! the leaf untouched, where it used to cost a lowering and a raise through
//! every level. Any other sequence costs what it did (the lowering is only
//! done later), and every answer is the same, since every read applies the
//! pending lowering first.
//!
//! # The last answer
//!
//! `first_fit` remembers its last answer from the tree: the request size `s`
//! and the block `p` it found, which means that no block before `p` has `s`
//! or more bytes free. That stays true while blocks are taken or shrink
//! anywhere, and while blocks after `p` are freed; a block freed before `p`
//! with `s` or more bytes becomes the answer itself (each raise compares its
//! position and size with the answer's, two compares). A request of exactly
//! `s` then gets `p` without a descent if `p` itself still fits, which is
//! what a block freed and asked for again with the same size does. Any other
//! request descends, and its answer replaces the last one.
//!
//! # Layout
//!
//! The tree is stored level by level, top down, in one anonymous `mmap`
//! region of `u64` slots, with the first 7 slots left unused so that every
//! group of siblings is line-aligned:
//!
//! ```text
//! slot:   0 … 6   7      8 … 15     16 … 79      80 … 591      …  leaf_start …
//! level:  unused  root   level 1    level 2      level 3       …  leaves (walk order)
//!                 1      8 nodes    64 nodes     512 nodes         `capacity` slots
//! ```
//!
//! Level `k` starts at slot `7 + (8^k - 1) / 7` (7, 8, 16, 80, 592, 4 688,
//! …), a multiple of 8 for every `k ≥ 1`. The children of the node in slot
//! `s` are the eight slots from `8 * (s - 6)`, and the parent of slot `s` is
//! `s / 8 + 6` (root 7 → children 8…15; slot 8 → 16…23; slot 15 → 72…79).
//! The leaves are the deepest level, `height` levels below the root, with
//! `8^height ≥ capacity`; only its first `capacity` slots are mapped (the
//! nodes above the missing leaves stay 0: nothing fits there).
//!
//! `capacity` is a power of two (at least 512). It never touches `malloc` or
//! the program break. When the leaves run out, a region for twice the leaves
//! is mapped (one level deeper when `capacity` passes a power of eight), the
//! leaves copied and the inner nodes rebuilt (O(N), amortised O(1) per
//! append). If the kernel refuses memory, [`FitIndex::push`] says so and the
//! heap goes back to the asm walk for good.

use core::ptr;

use crate::mapped_vec::map_anonymous;

/// The largest free block size over every range of blocks, in walk order.
#[derive(Debug)]
pub(crate) struct FitIndex {
    /// `leaf_start + capacity` slots (see the module docs); slots 0..7 are
    /// unused, the root is slot [`ROOT`].
    nodes: *mut u64,
    /// Leaves in use: the blocks recorded so far.
    len: usize,
    /// Leaves the mapping has room for (0 or a power of two, at least 512).
    capacity: usize,
    /// The slot of leaf 0 (block position 0).
    leaf_start: usize,
    /// A lowering [`FitIndex::set`] has not applied yet (see "Deferred
    /// lowering" in the module docs): its leaf and the nodes above still
    /// hold the old value.
    deferred: Option<Deferred>,
    /// The last answer of [`FitIndex::first_fit`] (see "The last answer" in
    /// the module docs): no block before `last_fit_position` has a free
    /// size of `last_fit_size` or more. `last_fit_size` 0: no answer kept.
    last_fit_size: u64,
    last_fit_position: usize,
}

/// A block's new, lower free size, not yet written to the tree.
#[derive(Debug, Clone, Copy)]
struct Deferred {
    position: usize,
    free_size: u64,
}

// SAFETY: the index owns its mapping; nothing in it is tied to a thread.
unsafe impl Send for FitIndex {}

/// Children per inner node: eight `u64` maxima, one 64-byte cache line.
const FANOUT: usize = 8;

/// The root's slot. Slots 0..7 are unused so that the root's children (and
/// every later group of siblings) start at a multiple of [`FANOUT`].
const ROOT: usize = FANOUT - 1;

/// Leaves in the first mapping: 8^3, three levels below the root.
const FIRST_CAPACITY: usize = 512;

/// The first of the [`FANOUT`] children of the inner node in slot `slot`.
#[inline(always)]
const fn first_child(slot: usize) -> usize {
    FANOUT * (slot - (ROOT - 1))
}

/// The parent of the node in slot `slot` (not the root).
#[inline(always)]
const fn parent(slot: usize) -> usize {
    slot / FANOUT + (ROOT - 1)
}

/// The lowest of eight siblings whose value is at least `size`, scanning
/// from the left. At least one must be (their parent's value, their largest,
/// is).
#[inline(always)]
fn first_at_least(siblings: &[u64; FANOUT], size: u64) -> usize {
    let first = siblings.iter().position(|&largest| largest >= size);
    debug_assert!(first.is_some(), "the parent promised a fitting child");
    first.unwrap_or(FANOUT - 1)
}

/// The largest of eight siblings: their parent's value.
#[inline(always)]
fn largest_of(siblings: &[u64; FANOUT]) -> u64 {
    siblings
        .iter()
        .fold(0, |largest, &value| largest.max(value))
}

/// For `capacity` leaves: the slot of the first leaf and the slots to map.
fn layout(capacity: usize) -> Option<(usize, usize)> {
    // Level k starts at ROOT + (8^k - 1) / 7; the leaves are the first level
    // with room for `capacity` nodes.
    let mut level_start = ROOT;
    let mut level_width = 1usize;
    while level_width < capacity {
        level_start = level_start.checked_add(level_width)?;
        level_width = level_width.checked_mul(FANOUT)?;
    }
    Some((level_start, level_start.checked_add(capacity)?))
}

impl FitIndex {
    /// No blocks, no mapping yet.
    pub(crate) const EMPTY: FitIndex = FitIndex {
        nodes: ptr::null_mut(),
        len: 0,
        capacity: 0,
        leaf_start: 0,
        deferred: None,
        last_fit_size: 0,
        last_fit_position: 0,
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

    /// The eight siblings starting at slot `first` (a multiple of 8).
    ///
    /// # Safety
    /// `first + 8` must not exceed the mapped slots.
    #[inline(always)]
    unsafe fn siblings(&self, first: usize) -> &[u64; FANOUT] {
        debug_assert!(
            first.is_multiple_of(FANOUT) && first + FANOUT <= self.leaf_start + self.capacity
        );
        // SAFETY: the caller keeps first..first + 8 inside the mapping, which
        // is u64-aligned and only changed through &mut self.
        unsafe { &*self.nodes.add(first).cast::<[u64; FANOUT]>() }
    }

    /// Block `position` is now free with `free_size` bytes, or in use (0).
    ///
    /// A lowering (an allocate taking the block) is deferred to the next
    /// call: if that call is a `set` of the same block (the block freed
    /// again), the two updates cancel out and the tree above the leaf is
    /// never touched.
    #[inline]
    pub(crate) fn set(&mut self, position: usize, free_size: u64) {
        assert!(position < self.len, "a block not in the fit index");
        match self.deferred {
            None => {}
            Some(deferred) if deferred.position == position => self.deferred = None,
            Some(deferred) => {
                self.deferred = None;
                self.apply(deferred);
            }
        }
        // SAFETY: position < len <= capacity: the leaf is mapped.
        let current = unsafe { *self.nodes.add(self.leaf_start + position) };
        if free_size < current {
            self.deferred = Some(Deferred {
                position,
                free_size,
            });
        } else {
            self.raise(position, free_size);
        }
    }

    /// Applies a deferred lowering, if any.
    #[inline(always)]
    fn apply_deferred(&mut self) {
        if let Some(deferred) = self.deferred.take() {
            self.apply(deferred);
        }
    }

    /// Lowers a leaf and every node whose largest value came from it: going
    /// up, a parent changes only while it held the leaf's old value and the
    /// siblings' new largest differs from it. Inline: in release builds it
    /// calls nothing, so neither do `set` and `first_fit` on their usual
    /// paths, which then need fewer saved registers.
    #[inline(always)]
    fn apply(
        &mut self,
        Deferred {
            position,
            free_size,
        }: Deferred,
    ) {
        let mut slot = self.leaf_start + position;
        // SAFETY: slot < leaf_start + capacity, inside the mapping; each
        // parent is an inner slot (ROOT ..= leaf_start) and its group of
        // siblings lies inside the mapping (a leaf's group ends at most at
        // leaf_start + capacity, a multiple of 8).
        unsafe {
            let old = *self.nodes.add(slot);
            *self.nodes.add(slot) = free_size;
            while slot != ROOT {
                let up = parent(slot);
                // The parent holds `old` or more. If more, its largest child
                // is another one: it keeps its value, and so does every node
                // above it.
                if *self.nodes.add(up) != old {
                    break;
                }
                let largest = largest_of(self.siblings(slot & !(FANOUT - 1)));
                if largest == old {
                    break; // a sibling still holds `old`
                }
                *self.nodes.add(up) = largest;
                slot = up;
            }
        }
    }

    /// Raises (or keeps) a leaf: each node above becomes the larger of its
    /// value and `free_size`, up to the first that is already at least that.
    #[inline(always)]
    fn raise(&mut self, position: usize, free_size: u64) {
        if position < self.last_fit_position && free_size >= self.last_fit_size {
            // The block fits the last answer's size and comes first now.
            self.last_fit_position = position;
        }
        let mut slot = self.leaf_start + position;
        // SAFETY: slot and its ancestors (parents down to ROOT) are mapped.
        unsafe {
            *self.nodes.add(slot) = free_size;
            while slot != ROOT {
                slot = parent(slot);
                if *self.nodes.add(slot) >= free_size {
                    break;
                }
                *self.nodes.add(slot) = free_size;
            }
        }
    }

    /// The first block in walk order whose free size is at least `size`.
    /// `size` counts the header, so it is never 0 (an in-use block, 0 here,
    /// must never fit).
    #[inline]
    pub(crate) fn first_fit(&mut self, size: u64) -> Option<usize> {
        assert!(size > 0, "a request with its header is at least 32 bytes");
        if self.len == 0 {
            return None;
        }
        self.apply_deferred();
        // SAFETY: the root and the leaves below len are mapped; every slot
        // visited below the root is a child of a node whose value is at
        // least `size` (not 0), and nodes above missing leaves are 0, so each
        // group read is mapped.
        unsafe {
            // The last answer still holds if it was for this size and its
            // block still fits: no block before it fits.
            if size == self.last_fit_size
                && *self.nodes.add(self.leaf_start + self.last_fit_position) >= size
            {
                return Some(self.last_fit_position);
            }
            if *self.nodes.add(ROOT) < size {
                return None;
            }
            let mut slot = ROOT;
            while slot < self.leaf_start {
                let first = first_child(slot);
                slot = first + first_at_least(self.siblings(first), size);
            }
            let position = slot - self.leaf_start;
            self.last_fit_size = size;
            self.last_fit_position = position;
            Some(position)
        }
    }

    /// [`FitIndex::first_fit`], and the block found is in use from now on
    /// (free size 0), as if `set(position, 0)` followed. For an allocate
    /// whose caller gives the index up if it cannot take the block.
    #[inline]
    pub(crate) fn take_first_fit(&mut self, size: u64) -> Option<usize> {
        let position = self.first_fit(size)?;
        // first_fit applied any deferred lowering, and the leaf holds at
        // least `size` (not 0): taking it is a lowering, deferred.
        self.deferred = Some(Deferred {
            position,
            free_size: 0,
        });
        Some(position)
    }

    /// Every inner node from its children, bottom up. Nodes whose children
    /// would lie past the last leaf slot keep their 0.
    fn rebuild_inner_nodes(&mut self) {
        let mapped = self.leaf_start + self.capacity;
        for slot in (ROOT..self.leaf_start).rev() {
            let first = first_child(slot);
            if first >= mapped {
                continue;
            }
            // SAFETY: first is a multiple of 8 below mapped, itself a
            // multiple of 8, so the whole group is mapped.
            unsafe { *self.nodes.add(slot) = largest_of(self.siblings(first)) };
        }
    }

    fn grow(&mut self) -> Result<(), ()> {
        // A deferred lowering names a position, not a slot: it survives the
        // copy below and is applied to the new tree.
        let capacity = (self.capacity * 2).max(FIRST_CAPACITY);
        let (leaf_start, slots) = layout(capacity).ok_or(())?;
        let bytes = slots.checked_mul(size_of::<u64>()).ok_or(())?;
        // The mapping comes zeroed, so the unused leaves are 0 (in use:
        // never a fit).
        let nodes: *mut u64 = map_anonymous(bytes).ok_or(())?.cast();
        if !self.nodes.is_null() {
            // SAFETY: the old leaves [leaf_start, leaf_start + len) and the
            // new slots [new leaf_start, new leaf_start + len) are in two
            // distinct mappings; then the old mapping, ours alone, is
            // unmapped.
            unsafe {
                ptr::copy_nonoverlapping(
                    self.nodes.add(self.leaf_start),
                    nodes.add(leaf_start),
                    self.len,
                );
                self.unmap();
            }
        }
        self.nodes = nodes;
        self.capacity = capacity;
        self.leaf_start = leaf_start;
        self.rebuild_inner_nodes();
        Ok(())
    }

    /// Unmaps the current mapping.
    ///
    /// # Safety
    /// `nodes` must be a mapping of this index, not used afterwards.
    unsafe fn unmap(&mut self) {
        let bytes = (self.leaf_start + self.capacity) * size_of::<u64>();
        // SAFETY: nodes/leaf_start/capacity describe exactly our mapping.
        unsafe { libc::munmap(self.nodes.cast(), bytes) };
    }
}

impl Drop for FitIndex {
    fn drop(&mut self) {
        if !self.nodes.is_null() {
            // SAFETY: the mapping is ours and dies with the index.
            unsafe { self.unmap() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    /// The walk's answer: the first free block (non-zero) big enough.
    fn naive_first_fit(model: &[u64], size: u64) -> Option<usize> {
        model.iter().position(|&free| free != 0 && free >= size)
    }

    fn check_all_sizes(index: &mut FitIndex, model: &[u64], context: &str) {
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

    /// Once any deferred lowering is applied, every leaf is the model's and
    /// every inner node the largest of its children.
    fn check_every_node(index: &mut FitIndex, model: &[u64], context: &str) {
        index.apply_deferred();
        // SAFETY: only slots below leaf_start + capacity are read: mapped.
        let slot = |slot: usize| unsafe { *index.nodes.add(slot) };
        for (position, &free) in model.iter().enumerate() {
            assert_eq!(
                slot(index.leaf_start + position),
                free,
                "{context}: leaf {position}"
            );
        }
        for node in ROOT..index.leaf_start {
            let first = first_child(node);
            let expected = if first >= index.leaf_start + index.capacity {
                0
            } else {
                (first..first + FANOUT).map(slot).max().unwrap()
            };
            assert_eq!(slot(node), expected, "{context}: node {node}");
        }
    }

    #[test]
    fn an_empty_index_fits_nothing() {
        let mut index = FitIndex::EMPTY;
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

    /// Random pushes, frees, allocations and pool releases against a plain vector,
    /// across several regrowths of the mapping.
    #[test]
    fn agrees_with_a_naive_model_under_random_operations() {
        for seed in 1..=6u64 {
            let mut rng = Rng::new(seed);
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
                        let free = match rng.below(4) {
                            0 => 0,
                            1 => [48, 64, 96][rng.below(3) as usize],
                            _ => 32 + rng.below(200),
                        };
                        index.set(position, free);
                        model[position] = free;
                    }
                    6..=8 => {
                        // An allocate: take the first fit, as the heap does
                        // (or find it, then set it to 0). Half the sizes come
                        // from a short list, so the last answer is often
                        // asked for again.
                        let size = if rng.below(2) == 0 {
                            [48, 64, 96][rng.below(3) as usize]
                        } else {
                            32 + rng.below(220)
                        };
                        let found = if rng.below(2) == 0 {
                            index.take_first_fit(size)
                        } else {
                            let found = index.first_fit(size);
                            if let Some(position) = found {
                                index.set(position, 0);
                            }
                            found
                        };
                        assert_eq!(found, naive_first_fit(&model, size), "{context}");
                        if let Some(position) = found {
                            model[position] = 0;
                            // Sometimes the block is freed again at once
                            // (the deferred lowering cancels), with its old
                            // size or another one.
                            if rng.below(3) == 0 {
                                let free = if rng.below(2) == 0 {
                                    size
                                } else {
                                    32 + rng.below(200)
                                };
                                index.set(position, free);
                                model[position] = free;
                            }
                        }
                    }
                    _ if !model.is_empty() => {
                        // deallocate_pool: some blocks in use are freed.
                        for (position, free) in model.iter_mut().enumerate() {
                            if *free == 0 && rng.below(4) == 0 {
                                *free = 32 + rng.below(200);
                                index.set(position, *free);
                            }
                        }
                    }
                    _ => {}
                }
                if step % 500 == 0 {
                    check_all_sizes(&mut index, &model, &context);
                }
                if step % 50 == 0 {
                    check_every_node(&mut index, &model, &context);
                }
            }
            assert!(index.capacity >= 2048, "the test must cross regrowths");
            check_all_sizes(&mut index, &model, &format!("seed {seed} end"));
        }
    }

    /// The slot arithmetic of the module docs: levels start where they
    /// say, children and parents invert each other, sibling groups are
    /// line-aligned.
    #[test]
    fn the_layout_is_the_documented_one() {
        assert_eq!(layout(512), Some((80, 592)));
        assert_eq!(layout(1024), Some((592, 592 + 1024)));
        assert_eq!(layout(8192), Some((4688, 4688 + 8192)));
        for slot in ROOT..4688 {
            let first = first_child(slot);
            assert!(first.is_multiple_of(FANOUT), "slot {slot}");
            for child in first..first + FANOUT {
                assert_eq!(parent(child), slot, "child {child} of {slot}");
            }
        }
    }

    /// The last answer is reused only while no earlier block fits and its
    /// own block still does.
    #[test]
    fn the_last_answer_gives_way_to_an_earlier_fitting_block() {
        let mut index = FitIndex::EMPTY;
        for free in [0, 0, 0, 0, 48] {
            index.push(free).unwrap();
        }
        assert_eq!(index.first_fit(48), Some(4));
        index.set(1, 47); // too small: the answer stands
        assert_eq!(index.first_fit(48), Some(4));
        index.set(2, 48); // exactly big enough, and earlier
        assert_eq!(index.first_fit(48), Some(2));
        index.set(0, 400);
        assert_eq!(index.first_fit(48), Some(0));
        assert_eq!(index.take_first_fit(48), Some(0));
        assert_eq!(index.first_fit(48), Some(2)); // block 0 is taken
        index.set(0, 48); // freed again: first again
        assert_eq!(index.first_fit(48), Some(0));
        index.set(0, 40); // shrunk below the size
        assert_eq!(index.first_fit(48), Some(2));
        for position in 0..4 {
            index.set(position, 0);
        }
        index.set(4, 48);
        assert_eq!(index.first_fit(48), Some(4));
    }

    #[test]
    #[should_panic(expected = "not in the fit index")]
    fn setting_an_unrecorded_block_panics() {
        let mut index = FitIndex::EMPTY;
        index.push(0).unwrap();
        index.set(1, 48);
    }
}
