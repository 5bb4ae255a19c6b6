//! One allocate's walk as an SVG picture: the blocks with their header
//! words, `%rsi` hopping from header to header, where `%rcx` (memory_end)
//! stands, the block the walk stops at and why every block before it was
//! skipped (in use: `jne` taken; too small: `jb` taken).
//!
//! Drawn from run.s's side of a [`StepOutcome`] recorded with
//! [`StepOptions::read_headers`](super::StepOptions::read_headers). At most
//! [`MAX_ROWS`] blocks are drawn; the rest are folded into "…" rows that
//! count what they hold, so a heap of any size gives a picture of bounded
//! size.

use std::collections::BTreeMap;

use brk_pools::header::Header;

use super::pairing::Slot;
use super::{Operation, StepError, StepOutcome, Value};
use crate::offset::Offset;
use crate::svg::writer::{Svg, escape};

/// Most block rows drawn.
pub const MAX_ROWS: usize = 36;

/// What the walk did at a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `jne try_next_block` taken: the block is in use.
    InUse,
    /// `jb try_next_block` taken: free, but smaller than `%rdx`.
    TooSmall,
    /// Free and big enough: the walk stops here and hands it out.
    Chosen,
    /// The walk stopped before it.
    NotVisited,
}

/// The walk of one allocate, read from run.s's instructions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walk {
    /// Offsets of the headers `%rsi` stood at, in order.
    pub visits: Vec<i128>,
    /// What happened at each visited header.
    pub verdicts: BTreeMap<i128, Verdict>,
    /// `%rcx`: memory_end, as an offset.
    pub end: Option<i128>,
    /// `%rdx`: size asked for plus the header.
    pub wanted: Option<u64>,
    /// `%r10`: the pool.
    pub pool: Option<u64>,
    /// Whether the walk reached memory_end (`je allocate_move_break`).
    pub reached_end: bool,
    /// The new block's header, when the break moved: offset (`%r8`).
    pub appended: Option<i128>,
}

impl Walk {
    /// What the walk did at the header at `offset`.
    pub fn verdict(&self, offset: i128) -> Verdict {
        self.verdicts
            .get(&offset)
            .copied()
            .unwrap_or(Verdict::NotVisited)
    }
}

fn offset_of(value: Value) -> Option<i128> {
    match value {
        Value::Offset(o) => Some(o),
        Value::Number(_) | Value::ReturnAddress => None,
    }
}

/// Reads the walk from an operation's run.s instructions.
pub fn walk(op: &Operation) -> Walk {
    let mut walk = Walk {
        visits: Vec::new(),
        verdicts: BTreeMap::new(),
        end: None,
        wanted: None,
        pool: None,
        reached_end: false,
        appended: None,
    };
    let mut at = None;
    for e in &op.original {
        let Slot::Label { label, index } = e.slot else {
            continue;
        };
        let reg = |name: &str| e.all.iter().find(|r| r.reg.name() == name).map(|r| r.value);
        match (label, index) {
            ("allocate_loop", 0) => {
                at = reg("rsi").and_then(offset_of);
                walk.end = reg("rcx").and_then(offset_of);
                if let Some(Value::Number(n)) = reg("rdx") {
                    walk.wanted = Some(n);
                }
                if let Some(Value::Number(n)) = reg("r10") {
                    walk.pool = Some(n);
                }
                if let Some(at) = at {
                    walk.visits.push(at);
                }
            }
            ("allocate_loop", 1) if e.taken == Some(true) => walk.reached_end = true,
            ("allocate_loop", 3) if e.taken == Some(true) => {
                at.map(|a| walk.verdicts.insert(a, Verdict::InUse));
            }
            ("allocate_loop", 5) if e.taken == Some(true) => {
                at.map(|a| walk.verdicts.insert(a, Verdict::TooSmall));
            }
            ("allocate_loop", 6) => {
                at.map(|a| walk.verdicts.insert(a, Verdict::Chosen));
            }
            ("allocate_move_break", 0) => walk.appended = reg("r8").and_then(offset_of),
            _ => {}
        }
    }
    walk
}

/// The allocate to draw: `op` if given, else the one whose walk visited the
/// most blocks (the first of those).
///
/// # Errors
/// [`StepError::NoWalk`] if `op` is not an allocate with headers, or there
/// is none.
pub fn choose(outcome: &StepOutcome, op: Option<usize>) -> Result<&Operation, StepError> {
    let walks = outcome
        .operations
        .iter()
        .filter(|o| o.headers.is_some() && o.call.starts_with("allocate("));
    match op {
        Some(n) => walks
            .into_iter()
            .find(|o| o.number == n)
            .ok_or_else(|| StepError::NoWalk {
                message: format!("operation {n} is not an allocate of this script"),
            }),
        None => walks
            .max_by_key(|o| (walk(o).visits.len(), std::cmp::Reverse(o.number)))
            .ok_or_else(|| StepError::NoWalk {
                message: "the script has no allocate to draw".to_string(),
            }),
    }
}

/// Height of a row, and of the box drawn in it.
const ROW_HEIGHT: usize = 44;
const BOX_HEIGHT: usize = ROW_HEIGHT - 8;
/// Top of the first row, under the three title lines.
const TOP: usize = 96;
/// Space under the last row.
const BOTTOM: usize = 24;
/// Left edge of the title lines.
const MARGIN: usize = 16;
/// Left edge and width of the header boxes.
const BOX_LEFT: usize = 190;
const BOX_WIDTH: usize = 330;
const WIDTH: usize = 1080;
const OFFSET_RIGHT: usize = BOX_LEFT - 80;
/// Left edge of the words inside a box, and of the notes right of it.
const WORDS_LEFT: usize = BOX_LEFT + 12;
const NOTE_LEFT: usize = BOX_LEFT + BOX_WIDTH + 16;
/// From a row's top to the baseline of its text.
const ROW_BASELINE: usize = 23;
/// The memory_end line runs from here to just before the notes.
const END_LINE_LEFT: usize = BOX_LEFT - 20;
const END_LINE_RIGHT: usize = BOX_LEFT + BOX_WIDTH + 8;
/// Where `%rsi`'s arcs start and end, and how far left they bulge: more
/// for longer hops, up to a limit.
const ARC_X: usize = BOX_LEFT - 2;
const ARC_BULGE: i64 = 30;
const ARC_MAX_EXTRA_BULGE: i64 = 40;
/// Rows kept when a heap has more than [`MAX_ROWS`] blocks: the first ones,
/// the last ones, and those on each side of the chosen block.
const FIRST_ROWS: usize = 14;
const LAST_ROWS: usize = 10;
const AROUND_CHOSEN: usize = 5;
const WALK_BLUE: &str = "#1f4e9c";
const END_RED: &str = "#b00";

/// The arrowhead of `%rsi`'s hops.
const ARROW: &str = "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" \
    markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">\
    <path d=\"M0,0 L10,5 L0,10 z\" fill=\"#1f4e9c\"/></marker></defs>\n";

/// A row of the picture.
enum Row {
    /// A block drawn with its header words.
    Block(i128, Header),
    /// Blocks folded into one line, with what the walk did at each.
    Folded(Vec<Verdict>),
}

/// The rows for `blocks`, and the row each block is drawn in (folded
/// blocks share their row).
fn rows(blocks: &[(i128, Header)], walk: &Walk) -> (Vec<Row>, BTreeMap<i128, usize>) {
    let chosen = blocks
        .iter()
        .position(|b| walk.verdict(b.0) == Verdict::Chosen);
    let keep = |i: usize| {
        blocks.len() <= MAX_ROWS
            || i < FIRST_ROWS
            || i + LAST_ROWS >= blocks.len()
            || chosen.is_some_and(|c| i + AROUND_CHOSEN >= c && i <= c + AROUND_CHOSEN)
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut row_of = BTreeMap::new();
    for (i, &(offset, header)) in blocks.iter().enumerate() {
        if keep(i) {
            rows.push(Row::Block(offset, header));
        } else if let Some(Row::Folded(folded)) = rows.last_mut() {
            folded.push(walk.verdict(offset));
        } else {
            rows.push(Row::Folded(vec![walk.verdict(offset)]));
        }
        row_of.insert(offset, rows.len() - 1);
    }
    (rows, row_of)
}

/// The top of row `row`.
fn row_top(row: usize) -> usize {
    TOP + row * ROW_HEIGHT
}

/// What the walk was asked for, as written in the picture (`?` if unread).
struct Asked {
    /// `%rdx`: the size plus the header.
    wanted: String,
    /// `%r10`.
    pool: String,
}

/// The SVG picture of `op`'s walk.
pub fn render(op: &Operation) -> String {
    let walk = walk(op);
    let asked = Asked {
        wanted: walk.wanted.map_or("?".to_string(), |w| w.to_string()),
        pool: walk.pool.map_or("?".to_string(), |p| p.to_string()),
    };
    let headers = op.headers.as_ref();
    let heap0 = i128::from(op.heap0);
    let blocks: Vec<(i128, Header)> = headers
        .map_or(&[][..], |h| &h.blocks)
        .iter()
        .map(|b| (i128::from(b.address) - heap0, header(b.words)))
        .collect();
    let (rows, row_of) = rows(&blocks, &walk);
    let extra_rows = 1 + usize::from(walk.reached_end);
    let height = row_top(rows.len() + extra_rows) + BOTTOM;
    let view_box = format!("0 0 {WIDTH} {height}");
    let mut svg = Svg::new(&[
        ("width", &WIDTH),
        ("height", &height),
        ("viewBox", &view_box),
        ("font-family", &"monospace"),
        ("font-size", &13),
    ]);
    svg.raw(ARROW);
    svg.element("rect")
        .attr("width", "100%")
        .attr("height", "100%")
        .attr("fill", "white")
        .empty();
    render_title(&mut svg, op, &walk, &asked);
    for (i, row) in rows.iter().enumerate() {
        match row {
            Row::Block(offset, header) => {
                render_block(
                    &mut svg,
                    row_top(i),
                    *offset,
                    *header,
                    walk.verdict(*offset),
                    &asked,
                );
            }
            Row::Folded(verdicts) => render_folded(&mut svg, row_top(i), verdicts),
        }
    }
    let end_y = row_top(rows.len());
    render_end(&mut svg, end_y, &walk, &asked);
    render_hops(&mut svg, &walk, &row_of, end_y);
    if let Some(headers) = headers.filter(|h| h.truncated) {
        svg.element("text")
            .attr("x", MARGIN)
            .attr("y", height - 20)
            .attr("fill", END_RED)
            .text(format_args!(
                "(only the first {} headers were read)",
                headers.blocks.len()
            ));
    }
    svg.finish()
}

/// A header's three words as a [`Header`].
fn header([in_use, size, pool]: [u64; 3]) -> Header {
    Header {
        in_use,
        size,
        pool,
        unused: 0,
    }
}

/// The three lines above the rows: the call, the registers it set, the hops.
fn render_title(svg: &mut Svg, op: &Operation, walk: &Walk, asked: &Asked) {
    svg.element("text")
        .attr("x", MARGIN)
        .attr("y", 28)
        .attr("font-size", 17)
        .attr("font-weight", "bold")
        .markup(&format!(
            "op {}: {} - run.s's first-fit walk, step by step",
            op.number,
            escape(&op.call)
        ));
    svg.element("text")
        .attr("x", MARGIN)
        .attr("y", 52)
        .text(format_args!(
            "%r10 = {} (pool); %rdx = {} (size + 32-byte header); offsets from the heap start",
            asked.pool, asked.wanted
        ));
    svg.element("text")
        .attr("x", MARGIN)
        .attr("y", 74)
        .attr("fill", "#555")
        .text(format_args!(
            "%rsi visits {} header(s), hopping with addq 8(%rsi), %rsi (arrows); header words \
             as they were before the walk",
            walk.visits.len() - usize::from(walk.reached_end)
        ));
}

/// How a verdict is drawn: fill, stroke, and the note right of the box.
fn verdict_style(
    verdict: Verdict,
    size: u64,
    asked: &Asked,
) -> (&'static str, &'static str, String) {
    let Asked { wanted, pool } = asked;
    match verdict {
        Verdict::InUse => ("#e6e6e6", "#777", "skipped: in use (jne taken)".to_string()),
        Verdict::TooSmall => (
            "#ffe2b8",
            "#c77700",
            format!("skipped: too small, size {size} < {wanted} (jb taken)"),
        ),
        Verdict::Chosen => (
            "#c9f0c4",
            "#2c8a1f",
            format!("walk stops: free, size {size} >= {wanted}: in_use := 1, pool := {pool}"),
        ),
        Verdict::NotVisited => ("#ffffff", "#aaa", "not visited".to_string()),
    }
}

/// One block's row: its offset, its header words in a box coloured by the
/// verdict, and the verdict in words.
fn render_block(svg: &mut Svg, y: usize, offset: i128, h: Header, verdict: Verdict, asked: &Asked) {
    let (fill, stroke, note) = verdict_style(verdict, h.size, asked);
    let dash = (verdict == Verdict::NotVisited).then_some("4 3");
    svg.element("rect")
        .attr("x", BOX_LEFT)
        .attr("y", y)
        .attr("width", BOX_WIDTH)
        .attr("height", BOX_HEIGHT)
        .attr("rx", 4)
        .attr("fill", fill)
        .attr("stroke", stroke)
        .attr("stroke-width", 1.5)
        .attr_if("stroke-dasharray", dash)
        .empty();
    let baseline = y + ROW_BASELINE;
    svg.element("text")
        .attr("x", OFFSET_RIGHT)
        .attr("y", baseline)
        .attr("text-anchor", "end")
        .attr("fill", "#333")
        .text(Offset(offset));
    svg.element("text")
        .attr("x", WORDS_LEFT)
        .attr("y", baseline)
        .text(format_args!(
            "in_use={}  size={}  pool={}",
            h.in_use, h.size, h.pool
        ));
    svg.element("text")
        .attr("x", NOTE_LEFT)
        .attr("y", baseline)
        .attr("fill", stroke)
        .text(note);
}

/// A row of folded blocks: how many, and what the walk did at them.
fn render_folded(svg: &mut Svg, y: usize, verdicts: &[Verdict]) {
    let count = |want: Verdict| verdicts.iter().filter(|&&v| v == want).count();
    svg.element("text")
        .attr("x", WORDS_LEFT)
        .attr("y", y + ROW_BASELINE)
        .attr("fill", "#555")
        .text(format_args!(
            "... {} more blocks: {} in use, {} too small, {} not visited ...",
            verdicts.len(),
            count(Verdict::InUse),
            count(Verdict::TooSmall),
            count(Verdict::NotVisited)
        ));
}

/// memory_end, where `%rcx` stands, and the block the break's move adds
/// when the walk reached it.
fn render_end(svg: &mut Svg, end_y: usize, walk: &Walk, asked: &Asked) {
    svg.element("line")
        .attr("x1", END_LINE_LEFT)
        .attr("y1", end_y)
        .attr("x2", END_LINE_RIGHT)
        .attr("y2", end_y)
        .attr("stroke", END_RED)
        .attr("stroke-width", 2.5)
        .empty();
    let end = walk.end.map_or("?".to_string(), |e| Offset(e).to_string());
    let reached = if walk.reached_end {
        " = %rsi: the walk reached the end"
    } else {
        ""
    };
    svg.element("text")
        .attr("x", NOTE_LEFT)
        .attr("y", end_y + 5)
        .attr("fill", END_RED)
        .attr("font-weight", "bold")
        .text(format_args!("%rcx = memory_end = {end}{reached}"));
    if !walk.reached_end {
        return;
    }
    let y = end_y + 8;
    svg.element("rect")
        .attr("x", BOX_LEFT)
        .attr("y", y)
        .attr("width", BOX_WIDTH)
        .attr("height", BOX_HEIGHT)
        .attr("rx", 4)
        .attr("fill", "#dbe8ff")
        .attr("stroke", WALK_BLUE)
        .attr("stroke-dasharray", "6 3")
        .empty();
    svg.element("text")
        .attr("x", WORDS_LEFT)
        .attr("y", y + ROW_BASELINE)
        .text(format_args!(
            "new: in_use=1  size={}  pool={}",
            asked.wanted, asked.pool
        ));
    let appended = walk
        .appended
        .map_or("?".to_string(), |a| Offset(a).to_string());
    svg.element("text")
        .attr("x", NOTE_LEFT)
        .attr("y", y + ROW_BASELINE)
        .attr("fill", WALK_BLUE)
        .text(format_args!(
            "je allocate_move_break: the break moves, new block at {appended}"
        ));
}

/// `%rsi`'s hops, as arcs on the left from box to box (a visit at
/// memory_end is the end line), and its name at the last box it stood at.
fn render_hops(svg: &mut Svg, walk: &Walk, row_of: &BTreeMap<i128, usize>, end_y: usize) {
    let centres: Vec<usize> = walk
        .visits
        .iter()
        .map(|v| match (walk.end, row_of.get(v)) {
            (Some(end), _) if end == *v => end_y,
            (_, Some(&row)) => row_top(row) + BOX_HEIGHT / 2,
            _ => end_y,
        })
        .collect();
    for pair in centres.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        if from == to {
            continue; // inside a folded row
        }
        let extra = ((to as i64 - from as i64).abs() / 6).min(ARC_MAX_EXTRA_BULGE);
        let bulge = BOX_LEFT as i64 - ARC_BULGE - extra;
        svg.element("path")
            .attr(
                "d",
                format_args!("M{ARC_X} {from} C{bulge} {from} {bulge} {to} {ARC_X} {to}"),
            )
            .attr("fill", "none")
            .attr("stroke", WALK_BLUE)
            .attr("stroke-width", 1.6)
            .attr("marker-end", "url(#arrow)")
            .empty();
    }
    if let Some(&last) = centres.last().filter(|&&c| c != end_y) {
        svg.element("text")
            .attr("x", BOX_LEFT + BOX_WIDTH - 10)
            .attr("y", last + 5)
            .attr("fill", WALK_BLUE)
            .attr("font-weight", "bold")
            .attr("text-anchor", "end")
            .text("%rsi");
    }
}
