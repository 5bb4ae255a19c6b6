//! Which run.s instruction each executed instruction is, on both sides, and
//! the pairing table of the few instructions that exist on one side only.
//!
//! The original: run.s's labels are symbols of the linked driver (gas keeps
//! them as local symbols), so each label's instructions are decoded from its
//! address to the next run.s label.
//!
//! The port: its `asm!` blocks are inlined into Rust functions and have no
//! symbols. Each block is found by its instruction sequence, which is
//! run.s's labels with the port-only instructions of [`PAIRING`] in their
//! places, searched for in the whole decoded `.text` of the linked driver;
//! every copy the compiler made is found. A candidate must also keep every
//! jump inside the block (targets between its first instruction and its end),
//! and one conditional jump may differ in its condition (then a note says so,
//! and `--compare` shows whether it matters): a mutated condition is a
//! difference to show in the run, not a block that vanished.

use std::collections::HashMap;

use crate::disasm::{CHECKED_LABELS, Part};

use super::StepError;
use super::decode::{Decoded, decode, decode_raw, describe_all};
use super::elf::Executable;
use super::source::{SourceLine, run_s_label, walk_asm_blocks};

/// One row of the pairing table: an instruction that one side executes and
/// the other has no counterpart for. Shown in the side-by-side listing, never
/// compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairingRow {
    /// The run.s label and instruction (or `-` when run.s has none).
    pub original: &'static str,
    /// The port's instruction (or `-`).
    pub port: &'static str,
    /// Why.
    pub reason: &'static str,
}

/// The pairing table.
pub const PAIRING: [PairingRow; 6] = [
    PairingRow {
        original: "allocate_loop: ret",
        port: "jmp 5f (to the end of the asm block)",
        reason: "an asm! block cannot return from the function around it; Rust returns %rax",
    },
    PairingRow {
        original: "allocate_move_break: ret",
        port: "-",
        reason: "the block ends and falls through to Rust, which returns",
    },
    PairingRow {
        original: "deallocate: ret",
        port: "-",
        reason: "the block ends and falls through to Rust, which returns",
    },
    PairingRow {
        original: "-",
        port: "3: xorl %eax, %eax",
        reason: "reached memory_end: the block returns null and Rust moves the break \
                 (run.s's je goes straight to allocate_move_break)",
    },
    PairingRow {
        original: "deallocate_pool_loop: cmpq, je (empty heap)",
        port: "-",
        reason: "deallocate_pool before the first allocate: run.s walks from memory_start = \
                 memory_end = 0; the port has no segment and runs no walk",
    },
    PairingRow {
        original: "allocate_move_break: movq %rcx, %r8 ... syscall",
        port: "-",
        reason: "moving the break is Rust code in the port (src/heap/growth.rs), which writes \
                 the new header only after the break really moved; its asm block starts at the \
                 header stores",
    },
];

const ROW_LOOP_RET: usize = 0;
const ROW_MOVE_BREAK_RET: usize = 1;
const ROW_DEALLOCATE_RET: usize = 2;
/// The row of the port's `xorl %eax, %eax` (its `%rax` is a null, not a
/// pointer).
pub const ROW_END_XOR: usize = 3;
/// The row of run.s's pool walk over the empty heap.
pub const ROW_EMPTY_HEAP: usize = 4;
/// The row of run.s's break move (`movq %rcx, %r8` through `syscall`).
pub const ROW_BREAK_MOVE: usize = 5;

/// Where an executed instruction belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The `index`-th instruction of run.s's `label` (counted from the
    /// label, or from its `syscall` for `allocate_move_break`): compared.
    Label {
        /// The run.s label.
        label: &'static str,
        /// The instruction's position in it.
        index: usize,
    },
    /// A row of [`PAIRING`]: shown, not compared.
    Unpaired(usize),
}

/// One instruction of a recorded range.
#[derive(Clone, Debug)]
pub struct Site {
    /// Where it belongs.
    pub slot: Slot,
    /// The run.s label it is shown under.
    pub label: &'static str,
    /// The decoded instruction.
    pub decoded: Decoded,
    /// For a jump: the name of where it goes.
    pub target_name: Option<String>,
    /// The source line it was assembled from (run.s's line on the
    /// original's side, the `asm!` line of `src/walk.rs` on the port's; none
    /// for the port's `jmp` to the block's end when the sources do not line
    /// up).
    pub source: Option<SourceLine>,
}

/// The entry points of the three C functions, where an operation begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// `allocate(pool, size)`.
    Allocate,
    /// `deallocate(ptr)`.
    Deallocate,
    /// `deallocate_pool(pool)`.
    DeallocatePool,
}

/// What the tracer needs to know about one driver executable.
#[derive(Clone, Debug)]
pub struct Map {
    /// Every instruction to record, by link-time address.
    pub sites: HashMap<u64, Site>,
    /// Where the recorded ranges are entered from outside (breakpoints).
    pub walk_starts: Vec<u64>,
    /// The three C functions' entry points (breakpoints).
    pub entries: Vec<(u64, Entry)>,
    /// Where the first instruction of `allocate_loop` and of
    /// `deallocate_pool_loop` is, on this side (the walk picture and the
    /// viewer read the headers there).
    pub walk_loop_starts: Vec<u64>,
    /// The address of trace.c's `heap0` (the break at the start of main).
    pub heap0: u64,
    /// Things worth saying about the match (a changed jump condition).
    pub notes: Vec<String>,
    /// The executable's link-time entry point (for the load bias).
    pub link_entry: u64,
    /// Whether this is the original's driver (run.s), not the port's.
    pub original: bool,
}

/// All of run.s's labels, to find where each one ends.
const RUN_S_LABELS: [&str; 11] = [
    "allocate_init",
    "allocate_move_break",
    "allocate",
    "allocate_continue",
    "allocate_loop",
    "try_next_block",
    "deallocate",
    "deallocate_pool",
    "deallocate_pool_loop",
    "deallocate_from_pool",
    "deallocate_loop_complete",
];

fn missing(path: &std::path::Path, what: String) -> StepError {
    StepError::Executable {
        path: path.to_path_buf(),
        message: what,
    }
}

/// The three C functions' entry points, and the address of trace.c's `heap0`.
type Common = (Vec<(u64, Entry)>, u64);

fn common(exe: &Executable, path: &std::path::Path) -> Result<Common, StepError> {
    let mut entries = Vec::new();
    for (name, entry) in [
        ("allocate", Entry::Allocate),
        ("deallocate", Entry::Deallocate),
        ("deallocate_pool", Entry::DeallocatePool),
    ] {
        let address = exe
            .symbol(name)
            .ok_or_else(|| missing(path, format!("no symbol {name}")))?;
        entries.push((address, entry));
    }
    let heap0 = exe.symbol("heap0").ok_or_else(|| {
        missing(
            path,
            "no symbol heap0 (is this asm/trace.c's driver?)".to_string(),
        )
    })?;
    Ok((entries, heap0))
}

/// One checked run.s label in the original driver.
struct OriginalPart {
    label: &'static str,
    /// The instructions before the compared part (`allocate_move_break`'s
    /// break move, through its `syscall`), recorded but not compared.
    before: Vec<Decoded>,
    /// The compared part.
    instructions: Vec<Decoded>,
}

/// The recorded part of each checked run.s label in the original driver.
fn original_parts(
    exe: &Executable,
    path: &std::path::Path,
) -> Result<Vec<OriginalPart>, StepError> {
    let addresses: Vec<(&str, u64)> = RUN_S_LABELS
        .iter()
        .filter_map(|&name| Some((name, exe.symbol(name)?)))
        .collect();
    let mut parts = Vec::new();
    for &(label, part) in &CHECKED_LABELS {
        let start = exe
            .symbol(label)
            .ok_or_else(|| missing(path, format!("no run.s label {label} in the symbol table")))?;
        let end = addresses
            .iter()
            .map(|&(_, a)| a)
            .filter(|&a| a > start)
            .min()
            .ok_or_else(|| missing(path, format!("no run.s label after {label}")))?;
        let bytes = exe
            .code(start, end)
            .ok_or_else(|| missing(path, format!("{label} is not in .text")))?;
        let mut instructions = decode(bytes, start);
        let mut before = Vec::new();
        if part == Part::AfterSyscall {
            let at = instructions
                .iter()
                .position(|i| i.text == "syscall")
                .ok_or_else(|| missing(path, format!("no syscall in {label}")))?;
            before = instructions.drain(..=at).collect();
        }
        parts.push(OriginalPart {
            label,
            before,
            instructions,
        });
    }
    Ok(parts)
}

fn unpaired_row_of_return(label: &str) -> Option<usize> {
    match label {
        "allocate_loop" => Some(ROW_LOOP_RET),
        "allocate_move_break" => Some(ROW_MOVE_BREAK_RET),
        "deallocate" => Some(ROW_DEALLOCATE_RET),
        _ => None,
    }
}

/// The recorded instructions of one driver, gathered range by range.
#[derive(Default)]
struct Sites {
    sites: HashMap<u64, Site>,
    walk_starts: Vec<u64>,
    walk_loop_starts: Vec<u64>,
}

impl Sites {
    /// A recorded range of `label` starts at `address`.
    fn range(&mut self, label: &str, address: u64) {
        self.walk_starts.push(address);
        if label == "allocate_loop" || label == "deallocate_pool_loop" {
            self.walk_loop_starts.push(address);
        }
    }

    fn into_map(self, exe: &Executable, common: Common, notes: Vec<String>, original: bool) -> Map {
        let (entries, heap0) = common;
        Map {
            sites: self.sites,
            walk_starts: self.walk_starts,
            entries,
            walk_loop_starts: self.walk_loop_starts,
            heap0,
            notes,
            link_entry: exe.entry,
            original,
        }
    }
}

/// The map of the original driver (`asm/trace.c` + run.s).
///
/// # Errors
/// [`StepError::Executable`] if a symbol or label is missing.
pub fn original_map(exe: &Executable, path: &std::path::Path) -> Result<Map, StepError> {
    let common = common(exe, path)?;
    let parts = original_parts(exe, path)?;
    let label_at: HashMap<u64, &str> = RUN_S_LABELS
        .iter()
        .filter_map(|&name| Some((exe.symbol(name)?, name)))
        .collect();
    let mut sites = Sites::default();
    for mut part in parts {
        let label = part.label;
        let lines = run_s_label(label);
        // The source lines must be the decoded instructions, one for one.
        let lines_fit = lines.len() == part.before.len() + part.instructions.len();
        if let Some(first) = part.before.first().or(part.instructions.first()) {
            sites.range(label, first.address);
        }
        let skipped = part.before.len();
        // run.s's data words by name, not by their link-time address.
        for decoded in &mut part.before {
            for name in ["memory_start", "memory_end"] {
                if let Some(address) = exe.symbol(name) {
                    decoded.text = decoded.text.replace(&address.to_string(), name);
                }
            }
        }
        let all = part.before.into_iter().map(|d| (None, d));
        let compared = part
            .instructions
            .into_iter()
            .enumerate()
            .map(|(i, d)| (Some(i), d));
        for (position, (index, decoded)) in all.chain(compared).enumerate() {
            let slot = match (index, decoded.is_return, unpaired_row_of_return(label)) {
                (None, _, _) => Slot::Unpaired(ROW_BREAK_MOVE),
                (Some(_), true, Some(row)) => Slot::Unpaired(row),
                (Some(index), _, _) => Slot::Label { label, index },
            };
            debug_assert!(index.is_none_or(|i| i + skipped == position));
            let target_name = decoded.target.map(|t| {
                label_at
                    .get(&t)
                    .map_or_else(|| format!("{t:#x}"), |name| name.to_string())
            });
            let site = Site {
                slot,
                label,
                decoded,
                target_name,
                source: lines_fit.then(|| lines[position].clone()),
            };
            sites.sites.insert(site.decoded.address, site);
        }
    }
    Ok(sites.into_map(exe, common, Vec::new(), true))
}

/// One expected instruction of a port block.
#[derive(Clone, Debug)]
struct Expected {
    slot: Slot,
    label: &'static str,
    text: String,
    mnemonic: iced_x86::Mnemonic,
    conditional: bool,
}

/// The port's four asm blocks, as run.s's parts with the port-only
/// instructions put in.
fn port_blocks(parts: &[OriginalPart]) -> Vec<Vec<Expected>> {
    let part = |name: &str| {
        parts
            .iter()
            .find(|part| part.label == name)
            .map(|part| part.instructions.as_slice())
            .unwrap_or_default()
    };
    let from = |label: &'static str, keep_return: bool| -> Vec<Expected> {
        part(label)
            .iter()
            .enumerate()
            .filter(|(_, d)| keep_return || !d.is_return)
            .map(|(index, d)| Expected {
                slot: Slot::Label { label, index },
                label,
                text: d.text.clone(),
                mnemonic: d.mnemonic,
                conditional: d.conditional,
            })
            .collect()
    };
    let port_only = |row: usize, label: &'static str, text: &str, mnemonic| Expected {
        slot: Slot::Unpaired(row),
        label,
        text: text.to_string(),
        mnemonic,
        conditional: false,
    };
    let mut allocate_loop = from("allocate_loop", false);
    allocate_loop.push(port_only(
        ROW_LOOP_RET,
        "allocate_loop",
        "jmp",
        iced_x86::Mnemonic::Jmp,
    ));
    allocate_loop.extend(from("try_next_block", true));
    allocate_loop.push(port_only(
        ROW_END_XOR,
        "allocate_loop",
        "xorl %eax, %eax",
        iced_x86::Mnemonic::Xor,
    ));
    let mut deallocate_pool_loop = from("deallocate_pool_loop", true);
    deallocate_pool_loop.extend(from("deallocate_from_pool", true));
    vec![
        allocate_loop,
        from("allocate_move_break", false),
        from("deallocate", false),
        deallocate_pool_loop,
    ]
}

/// The map of the port's driver (`asm/trace.c` + `libbrk_pools.a`); needs
/// the original's executable for run.s's instructions.
///
/// # Errors
/// [`StepError::Executable`] if a symbol is missing or an asm block is not
/// found.
pub fn port_map(
    exe: &Executable,
    path: &std::path::Path,
    original: &Executable,
    original_path: &std::path::Path,
) -> Result<Map, StepError> {
    let common = common(exe, path)?;
    let parts = original_parts(original, original_path)?;
    let raw = decode_raw(&exe.text, exe.text_address);
    let mut sites = Sites::default();
    let mut notes = Vec::new();
    // The asm! blocks of src/walk.rs come in the order of port_blocks.
    let asm_lines = walk_asm_blocks();
    for (number, block) in port_blocks(&parts).into_iter().enumerate() {
        let name = block[0].label;
        let lines = asm_lines
            .get(number)
            .filter(|lines| lines.len() == block.len());
        let copies = copies_of(&raw, &block);
        if copies.is_empty() {
            return Err(missing(
                path,
                format!("the port's {name} asm block was not found in its code"),
            ));
        }
        for (window, fit) in copies {
            if let BlockMatch::ConditionChanged(position) = fit {
                notes.push(changed_condition_note(&window, &block, position));
            }
            sites.range(name, window[0].address);
            let end = block_end(&window);
            for (position, (decoded, expected)) in window.iter().zip(&block).enumerate() {
                let site = Site {
                    slot: expected.slot,
                    label: expected.label,
                    decoded: decoded.clone(),
                    target_name: decoded
                        .target
                        .map(|t| port_target_name(t, end, &window, &block)),
                    source: lines.map(|lines| lines[position].clone()),
                };
                sites.sites.insert(decoded.address, site);
            }
        }
    }
    Ok(sites.into_map(exe, common, notes, false))
}

/// Every place in `raw` where the port block `block` stands, described.
fn copies_of(raw: &[iced_x86::Instruction], block: &[Expected]) -> Vec<(Vec<Decoded>, BlockMatch)> {
    let mut copies = Vec::new();
    for at in 0..raw.len().saturating_sub(block.len() - 1) {
        let candidate = &raw[at..at + block.len()];
        // Mnemonics first (cheap), then the formatted text.
        let same_mnemonics = candidate
            .iter()
            .zip(block)
            .all(|(i, e)| i.mnemonic() == e.mnemonic || e.conditional);
        if !same_mnemonics {
            continue;
        }
        let window = describe_all(candidate);
        if let Some(fit) = match_block(&window, block) {
            copies.push((window, fit));
        }
    }
    copies
}

/// One past the last instruction of `window`.
fn block_end(window: &[Decoded]) -> u64 {
    let last = &window[window.len() - 1];
    last.address + last.length
}

/// How a jump target inside a port block is shown: the run.s label (and
/// instruction) it stands for.
fn port_target_name(target: u64, end: u64, window: &[Decoded], block: &[Expected]) -> String {
    if target == end {
        return "(end of the asm block)".to_string();
    }
    let position = window.iter().position(|d| d.address == target);
    match position.map(|p| block[p].slot) {
        Some(Slot::Label { label, index: 0 }) => label.to_string(),
        Some(Slot::Label { label, index }) => format!("{label}+{index}"),
        Some(Slot::Unpaired(_)) => "3f (reached the end)".to_string(),
        None => format!("{target:#x}"),
    }
}

/// The note for a port block whose jump at `position` has another
/// condition than run.s's.
fn changed_condition_note(window: &[Decoded], block: &[Expected], position: usize) -> String {
    format!(
        "the port's {} block at {:#x} has `{}` where run.s has `{}` ({} instruction {})",
        block[0].label,
        window[0].address,
        window[position].text,
        block[position].text,
        block[position].label,
        match block[position].slot {
            Slot::Label { index, .. } => index,
            Slot::Unpaired(_) => position,
        }
    )
}

/// How a window of the port's code matches a port block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockMatch {
    /// Instruction for instruction.
    Exact,
    /// All but the condition of the conditional jump at this position.
    ConditionChanged(usize),
}

/// Blocks shorter than this must match exactly: in a short block, one
/// changed jump could be some other code that happens to look alike.
const MIN_LEN_FOR_CHANGED_CONDITION: usize = 6;

/// Whether `window` is the block `expected`, exactly or with one changed
/// jump condition ([`BlockMatch`]). Every jump must stay inside the block.
fn match_block(window: &[Decoded], expected: &[Expected]) -> Option<BlockMatch> {
    let mut fit = BlockMatch::Exact;
    for (at, (decoded, expected)) in window.iter().zip(expected).enumerate() {
        if decoded.text == expected.text {
            continue;
        }
        let condition_only = decoded.conditional && expected.conditional;
        if !condition_only
            || fit != BlockMatch::Exact
            || window.len() < MIN_LEN_FOR_CHANGED_CONDITION
        {
            return None;
        }
        fit = BlockMatch::ConditionChanged(at);
    }
    let (start, end) = (window[0].address, block_end(window));
    let inside = window
        .iter()
        .filter_map(|d| d.target)
        .all(|t| (start..=end).contains(&t));
    inside.then_some(fit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cmpq %rsi, %rcx; je end; cmpq $0, (%rsi); jne start; cmpq %rdx,
    /// 8(%rsi); jb end` at address 0x1000 (end = 0x1011), with `condition`
    /// as the last jump's opcode (0x72 jb, 0x76 jbe).
    fn window(condition: u8, last_target: u8) -> Vec<Decoded> {
        let bytes = [
            0x48,
            0x39,
            0xf1, // cmpq %rsi, %rcx
            0x74,
            0x0c, // je 0x1011
            0x48,
            0x83,
            0x3e,
            0x00, // cmpq $0, (%rsi)
            0x75,
            0xf5, // jne 0x1000
            0x48,
            0x39,
            0x56,
            0x08, // cmpq %rdx, 8(%rsi)
            condition,
            last_target, // jb/jbe
        ];
        decode(&bytes, 0x1000)
    }

    fn expected(window: &[Decoded]) -> Vec<Expected> {
        window
            .iter()
            .enumerate()
            .map(|(index, d)| Expected {
                slot: Slot::Label {
                    label: "allocate_loop",
                    index,
                },
                label: "allocate_loop",
                text: d.text.clone(),
                mnemonic: d.mnemonic,
                conditional: d.conditional,
            })
            .collect()
    }

    #[test]
    fn a_block_matches_exactly_or_with_one_changed_condition() {
        let original = window(0x72, 0x00);
        assert_eq!(original[5].text, "jb");
        assert_eq!(original[0].text, "cmpq %rsi, %rcx");
        let wanted = expected(&original);
        assert_eq!(match_block(&original, &wanted), Some(BlockMatch::Exact));
        // jb -> jbe: found, and the changed position is named.
        assert_eq!(
            match_block(&window(0x76, 0x00), &wanted),
            Some(BlockMatch::ConditionChanged(5))
        );
        // A jump leaving the block (jb 0x1011 + 0x10) is not the block.
        assert_eq!(match_block(&window(0x72, 0x10), &wanted), None);
        // Two changed conditions are not the block either.
        let mut two = window(0x76, 0x00);
        two[1] = window(0x75, 0x00)[3].clone();
        two[1].target = Some(0x1011);
        assert_eq!(match_block(&two, &wanted), None);
        // A short block (fewer than six instructions) must match exactly.
        assert_eq!(
            match_block(&window(0x76, 0x00)[4..], &expected(&original[4..])),
            None
        );
    }
}
