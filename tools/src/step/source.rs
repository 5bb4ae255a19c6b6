//! The source lines behind the recorded instructions: run.s's instruction
//! lines under each label, and the port's `asm!` lines in `src/walk.rs`,
//! each with its comment (the comment lines just above it and the one after
//! it on the same line).
//!
//! Both files are compiled into this crate, so a line shown is the line of
//! the sources this binary was built from.

/// `asm/run.s`, as built into this binary.
pub const RUN_S: &str = include_str!("../../../asm/run.s");
/// `src/walk.rs` (the port's `asm!` blocks), as built into this binary.
pub const WALK_RS: &str = include_str!("../../../src/walk.rs");

/// One instruction line of a source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    /// `run.s` or `walk.rs`.
    pub file: &'static str,
    /// 1-based line number.
    pub line: usize,
    /// The instruction as written (`movq %rcx, %r8`, `"je 3f",`), trimmed,
    /// without its comment.
    pub code: String,
    /// The comment above it and on its line, joined by ` / ` (empty if
    /// none).
    pub comment: String,
}

/// The instruction lines of run.s's `label`, from the label to the next one,
/// in order.
pub fn run_s_label(label: &str) -> Vec<SourceLine> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut comments: Vec<String> = Vec::new();
    for (number, line) in RUN_S.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_suffix(':') {
            inside = name == label;
            comments.clear();
            continue;
        }
        if !inside {
            continue;
        }
        if trimmed.is_empty() {
            comments.clear();
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            comments.push(comment.trim().to_string());
            continue;
        }
        if trimmed.starts_with('.') {
            continue;
        }
        let (code, inline) = match trimmed.split_once('#') {
            Some((code, comment)) => (code.trim(), Some(comment.trim().to_string())),
            None => (trimmed, None),
        };
        comments.extend(inline);
        out.push(SourceLine {
            file: "run.s",
            line: number + 1,
            code: code.to_string(),
            comment: comments.join(" / "),
        });
        comments.clear();
    }
    out
}

/// The instruction lines of each `asm!` block of `src/walk.rs`, in the
/// order of the file: the quoted strings that are not labels (`"2:"`).
pub fn walk_asm_blocks() -> Vec<Vec<SourceLine>> {
    asm_blocks(WALK_RS)
}

/// The instruction lines of each `asm!` block of the Rust source `text`.
fn asm_blocks(text: &str) -> Vec<Vec<SourceLine>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<SourceLine>> = None;
    let mut comments: Vec<String> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("asm!(") {
            current = Some(Vec::new());
            comments.clear();
            continue;
        }
        let Some(block) = current.as_mut() else {
            continue;
        };
        if trimmed.starts_with(");") {
            blocks.extend(current.take());
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix("//") {
            let comment = comment.trim();
            if !comment.starts_with("ANCHOR") {
                comments.push(comment.to_string());
            }
            continue;
        }
        let Some(rest) = trimmed.strip_prefix('"') else {
            continue;
        };
        let Some((code, after)) = rest.split_once('"') else {
            continue;
        };
        if code.ends_with(':') {
            comments.clear();
            continue;
        }
        if let Some((_, inline)) = after.split_once("//") {
            comments.push(inline.trim().to_string());
        }
        block.push(SourceLine {
            file: "walk.rs",
            line: number + 1,
            code: format!("\"{code}\""),
            comment: comments.join(" / "),
        });
        comments.clear();
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_s_lines_carry_their_comments() {
        let move_break = run_s_label("allocate_move_break");
        assert_eq!(move_break[0].code, "movq %rcx, %r8");
        assert_eq!(
            move_break[0].comment,
            "old break is saved in %r8 to return to user"
        );
        assert_eq!(move_break[5].code, "syscall");
        assert_eq!(move_break[6].code, "movq $1, HDR_IN_USE_OFFSET(%r8)");
        assert!(move_break[6].comment.ends_with("mark it as in use"));
        assert_eq!(move_break.last().map(|l| l.code.as_str()), Some("ret"));
        assert_eq!(run_s_label("try_next_block").len(), 2);
    }

    #[test]
    fn asm_lines_carry_their_comments_and_skip_labels() {
        let text = r#"
        // not in a block
        asm!(
            // allocate_loop:
            "2:",
            // if we have reached the end of memory
            "cmpq %rsi, %rcx",
            "je 3f",                                // (allocate_move_break: done in Rust)
            // ANCHOR: try_next_block
            "3:",
            "xorl %eax, %eax",
            in("rcx") memory_end,
        );
        asm!(
            "movq $0, {pool}(%rsi)",
        );
"#;
        let blocks = asm_blocks(text);
        let codes: Vec<Vec<&str>> = blocks
            .iter()
            .map(|b| b.iter().map(|l| l.code.as_str()).collect())
            .collect();
        assert_eq!(
            codes,
            [
                vec!["\"cmpq %rsi, %rcx\"", "\"je 3f\"", "\"xorl %eax, %eax\""],
                vec!["\"movq $0, {pool}(%rsi)\""],
            ]
        );
        assert_eq!(blocks[0][0].comment, "if we have reached the end of memory");
        assert_eq!(blocks[0][0].line, 7);
        assert_eq!(blocks[0][1].comment, "(allocate_move_break: done in Rust)");
        assert_eq!(blocks[0][2].comment, "");
        assert_eq!(blocks[0][2].file, "walk.rs");
    }
}
