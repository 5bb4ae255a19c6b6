//! # brk-pools
//!
//! An instruction-for-instruction Rust port of a classic x86-64 "memory
//! pools" allocator (`asm/run.s`), built on the program break, and the proof
//! that the port behaves like the original.
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
//! block (original-behaviour A.5).
//!
//! ## The port
//!
//! The walks over the blocks are `asm!` blocks in [`walk`] that read like
//! run.s, line for line and register for register, with the header offsets
//! fed in as `const` operands from [`header`]'s `offset_of!`. The Rust around
//! them, in [`heap`], moves the break through glibc (so `malloc` keeps
//! working), reports errors where run.s would crash or corrupt memory, and
//! keeps the heap's segments. [`disasm`] proves that the compiled walks are
//! run.s's instructions, one for one.
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
//! The heap of run.c's steps, drawn by [`svg`] (`brk-pools trace
//! tests/scenarios/seed.ops --svg seed.svg`):
//!
#![doc = include_str!("../docs/seed.svg")]
//!
//! ## Reading on
//!
//! In the repository: `docs/walkthrough.md` puts run.s beside its Rust,
//! label by label, with the register table and what each `asm!` operand
//! means; `docs/machine-code.md` shows the compiled instructions side by
//! side; `docs/exercises.md` has changes to try; `examples/` ports run.s with
//! `global_asm!` and with naked functions.
//!
//! Modules, in the order a reader meets them in run.s:
//! [`header`] (the `.equ` lines), [`walk`] (the loops), [`source`] (where the
//! break comes from), [`heap`] (`memory_start`/`memory_end` and the Rust around
//! the loops), [`process`] and [`c_abi`] (the process-wide heap and the C
//! functions), [`pools`] (the safe API: pool guards whose allocations borrow
//! from them), [`script`], [`trace`], [`render`] and [`svg`] (scripts,
//! traces, layouts as text and as pictures), [`disasm`] (the machine-code
//! proof).

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]
#![warn(missing_docs)]

pub mod c_abi;
pub mod disasm;
pub mod error;
#[cfg(feature = "indexed-fit")]
mod fit_index;
pub mod header;
pub mod heap;
mod index;
pub mod pools;
pub mod process;
pub mod render;
pub mod script;
pub mod source;
pub mod svg;
pub mod trace;
pub mod walk;

pub use error::{Error, Refusal};
pub use header::Header;
pub use heap::{Block, Growth, Heap, Segment};
pub use pools::{Pool, PoolBox, Pools};
pub use source::{Arena, BreakSource, ProcessBreak};
