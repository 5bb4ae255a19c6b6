//! A source that breaks its promise (as a break shrunk by someone else
//! would): memory that overlaps the heap's own segments is refused with
//! `Error::BreakBelowHeap` and never recorded.

mod support;

use std::cell::Cell;

use brk_pools::{Arena, BreakSource, Error, Heap, Refusal};
use support::layout;

/// An arena whose break can be made to jump back into memory it already
/// gave out.
struct Rewinding {
    arena: Arena,
    /// `current` answers this offset from the base (a shrunk break).
    current_at: Cell<Option<usize>>,
    /// The next `grow` answers this offset from the base.
    grow_at: Cell<Option<usize>>,
}

// SAFETY: deliberately not kept (that is the test); the heap must notice
// and never write to what `current_at`/`grow_at` answer, which is mapped
// memory of the arena anyway.
unsafe impl BreakSource for Rewinding {
    fn current(&self) -> *mut u8 {
        match self.current_at.get() {
            Some(offset) => self.arena.base().wrapping_add(offset),
            None => self.arena.current(),
        }
    }

    fn grow(&mut self, increment: usize) -> Result<*mut u8, Refusal> {
        match self.grow_at.take() {
            Some(offset) => Ok(self.arena.base().wrapping_add(offset)),
            None => self.arena.grow(increment),
        }
    }
}

#[test]
fn memory_overlapping_the_heap_is_refused_and_not_recorded() {
    let mut heap = Heap::new(Rewinding {
        arena: Arena::new(1 << 20).unwrap(),
        current_at: Cell::new(None),
        grow_at: Cell::new(None),
    });
    heap.allocate(1, 100).unwrap();
    heap.allocate(2, 100).unwrap();
    let before = layout(&heap);
    let segments = heap.segments().to_vec();

    // The break reads as inside the second block: refused before growing.
    heap.source().current_at.set(Some(200));
    assert_eq!(heap.allocate(3, 500), Err(Error::BreakBelowHeap));
    heap.source().current_at.set(None);
    assert_eq!(layout(&heap), before);
    assert_eq!(
        heap.source().arena.current(),
        heap.memory_end(),
        "no growth"
    );

    // The break reads as fine, but the memory given overlaps the first
    // block: refused after growing, and not recorded.
    heap.source().grow_at.set(Some(16));
    assert_eq!(heap.allocate(3, 500), Err(Error::BreakBelowHeap));
    assert_eq!(layout(&heap), before);
    assert_eq!(heap.segments(), segments.as_slice());

    // Honest memory again: the heap goes on, in the same segment.
    heap.allocate(3, 500).unwrap();
    assert_eq!(heap.blocks().count(), 3);
    assert_eq!(heap.segments().len(), 1);
}

/// The newest segment can end exactly where an older one starts (a mapping
/// placed right below an older one, then filled to its end). That break is
/// the heap's own: the next growth may come from anywhere, and it is taken
/// when it overlaps nothing. Memory handed out *from* that break, which would
/// run into the older segment, is refused after growing and not recorded.
#[test]
fn a_break_at_the_start_of_an_older_segment() {
    let mut heap = Heap::new(Rewinding {
        arena: Arena::new(1 << 20).unwrap(),
        current_at: Cell::new(None),
        grow_at: Cell::new(None),
    });
    heap.allocate(1, 100).unwrap(); // segment 0 at +0 (132 bytes)
    heap.source().grow_at.set(Some(2000));
    heap.allocate(2, 100).unwrap(); // segment 1 at +2000
    heap.source().grow_at.set(Some(1868));
    heap.allocate(3, 100).unwrap(); // segment 2 at +1868, ending at +2000
    assert_eq!(heap.segments().len(), 3);
    let before = layout(&heap);
    let segments = heap.segments().to_vec();

    // The break reads as segment 2's end, which is segment 1's start, and
    // the source grows from there: into segment 1. Refused, not recorded.
    heap.source().current_at.set(Some(2000));
    assert_eq!(heap.break_end(), heap.source().current());
    heap.source().grow_at.set(Some(2000));
    assert_eq!(heap.allocate(4, 100), Err(Error::BreakBelowHeap));
    assert_eq!(layout(&heap), before);
    assert_eq!(heap.segments(), segments.as_slice());

    // The same break, and the source grows elsewhere (the arena's own
    // break, +132): a new segment there.
    let fresh = heap.source().arena.current();
    let block = heap.allocate(4, 100).unwrap();
    assert_eq!(block.as_ptr(), fresh.wrapping_add(32));
    assert_eq!(heap.segments().len(), 4);
    assert_eq!(heap.blocks().count(), 4);
}

/// A source that hands out fixed-size reservations at scripted places in one
/// mapping, each continuing until it is full, as `ProcessBreak` does with
/// `mmap` once the process has threads.
struct Reservations {
    memory: Arena,
    /// Where each reservation starts, as a multiple of `SIZE`.
    places: Vec<usize>,
    /// The reservation in use (an index into `places`) and its bytes used.
    current: Option<(usize, usize)>,
}

impl Reservations {
    const SIZE: usize = 4096;

    fn new(places: &[usize]) -> Reservations {
        let mut memory = Arena::new(1 << 20).unwrap();
        memory.grow(1 << 20).unwrap(); // all of it readable and writable
        Reservations {
            memory,
            places: places.to_vec(),
            current: None,
        }
    }

    fn start(&self, reservation: usize) -> *mut u8 {
        self.memory
            .base()
            .wrapping_add(self.places[reservation] * Self::SIZE)
    }
}

// SAFETY: each reservation is distinct memory of one live mapping (the
// scripted places never overlap), handed out once.
unsafe impl BreakSource for Reservations {
    fn current(&self) -> *mut u8 {
        self.current.map_or(core::ptr::null_mut(), |(r, used)| {
            self.start(r).wrapping_add(used)
        })
    }

    fn grow(&mut self, increment: usize) -> Result<*mut u8, Refusal> {
        assert!(increment <= Self::SIZE);
        let (reservation, used) = match self.current {
            Some((r, used)) if used + increment <= Self::SIZE => (r, used),
            Some((r, _)) if r + 1 < self.places.len() => (r + 1, 0),
            None => (0, 0),
            Some(_) => {
                return Err(Refusal::Kernel {
                    errno: libc::ENOMEM,
                });
            }
        };
        self.current = Some((reservation, used + increment));
        Ok(self.start(reservation).wrapping_add(used))
    }
}

/// Reservations placed just below, just above and far from older ones, each
/// filled to its very end: every append succeeds, each reservation becomes a
/// segment, and first fit walks them in the order they were made.
#[test]
fn reservations_below_above_and_far_filled_to_the_end() {
    // Reservation 1 just below 0, 2 just above 0, 3 far, 4 just below 1,
    // 5 just below 3, 6 just above 2.
    let places = [100, 99, 101, 200, 98, 199, 102];
    let mut heap = Heap::new(Reservations::new(&places));
    let half = (Reservations::SIZE / 2 - 32) as u64;
    let mut blocks = Vec::new();
    for (reservation, &place) in places.iter().enumerate() {
        // Two blocks fill each reservation exactly.
        for pool in [1, 2] {
            let block = heap
                .allocate(pool, half)
                .unwrap_or_else(|e| panic!("reservation {reservation} at {place}: {e}"));
            blocks.push(block);
        }
        let start = heap.source().start(reservation);
        assert_eq!(blocks[2 * reservation].as_ptr(), start.wrapping_add(32));
        assert_eq!(heap.break_end(), start.wrapping_add(Reservations::SIZE));
    }
    assert_eq!(heap.segments().len(), places.len());
    assert_eq!(heap.blocks().count(), 2 * places.len());
    // No reservation left: the source refuses, and the heap is unchanged.
    let before = layout(&heap);
    assert!(matches!(
        heap.allocate(3, 10),
        Err(Error::BreakRefused { .. })
    ));
    assert_eq!(layout(&heap), before);
    // First fit in creation order: reservation 0's free block first, then
    // reservation 1's, which lies below it.
    heap.deallocate_pool(2);
    assert_eq!(heap.allocate(3, half).unwrap(), blocks[1]);
    assert_eq!(heap.allocate(3, half).unwrap(), blocks[3]);
}
