//! [`ProcessBreak`]: the process's real program break while the process is
//! single-threaded, `mmap` reservations after.

use core::ptr;

use crate::error::Refusal;
use crate::source::{Arena, BreakSource};
use crate::threads::single_threaded;

// `static mut`: glibc writes it while Rust code runs, and the Reference
// makes it undefined behaviour to mutate an immutable extern static once
// Rust code runs (items.extern.static). It is read and written through a
// raw pointer, with volatile accesses.
unsafe extern "C" {
    /// glibc: the program break as `sbrk` last saw it, the value `sbrk(0)`
    /// returns (null until glibc first reads the break). Exported by every
    /// x86-64 glibc (`__curbrk@GLIBC_2.2.5`); libc's `brk` stores the
    /// kernel's answer in it, `malloc` moves the break only through `sbrk`,
    /// and `sbrk` moves it from there. The heap's own `brk`
    /// ([`ProcessBreak::grow_break`]) stores its answer there too.
    static mut __curbrk: *mut core::ffi::c_void;
}

/// The current program break, like `sbrk(0)` but without the call once
/// glibc knows the break (it keeps a copy).
///
/// # Safety
/// The process must be single-threaded ([`single_threaded`]), as for
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

/// `brk(address)`, the syscall run.s makes: the number in `%rax`, the
/// address in `%rdi`. Returns the new break, or the old one if the kernel
/// refused.
///
/// # Safety
/// As for any move of the break: no one may use memory between the new
/// break and the old one (for a lower break), nor move it concurrently.
#[inline(always)]
unsafe fn brk_syscall(address: usize) -> *mut u8 {
    let answer: usize;
    // SAFETY: the caller's promise. The kernel's x86-64 syscall convention:
    // it returns in %rax and clobbers %rcx and %r11, and uses no stack. Not
    // `nomem`: the compiler must keep memory accesses (the cache's read and
    // write around it) in their places; not `preserves_flags`, which the
    // kernel does not promise for the flags either.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_brk as usize => answer,
            in("rdi") address,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    answer as *mut u8
}

/// The first reservation [`ProcessBreak`] makes once the process has threads
/// (address space only: pages are committed as the heap grows into them).
pub const PROCESS_RESERVATION: usize = 1 << 30;

/// The process's memory: the real program break, moved as glibc's `sbrk`
/// moves it, while that is safe; `mmap` reservations after.
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
/// it with `brk(__curbrk + n)`. The heap moves it the same way, with the
/// same `brk` syscall, storing the kernel's answer in the cache as glibc
/// does. That keeps the cache right, so glibc sees the port's blocks as
/// foreign memory it must step over instead of memory it may shrink
/// (`docs/original-behaviour.md` A.8). When nobody else moves the break (a
/// single-threaded C program such as run.c, the demo), the layout, the break
/// and the `brk` calls are the original's.
///
/// This keeps [`BreakSource`]'s promises as long as no other code in the
/// process moves the break behind glibc's back, with a raw `brk` syscall
/// (which would break glibc's `malloc` as well), or lowers it with `sbrk`.
///
/// There is no public constructor (and no `Default`): a second heap on the
/// process break would move the break under a different lock. Its only value
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
    /// it, and earlier ones are leaked on purpose when a new one is made;
    /// only the pages above a reservation's page-rounded break may go back
    /// to the kernel, when a new one needs their room).
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
        !self.threaded && single_threaded()
    }

    /// Moves the real break up by `increment` and returns the old break, as
    /// `sbrk(increment)` does, and the way glibc's `sbrk` does it: one `brk`
    /// syscall to glibc's cached break plus `increment` (run.s's own
    /// `movq $BRK_SYSCALL, %rax` … `syscall`), whose answer goes back into
    /// the cache. Inline, instead of a call to `sbrk`: no registers saved
    /// around a call (docs/performance.md counts the difference).
    ///
    /// # Safety
    /// The process must be single-threaded ([`single_threaded`]), so that
    /// nothing else reads or writes glibc's cache meanwhile.
    #[inline]
    unsafe fn grow_break(increment: usize) -> Result<*mut u8, Refusal> {
        // What `sbrk` refuses: its argument is signed.
        isize::try_from(increment).map_err(|_| Refusal::TooLarge)?;
        // run.s's `movq %rcx, %r8` (old break is saved in %r8 to return to
        // user), from glibc's copy of the break rather than memory_end: the
        // same address unless someone else moved the break.
        // SAFETY: single-threaded (the caller's promise).
        let old = unsafe { break_now() };
        // movq %rcx, %rdi; addq %rdx, %rdi
        // (calculate where we want the new break to be: old break + size)
        let Some(wanted) = (old as usize).checked_add(increment) else {
            return Err(Refusal::Kernel {
                errno: libc::ENOMEM, // sbrk's answer for an increment that wraps
            });
        };
        // SAFETY: the cache is the real break (glibc's `brk` calls and this
        // one keep it so, and nobody moves the break behind glibc's back:
        // see the type's docs), so the new break is above the old one and
        // unmaps nobody's memory; a refusal leaves it where it was. The cache
        // then holds the kernel's answer, as glibc's own `brk` leaves it, so
        // `sbrk` (and `malloc`) go on from the real break. Single-threaded:
        // nothing reads or writes the cache meanwhile.
        let now = unsafe {
            // movq $BRK_SYSCALL, %rax; syscall (Tell Linux where the new
            // break is). run.s's `movq %rdi, memory_end` comes after, once
            // the kernel has said yes (Heap::set_memory_end).
            let now = brk_syscall(wanted);
            ptr::write_volatile(&raw mut __curbrk, now.cast());
            now
        };
        if (now as usize) < wanted {
            return Err(Refusal::Kernel {
                errno: libc::ENOMEM, // what glibc's brk reports then
            });
        }
        Ok(old)
    }

    /// Growth once the process has threads: out of line, so that the
    /// break's path through [`grow`](BreakSource::grow) stays small enough to
    /// inline into the heap's append.
    #[cold]
    #[inline(never)]
    fn grow_mapped(&mut self, increment: usize) -> Result<*mut u8, Refusal> {
        let mut exhausted = false;
        if let Some(arena) = &mut self.mapped {
            match arena.grow(increment) {
                Ok(old) => return Ok(old),
                Err(Refusal::ArenaExhausted { .. }) => exhausted = true,
                Err(_) => {}
            }
        }
        let refusal = match self.grow_into_new_reservation(increment) {
            Ok(old) => return Ok(old),
            Err(refusal) => refusal,
        };
        // Refused, perhaps for the address space that the last reservation's
        // unused tail holds (under RLIMIT_AS): give the tail back (the
        // blocks stay) and ask once more. Refused again, take the tail
        // back, so that the refusal changes nothing.
        if exhausted && let Some(tail) = self.mapped.as_mut().and_then(Arena::release_unused) {
            match self.grow_into_new_reservation(increment) {
                Ok(old) => return Ok(old),
                Err(_) => {
                    if let Some(arena) = &mut self.mapped {
                        arena.take_back(tail);
                    }
                }
            }
        }
        Err(refusal)
    }

    /// A new reservation (the first, or the last one is full), grown by
    /// `increment`: the default size, or the request if larger; under an
    /// address-space limit (RLIMIT_AS), halved until the kernel grants one,
    /// down to the request itself, so that room left under the limit is
    /// still used. A refusal changes nothing: the next append tries again.
    fn grow_into_new_reservation(&mut self, increment: usize) -> Result<*mut u8, Refusal> {
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

// SAFETY: see the rule above. With the break: grow returns the old break
// once the kernel's `brk` has mapped old..old+n, and only this (single)
// thread moves the break during the call; glibc's cached break then holds
// the new break, glibc never hands out memory between its top chunk and a
// foreign move of the break, and never shrinks the break below it. With
// mappings: Arena keeps BreakSource's promises, and full arenas are leaked:
// only the pages above their page-rounded break (never accessible, holding
// no block) may be unmapped.
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
            // SAFETY: uses_break says the process is single-threaded.
            unsafe { Self::grow_break(increment) }
        } else {
            self.threaded = true;
            self.grow_mapped(increment)
        }
    }

    #[inline]
    fn heap_extent(&mut self, memory_start: *mut u8, memory_end: *mut u8) {
        super::publish_extent(memory_start, memory_end);
    }
}
