//! Chapter 1 of the walkthrough, `examples/literal.rs` (run.s as plain
//! `asm!` blocks, its own `brk` syscall, no hardening), behaves like the
//! original: run.c's pointers, and the same breakage when stdio and malloc
//! interleave with the pool (docs/original-behaviour.md `docs/original-behaviour.md` A.8). Each side runs
//! in a child process; the original's outputs come from gcc builds of the
//! repository's C programs, linked with asm/run.s.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use support::{Allocator, asm, build_c, root, run_ok};

/// The example, built by cargo in this test's profile (`cargo test --test
/// literal` alone does not build examples).
fn literal() -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--quiet", "--example", "literal"]);
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    run_ok(cargo.current_dir(root()));
    support::profile_dir().join("examples").join("literal")
}

fn run(exe: &PathBuf, args: &[&str]) -> Output {
    Command::new(exe).args(args).output().unwrap()
}

/// `Allocations: 0x4c2b9020 …` → `Allocations: +0x20 …`, relative to the
/// `heap start: 0x…` line on stderr.
fn relative(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let start = stderr
        .lines()
        .find_map(|l| l.strip_prefix("heap start: 0x"))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| panic!("no heap start on stderr: {stderr:?}"));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            line.split(' ')
                .map(|word| match word.strip_prefix("0x") {
                    Some(hex) => format!("+{:#x}", u64::from_str_radix(hex, 16).unwrap() - start),
                    None => word.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn literal_port_prints_what_run_c_prints() {
    let original = run_ok(&mut Command::new(build_c(
        "run",
        &[asm("run.c"), asm("heap_start.c")],
        Allocator::Original,
        &[],
    )));
    let literal = run(&literal(), &[]);
    assert!(literal.status.success(), "{literal:?}");
    let expected = relative(&original);
    assert!(
        expected.starts_with("Allocations: +0x20 +0x1d0 +0x210"),
        "{expected}"
    );
    assert_eq!(relative(&literal), expected);
}

/// One of tests/c's reproducers, built with run.s.
fn original_repro(name: &str) -> Output {
    let source = root().join("tests/c").join(format!("{name}.c"));
    run(&build_c(name, &[source], Allocator::Original, &[]), &[])
}

#[test]
fn literal_port_breaks_like_the_original_when_stdio_and_malloc_interleave() {
    let literal = literal();
    // repro_garbage: stdout to a pipe; the third block's header lands in
    // stdio's pending buffer. Same bytes, same exit status.
    let original = original_repro("repro_garbage");
    let port = run(&literal, &["garbage"]);
    assert_eq!(port.status.code(), original.status.code(), "{port:?}");
    assert_ne!(
        original.stdout, b"line1 hello world\nline2\n",
        "the original wrote garbage"
    );
    assert_eq!(port.stdout, original.stdout);
    // repro_malloc_crash: the second append shrinks the break under glibc's
    // heap; the next malloc dies, the buffered "hello" with it.
    let original = original_repro("repro_malloc_crash");
    let port = run(&literal, &["malloc-crash"]);
    assert_eq!(
        original.status.signal(),
        Some(libc::SIGSEGV),
        "{original:?}"
    );
    assert_eq!(port.status.signal(), Some(libc::SIGSEGV), "{port:?}");
    assert_eq!(port.stdout, original.stdout);
}
