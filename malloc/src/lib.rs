//! The malloc family on the brk-pools process heap, as a shared library:
//! `LD_PRELOAD=libbrk_pools_malloc.so program` runs a program with every
//! `malloc`, `free`, `calloc`, `realloc`, `reallocarray`, `memalign`,
//! `posix_memalign`, `aligned_alloc`, `valloc`, `pvalloc` and
//! `malloc_usable_size` served by run.s's design: first fit over every
//! block, 32-byte headers, no splitting, no coalescing.
//!
//! Every block belongs to pool [`MALLOC_POOL`]. Sizes are rounded up to 16
//! bytes, so with 32-byte headers on a page-aligned heap start every block's
//! pointer is 16-aligned; a pointer that is not (a segment that starts where
//! other code left the break unaligned) is given back and the request
//! served as an aligned one. Larger alignments over-allocate and keep a
//! marker just below the pointer handed out (see [`aligned`]).
//!
//! The functions take the process heap's lock through
//! [`brk_pools::process::lock_unless_reentered`], so threads, `fork`
//! (the heap's own `pthread_atfork` handlers) and the heap's signal contract
//! are those of [`brk_pools::process`]. A call made on a thread that already
//! holds the lock (a signal handler that interrupted an allocation, which is
//! not allowed with glibc either) fails instead of waiting forever:
//! allocations return NULL with `ENOMEM`, a `free` leaks its block.
//!
//! Nothing here calls `malloc`: the heap's tables are mapped, the summary
//! ([`summary`]) is formatted on the stack and written with `write(2)`, and
//! every exported function is `extern "C"`, so a panic aborts the process
//! instead of unwinding into C.

pub mod aligned;
pub mod stats;
pub mod summary;

use core::ffi::{c_int, c_void};
use core::ptr::{self, NonNull};

use brk_pools::process::{self, ProcessHeap};

/// The pool every block of the malloc family belongs to.
pub const MALLOC_POOL: u64 = 1;

/// The alignment of every pointer `malloc` returns, as C requires on x86-64.
pub const MIN_ALIGN: usize = 16;

/// Sets the calling thread's `errno`.
fn set_errno(value: c_int) {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() = value };
}

/// `size` rounded up to a multiple of [`MIN_ALIGN`]; None if that overflows
/// or is more than any heap could hold (`isize::MAX` with room for the
/// header and an alignment's slack).
fn rounded(size: usize) -> Option<usize> {
    let size = size.checked_add(MIN_ALIGN - 1)? & !(MIN_ALIGN - 1);
    (size <= isize::MAX as usize / 2).then_some(size)
}

/// The heap's lock, or None on a thread that holds it already.
fn lock() -> Option<ProcessHeap> {
    process::lock_unless_reentered().ok()
}

/// A block of at least `size` bytes (already rounded) whose pointer is
/// 16-aligned, on the locked heap.
fn allocate_locked(heap: &mut ProcessHeap, size: usize) -> Option<NonNull<u8>> {
    let block = stats::allocate_counted(heap, size)?;
    if (block.as_ptr() as usize).is_multiple_of(MIN_ALIGN) {
        return Some(block);
    }
    let _ = heap.try_deallocate(block.as_ptr());
    aligned::allocate_aligned(heap, MIN_ALIGN, size)
}

/// `malloc` on the locked heap: NULL and `ENOMEM` when the heap refuses.
fn malloc_locked(heap: &mut ProcessHeap, size: usize) -> *mut c_void {
    match rounded(size).and_then(|size| allocate_locked(heap, size)) {
        Some(block) => block.as_ptr().cast(),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// `void *malloc(size_t size)`. `malloc(0)` returns a block of its own (a
/// 16-byte one), freeable like any other.
#[unsafe(no_mangle)]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    match lock() {
        Some(mut heap) => malloc_locked(&mut heap, size.max(1)),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// `void free(void *ptr)`: marks the block free. NULL, pointers that are no
/// block of the heap and blocks already free are ignored, as run.s's
/// `deallocate` ignores them in the port.
#[unsafe(no_mangle)]
pub extern "C" fn free(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    if let Some(mut heap) = lock() {
        aligned::free(&mut heap, ptr.cast());
    }
}

/// `void *calloc(size_t count, size_t size)`: zeroed (a reused block holds
/// its last owner's bytes).
#[unsafe(no_mangle)]
pub extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    let Some(total) = count.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    let block = malloc(total);
    if !block.is_null() {
        // SAFETY: malloc returned at least `total` writable bytes.
        unsafe { ptr::write_bytes(block.cast::<u8>(), 0, total) };
    }
    block
}

/// `void *realloc(void *ptr, size_t size)`: the same pointer when its block
/// already holds `size` bytes (blocks never shrink: there is no splitting),
/// else a new block with the old bytes, and the old one freed.
/// `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)` frees `p` and returns
/// NULL, as glibc does. A pointer that is no block of the heap aborts the
/// process with a message (its size is unknown, so nothing can be copied).
#[unsafe(no_mangle)]
pub extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        return malloc(size);
    }
    if size == 0 {
        free(ptr);
        return ptr::null_mut();
    }
    let Some(mut heap) = lock() else {
        set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    let Some(usable) = aligned::usable_size(&heap, ptr.cast()) else {
        drop(heap);
        summary::abort_with(b"realloc(): not a pointer from this malloc");
    };
    if usable >= size {
        return ptr;
    }
    let moved = malloc_locked(&mut heap, size);
    if !moved.is_null() {
        // SAFETY: `ptr` holds `usable` readable bytes, `moved` at least
        // `size > usable` writable ones, in two different blocks.
        unsafe { ptr::copy_nonoverlapping(ptr.cast::<u8>(), moved.cast::<u8>(), usable) };
        aligned::free(&mut heap, ptr.cast());
    }
    moved
}

/// `void *reallocarray(void *ptr, size_t count, size_t size)`: `realloc`
/// with the multiplication checked (`ENOMEM` on overflow).
#[unsafe(no_mangle)]
pub extern "C" fn reallocarray(ptr: *mut c_void, count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        Some(total) => realloc(ptr, total),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// `size_t malloc_usable_size(void *ptr)`: the bytes from `ptr` to the end
/// of its block (0 for NULL and for pointers that are no block's).
#[unsafe(no_mangle)]
pub extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    if ptr.is_null() {
        return 0;
    }
    lock()
        .and_then(|heap| aligned::usable_size(&heap, ptr.cast()))
        .unwrap_or(0)
}

/// `void *memalign(size_t alignment, size_t size)`: an alignment that is
/// not a power of two is rounded up to one, as glibc does.
#[unsafe(no_mangle)]
pub extern "C" fn memalign(alignment: usize, size: usize) -> *mut c_void {
    if alignment <= MIN_ALIGN {
        return malloc(size);
    }
    let block = alignment
        .checked_next_power_of_two()
        .zip(rounded(size.max(1)))
        .and_then(|(alignment, size)| {
            let mut heap = lock()?;
            aligned::allocate_aligned(&mut heap, alignment, size)
        });
    match block {
        Some(block) => block.as_ptr().cast(),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// `void *aligned_alloc(size_t alignment, size_t size)`: glibc 2.36's,
/// which is `memalign`.
#[unsafe(no_mangle)]
pub extern "C" fn aligned_alloc(alignment: usize, size: usize) -> *mut c_void {
    memalign(alignment, size)
}

/// `int posix_memalign(void **out, size_t alignment, size_t size)`:
/// `EINVAL` unless `alignment` is a power of two multiple of
/// `sizeof(void *)`, `ENOMEM` if the heap refuses; `*out` is set only on
/// success, and `errno` is left alone.
///
/// # Safety
/// `out` must be valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    if !alignment.is_power_of_two() || !alignment.is_multiple_of(size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    // SAFETY: __errno_location returns this thread's errno.
    let saved_errno = unsafe { *libc::__errno_location() };
    let block = memalign(alignment, size);
    set_errno(saved_errno);
    if block.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller's promise: `out` is writable.
    unsafe { *out = block };
    0
}

/// The page size (`sysconf`, which does not allocate).
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// `void *valloc(size_t size)`: page-aligned.
#[unsafe(no_mangle)]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    memalign(page_size(), size)
}

/// `void *pvalloc(size_t size)`: page-aligned, the size rounded up to whole
/// pages.
#[unsafe(no_mangle)]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    match size.max(1).checked_next_multiple_of(page) {
        Some(size) => memalign(page, size),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}
