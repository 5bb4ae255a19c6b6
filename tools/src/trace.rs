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
//! (`docs/original-behaviour.md` A.4), `deallocate` of something that is not a block ignored.

use core::fmt::Write;
use core::ptr::NonNull;

use crate::script::{self, Op, ScriptError};
use brk_pools::c_abi::zero_extended;
use brk_pools::heap::Heap;
use brk_pools::render;
use brk_pools::source::BreakSource;

/// When the layout is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layouts {
    /// After every operation (`trace`).
    EveryOp,
    /// Once, after the last operation (`trace -f`).
    FinalOnly,
}

/// What [`replay`] reports, in script order.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A line that is not an operation; `trace.c` prints it after `!! `.
    Rejected(&'a ScriptError),
    /// An operation that ran; the heap passed along is the heap after it.
    Executed {
        /// The operation as `trace.c` prints it: `op 0: a 1 400 -> h0=+0x20`.
        line: &'a str,
        /// The pointer the operation returned (`a`) or was given (`d`).
        pointer: Option<NonNull<u8>>,
        /// The break before the first operation: what offsets count from.
        heap_start: usize,
    },
}

/// Runs `script` on `heap` the way the C ABI runs it (`int` arguments
/// zero-extended, `deallocate` of something that is not a block ignored) and
/// calls `each` after every line, with the heap as it then is. [`run`] (the
/// text trace) and [`crate::svg::script_steps`] (the pictures) are both built
/// on it.
pub fn replay<S: BreakSource>(
    heap: &mut Heap<S>,
    script: &str,
    mut each: impl FnMut(&Heap<S>, Event<'_>),
) {
    let heap_start = heap.source().current() as usize;
    let shown = |p: Option<NonNull<u8>>| match p {
        Some(p) => render::offset(p.as_ptr() as usize, heap_start),
        None => "NULL".to_string(),
    };
    let mut handles: Vec<Option<NonNull<u8>>> = Vec::new();
    let mut op_number = 0;
    for line in script::parse(script) {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                each(heap, Event::Rejected(&error));
                continue;
            }
        };
        let (text, pointer) = match line.op {
            Op::Allocate { pool, size } => {
                let p = heap.allocate(zero_extended(pool), zero_extended(size)).ok();
                let text = format!(
                    "op {op_number}: a {pool} {size} -> h{}={}",
                    handles.len(),
                    shown(p)
                );
                handles.push(p);
                (text, p)
            }
            Op::Deallocate { handle } => {
                // parse() has reported handles that were not issued yet.
                let p = handles[handle as usize];
                if let Some(p) = p {
                    // The C ABI ignores pointers that are not blocks; so does this.
                    let _ = heap.try_deallocate(p.as_ptr());
                }
                (format!("op {op_number}: d {handle} ({})", shown(p)), p)
            }
            Op::DeallocatePool { pool } => {
                heap.deallocate_pool(zero_extended(pool));
                (format!("op {op_number}: p {pool}"), None)
            }
        };
        op_number += 1;
        each(
            heap,
            Event::Executed {
                line: &text,
                pointer,
                heap_start,
            },
        );
    }
}

/// Runs `script` on `heap` and returns the trace. Lines that are not
/// operations become `!! line N: …` lines, as in `trace.c`.
///
/// ```
/// use brk_pools::Heap;
/// use brk_pools_tools::trace::{Layouts, run};
///
/// let mut heap = Heap::on_arena(1 << 20).unwrap();
/// let out = run(&mut heap, "a 1 400\nd 0\n", Layouts::FinalOnly);
/// assert_eq!(out, "op 0: a 1 400 -> h0=+0x20\nop 1: d 0 (+0x20)\n+0x0 in_use=0 size=432 pool=0\nend=+0x1b0\n");
/// ```
pub fn run<S: BreakSource>(heap: &mut Heap<S>, script: &str, layouts: Layouts) -> String {
    let heap_start = heap.source().current() as usize;
    let mut out = String::new();
    replay(heap, script, |heap, event| match event {
        Event::Rejected(error) => {
            let _ = writeln!(out, "!! {error}");
        }
        Event::Executed { line, .. } => {
            out.push_str(line);
            out.push('\n');
            if layouts == Layouts::EveryOp {
                out.push_str(&render::trace_layout_from(heap, heap_start));
            }
        }
    });
    if layouts == Layouts::FinalOnly {
        out.push_str(&render::trace_layout_from(heap, heap_start));
    }
    out
}

/// `None` when the two traces are identical; otherwise the first differing
/// line with three lines of context, side by side, differing lines marked `!`.
///
/// ```
/// let diff = brk_pools_tools::trace::first_divergence("original", "a\nb\n", "port", "a\nc\n").unwrap();
/// assert!(diff.starts_with("first difference at line 2:"));
/// assert!(diff.contains("!      2  b"));
/// assert_eq!(brk_pools_tools::trace::first_divergence("x", "a\n", "y", "a\n"), None);
/// ```
pub fn first_divergence(
    left_title: &str,
    left: &str,
    right_title: &str,
    right: &str,
) -> Option<String> {
    if left == right {
        return None;
    }
    let left: Vec<&str> = left.lines().collect();
    let right: Vec<&str> = right.lines().collect();
    let at = left
        .iter()
        .zip(&right)
        .position(|(l, r)| l != r)
        .unwrap_or(left.len().min(right.len()));
    let width = left
        .iter()
        .skip(at.saturating_sub(3))
        .take(7)
        .map(|l| l.len())
        .chain([left_title.len(), 5])
        .max()
        .unwrap_or(0);
    let mut out = format!("first difference at line {}:\n", at + 1);
    let _ = writeln!(out, "          {left_title:<width$} | {right_title}");
    for i in at.saturating_sub(3)..(at + 4).min(left.len().max(right.len())) {
        let l = left.get(i).copied().unwrap_or("<end>");
        let r = right.get(i).copied().unwrap_or("<end>");
        let mark = if l == r { ' ' } else { '!' };
        let _ = writeln!(out, "{mark} {:>6}  {l:<width$} | {r}", i + 1);
    }
    Some(out)
}
