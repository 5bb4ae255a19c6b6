//! The machine-code proof: find each run.s label's instructions in the
//! port's compiled code.
//!
//! Both sides are read from `objdump -d` (AT&T syntax). The original's
//! instructions are grouped by label (gas keeps run.s's labels as local
//! symbols in the object file); the port's are one long stream, since its
//! `asm!` blocks are inlined wherever the compiler likes. A label matches when
//! its instructions appear in the port's stream one after the other, with two
//! allowances that the port's structure explains:
//!
//! * jump and call targets are ignored (addresses differ, and run.s's named
//!   labels become numeric local labels);
//! * a `ret` that ends a label is not compared: an `asm!` block cannot return
//!   from the Rust function around it, so it falls through or jumps to its
//!   own end, and the Rust code returns.
//!
//! Labels that are Rust code in the port (`allocate`, `allocate_init`,
//! `allocate_continue`, `deallocate_pool`) and the break-moving half of
//! `allocate_move_break` are not searched for; neither is
//! `deallocate_loop_complete`, which is in the `asm!` block (its `3:` label)
//! but holds nothing except the `ret` that is not compared. See
//! [`CHECKED_LABELS`].

use std::io;
use std::path::Path;
use std::process::Command;

/// One instruction, normalised: mnemonic and operands separated by one space,
/// jump targets dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// Mnemonic as objdump prints it (`cmpq`, `jb`, `mov`, …).
    pub mnemonic: String,
    /// Operands as objdump prints them, empty for jumps and `ret`.
    pub operands: String,
}

impl Instruction {
    fn parse(text: &str) -> Option<Instruction> {
        let text = text.split('#').next()?.trim();
        let (mnemonic, operands) = match text.split_once(char::is_whitespace) {
            Some((m, o)) => (m, o.trim()),
            None => (text, ""),
        };
        if mnemonic.is_empty() {
            return None;
        }
        let operands = if is_branch(mnemonic) { "" } else { operands };
        Some(Instruction {
            mnemonic: mnemonic.to_string(),
            operands: operands.to_string(),
        })
    }
}

impl std::fmt::Display for Instruction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.operands.is_empty() {
            f.write_str(&self.mnemonic)
        } else {
            write!(f, "{:<6} {}", self.mnemonic, self.operands)
        }
    }
}

fn is_branch(mnemonic: &str) -> bool {
    mnemonic.starts_with('j') || mnemonic.starts_with("call")
}

/// The instructions under one symbol of an `objdump -d` listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The symbol (`allocate_loop`).
    pub name: String,
    /// Its instructions, in order.
    pub instructions: Vec<Instruction>,
}

/// Splits an `objdump -d --no-show-raw-insn` listing into its symbols.
pub fn parse_objdump(listing: &str) -> Vec<Label> {
    let mut labels: Vec<Label> = Vec::new();
    for line in listing.lines() {
        // "0000000000401136 <allocate_loop>:"
        if let Some(name) = line
            .strip_suffix(">:")
            .and_then(|l| l.split_once(" <"))
            .map(|(_, name)| name)
        {
            labels.push(Label {
                name: name.to_string(),
                instructions: Vec::new(),
            });
            continue;
        }
        // "  4011ce:\tcmp    %rsi,%rcx"
        let Some((address, text)) = line.split_once(":\t") else {
            continue;
        };
        if address.trim().chars().all(|c| c.is_ascii_hexdigit())
            && let (Some(label), Some(instruction)) = (labels.last_mut(), Instruction::parse(text))
        {
            label.instructions.push(instruction);
        }
    }
    labels
}

/// What of a run.s label the port must contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Every instruction of the label.
    Whole,
    /// The instructions after the label's `syscall` (the header stores of
    /// `allocate_move_break`; the break move before it is Rust code).
    AfterSyscall,
}

/// The run.s labels whose instructions the port's `asm!` blocks reproduce.
pub const CHECKED_LABELS: [(&str, Part); 6] = [
    ("allocate_move_break", Part::AfterSyscall),
    ("allocate_loop", Part::Whole),
    ("try_next_block", Part::Whole),
    ("deallocate", Part::Whole),
    ("deallocate_pool_loop", Part::Whole),
    ("deallocate_from_pool", Part::Whole),
];

/// The outcome for one label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelMatch {
    /// The run.s label.
    pub label: &'static str,
    /// Its instructions in the original (the part that is compared).
    pub original: Vec<Instruction>,
    /// The port's instructions where the sequence was found (same length as
    /// `original`), or `None` when it was not found.
    pub port: Option<Vec<Instruction>>,
    /// When the sequence was not found: the window of the port's code that
    /// agrees with it on the most instructions (empty if there is none), so
    /// that [`side_by_side`] can show what the compiler produced instead.
    pub closest: Vec<Instruction>,
}

impl LabelMatch {
    /// Whether the port contains the label's sequence.
    pub fn found(&self) -> bool {
        self.port.is_some()
    }
}

/// Compares run.s's object code (`original`, an objdump listing of run.o or
/// of a binary linked with it) with the port's (`port`, any listing that
/// contains the crate's code).
pub fn compare(original: &str, port: &str) -> Vec<LabelMatch> {
    let original = parse_objdump(original);
    let stream: Vec<Instruction> = parse_objdump(port)
        .into_iter()
        .flat_map(|l| l.instructions)
        .collect();
    CHECKED_LABELS
        .iter()
        .map(|&(label, part)| {
            let instructions = original
                .iter()
                .find(|l| l.name == label)
                .map(|l| l.instructions.clone())
                .unwrap_or_default();
            let mut wanted = match part {
                Part::Whole => instructions,
                Part::AfterSyscall => instructions
                    .iter()
                    .position(|i| i.mnemonic == "syscall")
                    .map(|at| instructions[at + 1..].to_vec())
                    .unwrap_or_default(),
            };
            if wanted.last().is_some_and(|i| i.mnemonic == "ret") {
                wanted.pop();
            }
            let port = find(&stream, &wanted).map(|at| stream[at..at + wanted.len()].to_vec());
            let closest = match port {
                Some(_) => Vec::new(),
                None => closest(&stream, &wanted)
                    .map(|at| stream[at..at + wanted.len()].to_vec())
                    .unwrap_or_default(),
            };
            LabelMatch {
                label,
                original: wanted,
                port,
                closest,
            }
        })
        .collect()
}

/// Where `needle` first occurs in `haystack`, under the matching rules in the
/// module docs. An empty needle is never found (a label missing from the
/// original listing must fail the proof, not pass it).
pub fn find(haystack: &[Instruction], needle: &[Instruction]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Where the window of `haystack` that agrees with `needle` on the most
/// positions starts (the first such window; `None` if no window agrees on
/// any instruction).
pub fn closest(haystack: &[Instruction], needle: &[Instruction]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    let score = |window: &[Instruction]| window.iter().zip(needle).filter(|(a, b)| a == b).count();
    let (at, best) =
        haystack
            .windows(needle.len())
            .map(score)
            .enumerate()
            .fold(
                (0, 0),
                |best, (at, s)| if s > best.1 { (at, s) } else { best },
            );
    (best > 0).then_some(at)
}

/// The comparison as two columns, run.s on the left and the port on the
/// right, one block per label. A line whose two sides differ starts with
/// `!=`; when a label was not found, the right column shows the closest
/// window of the port's code ([`LabelMatch::closest`]).
///
/// ```
/// use brk_pools_tools::disasm::{compare, side_by_side};
///
/// let original = "0000000000000000 <deallocate>:\n   0:\tmovq   $0x0,-0x20(%rdi)\n   8:\tmovq   $0x0,-0x10(%rdi)\n  10:\tret\n";
/// let port = "0000000000000000 <f>:\n   0:\tmovq   $0x0,-0x20(%rdi)\n   8:\tmovq   $0x0,-0x8(%rdi)\n";
/// let results = compare(original, port);
/// let text = side_by_side(&results[3..4]);
/// assert!(text.contains("deallocate: NOT FOUND"));
/// assert!(text.contains("!= movq   $0x0,-0x10(%rdi)"));
/// ```
pub fn side_by_side(results: &[LabelMatch]) -> String {
    use std::fmt::Write;
    let width = results
        .iter()
        .flat_map(|r| &r.original)
        .map(|i| i.to_string().chars().count())
        .chain(["run.s".len()])
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (n, result) in results.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let (status, port) = match &result.port {
            Some(port) => ("found", port.as_slice()),
            None if result.closest.is_empty() => ("NOT FOUND", &[][..]),
            None => ("NOT FOUND, closest match shown", result.closest.as_slice()),
        };
        let _ = writeln!(
            out,
            "{}: {status} ({} instructions)",
            result.label,
            result.original.len()
        );
        let _ = writeln!(out, "   {:<width$} | port", "run.s");
        for (at, original) in result.original.iter().enumerate() {
            let ported = port.get(at);
            let marker = if ported == Some(original) { "  " } else { "!=" };
            let right = ported.map_or(String::new(), ToString::to_string);
            let line = format!("{marker} {:<width$} | {right}", original.to_string());
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out
}

/// The Markdown page `docs/machine-code.md`: what the proof compares, how to
/// regenerate the page, and [`side_by_side`] of `results`.
pub fn markdown(results: &[LabelMatch]) -> String {
    let found = results.iter().filter(|r| r.found()).count();
    let mut out = String::from(MARKDOWN_HEAD);
    out.push_str(&format!(
        "\n{found} of {} labels found instruction for instruction.\n\n```text\n",
        results.len()
    ));
    out.push_str(&side_by_side(results));
    out.push_str("```\n");
    out
}

const MARKDOWN_HEAD: &str = "\
# Machine-code proof, side by side

<!-- Generated by `brk_pools_tools::disasm::markdown`; do not edit. Regenerate with
     `UPDATE_DOCS=1 cargo test --test machine_code`
     or `cargo run -- disasm --markdown > docs/machine-code.md`. -->

Left: the instructions under each label of `asm/run.s`, as `objdump -d`
prints them for `gcc -c asm/run.s`. Right: the same number of consecutive
instructions found in the port's compiled code (`libbrk_pools.a`), where the
`asm!` blocks of `src/walk.rs` were inlined. A line marked `!=` differs.

Jump targets are not compared (the addresses differ, and run.s's named labels
are numeric local labels in the port), and a label's final `ret` is not
searched for (an `asm!` block cannot return from the Rust function around
it). So `deallocate_loop_complete`, whose only instruction is that `ret`, is
not listed, although it is in the port's `asm!` block: it is the `3:` label
that ends `walk::deallocate_pool_loop`. The labels that are Rust code in the
port (`allocate`, `allocate_init`, `allocate_continue`, `deallocate_pool`,
and the break move of `allocate_move_break` up to its `syscall`) are not
listed either; the [walkthrough](walkthrough.md) puts them beside their Rust.

`tools/tests/machine_code.rs` fails if a label is not found or if this page is not
what the current build gives.
";

/// Runs `objdump -d --no-show-raw-insn` on a file (object, archive or
/// executable) and returns its listing.
pub fn objdump(path: &Path) -> io::Result<String> {
    let output = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn"])
        .arg(path)
        .output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "objdump -d {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    String::from_utf8(output.stdout).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = "\
00000000004011f2 <try_next_block>:
  4011f2:\tadd    0x8(%rsi),%rsi
  4011f6:\tjmp    4011ce <allocate_loop>

00000000004011f8 <deallocate>:
  4011f8:\tmovq   $0x0,-0x20(%rdi)
  401200:\tmovq   $0x0,-0x10(%rdi)
  401208:\tret
";

    #[test]
    fn parses_labels_and_drops_jump_targets() {
        let labels = parse_objdump(ORIGINAL);
        assert_eq!(labels.len(), 2);
        assert_eq!(labels[0].name, "try_next_block");
        assert_eq!(labels[0].instructions[1].to_string(), "jmp");
        assert_eq!(
            labels[1].instructions[0].to_string(),
            "movq   $0x0,-0x20(%rdi)"
        );
    }

    #[test]
    fn finds_a_sequence_and_rejects_a_changed_operand() {
        let port = "\
0000000000016e82 <x>:
  16e7f:\tnop
  16e80:\tmovq   $0x0,-0x20(%rdi)
  16e88:\tmovq   $0x0,-0x10(%rdi)
  16e90:\tjmp    16e8a <x+0xda>
";
        let original = &parse_objdump(ORIGINAL)[1].instructions[..2];
        let stream = &parse_objdump(port)[0].instructions;
        assert_eq!(find(stream, original), Some(1));
        // A changed offset is a mismatch.
        let broken = port.replace("-0x10(%rdi)", "-0x8(%rdi)");
        assert_eq!(
            find(&parse_objdump(&broken)[0].instructions, original),
            None
        );
        assert_eq!(find(stream, &[]), None);
    }
}
