//! Runs an operation script on a heap and prints what `asm/trace.c` prints,
//! byte for byte, so the port in process and either C build can be diffed.
//!
//! ```text
//! op 0: a 1 400 -> h0=+0x20
//! +0x0 in_use=1 size=432 pool=1
//! end=+0x1b0
//! op 1: p 1
//! +0x0 in_use=0 size=432 pool=0
//! end=+0x1b0
//! ```
//!
//! Offsets are relative to the break as it stood before the first operation.
//! Operations run as the C ABI runs them: `int` arguments zero-extended
//! (A.4), `deallocate` of something that is not a block ignored.

use core::fmt::Write;
use core::ptr::NonNull;

use crate::c_abi::zero_extended;
use crate::heap::Heap;
use crate::render;
use crate::script::{self, Op};
use crate::source::BreakSource;

/// When the layout is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layouts {
    /// After every operation (`trace`).
    EveryOp,
    /// Once, after the last operation (`trace -f`).
    FinalOnly,
}

/// Runs `script` on `heap` and returns the trace. Lines that are not
/// operations become `!! line N: …` lines, as in `trace.c`.
///
/// ```
/// use brk_pools::{Heap, trace::{Layouts, run}};
///
/// let mut heap = Heap::on_arena(1 << 20).unwrap();
/// let out = run(&mut heap, "a 1 400\nd 0\n", Layouts::FinalOnly);
/// assert_eq!(out, "op 0: a 1 400 -> h0=+0x20\nop 1: d 0 (+0x20)\n+0x0 in_use=0 size=432 pool=0\nend=+0x1b0\n");
/// ```
pub fn run<S: BreakSource>(heap: &mut Heap<S>, script: &str, layouts: Layouts) -> String {
    let heap_start = heap.source_mut().current() as usize;
    let mut handles: Vec<Option<NonNull<u8>>> = Vec::new();
    let mut out = String::new();
    let pointer = |p: Option<NonNull<u8>>| match p {
        Some(p) => render::offset(p.as_ptr() as usize, heap_start),
        None => "NULL".to_string(),
    };
    let mut op_number = 0;
    for line in script::parse(script) {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                let _ = writeln!(out, "!! {error}");
                continue;
            }
        };
        match line.op {
            Op::Allocate { pool, size } => {
                let p = heap.allocate(zero_extended(pool), zero_extended(size)).ok();
                let _ = writeln!(
                    out,
                    "op {op_number}: a {pool} {size} -> h{}={}",
                    handles.len(),
                    pointer(p)
                );
                handles.push(p);
            }
            Op::Deallocate { handle } => {
                // parse() has reported handles that were not issued yet.
                let p = handles[handle as usize];
                if let Some(p) = p {
                    // The C ABI ignores pointers that are not blocks; so does this.
                    let _ = heap.try_deallocate(p.as_ptr());
                }
                let _ = writeln!(out, "op {op_number}: d {handle} ({})", pointer(p));
            }
            Op::DeallocatePool { pool } => {
                heap.deallocate_pool(zero_extended(pool));
                let _ = writeln!(out, "op {op_number}: p {pool}");
            }
        }
        op_number += 1;
        if layouts == Layouts::EveryOp {
            out.push_str(&render::trace_layout_from(heap, heap_start));
        }
    }
    if layouts == Layouts::FinalOnly {
        out.push_str(&render::trace_layout_from(heap, heap_start));
    }
    out
}
