//! Pictures of the heap, step by step, as SVG.
//!
//! [`render`] draws one row per [`Step`]: its caption, then its blocks in
//! address order as one bar. In-use blocks are filled with their pool's colour
//! and free blocks are hatched; the block the step returned (or freed) is
//! outlined and marked with a triangle; every block's header offset is written
//! under its left edge, and the end of the heap under its right.
//!
//! **Scale.** A block's width is a fixed minimum plus a share of the rest in
//! proportion to its size: a 32-byte block stays wide enough to label, and a
//! 432-byte block is still visibly bigger than a 64-byte one. The scale is
//! the same for every row (it is built from the block boundaries of all the
//! steps), so a block keeps its place from one step to the next and the rows
//! read as a film of one heap. Proportions are therefore only roughly true;
//! the offsets under the bar are the exact numbers.
//!
//! The output is plain SVG 1.1 text, with one `<g class="block …">` element
//! per block carrying `data-offset`, `data-size`, `data-pool` and
//! `data-in-use` attributes, so that tests (and curious readers) can check the
//! picture's structure without rendering it.
//!
//! ```
//! use brk_pools::{Heap, svg};
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

use crate::header::HEADER_SIZE;
use crate::heap::{Block, Heap};
use crate::source::BreakSource;

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
/// ```
/// use brk_pools::{Heap, svg};
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
    crate::trace::replay(heap, script, |heap, event| {
        if let crate::trace::Event::Executed { line, pointer, .. } = event {
            // Highlight by header offset, which Heap::blocks counts from memory_start.
            let start = heap.memory_start() as usize;
            let highlight = pointer
                .and_then(|p| (p.as_ptr() as usize).checked_sub(HEADER_SIZE))
                .and_then(|h| h.checked_sub(start));
            steps.push(Step::of_heap(line.to_string(), heap, highlight));
        }
    });
    steps
}

/// Okabe–Ito colours (distinguishable with the common colour-vision
/// deficiencies), indexed by `pool % 8`.
const POOL_COLOURS: [&str; 8] = [
    "#bbbbbb", "#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7",
];

/// The fill colour of an in-use block of `pool`.
pub fn pool_colour(pool: u64) -> &'static str {
    POOL_COLOURS[(pool % POOL_COLOURS.len() as u64) as usize]
}

const LEFT: f64 = 16.0;
const BAR_WIDTH: f64 = 860.0;
const MIN_BLOCK: f64 = 64.0;
const BAR_HEIGHT: f64 = 46.0;
const ROW_HEIGHT: f64 = 118.0;
const TOP: f64 = 16.0;
/// Approximate advance of one character at the label font size.
const CHAR_WIDTH: f64 = 6.7;

/// Maps heap offsets to x coordinates: a minimum width per interval between
/// consecutive boundaries, plus a share proportional to its length.
struct Scale {
    boundaries: Vec<usize>,
    xs: Vec<f64>,
}

impl Scale {
    fn new(steps: &[Step]) -> Scale {
        let mut boundaries: Vec<usize> = steps
            .iter()
            .flat_map(|s| {
                s.blocks
                    .iter()
                    .flat_map(|b| [b.offset, b.offset.saturating_add(b.header.size as usize)])
            })
            .chain([0])
            .collect();
        boundaries.sort_unstable();
        boundaries.dedup();
        let intervals = boundaries.len().saturating_sub(1);
        let total = boundaries.last().copied().unwrap_or(0).max(1) as f64;
        let min = if intervals == 0 {
            0.0
        } else {
            MIN_BLOCK.min(BAR_WIDTH / intervals as f64)
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
            // Not a boundary (cannot happen for the steps the scale was made
            // from): interpolate within its interval.
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
            c => out.push(c),
        }
    }
    out
}

fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_WIDTH
}

/// Draws `steps` as one SVG document, one row per step (see the module docs).
pub fn render(steps: &[Step]) -> String {
    let scale = Scale::new(steps);
    let width = LEFT * 2.0 + BAR_WIDTH + 80.0;
    let mut body = String::new();
    for (number, step) in steps.iter().enumerate() {
        let top = TOP + ROW_HEIGHT * number as f64;
        render_step(&mut body, &scale, number, step, top);
    }
    let legend_y = TOP + ROW_HEIGHT * steps.len() as f64 + 8.0;
    let legend_height = render_legend(&mut body, steps, legend_y, width - LEFT);
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

fn render_step(out: &mut String, scale: &Scale, number: usize, step: &Step, top: f64) {
    let bar = top + 30.0;
    let _ = writeln!(
        out,
        "<g class=\"step\" data-step=\"{number}\" data-blocks=\"{}\">",
        step.blocks.len()
    );
    let _ = writeln!(
        out,
        "<text class=\"caption\" x=\"{LEFT}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        top + 12.0,
        escape(&step.caption)
    );
    if step.blocks.is_empty() {
        let _ = writeln!(
            out,
            "<text class=\"empty\" x=\"{LEFT}\" y=\"{}\" fill=\"#666666\">(no blocks: the heap is \
             not initialised yet)</text>",
            bar + BAR_HEIGHT / 2.0 + 4.0
        );
    }
    // Offset labels go on one of two lines under the bar, so that labels of
    // narrow neighbours do not overlap.
    let mut label_ends = [f64::MIN; 2];
    let mut label = |out: &mut String, x: f64, text: &str, class: &str| {
        let line = if x >= label_ends[0] + 4.0 { 0 } else { 1 };
        label_ends[line] = x + text_width(text);
        let _ = writeln!(
            out,
            "<text class=\"{class}\" x=\"{x:.1}\" y=\"{:.1}\" fill=\"#333333\">{}</text>",
            bar + BAR_HEIGHT + 14.0 + 13.0 * line as f64,
            escape(text)
        );
    };
    let mut previous_end = 0usize;
    for block in &step.blocks {
        let h = block.header;
        let end = block.offset.saturating_add(h.size as usize);
        if block.offset > previous_end {
            // A gap between segments: the break was moved by someone else.
            let (x0, x1) = (scale.x(previous_end), scale.x(block.offset));
            let _ = writeln!(
                out,
                "<g class=\"gap\" data-offset=\"{previous_end}\" data-size=\"{}\">\
                 <title>+{previous_end:#x}..+{:#x}: not the heap's (someone else moved the break)</title>\
                 <rect x=\"{x0:.1}\" y=\"{bar}\" width=\"{:.1}\" height=\"{BAR_HEIGHT}\" fill=\"url(#gap)\" \
                 stroke=\"#cccccc\"/></g>",
                block.offset - previous_end,
                block.offset,
                (x1 - x0).max(1.0)
            );
        }
        previous_end = end;
        let (x0, x1) = (scale.x(block.offset), scale.x(end));
        let w = (x1 - x0).max(2.0);
        let in_use = h.is_in_use();
        let highlighted = step.highlight == Some(block.offset);
        let class = format!(
            "block {}{}",
            if in_use { "in-use" } else { "free" },
            if highlighted { " highlight" } else { "" }
        );
        let fill = if in_use {
            pool_colour(h.pool).to_string()
        } else {
            "url(#free)".to_string()
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
        // The 32-byte header at the block's start, darker (at least a sliver,
        // at most half the block).
        let header_width = (w * HEADER_SIZE as f64 / (h.size.max(1) as f64)).clamp(4.0, w / 2.0);
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
            let w = data_width;
            let fits = text_width(text) + 10.0 <= w;
            let short = if in_use {
                h.pool.to_string()
            } else {
                String::new()
            };
            let shown = if fits {
                text.clone()
            } else if line == 0.0 && text_width(&short) + 4.0 <= w {
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
        if highlighted {
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
        label(out, x0, &format!("+{:#x}", block.offset), "offset");
    }
    if !step.blocks.is_empty() {
        let end = step.end();
        label(out, scale.x(end), &format!("+{end:#x} end"), "end");
    }
    out.push_str("</g>\n");
}

/// Draws the legend from `y` on, wrapping before `right`; returns its height.
fn render_legend(out: &mut String, steps: &[Step], y: f64, right: f64) -> f64 {
    let mut pools: Vec<u64> = steps
        .iter()
        .flat_map(|s| &s.blocks)
        .filter(|b| b.header.is_in_use())
        .map(|b| b.header.pool)
        .collect();
    pools.sort_unstable();
    pools.dedup();
    let mut swatches: Vec<(String, f64, String)> = pools
        .into_iter()
        .map(|pool| (pool_colour(pool).to_string(), 1.0, format!("pool {pool}")))
        .collect();
    swatches.push(("url(#free)".into(), 1.0, "free (in_use=0, pool=0)".into()));
    swatches.push(("#c4c4c4".into(), 1.0, "32-byte header".into()));
    swatches.push((
        "#ffffff".into(),
        3.0,
        "returned or freed by the step".into(),
    ));
    out.push_str("<g class=\"legend\">\n");
    let (mut x, mut line_y) = (LEFT, y);
    for (fill, stroke_width, text) in &swatches {
        let advance = 40.0 + text_width(text);
        if x > LEFT && x + advance > right {
            x = LEFT;
            line_y += 22.0;
        }
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{line_y:.1}\" width=\"22\" height=\"14\" fill=\"{fill}\" \
             stroke=\"#333333\" stroke-width=\"{stroke_width}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + 28.0,
            line_y + 11.0,
            escape(text)
        );
        x += advance;
    }
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"{:.1}\" fill=\"#555555\">Offsets from memory_start. Widths: a \
         minimum, plus a share in proportion to the size; the offsets are exact.</text>",
        line_y + 32.0
    );
    out.push_str("</g>\n");
    line_y - y + 44.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Header;

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

    #[test]
    fn scale_is_monotonic_shared_and_has_a_minimum() {
        let steps = [
            Step {
                caption: "a".into(),
                blocks: vec![block(0, 1, 432, 1)],
                highlight: None,
            },
            Step {
                caption: "b".into(),
                blocks: vec![block(0, 1, 432, 1), block(432, 1, 32, 2)],
                highlight: None,
            },
        ];
        let scale = Scale::new(&steps);
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
    fn escapes_captions() {
        let svg = render(&[Step {
            caption: "a <b> & \"c\"".into(),
            blocks: vec![],
            highlight: None,
        }]);
        assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
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
    }
}
