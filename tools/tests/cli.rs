//! The `brk-pools` command line: `trace` and `compare` on every scenario,
//! help for every subcommand, and clear one-line errors (file and line, exit
//! status 2, no panic) on bad input. `tests/cli_props.rs` throws random and
//! hostile scripts at it.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::{Command, Output};

use support::root;

fn brk_pools(args: &[&str]) -> Output {
    support::brk_pools_command().args(args).output().unwrap()
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
    // Usage errors are clap's, as clap prints them, with status 2.
    let output = brk_pools(&["trace"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the following required arguments were not provided"),
        "{stderr}"
    );
    let output = brk_pools(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{stderr}"
    );
}

#[test]
fn odd_bytes_and_long_lines_are_one_line_errors() {
    let dir = support::profile_dir().join("cli-test");
    std::fs::create_dir_all(&dir).unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "latin1",
            b"a 1 16\n\xe9\n",
            "line 2: not UTF-8 text (byte 7)",
        ),
        (
            "control",
            b"a 1 16\x1b[31m\n",
            "line 1: expected `a POOL SIZE`, `d H` or `p POOL`: a 1 16\\u{1b}[31m",
        ),
        (
            "nul",
            b"a\x00 1 16\n",
            "line 1: expected `a POOL SIZE`, `d H` or `p POOL`: a\\u{0} 1 16",
        ),
    ];
    for (name, script, message) in cases {
        let path = dir.join(format!("{name}.ops"));
        std::fs::write(&path, script).unwrap();
        let output = brk_pools(&["trace", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("brk-pools: {}: {message}\n", path.display()),
            "{name}"
        );
    }
    let path = dir.join("long_line.ops");
    std::fs::write(&path, format!("a 1 {}\n", "9".repeat(100_000))).unwrap();
    let output = brk_pools(&["trace", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.len() < 500, "{stderr}");
}

#[test]
fn comments_may_follow_an_operation_and_dash_reads_stdin() {
    let script = "a 1 400 # h0\n  # a comment line\na 2 32\t# h1\nd 0 # frees h0\n";
    let output = support::run_command_with_stdin(
        support::brk_pools_command().args(["trace", "-f", "-"]),
        script.as_bytes(),
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "op 0: a 1 400 -> h0=+0x20\nop 1: a 2 32 -> h1=+0x1d0\nop 2: d 0 (+0x20)\n\
         +0x0 in_use=0 size=432 pool=0\n+0x1b0 in_use=1 size=64 pool=2\nend=+0x1f0\nmap |.|2|\n"
    );
    let bad = support::run_command_with_stdin(
        support::brk_pools_command().args(["compare", "-"]),
        b"a 1 16\nd 1 # no such handle\n",
    );
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        "brk-pools: <stdin>: line 2: unknown handle h1\n"
    );
}

#[test]
fn every_subcommand_has_help_and_the_binary_a_version() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["help", "trace"],
        &["trace", "--help"],
        &["trace", "-h"],
        &["compare", "--help"],
        &["disasm", "--help"],
        &["run-c", "--help"],
    ] {
        let output = brk_pools(args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert!(stdout.contains("Usage: brk-pools"), "{args:?}: {stdout}");
    }
    let trace_help = String::from_utf8_lossy(&brk_pools(&["trace", "--help"]).stdout).to_string();
    assert!(trace_help.contains("--svg <OUT>"), "{trace_help}");
    assert!(trace_help.contains("`#` starts a comment"), "{trace_help}");
    assert_eq!(
        String::from_utf8_lossy(&brk_pools(&["help", "trace"]).stdout),
        trace_help,
        "`help trace` is `trace --help`"
    );
    let version = brk_pools(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("brk-pools {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_crash_of_the_original_is_a_reported_result() {
    support::require_tool("gcc");
    let dir = support::profile_dir().join("cli-test");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("int_max.ops");
    // Under a 256 MiB data limit the kernel refuses the INT_MAX block's brk;
    // run.s writes the header past the break anyway ([A.7](../docs/original-behaviour.md#a7-brk-failure)) and faults.
    std::fs::write(&path, "a 1 16\na 1 2147483647\na 2 16\n").unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg("ulimit -d 262144 && exec \"$0\" compare \"$1\"")
        .arg(env!("CARGO_BIN_EXE_brk-pools"))
        .arg(&path)
        .env("BRK_POOLS_CACHE_DIR", support::tool_cache())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stdout.starts_with(&format!(
            "{}: the original crashed (signal 11 (SIGSEGV) during op 2 (allocate), fault address ",
            path.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("!      4  op 1: a 1 2147483647 -> h1=+0x50"),
        "{stdout}"
    );
    assert!(output.stderr.is_empty(), "{output:?}");
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
    assert!(
        String::from_utf8_lossy(&output.stderr).starts_with(&format!(
            "brk-pools: wrote {}: 5 of 5 operations drawn, ",
            out.display()
        )),
        "{output:?}"
    );
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
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("a value is required for '--svg <OUT>'")
    );
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
fn disasm_tells_a_missing_file_from_a_missing_objdump() {
    let output = brk_pools(&["disasm", "--object", "/nonexistent"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "brk-pools: cannot read /nonexistent: No such file or directory (os error 2)\n"
    );
    let empty_path = support::profile_dir().join("cli-test-empty-path");
    std::fs::create_dir_all(&empty_path).unwrap();
    let output = support::brk_pools_command()
        .arg("disasm")
        .env("PATH", &empty_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "brk-pools: cannot run objdump: it is not installed (Debian: apt-get install binutils)\n"
    );
    let not_an_object = root().join("tests/scenarios/seed.ops");
    let output = brk_pools(&["disasm", "--object", not_an_object.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("file format not recognized"), "{stderr}");
    assert!(!stderr.contains("binutils"), "{stderr}");
}

#[test]
fn compare_without_gcc_says_what_to_install() {
    let cache = support::profile_dir().join("cli-test-no-gcc");
    let _ = std::fs::remove_dir_all(&cache);
    let empty_path = support::profile_dir().join("cli-test-empty-path");
    std::fs::create_dir_all(&empty_path).unwrap();
    let file = root().join("tests/scenarios/seed.ops");
    let output = support::brk_pools_command()
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

/// An installed command (here a copy in a read-only folder) caches its gcc
/// builds in `$BRK_POOLS_CACHE_DIR`, else `$XDG_CACHE_HOME/brk-pools`, else
/// `~/.cache/brk-pools`, and never writes beside itself.
#[test]
fn gcc_builds_are_cached_in_the_cache_folder_never_beside_the_command() {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    support::require_tool("gcc");
    let dir = support::profile_dir().join("cli-test-installed");
    if dir.exists() {
        let bin = dir.join("bin");
        let _ = std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("brk-pools");
    std::fs::copy(env!("CARGO_BIN_EXE_brk-pools"), &exe).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o555)).unwrap();
    let file = root().join("tests/scenarios/seed.ops");
    let compare = |env: &[(&str, PathBuf)]| {
        let mut command = Command::new(&exe);
        command
            .args(["compare", file.to_str().unwrap()])
            .env_remove("BRK_POOLS_CACHE_DIR")
            .env_remove("XDG_CACHE_HOME")
            .env("HOME", dir.join("home"));
        for (name, value) in env {
            command.env(name, value);
        }
        let output = support::output_of_fresh_executable(&mut command);
        assert!(output.status.success(), "{env:?}: {output:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).starts_with("identical: "),
            "{output:?}"
        );
    };
    let built_in =
        |cache: &Path| std::fs::read_dir(cache).is_ok_and(|mut entries| entries.next().is_some());

    compare(&[]);
    assert!(built_in(&dir.join("home/.cache/brk-pools")));
    compare(&[("XDG_CACHE_HOME", dir.join("xdg"))]);
    assert!(built_in(&dir.join("xdg/brk-pools")));
    compare(&[
        ("XDG_CACHE_HOME", dir.join("xdg-unused")),
        ("BRK_POOLS_CACHE_DIR", dir.join("explicit")),
    ]);
    assert!(built_in(&dir.join("explicit")));
    assert!(!dir.join("xdg-unused").exists());

    let beside: Vec<_> = std::fs::read_dir(&bin)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(
        beside,
        ["brk-pools"],
        "nothing is written beside the command"
    );
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
}
