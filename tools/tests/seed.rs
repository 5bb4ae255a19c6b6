//! The seed program, `asm/run.c`, three ways: the original binary (run.s),
//! the same C file linked with the port's static library, and the port in
//! process on an arena. All three must agree on every pointer, taken relative
//! to the heap start, and the in-process layouts after each of run.c's steps
//! are an insta snapshot.

#[path = "../../tests/support/mod.rs"]
mod support;

use brk_pools::{Heap, render};
use support::{Allocator, asm, build_c, run_ok};

/// Runs a build of run.c (+ heap_start.c) and rewrites each printed pointer
/// as an offset from the heap start that heap_start.c reports on stderr.
fn run_c_relative(allocator: Allocator) -> String {
    let exe = build_c("run", &[asm("run.c"), asm("heap_start.c")], allocator, &[]);
    let output = run_ok(&mut std::process::Command::new(exe));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let start = stderr
        .trim()
        .strip_prefix("heap start: 0x")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| panic!("no heap start on stderr: {stderr:?}"));
    let stdout = String::from_utf8(output.stdout).unwrap();
    relative_pointers(&stdout, start)
}

/// `Allocations: 0x4c2b9020 …` → `Allocations: +0x20 …`.
fn relative_pointers(stdout: &str, heap_start: u64) -> String {
    stdout
        .lines()
        .map(|line| {
            line.split(' ')
                .map(|word| match word.strip_prefix("0x") {
                    Some(hex) => {
                        let address = u64::from_str_radix(hex, 16).unwrap();
                        format!("+{:#x}", address - heap_start)
                    }
                    None => word.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// run.c's steps on an arena heap: the printed lines (relative) and the
/// layout after each step.
fn run_c_in_process() -> (String, String) {
    let mut heap = Heap::on_arena(1 << 20).unwrap();
    let start = heap.source().base() as u64;
    let mut layouts = String::new();
    let mut step = |heap: &Heap<_>, what: &str| {
        layouts.push_str(&format!("# {what}\n{}", render::trace_layout(heap)));
    };
    let at = |p: core::ptr::NonNull<u8>| p.as_ptr() as u64;

    // get 400 bytes from pool 1
    let a1 = heap.allocate(1, 400).unwrap();
    step(&heap, "char *a1 = allocate(1, 400);");
    // get 32 bytes from pool 2
    let a2 = heap.allocate(2, 32).unwrap();
    step(&heap, "char *a2 = allocate(2, 32);");
    // get 80 bytes from pool 2
    let ae = heap.allocate(2, 80).unwrap();
    step(&heap, "char *ae = allocate(2, 80);");
    // release all of pool 2
    heap.deallocate_pool(2);
    step(&heap, "deallocate_pool(2);");
    let mut printed = format!("Allocations: {:#x} {:#x} {:#x}\n", at(a1), at(a2), at(ae));
    let a3 = a1;
    // SAFETY: a1 came from this heap's allocate.
    unsafe { heap.deallocate(a1) };
    step(&heap, "deallocate(a1);");
    printed.push_str(&format!(
        "Allocations: {:#x} {:#x} {:#x}\n",
        at(a1),
        at(a2),
        at(a3)
    ));
    (relative_pointers(&printed, start), layouts)
}

#[test]
fn seed_layouts_after_each_step() {
    let (_, layouts) = run_c_in_process();
    insta::assert_snapshot!("seed_layouts", layouts);
}

#[test]
fn original_binary_prints_the_same_pointers_as_the_port() {
    let original = run_c_relative(Allocator::Original);
    let (in_process, _) = run_c_in_process();
    assert_eq!(
        original, in_process,
        "run.c's pointers, relative to the heap start: original vs port on an arena"
    );
    // And the original is what the seed printed (0x…020, 0x…1d0, 0x…210).
    assert_eq!(
        original,
        "Allocations: +0x20 +0x1d0 +0x210\nAllocations: +0x20 +0x1d0 +0x20"
    );
}

#[test]
fn run_c_linked_with_the_port_prints_what_the_original_prints() {
    let original = run_c_relative(Allocator::Original);
    let port = run_c_relative(Allocator::Port);
    assert_eq!(original, port, "asm/run.c: run.s vs libbrk_pools.a");
}

#[test]
fn cargo_run_prints_run_c_lines_then_the_layout() {
    let output = run_ok(&mut std::process::Command::new(env!(
        "CARGO_BIN_EXE_brk-pools"
    )));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut lines = stdout.lines();
    let pointers = |line: &str| -> Vec<u64> {
        let rest = line.strip_prefix("Allocations: ").expect("run.c's line");
        rest.split(' ')
            .map(|p| u64::from_str_radix(p.strip_prefix("0x").unwrap(), 16).unwrap())
            .collect()
    };
    let first = pointers(lines.next().unwrap());
    let second = pointers(lines.next().unwrap());
    // The process heap starts wherever Rust's runtime left the break, so
    // compare the pointers relative to a1, as run.c's layout fixes them.
    assert_eq!(
        [first[1] - first[0], first[2] - first[0]],
        [0x1b0, 0x1f0],
        "{stdout}"
    );
    assert_eq!(second, [first[0], first[1], first[0]], "{stdout}");
    let rest: Vec<&str> = lines.collect();
    insta::assert_snapshot!("cargo_run_layout", rest.join("\n"));
}
