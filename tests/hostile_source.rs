//! A source that breaks its promise (as a break shrunk by someone else
//! would): memory that overlaps the heap's own segments is refused with
//! `Error::BreakBelowHeap` and never recorded (issue 9).

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

/// A break that reads as exactly where the heap's last growth ended can still
/// be inside the heap: the start of an older segment that lies just above
/// the newest one. The append must be refused before growing, as for any
/// break inside the heap (only with one segment is that break never the
/// heap's).
#[test]
fn a_break_at_the_start_of_an_older_segment_is_refused() {
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
    let arena_break = heap.source().arena.current();

    // The break reads as segment 2's end, which is segment 1's start.
    heap.source().current_at.set(Some(2000));
    assert_eq!(heap.break_end(), heap.source().current());
    assert_eq!(heap.allocate(4, 100), Err(Error::BreakBelowHeap));
    assert_eq!(layout(&heap), before);
    assert_eq!(heap.segments(), segments.as_slice());
    assert_eq!(heap.source().arena.current(), arena_break, "no growth");
}
