//! The default listing of `step`: both sides, one instruction a line, and
//! the pairing table.

use super::pairing::{self, Slot};
use super::{Executed, StepOutcome};

impl StepOutcome {
    /// The default listing: per operation, run.s on the left and the port
    /// on the right, one instruction a line (label, AT&T text, registers
    /// after it: `:=` written, `=` read). Lines of the pairing table are
    /// marked `~` and not compared; compared lines that differ, `!=`.
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
            let (o, p) = (&op.original, &op.port);
            if o.is_empty() && p.is_empty() {
                let none = "(no walk instruction)".to_string();
                rows.push(("  ".to_string(), none.clone(), none));
            }
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
                let marker = match (left, right) {
                    (Some(l), _) | (_, Some(l)) if !l.compared() => "~ ",
                    (Some(l), Some(r))
                        if l.slot == r.slot
                            && l.touched == r.touched
                            && l.taken == r.taken
                            && l.text == r.text =>
                    {
                        "  "
                    }
                    _ => "!=",
                };
                rows.push((marker.to_string(), cell(left), cell(right)));
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
