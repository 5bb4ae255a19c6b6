//! The process heap shares the program break with glibc's malloc (C stdio,
//! malloc/free of small and > 128 KiB buffers) without either corrupting the
//! other. The same C program linked with run.s fails: that is what makes this
//! test able to fail.

mod support;

use support::{Allocator, build_c, root};

fn coexistence(allocator: Allocator) -> std::process::Output {
    let exe = build_c(
        "glibc_coexistence",
        &[root().join("tests/c/glibc_coexistence.c")],
        allocator,
        &[],
    );
    std::process::Command::new(exe).output().unwrap()
}

#[test]
fn port_keeps_pool_blocks_and_malloc_chunks_intact() {
    let output = coexistence(Allocator::Port);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}\n{stdout}", output.status);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("step ")).count(),
        60
    );
    assert!(
        stdout.ends_with("malloc chunks verified\n"),
        "{}",
        &stdout[stdout.len().saturating_sub(500)..]
    );
}

#[test]
fn original_corrupts_malloc_on_the_same_program() {
    let output = coexistence(Allocator::Original);
    assert!(
        !output.status.success(),
        "run.s survived the interleaving; docs/original-behaviour.md A.8 says it cannot"
    );
}
