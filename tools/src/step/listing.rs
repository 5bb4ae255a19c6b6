//! The default listing of `step`: both sides, one instruction a line, and
//! the pairing table.

use super::pairing::{self, Slot};
use super::{Executed, Operation, StepOutcome};

/// How a row of the side-by-side compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Both sides ran the same instruction with the same effects.
    Same,
    /// A compared instruction that differs (or has no partner).
    Differs,
    /// A row of the pairing table: shown, not compared.
    Unpaired,
}

impl Mark {
    /// The listing's marker: blank, `!=` or `~`.
    pub fn marker(self) -> &'static str {
        match self {
            Mark::Same => "  ",
            Mark::Differs => "!=",
            Mark::Unpaired => "~ ",
        }
    }
}

/// One row of an operation's side-by-side: run.s's instruction, the port's,
/// or both.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    /// How it compares.
    pub mark: Mark,
    /// run.s's instruction.
    pub original: Option<&'a Executed>,
    /// The port's instruction.
    pub port: Option<&'a Executed>,
}

impl Operation {
    /// The rows of the side-by-side, numbered from 0 as in the listing and
    /// the viewer's `#opN.iM`: instructions of one slot side by side, an
    /// instruction of the pairing table on a row of its own unless both
    /// sides have that row.
    pub fn rows(&self) -> Vec<Row<'_>> {
        let (o, p) = (&self.original, &self.port);
        let mut rows = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < o.len() || j < p.len() {
            let (a, b) = (o.get(i), p.get(j));
            let (left, right) = match (a.map(|e| e.slot), b.map(|e| e.slot)) {
                (Some(Slot::Unpaired(x)), Some(Slot::Unpaired(y))) if x == y => (a, b),
                (Some(Slot::Unpaired(_)), _) => (a, None),
                (_, Some(Slot::Unpaired(_))) => (None, b),
                _ => (a, b),
            };
            i += usize::from(left.is_some());
            j += usize::from(right.is_some());
            let mark = match (left, right) {
                (Some(l), _) | (_, Some(l)) if !l.compared() => Mark::Unpaired,
                (Some(l), Some(r))
                    if l.slot == r.slot
                        && l.touched == r.touched
                        && l.taken == r.taken
                        && l.text == r.text =>
                {
                    Mark::Same
                }
                _ => Mark::Differs,
            };
            rows.push(Row {
                mark,
                original: left,
                port: right,
            });
        }
        rows
    }
}

/// The width the default listing keeps to.
pub const LISTING_WIDTH: usize = 100;

impl StepOutcome {
    /// The default listing, at most [`LISTING_WIDTH`] columns: per
    /// operation its rows, numbered from 0 (the viewer's `#opN.iM`), one
    /// line when both sides ran the same instruction with the same effects
    /// (`both`), else a `run.s` line and a `port` line. Each line holds the
    /// label, the AT&T text and the registers after it (`:=` written, `=`
    /// read; wrapped under the instruction when the line would be too
    /// long). Rows of the pairing table are marked `~` and not compared;
    /// compared rows that differ, `!=`.
    pub fn listing(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        for op in &self.operations {
            let line = op
                .line
                .as_deref()
                .map_or(String::new(), |l| format!(" ({l})"));
            let _ = writeln!(out, "op {}{line}: {}", op.number, op.call);
            let rows = op.rows();
            if rows.is_empty() {
                let _ = writeln!(out, "     0 both  (no walk instruction)");
            }
            for (number, row) in rows.iter().enumerate() {
                let same = match (row.original, row.port) {
                    (Some(l), Some(r)) => {
                        l.label == r.label && l.shown == r.shown && l.effects() == r.effects()
                    }
                    _ => false,
                };
                let sides: Vec<(&str, &Executed)> = if same {
                    row.original.map(|e| ("both", e)).into_iter().collect()
                } else {
                    [("run.s", row.original), ("port", row.port)]
                        .into_iter()
                        .filter_map(|(side, e)| Some((side, e?)))
                        .collect()
                };
                for (at, (side, e)) in sides.into_iter().enumerate() {
                    let head = if at == 0 {
                        format!("{}{number:>4}", row.mark.marker())
                    } else {
                        String::new()
                    };
                    let instruction =
                        format!("{head:<6} {side:<5} {:<20} {:<28}", e.label, e.shown);
                    let effects = e.effects();
                    if instruction.chars().count() + 1 + effects.chars().count() <= LISTING_WIDTH {
                        let _ = writeln!(out, "{}", format!("{instruction} {effects}").trim_end());
                    } else {
                        let _ = writeln!(out, "{}", instruction.trim_end());
                        for part in wrap(&effects, LISTING_WIDTH - 13) {
                            let _ = writeln!(out, "{:13}{part}", "");
                        }
                    }
                }
            }
        }
        out.push_str("~ = pairing table, shown and not compared:\n");
        for row in &pairing::PAIRING {
            let _ = writeln!(out, "~ run.s: {}", row.original);
            let _ = writeln!(out, "  port:  {}", row.port);
            for (at, part) in wrap(row.reason, LISTING_WIDTH - 9).into_iter().enumerate() {
                let _ = writeln!(out, "  {:<6} {part}", if at == 0 { "why:" } else { "" });
            }
        }
        out
    }

    /// The wide listing (`--wide`): per operation, run.s on the left and the
    /// port on the right, one instruction a line (label, AT&T text,
    /// registers after it: `:=` written, `=` read). Lines of the pairing
    /// table are marked `~` and not compared; compared lines that differ,
    /// `!=`.
    pub fn side_by_side(&self) -> String {
        use std::fmt::Write;
        let cell = |e: Option<&Executed>| -> String {
            e.map_or_else(String::new, |e| {
                format!("{:<20} {:<28} {}", e.label, e.shown, e.effects())
            })
        };
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let mut heads: Vec<(usize, String)> = Vec::new();
        for op in &self.operations {
            let line = op
                .line
                .as_deref()
                .map_or(String::new(), |l| format!(" ({l})"));
            heads.push((rows.len(), format!("op {}{line}: {}", op.number, op.call)));
            let op_rows = op.rows();
            if op_rows.is_empty() {
                let none = "(no walk instruction)".to_string();
                rows.push(("  ".to_string(), none.clone(), none));
            }
            for row in op_rows {
                rows.push((
                    row.mark.marker().to_string(),
                    cell(row.original),
                    cell(row.port),
                ));
            }
        }
        let width = rows
            .iter()
            .map(|r| r.1.chars().count())
            .chain(["run.s".len()])
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let mut heads = heads.into_iter().peekable();
        for (at, (marker, left, right)) in rows.iter().enumerate() {
            while let Some((_, head)) = heads.next_if(|(row, _)| *row == at) {
                let _ = writeln!(out, "{head}");
                let _ = writeln!(out, "   {:<width$} | port", "run.s");
            }
            let line = format!("{marker} {left:<width$} | {right}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out.push_str("~ = pairing table, shown and not compared:\n");
        out.push_str(&pairing_table());
        out
    }
}

/// `text` in lines of at most `width` characters, broken at spaces (a
/// longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The pairing table as text.
pub fn pairing_table() -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for row in &pairing::PAIRING {
        let _ = writeln!(
            out,
            "  {:<43} | {:<36} | {}",
            row.original, row.port, row.reason
        );
    }
    out
}
