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

pub(crate) mod writer;

use crate::offset::Offset;
use crate::script;
use crate::trace::{Event, replay};
use brk_pools::header::{HEADER_SIZE, Header};
use brk_pools::heap::{Block, Heap};
use brk_pools::source::BreakSource;
use writer::{Element, Svg, hundredths, tenths};

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
    /// Header offsets of the blocks a `p` (pool release) freed: in use
    /// before it, free after it. Outlined too.
    pub freed: Vec<usize>,
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
            freed: Vec::new(),
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
/// trace's `op` line; the block an `a` returned or a `d` freed is highlighted,
/// and so are the blocks a `p` freed ([`Step::freed`]).
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
/// assert_eq!(steps[2].freed, [0x1b0]);
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
    // The blocks in use after the previous operation, by header offset.
    let mut in_use_before: Vec<usize> = Vec::new();
    replay(heap, script, |heap, event| {
        if let Event::Executed { line, pointer, .. } = event {
            let mut in_use: Vec<usize> = heap
                .blocks()
                .filter(|b| b.header.in_use != 0)
                .map(|b| b.offset)
                .collect();
            in_use.sort_unstable();
            if keep(number) {
                // Highlight by header offset, which Heap::blocks counts from memory_start.
                let start = heap.memory_start() as usize;
                let highlight = pointer
                    .and_then(|p| (p.as_ptr() as usize).checked_sub(HEADER_SIZE))
                    .and_then(|h| h.checked_sub(start));
                let mut step = Step::of_heap(line.to_string(), heap, highlight);
                if is_pool_release(line) {
                    step.freed = in_use_before
                        .iter()
                        .copied()
                        .filter(|offset| in_use.binary_search(offset).is_err())
                        .collect();
                }
                each(number, step);
            }
            in_use_before = in_use;
            number += 1;
        }
    });
}

/// Whether a trace's `op` line (`op 2: p 2`) is a pool release.
fn is_pool_release(line: &str) -> bool {
    line.split_once(": ")
        .is_some_and(|(_, op)| op.starts_with("p "))
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

/// Left edge of the captions, the bars and the legend.
const LEFT: f64 = 16.0;
/// Width of the bar, the whole heap.
const BAR_WIDTH: f64 = 860.0;
/// Room right of the bar for the end label.
const END_LABEL_ROOM: f64 = 80.0;
/// Width of the picture.
const WIDTH: f64 = LEFT * 2.0 + BAR_WIDTH + END_LABEL_ROOM;
/// Top margin above the first row.
const TOP: f64 = 16.0;
/// Height of one row: caption, bar and two lines of offsets.
const ROW_HEIGHT: f64 = 118.0;
/// From a row's top to its caption's baseline.
const CAPTION_BASELINE: f64 = 12.0;
/// From a row's top to its bar's top.
const BAR_TOP: f64 = 30.0;
const BAR_HEIGHT: f64 = 46.0;
/// From a bar's top to the baseline of text centred in it.
const BAR_MIDDLE_BASELINE: f64 = BAR_HEIGHT / 2.0 + 4.0;
/// The width every interval of the scale gets before sharing out the rest.
const MIN_BLOCK: f64 = 64.0;
/// Narrowest block drawn.
const MIN_BLOCK_WIDTH: f64 = 2.0;
/// Narrowest gap drawn.
const MIN_GAP_WIDTH: f64 = 1.0;
/// Narrowest header sliver drawn.
const MIN_HEADER_WIDTH: f64 = 4.0;
/// From a bar's top to the baseline of a block's first line of text, and
/// from one line to the next.
const BLOCK_TEXT_BASELINE: f64 = 19.0;
const BLOCK_TEXT_LINE: f64 = 14.0;
/// Space a block keeps around its full text, and around a shortened one.
const TEXT_PADDING: f64 = 10.0;
const SHORT_TEXT_PADDING: f64 = 4.0;
/// From a bar's bottom to the first line of offset labels, and from one
/// line to the next; the space kept between two labels.
const LABEL_BASELINE: f64 = 14.0;
const LABEL_LINE: f64 = 13.0;
const LABEL_SPACING: f64 = 4.0;
/// The outline of the highlighted block, drawn inside its edges.
const OUTLINE_WIDTH: f64 = 3.0;
/// The highlight's triangle stands this far above the bar.
const MARKER_LIFT: f64 = 2.0;
/// The height of a `⋮ N operations not drawn` line, and its baseline.
const ELISION_HEIGHT: f64 = 24.0;
const ELISION_BASELINE: f64 = 14.0;
/// Space above the legend, between its lines, and below its last note.
const LEGEND_GAP: f64 = 8.0;
const LEGEND_LINE: f64 = 22.0;
const LEGEND_NOTE_LINE: f64 = 16.0;
const LEGEND_BOTTOM: f64 = 28.0;
/// A legend entry: its swatch (22 × 14) and the space to its text, and
/// the space after the text.
const SWATCH_ADVANCE: f64 = 28.0;
const LEGEND_ENTRY_ADVANCE: f64 = 40.0;
const SWATCH_BASELINE: f64 = 11.0;
/// Approximate advance of one character at the label font size.
const CHAR_WIDTH: f64 = 6.7;
/// Captions longer than this are cut.
const MAX_CAPTION: usize = 120;
/// Pools a cell's tooltip names before `…`, and the legend names per colour.
const CELL_POOLS: usize = 6;
const LEGEND_POOLS: usize = 4;
const FONTS: &str = "DejaVu Sans Mono, Menlo, Consolas, monospace";

/// The hatching of free blocks and the dots of gaps.
const PATTERNS: &str = "<defs>\n\
    <pattern id=\"free\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" \
    patternTransform=\"rotate(45)\">\
    <rect width=\"8\" height=\"8\" fill=\"#ffffff\"/>\
    <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#a8a8a8\" stroke-width=\"1.5\"/>\
    </pattern>\n\
    <pattern id=\"gap\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">\
    <rect width=\"6\" height=\"6\" fill=\"#f4f4f4\"/>\
    <circle cx=\"3\" cy=\"3\" r=\"1\" fill=\"#bbbbbb\"/>\
    </pattern>\n\
    </defs>\n";

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

fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_WIDTH
}

/// Which marks a picture used, for its legend.
#[derive(Default)]
struct Marks {
    /// Pools drawn in use, per colour.
    pools: [Vec<u64>; POOL_COLOURS.len()],
    free: bool,
    header: bool,
    highlight: bool,
    gap: bool,
    cell: bool,
    elision: bool,
}

impl Marks {
    /// Notes the kind of a block drawn: its pool's colour, or free.
    fn block(&mut self, header: Header) {
        if !header.is_in_use() {
            self.free = true;
            return;
        }
        let pools = &mut self.pools[colour_index(header.pool)];
        if !pools.contains(&header.pool) {
            pools.push(header.pool);
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
    let mut body = Svg::fragment();
    let mut marks = Marks::default();
    let mut top = TOP;
    let mut next = 0;
    for &(number, step) in rows {
        if number > next {
            top += render_elision(&mut body, next, number - 1, top, &mut marks);
        }
        render_step(&mut body, &scale, number, step, top, &mut marks);
        top += ROW_HEIGHT;
        next = number + 1;
    }
    if total > next {
        top += render_elision(&mut body, next, total - 1, top, &mut marks);
    }
    let legend_top = top + LEGEND_GAP;
    let notes = legend_notes(grouped.then_some(cells));
    let height = legend_top + render_legend(&mut body, &legend_entries(&marks), &notes, legend_top);
    document(height, body)
}

/// The document around `body`: size, fonts, patterns, white background.
fn document(height: f64, body: Svg) -> String {
    let view_box = format!("0 0 {WIDTH} {height}");
    let mut svg = Svg::new(&[
        ("width", &WIDTH),
        ("height", &height),
        ("viewBox", &view_box),
        ("font-family", &FONTS),
        ("font-size", &11),
    ]);
    svg.raw(PATTERNS);
    svg.element("rect")
        .attr("width", WIDTH)
        .attr("height", height)
        .attr("fill", "#ffffff")
        .empty();
    svg.append(body);
    svg.finish()
}

/// The line standing for steps `first..=last`, which have no row; returns
/// its height.
fn render_elision(svg: &mut Svg, first: usize, last: usize, top: f64, marks: &mut Marks) -> f64 {
    marks.elision = true;
    let count = last - first + 1;
    let what = if count == 1 {
        format!("⋮ 1 operation not drawn (op {first})")
    } else {
        format!("⋮ {count} operations not drawn (op {first} … op {last})")
    };
    svg.element("text")
        .attr("class", "elision")
        .attr("data-first", first)
        .attr("data-last", last)
        .attr("x", LEFT)
        .attr("y", tenths(top + ELISION_BASELINE))
        .attr("fill", "#555555")
        .attr("font-style", "italic")
        .text(what);
    ELISION_HEIGHT
}

/// The blocks of `step` that start in `[start, end)`.
fn blocks_in(step: &Step, start: usize, end: usize) -> &[Block] {
    let from = step.blocks.partition_point(|b| b.offset < start);
    let to = step.blocks.partition_point(|b| b.offset < end);
    &step.blocks[from..to.max(from)]
}

/// One row: the caption, then every place along the bar that has blocks,
/// with the gaps between segments and the offsets under the bar.
fn render_step(
    svg: &mut Svg,
    scale: &Scale,
    number: usize,
    step: &Step,
    top: f64,
    marks: &mut Marks,
) {
    let bar = top + BAR_TOP;
    svg.element("g")
        .attr("class", "step")
        .attr("data-step", number)
        .attr("data-blocks", step.blocks.len())
        .open();
    render_caption(svg, &step.caption, top);
    let mut labels = Labels::new(bar);
    if step.blocks.is_empty() {
        svg.element("text")
            .attr("class", "empty")
            .attr("x", LEFT)
            .attr("y", bar + BAR_MIDDLE_BASELINE)
            .attr("fill", "#666666")
            .text("(no blocks: the heap is not initialised yet)");
    } else {
        labels.end(
            svg,
            scale.x(step.end()),
            &format!("{} end", Offset::from(step.end())),
        );
    }
    let mut previous_end = 0;
    for cell in scale.boundaries.windows(2) {
        let blocks = blocks_in(step, cell[0], cell[1]);
        if blocks.is_empty() {
            continue;
        }
        let place = Place::new(scale, blocks, bar);
        if place.start > previous_end {
            marks.gap = true;
            render_gap(svg, scale, previous_end, place.start, bar);
        }
        previous_end = place.end;
        render_place(svg, &place, step, marks);
        labels.offset(svg, place.x, &Offset::from(place.start).to_string());
    }
    svg.close("g");
}

/// The step's caption, cut after [`MAX_CAPTION`] characters.
fn render_caption(svg: &mut Svg, caption: &str, top: f64) {
    let shown: String = if caption.chars().count() > MAX_CAPTION {
        caption.chars().take(MAX_CAPTION).chain(['…']).collect()
    } else {
        caption.to_string()
    };
    svg.element("text")
        .attr("class", "caption")
        .attr("x", LEFT)
        .attr("y", top + CAPTION_BASELINE)
        .attr("font-size", 13)
        .attr("font-weight", "bold")
        .text(shown);
}

/// The labels under one bar, on two lines. The end label is placed first,
/// on the first line at its right; an offset label goes on the first line
/// where it clears the label before it, and one that fits on neither line is
/// left out (the block's tooltip still has it).
struct Labels {
    bar: f64,
    /// The right end of the last label on each line.
    ends: [f64; 2],
    /// Where the end label starts.
    end_x: f64,
}

impl Labels {
    fn new(bar: f64) -> Labels {
        Labels {
            bar,
            ends: [f64::MIN; 2],
            end_x: f64::MAX,
        }
    }

    fn baseline(&self, line: usize) -> f64 {
        self.bar + BAR_HEIGHT + LABEL_BASELINE + LABEL_LINE * line as f64
    }

    fn end(&mut self, svg: &mut Svg, x: f64, text: &str) {
        self.end_x = x;
        self.write(svg, "end", x, 0, text);
    }

    fn offset(&mut self, svg: &mut Svg, x: f64, text: &str) {
        let right = x + text_width(text);
        let line = if x >= self.ends[0] + LABEL_SPACING && right + LABEL_SPACING <= self.end_x {
            0
        } else if x >= self.ends[1] + LABEL_SPACING {
            1
        } else {
            return;
        };
        self.ends[line] = right;
        self.write(svg, "offset", x, line, text);
    }

    fn write(&self, svg: &mut Svg, class: &str, x: f64, line: usize, text: &str) {
        svg.element("text")
            .attr("class", class)
            .attr("x", tenths(x))
            .attr("y", tenths(self.baseline(line)))
            .attr("fill", "#333333")
            .text(text);
    }
}

/// Bytes between segments that are not the heap's.
fn render_gap(svg: &mut Svg, scale: &Scale, start: usize, end: usize, bar: f64) {
    let (x0, x1) = (scale.x(start), scale.x(end));
    svg.on_one_line(|svg| {
        svg.element("g")
            .attr("class", "gap")
            .attr("data-offset", start)
            .attr("data-size", end - start)
            .open();
        svg.element("title").markup(&format!(
            "{}..{}: not the heap's (someone else moved the break)",
            Offset::from(start),
            Offset::from(end)
        ));
        svg.element("rect")
            .attr("x", tenths(x0))
            .attr("y", bar)
            .attr("width", tenths((x1 - x0).max(MIN_GAP_WIDTH)))
            .attr("height", BAR_HEIGHT)
            .attr("fill", "url(#gap)")
            .attr("stroke", "#cccccc")
            .empty();
        svg.close("g");
    });
}

/// A place along one row's bar: the blocks of one cell, where they are drawn.
struct Place<'a> {
    blocks: &'a [Block],
    /// The first block's offset, and one past the last block.
    start: usize,
    end: usize,
    /// Left edge and width.
    x: f64,
    width: f64,
    /// The bar's top.
    bar: f64,
}

impl<'a> Place<'a> {
    /// `blocks` (not empty) on `scale`, in the bar whose top is `bar`.
    fn new(scale: &Scale, blocks: &'a [Block], bar: f64) -> Place<'a> {
        let start = blocks[0].offset;
        let end = blocks
            .iter()
            .map(|b| b.offset.saturating_add(b.header.size as usize))
            .max()
            .unwrap_or(start);
        let x = scale.x(start);
        Place {
            blocks,
            start,
            end,
            x,
            width: (scale.x(end) - x).max(MIN_BLOCK_WIDTH),
            bar,
        }
    }
}

/// One place: a block alone or a cell of several, outlined if it holds the
/// block the step returned or freed.
fn render_place(svg: &mut Svg, place: &Place, step: &Step, marks: &mut Marks) {
    let highlighted = place
        .blocks
        .iter()
        .any(|b| step.highlight == Some(b.offset) || step.freed.contains(&b.offset));
    let centre = if let [block] = place.blocks {
        render_block(svg, place, block, highlighted, marks)
    } else {
        render_cell(svg, place, marks)
    };
    if highlighted {
        marks.highlight = true;
        render_highlight(svg, place, centre);
    }
    svg.close("g");
}

/// The outline inside the place's edges and the triangle above `centre`.
fn render_highlight(svg: &mut Svg, place: &Place, centre: f64) {
    let inset = OUTLINE_WIDTH / 2.0;
    svg.element("rect")
        .attr("class", "outline")
        .attr("x", tenths(place.x + inset))
        .attr("y", tenths(place.bar + inset))
        .attr("width", tenths((place.width - OUTLINE_WIDTH).max(0.5)))
        .attr("height", tenths(BAR_HEIGHT - OUTLINE_WIDTH))
        .attr("fill", "none")
        .attr("stroke", "#000000")
        .attr("stroke-width", OUTLINE_WIDTH)
        .empty();
    let tip = format!(
        "M {} {} l 6 -8 l -12 0 z",
        tenths(centre),
        tenths(place.bar - MARKER_LIFT)
    );
    svg.element("path")
        .attr("class", "marker")
        .attr("d", tip)
        .attr("fill", "#000000")
        .empty();
}

/// Opens the `<g>` of one block and draws it (the caller closes it); returns
/// the x of its data's centre.
fn render_block(
    svg: &mut Svg,
    place: &Place,
    block: &Block,
    highlighted: bool,
    marks: &mut Marks,
) -> f64 {
    let h = block.header;
    marks.block(h);
    marks.header = true;
    let (kind, fill) = if h.is_in_use() {
        ("in-use", pool_colour(h.pool))
    } else {
        ("free", "url(#free)")
    };
    let class = format!(
        "block {kind}{}",
        if highlighted { " highlight" } else { "" }
    );
    svg.element("g")
        .attr("class", class)
        .attr("data-offset", block.offset)
        .attr("data-size", h.size)
        .attr("data-pool", h.pool)
        .attr("data-in-use", h.in_use)
        .open();
    svg.element("title").text(format_args!(
        "{}: in_use={} size={} pool={}",
        Offset::from(block.offset),
        h.in_use,
        h.size,
        h.pool
    ));
    svg.element("rect")
        .attr("x", tenths(place.x))
        .attr("y", place.bar)
        .attr("width", tenths(place.width))
        .attr("height", BAR_HEIGHT)
        .attr("fill", fill)
        .attr("stroke", "#333333")
        .attr("stroke-width", 1)
        .empty();
    // The 32-byte header at the block's start, darker: its share of the
    // block, but at least a sliver and at most half the block.
    let header_width = (place.width * HEADER_SIZE as f64 / (h.size.max(1) as f64))
        .max(MIN_HEADER_WIDTH)
        .min(place.width / 2.0);
    svg.element("rect")
        .attr("class", "header")
        .attr("x", tenths(place.x))
        .attr("y", place.bar)
        .attr("width", tenths(header_width))
        .attr("height", BAR_HEIGHT)
        .attr("fill", "#000000")
        .attr("fill-opacity", 0.22)
        .empty();
    let room = place.width - header_width;
    let centre = place.x + header_width + room / 2.0;
    for (line, text) in block_lines(h, room).into_iter().enumerate() {
        if let Some(text) = text {
            let y = place.bar + BLOCK_TEXT_BASELINE + BLOCK_TEXT_LINE * line as f64;
            block_text(svg, h.is_in_use(), centre, y, &text);
        }
    }
    centre
}

/// What a block's data says, line by line, as far as it fits in `room`:
/// its pool (or just the pool's number, or "free"), then its size.
fn block_lines(h: Header, room: f64) -> [Option<String>; 2] {
    let fits = |text: &str, padding: f64| text_width(text) + padding <= room;
    let name = if h.is_in_use() {
        let (full, short) = (format!("pool {}", h.pool), h.pool.to_string());
        if fits(&full, TEXT_PADDING) {
            Some(full)
        } else {
            fits(&short, SHORT_TEXT_PADDING).then_some(short)
        }
    } else {
        let free = "free".to_string();
        fits(&free, TEXT_PADDING).then_some(free)
    };
    let size = format!("{} B", h.size);
    [name, fits(&size, TEXT_PADDING).then_some(size)]
}

/// A line of text centred in a block: black on a pool's colour, dark grey
/// with a white halo on the hatching of a free block.
fn block_text(svg: &mut Svg, in_use: bool, centre: f64, y: f64, text: &str) {
    let line = svg
        .element("text")
        .attr("x", tenths(centre))
        .attr("y", tenths(y))
        .attr("text-anchor", "middle");
    let line = if in_use {
        line.attr("fill", "#000000")
    } else {
        halo(line.attr("fill", "#333333"))
    };
    line.text(text);
}

/// A white outline behind text, so it reads on any fill.
fn halo(text: Element) -> Element {
    text.attr("stroke", "#ffffff")
        .attr("stroke-width", 3)
        .attr("paint-order", "stroke")
}

/// How many blocks of each kind a cell holds: in use by colour, then free;
/// and the first few pools it holds.
struct Kinds {
    counts: [usize; POOL_COLOURS.len() + 1],
    pools: Vec<u64>,
}

impl Kinds {
    const FREE: usize = POOL_COLOURS.len();

    fn of(blocks: &[Block]) -> Kinds {
        let mut kinds = Kinds {
            counts: [0; POOL_COLOURS.len() + 1],
            pools: Vec::new(),
        };
        for h in blocks.iter().map(|b| b.header) {
            if !h.is_in_use() {
                kinds.counts[Kinds::FREE] += 1;
                continue;
            }
            kinds.counts[colour_index(h.pool)] += 1;
            if !kinds.pools.contains(&h.pool) && kinds.pools.len() < CELL_POOLS {
                kinds.pools.push(h.pool);
            }
        }
        kinds
    }

    /// ` (pools 1, 2, …)`, or nothing for a cell of free blocks.
    fn pool_list(&self) -> String {
        if self.pools.is_empty() {
            return String::new();
        }
        let names: Vec<String> = self.pools.iter().map(u64::to_string).collect();
        let more = if self.pools.len() == CELL_POOLS {
            ", …"
        } else {
            ""
        };
        format!(" (pools {}{more})", names.join(", "))
    }
}

/// Opens the `<g>` of a cell of several blocks and draws it (the caller
/// closes it): one stripe per kind, the block count in the middle. Returns
/// the x of its centre.
fn render_cell(svg: &mut Svg, place: &Place, marks: &mut Marks) -> f64 {
    marks.cell = true;
    for block in place.blocks {
        marks.block(block.header);
    }
    let kinds = Kinds::of(place.blocks);
    let (blocks, free) = (place.blocks.len(), kinds.counts[Kinds::FREE]);
    let in_use = blocks - free;
    svg.element("g")
        .attr("class", "cell")
        .attr("data-offset", place.start)
        .attr("data-size", place.end - place.start)
        .attr("data-blocks", blocks)
        .attr("data-in-use", in_use)
        .open();
    svg.element("title").text(format_args!(
        "{}..{}: {blocks} blocks, {in_use} in use{}, {free} free",
        Offset::from(place.start),
        Offset::from(place.end),
        kinds.pool_list()
    ));
    let mut y = place.bar;
    for (kind, &count) in kinds.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let height = BAR_HEIGHT * count as f64 / blocks as f64;
        svg.element("rect")
            .attr("x", tenths(place.x))
            .attr("y", hundredths(y))
            .attr("width", tenths(place.width))
            .attr("height", hundredths(height))
            .attr(
                "fill",
                POOL_COLOURS.get(kind).copied().unwrap_or("url(#free)"),
            )
            .empty();
        y += height;
    }
    svg.element("rect")
        .attr("x", tenths(place.x))
        .attr("y", place.bar)
        .attr("width", tenths(place.width))
        .attr("height", BAR_HEIGHT)
        .attr("fill", "none")
        .attr("stroke", "#333333")
        .attr("stroke-width", 1)
        .attr("stroke-dasharray", "3 2")
        .empty();
    let centre = place.x + place.width / 2.0;
    let count = blocks.to_string();
    if text_width(&count) + SHORT_TEXT_PADDING <= place.width {
        let text = svg
            .element("text")
            .attr("x", tenths(centre))
            .attr("y", tenths(place.bar + BAR_MIDDLE_BASELINE))
            .attr("text-anchor", "middle")
            .attr("fill", "#000000");
        halo(text).text(count);
    }
    centre
}

/// The small picture before a legend entry's text.
enum Swatch {
    Pool(&'static str),
    Free,
    Header,
    Highlight,
    Gap,
    Cell,
    Elision,
}

impl Swatch {
    /// Draws the swatch at (0, 0), 22 × 14.
    fn draw(&self, svg: &mut Svg) {
        let rect = |svg: &mut Svg, fill: &str, stroke: &str| {
            svg.element("rect")
                .attr("width", 22)
                .attr("height", 14)
                .attr("fill", fill)
                .attr("stroke", stroke)
                .empty();
        };
        match self {
            Swatch::Pool(colour) => rect(svg, colour, "#333333"),
            Swatch::Free => rect(svg, "url(#free)", "#333333"),
            Swatch::Gap => rect(svg, "url(#gap)", "#cccccc"),
            Swatch::Header => {
                rect(svg, "#ffffff", "#333333");
                svg.element("rect")
                    .attr("width", 6)
                    .attr("height", 14)
                    .attr("fill", "#000000")
                    .attr("fill-opacity", 0.22)
                    .empty();
            }
            Swatch::Highlight => {
                svg.element("rect")
                    .attr("x", 1.5)
                    .attr("y", 1.5)
                    .attr("width", 19)
                    .attr("height", 11)
                    .attr("fill", "#ffffff")
                    .attr("stroke", "#000000")
                    .attr("stroke-width", 3)
                    .empty();
                svg.element("path")
                    .attr("d", "M 11 9 l 5 -6 l -10 0 z")
                    .attr("fill", "#000000")
                    .empty();
            }
            Swatch::Cell => {
                svg.element("rect")
                    .attr("width", 22)
                    .attr("height", 7)
                    .attr("fill", POOL_COLOURS[1])
                    .empty();
                svg.element("rect")
                    .attr("y", 7)
                    .attr("width", 22)
                    .attr("height", 7)
                    .attr("fill", "url(#free)")
                    .empty();
                svg.element("rect")
                    .attr("width", 22)
                    .attr("height", 14)
                    .attr("fill", "none")
                    .attr("stroke", "#333333")
                    .attr("stroke-dasharray", "3 2")
                    .empty();
            }
            Swatch::Elision => svg
                .element("text")
                .attr("x", 4)
                .attr("y", 11)
                .attr("fill", "#555555")
                .attr("font-style", "italic")
                .text("⋮"),
        }
    }
}

/// The legend's entries for the `marks` used.
fn legend_entries(marks: &Marks) -> Vec<(Swatch, String)> {
    let mut entries = Vec::new();
    for (colour, pools) in POOL_COLOURS.iter().zip(&marks.pools) {
        if !pools.is_empty() {
            entries.push((Swatch::Pool(colour), pools_entry(pools)));
        }
    }
    let others = [
        (marks.free, Swatch::Free, "free (in_use=0, pool=0)"),
        (marks.header, Swatch::Header, "32-byte header"),
        (
            marks.highlight,
            Swatch::Highlight,
            "returned or freed by the step",
        ),
        (
            marks.gap,
            Swatch::Gap,
            "not the heap's (the break moved by someone else)",
        ),
        (
            marks.cell,
            Swatch::Cell,
            "N consecutive blocks: a stripe per kind, as tall as its share of the N",
        ),
        (marks.elision, Swatch::Elision, "operations without a row"),
    ];
    for (used, swatch, text) in others {
        if used {
            entries.push((swatch, text.to_string()));
        }
    }
    entries
}

/// `pool 3`, or `pools 1, 9, 17, 25, … (6 pools)`: the pools of one colour.
fn pools_entry(pools: &[u64]) -> String {
    let mut sorted = pools.to_vec();
    sorted.sort_unstable();
    let mut names: Vec<String> = sorted
        .iter()
        .take(LEGEND_POOLS)
        .map(u64::to_string)
        .collect();
    if sorted.len() > LEGEND_POOLS {
        names.push(format!("… ({} pools)", sorted.len()));
    }
    let label = if sorted.len() == 1 { "pool" } else { "pools" };
    format!("{label} {}", names.join(", "))
}

/// The notes under the legend; `cells` is the number of cells when blocks
/// were grouped.
fn legend_notes(cells: Option<usize>) -> Vec<String> {
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
    notes
}

/// Draws the legend from `y` on, its entries wrapping before the right
/// edge, then its notes; returns its height.
fn render_legend(svg: &mut Svg, entries: &[(Swatch, String)], notes: &[String], y: f64) -> f64 {
    svg.element("g").attr("class", "legend").open();
    let (mut x, mut line_y) = (LEFT, y);
    for (swatch, text) in entries {
        let advance = LEGEND_ENTRY_ADVANCE + text_width(text);
        if x > LEFT && x + advance > WIDTH - LEFT {
            x = LEFT;
            line_y += LEGEND_LINE;
        }
        svg.on_one_line(|svg| {
            let at = format!("translate({} {})", tenths(x), tenths(line_y));
            svg.element("g").attr("transform", at).open();
            swatch.draw(svg);
            svg.close("g");
            svg.element("text")
                .attr("x", tenths(x + SWATCH_ADVANCE))
                .attr("y", tenths(line_y + SWATCH_BASELINE))
                .text(text);
        });
        x += advance;
    }
    for note in notes {
        line_y += LEGEND_NOTE_LINE;
        svg.element("text")
            .attr("x", LEFT)
            .attr("y", tenths(line_y + LEGEND_NOTE_LINE))
            .attr("fill", "#555555")
            .text(note);
    }
    svg.close("g");
    line_y - y + LEGEND_BOTTOM
}

#[cfg(test)]
mod tests {
    use super::*;

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
            freed: Vec::new(),
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
            freed: Vec::new(),
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
            freed: Vec::new(),
        }]);
        assert_eq!(svg.matches("<g class=\"gap\"").count(), 1);
        assert!(svg.contains("class=\"block in-use highlight\" data-offset=\"4096\""));
        assert!(svg.contains("not the heap&apos;s (the break moved by someone else)"));
    }
}
