//! What the heap knows about its blocks besides the blocks themselves: the
//! index of block starts (checked frees in O(1)), and with the `indexed-fit`
//! feature the fit index (first fit in O(log N)).
//!
//! Both follow every change the three operations make: a block appended,
//! freed, or freed by a pool release. With `indexed-fit` the fit index also
//! lists each block in the pool it was last allocated in
//! ([`crate::pool_lists`]), so that a pool release visits only the blocks
//! listed in the pool instead of walking all of them.
//! Without `indexed-fit` the fit index is a twin that knows nothing and
//! costs nothing (`Fit`, defined twice below), so the heap's operations
//! read the same in both builds.

use core::ptr::NonNull;

use crate::index::BlockIndex;
#[cfg(feature = "indexed-fit")]
use {
    crate::header::{HEADER_SIZE, Header},
    crate::pool_lists::PoolLists,
    crate::walk,
};

/// The index of block starts and the fit index, kept up to date together.
pub(crate) struct Indexes {
    /// Every block start, in append order (which is walk order), with a hash
    /// table from start to position.
    blocks: BlockIndex,
    /// The kernel refused memory for `blocks` once: from then on it is
    /// incomplete, checked frees walk, and the fit index is not used.
    blocks_refused: bool,
    /// Gives itself up when `blocks` is refused (it names blocks by their
    /// positions there), so its own answers need no look at
    /// `blocks_refused`.
    fit: Fit,
}

/// First fit through the fit index, when the build has one.
#[cfg_attr(not(feature = "indexed-fit"), allow(dead_code))] // always Walk
pub(crate) enum FitAnswer {
    /// The walk's block, now in use for the pool.
    Found(NonNull<u8>),
    /// No block fits: the walk would reach `memory_end` (append).
    NoneFits,
    /// No fit index (the default build, or the index gave up): walk.
    Walk,
}

impl Indexes {
    pub(crate) const EMPTY: Indexes = Indexes {
        blocks: BlockIndex::EMPTY,
        blocks_refused: false,
        fit: Fit::EMPTY,
    };

    /// A block was appended after every other one, in use.
    #[inline]
    pub(crate) fn appended(&mut self, block: *mut u8) {
        if !self.blocks_refused && self.blocks.push(block as usize).is_err() {
            self.blocks_refused = true;
        }
        self.fit.appended(!self.blocks_refused, block);
    }

    /// The position of the block whose header is at `block`, if the index
    /// of block starts has it (None: not a block, or the index is
    /// incomplete).
    #[inline]
    pub(crate) fn position(&self, block: usize) -> Option<usize> {
        self.blocks.position(block)
    }

    /// Whether every block start is in the index (so a pointer it does not
    /// know is no block).
    #[inline]
    pub(crate) fn is_complete(&self) -> bool {
        !self.blocks_refused
    }

    /// First fit through the fit index, if the build has one and it is in
    /// use.
    #[inline]
    pub(crate) fn first_fit(&mut self, pool: u64, size_with_header: u64) -> FitAnswer {
        debug_assert!(!self.blocks_refused || !self.fit.in_use());
        self.fit.first_fit(&self.blocks, pool, size_with_header)
    }

    /// The block at `block` (at `position` in the index, if known) was
    /// freed.
    #[inline]
    pub(crate) fn freed(&mut self, block: *mut u8, position: Option<usize>) {
        debug_assert!(!self.blocks_refused || !self.fit.in_use());
        self.fit.freed(&self.blocks, block, position);
    }

    /// Releases `pool` through the fit index's lists of each pool's
    /// blocks: every block whose pool is `pool` is freed, as
    /// `deallocate_pool_loop` frees them, and true is returned. False if the
    /// build has no fit index or it is not in use: then walk.
    #[inline]
    pub(crate) fn release_pool(&mut self, pool: u64) -> bool {
        debug_assert!(!self.blocks_refused || !self.fit.in_use());
        self.fit.release_pool(&self.blocks, pool)
    }

    /// Whether `allocate` finds its block through the fit index.
    pub(crate) fn fit_in_use(&self) -> bool {
        self.fit.in_use()
    }

    /// Pretend the kernel refused the index memory (tests of the walk that
    /// replaces it).
    #[cfg(test)]
    pub(crate) fn refuse(&mut self) {
        self.blocks_refused = true;
        self.fit.refuse();
    }
}

/// `indexed-fit`: the tree of the largest free size per range of blocks
/// ([`crate::fit_index::FitIndex`]), whose leaves are the block index's
/// positions, and the blocks last allocated in each pool ([`PoolLists`]),
/// by the same positions.
#[cfg(feature = "indexed-fit")]
struct Fit {
    tree: crate::fit_index::FitIndex,
    pools: PoolLists,
    /// Given up for good: the kernel refused its memory, or the block
    /// index's (`appended` with `blocks_complete` false: [`Indexes`] relies
    /// on that), or it named a block whose header the program had written
    /// over. The asm walk answers then (the same blocks, more slowly).
    refused: bool,
}

#[cfg(feature = "indexed-fit")]
impl Fit {
    const EMPTY: Fit = Fit {
        tree: crate::fit_index::FitIndex::EMPTY,
        pools: PoolLists::EMPTY,
        refused: false,
    };

    fn in_use(&self) -> bool {
        !self.refused
    }

    #[cfg(test)]
    fn refuse(&mut self) {
        self.refused = true;
    }

    fn appended(&mut self, blocks_complete: bool, block: *mut u8) {
        if self.refused {
            return;
        }
        // SAFETY: the heap just wrote the new block's header.
        let pool = unsafe { Header::read(block) }.pool;
        if !blocks_complete || self.tree.push(0).is_err() || self.pools.appended(pool).is_err() {
            self.refused = true;
        }
    }

    fn first_fit(&mut self, blocks: &BlockIndex, pool: u64, size_with_header: u64) -> FitAnswer {
        if self.refused {
            return FitAnswer::Walk;
        }
        let Some(position) = self.tree.take_first_fit(size_with_header) else {
            return FitAnswer::NoneFits;
        };
        let block = blocks.start(position) as *mut u8;
        // SAFETY: the index holds the start of a block of this heap; its
        // header says how long it is, so block..block+size is one well-formed
        // block for run.s's allocate_loop, which marks it in use for `pool`.
        let found = unsafe {
            let size = Header::read(block).size as usize;
            walk::allocate_loop(block, block.wrapping_add(size), pool, size_with_header)
        };
        match NonNull::new(found) {
            Some(found) => {
                if !self.pools.is_listed(position, pool)
                    && self.pools.allocated(position, pool).is_err()
                {
                    self.refused = true;
                }
                FitAnswer::Found(found)
            }
            // The header is not what the index recorded: the program wrote
            // over it (past the end of the block before, say). The walk reads
            // headers as they are, so from now on walk (the index, which took
            // the block, is given up).
            None => {
                self.refused = true;
                FitAnswer::Walk
            }
        }
    }

    #[inline(always)]
    fn freed(&mut self, blocks: &BlockIndex, block: *mut u8, position: Option<usize>) {
        if self.refused {
            return;
        }
        if let Some(position) = position.or_else(|| blocks.position(block as usize)) {
            // SAFETY: the index knows `block` as a block start of this heap.
            self.tree.set(position, unsafe { Header::read(block) }.size);
        }
    }

    /// `deallocate_pool` by `pool`'s list: the blocks listed there whose
    /// pool is `pool` get the same two zeros as in `deallocate_from_pool`
    /// (run.s's `deallocate` stores them), O(blocks listed in the pool). First every
    /// listed block in use is checked to say `pool`, as the list does; if
    /// one does not (the program wrote over its header), the fit index is
    /// given up and nothing is changed: the walk releases the pool, reading
    /// the headers as they are.
    fn release_pool(&mut self, blocks: &BlockIndex, pool: u64) -> bool {
        if self.refused {
            return false;
        }
        let header = |position| {
            let block = blocks.start(position) as *mut u8;
            // SAFETY: the lists hold positions of the block index, whose
            // entries are block starts of this heap.
            (block, unsafe { Header::read(block) })
        };
        let as_listed = self.pools.listed(pool).all(|position| {
            let (_, header) = header(position);
            !header.is_in_use() || header.pool == pool
        });
        if !as_listed {
            self.refused = true;
            return false;
        }
        for position in self.pools.listed(pool) {
            let (block, header) = header(position);
            if header.pool == pool {
                // SAFETY: a block start of this heap (as above), whose pool
                // is `pool`; its pointer is 32 bytes on.
                unsafe { walk::deallocate(block.wrapping_add(HEADER_SIZE)) };
                // Free now, whatever its in-use word said (a free block's
                // leaf has its size already: no change then).
                self.tree.set(position, header.size);
            }
        }
        self.pools.clear(pool);
        true
    }
}

/// Without `indexed-fit`: no fit index. Every allocate walks; every update
/// is nothing.
#[cfg(not(feature = "indexed-fit"))]
struct Fit;

#[cfg(not(feature = "indexed-fit"))]
impl Fit {
    const EMPTY: Fit = Fit;

    fn in_use(&self) -> bool {
        false
    }

    #[cfg(test)]
    fn refuse(&mut self) {}

    #[inline(always)]
    fn appended(&mut self, _blocks_complete: bool, _block: *mut u8) {}

    #[inline(always)]
    fn first_fit(&mut self, _: &BlockIndex, _: u64, _: u64) -> FitAnswer {
        FitAnswer::Walk
    }

    #[inline(always)]
    fn freed(&mut self, _: &BlockIndex, _: *mut u8, _: Option<usize>) {}

    #[inline(always)]
    fn release_pool(&mut self, _: &BlockIndex, _: u64) -> bool {
        false
    }
}
