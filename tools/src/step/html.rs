//! `step --html`: one self-contained page to scrub both machines through a
//! script, instruction by instruction.
//!
//! The page is the viewer (`viewer.html`, `viewer.css`, `viewer.js`, inline)
//! and the run as compact JSON: per operation its rows ([`Operation::rows`],
//! numbered as in the listing), each side's instruction as an index into a
//! table of distinct instructions with the registers it read or wrote, and
//! the heap's headers before the walk. The script renders only the current
//! operation, so a long script's page stays small and opens fast.
//!
//! Everything in it is an offset or a number: no address, time or
//! toolchain detail, so the same script gives the same page byte for byte.

use std::collections::HashMap;

use serde_json::{Value as Json, json};

use super::decode::{CONTRACT, Reg};
use super::pairing::{PAIRING, Slot};
use super::{Comparison, Executed, Mark, Operation, StepOutcome};
use crate::offset::Offset;

const PAGE: &str = include_str!("viewer.html");
const STYLE: &str = include_str!("viewer.css");
const SCRIPT: &str = include_str!("viewer.js");

/// The page for `outcome`, titled `title` (the script's file name).
pub fn render(outcome: &StepOutcome, title: &str) -> String {
    let data = data(outcome, title);
    // `</` inside a script element would end it.
    let data = data.to_string().replace("</", "<\\/");
    // The data last: nothing is looked for inside it.
    PAGE.replace("{{title}}", &escape(title))
        .replace("{{style}}", STYLE)
        .replace("{{script}}", SCRIPT)
        .replace("{{data}}", &data)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Distinct instructions (label, text, source, slot), each stored once.
#[derive(Default)]
struct Code {
    index: HashMap<String, usize>,
    entries: Vec<Json>,
}

impl Code {
    fn of(&mut self, e: &Executed) -> usize {
        let slot = match e.slot {
            Slot::Label { label, index } => format!("{label}:{index}"),
            Slot::Unpaired(row) => format!("~{row}"),
        };
        let source = e
            .source
            .as_ref()
            .map_or(Json::Null, |s| json!([s.file, s.line, s.code, s.comment]));
        let entry = json!([e.label, e.shown, slot, source]);
        let key = entry.to_string();
        if let Some(&at) = self.index.get(&key) {
            return at;
        }
        self.entries.push(entry);
        self.index.insert(key.clone(), self.entries.len() - 1);
        self.entries.len() - 1
    }
}

/// One executed instruction: `[code, [[register, value, written]…],
/// flags, taken]` (taken: 1, 0, or null when not a jump).
fn executed(code: &mut Code, e: &Executed) -> Json {
    let registers: Vec<Json> = e
        .touched
        .iter()
        .map(|r| {
            let at = CONTRACT.iter().position(|&c| c == r.reg).unwrap_or(0);
            json!([at, r.value.to_string(), u8::from(r.written)])
        })
        .collect();
    let flags: Vec<String> = e
        .flags
        .iter()
        .map(|(flag, set)| format!("{}={}", flag.name(), u8::from(*set)))
        .collect();
    json!([
        code.of(e),
        registers,
        flags.join(" "),
        e.taken.map(u8::from)
    ])
}

fn mark(mark: Mark) -> &'static str {
    match mark {
        Mark::Same => "=",
        Mark::Differs => "!",
        Mark::Unpaired => "~",
    }
}

/// The heap before the walk: `{end, blocks: [[offset, in_use, size,
/// pool]…], truncated}`, or null when none was read or there is no heap
/// yet.
fn heap(op: &Operation) -> Json {
    let Some(headers) = &op.headers else {
        return Json::Null;
    };
    if headers.start == 0 {
        return Json::Null;
    }
    let offset = |address: u64| i128::from(address) - i128::from(op.heap0);
    let blocks: Vec<Json> = headers
        .blocks
        .iter()
        .map(|b| {
            json!([
                i64::try_from(offset(b.address)).unwrap_or(i64::MAX),
                b.words[0],
                b.words[1],
                b.words[2]
            ])
        })
        .collect();
    json!({
        "start": Offset(offset(headers.start)).to_string(),
        "end": Offset(offset(headers.end)).to_string(),
        "blocks": blocks,
        "truncated": headers.truncated,
    })
}

/// The registers run.s's contract gives the walk on entry (`allocate`: the
/// pool, the size with the header, memory_start and memory_end;
/// `deallocate`: the pointer; `deallocate_pool`: the pool, memory_start and
/// memory_end), as the side's first instruction left them:
/// `[[register, value]…]`.
fn entry(call: &str, executed: &[Executed]) -> Json {
    let inputs: &[Reg] = if call.starts_with("allocate(") {
        &[Reg::R10, Reg::Rdx, Reg::Rsi, Reg::Rcx]
    } else if call.starts_with("deallocate_pool(") {
        &[Reg::Rdi, Reg::Rsi, Reg::Rcx]
    } else {
        &[Reg::Rdi]
    };
    let Some(first) = executed.first() else {
        return json!([]);
    };
    let values: Vec<Json> = first
        .all
        .iter()
        .filter(|r| inputs.contains(&r.reg))
        // A register the first instruction writes had another value before.
        .filter(|r| !first.touched.iter().any(|t| t.reg == r.reg && t.written))
        .map(|r| {
            let at = CONTRACT.iter().position(|&c| c == r.reg).unwrap_or(0);
            json!([at, r.value.to_string()])
        })
        .collect();
    Json::Array(values)
}

/// The operation and row the page opens on without a fragment: the first
/// difference `--compare` finds, else the first row.
fn opening(outcome: &StepOutcome) -> (usize, usize) {
    let Comparison::Differs(difference) = outcome.compare() else {
        return (0, 0);
    };
    let Some(op) = outcome
        .operations
        .iter()
        .find(|op| op.number == difference.operation)
    else {
        return (0, 0);
    };
    // The position-th compared pair, or the first row marked as differing.
    let mut compared = 0;
    for (at, row) in op.rows().iter().enumerate() {
        let is_compared = row.original.is_some_and(Executed::compared)
            || row.port.is_some_and(Executed::compared);
        compared += usize::from(is_compared);
        if compared == difference.position || row.mark == Mark::Differs {
            return (op.number, at);
        }
    }
    (op.number, 0)
}

fn data(outcome: &StepOutcome, title: &str) -> Json {
    let mut code = Code::default();
    let operations: Vec<Json> = outcome
        .operations
        .iter()
        .map(|op| {
            let rows: Vec<Json> = op
                .rows()
                .iter()
                .map(|row| {
                    json!([
                        mark(row.mark),
                        row.original.map(|e| executed(&mut code, e)),
                        row.port.map(|e| executed(&mut code, e)),
                    ])
                })
                .collect();
            json!({
                "call": op.call,
                "line": op.line,
                "heap": heap(op),
                "entry": [entry(&op.call, &op.original), entry(&op.call, &op.port)],
                "rows": rows,
            })
        })
        .collect();
    let pairing: Vec<Json> = PAIRING
        .iter()
        .map(|row| json!([row.original, row.port, row.reason]))
        .collect();
    let comparison = outcome.compare();
    let (open_op, open_row) = opening(outcome);
    json!({
        "title": title,
        "registers": CONTRACT.iter().map(|r| r.name()).collect::<Vec<_>>(),
        "pairing": pairing,
        "notes": outcome.notes,
        "verdict": comparison.to_string().lines().next().unwrap_or_default(),
        "differs": matches!(comparison, Comparison::Differs(_)),
        "open": [open_op, open_row],
        "code": code.entries,
        "ops": operations,
    })
}
