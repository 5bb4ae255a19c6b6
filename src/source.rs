//! Where the memory comes from: the [`BreakSource`] trait, and [`Arena`], an
//! `mmap` reservation that behaves like a program break. The real program
//! break is [`ProcessBreak`](crate::ProcessBreak), in the process heap's
//! module.
//!
//! run.s moves the break with raw `brk` syscalls (`movq $BRK_SYSCALL, %rax;
//! syscall`) and ignores the answer. The port asks a [`BreakSource`] instead,
//! which answers with the old break or a refusal, so a refused `brk` becomes an
//! error instead of a header written into unmapped memory (`docs/original-behaviour.md` A.7).

use core::ptr;

use crate::error::Refusal;

/// Where a heap gets memory: a program break, or something that grows like
/// one.
///
/// # Safety
/// Implementations must keep these promises, on which the heap writes
/// headers:
///
/// * [`grow`](BreakSource::grow)`(n)` returns an address `b` such that
///   `b .. b + n` is readable and writable memory that nothing else uses, for
///   as long as the source lives, and that no earlier or later `grow` of this
///   source returns again. Usually `b` is where the previous growth ended
///   (the memory continues the heap's newest segment); when it is not, the
///   heap starts a new segment at `b`, which may lie anywhere, below earlier
///   memory too.
/// * [`current`](BreakSource::current) moves nothing and returns where the
///   next growth would start if nobody else takes memory first (null if that
///   is not known yet).
pub unsafe trait BreakSource {
    /// The current break, like `sbrk(0)`.
    fn current(&self) -> *mut u8;

    /// Makes `increment` more bytes available, like `sbrk(increment)`, and
    /// returns the start of the new memory (the old break). On a refusal
    /// nothing has changed.
    fn grow(&mut self, increment: usize) -> Result<*mut u8, Refusal>;

    /// Told, after every append, where the heap now starts and ends (run.s's
    /// `memory_start` and `memory_end`). Does nothing by default; the
    /// process break copies them to the exported globals of
    /// [`crate::process`], where C code reads them as it reads run.s's.
    #[inline]
    fn heap_extent(&mut self, memory_start: *mut u8, memory_end: *mut u8) {
        let _ = (memory_start, memory_end);
    }
}

/// A private "program break" inside an `mmap` reservation.
///
/// The reservation is `PROT_NONE`; [`grow`](BreakSource::grow) makes the pages
/// under the new break readable and writable, so touching memory past the
/// simulated break faults just as it does past the real one. Growth past the
/// capacity is refused like a `brk` over `RLIMIT_DATA`.
///
/// Arenas make heaps that tests can create in parallel, with offsets that
/// depend only on the operations (the base is page-aligned, as the real heap
/// start was in every measured run).
///
/// ```
/// use brk_pools::{Arena, BreakSource};
///
/// let mut arena = Arena::new(1 << 20).unwrap();
/// let base = arena.current();
/// assert_eq!(arena.grow(100).unwrap(), base);
/// assert_eq!(arena.current(), base.wrapping_add(100));
/// assert!(arena.grow(2 << 20).is_err()); // past the capacity
/// ```
#[derive(Debug)]
pub struct Arena {
    base: *mut u8,
    capacity: usize,
    /// Bytes below the simulated break.
    brk: usize,
    /// Bytes made readable and writable (`brk` rounded up to pages).
    mapped: usize,
}

// SAFETY: the arena owns its mapping; nothing in it is tied to a thread.
unsafe impl Send for Arena {}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

impl Arena {
    /// Reserves `capacity` bytes of address space (rounded up to pages) with
    /// the break at its start. No memory is committed until the break grows.
    pub fn new(capacity: usize) -> std::io::Result<Arena> {
        let page = page_size();
        let capacity = capacity
            .checked_next_multiple_of(page)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?
            .max(page);
        // SAFETY: an anonymous private PROT_NONE mapping at an address of the
        // kernel's choice aliases nothing.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                capacity,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Arena {
            base: base.cast(),
            capacity,
            brk: 0,
            mapped: 0,
        })
    }

    /// The start of the reservation: the heap start of a heap on this arena.
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// Bytes the break may grow to.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Gives the reservation's pages above the accessible ones back to the
    /// kernel, and returns how many bytes that was (None if there were none,
    /// or the kernel refused): from then on the break can grow only within
    /// the pages it has reached. No block lies there (every block is below
    /// the break). For the process heap, whose next reservation may need
    /// that room under an address-space limit (`RLIMIT_AS`); see
    /// [`take_back`](Arena::take_back).
    pub(crate) fn release_unused(&mut self) -> Option<usize> {
        if self.mapped == 0 || self.capacity == self.mapped {
            return None;
        }
        let tail = self.capacity - self.mapped;
        // SAFETY: base + mapped .. base + capacity is the part of our own
        // reservation that was never made accessible: nothing in it was
        // handed out.
        let rc = unsafe { libc::munmap(self.base.add(self.mapped).cast(), tail) };
        (rc == 0).then(|| {
            self.capacity = self.mapped;
            tail
        })
    }

    /// Reserves again the `tail` bytes that
    /// [`release_unused`](Arena::release_unused) gave back, if the kernel
    /// still can: another thread may have mapped memory there since, or
    /// taken the address space it freed (under `RLIMIT_AS`); then the
    /// reservation stays as short as it is.
    pub(crate) fn take_back(&mut self, tail: usize) {
        let end = self.base.wrapping_add(self.capacity);
        // SAFETY: MAP_FIXED_NOREPLACE maps only where nothing is mapped, so
        // it replaces no one's memory; a fresh PROT_NONE anonymous mapping
        // aliases nothing.
        let mapping = unsafe {
            libc::mmap(
                end.cast(),
                tail,
                libc::PROT_NONE,
                libc::MAP_PRIVATE
                    | libc::MAP_ANONYMOUS
                    | libc::MAP_NORESERVE
                    | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if mapping == end.cast() {
            self.capacity += tail;
        } else if mapping != libc::MAP_FAILED {
            // A kernel older than 4.17 takes the flag as a hint and may map
            // elsewhere: not ours to keep.
            // SAFETY: the mapping just made, used by no one.
            unsafe { libc::munmap(mapping, tail) };
        }
    }

    /// Moves the break the way another user of the break would (glibc's
    /// `malloc`, say), so that tests can show the heap continuing in a new
    /// segment. Returns the old break.
    pub fn grow_foreign(&mut self, increment: usize) -> Result<*mut u8, Refusal> {
        self.grow(increment)
    }
}

// SAFETY: grow maps the new bytes read-write before returning them and never
// hands out the same bytes twice; the mapping lives as long as the Arena.
unsafe impl BreakSource for Arena {
    fn current(&self) -> *mut u8 {
        self.base.wrapping_add(self.brk)
    }

    fn grow(&mut self, increment: usize) -> Result<*mut u8, Refusal> {
        let new_brk = self
            .brk
            .checked_add(increment)
            .filter(|&b| b <= self.capacity)
            .ok_or(Refusal::ArenaExhausted {
                capacity: self.capacity,
            })?;
        if new_brk > self.mapped {
            let new_mapped = new_brk.next_multiple_of(page_size()).min(self.capacity);
            // SAFETY: the range lies inside our own reservation.
            let rc = unsafe {
                libc::mprotect(
                    self.base.add(self.mapped).cast(),
                    new_mapped - self.mapped,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if rc != 0 {
                return Err(Refusal::Kernel {
                    errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
                });
            }
            self.mapped = new_mapped;
        }
        let old = self.current();
        self.brk = new_brk;
        Ok(old)
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: base/capacity describe exactly what is left of the mapping
        // made in new() (release_unused unmaps its tail and shrinks capacity).
        unsafe {
            libc::munmap(self.base.cast(), self.capacity);
        }
    }
}
