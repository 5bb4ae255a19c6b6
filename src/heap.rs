//! The heap: run.s's `memory_start`/`memory_end` state and the Rust code
//! around the asm walks.
//!
//! run.s keeps two quadwords, `memory_start` and `memory_end`, and trusts that
//! nothing else moves the program break. The port keeps the same pair for
//! every *segment*: a run of blocks that the source grew through without
//! anyone else taking memory in between. When nothing else moves the break
//! (the seed's `run.c`), there is exactly one segment and the layout is the
//! original's to the byte. When the source's next memory does not continue
//! the last segment (glibc's `malloc` moved the break since the heap last
//! grew, or the process heap now grows from a mapping: see
//! [`ProcessBreak`](crate::ProcessBreak)), the heap continues in a new segment
//! there instead of pulling the break back under malloc's chunks (which is
//! what run.s does, `docs/original-behaviour.md` A.8).
//!
//! Segments are walked by the same asm loops in the order they were created:
//! "first fit" means first in that order. A new segment may lie *below* older
//! ones (a mapping can land anywhere), so nothing here assumes that later
//! segments have higher addresses: lookups by address go through a table of
//! segments sorted by start. The segment table, that sorted table, the block
//! index and the table of held pools grow in their own anonymous mappings
//! (the `mapped_vec` module), with no fixed limit and without `malloc`, so
//! the heap cannot move the break under itself. Room for a new segment is
//! reserved *before* the source grows, so a table that cannot grow never
//! leaks memory the source already gave; and memory that would overlap the
//! heap's own segments is refused, never recorded.
//!
//! With the `indexed-fit` feature, `allocate` finds the walk's block through
//! an index instead of walking (the `fit_index` module, kept up to date by
//! `heap/indexes.rs`): its positions are the block index's (append order,
//! which is walk order: segments in creation order, each segment's blocks
//! one run), and `deallocate_pool` frees the blocks the index lists for the
//! pool instead of walking (the `pool_lists` module). Layouts and pointers
//! are the same, unless the program itself writes over a header: a free
//! block made to read as in use is skipped as the walk skips it (the index
//! then gives up for good), but a block in use made to read as free is
//! handed out again only by the walk, and a block whose pool word is made to
//! name another pool is released with that pool only by the walk.
//!
//! The operations come in run.s's order, one function per label that the
//! Rust ports (`allocate`, `allocate_continue`, `allocate_init`,
//! `allocate_move_break`, `deallocate`, `deallocate_pool`); the labels
//! ported as `asm!` are in [`walk`]. How a new block's memory is found is
//! in `heap/growth.rs`, the indexes in `heap/indexes.rs`.

use core::ptr::NonNull;

use crate::error::Error;
use crate::header::{HEADER_SIZE, Header};
use crate::mapped_vec::MappedVec;
use crate::source::{Arena, BreakSource};
use crate::walk;

mod growth;
mod held_pools;
mod indexes;
pub(crate) use held_pools::HeldPools;
use indexes::{FitAnswer, Indexes};

/// One `memory_start .. memory_end` run of blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First header of the run (run.s's `memory_start`).
    pub start: *mut u8,
    /// One past the last block (run.s's `memory_end`).
    pub end: *mut u8,
}

impl Segment {
    fn at(address: *mut u8) -> Segment {
        Segment {
            start: address,
            end: address,
        }
    }
}

/// How far the break moves when the heap runs out of room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Growth {
    /// One `brk` per appended block, by exactly its size: run.s's behaviour.
    #[default]
    Exact,
    /// Grow the break in multiples of `step` bytes and hand the slack out to
    /// later appends without a syscall. `memory_end` stays exact, so layouts
    /// and pointers are the same as with [`Growth::Exact`].
    Batched {
        /// Bytes per break move (rounded up to fit the request).
        step: usize,
    },
}

/// One block as found by [`Heap::blocks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Where the header starts.
    pub address: *mut u8,
    /// `address - memory_start` (the start of the first segment). A block
    /// in a segment below the first one (possible once the process heap grows
    /// from mappings) has a negative distance: the offset wraps, so read it as
    /// an `isize` there.
    pub offset: usize,
    /// A copy of the header.
    pub header: Header,
}

impl Block {
    /// The pointer [`Heap::allocate`] handed out for this block.
    pub fn pointer(&self) -> *mut u8 {
        self.address.wrapping_add(HEADER_SIZE)
    }
}

/// A pools heap over a [`BreakSource`].
///
/// ```
/// use brk_pools::Heap;
///
/// let mut heap = Heap::on_arena(1 << 20).unwrap();
/// let a1 = heap.allocate(1, 400).unwrap();
/// let a2 = heap.allocate(2, 32).unwrap();
/// let a3 = heap.allocate(2, 80).unwrap();
/// heap.deallocate_pool(2);
/// // The offsets run.c prints, relative to the heap start:
/// let start = heap.memory_start() as usize;
/// let offsets = [a1, a2, a3].map(|p| p.as_ptr() as usize - start);
/// assert_eq!(offsets, [0x20, 0x1d0, 0x210]);
/// ```
pub struct Heap<S: BreakSource> {
    source: S,
    growth: Growth,
    /// The segments in the order they were created (the walk order); empty
    /// until the first block (run.s: `memory_start == 0`).
    segments: MappedVec<Segment>,
    /// Segment numbers sorted by start address, for lookups by address.
    by_address: MappedVec<usize>,
    /// Where the heap's last growth left the break (the source's `current`
    /// at `allocate_init` before the first block). Equals the last segment's
    /// end with [`Growth::Exact`]; may be above it with [`Growth::Batched`].
    break_end: *mut u8,
    /// Pools held by [`crate::pools::Pool`] guards; the safe methods below
    /// neither allocate into them nor free their blocks.
    pub(crate) held: HeldPools,
    /// The index of block starts (checked frees in O(1)) and, with
    /// `indexed-fit`, the fit index (first fit in O(log N)).
    indexes: Indexes,
}

// SAFETY: the heap owns its blocks; the raw pointers are addresses in memory it
// alone manages, not references to thread-local data.
unsafe impl<S: BreakSource + Send> Send for Heap<S> {}

impl Heap<Arena> {
    /// A heap on a fresh [`Arena`] of `capacity` bytes.
    pub fn on_arena(capacity: usize) -> std::io::Result<Heap<Arena>> {
        Ok(Heap::new(Arena::new(capacity)?))
    }

    /// Moves the arena's break up by `increment` bytes as another user of the
    /// break would (glibc's `malloc`, in a real process), and returns the old
    /// break. The heap's next append then starts a new segment.
    ///
    /// ```
    /// let mut heap = brk_pools::Heap::on_arena(1 << 20).unwrap();
    /// heap.allocate(1, 16).unwrap();
    /// heap.grow_foreign(4096).unwrap();
    /// heap.allocate(2, 16).unwrap();
    /// assert_eq!(heap.segments().len(), 2);
    /// ```
    pub fn grow_foreign(&mut self, increment: usize) -> Result<*mut u8, crate::Refusal> {
        self.source.grow_foreign(increment)
    }
}

impl<S: BreakSource> Heap<S> {
    /// An empty heap; the break is first read by the first [`allocate`](Heap::allocate).
    pub const fn new(source: S) -> Self {
        Self::with_growth(source, Growth::Exact)
    }

    /// An empty heap that grows the break as `growth` says.
    pub const fn with_growth(source: S, growth: Growth) -> Self {
        Heap {
            source,
            growth,
            segments: MappedVec::EMPTY,
            by_address: MappedVec::EMPTY,
            break_end: core::ptr::null_mut(),
            held: HeldPools::EMPTY,
            indexes: Indexes::EMPTY,
        }
    }

    /// The break source, e.g. to read the current break.
    ///
    /// There is deliberately no `source_mut`: replacing an [`Arena`] under a
    /// heap would unmap its blocks. [`Heap::grow_foreign`] moves an arena's
    /// break the way another user would.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The growth policy.
    pub fn growth(&self) -> Growth {
        self.growth
    }

    /// The segments, in the order they were created, which is the order the
    /// walks visit them (empty before the first allocation). Addresses need
    /// not increase along it.
    pub fn segments(&self) -> &[Segment] {
        self.segments.as_slice()
    }

    /// run.s's `memory_start`: where the first segment starts (the break at
    /// the first allocation, when the source is a break), null before.
    pub fn memory_start(&self) -> *mut u8 {
        self.segments()
            .first()
            .map_or(core::ptr::null_mut(), |s| s.start)
    }

    /// run.s's `memory_end`: the end of the newest segment, where the next
    /// block is appended; null before the first allocation.
    pub fn memory_end(&self) -> *mut u8 {
        self.segments()
            .last()
            .map_or(core::ptr::null_mut(), |s| s.end)
    }

    /// Where the heap's own growth has left the break (null before the first
    /// allocation). Above [`memory_end`](Heap::memory_end) only with
    /// [`Growth::Batched`].
    pub fn break_end(&self) -> *mut u8 {
        self.break_end
    }

    /// Whether `allocate` finds its block through the fit index (the
    /// `indexed-fit` feature; always false without it). False for good once
    /// the kernel refused memory for the index, or once it named a block
    /// whose header the program had written over; the asm walk answers then
    /// (the same blocks, more slowly). A test that expects the index to stay
    /// in use can tell a wrong answer from the index, which the heap would
    /// otherwise only see as a reason to walk, from a right one.
    pub fn fit_index_in_use(&self) -> bool {
        self.indexes.fit_in_use()
    }

    /// Ports `allocate`: first fit over every block, else a new block at the
    /// end. Returns the pointer past the 32-byte header.
    ///
    /// `pool` and `size` are the 64-bit values run.s sees in `%rdi` and `%rsi`
    /// (the C ABI passes C `int`s zero-extended, as gcc's callers do).
    ///
    /// # Errors
    /// [`Error::PoolHeld`] if a [`crate::pools::Pool`] guard holds `pool`;
    /// [`Error::SizeOverflow`] if `size + 32` wraps; [`Error::BreakRefused`],
    /// [`Error::BreakBelowHeap`] or [`Error::SegmentTableFull`] if a new block
    /// is needed and the source cannot give it. The heap is unchanged then.
    // ANCHOR: allocate
    #[inline]
    pub fn allocate(&mut self, pool: u64, size: u64) -> Result<NonNull<u8>, Error> {
        self.held.check_not_held(pool)?;
        self.allocate_for_guard(pool, size)
    }

    /// [`allocate`](Heap::allocate) without the held-pool check: a pool
    /// guard's own way into its pool.
    #[inline]
    pub(crate) fn allocate_for_guard(
        &mut self,
        pool: u64,
        size: u64,
    ) -> Result<NonNull<u8>, Error> {
        // movq %rdi, %r10              # save the pool number in r10
        // movq %rsi, %rdx              # save the amount requested into %rdx
        // addq $HEADER_SIZE, %rdx      # actual amount needed is actually larger
        let size_with_header = size_with_header(size)?;
        match self.allocate_continue(pool, size_with_header) {
            Some(block) => Ok(block),
            None => self.allocate_new_block(pool, size_with_header),
        }
    }
    // ANCHOR_END: allocate

    /// Ports `allocate_continue`: walk the blocks from `memory_start` to
    /// `memory_end` with `allocate_loop`, segment by segment, and take the
    /// first free block that is big enough. None if none is, or if the heap
    /// has no block yet (run.s: `cmpq $0, memory_start; je allocate_init`).
    // ANCHOR: allocate_continue
    #[inline]
    pub(crate) fn allocate_continue(
        &mut self,
        pool: u64,
        size_with_header: u64,
    ) -> Option<NonNull<u8>> {
        match self.indexes.first_fit(pool, size_with_header) {
            FitAnswer::Found(block) => return Some(block),
            FitAnswer::NoneFits => return None,
            FitAnswer::Walk => {}
        }
        for segment in self.segments() {
            // movq memory_start, %rsi
            // movq memory_end, %rcx
            // SAFETY: the heap only ever records segments whose headers it
            // wrote itself and whose sizes add up to the segment's end.
            let found =
                unsafe { walk::allocate_loop(segment.start, segment.end, pool, size_with_header) };
            if !found.is_null() {
                return NonNull::new(found);
            }
        }
        None
    }
    // ANCHOR_END: allocate_continue

    /// No block fits: `allocate_init` the first time, then
    /// `allocate_move_break`.
    #[inline]
    pub(crate) fn allocate_new_block(
        &mut self,
        pool: u64,
        size_with_header: u64,
    ) -> Result<NonNull<u8>, Error> {
        if self.segments().is_empty() {
            self.allocate_init(pool, size_with_header)
        } else {
            self.allocate_move_break(pool, size_with_header)
        }
    }

    /// Ports `allocate_init`: the current break is both the start and the
    /// end of our memory; then `allocate_continue`, whose walk of the empty
    /// heap ends at its first compare, and `allocate_move_break`. (The first
    /// segment is recorded with the first block, where the source puts it.)
    // ANCHOR: allocate_init
    #[cold]
    fn allocate_init(&mut self, pool: u64, size_with_header: u64) -> Result<NonNull<u8>, Error> {
        // movq $0, %rdi; movq $BRK_SYSCALL, %rax; syscall   # find the break
        let start = self.source.current();
        // movq %rax, memory_start; movq %rax, memory_end
        self.break_end = start;
        // jmp allocate_continue: memory_start == memory_end ends the walk.
        // SAFETY: an empty run has no header to read or write.
        let found = unsafe { walk::allocate_loop(start, start, pool, size_with_header) };
        debug_assert!(found.is_null());
        let block = self.allocate_move_break(pool, size_with_header);
        if block.is_err() {
            self.break_end = core::ptr::null_mut(); // uninitialised, as before
        }
        block
    }
    // ANCHOR_END: allocate_init

    /// Ports `allocate_move_break`: a new block at `memory_end`, after the
    /// break moved to make room for it.
    // ANCHOR: allocate_move_break
    #[inline(always)] // one register save per append (see src/c_abi.rs)
    fn allocate_move_break(
        &mut self,
        pool: u64,
        size_with_header: u64,
    ) -> Result<NonNull<u8>, Error> {
        let size = usize::try_from(size_with_header).map_err(|_| Error::SizeOverflow {
            size: size_with_header,
        })?;
        // movq %rcx, %r8 … syscall: move the break (checked, in growth.rs)
        let block = self.move_break(size, size_with_header)?;
        // movq %rdi, memory_end  # save this value
        self.set_memory_end(block.wrapping_add(size));
        // The three header stores, addq, movq: asm.
        // SAFETY: block..block+size lies below the break, in memory the
        // source gave to this heap and no block uses yet; the pointer 32
        // bytes into that memory is not null.
        let pointer = unsafe {
            NonNull::new_unchecked(walk::allocate_move_break(block, size_with_header, pool))
        };
        self.indexes.appended(block);
        Ok(pointer)
    }
    // ANCHOR_END: allocate_move_break

    /// Stores the newest segment's new end (run.s's `memory_end`) and tells
    /// the source where the heap now starts and ends.
    #[inline]
    fn set_memory_end(&mut self, end: *mut u8) {
        let segments = self.segments.as_mut_slice();
        let (first, last) = (segments[0].start, segments.len() - 1);
        segments[last].end = end;
        self.source.heap_extent(first, end);
    }

    /// Ports `deallocate`, faithfully: zero the `in_use` and `pool` words of
    /// the block `ptr` was handed out for. Nothing is checked. (With the
    /// `indexed-fit` feature the fit index also learns that the block is
    /// free, which takes a lookup of its position.)
    ///
    /// # Safety
    /// `ptr` must have been returned by this heap's [`allocate`](Heap::allocate).
    /// It may already be free (a double free is harmless, as in run.s) or
    /// handed out again since (then that new owner's block is freed: `docs/original-behaviour.md` A.6),
    /// but that block must not belong to a live [`crate::pools::Pool`] guard
    /// (whose references into it would dangle).
    // ANCHOR: deallocate
    pub unsafe fn deallocate(&mut self, ptr: NonNull<u8>) {
        // SAFETY: the caller's promise: a block of this heap, no guard's.
        unsafe { self.free_block(ptr.as_ptr().wrapping_sub(HEADER_SIZE), None) }
    }
    // ANCHOR_END: deallocate

    /// `deallocate` with the checks run.s does not make: `ptr` must be the
    /// pointer of one of this heap's blocks (free or not). The check is a
    /// lookup in the hash index of block starts, O(1), where run.s checks
    /// nothing (a walk, O(N), if the kernel refused the index memory).
    ///
    /// # Errors
    /// [`Error::NotABlock`] for null, foreign or interior pointers;
    /// [`Error::PoolHeld`] for a block in use by a [`crate::pools::Pool`]
    /// guard. The heap is unchanged then.
    // ANCHOR: try_deallocate
    #[inline]
    pub fn try_deallocate(&mut self, ptr: *mut u8) -> Result<(), Error> {
        let Some((address, position)) = self.find_block(ptr) else {
            return Err(Error::NotABlock {
                address: ptr as usize,
            });
        };
        // SAFETY: find_block found a block start of this heap.
        let header = unsafe { Header::read(address) };
        if header.is_in_use() {
            self.held.check_not_held(header.pool)?;
        }
        // SAFETY: find_block found a block of this heap at `address`, and no
        // guard holds it (checked above; a free block has pool 0).
        unsafe { self.free_block(address, position) };
        Ok(())
    }
    // ANCHOR_END: try_deallocate

    /// The block whose pointer is `ptr`, and its position, if the index of
    /// block starts has it: the C ABI's fast path for `deallocate` (None:
    /// not a block, or the index is incomplete; ask
    /// [`try_deallocate`](Heap::try_deallocate)).
    #[inline]
    pub(crate) fn indexed_block(&self, ptr: *mut u8) -> Option<(*mut u8, usize)> {
        // A pointer below 32 wraps to the top 32 bytes of the address
        // space, where no block starts: its 32-byte header would wrap past
        // the end (a BreakSource never gives such memory; user space on
        // x86-64 ends far below).
        let header = (ptr as usize).wrapping_sub(HEADER_SIZE);
        Some((header as *mut u8, self.indexes.position(header)?))
    }

    /// run.s's `deallocate` on the block whose header is at `address` (at
    /// `position` in the index of block starts, if known).
    ///
    /// # Safety
    /// `address` is a block start of this heap, and no guard holds the block.
    #[inline]
    pub(crate) unsafe fn free_block(&mut self, address: *mut u8, position: Option<usize>) {
        // SAFETY: the caller promises a block start of this heap: its pointer
        // is 32 bytes on.
        unsafe { walk::deallocate(address.wrapping_add(HEADER_SIZE)) };
        self.indexes.freed(address, position);
    }

    /// Whether `ptr` is the pointer of one of this heap's blocks.
    pub fn is_block_pointer(&self, ptr: *mut u8) -> bool {
        self.block_of(ptr).is_some()
    }

    /// The block whose pointer is `ptr`: a lookup in the hash index of block
    /// starts, O(1) (a walk of the pointer's segment if the index is
    /// incomplete). Memory at `ptr` is read only once it is known to be a
    /// block's.
    pub fn block_of(&self, ptr: *mut u8) -> Option<Block> {
        let (address, _) = self.find_block(ptr)?;
        Some(Block {
            address,
            offset: (address as usize).wrapping_sub(self.memory_start() as usize),
            // SAFETY: find_block found a block start of this heap.
            header: unsafe { Header::read(address) },
        })
    }

    /// The header address of the block whose pointer is `ptr`, and its
    /// position in the index of block starts (None if the index is
    /// incomplete); None if `ptr` is not a block pointer. Reads no memory
    /// outside the heap's own tables and blocks.
    #[inline]
    fn find_block(&self, ptr: *mut u8) -> Option<(*mut u8, Option<usize>)> {
        if let Some((block, position)) = self.indexed_block(ptr) {
            return Some((block, Some(position)));
        }
        if self.indexes.is_complete() {
            return None;
        }
        self.find_block_by_walking((ptr as usize).checked_sub(HEADER_SIZE)?)
    }

    /// [`find_block`](Heap::find_block) once the index is incomplete (the
    /// kernel refused its memory): walk the segment that holds `header`.
    #[cold]
    #[inline(never)]
    fn find_block_by_walking(&self, header: usize) -> Option<(*mut u8, Option<usize>)> {
        let address = header as *mut u8;
        let segment = self.segments()[self.segment_at(header)?];
        if header >= segment.end as usize {
            return None; // in the newest segment's slack, past its last block
        }
        SegmentBlocks::new(segment)
            .any(|(block, _)| block == address)
            .then_some((address, None))
    }

    /// Ports `deallocate_pool`: free every block whose pool is `pool`.
    ///
    /// Before the first allocation there are no segments and nothing happens
    /// (run.s: `memory_start == memory_end == 0`). Nothing happens either if a
    /// [`crate::pools::Pool`] guard holds `pool`; see
    /// [`try_deallocate_pool`](Heap::try_deallocate_pool).
    pub fn deallocate_pool(&mut self, pool: u64) {
        let _ = self.try_deallocate_pool(pool);
    }

    /// [`deallocate_pool`](Heap::deallocate_pool), reporting a held pool.
    ///
    /// # Errors
    /// [`Error::PoolHeld`] if a [`crate::pools::Pool`] guard holds `pool`
    /// (only the guard frees it); the heap is unchanged.
    pub fn try_deallocate_pool(&mut self, pool: u64) -> Result<(), Error> {
        self.held.check_not_held(pool)?;
        self.deallocate_pool_for_guard(pool);
        Ok(())
    }

    /// Whether a [`crate::pools::Pool`] guard holds `pool`.
    pub fn is_pool_held(&self, pool: u64) -> bool {
        self.held.contains(pool)
    }

    /// The walk of `deallocate_pool`, without the held-pool check: a pool
    /// guard's own way to free its pool.
    // ANCHOR: deallocate_pool
    pub(crate) fn deallocate_pool_for_guard(&mut self, pool: u64) {
        // indexed-fit: the pool's own blocks, not a walk of all of them.
        if self.indexes.release_pool(pool) {
            return;
        }
        for segment in self.segments() {
            // movq memory_start, %rsi
            // movq memory_end, %rcx
            // SAFETY: as in allocate, every recorded segment is well formed.
            unsafe { walk::deallocate_pool_loop(segment.start, segment.end, pool) }
        }
    }
    // ANCHOR_END: deallocate_pool

    /// Every block, in walk order (segment by segment, in the order the
    /// segments were created), with offsets from `memory_start`.
    pub fn blocks(&self) -> impl Iterator<Item = Block> + '_ {
        let start = self.memory_start() as usize;
        self.segments()
            .iter()
            .flat_map(|s| SegmentBlocks::new(*s))
            .map(move |(address, header)| Block {
                address,
                offset: (address as usize).wrapping_sub(start),
                header,
            })
    }
}

/// `size + 32`, the bytes a block of `size` takes with its header (run.s's
/// `addq $HEADER_SIZE, %rdx`, checked).
///
/// # Errors
/// [`Error::SizeOverflow`] if the sum does not fit in 64 bits (run.s wraps).
#[inline(always)]
pub fn size_with_header(size: u64) -> Result<u64, Error> {
    size.checked_add(HEADER_SIZE as u64)
        .ok_or(Error::SizeOverflow { size })
}

/// Walks one segment in Rust (for inspection; the hot walks are in asm).
pub(crate) struct SegmentBlocks {
    cursor: *mut u8,
    end: *mut u8,
}

impl SegmentBlocks {
    pub(crate) fn new(segment: Segment) -> Self {
        SegmentBlocks {
            cursor: segment.start,
            end: segment.end,
        }
    }
}

impl Iterator for SegmentBlocks {
    type Item = (*mut u8, Header);

    fn next(&mut self) -> Option<Self::Item> {
        if self.cursor == self.end {
            return None;
        }
        let block = self.cursor;
        // SAFETY: the cursor is a block start inside a well-formed segment.
        let header = unsafe { Header::read(block) };
        self.cursor = block.wrapping_add(header.size as usize);
        Some((block, header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C ABI's `deallocate` fast path: a pointer below 32 (whose header
    /// address wraps) is no block, on an empty heap and on one with blocks
    /// (the first of which could start at any address).
    #[test]
    fn a_pointer_below_the_header_size_is_no_block() {
        let mut heap = Heap::on_arena(1 << 20).unwrap();
        for ptr in 0..HEADER_SIZE + 1 {
            assert_eq!(heap.indexed_block(ptr as *mut u8), None, "{ptr}");
        }
        let first = heap.allocate(1, 16).unwrap();
        heap.allocate(2, 16).unwrap();
        assert!(heap.is_block_pointer(first.as_ptr()));
        for ptr in 0..HEADER_SIZE + 1 {
            assert_eq!(heap.indexed_block(ptr as *mut u8), None, "{ptr}");
            assert!(!heap.is_block_pointer(ptr as *mut u8), "{ptr}");
        }
    }

    /// A program that writes one byte past its block sets the next block's
    /// `in_use` word: the walk then skips that block (it reads headers as
    /// they are), and so must the indexed fit (which recorded it as free).
    #[test]
    fn a_header_written_over_is_read_as_the_walk_reads_it() {
        let mut heap = Heap::on_arena(1 << 20).unwrap();
        let a = heap.allocate(1, 16).unwrap();
        let b = heap.allocate(1, 16).unwrap();
        heap.try_deallocate(b.as_ptr()).unwrap();
        // SAFETY: one byte past a's 16 is b's in_use word, in the arena.
        unsafe { a.as_ptr().add(16).write(0x77) };
        let c = heap.allocate(2, 16).unwrap();
        assert_ne!(c, b, "b's header says in use: the walk appends");
        assert!(
            !heap.fit_index_in_use(),
            "the index gave up (or there is none)"
        );
        assert_eq!(heap.blocks().count(), 3);
        assert_eq!(
            heap.allocate(3, 16).unwrap(),
            c.map_addr(|p| p.saturating_add(48))
        );
    }

    /// The other way round: a program that zeroes the `in_use` word of a
    /// block still in use (writing past the end of the block before it) makes
    /// run.s's walk hand that block out a second time. The fit index cannot
    /// see the write: it still has the block as in use and the allocate
    /// appends instead. One of the two cases where `indexed-fit` answers differently
    /// from the walk (docs/deviations.md says so).
    #[test]
    fn a_block_in_use_written_over_as_free_is_taken_only_by_the_walk() {
        let mut heap = Heap::on_arena(1 << 20).unwrap();
        let a = heap.allocate(1, 16).unwrap();
        let b = heap.allocate(1, 16).unwrap();
        // SAFETY: a's 16 bytes end where b's header starts, in the arena;
        // b's in_use word is its first 8 bytes.
        unsafe { a.as_ptr().add(16).cast::<u64>().write_unaligned(0) };
        let c = heap.allocate(2, 16).unwrap();
        if cfg!(feature = "indexed-fit") {
            assert_eq!(c, b.map_addr(|p| p.saturating_add(48)), "appended");
            assert!(heap.fit_index_in_use(), "the index never saw the write");
        } else {
            assert_eq!(c, b, "the walk reads b's header as free");
        }
    }

    /// A pool word the program wrote over. Listed in one pool, claiming
    /// another: the release of the listed pool sees the header disagree,
    /// gives the index up and walks, so both builds free by the headers.
    /// Claiming a pool it was never allocated in: the walk frees it with
    /// that pool; `indexed-fit`, which releases a pool by its list, does not
    /// (docs/deviations.md says so).
    #[test]
    fn pool_words_written_over_and_the_release() {
        let pool_word = |block: NonNull<u8>| {
            // SAFETY: a test block's header, 32 bytes before its pointer.
            unsafe {
                block
                    .as_ptr()
                    .sub(HEADER_SIZE)
                    .add(crate::header::HDR_POOL_OFFSET)
                    .cast::<u64>()
            }
        };
        let in_use = |heap: &Heap<Arena>| -> Vec<(bool, u64)> {
            heap.blocks()
                .map(|b| (b.header.is_in_use(), b.header.pool))
                .collect()
        };

        let mut heap = Heap::on_arena(1 << 20).unwrap();
        let a = heap.allocate(1, 16).unwrap();
        heap.allocate(1, 16).unwrap();
        // SAFETY: a's header, in the arena.
        unsafe { pool_word(a).write(3) };
        heap.deallocate_pool(1);
        assert_eq!(in_use(&heap), [(true, 3), (false, 0)], "by the headers");
        assert!(!heap.fit_index_in_use(), "the index was given up");

        let mut heap = Heap::on_arena(1 << 20).unwrap();
        let a = heap.allocate(1, 16).unwrap();
        heap.allocate(2, 16).unwrap();
        // SAFETY: as above.
        unsafe { pool_word(a).write(2) };
        heap.deallocate_pool(2);
        if cfg!(feature = "indexed-fit") {
            assert_eq!(in_use(&heap), [(true, 2), (false, 0)], "by the lists");
            assert!(heap.fit_index_in_use(), "the index never saw the write");
        } else {
            assert_eq!(in_use(&heap), [(false, 0), (false, 0)], "by the walk");
        }
    }

    /// A block whose in-use word the program zeroed is still its pool's: the
    /// release frees it (run.s zeroes the words of every block whose pool
    /// matches), and both builds hand it out again.
    #[test]
    fn a_block_zeroed_by_the_program_is_released_and_reused() {
        let mut heap = Heap::on_arena(1 << 20).unwrap();
        let x = heap.allocate(1, 16).unwrap();
        heap.allocate(2, 16).unwrap();
        // SAFETY: x's header, in the arena; in_use is its first word.
        unsafe { x.as_ptr().sub(HEADER_SIZE).cast::<u64>().write(0) };
        heap.allocate(3, 64).unwrap(); // too big for x: appended
        heap.deallocate_pool(1);
        assert_eq!(heap.allocate(4, 16).unwrap(), x);
        assert!(heap.fit_index_in_use() == cfg!(feature = "indexed-fit"));
    }

    /// The same random allocates, frees (double ones too) and pool releases
    /// (pool 0 among them) on a heap that uses its indexes and on one that
    /// walks (its indexes refused): the same headers after every step.
    #[test]
    fn releases_by_the_lists_leave_the_walks_headers() {
        let headers = |heap: &Heap<Arena>| -> Vec<(u64, u64, u64)> {
            heap.blocks()
                .map(|b| (b.header.in_use, b.header.size, b.header.pool))
                .collect()
        };
        for seed in 1..=8u64 {
            let mut rng = crate::test_rng::Rng::new(seed);
            let mut below = |n: u64| rng.below(n);
            let mut indexed = Heap::on_arena(1 << 22).unwrap();
            let mut walking = Heap::on_arena(1 << 22).unwrap();
            walking.indexes.refuse();
            assert!(!walking.fit_index_in_use());
            let mut handed_out: Vec<usize> = Vec::new(); // offsets from the start
            for step in 0..3000 {
                match below(10) {
                    0..=4 => {
                        let (pool, size) = (below(5), below(200));
                        let a = indexed.allocate(pool, size).unwrap();
                        let b = walking.allocate(pool, size).unwrap();
                        let offset = a.as_ptr() as usize - indexed.memory_start() as usize;
                        assert_eq!(
                            offset,
                            b.as_ptr() as usize - walking.memory_start() as usize
                        );
                        handed_out.push(offset);
                    }
                    5..=7 if !handed_out.is_empty() => {
                        let offset = handed_out[below(handed_out.len() as u64) as usize];
                        for heap in [&mut indexed, &mut walking] {
                            let pointer = heap.memory_start().wrapping_add(offset);
                            // SAFETY: a pointer this heap handed out (maybe
                            // freed or handed out again since: run.s's
                            // deallocate allows both); no guards here.
                            unsafe { heap.deallocate(NonNull::new(pointer).unwrap()) };
                        }
                    }
                    _ => {
                        let pool = below(5);
                        indexed.deallocate_pool(pool);
                        walking.deallocate_pool(pool);
                    }
                }
                assert_eq!(
                    headers(&indexed),
                    headers(&walking),
                    "seed {seed} step {step}"
                );
            }
            assert!(indexed.fit_index_in_use() == cfg!(feature = "indexed-fit"));
        }
    }

    /// The checked free answers the same with the index and, after the
    /// kernel refused the index memory, with a walk.
    #[test]
    fn checked_frees_agree_with_and_without_the_index() {
        let sizes = [0u64, 1, 16, 17, 400, 3];
        for refused in [false, true] {
            let mut heap = Heap::on_arena(1 << 20).unwrap();
            let pointers: Vec<*mut u8> = sizes
                .iter()
                .map(|&size| heap.allocate(1, size).unwrap().as_ptr())
                .collect();
            heap.grow_foreign(100).unwrap();
            let late = heap.allocate(2, 8).unwrap().as_ptr();
            if refused {
                heap.indexes.refuse();
                assert!(!heap.fit_index_in_use());
            }
            for &p in pointers.iter().chain([&late]) {
                assert!(heap.is_block_pointer(p), "refused={refused}");
                for wrong in [p.wrapping_add(1), p.wrapping_sub(1), p.wrapping_add(8)] {
                    // Near pointers that happen to be another block's are valid.
                    if !pointers.contains(&wrong) && wrong != late {
                        assert_eq!(
                            heap.try_deallocate(wrong),
                            Err(Error::NotABlock {
                                address: wrong as usize
                            }),
                            "refused={refused}"
                        );
                    }
                }
                assert_eq!(heap.try_deallocate(p), Ok(()));
            }
            assert!(heap.blocks().all(|b| !b.header.is_in_use()));
            assert!(heap.try_deallocate(core::ptr::null_mut()).is_err());
        }
    }
}
