//! # brk-pools
//!
//! A classic x86-64 "memory pools" allocator (`asm/run.s`, on the program
//! break) ported to Rust, with the proof that the port behaves like the
//! original.
//!
//! ## Using it: pools with guards
//!
//! Most users want the safe API in [`pools`]: a [`Pools`] owns a heap (here a
//! private arena; [`pools::process()`] is the process heap), each pool number
//! is held by one [`Pool`] guard, allocations borrow the guard, and dropping
//! the guard frees every block of its pool at once.
//!
//! ```
//! use brk_pools::Pools;
//!
//! let pools = Pools::on_arena(1 << 20)?;
//! {
//!     let pool = pools.pool(1)?;
//!     let name = pool.alloc_str("pool one")?;
//!     let numbers = pool.alloc_slice_copy(&[1u64, 2, 3])?;
//!     numbers[2] += name.len() as u64;
//!     let early = pool.boxed([7u8; 100])?;
//!     early.free(); // one block freed early; no reference to it remains
//!     assert_eq!(numbers, &[1, 2, 11]);
//! } // the guard is dropped: every block of pool 1 is free again
//! // Three blocks (the str, the slice, the box), all free:
//! assert_eq!(pools.inspect(brk_pools::render::map), "|.|.|.|");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## The raw heap: run.s's three operations
//!
//! Underneath, a [`Heap`] has exactly run.s's `allocate(pool, size)`,
//! `deallocate(ptr)` and `deallocate_pool(pool)`, with its quirks (double
//! frees accepted, no rounding, no splitting). Where run.s would crash or
//! corrupt memory, the heap returns an [`Error`] instead; the one operation
//! that cannot check (`deallocate` of any pointer) is an `unsafe fn`, and
//! [`Heap::try_deallocate`] is its checked twin.
//!
//! ```
//! use brk_pools::Heap;
//!
//! // A heap on a private arena, so offsets are the same in every run.
//! let mut heap = Heap::on_arena(1 << 20)?;
//! let a1 = heap.allocate(1, 400)?;
//! let _a2 = heap.allocate(2, 32)?;
//! heap.deallocate_pool(2);
//! assert_eq!(brk_pools::render::map(&heap), "|1|.|");
//! // SAFETY: a1 came from this heap's allocate.
//! unsafe { heap.deallocate(a1) };
//! assert_eq!(brk_pools::render::map(&heap), "|.|.|");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A map such as `|1|.|` lists the blocks in address order: a number is an
//! in-use block of that pool, `.` a free block.
//!
//! ## The program break
//!
//! A Linux process's heap ends at its *program break*. The `brk` system call
//! moves it: raise it by `n` bytes and those `n` bytes become usable memory.
//! run.s reads the break once (`brk(0)`) and calls it `memory_start`; every
//! new block is laid at the end, `memory_end`, and the break is raised by
//! exactly the block's size. Nothing is ever given back.
//!
//! ## Blocks and headers
//!
//! Every block starts with a 32-byte [`Header`]; the caller gets the address
//! just past it:
//!
//! ```text
//!  +0          +8          +16         +24         +32
//!  ┌───────────┬───────────┬───────────┬───────────┬─────────────────────
//!  │ in_use    │ size      │ pool      │ (unused)  │ user data …
//!  │ 0 or 1    │ request+32│ pool no.  │ never set │ ← the pointer handed out
//!  └───────────┴───────────┴───────────┴───────────┴─────────────────────
//! ```
//!
//! `size` counts the header too, so `block + size` is the next block: the
//! heap is a list you walk by adding sizes, from `memory_start` to
//! `memory_end`. `allocate(pool, size)` takes the first free block that is big
//! enough, *whole* (no splitting), or appends a new one; `deallocate(ptr)`
//! zeroes one block's `in_use` and `pool`. Free blocks are never merged.
//!
//! ## Pools
//!
//! The third word tags each block with the pool it came from.
//! `deallocate_pool(pool)` walks every block and frees the ones with that tag,
//! so a group of allocations with one lifetime (a request, a frame, a parse)
//! is released with one call, without remembering each pointer. Free blocks
//! carry pool 0, which is why `deallocate_pool(0)` also touches every free
//! block (`docs/original-behaviour.md` A.5).
//!
//! ## The port: what is assembly and what is Rust
//!
//! run.s's walks (its loops, `deallocate` and the header stores of
//! `allocate_move_break`) are `asm!` blocks in [`walk`], in AT&T syntax on
//! run.s's registers; its other labels are Rust functions of [`heap`], one
//! per label. The README's table "What is assembly and what is Rust" maps
//! every label, with its instructions, to the item that ports it.
//!
//! The Rust moves the break through glibc (so `malloc` keeps working),
//! reports errors where run.s would crash or corrupt memory, and keeps the
//! heap's segments. The tools package (`tools/`, the `brk-pools` command)
//! proves that the compiled walks contain run.s's instructions, one for one
//! (`brk-pools disasm`), and runs both under ptrace to compare them
//! instruction by instruction, registers and jumps included (`brk-pools
//! step`).
//!
//! ## When the real break is used
//!
//! The process heap ([`process`], and so the C ABI) moves the real program
//! break, as glibc's `sbrk` does (keeping glibc's cached break right),
//! **only while the process is single-threaded** (glibc's
//! `__libc_single_threaded`). That covers run.c, single-threaded C programs
//! and the demo: there the layout, the break and the `brk` calls are the
//! original's. `sbrk` is not thread-safe and glibc's
//! `malloc` calls it under its own lock, so once the process has had a second
//! thread the heap grows from `mmap` reservations that nobody else moves, as
//! new segments; blocks already on the break stay there and are still used.
//! **A process that ever had a thread never returns to the break** (the flag
//! never turns true again, not after the threads are joined, not in a fork
//! child). Every libtest `#[test]` runs on a spawned thread, so tests that
//! must see the real break are single-threaded programs. See
//! [`ProcessBreak`] for the rule and [`process`] for `fork` and re-entry.
//!
//! The heap of run.c's steps, drawn by the tools package (`brk-pools trace
//! tests/scenarios/seed.ops --svg seed.svg`):
//!
#![doc = include_str!("../docs/seed.svg")]
//!
//! ## Reading on
//!
//! In the repository: `docs/overview.md` is the one-page map and
//! `docs/glossary.md` explains the assembly words; `docs/original-behaviour.md`
//! is the specification of run.s, measured by this
//! repository's tests; `examples/literal.rs` is chapter 1, run.s ported
//! literally (its own `brk` syscall, no hardening), and
//! `docs/walkthrough.md` climbs from there to this crate, label by label, with
//! the register table and what each `asm!` operand means;
//! `docs/machine-code.md` shows the compiled instructions side by side;
//! `docs/exercises.md` has changes to try, each with a checked solution;
//! `examples/` also ports run.s with `global_asm!` and with naked functions.
//!
//! Modules, in the order a reader meets them in run.s:
//! [`header`] (the `.equ` lines), [`walk`] (the loops), [`source`] (where the
//! break comes from), [`heap`] (`memory_start`/`memory_end` and the Rust around
//! the loops), [`process`] and [`c_abi`] (the process-wide heap and the C
//! functions), [`pools`] (the safe API: pool guards whose allocations borrow
//! from them), [`render`] (layouts as text), [`build_info`] (the features
//! and sources this library was built from). Scripts, traces, pictures, the
//! machine-code proof and the lockstep trace of both machines are the tools
//! package in `tools/`, which builds the `brk-pools` command.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]
#![warn(missing_docs)]

pub mod build_info;
pub mod c_abi;
pub mod error;
#[cfg(feature = "indexed-fit")]
mod fit_index;
pub mod header;
pub mod heap;
mod index;
mod lock;
mod mapped_vec;
#[cfg(feature = "indexed-fit")]
mod pool_lists;
pub mod pools;
pub mod process;
pub mod render;
pub mod source;
#[cfg(test)]
mod test_rng;
mod threads;
pub mod walk;

pub use error::{Error, Refusal};
pub use header::Header;
pub use heap::{Block, Growth, Heap, Segment};
pub use pools::{Pool, PoolBox, Pools};
pub use process::ProcessBreak;
pub use source::{Arena, BreakSource};

/// The README's Rust example (the safe API), compiled and run as a doctest;
/// its `sh` and `text` blocks are not Rust and are not run.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
