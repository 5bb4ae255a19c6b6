//! # brk-pools-tools
//!
//! The study tools around the [`brk_pools`] allocator, and the library behind
//! the `brk-pools` command: operation scripts ([`script`]), traces in
//! `asm/trace.c`'s format ([`trace`]), heap offsets as they are written
//! ([`offset`]), pictures of the heap ([`svg`]), the machine-code proof
//! ([`disasm`]), the lockstep trace of run.s and the port under ptrace
//! ([`step`]), and real programs on the malloc shim ([`shim`],
//! [`heap_summary`]).
//!
//! The allocator itself depends on libc alone; these tools bring clap and
//! iced-x86. They use the allocator with its default features and ask
//! [`brk_pools::build_info`] which features it was built with.

#![cfg(all(target_arch = "x86_64", target_os = "linux"))]
#![warn(missing_docs)]

pub mod disasm;
pub mod heap_summary;
pub mod offset;
pub mod script;
pub mod shim;
pub mod step;
pub mod svg;
pub mod trace;
