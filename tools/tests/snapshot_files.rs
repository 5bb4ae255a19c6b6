//! No snapshot file without an assertion that reads it: each
//! `tools/tests/snapshots/<test>__<name>.snap` must name a test file that
//! asserts a snapshot called `<name>` (scenario snapshots are checked against
//! their scripts, `tests/scenarios/*.ops` at the repository root, in
//! `tools/tests/scenarios.rs`).

use std::path::PathBuf;

#[test]
fn every_snapshot_file_is_referenced() {
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut unreferenced = Vec::new();
    for entry in std::fs::read_dir(tests.join("snapshots")).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = file.strip_suffix(".snap") else {
            unreferenced.push(file);
            continue;
        };
        let (test, name) = stem.split_once("__").expect("<test>__<name>.snap");
        let source = std::fs::read_to_string(tests.join(format!("{test}.rs"))).unwrap_or_default();
        let referenced = if test == "scenarios" {
            let scripts = tests.join("../../tests/scenarios");
            scripts.join(format!("{name}.ops")).exists()
        } else {
            source.contains(&format!("\"{name}\""))
        };
        if !referenced {
            unreferenced.push(file);
        }
    }
    assert!(
        unreferenced.is_empty(),
        "unreferenced snapshot files: {unreferenced:?}"
    );
}
