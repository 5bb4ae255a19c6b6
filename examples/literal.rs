//! Chapter 1: the literal port. run.s, whole, as three `asm!` blocks: the
//! `brk` syscall itself, `memory_start`/`memory_end` as two statics, no lock,
//! no checks, none of the crate's hardening. It behaves like run.s, crashes
//! included; [docs/walkthrough.md](../docs/walkthrough.md) then hardens it
//! step by step into the crate.
//!
//! ```text
//! cargo run --example literal                 # run.c: the seed's two lines (the heap start on stderr)
//! cargo run --example literal -- garbage      # tests/c/repro_garbage.c: garbage on a pipe
//! cargo run --example literal -- malloc-crash # tests/c/repro_malloc_crash.c: SIGSEGV in malloc
//! ```
//!
//! What changed from run.s, and why (each is forced by `asm!`):
//!
//! * Each C function is one `asm!` block inside a Rust function, and run.s's
//!   labels are numeric local labels (`2:`, `jmp 2b`), because the compiler
//!   may inline or duplicate a block and a named label would then be defined
//!   twice. Each label's name is the comment on its line.
//! * A block is entered at its first line, so `allocate` comes first and
//!   `allocate_init`/`allocate_move_break` (which run.s puts before it) come
//!   after it, in run.s's order otherwise.
//! * A block cannot `ret` from the Rust function around it: every `ret`
//!   becomes a jump to the block's end (`jmp 9f`), or the end itself.
//! * `memory_start`/`memory_end` are reached `%rip`-relative
//!   (`{memory_start}(%rip)`), so this links as PIE; run.s's absolute
//!   addresses do not (it needs `gcc -no-pie`).
//! * The register contract is declared: arguments go in `%rdi`/`%rsi` as the
//!   C ABI passes them, everything the code writes is an output, and the
//!   `syscall` instruction's own clobbers are stated: it overwrites `%rcx`
//!   (with the return address) and `%r11` (with the flags).
//!
//! The program is the C program's `main` (`#![no_main]`): Rust's usual
//! start-up calls `malloc` before `main`, which would move the break before
//! the first `allocate` and change what happens
//! (`docs/original-behaviour.md` A.8). Single-threaded and `unsafe` throughout, as run.s is.

#![no_main]

use core::arch::asm;
use core::ffi::{c_char, c_int};

/// run.s's `memory_start` and `memory_end` (`.section .data`, `.quad 0`).
static mut MEMORY_START: u64 = 0;
static mut MEMORY_END: u64 = 0;

// ANCHOR: allocate
/// run.s's `allocate`, with `allocate_continue`, `allocate_loop`,
/// `try_next_block`, `allocate_init` and `allocate_move_break`: their 38
/// instructions, of which the two `ret`s become `jmp 9f` and the block's end.
///
/// # Safety
/// Single-threaded; nothing else may move the program break (`docs/original-behaviour.md` A.8).
unsafe fn allocate(pool: c_int, size: c_int) -> *mut u8 {
    let result: *mut u8;
    // SAFETY: the caller promises what run.s assumes: one thread, and the
    // blocks from MEMORY_START to MEMORY_END are this code's own (nobody
    // else moves the break). Every register the block writes is declared.
    unsafe {
        asm!(
            // allocate:
            // save the pool number in r10
            "movq %rdi, %r10",
            // save the amount requested into %rdx
            "movq %rsi, %rdx",
            // actual amount needed is actually larger
            "addq ${header}, %rdx",
            // if we haven't initialized, do so
            "cmpq $0, {memory_start}(%rip)",
            "je 6f",                                // allocate_init
            // allocate_continue:
            "3:",
            "movq {memory_start}(%rip), %rsi",
            "movq {memory_end}(%rip), %rcx",
            // allocate_loop:
            "2:",
            // if we have reached the end of memory
            // we have to allocate new memory
            // by moving the break
            "cmpq %rsi, %rcx",
            "je 7f",                                // allocate_move_break
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
            "jmp 9f",                               // (ret)
            // try_next_block:
            "4:",
            // this block didn't work, move to the next one
            "addq {size}(%rsi), %rsi",
            "jmp 2b",                               // allocate_loop
            // allocate_init:
            "6:",
            // Find the program break.
            "movq $0, %rdi",
            "movq ${brk}, %rax",
            "syscall",
            // The current break will be both the start and end of our memory
            "movq %rax, {memory_start}(%rip)",
            "movq %rax, {memory_end}(%rip)",
            "jmp 3b",                               // allocate_continue
            // allocate_move_break:
            "7:",
            // old break is saved in %r8 to return to user
            "movq %rcx, %r8",
            // calculate where we want the new break to be
            // (old break + size )
            "movq %rcx, %rdi",
            "addq %rdx, %rdi",
            // save this value
            "movq %rdi, {memory_end}(%rip)",
            // Tell Linux where the new break is
            "movq ${brk}, %rax",
            "syscall",
            // address is in %r8 - mark size, availability, and pool
            "movq $1, {in_use}(%r8)",               // mark it as in use
            "movq %rdx, {size}(%r8)",
            "movq %r10, {pool}(%r8)",
            // Actual return value is beyond our header
            "addq ${header}, %r8",
            "movq %r8, %rax",
            "9:",                                   // (ret)
            header = const 32,                      // .equ HEADER_SIZE, 32
            in_use = const 0,                       // .equ HDR_IN_USE_OFFSET, 0
            size = const 8,                         // .equ HDR_SIZE_OFFSET, 8
            pool = const 16,                        // .equ HDR_POOL_OFFSET, 16
            brk = const 12,                         // .equ BRK_SYSCALL, 12
            memory_start = sym MEMORY_START,
            memory_end = sym MEMORY_END,
            // A C caller writes an int argument with a 32-bit mov, which
            // zero-extends ([A.4](../docs/original-behaviour.md#a4-int-arguments-in-64-bit-registers)): `as u32 as u64` is that mov.
            inout("rdi") pool as u32 as u64 => _,
            inout("rsi") size as u32 as u64 => _,
            out("rdx") _,
            out("r8") _,
            out("r10") _,
            out("rax") result,
            // The syscall instruction writes %rcx (return address) and %r11
            // (flags); the walk uses %rcx too. No input lives in them, so
            // late outputs are enough.
            lateout("rcx") _,
            lateout("r11") _,
            options(att_syntax, nostack),
        );
    }
    result
}
// ANCHOR_END: allocate

// ANCHOR: deallocate
/// run.s's `deallocate`: 2 stores; its `ret` is the end of the block.
///
/// # Safety
/// `ptr - 32 .. ptr - 8` must be writable; nothing is checked (`docs/original-behaviour.md` A.6).
unsafe fn deallocate(ptr: *mut u8) {
    // SAFETY: the caller guarantees the two header words are writable.
    unsafe {
        asm!(
            // free is simple - just mark the block as free
            "movq $0, {in_use} - {header}(%rdi)",
            "movq $0, {pool} - {header}(%rdi)",
            in_use = const 0,
            pool = const 16,
            header = const 32,
            in("rdi") ptr,
            options(att_syntax, nostack, preserves_flags),
        );
    }
}
// ANCHOR_END: deallocate

// ANCHOR: deallocate_pool
/// run.s's `deallocate_pool` with `deallocate_pool_loop`,
/// `deallocate_from_pool` and `deallocate_loop_complete`.
///
/// # Safety
/// As for [`allocate`].
unsafe fn deallocate_pool(pool: c_int) {
    // SAFETY: as in allocate: one thread, and MEMORY_START..MEMORY_END are
    // this code's blocks (or both are 0 and the loop ends at once).
    unsafe {
        asm!(
            // deallocate_pool:
            // %rdi has the pool number
            // walk the allocations and deallocate
            // anything with the pool num
            "movq {memory_start}(%rip), %rsi",
            "movq {memory_end}(%rip), %rcx",
            // deallocate_pool_loop:
            "2:",
            "cmpq %rsi, %rcx",
            "je 3f",                                // deallocate_loop_complete
            "cmpq %rdi, {pool}(%rsi)",
            "je 4f",                                // deallocate_from_pool
            "addq {size}(%rsi), %rsi",
            "jmp 2b",                               // deallocate_pool_loop
            // deallocate_from_pool:
            "4:",
            "movq $0, {pool}(%rsi)",
            "movq $0, {in_use}(%rsi)",
            "addq {size}(%rsi), %rsi",
            "jmp 2b",                               // deallocate_pool_loop
            // deallocate_loop_complete:
            "3:",                                   // (ret)
            in_use = const 0,
            size = const 8,
            pool = const 16,
            memory_start = sym MEMORY_START,
            memory_end = sym MEMORY_END,
            in("rdi") pool as u32 as u64,
            out("rsi") _,
            out("rcx") _,
            options(att_syntax, nostack),
        );
    }
}
// ANCHOR_END: deallocate_pool

/// The C program's `main` (`return 0` flushes C's stdio, as in C), called by the C runtime before any Rust
/// start-up code could call `malloc`.
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let mode = if argc > 1 {
        // SAFETY: the C runtime passes argc valid, NUL-terminated strings.
        unsafe { core::ffi::CStr::from_ptr(*argv.add(1)) }.to_bytes()
    } else {
        b"run.c"
    };
    // SAFETY: one thread, and each sequence is that of the C program it
    // ports: nothing else moves the break except where the C program lets
    // glibc do it on purpose.
    unsafe {
        match mode {
            b"run.c" => run_c(),
            b"garbage" => repro_garbage(),
            b"malloc-crash" => repro_malloc_crash(),
            _ => {
                eprintln!("usage: literal [run.c|garbage|malloc-crash]");
                return 2;
            }
        }
    }
    0
}

// ANCHOR: run_c
/// asm/run.c, line for line.
unsafe fn run_c() {
    // SAFETY: run.c's sequence: every allocate comes before the first print,
    // so glibc's malloc (behind println!) never moves the break in between.
    unsafe {
        // get 400 bytes from pool 1
        let a1 = allocate(1, 400);
        // get 32 bytes from pool 2
        let a2 = allocate(2, 32);
        // get 80 bytes from pool 2
        let ae = allocate(2, 80);
        // release all of pool 2
        deallocate_pool(2);
        println!("Allocations: {a1:p} {a2:p} {ae:p}");
        // Test if pool 1 still works
        let a3 = a1; // save pointer to verify it's still usable
        deallocate(a1);
        println!("Allocations: {a1:p} {a2:p} {a3:p}");
        // Not in run.c: the heap start, for tests/literal.rs (as
        // asm/heap_start.c reports it for the C builds).
        eprintln!("heap start: {:#x}", (&raw const MEMORY_START).read());
    }
}
// ANCHOR_END: run_c

/// tests/c/repro_garbage.c, with C's own stdio (as the C program has it):
/// run.s's third append writes its header over stdio's pending buffer.
unsafe fn repro_garbage() {
    // SAFETY: deliberately the broken interleaving of the C program; the
    // harm is to this process's output, which is the point.
    unsafe {
        allocate(1, 16);
        libc::printf(c"line1 hello world\n".as_ptr());
        allocate(1, 640);
        allocate(1, 16);
        libc::printf(c"line2\n".as_ptr());
    }
}

/// tests/c/repro_malloc_crash.c: the second append shrinks the break under
/// glibc's heap, and the next `malloc` dies.
unsafe fn repro_malloc_crash() {
    // SAFETY: deliberately the broken interleaving of the C program; the
    // process is expected to die with SIGSEGV in malloc.
    unsafe {
        allocate(1, 16);
        libc::printf(c"hello\n".as_ptr());
        allocate(1, 16);
        let m = libc::malloc(10).cast::<c_char>();
        libc::strcpy(m, c"malloc ok".as_ptr());
        libc::printf(c"%s\n".as_ptr(), m);
        libc::free(m.cast());
    }
}
