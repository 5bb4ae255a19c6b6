//! The machine-code proof: every run.s label that the port writes as `asm!`
//! appears, instruction for instruction, in the compiled static library.

#[path = "../../tests/support/mod.rs"]
mod support;

use brk_pools_tools::disasm;
use support::{asm, require_tool, run_ok, staticlib};

#[test]
fn walks_in_the_static_library_are_run_s_instruction_for_instruction() {
    if brk_pools::build_info::INDEXED_FIT {
        // docs/machine-code.md and the snapshot describe the default build,
        // whose allocate is the asm walk; the indexed-fit build finds blocks
        // through its index and is checked against the walk by the
        // differential, scenario and first_fit_model tests instead.
        eprintln!(
            "skipped: the machine-code proof is about the default build (asm walk); \
             run it without --features indexed-fit"
        );
        return;
    }
    require_tool("objdump");
    let dir = support::profile_dir().join("machine-code-test");
    std::fs::create_dir_all(&dir).unwrap();
    let object = dir.join("run.o");
    run_ok(
        std::process::Command::new("gcc")
            .arg("-c")
            .arg(asm("run.s"))
            .arg("-o")
            .arg(&object),
    );
    let original = disasm::objdump(&object).unwrap();
    let port = disasm::objdump(&staticlib()).unwrap();
    let results = disasm::compare(&original, &port);
    let mut report = String::new();
    for result in &results {
        report.push_str(&format!(
            "{} ({} instructions): {}\n",
            result.label,
            result.original.len(),
            if result.found() { "found" } else { "NOT FOUND" }
        ));
        for instruction in &result.original {
            report.push_str(&format!("    {instruction}\n"));
        }
    }
    assert!(
        results.iter().all(|r| r.found()),
        "{report}\n{}",
        disasm::side_by_side(&results)
    );
    docs_machine_code_md_is_up_to_date(&disasm::markdown(&results));
    // The sequences themselves are part of the proof: a snapshot of what was
    // compared, so a change to run.s's labels shows up in review.
    insta::assert_snapshot!("checked_sequences", report);
}

/// `docs/machine-code.md` is `disasm::markdown` of this very comparison;
/// `UPDATE_DOCS=1` rewrites it.
fn docs_machine_code_md_is_up_to_date(generated: &str) {
    let path = support::root().join("docs/machine-code.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != generated {
        let first = current
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| current.lines().count().min(generated.lines().count()));
        let context = |text: &str| {
            text.lines()
                .enumerate()
                .skip(first.saturating_sub(2))
                .take(6)
                .map(|(n, l)| format!("{:>4} {l}\n", n + 1))
                .collect::<String>()
        };
        panic!(
            "docs/machine-code.md is out of date; first difference at line {}.\n\
             In the file:\n{}\nGenerated:\n{}\n\
             Regenerate with `UPDATE_DOCS=1 cargo test --test machine_code`.",
            first + 1,
            context(&current),
            context(generated)
        );
    }
}
