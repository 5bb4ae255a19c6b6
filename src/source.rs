//! Where the memory comes from: the real program break, or an `mmap` arena
//! that behaves like one.
//!
//! run.s moves the break with raw `brk` syscalls (`movq $BRK_SYSCALL, %rax;
//! syscall`) and ignores the answer. The port asks a [`BreakSource`] instead,
//! which answers with the old break or a refusal, so a refused `brk` becomes an
//! error instead of a header written into unmapped memory (A.7).

use core::ptr;

use crate::error::Refusal;

/// A program break: a single address that only grows.
///
/// # Safety
/// Implementations must behave like `sbrk`: [`grow`](BreakSource::grow)
/// returns the old break `b` and makes `b .. b + increment` readable and
/// writable memory that nothing else uses, for as long as the source lives;
/// [`current`](BreakSource::current) returns the break without moving it.
/// The heap writes headers into that memory on the strength of these promises.
pub unsafe trait BreakSource {
    /// The current break, like `sbrk(0)`.
    fn current(&self) -> *mut u8;

    /// Moves the break up by `increment` bytes, like `sbrk(increment)`, and
    /// returns the old break: the start of the new memory. On a refusal the
    /// break has not moved.
    fn grow(&mut self, increment: usize) -> Result<*mut u8, Refusal>;
}

/// The process's real program break, moved through glibc's `sbrk`.
///
/// glibc's `malloc` caches the break (`__curbrk`) and moves it with
/// `brk(__curbrk + n)`. Going through the same `sbrk` keeps that cache right,
/// so glibc sees the port's blocks as foreign memory it must step over instead
/// of memory it may shrink (original-behaviour A.8).
///
/// `sbrk` itself is not thread-safe: the process heap calls it under its lock,
/// and glibc calls it under its main-arena lock. See the README's deviations
/// table for what that leaves open.
/// There is no public constructor (and no `Default`): a second heap on the
/// process break would call `sbrk` under a different lock. Its only value
/// lives in [`crate::process`]'s heap.
///
/// ```compile_fail
/// let second = brk_pools::Heap::new(brk_pools::ProcessBreak::default());
/// ```
#[derive(Debug)]
pub struct ProcessBreak {
    _private: (),
}

impl ProcessBreak {
    /// The process break. Only the process heap should own one; see
    /// [`crate::process`].
    pub(crate) const fn new() -> Self {
        ProcessBreak { _private: () }
    }
}

// SAFETY: sbrk returns the old break and maps old..old+n for this caller; glibc
// never hands memory between its own top chunk and a foreign sbrk to malloc.
unsafe impl BreakSource for ProcessBreak {
    fn current(&self) -> *mut u8 {
        // SAFETY: sbrk(0) only reads the break (one brk(0) syscall the first
        // time, glibc's cached value after that).
        unsafe { libc::sbrk(0).cast() }
    }

    fn grow(&mut self, increment: usize) -> Result<*mut u8, Refusal> {
        let increment = isize::try_from(increment).map_err(|_| Refusal::TooLarge)?;
        // SAFETY: a positive increment never shrinks the break, so no one's
        // memory is unmapped; failure leaves the break where it was.
        let old = unsafe { libc::sbrk(increment) };
        if old as isize == -1 {
            Err(Refusal::Kernel {
                errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            })
        } else {
            Ok(old.cast())
        }
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
        // SAFETY: base/capacity describe exactly the mapping made in new().
        unsafe {
            libc::munmap(self.base.cast(), self.capacity);
        }
    }
}
