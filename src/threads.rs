//! Whether the process has ever had a second thread, as glibc records it.
//!
//! glibc keeps a byte, `__libc_single_threaded`, that is non-zero until
//! `pthread_create` first runs (it clears the byte *before* the new thread
//! exists) and never set again: not after the threads are joined, not in a
//! `fork` child. While it is non-zero, the thread reading it is the only
//! one, which two parts of the crate use, as glibc's own `malloc` does:
//! the [lock](crate::lock) takes no atomic instruction then (its word
//! still names the holder), and
//! [`ProcessBreak`](crate::ProcessBreak) may move the program break.
//!
//! A thread made without this glibc's `pthread_create` (a raw `clone`, or
//! the `pthread_create` of another copy of glibc loaded with `dlmopen`) is
//! invisible to glibc and to this crate alike: glibc's `malloc` is not safe
//! beside such a thread either.

// `static mut`: glibc writes it while Rust code runs, and the Reference
// makes it undefined behaviour to mutate an immutable extern static once
// Rust code runs (items.extern.static). It is only read, through a raw
// pointer.
unsafe extern "C" {
    /// glibc (2.32 and later): non-zero while the process has never had a
    /// second thread.
    static mut __libc_single_threaded: core::ffi::c_char;
}

/// Whether glibc says the process is (and always was) single-threaded.
#[inline(always)]
pub(crate) fn single_threaded() -> bool {
    // SAFETY: a byte glibc exports for exactly this question. While it is
    // non-zero only the calling thread exists, so nothing writes it
    // concurrently; once zero, glibc never writes it again. (Volatile: the
    // compiler must read it each time, since pthread_create, called from
    // anywhere, clears it.)
    unsafe { core::ptr::read_volatile(&raw const __libc_single_threaded) != 0 }
}
