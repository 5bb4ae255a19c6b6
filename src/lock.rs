//! The heaps' lock: a futex mutex that knows its owner, survives `fork`, and
//! never allocates.
//!
//! [`std::sync::Mutex`] would do for mutual exclusion, but the heaps need
//! three things it cannot give:
//!
//! * **Re-entry is reported, not waited for.** The lock word *is* the
//!   holder's identity. A thread that asks for the lock it holds (a
//!   `PoolBox` dropped inside `Pools::inspect`, a C ABI call made while
//!   `process::lock()` is held, a signal handler that allocates while its
//!   thread is inside the heap) gets [`Reentered`] at once instead of waiting
//!   for itself forever. Taking and releasing the lock each write the
//!   word once, so there is no moment at which the lock is held but its
//!   owner unknown. That is all it detects: *this* lock, held by *this*
//!   thread. It does not make the heap async-signal-safe (see
//!   [`process`](crate::process#signals)).
//! * **No atomic instruction while the process is single-threaded.** A
//!   `lock cmpxchg` and an `xchg` (which is atomic, and as slow, without
//!   the prefix), two instructions, take about as long as the rest of a
//!   reusing `allocate`. While glibc says the process has never had a
//!   second thread ([`crate::threads`]), nobody can race for the word: a
//!   `cmpxchg` without the `lock` prefix takes the lock (still one
//!   instruction, so a signal handler cannot land half-way) and a plain
//!   store releases it, as glibc's `malloc` skips its arena lock then. The word means the same in
//!   both modes, so re-entry is still caught, and a thread created while
//!   the lock is held (from under [`process::lock`](crate::process::lock),
//!   or by another library's `fork` handler) finds it held: the release
//!   reads the flag again and, the process being threaded now, releases
//!   with `xchg` and wakes the new thread if it sleeps.
//! * **`fork`.** A child has only the thread that called `fork`. If another
//!   thread held the process heap's lock at that moment, the child's copy
//!   stays locked for good. [`Lock::fork_prepare`], [`Lock::fork_parent`] and
//!   [`Lock::fork_child`] are the three `pthread_atfork` handlers (as glibc's
//!   `malloc` takes its arena locks around `fork`): the forking thread takes
//!   the lock before `fork` and both sides release it after. If the forking
//!   thread already holds it (`fork` inside a callback under the lock), the
//!   handlers leave it alone: the same thread, with the same thread
//!   pointer, owns it in both processes and releases it as usual. (The
//!   process heap registers the handlers in a first-use hook, see
//!   [`Lock::with_first_use`].)
//! * **Other libraries' `fork` handlers.** glibc runs every library's
//!   handlers on the forking thread, and a library's handler may use the
//!   heap (as such handlers use `malloc`). While the forking thread holds the
//!   lock *for* `fork` and no call of its own is inside the heap, its calls
//!   go through: each marks the word with [`FORK_CALL`] while it runs and
//!   clears it when done, and the fork's hold stays. A call while that mark
//!   is set is re-entry, reported as above. A handler may fork again: the
//!   lock counts the forks that hold it, and each fork's parent and child
//!   handlers give back only that fork's hold.
//! * **No `malloc`.** The lock is one atomic word and the `futex` syscall,
//!   so taking it can never move the program break.
//!
//! The owner is identified by the *thread pointer*, the address of the
//! thread's control block that the x86-64 TLS ABI keeps at `%fs:0` (the
//! first instruction of every initial-exec or local-exec thread-local access
//! is `movq %fs:0, %reg`): unique among live threads, one instruction to
//! read (no syscall, no `__tls_get_addr` call even when the library is
//! linked into a shared object), and the same in a fork child as in the
//! thread that forked, which is exactly the thread the child runs.
//!
//! The word holds 0 when the lock is free, and the holder's thread pointer
//! (at least 8-aligned) when it is held, with bit 0 set once another thread
//! may sleep on it and bit 2 while a call made during `fork` runs. Taking a
//! free lock is a load and one `lock cmpxchg` of 0 to the thread pointer;
//! releasing it one `xchg` with 0, which also says whether to wake a sleeper
//! (in a single-threaded process: a `cmpxchg` without the `lock` prefix, and
//! a store). A call made
//! during `fork` gets a guard that says so, and its release clears bit 2
//! instead. Sleepers wait on the word's low 32 bits (a futex is
//! 32 bits wide): a thread sleeps only while those bits show a holder with
//! bit 0 set, and that holder wakes one sleeper when it releases; a thread
//! that takes the lock after sleeping sets bit 0 again, in case more sleep.
//! Before it sleeps, a waiting thread reads the word a few times, with long
//! pauses between reads ([`MIN_PAUSES`] says why long), and it does so again
//! after each wake.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::threads::single_threaded;

/// The lock is free.
const UNLOCKED: usize = 0;
/// Bit 0 of a held lock's word: threads may sleep on it, so the release must
/// wake one. (Thread pointers are 8-aligned: bit 0 is free.)
const SLEEPERS: usize = 1;

/// Never locked yet, and a [first-use hook](Lock::with_first_use) must run
/// before the first lock: any attempt to take it fails the fast path's
/// compare-exchange (the word is not 0) and ends in the slow path, which
/// runs the hook. So a hook costs the fast path nothing. (2 is no thread
/// pointer, with or without [`SLEEPERS`].)
const FIRST_USE: usize = 2;

/// Bit 2 of a word held for `fork`: a heap call made on the forking thread
/// (by another library's `fork` handler) is running. Its guard's release
/// clears the bit and leaves the fork's hold in place.
const FORK_CALL: usize = 4;

/// The fewest `pause` instructions before each read of a held lock's word by
/// a waiting thread (after a wake, it reads once before them too): about
/// 30 µs on the AMD EPYC of docs/performance.md (a `pause` takes 30 ns
/// there), where an allocate and a deallocate on a thread of a threaded
/// process take about 19 ns together; 9 µs on an Intel Xeon where a `pause`
/// took 8.5 ns. (A `pause` lasts from a few cycles to about 140, depending on
/// the CPU, and every wait below as many times longer.)
/// While one thread keeps the lock busy, a waiter that read every few pauses
/// (1, 2, 4, … apart, up to 64, as this lock did before) would catch it free
/// between two of the holder's calls every few microseconds, and each such
/// handover moves the lock's and the heap's cache lines to the other core;
/// reading seldom lets the holder run on, and two threads do as many pairs
/// per second as one (benches/mallocs.sh). The price: a call that finds the
/// lock held waits at least that long, however soon the holder is done, and
/// a thread that takes the lock again and again keeps it for long stretches
/// while another waits (the lock is not fair).
const MIN_PAUSES: u32 = 1024;
/// The most `pause` instructions between two reads of a held lock's word.
const MAX_PAUSES: u32 = 4096;
/// The `pause` instructions a waiting thread spends before it sleeps in the
/// kernel (and again after each wake): about 2 ms there (0.5 ms on the
/// Xeon), on a CPU of its own (with more threads than cores, the spin takes
/// time the holder could have run in).
const SPIN_PAUSES: u32 = 65536;

/// This thread's identity: its thread pointer (see the [module docs](self)).
#[inline]
fn this_thread() -> usize {
    let thread_pointer: usize;
    // SAFETY: on x86-64 Linux the %fs base of every thread points to its
    // thread control block, whose first word is the block's own address
    // (the TLS ABI that compiled thread-local accesses rely on). Reading it
    // touches no other memory and changes no flags.
    unsafe {
        core::arch::asm!(
            "movq %fs:0, {}",
            out(reg) thread_pointer,
            options(att_syntax, nostack, preserves_flags, readonly, pure)
        );
    }
    thread_pointer
}

/// The calling thread already holds the lock it asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reentered;

/// A mutex around a `T` that reports re-entry (see the [module docs](self)).
pub struct Lock<T> {
    /// 0 when free; else the holder's [`this_thread`], with [`SLEEPERS`]
    /// and [`FORK_CALL`]; [`FIRST_USE`] before the first lock of a lock with
    /// a hook.
    word: AtomicUsize,
    /// How many `fork`s hold the lock: [`fork_prepare`](Lock::fork_prepare)
    /// took it (1), and more when a `fork` handler forks again. Only the
    /// holder reads or writes it.
    forks_holding: AtomicUsize,
    /// Runs before the lock is first taken (see [`Lock::with_first_use`]).
    first_use: Option<fn()>,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out the T to one thread at a time, so sharing the
// Lock only ever moves access to the T between threads.
unsafe impl<T: Send> Sync for Lock<T> {}
// SAFETY: as for any owner of a T.
unsafe impl<T: Send> Send for Lock<T> {}

/// Exclusive access to a [`Lock`]'s value; dropping it unlocks.
///
/// Not `Send` (like [`std::sync::MutexGuard`]): the lock records the thread
/// that holds it, so the guard must be dropped on that thread.
#[repr(C)] // the C ABI's slow paths take it (see ProcessHeap)
pub struct LockGuard<'a, T> {
    lock: &'a Lock<T>,
    /// A call made during `fork` (see the [module docs](self)): dropping
    /// the guard ends the call, not the fork's hold. False for every guard
    /// of the fast path, so its release stays one instruction.
    during_fork: bool,
    _not_send: PhantomData<*const ()>,
}

impl<T> Lock<T> {
    /// A free lock around `value`.
    pub const fn new(value: T) -> Self {
        Lock {
            word: AtomicUsize::new(UNLOCKED),
            forks_holding: AtomicUsize::new(0),
            first_use: None,
            value: UnsafeCell::new(value),
        }
    }

    /// A free lock around `value` that calls `hook` before it is first
    /// taken, without holding it (the process heap registers its `fork`
    /// handlers there). Threads that race to the first lock may each call
    /// `hook`; it must be idempotent and must not take this lock. (A signal
    /// handler that locks while its own thread is inside `hook` cannot wait
    /// for it: the process heap's hook returns at once there, and the
    /// handler takes the lock before the hook's work is done.)
    pub const fn with_first_use(value: T, hook: fn()) -> Self {
        Lock {
            word: AtomicUsize::new(FIRST_USE),
            forks_holding: AtomicUsize::new(0),
            first_use: Some(hook),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock, unless this thread holds it already.
    ///
    /// # Errors
    /// [`Reentered`] if the calling thread holds the lock.
    #[inline]
    pub fn lock(&self) -> Result<LockGuard<'_, T>, Reentered> {
        let me = this_thread();
        if !self.try_acquire(me) {
            // Held: by this thread (only this thread ever writes `me` into
            // the word, so reading it back is exact), or by another: wait.
            if self.holder() == me {
                return self.lock_during_fork();
            }
            self.acquire_contended(me);
        }
        Ok(self.guard(false))
    }

    /// This thread holds the lock: a call made during `fork` goes through
    /// (see the [module docs](self)); anything else is re-entry.
    #[cold]
    fn lock_during_fork(&self) -> Result<LockGuard<'_, T>, Reentered> {
        // Only the holder, this thread, changes forks_holding and FORK_CALL.
        if self.forks_holding.load(Ordering::Relaxed) != 0
            && self.word.fetch_or(FORK_CALL, Ordering::Relaxed) & FORK_CALL == 0
        {
            return Ok(self.guard(true));
        }
        Err(Reentered)
    }

    #[inline(always)]
    fn guard(&self, during_fork: bool) -> LockGuard<'_, T> {
        LockGuard {
            lock: self,
            during_fork,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock only if that needs no waiting and no first-use hook:
    /// the fast path, for callers that have a slow path of their own.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<LockGuard<'_, T>> {
        if !self.try_acquire(this_thread()) {
            return None;
        }
        Some(self.guard(false))
    }

    /// Whether the calling thread holds the lock.
    pub fn is_held_by_this_thread(&self) -> bool {
        self.holder() == this_thread()
    }

    /// The holder's thread pointer (0 if free or before first use).
    fn holder(&self) -> usize {
        self.word.load(Ordering::Relaxed) & !(SLEEPERS | FIRST_USE | FORK_CALL)
    }

    /// The value, through `&mut self`: no guard can exist.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// The value back.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }

    /// Takes the lock for `me` if it is free: a load, then a `lock
    /// cmpxchg` (a held lock costs no atomic instruction to find); while the
    /// process is single-threaded, a `cmpxchg` without the `lock` prefix.
    #[inline]
    fn try_acquire(&self, me: usize) -> bool {
        if !single_threaded() {
            core::hint::cold_path();
            return self.try_take(me);
        }
        self.try_acquire_single_threaded(me)
    }

    /// [`try_acquire`](Lock::try_acquire) while no other thread exists: one
    /// `cmpxchg` without the `lock` prefix, which only another CPU's access
    /// could split, and there is no other thread to make one. The only code
    /// that can interrupt this thread is a signal handler, and only between
    /// instructions: before the exchange it finds the lock as it was, after
    /// it the lock held by its own thread (re-entry, as always), even if it
    /// returns still holding a guard. (A separate load and store would let a
    /// handler that returns holding the lock slip in between, and both would
    /// hold it.)
    ///
    /// The `jne` jumps straight into the Rust code of the `label` operand
    /// (an *asm goto*, stable since Rust 1.87): `asm!` cannot hand a flag to
    /// Rust, so without it the answer would take a `sete` or a compare of
    /// `%rax` after the block, one instruction more per lock.
    #[inline(always)]
    fn try_acquire_single_threaded(&self, me: usize) -> bool {
        // SAFETY: the word is a valid, aligned usize that lives as long as
        // the lock; no other thread exists to access it (the process is
        // single-threaded), so the plain exchange is not a data race. The
        // block may read and write memory, so the compiler keeps the
        // holder's accesses to the value after it. `cmpxchg` sets ZF when
        // it stored `me`; the `jne` leaves for `held` when it did not (and
        // wrote the word's value to %rax, which is declared clobbered).
        unsafe {
            core::arch::asm!(
                "cmpxchgq {me}, ({word})",
                "jne {held}",
                word = in(reg) self.word.as_ptr(),
                me = in(reg) me,
                inout("rax") UNLOCKED => _,
                held = label { return false },
                options(att_syntax, nostack),
            );
        }
        true
    }

    /// [`try_acquire`](Lock::try_acquire), and when the lock is held by
    /// another thread, wait for it.
    #[cold]
    #[inline(never)]
    fn acquire_contended(&self, me: usize) {
        // Whether the lock may well be free now (the first-use hook just
        // ran, a wake, or the word just seen free), so that the spin looks
        // before its first pause.
        let mut look_first = false;
        if self.word.load(Ordering::Acquire) == FIRST_USE {
            look_first = true;
            if let Some(hook) = self.first_use {
                hook();
            }
            // The first of the racing threads to get here frees the lock.
            let _ = self.word.compare_exchange(
                FIRST_USE,
                UNLOCKED,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        // Whether this thread has slept: then others may sleep too, and it
        // takes the lock with SLEEPERS so that its release wakes one.
        let mut mark = 0;
        loop {
            if self.spin(me | mark, look_first) {
                return;
            }
            let seen = self.word.load(Ordering::Relaxed);
            if seen == UNLOCKED {
                look_first = true; // freed as the spin ended: spin again
                continue;
            }
            // Announce a sleeper (the holder will wake one), then sleep
            // while the word still shows this holder with the bit.
            if seen & SLEEPERS == 0
                && self
                    .word
                    .compare_exchange(seen, seen | SLEEPERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            futex_wait(&self.word, seen | SLEEPERS);
            mark = SLEEPERS;
            look_first = true;
        }
    }

    /// Waits for a held lock by reading its word with growing pauses before
    /// each read ([`MIN_PAUSES`] doubling up to [`MAX_PAUSES`]: the fewer
    /// reads while it is held, the longer the holder keeps its cache line,
    /// and with it the heap's), and takes it for `word` (the thread
    /// pointer, with or without [`SLEEPERS`]) when it is seen free; with
    /// `look_first`, a read before the first pause too. False after
    /// [`SPIN_PAUSES`] pauses without it.
    fn spin(&self, word: usize, look_first: bool) -> bool {
        if look_first && self.try_take(word) {
            return true;
        }
        let mut pauses = MIN_PAUSES;
        let mut spent = 0;
        while spent < SPIN_PAUSES {
            for _ in 0..pauses {
                core::hint::spin_loop();
            }
            spent += pauses;
            if self.try_take(word) {
                return true;
            }
            pauses = (pauses * 2).min(MAX_PAUSES);
        }
        false
    }

    /// Takes the lock for `word` if a read finds it free: a load, then a
    /// `lock cmpxchg` (a held lock costs no atomic instruction to find). The
    /// fast path's and the waiting thread's way to take it.
    #[inline(always)]
    fn try_take(&self, word: usize) -> bool {
        self.word.load(Ordering::Relaxed) == UNLOCKED
            && self
                .word
                .compare_exchange(UNLOCKED, word, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Releases the lock: one `xchg`, which also says whether to wake a
    /// sleeper; a plain store while the process is single-threaded (nobody
    /// sleeps). The flag is read here, not remembered from the lock: a
    /// thread created while the lock was held may be asleep on it.
    #[inline]
    fn release(&self) {
        if single_threaded() {
            // Release: the holder's accesses stay before the store.
            self.word.store(UNLOCKED, Ordering::Release);
        } else if self.word.swap(UNLOCKED, Ordering::Release) & SLEEPERS != 0 {
            futex_wake_one(&self.word);
        }
    }

    /// Ends a call made during `fork`; the fork's hold stays.
    #[cold]
    #[inline(never)]
    fn end_call_during_fork(&self) {
        self.word.fetch_and(!FORK_CALL, Ordering::Relaxed);
    }

    /// The `pthread_atfork` *prepare* handler: take the lock before `fork`,
    /// unless the forking thread holds it already: for an outer `fork` (a
    /// `fork` handler that forks again), which then holds it for one more;
    /// or through a guard (a `fork` under the lock), which keeps it.
    pub fn fork_prepare(&self) {
        if self.is_held_by_this_thread() {
            if self.forks_holding.load(Ordering::Relaxed) != 0 {
                self.forks_holding.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let me = this_thread();
        if !self.try_acquire(me) {
            self.acquire_contended(me);
        }
        self.forks_holding.store(1, Ordering::Relaxed);
    }

    /// The *parent* handler: give back what [`fork_prepare`](Lock::fork_prepare)
    /// took, once no `fork` holds the lock any more.
    pub fn fork_parent(&self) {
        if self.fork_ended() {
            self.release();
        }
    }

    /// The *child* handler: the child is single-threaded, so no one sleeps
    /// on the lock; reset it once no `fork` holds it any more.
    pub fn fork_child(&self) {
        if self.fork_ended() {
            self.word.store(UNLOCKED, Ordering::Release);
        }
    }

    /// One `fork` that holds the lock is over; whether it was the last.
    fn fork_ended(&self) -> bool {
        let forks = self.forks_holding.load(Ordering::Relaxed);
        if forks != 0 {
            self.forks_holding.store(forks - 1, Ordering::Relaxed);
        }
        forks == 1
    }
}

impl<T> Deref for LockGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard is the only way to the value while it lives.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for LockGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref, and &mut self makes the access exclusive.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for LockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.during_fork {
            self.lock.end_call_during_fork();
        } else {
            self.lock.release();
        }
    }
}

/// Sleeps while the low 32 bits of `word` (the futex: x86-64 is
/// little-endian, so they sit at the word's address) equal those of
/// `expected`.
fn futex_wait(word: &AtomicUsize, expected: usize) {
    // SAFETY: FUTEX_WAIT reads the u32 at a valid, 8-aligned address and
    // sleeps only while it still equals `expected`'s low half; spurious
    // returns are retried by the caller's loop.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected as u32,
            core::ptr::null::<libc::timespec>(),
        );
    }
}

/// Wakes one thread sleeping in [`futex_wait`] on `word`.
///
/// A raw `syscall` instruction rather than libc's `syscall()` function: it
/// is inlined into the unlock of every operation (behind a branch taken only
/// when someone sleeps), and a call there would make every caller save a
/// register around it; the instruction clobbers only `%rax`, `%rcx` and
/// `%r11`.
#[inline]
fn futex_wake_one(word: &AtomicUsize) {
    // SAFETY: FUTEX_WAKE only uses the address as a key and touches no
    // memory. The kernel's x86-64 syscall convention: number in %rax, then
    // %rdi, %rsi, %rdx; it returns in %rax and clobbers %rcx (the return
    // address) and %r11 (the flags); it does not use the stack.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_futex => _,
            in("rdi") word.as_ptr(),
            in("rsi") libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            in("rdx") 1,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reentry_is_reported_and_threads_exclude_each_other() {
        let lock = Lock::new(0u64);
        {
            let _guard = lock.lock().unwrap();
            assert_eq!(lock.lock().err(), Some(Reentered));
            assert!(lock.is_held_by_this_thread());
        }
        assert!(!lock.is_held_by_this_thread());
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..20_000 {
                        let mut guard = lock.lock().unwrap();
                        let seen = *guard;
                        core::hint::spin_loop();
                        *guard = seen + 1;
                    }
                });
            }
        });
        assert_eq!(*lock.lock().unwrap(), 80_000);
    }

    /// Threads that wait long enough to sleep in the kernel are all woken,
    /// one release after another: a thread that slept takes the lock with
    /// the sleepers' bit, so that its own release wakes the next. (Holding
    /// the lock 100 ms, far past the spin, puts all three to sleep; the
    /// timeouts turn a thread that never wakes into a failure, not a hang.)
    #[test]
    fn every_sleeper_is_woken_in_turn() {
        use std::sync::mpsc;
        use std::time::Duration;
        static LOCK: Lock<u32> = Lock::new(0);
        const SLEEPERS_STARTED: u32 = 3;
        let guard = LOCK.lock().unwrap();
        let (done, finished) = mpsc::channel();
        for _ in 0..SLEEPERS_STARTED {
            let done = done.clone();
            std::thread::spawn(move || {
                *LOCK.lock().unwrap() += 1;
                done.send(()).unwrap();
            });
        }
        std::thread::sleep(Duration::from_millis(100));
        drop(guard);
        for woken in 0..SLEEPERS_STARTED {
            assert!(
                finished.recv_timeout(Duration::from_secs(5)).is_ok(),
                "{} of {SLEEPERS_STARTED} sleepers never woke",
                SLEEPERS_STARTED - woken
            );
        }
        assert_eq!(*LOCK.lock().unwrap(), SLEEPERS_STARTED);
    }

    /// Threads that race to the first lock of a [`Lock::with_first_use`]
    /// each get the lock only after a call of the hook has finished (the
    /// process heap's `fork` handlers must be registered before anyone
    /// holds it); `try_lock` never runs the hook and never takes a lock in
    /// its first-use state; later locks do not run it again.
    #[test]
    fn the_first_use_hook_finishes_before_anyone_holds_the_lock() {
        use std::sync::atomic::AtomicBool;
        use std::sync::atomic::Ordering::SeqCst;
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        static FINISHED: AtomicBool = AtomicBool::new(false);
        fn hook() {
            CALLS.fetch_add(1, SeqCst);
            // Long enough for the other racers to reach the lock meanwhile.
            std::thread::sleep(std::time::Duration::from_millis(30));
            FINISHED.store(true, SeqCst);
        }
        static LOCK: Lock<u64> = Lock::with_first_use(0, hook);

        assert!(LOCK.try_lock().is_none(), "try_lock skipped the hook");
        assert_eq!(CALLS.load(SeqCst), 0, "try_lock ran the hook");
        let racers = 4;
        let start = std::sync::Barrier::new(racers);
        std::thread::scope(|scope| {
            for _ in 0..racers {
                scope.spawn(|| {
                    start.wait();
                    let mut guard = LOCK.lock().unwrap();
                    assert!(FINISHED.load(SeqCst), "held before the hook finished");
                    *guard += 1;
                });
            }
        });
        let calls = CALLS.load(SeqCst);
        assert!((1..=racers).contains(&calls), "{calls} hook calls");
        assert_eq!(*LOCK.lock().unwrap(), racers as u64);
        assert!(LOCK.try_lock().is_some());
        assert_eq!(CALLS.load(SeqCst), calls, "a later lock ran the hook");
    }

    /// Re-entry is reported while other threads sleep on the lock too (the
    /// word then carries the sleepers' bit beside the owner).
    #[test]
    fn reentry_is_reported_while_others_wait() {
        let lock = Lock::new(());
        let guard = lock.lock().unwrap();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| drop(lock.lock().unwrap()));
            while lock.word.load(Ordering::Relaxed) & SLEEPERS == 0 {
                std::thread::yield_now();
            }
            assert_eq!(lock.lock().err(), Some(Reentered));
            assert!(lock.try_lock().is_none());
            drop(guard);
            waiter.join().unwrap();
        });
        assert!(!lock.is_held_by_this_thread());
        assert!(lock.try_lock().is_some());
    }

    /// While the forking thread holds the lock for `fork`, its own calls
    /// (another library's `fork` handlers) go through one at a time, and the
    /// fork's hold survives them; a call inside such a call is re-entry.
    /// Without the hold, a held lock is re-entry as always.
    #[test]
    fn calls_during_fork_go_through_and_keep_the_hold() {
        let lock = Lock::new(0u64);
        lock.fork_prepare();
        for round in 1..=3 {
            let mut call = lock.lock().expect("a call during fork");
            *call += 1;
            assert_eq!(lock.lock().err(), Some(Reentered), "round {round}");
            drop(call);
            assert!(lock.is_held_by_this_thread(), "the fork's hold stays");
        }
        std::thread::scope(|scope| {
            let other = scope.spawn(|| *lock.lock().unwrap());
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!other.is_finished(), "another thread got in during fork");
            lock.fork_parent();
            assert_eq!(other.join().unwrap(), 3);
        });
        assert!(!lock.is_held_by_this_thread());
        let guard = lock.lock().unwrap();
        assert_eq!(lock.lock().err(), Some(Reentered), "no fork: re-entry");
        drop(guard);
    }

    /// A `fork` handler that forks again: the inner fork's prepare finds
    /// the lock held for the outer one and holds it once more; the inner
    /// fork's parent and child handlers give back only that, and the outer
    /// fork's hold (and a call made during it) survive until its own.
    #[test]
    fn a_fork_inside_a_fork_handler_keeps_the_outer_hold() {
        let lock = Lock::new(0u64);
        lock.fork_prepare(); // the outer fork
        let call = lock.lock().expect("a call during the outer fork");
        lock.fork_prepare(); // a handler forks again
        lock.fork_parent(); // the inner fork is over in the parent
        assert!(lock.is_held_by_this_thread(), "the outer hold stays");
        std::thread::scope(|scope| {
            let other = scope.spawn(|| drop(lock.lock().unwrap()));
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!other.is_finished(), "another thread got in");
            drop(call);
            assert!(lock.is_held_by_this_thread());
            lock.fork_parent(); // the outer fork is over
            other.join().unwrap();
        });
        assert!(!lock.is_held_by_this_thread());
        // The child's side: the inner child keeps the outer hold too.
        lock.fork_prepare();
        lock.fork_prepare();
        lock.fork_child();
        assert!(lock.is_held_by_this_thread(), "the inner child keeps it");
        lock.fork_child();
        assert!(
            lock.try_lock().is_some(),
            "free once the outer fork is over"
        );
    }
}
