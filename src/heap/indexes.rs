//! What the heap knows about its blocks besides the blocks themselves: the
//! index of block starts (checked frees in O(1)), and with the `indexed-fit`
//! feature the fit index (first fit in O(log N)).
//!
//! Both follow every change the three operations make: a block appended,
//! freed, or freed by a pool release. Without `indexed-fit` the fit index is
//! a twin that knows nothing and costs nothing (`Fit`, defined twice below),
//! so the heap's operations read the same in both builds.

use core::ptr::NonNull;

use super::Segment;
use crate::index::BlockIndex;
#[cfg(feature = "indexed-fit")]
use {super::SegmentBlocks, crate::header::Header, crate::walk};

/// The index of block starts and the fit index, kept up to date together.
pub(crate) struct Indexes {
    /// Every block start, in append order (which is walk order), with a hash
    /// table from start to position.
    blocks: BlockIndex,
    /// The kernel refused memory for `blocks` once: from then on it is
    /// incomplete, checked frees walk, and the fit index is not used.
    blocks_refused: bool,
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
        self.fit.appended(!self.blocks_refused);
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
        if self.blocks_refused {
            return FitAnswer::Walk;
        }
        self.fit.first_fit(&self.blocks, pool, size_with_header)
    }

    /// The block at `block` (at `position` in the index, if known) was
    /// freed.
    #[inline]
    pub(crate) fn freed(&mut self, block: *mut u8, position: Option<usize>) {
        if !self.blocks_refused {
            self.fit.freed(&self.blocks, block, position);
        }
    }

    /// A pool release freed some blocks of `segments`.
    #[inline]
    pub(crate) fn pool_freed(&mut self, segments: &[Segment]) {
        if !self.blocks_refused {
            self.fit.pool_freed(segments);
        }
    }

    /// Whether `allocate` finds its block through the fit index.
    pub(crate) fn fit_in_use(&self) -> bool {
        !self.blocks_refused && self.fit.in_use()
    }

    /// Pretend the kernel refused the index memory (tests of the walk that
    /// replaces it).
    #[cfg(test)]
    pub(crate) fn refuse(&mut self) {
        self.blocks_refused = true;
    }
}

/// `indexed-fit`: the tree of the largest free size per range of blocks
/// ([`crate::fit_index::FitIndex`]), whose leaves are the block index's
/// positions.
#[cfg(feature = "indexed-fit")]
struct Fit {
    tree: crate::fit_index::FitIndex,
    /// Given up for good: the kernel refused its memory, or it named a block
    /// whose header the program had written over. The asm walk answers then
    /// (the same blocks, more slowly).
    refused: bool,
}

#[cfg(feature = "indexed-fit")]
impl Fit {
    const EMPTY: Fit = Fit {
        tree: crate::fit_index::FitIndex::EMPTY,
        refused: false,
    };

    fn in_use(&self) -> bool {
        !self.refused
    }

    fn appended(&mut self, blocks_complete: bool) {
        if !blocks_complete || (!self.refused && self.tree.push(0).is_err()) {
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
            Some(found) => FitAnswer::Found(found),
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

    fn freed(&mut self, blocks: &BlockIndex, block: *mut u8, position: Option<usize>) {
        if self.refused {
            return;
        }
        if let Some(position) = position.or_else(|| blocks.position(block as usize)) {
            // SAFETY: the index knows `block` as a block start of this heap.
            self.tree.set(position, unsafe { Header::read(block) }.size);
        }
    }

    /// Reads every leaf again (O(N), like the walk that freed the blocks).
    fn pool_freed(&mut self, segments: &[Segment]) {
        if self.refused {
            return;
        }
        let free_sizes = segments
            .iter()
            .flat_map(|s| SegmentBlocks::new(*s))
            .map(|(_, header)| if header.is_in_use() { 0 } else { header.size });
        self.tree.refill(free_sizes);
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

    #[inline(always)]
    fn appended(&mut self, _blocks_complete: bool) {}

    #[inline(always)]
    fn first_fit(&mut self, _: &BlockIndex, _: u64, _: u64) -> FitAnswer {
        FitAnswer::Walk
    }

    #[inline(always)]
    fn freed(&mut self, _: &BlockIndex, _: *mut u8, _: Option<usize>) {}

    #[inline(always)]
    fn pool_freed(&mut self, _: &[Segment]) {}
}
