//! `docs/reliability.md` cannot name a test that is gone.
//!
//! The page names tests as `` `tests/FILE.rs::NAME` `` (or `src/FILE.rs::NAME`
//! for unit tests), and files as `` `tests/FILE.rs` ``, `` `tests/c/FILE.c` ``
//! and so on. Every named file must exist, and every `NAME` must be a test of
//! that file: a `fn NAME(` marked `#[test]`, or, in a `harness = false`
//! binary, a case listed by its name in quotes. Every `--test NAME` in a
//! command must be a test binary, every `BRK_POOLS_*` variable must be read
//! somewhere under `tests/`, and every link must be relative and lead to a
//! file of the repository.

use std::path::{Path, PathBuf};

const PAGE: &str = "docs/reliability.md";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The inline code spans of `text` (single backticks), fenced blocks left out.
fn code_spans(text: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let mut parts = line.split('`');
        parts.next(); // before the first backtick
        while let (Some(inside), Some(_after)) = (parts.next(), parts.next()) {
            spans.push(inside);
        }
    }
    spans
}

/// Where the test targets of the two packages live.
const TEST_DIRS: [&str; 2] = ["tests", "tools/tests"];

/// Whether a code span names a file of the repository.
fn is_path(span: &str) -> bool {
    let path = span.split("::").next().unwrap_or_default();
    [
        "tests/",
        "tools/tests/",
        "src/",
        "asm/",
        "docs/",
        "benches/",
        "examples/",
    ]
    .iter()
    .any(|dir| path.starts_with(dir))
        && path
            .rsplit('/')
            .next()
            .is_some_and(|file| file.contains('.'))
        && !path.contains(char::is_whitespace)
}

/// Whether `source` defines `name` as a test: `#[test]` above `fn name(`,
/// or a case of a `harness = false` binary (`fn name(` and `"name"` in its
/// table of cases).
fn is_test_in(source: &str, name: &str) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    let definition = format!("fn {name}(");
    let Some(at) = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&definition))
    else {
        return false;
    };
    let marked_test = lines[..at]
        .iter()
        .rev()
        .map(|l| l.trim())
        .take_while(|l| l.starts_with("#[") || l.starts_with("//"))
        .any(|l| l == "#[test]");
    marked_test || source.contains(&format!("\"{name}\""))
}

/// Every problem with the page `text`, and how many test names it checked.
fn problems(text: &str, root: &Path) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut names = 0;
    for span in code_spans(text).into_iter().filter(|s| is_path(s)) {
        let (path, name) = match span.split_once("::") {
            Some((path, name)) => (path, Some(name)),
            None => (span, None),
        };
        let Ok(source) = std::fs::read_to_string(root.join(path)) else {
            problems.push(format!("`{span}`: there is no file {path}"));
            continue;
        };
        if let Some(name) = name {
            names += 1;
            if !is_test_in(&source, name) {
                problems.push(format!("`{span}`: {path} has no test or case {name}"));
            }
        }
    }
    // `--test NAME` in commands, fenced or inline.
    for (i, _) in text.match_indices("--test ") {
        let binary: String = text[i + "--test ".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let file = format!("{binary}.rs");
        if !TEST_DIRS
            .iter()
            .any(|dir| root.join(dir).join(&file).is_file())
        {
            problems.push(format!("`--test {binary}`: there is no tests/{file}"));
        }
    }
    // Environment variables the tests read.
    let tests: Vec<String> = TEST_DIRS
        .iter()
        .flat_map(|dir| all_sources(&root.join(dir)))
        .collect();
    for (i, _) in text.match_indices("BRK_POOLS_") {
        let variable: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !tests.iter().any(|source| source.contains(&variable)) {
            problems.push(format!("{variable}: no file under tests/ mentions it"));
        }
    }
    // Links: relative, and to a file or directory of the repository.
    for (i, _) in text.match_indices("](") {
        let target = &text[i + 2..];
        let target = &target[..target.find(')').unwrap_or(target.len())];
        if target.starts_with('#') {
            continue;
        }
        let file = target.split('#').next().unwrap_or_default();
        if target.contains("://") || !root.join("docs").join(file).exists() {
            problems.push(format!("link ({target}) does not lead into the repository"));
        }
    }
    (problems, names)
}

/// The text of every `.rs` and `.c` file under `dir`.
fn all_sources(dir: &Path) -> Vec<String> {
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources.extend(all_sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs" || e == "c") {
            sources.push(std::fs::read_to_string(&path).unwrap());
        }
    }
    sources
}

fn page() -> String {
    std::fs::read_to_string(root().join(PAGE)).unwrap()
}

#[test]
fn every_test_the_page_names_exists() {
    let (problems, names) = problems(&page(), &root());
    assert!(
        problems.is_empty(),
        "{PAGE} names what is not there:\n{}",
        problems.join("\n")
    );
    // Guards against a change of notation that would make the check vacuous.
    assert!(names >= 40, "only {names} test names found in {PAGE}");
}

/// The check catches a renamed test, a missing file, a wrong binary and a
/// case that is not a test (a helper function).
#[test]
fn a_wrong_name_is_caught() {
    let page = page();
    for (right, wrong, expected) in [
        (
            "tests/stress.rs::fork_while_another_thread_works_the_heap`",
            "tests/stress.rs::fork_while_another_thread_works_the_heaps`",
            "has no test or case fork_while_another_thread_works_the_heaps",
        ),
        (
            "tests/threaded_growth.rs::many_reservations`",
            "tests/threaded_growth.rs::small_appends`",
            "has no test or case small_appends",
        ),
        (
            "tests/fork_handlers.rs::registered_after_first_use`",
            "tests/fork_handler.rs::registered_after_first_use`",
            "there is no file tests/fork_handler.rs",
        ),
        (
            "--test stress_safe_race",
            "--test stress_safe_races",
            "there is no tests/stress_safe_races.rs",
        ),
    ] {
        assert!(page.contains(right), "the page no longer has {right}");
        let (problems, _) = problems(&page.replacen(right, wrong, 1), &root());
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{wrong}: not caught ({problems:?})"
        );
    }
}
