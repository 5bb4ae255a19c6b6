//! Pictures of the heap, step by step, as SVG.
//!
//! [`render`] draws one row per [`Step`]: its caption, then its blocks in
//! address order as one bar. In-use blocks are filled with their pool's colour
//! and free blocks are hatched; the block the step returned (or freed) is
//! outlined and marked with a triangle; every block's header offset is written
//! under its left edge (where there is room), and the end of the heap under
//! its right. A legend under the rows names every mark the picture uses.
//!
//! **Scale.** A block's width is a fixed minimum plus a share of the rest in
//! proportion to its size: a 32-byte block stays wide enough to see, and a
//! 432-byte block is still visibly bigger than a 64-byte one. The scale is
//! the same for every row (it is built from the block boundaries of all the
//! rows), so a block keeps its place from one step to the next and the rows
//! read as a film of one heap. Proportions are therefore only roughly true;
//! the offsets under the bar are the exact numbers.
//!
//! **Any size.** The picture stays readable and bounded however long the
//! script and however many blocks the heap has:
//!
//! * at most [`MAX_ROWS`] rows: beyond that, the first and last steps and
//!   evenly spaced ones between are drawn, and a `⋮ N operations not drawn`
//!   line stands for each run of steps left out;
//! * at most [`MAX_CELLS`] places along the bar: a heap with more blocks is
//!   cut into that many *cells* of consecutive blocks (about equally many
//!   blocks each, the same cells in every row). A cell that holds one block
//!   is drawn as that block; a cell of several is drawn with one horizontal
//!   stripe per kind (a pool's colour, or free), as tall as that kind's share
//!   of the cell's blocks, and the number of blocks written in it.
//!
//! The output is plain SVG 1.1 text, with one `<g class="block …">` element
//! per block drawn alone, carrying `data-offset`, `data-size`, `data-pool` and
//! `data-in-use` attributes, and one `<g class="cell">` per cell of several
//! blocks (`data-offset`, `data-size`, `data-blocks`, `data-in-use`), so that
//! tests (and curious readers) can check the picture's structure without
//! rendering it.
//!
//! ```
//! use brk_pools::Heap;
//! use brk_pools_tools::svg;
//!
//! let mut heap = Heap::on_arena(1 << 20)?;
//! let mut steps = Vec::new();
//! let a1 = heap.allocate(1, 400)?;
//! steps.push(svg::Step::of_heap("a 1 400", &heap, Some(0)));
//! heap.allocate(2, 32)?;
//! steps.push(svg::Step::of_heap("a 2 32", &heap, Some(0x1b0)));
//! // SAFETY: a1 came from this heap.
//! unsafe { heap.deallocate(a1) };
//! steps.push(svg::Step::of_heap("d 0", &heap, Some(0)));
//!
//! let picture = svg::render(&steps);
//! assert!(picture.starts_with("<svg"));
//! assert_eq!(picture.matches("<g class=\"block ").count(), 1 + 2 + 2);
//! assert!(picture.contains("+0x1b0"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt::Write;

use crate::script;
use crate::trace::{Event, replay};
use brk_pools::header::HEADER_SIZE;
use brk_pools::heap::{Block, Heap};
use brk_pools::source::BreakSource;

/// One row of the picture: the heap after one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What happened, e.g. `op 1: a 2 32 -> h1=+0x1d0`.
    pub caption: String,
    /// The heap's blocks in address order, as [`Heap::blocks`] gives them
    /// (only `offset` and `header` are drawn).
    pub blocks: Vec<Block>,
    /// Header offset of the block to outline: the one the step returned or
    /// freed. `None` outlines nothing.
    pub highlight: Option<usize>,
}

impl Step {
    /// The current layout of `heap`, with `caption` and the block whose
    /// header is at `highlight` outlined.
    pub fn of_heap<S: BreakSource>(
        caption: impl Into<String>,
        heap: &Heap<S>,
        highlight: Option<usize>,
    ) -> Step {
        Step {
            caption: caption.into(),
            blocks: heap.blocks().collect(),
            highlight,
        }
    }

    /// One past the last block (0 for an empty heap).
    pub fn end(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| b.offset.saturating_add(b.header.size as usize))
            .max()
            .unwrap_or(0)
    }
}

/// Runs an operation script ([`crate::script`]) on `heap`, as
/// [`crate::trace::run`] does (C `int`s zero-extended, `deallocate` of a
/// non-block ignored), and returns one step per operation. Each caption is the
/// trace's `op` line; the block an `a` returned or a `d` freed is highlighted.
/// Lines that are not operations are skipped.
///
/// Every step holds a copy of the heap's block list, so a long script with
/// many blocks makes a large vector; [`script_picture`] keeps only the steps
/// it draws.
///
/// ```
/// use brk_pools::Heap;
/// use brk_pools_tools::svg;
///
/// let mut heap = Heap::on_arena(1 << 20)?;
/// let steps = svg::script_steps(&mut heap, "a 1 400\na 2 32\np 2\n");
/// assert_eq!(steps[1].caption, "op 1: a 2 32 -> h1=+0x1d0");
/// assert_eq!(steps[1].highlight, Some(0x1b0));
/// assert_eq!(steps[2].highlight, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn script_steps<S: BreakSource>(heap: &mut Heap<S>, script: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    replay_steps(heap, script, |_| true, |_, step| steps.push(step));
    steps
}

/// The picture of `script` run on `heap`: [`render`] of [`script_steps`],
/// keeping only the steps that get a row ([`drawn_steps`]), so that memory
/// stays bounded for long scripts.
///
/// ```
/// use brk_pools::Heap;
/// use brk_pools_tools::svg;
///
/// let script = "a 1 16\n".repeat(3000);
/// let picture = svg::script_picture(&mut Heap::on_arena(1 << 30)?, &script);
/// assert_eq!(picture.matches("<g class=\"step\"").count(), svg::MAX_ROWS);
/// assert!(picture.contains("operations not drawn"));
/// assert!(picture.len() < 1 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn script_picture<S: BreakSource>(heap: &mut Heap<S>, script: &str) -> String {
    let total = script::parse(script).iter().filter(|l| l.is_ok()).count();
    let rows = drawn_steps(total);
    let mut kept: Vec<(usize, Step)> = Vec::with_capacity(rows.len());
    let mut wanted = rows.iter().copied().peekable();
    let mut keep = |number: usize| {
        let yes = wanted.peek() == Some(&number);
        if yes {
            wanted.next();
        }
        yes
    };
    replay_steps(heap, script, &mut keep, |number, step| {
        kept.push((number, step))
    });
    let rows: Vec<(usize, &Step)> = kept.iter().map(|(n, s)| (*n, s)).collect();
    render_rows(total, &rows)
}

/// Replays `script`, and for every operation `n` with `keep(n)` hands its
/// step to `each`.
fn replay_steps<S: BreakSource>(
    heap: &mut Heap<S>,
    script: &str,
    mut keep: impl FnMut(usize) -> bool,
    mut each: impl FnMut(usize, Step),
) {
    let mut number = 0;
    replay(heap, script, |heap, event| {
        if let Event::Executed { line, pointer, .. } = event {
            if keep(number) {
                // Highlight by header offset, which Heap::blocks counts from memory_start.
                let start = heap.memory_start() as usize;
                let highlight = pointer
                    .and_then(|p| (p.as_ptr() as usize).checked_sub(HEADER_SIZE))
                    .and_then(|h| h.checked_sub(start));
                each(number, Step::of_heap(line.to_string(), heap, highlight));
            }
            number += 1;
        }
    });
}

/// The most rows a picture has.
pub const MAX_ROWS: usize = 24;

/// The most places along the bar: beyond this many blocks, blocks are
/// grouped into cells.
pub const MAX_CELLS: usize = 40;

/// Which of `total` steps get a row: all of them up to [`MAX_ROWS`];
/// otherwise the first 8, the last 8, and 8 evenly spaced between.
///
/// ```
/// use brk_pools_tools::svg::drawn_steps;
///
/// assert_eq!(drawn_steps(3), [0, 1, 2]);
/// let rows = drawn_steps(1000);
/// assert_eq!(rows.len(), 24);
/// assert_eq!(&rows[..2], [0, 1]);
/// assert_eq!(rows.last(), Some(&999));
/// ```
pub fn drawn_steps(total: usize) -> Vec<usize> {
    if total <= MAX_ROWS {
        return (0..total).collect();
    }
    let edge = MAX_ROWS / 3;
    let middle = MAX_ROWS - 2 * edge;
    let (low, high) = (edge, total - edge);
    let mut rows: Vec<usize> = (0..edge).collect();
    rows.extend((0..middle).map(|i| low + (2 * i + 1) * (high - low) / (2 * middle)));
    rows.extend(high..total);
    rows.dedup();
    rows
}

/// Okabe–Ito colours (distinguishable with the common colour-vision
/// deficiencies), indexed by `pool % 8`.
const POOL_COLOURS: [&str; 8] = [
    "#bbbbbb", "#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7",
];

/// The fill colour of an in-use block of `pool`.
pub fn pool_colour(pool: u64) -> &'static str {
    POOL_COLOURS[colour_index(pool)]
}

fn colour_index(pool: u64) -> usize {
    (pool % POOL_COLOURS.len() as u64) as usize
}

const LEFT: f64 = 16.0;
const BAR_WIDTH: f64 = 860.0;
const MIN_BLOCK: f64 = 64.0;
const BAR_HEIGHT: f64 = 46.0;
const ROW_HEIGHT: f64 = 118.0;
/// The height of a `⋮ N operations not drawn` line.
const ELISION_HEIGHT: f64 = 24.0;
const TOP: f64 = 16.0;
/// Approximate advance of one character at the label font size.
const CHAR_WIDTH: f64 = 6.7;
/// Captions longer than this are cut.
const MAX_CAPTION: usize = 120;

/// Maps heap offsets to x coordinates: a minimum width per interval between
/// consecutive boundaries, plus a share proportional to its length.
struct Scale {
    boundaries: Vec<usize>,
    xs: Vec<f64>,
}

impl Scale {
    /// The scale for `boundaries` (sorted, distinct, starting at 0).
    fn new(boundaries: Vec<usize>) -> Scale {
        let intervals = boundaries.len().saturating_sub(1);
        let total = boundaries.last().copied().unwrap_or(0).max(1) as f64;
        let min = if intervals == 0 {
            0.0
        } else {
            MIN_BLOCK.min(BAR_WIDTH / 2.0 / intervals as f64)
        };
        let spare = BAR_WIDTH - min * intervals as f64;
        let mut xs = vec![LEFT];
        for pair in boundaries.windows(2) {
            let length = (pair[1] - pair[0]) as f64;
            let last = xs.last().copied().unwrap_or(LEFT);
            xs.push(last + min + spare * length / total);
        }
        Scale { boundaries, xs }
    }

    fn x(&self, offset: usize) -> f64 {
        match self.boundaries.binary_search(&offset) {
            Ok(at) => self.xs[at],
            // Not a boundary (inside a cell, or a block of hand-made steps):
            // interpolate within its interval.
            Err(0) => LEFT,
            Err(at) if at >= self.boundaries.len() => self.xs.last().copied().unwrap_or(LEFT),
            Err(at) => {
                let (a, b) = (self.boundaries[at - 1], self.boundaries[at]);
                let t = (offset - a) as f64 / (b - a) as f64;
                self.xs[at - 1] + t * (self.xs[at] - self.xs[at - 1])
            }
        }
    }
}

/// The places along the bar, as their boundaries: every block boundary of
/// `rows` while there are at most [`MAX_CELLS`] intervals, else every k-th,
/// so that each cell holds about equally many blocks.
fn cell_boundaries(rows: &[(usize, &Step)]) -> Vec<usize> {
    let mut boundaries: Vec<usize> = rows
        .iter()
        .flat_map(|(_, s)| {
            s.blocks
                .iter()
                .flat_map(|b| [b.offset, b.offset.saturating_add(b.header.size as usize)])
        })
        .chain([0])
        .collect();
    boundaries.sort_unstable();
    boundaries.dedup();
    let intervals = boundaries.len() - 1;
    if intervals <= MAX_CELLS {
        return boundaries;
    }
    let mut kept: Vec<usize> = (0..=MAX_CELLS)
        .map(|i| boundaries[i * intervals / MAX_CELLS])
        .collect();
    kept.dedup();
    kept
}

/// Escapes text for XML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 text.
            c if c.is_control() && !matches!(c, '\t' | '\n') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_WIDTH
}

/// Which marks a picture used, for its legend.
#[derive(Default)]
struct Marks {
    /// Pools drawn in use, per colour.
    pools: [Vec<u64>; 8],
    free: bool,
    header: bool,
    highlight: bool,
    gap: bool,
    cell: bool,
    elision: bool,
}

impl Marks {
    fn pool(&mut self, pool: u64) {
        let pools = &mut self.pools[colour_index(pool)];
        if !pools.contains(&pool) {
            pools.push(pool);
        }
    }
}

/// Draws `steps` as one SVG document, one row per step, at most
/// [`MAX_ROWS`] of them (see the module docs).
pub fn render(steps: &[Step]) -> String {
    let rows: Vec<(usize, &Step)> = drawn_steps(steps.len())
        .into_iter()
        .map(|n| (n, &steps[n]))
        .collect();
    render_rows(steps.len(), &rows)
}

/// Draws `rows` (step number, step), of `total` steps in all.
fn render_rows(total: usize, rows: &[(usize, &Step)]) -> String {
    let boundaries = cell_boundaries(rows);
    let cells = boundaries.len() - 1;
    let grouped = rows.iter().any(|(_, s)| s.blocks.len() > cells);
    let scale = Scale::new(boundaries);
    let width = LEFT * 2.0 + BAR_WIDTH + 80.0;
    let mut body = String::new();
    let mut marks = Marks::default();
    let mut top = TOP;
    let mut next = 0;
    for &(number, step) in rows {
        if number > next {
            marks.elision = true;
            render_elision(&mut body, next, number - 1, top);
            top += ELISION_HEIGHT;
        }
        render_step(&mut body, &scale, number, step, top, &mut marks);
        top += ROW_HEIGHT;
        next = number + 1;
    }
    if total > next {
        marks.elision = true;
        render_elision(&mut body, next, total - 1, top);
        top += ELISION_HEIGHT;
    }
    let legend_y = top + 8.0;
    let legend_height = render_legend(&mut body, &marks, grouped.then_some(cells), legend_y);
    let height = legend_y + legend_height;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" \
         font-size=\"11\">"
    );
    out.push_str(
        "<defs>\n\
         <pattern id=\"free\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\">\
         <rect width=\"8\" height=\"8\" fill=\"#ffffff\"/>\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#a8a8a8\" stroke-width=\"1.5\"/>\
         </pattern>\n\
         <pattern id=\"gap\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">\
         <rect width=\"6\" height=\"6\" fill=\"#f4f4f4\"/>\
         <circle cx=\"3\" cy=\"3\" r=\"1\" fill=\"#bbbbbb\"/>\
         </pattern>\n\
         </defs>\n",
    );
    let _ = writeln!(
        out,
        "<rect width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

/// The line standing for steps `first..=last`, which have no row.
fn render_elision(out: &mut String, first: usize, last: usize, top: f64) {
    let count = last - first + 1;
    let what = if count == 1 {
        format!("⋮ 1 operation not drawn (op {first})")
    } else {
        format!("⋮ {count} operations not drawn (op {first} … op {last})")
    };
    let _ = writeln!(
        out,
        "<text class=\"elision\" data-first=\"{first}\" data-last=\"{last}\" x=\"{LEFT}\" \
         y=\"{:.1}\" fill=\"#555555\" font-style=\"italic\">{what}</text>",
        top + 14.0
    );
}

/// The blocks of `step` that start in `[start, end)`.
fn blocks_in(step: &Step, start: usize, end: usize) -> &[Block] {
    let from = step.blocks.partition_point(|b| b.offset < start);
    let to = step.blocks.partition_point(|b| b.offset < end);
    &step.blocks[from..to.max(from)]
}

fn render_step(
    out: &mut String,
    scale: &Scale,
    number: usize,
    step: &Step,
    top: f64,
    marks: &mut Marks,
) {
    let bar = top + 30.0;
    let _ = writeln!(
        out,
        "<g class=\"step\" data-step=\"{number}\" data-blocks=\"{}\">",
        step.blocks.len()
    );
    let caption: String = if step.caption.chars().count() > MAX_CAPTION {
        step.caption
            .chars()
            .take(MAX_CAPTION)
            .chain(['…'])
            .collect()
    } else {
        step.caption.clone()
    };
    let _ = writeln!(
        out,
        "<text class=\"caption\" x=\"{LEFT}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        top + 12.0,
        escape(&caption)
    );
    if step.blocks.is_empty() {
        let _ = writeln!(
            out,
            "<text class=\"empty\" x=\"{LEFT}\" y=\"{}\" fill=\"#666666\">(no blocks: the heap is \
             not initialised yet)</text>",
            bar + BAR_HEIGHT / 2.0 + 4.0
        );
    }
    // Offset labels go on one of two lines under the bar. The end label is
    // placed first, on the first line at its right; an offset label that
    // fits on neither line is left out (the block's tooltip still has it).
    let end_label = (!step.blocks.is_empty()).then(|| {
        let end = step.end();
        (scale.x(end), format!("+{end:#x} end"))
    });
    let label_y = |line: usize| bar + BAR_HEIGHT + 14.0 + 13.0 * line as f64;
    let mut end_x = f64::MAX;
    if let Some((x, text)) = &end_label {
        end_x = *x;
        let _ = writeln!(
            out,
            "<text class=\"end\" x=\"{x:.1}\" y=\"{:.1}\" fill=\"#333333\">{}</text>",
            label_y(0),
            escape(text)
        );
    }
    let mut label_ends = [f64::MIN; 2];
    let mut label = |out: &mut String, x: f64, text: &str| {
        let right = x + text_width(text);
        let line = if x >= label_ends[0] + 4.0 && right + 4.0 <= end_x {
            0
        } else if x >= label_ends[1] + 4.0 {
            1
        } else {
            return;
        };
        label_ends[line] = right;
        let _ = writeln!(
            out,
            "<text class=\"offset\" x=\"{x:.1}\" y=\"{:.1}\" fill=\"#333333\">{}</text>",
            label_y(line),
            escape(text)
        );
    };
    let mut previous_end = 0usize;
    for cell in scale.boundaries.windows(2) {
        let blocks = blocks_in(step, cell[0], cell[1]);
        let Some(first) = blocks.first() else {
            continue;
        };
        if first.offset > previous_end {
            marks.gap = true;
            render_gap(out, scale, previous_end, first.offset, bar);
        }
        let end = blocks
            .iter()
            .map(|b| b.offset.saturating_add(b.header.size as usize))
            .max()
            .unwrap_or(first.offset);
        previous_end = end;
        let x0 = scale.x(first.offset);
        let w = (scale.x(end) - x0).max(2.0);
        let highlighted = blocks.iter().any(|b| step.highlight == Some(b.offset));
        let centre = if let [block] = blocks {
            render_block(out, block, x0, w, bar, highlighted, marks)
        } else {
            render_cell(out, blocks, first.offset, end, x0, w, bar, marks)
        };
        if highlighted {
            marks.highlight = true;
            let _ = writeln!(
                out,
                "<rect class=\"outline\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                 fill=\"none\" stroke=\"#000000\" stroke-width=\"3\"/>",
                x0 + 1.5,
                bar + 1.5,
                (w - 3.0).max(0.5),
                BAR_HEIGHT - 3.0
            );
            let _ = writeln!(
                out,
                "<path class=\"marker\" d=\"M {:.1} {:.1} l 6 -8 l -12 0 z\" fill=\"#000000\"/>",
                centre,
                bar - 2.0
            );
        }
        out.push_str("</g>\n");
        label(out, x0, &format!("+{:#x}", first.offset));
    }
    out.push_str("</g>\n");
}

/// Bytes between segments that are not the heap's.
fn render_gap(out: &mut String, scale: &Scale, start: usize, end: usize, bar: f64) {
    let (x0, x1) = (scale.x(start), scale.x(end));
    let _ = writeln!(
        out,
        "<g class=\"gap\" data-offset=\"{start}\" data-size=\"{}\">\
         <title>+{start:#x}..+{end:#x}: not the heap's (someone else moved the break)</title>\
         <rect x=\"{x0:.1}\" y=\"{bar}\" width=\"{:.1}\" height=\"{BAR_HEIGHT}\" fill=\"url(#gap)\" \
         stroke=\"#cccccc\"/></g>",
        end - start,
        (x1 - x0).max(1.0)
    );
}

/// Opens the `<g>` of one block and draws it (the caller closes it); returns
/// the x of its data's centre.
fn render_block(
    out: &mut String,
    block: &Block,
    x0: f64,
    w: f64,
    bar: f64,
    highlighted: bool,
    marks: &mut Marks,
) -> f64 {
    let h = block.header;
    let in_use = h.is_in_use();
    if in_use {
        marks.pool(h.pool);
    } else {
        marks.free = true;
    }
    marks.header = true;
    let class = format!(
        "block {}{}",
        if in_use { "in-use" } else { "free" },
        if highlighted { " highlight" } else { "" }
    );
    let fill = if in_use {
        pool_colour(h.pool)
    } else {
        "url(#free)"
    };
    let _ = writeln!(
        out,
        "<g class=\"{class}\" data-offset=\"{}\" data-size=\"{}\" data-pool=\"{}\" data-in-use=\"{}\">",
        block.offset, h.size, h.pool, h.in_use
    );
    let _ = writeln!(
        out,
        "<title>+{:#x}: in_use={} size={} pool={}</title>",
        block.offset, h.in_use, h.size, h.pool
    );
    let _ = writeln!(
        out,
        "<rect x=\"{x0:.1}\" y=\"{bar}\" width=\"{w:.1}\" height=\"{BAR_HEIGHT}\" fill=\"{fill}\" \
         stroke=\"#333333\" stroke-width=\"1\"/>"
    );
    // The 32-byte header at the block's start, darker: its share of the
    // block, but at least a 4 px sliver and at most half the block.
    let header_width = (w * HEADER_SIZE as f64 / (h.size.max(1) as f64))
        .max(4.0)
        .min(w / 2.0);
    let _ = writeln!(
        out,
        "<rect class=\"header\" x=\"{x0:.1}\" y=\"{bar}\" width=\"{header_width:.1}\" \
         height=\"{BAR_HEIGHT}\" fill=\"#000000\" fill-opacity=\"0.22\"/>"
    );
    // Inside: the pool (or "free") and the size, as far as they fit.
    let name = if in_use {
        format!("pool {}", h.pool)
    } else {
        "free".to_string()
    };
    let size = format!("{} B", h.size);
    let data_width = w - header_width;
    let centre = x0 + header_width + data_width / 2.0;
    for (line, text) in [(0.0, &name), (1.0, &size)] {
        let fits = text_width(text) + 10.0 <= data_width;
        let short = if in_use {
            h.pool.to_string()
        } else {
            String::new()
        };
        let shown = if fits {
            text.clone()
        } else if line == 0.0 && !short.is_empty() && text_width(&short) + 4.0 <= data_width {
            short
        } else {
            continue;
        };
        let _ = writeln!(
            out,
            "<text x=\"{centre:.1}\" y=\"{:.1}\" text-anchor=\"middle\" {}>{}</text>",
            bar + 19.0 + 14.0 * line,
            if in_use {
                "fill=\"#000000\""
            } else {
                "fill=\"#333333\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\""
            },
            escape(&shown)
        );
    }
    centre
}

/// Opens the `<g>` of a cell of several blocks and draws it (the caller
/// closes it): one stripe per kind, the block count in the middle. Returns
/// the x of its centre.
#[allow(clippy::too_many_arguments)]
fn render_cell(
    out: &mut String,
    blocks: &[Block],
    start: usize,
    end: usize,
    x0: f64,
    w: f64,
    bar: f64,
    marks: &mut Marks,
) -> f64 {
    marks.cell = true;
    // Blocks per kind: in use by colour, then free.
    let mut kinds = [0usize; POOL_COLOURS.len() + 1];
    let mut pools: Vec<u64> = Vec::new();
    for block in blocks {
        if block.header.is_in_use() {
            marks.pool(block.header.pool);
            kinds[colour_index(block.header.pool)] += 1;
            if !pools.contains(&block.header.pool) && pools.len() < 6 {
                pools.push(block.header.pool);
            }
        } else {
            marks.free = true;
            kinds[POOL_COLOURS.len()] += 1;
        }
    }
    let free = kinds[POOL_COLOURS.len()];
    let in_use = blocks.len() - free;
    let _ = writeln!(
        out,
        "<g class=\"cell\" data-offset=\"{start}\" data-size=\"{}\" data-blocks=\"{}\" \
         data-in-use=\"{in_use}\">",
        end - start,
        blocks.len()
    );
    let pool_list = pools
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "<title>+{start:#x}..+{end:#x}: {} blocks, {in_use} in use{}, {free} free</title>",
        blocks.len(),
        if pools.is_empty() {
            String::new()
        } else {
            format!(
                " (pools {pool_list}{})",
                if pools.len() == 6 { ", …" } else { "" }
            )
        }
    );
    let mut y = bar;
    for (kind, &count) in kinds.iter().enumerate().filter(|(_, c)| **c > 0) {
        let height = BAR_HEIGHT * count as f64 / blocks.len() as f64;
        let fill = POOL_COLOURS.get(kind).copied().unwrap_or("url(#free)");
        let _ = writeln!(
            out,
            "<rect x=\"{x0:.1}\" y=\"{y:.2}\" width=\"{w:.1}\" height=\"{height:.2}\" fill=\"{fill}\"/>"
        );
        y += height;
    }
    let _ = writeln!(
        out,
        "<rect x=\"{x0:.1}\" y=\"{bar}\" width=\"{w:.1}\" height=\"{BAR_HEIGHT}\" fill=\"none\" \
         stroke=\"#333333\" stroke-width=\"1\" stroke-dasharray=\"3 2\"/>"
    );
    let centre = x0 + w / 2.0;
    let count = blocks.len().to_string();
    if text_width(&count) + 4.0 <= w {
        let _ = writeln!(
            out,
            "<text x=\"{centre:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#000000\" \
             stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\">{count}</text>",
            bar + BAR_HEIGHT / 2.0 + 4.0
        );
    }
    centre
}

/// Draws the legend of the `marks` used from `y` on, wrapping before the
/// right edge; returns its height. `cells` is the number of cells when
/// blocks were grouped.
fn render_legend(out: &mut String, marks: &Marks, cells: Option<usize>, y: f64) -> f64 {
    let right = LEFT + BAR_WIDTH + 80.0;
    // (swatch, text): the swatch is SVG drawn at (0, 0), 22 × 14.
    let mut entries: Vec<(String, String)> = Vec::new();
    for (colour, pools) in POOL_COLOURS.iter().zip(&marks.pools) {
        if pools.is_empty() {
            continue;
        }
        let mut sorted = pools.clone();
        sorted.sort_unstable();
        let mut names: Vec<String> = sorted.iter().take(4).map(u64::to_string).collect();
        if sorted.len() > 4 {
            names.push(format!("… ({} pools)", sorted.len()));
        }
        let label = if sorted.len() == 1 { "pool" } else { "pools" };
        entries.push((
            format!("<rect width=\"22\" height=\"14\" fill=\"{colour}\" stroke=\"#333333\"/>"),
            format!("{label} {}", names.join(", ")),
        ));
    }
    if marks.free {
        entries.push((
            "<rect width=\"22\" height=\"14\" fill=\"url(#free)\" stroke=\"#333333\"/>".into(),
            "free (in_use=0, pool=0)".into(),
        ));
    }
    if marks.header {
        entries.push((
            "<rect width=\"22\" height=\"14\" fill=\"#ffffff\" stroke=\"#333333\"/>\
             <rect width=\"6\" height=\"14\" fill=\"#000000\" fill-opacity=\"0.22\"/>"
                .into(),
            "32-byte header".into(),
        ));
    }
    if marks.highlight {
        entries.push((
            "<rect x=\"1.5\" y=\"1.5\" width=\"19\" height=\"11\" fill=\"#ffffff\" stroke=\"#000000\" \
             stroke-width=\"3\"/><path d=\"M 11 9 l 5 -6 l -10 0 z\" fill=\"#000000\"/>"
                .into(),
            "returned or freed by the step".into(),
        ));
    }
    if marks.gap {
        entries.push((
            "<rect width=\"22\" height=\"14\" fill=\"url(#gap)\" stroke=\"#cccccc\"/>".into(),
            "not the heap's (the break moved by someone else)".into(),
        ));
    }
    if marks.cell {
        entries.push((
            "<rect width=\"22\" height=\"7\" fill=\"#e69f00\"/>\
             <rect y=\"7\" width=\"22\" height=\"7\" fill=\"url(#free)\"/>\
             <rect width=\"22\" height=\"14\" fill=\"none\" stroke=\"#333333\" stroke-dasharray=\"3 2\"/>"
                .into(),
            "N consecutive blocks: a stripe per kind, as tall as its share of the N".into(),
        ));
    }
    if marks.elision {
        entries.push((
            "<text x=\"4\" y=\"11\" fill=\"#555555\" font-style=\"italic\">⋮</text>".into(),
            "operations without a row".into(),
        ));
    }
    out.push_str("<g class=\"legend\">\n");
    let (mut x, mut line_y) = (LEFT, y);
    for (swatch, text) in &entries {
        let advance = 40.0 + text_width(text);
        if x > LEFT && x + advance > right {
            x = LEFT;
            line_y += 22.0;
        }
        let _ = writeln!(
            out,
            "<g transform=\"translate({x:.1} {line_y:.1})\">{swatch}</g>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 28.0,
            line_y + 11.0,
            escape(text)
        );
        x += advance;
    }
    let mut notes = vec![
        "Offsets from memory_start. Widths: a minimum, plus a share in proportion to the size; \
         the offsets are exact."
            .to_string(),
    ];
    if let Some(cells) = cells {
        notes.push(format!(
            "More blocks than places: the bar is cut into {cells} cells of consecutive blocks, \
             the same cells in every row."
        ));
    }
    for note in &notes {
        line_y += 16.0;
        let _ = writeln!(
            out,
            "<text x=\"{LEFT}\" y=\"{:.1}\" fill=\"#555555\">{}</text>",
            line_y + 16.0,
            escape(note)
        );
    }
    out.push_str("</g>\n");
    line_y - y + 28.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use brk_pools::header::Header;

    fn block(offset: usize, in_use: u64, size: u64, pool: u64) -> Block {
        Block {
            address: core::ptr::null_mut(),
            offset,
            header: Header {
                in_use,
                size,
                pool,
                unused: 0,
            },
        }
    }

    fn step(blocks: Vec<Block>) -> Step {
        Step {
            caption: "s".into(),
            blocks,
            highlight: None,
        }
    }

    #[test]
    fn scale_is_monotonic_shared_and_has_a_minimum() {
        let steps = [
            step(vec![block(0, 1, 432, 1)]),
            step(vec![block(0, 1, 432, 1), block(432, 1, 32, 2)]),
        ];
        let rows: Vec<(usize, &Step)> = steps.iter().enumerate().collect();
        let scale = Scale::new(cell_boundaries(&rows));
        assert_eq!(scale.boundaries, [0, 432, 464]);
        let (a, b, c) = (scale.x(0), scale.x(432), scale.x(464));
        assert!(a < b && b < c);
        assert!(
            c - b >= MIN_BLOCK,
            "a 32-byte block is at least the minimum"
        );
        assert!(b - a > c - b, "bigger blocks are wider");
        assert!((c - a - BAR_WIDTH).abs() < 1e-6, "the bar fills its width");
    }

    #[test]
    fn many_blocks_become_cells_of_consecutive_blocks() {
        let blocks: Vec<Block> = (0..1000).map(|i| block(i * 48, 1, 48, i as u64)).collect();
        let steps = [step(blocks)];
        let rows: Vec<(usize, &Step)> = steps.iter().enumerate().collect();
        let boundaries = cell_boundaries(&rows);
        assert_eq!(boundaries.len(), MAX_CELLS + 1);
        assert_eq!((boundaries[0], boundaries[MAX_CELLS]), (0, 48_000));
        let picture = render(&steps);
        assert_eq!(picture.matches("<g class=\"cell\"").count(), MAX_CELLS);
        assert!(picture.contains("cut into 40 cells"));
        assert!(picture.contains("pools 0, 8, 16, 24, … (125 pools)"));
    }

    #[test]
    fn long_scripts_keep_first_last_and_spread_rows() {
        for total in [0, 1, 24, 25, 100, 3000, 1 << 40] {
            let rows = drawn_steps(total);
            assert_eq!(rows.len(), total.min(MAX_ROWS), "{total}");
            assert!(rows.windows(2).all(|w| w[0] < w[1]), "{total}");
            if total > 0 {
                assert_eq!((rows[0], rows[rows.len() - 1]), (0, total - 1));
            }
        }
    }

    #[test]
    fn escapes_captions() {
        let svg = render(&[Step {
            caption: "a <b> & \"c\"\u{1b}".into(),
            blocks: vec![],
            highlight: None,
        }]);
        assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;\u{fffd}"));
        assert!(svg.contains("class=\"empty\""));
    }

    #[test]
    fn draws_gaps_between_segments() {
        let svg = render(&[Step {
            caption: "two segments".into(),
            blocks: vec![block(0, 1, 48, 1), block(4096, 1, 48, 2)],
            highlight: Some(4096),
        }]);
        assert_eq!(svg.matches("<g class=\"gap\"").count(), 1);
        assert!(svg.contains("class=\"block in-use highlight\" data-offset=\"4096\""));
        assert!(svg.contains("not the heap&apos;s (the break moved by someone else)"));
    }
}
