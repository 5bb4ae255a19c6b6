//! The original's loops and stores, as `asm!` blocks that read like run.s.
//!
//! Each function here ports one or more labels of `asm/run.s`, line for line,
//! in AT&T syntax and with the same registers (of `allocate_move_break`, only
//! the header stores after its `syscall`; every `ret` becomes the end of the
//! block, `allocate_loop`'s as a `jmp`):
//!
//! | register | run.s's comment                        | here                              |
//! |----------|----------------------------------------|-----------------------------------|
//! | `%r10`   | memory pool                            | `in("r10") pool`                  |
//! | `%rdx`   | size requested (plus the header)       | `in("rdx") size_with_header`      |
//! | `%rsi`   | pointer to current memory being examined | `inout("rsi") memory_start => _` |
//! | `%rcx`   | copy of memory_end                     | `in("rcx") memory_end`            |
//! | `%rdi`   | pool number (`deallocate_pool`) / pointer (`deallocate`) | `in("rdi")`     |
//! | `%r8`    | old break, the new block (`allocate_move_break`) | `inout("r8")`           |
//! | `%rax`   | return value                           | `out("rax")`                      |
//!
//! The header offsets are `const` operands taken from [`crate::header`], which
//! `offset_of!` derives from the `#[repr(C)]` struct; gas sees the same numbers
//! run.s's `.equ` lines give it, so the machine code is the same bytes.
//!
//! The other labels are Rust, in [`crate::heap`]; the README's table "What is
//! assembly and what is Rust" maps every label of run.s to its port.
//!
//! Labels are numeric local labels (`2:`, `jmp 2b`): an `asm!` block may be
//! inlined or duplicated by the compiler, so a named label could be defined
//! twice, and rustc rejects named labels for that reason. Labels made only of
//! the digits 0 and 1 are avoided because they read like binary literals.
//!
//! # Safety, for every function here
//! The walks trust the heap, as run.s does: every header from `memory_start`
//! on must be a valid, readable and writable block header whose sizes add up
//! to exactly `memory_end`. [`crate::heap::Heap`] keeps that invariant.

use core::arch::asm;

use crate::header::{HDR_IN_USE_OFFSET, HDR_POOL_OFFSET, HDR_SIZE_OFFSET, HEADER_SIZE};

/// Ports `allocate_loop` and `try_next_block`: first fit from `memory_start`
/// to `memory_end`.
///
/// Returns the pointer to hand out (header + 32) after marking the block in
/// use for `pool`, or null when the walk reached `memory_end` (where run.s
/// jumps to `allocate_move_break`).
///
/// # Safety
/// `memory_start..memory_end` must be a well-formed run of blocks (see the
/// module docs), and no one else may access those headers during the call.
#[inline]
// ANCHOR: allocate_loop
pub unsafe fn allocate_loop(
    memory_start: *mut u8,
    memory_end: *mut u8,
    pool: u64,
    size_with_header: u64,
) -> *mut u8 {
    let found: *mut u8;
    // SAFETY: the caller guarantees that every header from memory_start on is
    // valid and that the sizes lead to exactly memory_end, so every load and
    // store below stays inside the heap and the loop ends. The block writes
    // rsi and rax (both declared) and the flags (asm! assumes flags are
    // clobbered).
    unsafe {
        asm!(
            // allocate_loop:
            "2:",
            // if we have reached the end of memory
            // we have to allocate new memory
            // by moving the break
            "cmpq %rsi, %rcx",
            "je 3f",                                // (allocate_move_break: done in Rust)
            // is the next block available?
            "cmpq $0, {in_use}(%rsi)",
            "jne 4f",                               // try_next_block
            // is the next block big enough
            "cmpq %rdx, {size}(%rsi)",
            "jb 4f",                                // try_next_block
            // this block is great!
            // mark it as in use
            "movq $1, {in_use}(%rsi)",
            // set the pool
            "movq %r10, {pool}(%rsi)",
            // move beyond the header
            "addq ${header}, %rsi",
            // Return the value
            "movq %rsi, %rax",
            "jmp 5f",                               // (ret)
            // ANCHOR: try_next_block
            // try_next_block:
            "4:",
            // this block didn't work, move to the next one
            "addq {size}(%rsi), %rsi",
            "jmp 2b",                               // allocate_loop
            // ANCHOR_END: try_next_block
            // reached memory_end: no block fits
            "3:",
            "xorl %eax, %eax",
            "5:",
            in_use = const HDR_IN_USE_OFFSET,
            size = const HDR_SIZE_OFFSET,
            pool = const HDR_POOL_OFFSET,
            header = const HEADER_SIZE,
            in("r10") pool,
            in("rdx") size_with_header,
            inout("rsi") memory_start => _,
            in("rcx") memory_end,
            out("rax") found,
            options(att_syntax, nostack),
        );
    }
    found
}
// ANCHOR_END: allocate_loop

/// Ports the header stores of `allocate_move_break`: the new block at the old
/// end (`%r8`) gets `{in_use: 1, size, pool}` and the pointer past its header is
/// returned.
///
/// The other half of that label, moving the break, is Rust code in
/// [`crate::heap`]: unlike run.s, the port writes the header only after the
/// break really moved.
///
/// # Safety
/// `old_end..old_end + 24` must be writable memory owned by the heap.
#[inline]
// ANCHOR: allocate_move_break
pub unsafe fn allocate_move_break(old_end: *mut u8, size_with_header: u64, pool: u64) -> *mut u8 {
    let ptr: *mut u8;
    // SAFETY: the caller guarantees the header's 24 bytes are writable heap
    // memory; the stores are unaligned-tolerant on x86-64.
    unsafe {
        asm!(
            // address is in %r8 - mark size, availability, and pool
            "movq $1, {in_use}(%r8)",               // mark it as in use
            "movq %rdx, {size}(%r8)",
            "movq %r10, {pool}(%r8)",
            // Actual return value is beyond our header
            "addq ${header}, %r8",
            "movq %r8, %rax",
            in_use = const HDR_IN_USE_OFFSET,
            size = const HDR_SIZE_OFFSET,
            pool = const HDR_POOL_OFFSET,
            header = const HEADER_SIZE,
            inout("r8") old_end => _,
            in("rdx") size_with_header,
            in("r10") pool,
            out("rax") ptr,
            options(att_syntax, nostack),
        );
    }
    ptr
}
// ANCHOR_END: allocate_move_break

/// Ports `deallocate`: zero the block's `in_use` and `pool` words.
///
/// # Safety
/// `ptr - 32 .. ptr - 8` must be writable memory. Nothing is checked, exactly
/// as in run.s; [`crate::heap::Heap`] checks before it calls this.
#[inline]
// ANCHOR: deallocate
pub unsafe fn deallocate(ptr: *mut u8) {
    // SAFETY: the caller guarantees that the in_use and pool words before ptr
    // are writable.
    unsafe {
        asm!(
            // free is simple - just mark the block as free
            "movq $0, {in_use} - {header}(%rdi)",
            "movq $0, {pool} - {header}(%rdi)",
            in_use = const HDR_IN_USE_OFFSET,
            pool = const HDR_POOL_OFFSET,
            header = const HEADER_SIZE,
            in("rdi") ptr,
            options(att_syntax, nostack, preserves_flags),
        );
    }
}
// ANCHOR_END: deallocate

/// Ports `deallocate_pool_loop`, `deallocate_from_pool` and
/// `deallocate_loop_complete`: free every block whose pool is `pool`.
///
/// As in run.s the test is only `pool == %rdi`, so `pool == 0` also rewrites
/// every free block (with the zeros it already holds).
///
/// # Safety
/// As for [`allocate_loop`].
#[inline]
// ANCHOR: deallocate_pool_loop
pub unsafe fn deallocate_pool_loop(memory_start: *mut u8, memory_end: *mut u8, pool: u64) {
    // SAFETY: as in allocate_loop, the caller guarantees a well-formed run of
    // headers from memory_start to exactly memory_end.
    unsafe {
        asm!(
            // deallocate_pool_loop:
            "2:",
            "cmpq %rsi, %rcx",
            "je 3f",                                // deallocate_loop_complete
            "cmpq %rdi, {pool}(%rsi)",
            "je 4f",                                // deallocate_from_pool
            "addq {size}(%rsi), %rsi",
            "jmp 2b",                               // deallocate_pool_loop
            // ANCHOR: deallocate_from_pool
            // deallocate_from_pool:
            "4:",
            "movq $0, {pool}(%rsi)",
            "movq $0, {in_use}(%rsi)",
            "addq {size}(%rsi), %rsi",
            "jmp 2b",                               // deallocate_pool_loop
            // ANCHOR_END: deallocate_from_pool
            // deallocate_loop_complete:
            "3:",
            in_use = const HDR_IN_USE_OFFSET,
            size = const HDR_SIZE_OFFSET,
            pool = const HDR_POOL_OFFSET,
            in("rdi") pool,
            inout("rsi") memory_start => _,
            in("rcx") memory_end,
            options(att_syntax, nostack),
        );
    }
}
// ANCHOR_END: deallocate_pool_loop
