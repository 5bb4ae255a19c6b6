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
use std::fmt::Write;

use super::pairing::Slot;
use super::{Operation, StepError, StepOutcome, Value};

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

fn offset_of(value: Value) -> Option<i128> {
    match value {
        Value::Offset(o) => Some(o),
        Value::Number(_) => None,
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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn hex(offset: i128) -> String {
    Value::Offset(offset).to_string()
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

/// The SVG picture of `op`'s walk.
pub fn render(op: &Operation) -> String {
    let walk = walk(op);
    let headers = op
        .headers
        .clone()
        .unwrap_or_else(|| super::tracer::Headers {
            start: 0,
            end: 0,
            blocks: Vec::new(),
            truncated: false,
        });
    let heap0 = i128::from(op.heap0);
    let blocks: Vec<(i128, [u64; 3])> = headers
        .blocks
        .iter()
        .map(|b| (i128::from(b.address) - heap0, b.words))
        .collect();
    let verdict = |offset: i128| {
        walk.verdicts
            .get(&offset)
            .copied()
            .unwrap_or(Verdict::NotVisited)
    };
    // Which rows to draw: the first ones, those around the chosen block and
    // the last ones; the others fold into gap rows.
    let chosen = blocks.iter().position(|b| verdict(b.0) == Verdict::Chosen);
    let keep = |i: usize| {
        blocks.len() <= MAX_ROWS
            || i < 14
            || i + 10 >= blocks.len()
            || chosen.is_some_and(|c| i + 5 >= c && i <= c + 5)
    };
    enum Row {
        Block(i128, [u64; 3]),
        Gap(Vec<Verdict>),
    }
    let mut rows: Vec<Row> = Vec::new();
    // The row each block is drawn in (folded blocks share their gap row).
    let mut row_of: BTreeMap<i128, usize> = BTreeMap::new();
    for (i, &(offset, words)) in blocks.iter().enumerate() {
        if keep(i) {
            rows.push(Row::Block(offset, words));
        } else if let Some(Row::Gap(folded)) = rows.last_mut() {
            folded.push(verdict(offset));
        } else {
            rows.push(Row::Gap(vec![verdict(offset)]));
        }
        row_of.insert(offset, rows.len() - 1);
    }

    let row_height = 44;
    let top = 96;
    let left = 190;
    let box_width = 330;
    let width = 1080;
    let extra_rows = 1 + usize::from(walk.reached_end);
    let height = top + (rows.len() + extra_rows) * row_height + 24;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="13">"#
    );
    svg.push_str(
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1f4e9c"/></marker></defs>
<rect width="100%" height="100%" fill="white"/>
"##,
    );
    let wanted = walk.wanted.map_or("?".to_string(), |w| w.to_string());
    let pool = walk.pool.map_or("?".to_string(), |p| p.to_string());
    let _ = writeln!(
        svg,
        r#"<text x="16" y="28" font-size="17" font-weight="bold">op {}: {} - run.s's first-fit walk, step by step</text>"#,
        op.number,
        escape(&op.call)
    );
    let _ = writeln!(
        svg,
        r#"<text x="16" y="52">%r10 = {pool} (pool); %rdx = {wanted} (size + 32-byte header); offsets from the heap start</text>"#
    );
    let _ = writeln!(
        svg,
        r##"<text x="16" y="74" fill="#555">%rsi visits {} header(s), hopping with addq 8(%rsi), %rsi (arrows); header words as they were before the walk</text>"##,
        walk.visits.len() - usize::from(walk.reached_end)
    );
    for (i, row) in rows.iter().enumerate() {
        let y = top + i * row_height;
        match row {
            Row::Block(offset, words) => {
                let v = verdict(*offset);
                let (fill, stroke, note) = match v {
                    Verdict::InUse => {
                        ("#e6e6e6", "#777", "skipped: in use (jne taken)".to_string())
                    }
                    Verdict::TooSmall => (
                        "#ffe2b8",
                        "#c77700",
                        format!(
                            "skipped: too small, size {} < {wanted} (jb taken)",
                            words[1]
                        ),
                    ),
                    Verdict::Chosen => (
                        "#c9f0c4",
                        "#2c8a1f",
                        format!(
                            "walk stops: free, size {} >= {wanted}: in_use := 1, pool := {pool}",
                            words[1]
                        ),
                    ),
                    Verdict::NotVisited => ("#ffffff", "#aaa", "not visited".to_string()),
                };
                let dash = if v == Verdict::NotVisited {
                    r#" stroke-dasharray="4 3""#
                } else {
                    ""
                };
                let _ = writeln!(
                    svg,
                    r#"<rect x="{left}" y="{y}" width="{box_width}" height="{}" rx="4" fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>"#,
                    row_height - 8
                );
                let _ = writeln!(
                    svg,
                    r##"<text x="{}" y="{}" text-anchor="end" fill="#333">{}</text>"##,
                    left - 80,
                    y + 23,
                    hex(*offset)
                );
                let _ = writeln!(
                    svg,
                    r#"<text x="{}" y="{}">in_use={}  size={}  pool={}</text>"#,
                    left + 12,
                    y + 23,
                    words[0],
                    words[1],
                    words[2]
                );
                let _ = writeln!(
                    svg,
                    r#"<text x="{}" y="{}" fill="{stroke}">{}</text>"#,
                    left + box_width + 16,
                    y + 23,
                    escape(&note)
                );
            }
            Row::Gap(folded) => {
                let count = |want: Verdict| folded.iter().filter(|&&v| v == want).count();
                let _ = writeln!(
                    svg,
                    r##"<text x="{}" y="{}" fill="#555">... {} more blocks: {} in use, {} too small, {} not visited ...</text>"##,
                    left + 12,
                    y + 23,
                    folded.len(),
                    count(Verdict::InUse),
                    count(Verdict::TooSmall),
                    count(Verdict::NotVisited)
                );
            }
        }
    }
    // memory_end, where %rcx stands.
    let end_y = top + rows.len() * row_height;
    let end_text = walk.end.map_or("?".to_string(), hex);
    let _ = writeln!(
        svg,
        r##"<line x1="{}" y1="{end_y}" x2="{}" y2="{end_y}" stroke="#b00" stroke-width="2.5"/>"##,
        left - 20,
        // Ends before the label at `left + box_width + 16` starts.
        left + box_width + 8
    );
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="{}" fill="#b00" font-weight="bold">%rcx = memory_end = {end_text}{}</text>"##,
        left + box_width + 16,
        end_y + 5,
        if walk.reached_end {
            " = %rsi: the walk reached the end"
        } else {
            ""
        }
    );
    if walk.reached_end {
        let y = end_y + 8;
        let _ = writeln!(
            svg,
            r##"<rect x="{left}" y="{y}" width="{box_width}" height="{}" rx="4" fill="#dbe8ff" stroke="#1f4e9c" stroke-dasharray="6 3"/>"##,
            row_height - 8
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}">new: in_use=1  size={wanted}  pool={pool}</text>"#,
            left + 12,
            y + 23
        );
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" fill="#1f4e9c">je allocate_move_break: the break moves, new block at {}</text>"##,
            left + box_width + 16,
            y + 23,
            walk.appended.map_or("?".to_string(), hex)
        );
    }
    // %rsi's hops, as arcs on the left (a visit at memory_end is the line).
    let centres: Vec<usize> = walk
        .visits
        .iter()
        .map(|v| match (walk.end, row_of.get(v)) {
            (Some(end), _) if end == *v => end_y,
            (_, Some(&row)) => top + row * row_height + (row_height - 8) / 2,
            _ => end_y,
        })
        .collect();
    for pair in centres.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        if from == to {
            continue; // inside a folded gap row
        }
        let bulge = left as i64 - 30 - (((to as i64 - from as i64).abs() / 6).min(40));
        let _ = writeln!(
            svg,
            r##"<path d="M{} {from} C{bulge} {from} {bulge} {to} {} {to}" fill="none" stroke="#1f4e9c" stroke-width="1.6" marker-end="url(#arrow)"/>"##,
            left - 2,
            left - 2
        );
    }
    if let Some(&last) = centres.last().filter(|&&c| c != end_y) {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" fill="#1f4e9c" font-weight="bold" text-anchor="end">%rsi</text>"##,
            left + box_width - 10,
            last + 5
        );
    }
    if headers.truncated {
        let _ = writeln!(
            svg,
            r##"<text x="16" y="{}" fill="#b00">(only the first {} headers were read)</text>"##,
            height - 20,
            headers.blocks.len()
        );
    }
    svg.push_str("</svg>\n");
    svg
}
