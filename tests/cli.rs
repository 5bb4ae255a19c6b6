//! The `brk-pools` command line: `trace` and `compare` on every scenario, and
//! clear errors (line number, non-zero exit, no panic) on bad input.

mod support;

use std::process::{Command, Output};

use support::root;

fn brk_pools(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brk-pools"))
        .args(args)
        .output()
        .unwrap()
}

fn scenario_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("tests/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".ops"))
        .collect();
    files.sort();
    files
}

#[test]
fn compare_finds_every_scenario_identical() {
    support::require_tool("gcc");
    for file in scenario_files() {
        let output = brk_pools(&["compare", &file]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{file}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.starts_with("identical: "), "{stdout}");
    }
}

#[test]
fn trace_prints_the_trace_then_the_map() {
    let file = root().join("tests/scenarios/seed.ops");
    let output = brk_pools(&["trace", file.to_str().unwrap()]);
    assert!(output.status.success());
    insta::assert_snapshot!("trace_seed", String::from_utf8(output.stdout).unwrap());
}

#[test]
fn bad_scripts_name_the_line_and_exit_2() {
    let dir = support::profile_dir().join("cli-test");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "malformed",
            "a 1 16\na 1\n",
            "line 2: expected `a POOL SIZE`, `d H` or `p POOL`: a 1",
        ),
        (
            "unknown_handle",
            "a 1 16\nd h3\n",
            "line 2: unknown handle h3",
        ),
        (
            "huge_number",
            "# big\na 1 99999999999999999999\n",
            "line 2: number out of range for a C int: 99999999999999999999",
        ),
        (
            "not_an_op",
            "x\n",
            "line 1: expected `a POOL SIZE`, `d H` or `p POOL`: x",
        ),
    ];
    for (name, script, message) in cases {
        let path = dir.join(format!("{name}.ops"));
        std::fs::write(&path, script).unwrap();
        for command in ["trace", "compare"] {
            let output = brk_pools(&[command, path.to_str().unwrap()]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{command} {name}: {stderr}");
            assert_eq!(
                stderr,
                format!("brk-pools: {}: {message}\n", path.display()),
                "{command} {name}"
            );
            assert!(output.stdout.is_empty());
        }
    }
    let output = brk_pools(&["trace"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing FILE"));
    let output = brk_pools(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown command frobnicate"));
}

#[test]
fn trace_svg_draws_the_seed_picture_of_the_docs() {
    let dir = support::profile_dir().join("cli-test");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("seed.svg");
    let file = root().join("tests/scenarios/seed.ops");
    let output = brk_pools(&[
        "trace",
        file.to_str().unwrap(),
        "--svg",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    // The trace itself is unchanged by --svg.
    let plain = brk_pools(&["trace", file.to_str().unwrap()]);
    assert_eq!(output.stdout, plain.stdout);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(root().join("docs/seed.svg")).unwrap(),
        "brk-pools trace seed.ops --svg draws docs/seed.svg"
    );
    let missing = brk_pools(&["trace", file.to_str().unwrap(), "--svg"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--svg needs a file name"));
    let compare = brk_pools(&["compare", file.to_str().unwrap(), "--svg", "x.svg"]);
    assert_eq!(
        compare.status.code(),
        Some(2),
        "--svg is trace's option only"
    );
}

#[test]
fn disasm_finds_every_walk_label_in_its_own_executable() {
    support::require_tool("gcc");
    support::require_tool("objdump");
    let output = brk_pools(&["disasm"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("6 of 6 labels of run.s found"), "{stdout}");
    assert!(!stdout.contains("!="), "{stdout}");
    let markdown = brk_pools(&["disasm", "--markdown"]);
    assert_eq!(
        String::from_utf8_lossy(&markdown.stdout),
        std::fs::read_to_string(root().join("docs/machine-code.md")).unwrap(),
        "`brk-pools disasm --markdown` prints docs/machine-code.md"
    );
    let bad = brk_pools(&["disasm", "--frobnicate"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn compare_without_gcc_says_what_to_install() {
    let cache = support::profile_dir().join("cli-test-no-gcc");
    let _ = std::fs::remove_dir_all(&cache);
    let empty_path = support::profile_dir().join("cli-test-empty-path");
    std::fs::create_dir_all(&empty_path).unwrap();
    let file = root().join("tests/scenarios/seed.ops");
    let output = Command::new(env!("CARGO_BIN_EXE_brk-pools"))
        .args(["compare", file.to_str().unwrap()])
        .env("BRK_POOLS_CACHE_DIR", &cache)
        .env("PATH", &empty_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("brk-pools: cannot run gcc"), "{stderr}");
    assert!(stderr.contains("apt-get install gcc binutils"), "{stderr}");
}
