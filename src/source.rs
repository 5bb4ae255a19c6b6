//! Where the memory comes from: the real program break (while the process
//! is single-threaded; `mmap` reservations after, see [`ProcessBreak`]), or
//! an `mmap` arena that behaves like a break.
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

// Both are `static mut`: glibc writes them while Rust code runs, and the
// Reference makes it undefined behaviour to mutate an immutable extern
// static once Rust code runs (items.extern.static). They are only read,
// through raw pointers, with volatile reads.
unsafe extern "C" {
    /// glibc (2.32 and later): non-zero while the process has never had a
    /// second thread. `pthread_create` clears it; glibc never sets it again.
    static mut __libc_single_threaded: core::ffi::c_char;

    /// glibc: the program break as `sbrk` last saw it, the value `sbrk(0)`
    /// returns (null until glibc first reads the break). Exported by every
    /// x86-64 glibc (`__curbrk@GLIBC_2.2.5`); `sbrk` keeps it right, and
    /// `malloc` moves the break only through `sbrk`.
    static mut __curbrk: *mut core::ffi::c_void;
}

/// The current program break, like `sbrk(0)` but without the call once
/// glibc knows the break (issue 12: one `sbrk(0)` per append cost ~15
/// instructions).
///
/// # Safety
/// The process must be single-threaded ([`libc_single_threaded`]), as for
/// every use of the break: then no other thread runs `sbrk` and writes
/// `__curbrk` while it is read.
#[inline]
unsafe fn break_now() -> *mut u8 {
    // SAFETY: single-threaded (the caller's promise): nothing writes
    // __curbrk concurrently.
    let cached = unsafe { core::ptr::read_volatile(&raw const __curbrk) };
    if cached.is_null() {
        // SAFETY: sbrk(0) only reads the break (one brk(0) syscall, which
        // also sets __curbrk).
        unsafe { libc::sbrk(0).cast() }
    } else {
        cached.cast()
    }
}

/// Whether glibc says the process is (and always was) single-threaded.
fn libc_single_threaded() -> bool {
    // SAFETY: a byte glibc exports for exactly this question. While it is
    // non-zero only the calling thread exists, so nothing writes it
    // concurrently; once zero, glibc never writes it again.
    unsafe { core::ptr::read_volatile(&raw const __libc_single_threaded) != 0 }
}

/// The first reservation [`ProcessBreak`] makes once the process has threads
/// (address space only: pages are committed as the heap grows into them).
pub const PROCESS_RESERVATION: usize = 1 << 30;

/// The process's memory: the real program break, moved through glibc's
/// `sbrk`, while that is safe; `mmap` reservations after.
///
/// **The rule.** The break is moved only while the process is
/// single-threaded (glibc's `__libc_single_threaded`, checked under the
/// process heap's lock before every growth). `sbrk` is not thread-safe:
/// glibc's `malloc` calls it under its own arena lock, and two threads that
/// move the break at once can each lower it under the other's memory
/// (crashes, or bytes silently changed, in both allocators). While the
/// process has one thread, the only thread that could move the break is the
/// one inside the heap, and no thread can appear during the call (only this
/// thread could create one). Once the process has had a second thread, the
/// flag stays false for good (after the threads are joined and in fork
/// children too), and growth comes from an [`Arena`]-like `mmap` reservation
/// that nobody else moves; when it is full, from a new one. Each switch to new
/// memory starts a new segment; the blocks already on the break stay there
/// and are still walked and reused. **A process that ever had a thread never
/// returns to the break.**
///
/// With the break: glibc's `malloc` caches the break (`__curbrk`) and moves
/// it with `brk(__curbrk + n)`. Going through the same `sbrk` keeps that
/// cache right, so glibc sees the port's blocks as foreign memory it must
/// step over instead of memory it may shrink (`docs/original-behaviour.md` A.8). When
/// nobody else moves the break (a single-threaded C program such as run.c,
/// the demo), the layout, the break and the `brk` calls are the original's.
///
/// This keeps [`BreakSource`]'s promises as long as no other code in the
/// process lowers the break with raw `brk`/`sbrk` (which would break glibc's
/// `malloc` as well).
///
/// There is no public constructor (and no `Default`): a second heap on the
/// process break would call `sbrk` under a different lock. Its only value
/// lives in [`crate::process`]'s heap.
///
/// ```compile_fail
/// let second = brk_pools::Heap::new(brk_pools::ProcessBreak::default());
/// ```
#[derive(Debug)]
pub struct ProcessBreak {
    /// The process has been seen with more than one thread: never the break
    /// again.
    threaded: bool,
    /// The reservation grown once threaded (never unmapped: blocks live in
    /// it, and earlier ones are leaked on purpose when a new one is made).
    mapped: Option<Arena>,
}

// SAFETY: the reservation is owned memory, not tied to a thread.
unsafe impl Send for ProcessBreak {}

impl ProcessBreak {
    /// The process break. Only the process heap should own one; see
    /// [`crate::process`].
    pub(crate) const fn new() -> Self {
        ProcessBreak {
            threaded: false,
            mapped: None,
        }
    }

    /// Whether the next growth may move the real break.
    pub fn uses_break(&self) -> bool {
        !self.threaded && libc_single_threaded()
    }

    #[inline]
    fn grow_break(increment: usize) -> Result<*mut u8, Refusal> {
        let increment = isize::try_from(increment).map_err(|_| Refusal::TooLarge)?;
        // SAFETY: a positive increment never shrinks the break, so no one's
        // memory is unmapped; failure leaves the break where it was. The
        // process is single-threaded, so no other sbrk runs concurrently.
        let old = unsafe { libc::sbrk(increment) };
        if old as isize == -1 {
            Err(Refusal::Kernel {
                errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            })
        } else {
            Ok(old.cast())
        }
    }

    /// Growth once the process has threads: out of line, so that the
    /// break's path through [`grow`](BreakSource::grow) stays small enough to
    /// inline into the heap's append.
    #[cold]
    #[inline(never)]
    fn grow_mapped(&mut self, increment: usize) -> Result<*mut u8, Refusal> {
        if let Some(arena) = &mut self.mapped
            && let Ok(old) = arena.grow(increment)
        {
            return Ok(old);
        }
        // A new reservation (the first, or the last one is full): the
        // default size, or the request if larger; under an address-space
        // limit (RLIMIT_AS), halved until the kernel grants one, down to the
        // request itself, so that room left under the limit is still used.
        // A refusal changes nothing: the next append tries again.
        let mut capacity = PROCESS_RESERVATION.max(increment);
        loop {
            match Arena::new(capacity) {
                Ok(mut arena) => {
                    let old = arena.grow(increment)?;
                    if let Some(full) = self.mapped.replace(arena) {
                        // Its blocks stay in use: never unmap it.
                        core::mem::forget(full);
                    }
                    return Ok(old);
                }
                Err(_) if capacity > increment => capacity = (capacity / 2).max(increment),
                Err(error) => {
                    return Err(Refusal::Kernel {
                        errno: error.raw_os_error().unwrap_or(0),
                    });
                }
            }
        }
    }
}

// SAFETY: see the rule above. With the break: sbrk returns the old break and
// maps old..old+n, and only this (single) thread moves the break during the
// call; glibc never hands out memory between its top chunk and a foreign
// sbrk, and never shrinks the break below it. With mappings: Arena keeps
// BreakSource's promises, and full arenas are leaked, never unmapped.
unsafe impl BreakSource for ProcessBreak {
    #[inline]
    fn current(&self) -> *mut u8 {
        if self.uses_break() {
            // SAFETY: uses_break says the process is single-threaded.
            unsafe { break_now() }
        } else {
            self.mapped
                .as_ref()
                .map_or(ptr::null_mut(), BreakSource::current)
        }
    }

    #[inline]
    fn grow(&mut self, increment: usize) -> Result<*mut u8, Refusal> {
        if self.uses_break() {
            Self::grow_break(increment)
        } else {
            self.threaded = true;
            self.grow_mapped(increment)
        }
    }

    #[inline]
    fn heap_extent(&mut self, memory_start: *mut u8, memory_end: *mut u8) {
        crate::process::publish_extent(memory_start, memory_end);
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
