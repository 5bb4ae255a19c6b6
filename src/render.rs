//! Heap layouts as text: the trace lines shared with `asm/trace.c`, a table,
//! and a compact map.

use core::fmt::Write;

use crate::heap::Heap;
use crate::source::BreakSource;

/// Offset of `address` from the heap start, as the trace prints it: `+0x1b0`.
pub fn offset(address: usize, heap_start: usize) -> String {
    if address >= heap_start {
        format!("+{:#x}", address - heap_start)
    } else {
        format!("-{:#x}", heap_start - address)
    }
}

/// The layout in the trace format of `asm/trace.c`: one line per block, then
/// the end, each line ending in `\n`.
///
/// ```text
/// +0x0 in_use=1 size=432 pool=1
/// +0x1b0 in_use=0 size=64 pool=0
/// end=+0x1f0
/// ```
pub fn trace_layout<S: BreakSource>(heap: &Heap<S>) -> String {
    trace_layout_from(heap, heap.memory_start() as usize)
}

/// [`trace_layout`] with offsets taken from `heap_start` (`trace.c` takes
/// them from the break before its first operation). Before the first
/// allocation the heap has no end yet and `end=+0x0` is printed.
pub fn trace_layout_from<S: BreakSource>(heap: &Heap<S>, heap_start: usize) -> String {
    let mut out = String::new();
    for block in heap.blocks() {
        let h = block.header;
        let _ = writeln!(
            out,
            "{} in_use={} size={} pool={}",
            offset(block.address as usize, heap_start),
            h.in_use,
            h.size,
            h.pool
        );
    }
    let end = match heap.memory_end() as usize {
        0 => heap_start,
        end => end,
    };
    let _ = writeln!(out, "end={}", offset(end, heap_start));
    out
}

/// The layout as an aligned table with a header row.
///
/// ```text
/// offset  in_use  size  pool
/// +0x0         1   432     1
/// +0x1b0       0    64     0
/// end     +0x1f0
/// ```
pub fn table<S: BreakSource>(heap: &Heap<S>) -> String {
    let rows: Vec<[String; 4]> = heap
        .blocks()
        .map(|b| {
            [
                format!("+{:#x}", b.offset),
                b.header.in_use.to_string(),
                b.header.size.to_string(),
                b.header.pool.to_string(),
            ]
        })
        .collect();
    let titles = ["offset", "in_use", "size", "pool"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].len())
            .chain([titles[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2), width(3)];
    let mut out = String::new();
    let mut line = |cells: [&str; 4]| {
        let _ = writeln!(
            out,
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    };
    line(titles);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
    let end = heap.memory_end() as usize - heap.memory_start() as usize;
    let _ = writeln!(out, "{:<w0$}  +{end:#x}", "end", w0 = widths[0]);
    out
}

/// A one-line map: a cell per block in address order, the pool number for a
/// block in use and `.` for a free one.
///
/// ```text
/// |1|.|.|
/// ```
pub fn map<S: BreakSource>(heap: &Heap<S>) -> String {
    let mut out = String::from("|");
    for block in heap.blocks() {
        if block.header.is_in_use() {
            let _ = write!(out, "{}|", block.header.pool);
        } else {
            out.push_str(".|");
        }
    }
    out
}
