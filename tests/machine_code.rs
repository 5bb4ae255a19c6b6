//! The machine-code proof: every run.s label that the port writes as `asm!`
//! appears, instruction for instruction, in the compiled static library.

mod support;

use brk_pools::disasm;
use support::{asm, require_tool, run_ok, staticlib};

#[test]
fn walks_in_the_static_library_are_run_s_instruction_for_instruction() {
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
    assert!(results.iter().all(|r| r.found()), "{report}");
    // The sequences themselves are part of the proof: a snapshot of what was
    // compared, so a change to run.s's labels shows up in review.
    insta::assert_snapshot!("checked_sequences", report);
}
