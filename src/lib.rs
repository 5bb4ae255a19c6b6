//! # brk-pools
//!
//! An instruction-for-instruction Rust port of a classic x86-64 "memory
//! pools" allocator (`asm/run.s`), built on the program break.
//!
//! Every block starts with a 32-byte [`Header`] `{in_use, size, pool, unused}`;
//! `allocate(pool, size)` takes the first free block that is big enough (whole:
//! no splitting) or appends a new block by moving the break; `deallocate(ptr)`
//! marks one block free; `deallocate_pool(pool)` frees every block of a pool.
//! Free blocks are never merged and memory is never given back.
//!
//! The walks over the blocks are `asm!` blocks in [`walk`] that read like
//! run.s, line for line and register for register. The Rust around them moves
//! the break through glibc (so `malloc` keeps working), reports errors where
//! run.s would crash or corrupt memory, and keeps the heap's segments.
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
//! Modules, in the order a reader meets them in run.s:
//! [`header`] (the `.equ` lines), [`walk`] (the loops), [`source`] (where the
//! break comes from), [`heap`] (`memory_start`/`memory_end` and the Rust around
//! the loops), [`process`] and [`c_abi`] (the process-wide heap and the C
//! functions), [`render`] (layouts as text).

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

pub mod c_abi;
pub mod disasm;
pub mod error;
pub mod header;
pub mod heap;
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
pub use source::{Arena, BreakSource, ProcessBreak};
