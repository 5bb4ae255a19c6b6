//! Porting label by label as naked functions: `#[unsafe(naked)]` and
//! `core::arch::naked_asm!` (stable since Rust 1.88).
//!
//! ```text
//! cargo run --example naked
//! ```
//!
//! A naked function has no prologue or epilogue: its body is the assembly and
//! nothing else, so run.s's `deallocate` and `deallocate_pool` can be written
//! down whole, `ret` included, at the C ABI (`extern "C"`: the argument is in
//! `%rdi`, as run.s expects). Unlike `global_asm!`, the function is a Rust item:
//! it has a Rust signature, it is called like any function, its name is
//! mangled (so it cannot clash with the crate's C ABI), and `const` and `sym`
//! operands feed it the header offsets from `offset_of!` and the address of a
//! Rust `static`. What it cannot have are `in`/`out` operands: the compiler
//! does not allocate registers for a naked function, so the register contract
//! is the ABI's and it is checked by nobody (a wrong signature is undefined
//! behaviour). Every call is a real `call`/`ret`: nothing is inlined.
//!
//! Here the heap is made by the crate (on an arena) and the naked
//! `deallocate_pool` walks it from two statics, as run.s walks its
//! `memory_start`/`memory_end`.

use core::arch::naked_asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use brk_pools::header::{HDR_IN_USE_OFFSET, HDR_POOL_OFFSET, HDR_SIZE_OFFSET, HEADER_SIZE};
use brk_pools::{Heap, render};

/// run.s's `memory_start` and `memory_end`, read by the naked walk.
static MEMORY_START: AtomicUsize = AtomicUsize::new(0);
static MEMORY_END: AtomicUsize = AtomicUsize::new(0);

// ANCHOR: deallocate
/// run.s's `deallocate`, whole.
///
/// # Safety
/// `ptr - 32 .. ptr - 8` must be writable.
#[unsafe(naked)]
unsafe extern "C" fn deallocate(ptr: *mut u8) {
    naked_asm!(
        // free is simple - just mark the block as free
        "movq $0, {in_use} - {header}(%rdi)",
        "movq $0, {pool} - {header}(%rdi)",
        "ret",
        in_use = const HDR_IN_USE_OFFSET,
        pool = const HDR_POOL_OFFSET,
        header = const HEADER_SIZE,
        options(att_syntax),
    )
}
// ANCHOR_END: deallocate

// ANCHOR: deallocate_pool
/// run.s's `deallocate_pool` and its loop, whole, over [`MEMORY_START`] and
/// [`MEMORY_END`].
///
/// # Safety
/// The statics must delimit a well-formed run of blocks (or both be 0).
#[unsafe(naked)]
unsafe extern "C" fn deallocate_pool(pool: u64) {
    naked_asm!(
        // deallocate_pool:
        "movq {memory_start}(%rip), %rsi",
        "movq {memory_end}(%rip), %rcx",
        // deallocate_pool_loop:
        "2:",
        "cmpq %rsi, %rcx",
        "je 3f",
        "cmpq %rdi, {pool}(%rsi)",
        "je 4f",
        "addq {size}(%rsi), %rsi",
        "jmp 2b",
        // deallocate_from_pool:
        "4:",
        "movq $0, {pool}(%rsi)",
        "movq $0, {in_use}(%rsi)",
        "addq {size}(%rsi), %rsi",
        "jmp 2b",
        // deallocate_loop_complete:
        "3:",
        "ret",
        memory_start = sym MEMORY_START,
        memory_end = sym MEMORY_END,
        in_use = const HDR_IN_USE_OFFSET,
        size = const HDR_SIZE_OFFSET,
        pool = const HDR_POOL_OFFSET,
        options(att_syntax),
    )
}
// ANCHOR_END: deallocate_pool

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut heap = Heap::on_arena(1 << 20)?;
    let a1 = heap.allocate(1, 400)?;
    heap.allocate(2, 32)?;
    heap.allocate(2, 80)?;
    MEMORY_START.store(heap.memory_start() as usize, Ordering::Relaxed);
    MEMORY_END.store(heap.memory_end() as usize, Ordering::Relaxed);
    println!("after run.c's three allocates: {}", render::map(&heap));

    // SAFETY: the statics delimit the heap's single segment, which nothing
    // else touches during the call.
    unsafe { deallocate_pool(2) };
    println!("naked deallocate_pool(2):      {}", render::map(&heap));
    assert_eq!(render::map(&heap), "|1|.|.|");

    // SAFETY: a1 is a block pointer of this heap.
    unsafe { deallocate(a1.as_ptr()) };
    println!("naked deallocate(a1):          {}", render::map(&heap));
    assert_eq!(render::map(&heap), "|.|.|.|");
    Ok(())
}
