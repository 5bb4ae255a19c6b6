//! Every code excerpt in the teaching docs is the real source, checked.
//!
//! A fenced block in `docs/*.md` or `README.md` that follows a marker line
//!
//! ```text
//! <!-- excerpt: src/walk.rs#allocate_loop -->
//! ```
//!
//! must equal the region of that file that the marker names:
//!
//! * in a Rust file (or any file but assembly), the lines between
//!   `// ANCHOR: NAME` and `// ANCHOR_END: NAME` (mdBook's convention), with
//!   the common indentation removed and nested marker lines dropped;
//! * in an assembly file (`.s`), which is the original byte for byte and gets
//!   no markers, the label `NAME:` and the lines after it up to the next
//!   label or `.section` directive, without the trailing blank and
//!   comment-only lines (which introduce what follows); or, for a NAME that starts with a dot (`.equ`), every
//!   line of the file that starts with that directive.
//!
//! Lines are compared with trailing whitespace removed (run.s has some, and
//! editors strip it from Markdown). In `docs/*.md`, a `rust`, `assembly`,
//! `asm` or `c` fence without a marker fails the test too, so no unchecked
//! code can creep in; pictures, commands and sketches of changes go in `text`
//! or `sh` fences. (The README's usage examples may stand alone.)
//!
//! When the source changes, the test fails with a diff per excerpt. To take
//! the source's side everywhere, run
//!
//! ```text
//! UPDATE_DOCS=1 cargo test --test walkthrough
//! ```
//!
//! and read the prose around the excerpts that changed.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Languages whose fences must be excerpts.
const CHECKED_LANGUAGES: [&str; 4] = ["rust", "assembly", "asm", "c"];

const MARKER_PREFIX: &str = "<!-- excerpt: ";

/// The region `name` of `file` (a path relative to the crate root).
fn region(file: &str, name: &str) -> Result<String, String> {
    let path = root().join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {file}: {e}"))?;
    if file.ends_with(".s") && name.starts_with('.') {
        directive_lines(&text, name).ok_or_else(|| format!("no `{name}` lines in {file}"))
    } else if file.ends_with(".s") {
        assembly_label(&text, name).ok_or_else(|| format!("no label `{name}:` in {file}"))
    } else {
        anchor(&text, name).ok_or_else(|| {
            format!("no `// ANCHOR: {name}` … `// ANCHOR_END: {name}` region in {file}")
        })
    }
}

fn is_marker(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("// ANCHOR:") || t.starts_with("// ANCHOR_END:")
}

fn anchor(text: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == format!("// ANCHOR: {name}"))?;
    let end = start
        + lines[start..]
            .iter()
            .position(|l| l.trim() == format!("// ANCHOR_END: {name}"))?;
    let body: Vec<&str> = lines[start + 1..end]
        .iter()
        .copied()
        .filter(|l| !is_marker(l))
        .collect();
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    Some(
        body.iter()
            .map(|l| l.get(indent..).unwrap_or("").trim_end())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn is_label(line: &str) -> bool {
    line.trim_end()
        .strip_suffix(':')
        .is_some_and(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

/// Every line of an assembly file that starts with `directive` (`.equ`).
fn directive_lines(text: &str, directive: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(&format!("{directive} ")))
        .map(str::trim_end)
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn assembly_label(text: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_end() == format!("{name}:"))?;
    let mut end = start
        + 1
        + lines[start + 1..]
            .iter()
            .position(|l| is_label(l) || l.trim_start().starts_with(".section"))
            .unwrap_or(lines.len() - start - 1);
    while end > start + 1 {
        let last = lines[end - 1].trim();
        if last.is_empty() || last.starts_with('#') {
            end -= 1;
        } else {
            break;
        }
    }
    Some(
        lines[start..end]
            .iter()
            .map(|l| l.trim_end())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// One fenced block of a Markdown file.
struct Fence {
    /// 1-based line of the opening fence.
    line: usize,
    language: String,
    /// `(file, name)` from the marker before the fence, if any.
    source: Option<(String, String)>,
    /// Line indices (0-based) of the body: `body.0 .. body.1`.
    body: (usize, usize),
}

fn fences(markdown: &str) -> Result<Vec<Fence>, String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut pending: Option<(String, String)> = None;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if let Some(rest) = line.strip_prefix(MARKER_PREFIX) {
            let spec = rest.trim_end().trim_end_matches("-->").trim();
            let (file, name) = spec
                .split_once('#')
                .ok_or_else(|| format!("line {}: marker needs FILE#NAME", i + 1))?;
            pending = Some((file.to_string(), name.to_string()));
        } else if let Some(info) = line.strip_prefix("```") {
            let start = i;
            let close = lines[i + 1..]
                .iter()
                .position(|l| l.trim_start() == "```")
                .ok_or_else(|| format!("line {}: fence is never closed", i + 1))?;
            let end = i + 1 + close;
            out.push(Fence {
                line: start + 1,
                language: info.trim().to_string(),
                source: pending.take(),
                body: (start + 1, end),
            });
            i = end;
        } else if !line.is_empty() && pending.is_some() {
            return Err(format!(
                "line {}: an excerpt marker must be followed by a fenced block",
                i + 1
            ));
        }
        i += 1;
    }
    Ok(out)
}

/// A small line diff (longest common subsequence): `-` lines are only in the
/// doc, `+` lines only in the source.
fn diff(doc: &str, source: &str) -> String {
    let a: Vec<&str> = doc.lines().collect();
    let b: Vec<&str> = source.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("   {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!(" - {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!(" + {}\n", b[j]));
            j += 1;
        }
    }
    out
}

fn normalise(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks (or, with `update`, rewrites) one Markdown file; returns the
/// problems found and the number of excerpts checked.
fn check(path: &Path, update: bool, strict: bool) -> (Vec<String>, usize) {
    let markdown = std::fs::read_to_string(path).unwrap();
    let name = path
        .strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string();
    let fences = match fences(&markdown) {
        Ok(f) => f,
        Err(e) => return (vec![format!("{name}: {e}")], 0),
    };
    let mut lines: Vec<String> = markdown.lines().map(str::to_string).collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    // Back to front, so that rewriting a body keeps earlier line numbers.
    for fence in fences.iter().rev() {
        let Some((file, label)) = &fence.source else {
            let language = fence.language.split([' ', ',']).next().unwrap_or("");
            if strict && CHECKED_LANGUAGES.contains(&language) {
                problems.push(format!(
                    "{name}:{}: ```{} block without an `{MARKER_PREFIX}FILE#NAME -->` marker: \
                     quote real source, or use ```text for illustrations",
                    fence.line, fence.language
                ));
            }
            continue;
        };
        checked += 1;
        let expected = match region(file, label) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{name}:{}: {e}", fence.line));
                continue;
            }
        };
        let actual = normalise(&lines[fence.body.0..fence.body.1].join("\n"));
        if actual != expected {
            if update {
                lines.splice(
                    fence.body.0..fence.body.1,
                    expected.lines().map(str::to_string),
                );
            } else {
                problems.push(format!(
                    "{name}:{}: excerpt of {file}#{label} differs from the source \
                     (- doc, + source):\n{}",
                    fence.line,
                    diff(&actual, &expected)
                ));
            }
        }
    }
    if update {
        let mut text = lines.join("\n");
        text.push('\n');
        if text != markdown {
            std::fs::write(path, text).unwrap();
        }
    }
    (problems, checked)
}

/// The documents to check, and whether each is strict (every code fence an
/// excerpt): the teaching docs are; the README's marked excerpts are checked,
/// but its usage examples may stand alone.
fn documents() -> Vec<(PathBuf, bool)> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect()
        })
        .unwrap_or_default();
    docs.sort();
    let mut all: Vec<(PathBuf, bool)> = docs.into_iter().map(|d| (d, true)).collect();
    all.push((root().join("README.md"), false));
    all
}

#[test]
fn every_excerpt_in_the_docs_is_the_marked_source() {
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (doc, strict) in documents() {
        let (p, n) = check(&doc, update, strict);
        problems.extend(p);
        checked += n;
    }
    assert!(
        problems.is_empty(),
        "{}\n\n{} problem(s). If the source changed on purpose, run \
         `UPDATE_DOCS=1 cargo test --test walkthrough` and reread the prose around \
         the excerpts it rewrites.",
        problems.join("\n\n"),
        problems.len()
    );
    assert!(
        checked >= 20,
        "only {checked} excerpts found: did docs/walkthrough.md lose its markers?"
    );
}

#[test]
fn the_walkthrough_quotes_every_label_of_run_s() {
    let walkthrough = std::fs::read_to_string(root().join("docs/walkthrough.md")).unwrap();
    let run_s = std::fs::read_to_string(root().join("asm/run.s")).unwrap();
    let missing: Vec<&str> = run_s
        .lines()
        .filter(|l| is_label(l))
        .map(|l| l.trim_end().trim_end_matches(':'))
        .filter(|label| !label.starts_with("memory_"))
        .filter(|label| !walkthrough.contains(&format!("{MARKER_PREFIX}asm/run.s#{label} -->")))
        .collect();
    assert!(
        missing.is_empty(),
        "labels of run.s with no excerpt in docs/walkthrough.md: {missing:?}"
    );
}

#[test]
fn regions_and_diffs() {
    let rust = "fn a() {\n    // ANCHOR: x\n    let y = 1;  \n    // ANCHOR: inner\n    \
                let z = 2;\n    // ANCHOR_END: inner\n    // ANCHOR_END: x\n}\n";
    assert_eq!(anchor(rust, "x").unwrap(), "let y = 1;\nlet z = 2;");
    assert_eq!(anchor(rust, "nope"), None);
    let asm = "one:\n    ret\n\n    # about two\n\ntwo:\n    nop \n.section .text\nthree:\n";
    assert_eq!(assembly_label(asm, "one").unwrap(), "one:\n    ret");
    assert_eq!(assembly_label(asm, "two").unwrap(), "two:\n    nop");
    assert_eq!(
        directive_lines(".equ A, 1\nx:\n.equ B, 2 \n", ".equ").unwrap(),
        ".equ A, 1\n.equ B, 2"
    );
    assert_eq!(diff("a\nb\nc", "a\nB\nc"), "   a\n - b\n + B\n   c\n");
    let md =
        "<!-- excerpt: asm/run.s#deallocate -->\n```assembly\nx\n```\n```rust\nfn f(){}\n```\n";
    let f = fences(md).unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(
        f[0].source,
        Some(("asm/run.s".to_string(), "deallocate".to_string()))
    );
    assert_eq!(f[0].body, (2, 3));
    assert_eq!(f[1].source, None);
}

#[test]
fn run_pic_s_is_run_s_with_rip_relative_globals() {
    // examples/global_asm/run_pic.s may differ from asm/run.s only by
    // `memory_start` → `memory_start(%rip)` (and memory_end), the change that
    // lets it link into a position-independent executable.
    let original = std::fs::read_to_string(root().join("asm/run.s")).unwrap();
    let adapted = std::fs::read_to_string(root().join("examples/global_asm/run_pic.s")).unwrap();
    let original: Vec<&str> = original.lines().collect();
    let adapted: Vec<&str> = adapted.lines().collect();
    assert_eq!(original.len(), adapted.len(), "line counts differ");
    let mut changed = 0;
    for (number, (o, a)) in original.iter().zip(&adapted).enumerate() {
        if o != a {
            let expected = o
                .replace("memory_start", "memory_start(%rip)")
                .replace("memory_end", "memory_end(%rip)");
            assert_eq!(*a, expected, "run_pic.s line {}", number + 1);
            changed += 1;
        }
    }
    assert_eq!(
        changed, 8,
        "run.s has eight absolute references to its globals"
    );
}
