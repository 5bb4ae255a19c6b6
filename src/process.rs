//! The one heap on the process's real program break (and, once the process
//! has threads, on `mmap` reservations: see [`ProcessBreak`]).
//!
//! A process has one break, so it has one [`Heap<ProcessBreak>`]. It lives in
//! a `static` behind the crate's own lock (a futex that knows its owner and
//! never allocates, so locking it cannot move the break). Rust code reaches
//! it with [`lock`]; the C ABI in [`crate::c_abi`] takes the same lock, so
//! Rust and C callers can share it from any thread.
//!
//! The original's two globals `memory_start` and `memory_end` are exported
//! unmangled (C drivers such as `asm/trace.c` read them); the heap updates
//! them after every append, where run.s stores `memory_end`.
//!
//! For safe, scoped pools on this heap, see [`crate::pools::process`]: its
//! guards take the same lock for each operation, and the heap refuses to let
//! [`lock`] users or C callers allocate into or free a pool a guard holds.
//!
//! # Living with glibc `malloc`
//!
//! glibc's `malloc` also moves the break (its main arena grows and trims its
//! heap with `sbrk`), so the two allocators take turns at the top of the data
//! segment. run.s assumes it is alone and calls `brk(memory_end + n)`, which
//! pulls the break back under malloc's chunks (`docs/original-behaviour.md` A.8). The
//! port instead:
//!
//! * moves the break as glibc's own `sbrk` does ([`ProcessBreak`]): the
//!   same `brk` syscall from glibc's cached break, the kernel's answer
//!   stored back in that cache. So glibc's cached break stays right and it
//!   never trims below a block of ours (glibc trims only when the break is
//!   still the end of its own top chunk);
//! * moves it **only while the process is single-threaded**. `sbrk` is not
//!   thread-safe and glibc calls it under its arena lock, not this one, so
//!   two threads moving the break can each lower it under the other's memory.
//!   Once the process has had a second thread (glibc's
//!   `__libc_single_threaded` turned false; it never turns true again, not
//!   after the threads are joined, not in a fork child) the heap grows from
//!   `mmap` reservations that nobody else moves, as new segments; the blocks
//!   already on the break stay there and are still walked. A process that
//!   ever had a thread never returns to the break;
//! * continues in a new *segment* wherever the next memory is when it does
//!   not continue the last one: the blocks of one segment are contiguous,
//!   segments are walked in the order they were created, and malloc's chunks
//!   between them are never touched. When nobody else moves the break (a
//!   single-threaded C program such as run.c, the demo) there is one segment
//!   and the layout, the break and the `brk` calls are the original's.
//!
//! The heap itself never calls `malloc` (its tables live in their own
//! mappings), so it cannot move the break under itself.
//!
//! # fork
//!
//! The first [`lock`] registers `pthread_atfork` handlers (before the heap
//! first reads the break, since registering may call `malloc`), as glibc's
//! `malloc` does for its arenas: the forking thread takes the heap's lock
//! before `fork` and both processes release it after, so a child forked
//! while another thread was inside the heap can use it. If the forking
//! thread holds the lock itself (a `fork` inside a callback), it keeps it in
//! both processes and releases it as usual. Other libraries' `fork` handlers
//! may call the heap on the forking thread, in prepare, parent and child,
//! whether they were registered before or after the heap's own, and may
//! fork again (see the `lock` module). Two windows remain that only glibc
//! could close: a `fork` that started before the registration (glibc runs
//! the handlers it had when the fork began) while another thread then takes
//! the heap's lock leaves the child a held lock; and a `fork` handler that
//! makes the heap's *first* call registers the heap's handlers from inside a
//! `fork`, which glibc 2.36 allows (older versions may not).
//!
//! # Re-entry
//!
//! [`lock`] on a thread that already holds the lock panics with a clear
//! message; [`lock_unless_reentered`] returns
//! [`Error::LockHeldByThisThread`] instead (the C ABI's `allocate` returns
//! NULL then, its `deallocate` and `deallocate_pool` abort with a message).
//!
//! # Signals
//!
//! The heap is **not async-signal-safe, like `malloc`**: do not call it from
//! a signal handler. Re-entry detection covers one case, the heap's own
//! lock held by the handler's thread (a handler that interrupted a heap
//! call): that call is refused as above instead of waiting forever. It does
//! not cover a handler that interrupted glibc's `malloc` or `free` while
//! the break moves (the handler's `sbrk` can land between glibc's reading
//! and moving of the break), nor a handler that waits for the heap's lock
//! while a `fork` on another thread holds it and waits for a `malloc` lock
//! the interrupted thread holds. docs/reliability.md lists what is promised
//! and the tests that show it.

use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::error::Error;
use crate::heap::{Growth, Heap};
use crate::lock::{Lock, LockGuard};

mod program_break;
pub use program_break::{PROCESS_RESERVATION, ProcessBreak};

/// How the process heap grows the break: one `brk` per append, as run.s
/// does, unless the `batched-brk` feature asks for [`BATCH_STEP`] steps.
#[cfg(not(feature = "batched-brk"))]
pub const GROWTH: Growth = Growth::Exact;

/// How the process heap grows the break: in [`BATCH_STEP`] steps (the
/// `batched-brk` feature). Layouts, pointers and `memory_end` are the same as
/// with [`Growth::Exact`]; only the number of `brk` calls drops.
#[cfg(feature = "batched-brk")]
pub const GROWTH: Growth = Growth::Batched { step: BATCH_STEP };

/// Bytes per break move with the `batched-brk` feature: 64 KiB.
pub const BATCH_STEP: usize = 64 * 1024;

/// The first lock registers the `fork` handlers (in the lock's slow path, so
/// later locks do not even check).
static PROCESS_HEAP: Lock<Heap<ProcessBreak>> = Lock::with_first_use(
    Heap::with_growth(ProcessBreak::new(), GROWTH),
    register_fork_handlers,
);

/// The `fork` handlers are registered (in this process or a parent).
static FORK_HANDLERS_REGISTERED: AtomicBool = AtomicBool::new(false);

/// The thread registering them, as `pid << 32 | tid`, 0 if none.
static FORK_HANDLERS_REGISTRANT: AtomicU64 = AtomicU64::new(0);

/// Takes the heap's lock for `fork`, in single-threaded processes too: a
/// later prepare handler (another library's, registered before the heap's)
/// may start a thread that uses the heap, and that thread must wait until
/// the fork is over. The forking thread's own calls go through (see the
/// `lock` module).
extern "C" fn fork_prepare() {
    PROCESS_HEAP.fork_prepare();
}

extern "C" fn fork_parent() {
    PROCESS_HEAP.fork_parent();
}

extern "C" fn fork_child() {
    PROCESS_HEAP.fork_child();
}

/// Registers the `fork` handlers once, before the heap is first used: the
/// process heap's lock calls it before its first lock.
///
/// Not a [`std::sync::Once`]: a child forked while another thread was inside
/// `call_once` would wait for that thread forever (it does not exist in the
/// child). Here a registration in progress is marked with the registering
/// thread's pid and tid: a child that inherits the mark (another pid)
/// registers itself; another thread of the same process waits; and the
/// registering thread itself, back here from a signal handler that
/// allocates, returns at once (the registration it interrupted finishes
/// after the handler). Registering twice is harmless: the second prepare
/// handler finds the lock held by this thread and does nothing, and the
/// second parent and child handlers find nothing taken.
#[cold]
fn register_fork_handlers() {
    // SAFETY: getpid and gettid have no preconditions.
    let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
    let me = (pid as u32 as u64) << 32 | tid as u32 as u64;
    while !FORK_HANDLERS_REGISTERED.load(Ordering::Acquire) {
        let registrant = FORK_HANDLERS_REGISTRANT.load(Ordering::Acquire);
        if registrant == me {
            return; // a signal handler on the registering thread
        }
        let stale = registrant != 0 && registrant >> 32 != me >> 32;
        if (registrant == 0 || stale)
            && FORK_HANDLERS_REGISTRANT
                .compare_exchange(registrant, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // SAFETY: the handlers are plain functions that live for the
            // whole program. If registration fails (ENOMEM), fork keeps its
            // old behaviour: a child forked while another thread holds the
            // lock cannot use the heap.
            unsafe {
                libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
            }
            FORK_HANDLERS_REGISTERED.store(true, Ordering::Release);
            FORK_HANDLERS_REGISTRANT.store(0, Ordering::Release);
            return;
        }
        // Another thread of this process is registering: wait for it.
        std::thread::yield_now();
    }
}

/// run.s's `memory_start` quadword, mirrored for C code that reads it
/// (0 before the first allocation).
#[cfg_attr(feature = "c-abi", unsafe(no_mangle))]
#[allow(non_upper_case_globals)]
pub static memory_start: AtomicUsize = AtomicUsize::new(0);

/// run.s's `memory_end` quadword, mirrored for C code that reads it: the end
/// of the last block (0 before the first allocation).
#[cfg_attr(feature = "c-abi", unsafe(no_mangle))]
#[allow(non_upper_case_globals)]
pub static memory_end: AtomicUsize = AtomicUsize::new(0);

/// Exclusive access to the process heap; dropping it unlocks.
///
/// It stays on the thread that locked (the lock knows its owner):
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// send(brk_pools::process::lock());
/// ```
#[repr(transparent)] // the C ABI's slow paths take it by value
pub struct ProcessHeap {
    guard: LockGuard<'static, Heap<ProcessBreak>>,
}

/// Locks the process heap.
///
/// A panic while the lock was held does not poison it: the heap's state is
/// only changed by code that cannot panic half-way.
///
/// # Panics
/// If this thread holds the lock already (waiting would never end); see
/// [`lock_unless_reentered`].
///
/// ```
/// let mut heap = brk_pools::process::lock();
/// let p = heap.allocate(1, 64).unwrap();
/// assert!(heap.is_block_pointer(p.as_ptr()));
/// heap.deallocate_pool(1);
/// ```
#[track_caller]
#[inline]
pub fn lock() -> ProcessHeap {
    lock_unless_reentered().unwrap_or_else(|error| panic!("brk-pools: process::lock: {error}"))
}

/// Locks the process heap, or returns [`Error::LockHeldByThisThread`] if this
/// thread holds it already (it still waits for other threads).
///
/// ```
/// let heap = brk_pools::process::lock();
/// assert_eq!(
///     brk_pools::process::lock_unless_reentered().err(),
///     Some(brk_pools::Error::LockHeldByThisThread)
/// );
/// drop(heap);
/// assert!(brk_pools::process::lock_unless_reentered().is_ok());
/// ```
///
/// # Errors
/// [`Error::LockHeldByThisThread`].
#[inline]
pub fn lock_unless_reentered() -> Result<ProcessHeap, Error> {
    let guard = PROCESS_HEAP
        .lock()
        .map_err(|_| Error::LockHeldByThisThread)?;
    Ok(ProcessHeap { guard })
}

/// Locks the process heap if it is free right now (the C ABI's fast path;
/// None means: take [`lock_unless_reentered`]'s slow path).
#[inline]
pub(crate) fn try_lock() -> Option<ProcessHeap> {
    PROCESS_HEAP.try_lock().map(|guard| ProcessHeap { guard })
}

impl Deref for ProcessHeap {
    type Target = Heap<ProcessBreak>;

    #[inline]
    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl DerefMut for ProcessHeap {
    #[inline]
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

/// Copies the heap's `memory_start` and `memory_end` to the exported
/// globals; the heap calls it (through
/// [`BreakSource::heap_extent`](crate::BreakSource::heap_extent)) after
/// every append, where run.s stores `memory_end`.
#[inline]
pub(crate) fn publish_extent(start: *mut u8, end: *mut u8) {
    memory_start.store(start as usize, Ordering::Relaxed);
    memory_end.store(end as usize, Ordering::Relaxed);
}
