//! Where a new block goes: the Rust half of `allocate_move_break`, which
//! moves the break through the [`BreakSource`], and the segments that
//! growth creates when the new memory does not continue the newest one.
//!
//! run.s moves the break to `memory_end + size` and writes the header there,
//! whatever the kernel says. Here every step is checked: the break must not
//! have been moved into the heap's own memory, the source may refuse, and
//! memory the source gives that overlaps an older segment is refused
//! without being recorded. Room in the segment tables is reserved before the
//! break moves, so a table that cannot grow fails before anything changes.

use super::{Growth, Heap, Segment};
use crate::error::{Error, Refusal};
use crate::source::BreakSource;

impl<S: BreakSource> Heap<S> {
    /// Room for a block of `size` bytes at the end of the heap: the break
    /// moved by `size` (run.s's `movq %rcx, %r8` … `syscall`; with
    /// [`Growth::Batched`], by whole steps, or not at all while an earlier
    /// move's slack holds the block). Returns where the block goes; the
    /// newest segment then continues there, or a new one starts there.
    #[inline(always)]
    pub(super) fn move_break(&mut self, size: usize, requested: u64) -> Result<*mut u8, Error> {
        let old_end = self.memory_end();
        let increment = match self.growth {
            Growth::Exact => size,
            Growth::Batched { step } => {
                // The break may be far enough already: an earlier move's slack.
                let slack = (self.break_end as usize).wrapping_sub(old_end as usize);
                if !self.segments().is_empty() && size <= slack {
                    return Ok(old_end);
                }
                // Whole steps that hold the whole block: then it fits even if
                // the break turns out to have moved, and a new segment starts
                // at the old break (the old slack is left unused then).
                size.checked_next_multiple_of(step.max(1))
                    .ok_or(Error::BreakRefused {
                        requested,
                        refusal: Refusal::TooLarge,
                    })?
            }
        };
        // Someone shrank the break into our memory: never write there.
        if self.break_moved_into_heap(self.source.current()) {
            return Err(Error::BreakBelowHeap);
        }
        self.reserve_segment()?;
        let old_break = self
            .source
            .grow(increment)
            .map_err(|refusal| Error::BreakRefused { requested, refusal })?;
        let new_break = old_break.wrapping_add(increment);
        let segments = self.segments.len();
        if old_break == self.break_end && segments != 0 {
            // The newest segment continues, unless it ends where an older
            // one starts (a mapping placed right below an older one).
            if segments > 1 && self.overlaps(old_break as usize, new_break as usize) {
                return Err(Error::BreakBelowHeap);
            }
            self.break_end = new_break;
            return Ok(old_end);
        }
        // Someone else moved the break, or the source is a new mapping: a
        // new segment there, which may lie anywhere, unless it overlaps ours.
        if self.overlaps(old_break as usize, new_break as usize) {
            return Err(Error::BreakBelowHeap);
        }
        self.break_end = new_break;
        self.record_segment(old_break);
        Ok(old_break)
    }

    /// Whether someone moved the break, which an append is about to grow
    /// from, into memory the heap owns. The break where the heap's last
    /// growth left it is the heap's own, even where it is also the start of
    /// an older segment (a mapping placed right below an older one, filled
    /// to its end): the source's next memory may come from anywhere, and
    /// [`move_break`](Heap::move_break) checks it for overlaps.
    #[inline]
    fn break_moved_into_heap(&self, current: *mut u8) -> bool {
        current != self.break_end && self.owns(current)
    }

    /// Makes room in the segment tables for one more segment.
    fn reserve_segment(&mut self) -> Result<(), Error> {
        let full = Error::SegmentTableFull {
            segments: self.segments.len(),
        };
        self.segments.reserve(1).map_err(|_| full)?;
        self.by_address.reserve(1).map_err(|_| full)
    }

    /// Records an empty segment at `start` (room was reserved).
    fn record_segment(&mut self, start: *mut u8) {
        let number = self.segments.len();
        let segments = self.segments();
        let position = self
            .by_address
            .as_slice()
            .partition_point(|&i| segments[i].start < start);
        let reserved = "reserve_segment made room";
        self.segments.push(Segment::at(start)).expect(reserved);
        self.by_address.insert(position, number).expect(reserved);
    }

    /// The end of the memory segment `number` owns: its last block's end,
    /// or for the newest segment the break the heap grew to (batched slack).
    fn owned_end(&self, number: usize) -> usize {
        let segment = self.segments()[number];
        if number + 1 == self.segments.len() {
            (segment.end as usize).max(self.break_end as usize)
        } else {
            segment.end as usize
        }
    }

    /// Where in the by-address table the first segment starting above
    /// `address` is (the table's length if none does).
    fn first_segment_above(&self, address: usize) -> usize {
        let segments = self.segments();
        self.by_address
            .as_slice()
            .partition_point(|&i| segments[i].start as usize <= address)
    }

    /// The segment whose memory contains `address`, if any: the one with the
    /// highest start at or below it (segments never overlap).
    pub(super) fn segment_at(&self, address: usize) -> Option<usize> {
        let below = self.first_segment_above(address).checked_sub(1)?;
        let number = self.by_address.as_slice()[below];
        (address < self.owned_end(number)).then_some(number)
    }

    /// Whether `address` lies in memory the heap owns.
    fn owns(&self, address: *mut u8) -> bool {
        self.segment_at(address as usize).is_some()
    }

    /// Whether `start..end` overlaps memory the heap owns.
    fn overlaps(&self, start: usize, end: usize) -> bool {
        if self.segment_at(start).is_some() {
            return true;
        }
        let above = self.first_segment_above(start);
        self.by_address
            .as_slice()
            .get(above)
            .is_some_and(|&i| (self.segments()[i].start as usize) < end)
    }
}
