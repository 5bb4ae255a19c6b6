//! Every behaviour of `docs/original-behaviour.md` as a script in
//! `tests/scenarios/*.ops`, traced three ways: the original binary
//! (`asm/trace.c` + `asm/run.s`), the port through its C ABI (`asm/trace.c` +
//! `libbrk_pools.a`), and the port in process on an arena.
//!
//! The original's trace is the insta snapshot `snapshots/scenarios__NAME.snap`:
//! when a scenario's script (or the original's driver) changes, the test
//! fails, insta writes `scenarios__NAME.snap.new`, and `cargo insta review`
//! shows the change and accepts or rejects it (or rerun with
//! `INSTA_UPDATE=always`; with `CI=true` insta writes nothing and a
//! difference fails). The port's two traces are compared with the
//! original's, before the snapshot: a difference fails with both traces side
//! by side from the first differing line, naming the side that differed.

#[path = "../../tests/support/mod.rs"]
mod support;

use brk_pools::Heap;
use brk_pools_tools::trace::{self, Layouts};
use support::{Allocator, root, run_trace, trace_driver};

fn script(name: &str) -> String {
    let path = root().join("tests/scenarios").join(format!("{name}.ops"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check(name: &str) {
    let script = script(name);
    let original = run_trace(&trace_driver(Allocator::Original), &script, false);
    let c_abi = run_trace(&trace_driver(Allocator::Port), &script, false);
    let mut heap = Heap::on_arena(1 << 32).unwrap();
    let in_process = trace::run(&mut heap, &script, Layouts::EveryOp);
    let differences: Vec<String> = [("port via C ABI", &c_abi), ("port in process", &in_process)]
        .into_iter()
        .filter_map(|(side, trace)| {
            let diff = trace::first_divergence("original run.s", &original, side, trace)?;
            Some(format!(
                "{name}: the {side} differs from the original run.s\n{diff}"
            ))
        })
        .collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    let header = script
        .lines()
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    insta::with_settings!({
        description => format!("the original run.s's trace (asm/trace.c); the port's must equal it\n{header}"),
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, original);
    });
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { check(stringify!($name)); } )*
        const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

scenarios!(
    seed,
    first_fit,
    exact_fit,
    skip_too_small,
    no_split,
    no_coalescing,
    misalignment,
    size_zero,
    pool_zero,
    double_free,
    stale_handle,
    empty_pool,
    extreme_pools,
    big_blocks,
);

#[test]
fn every_script_has_a_test_and_every_snapshot_a_script() {
    let names = |dir: std::path::PathBuf, prefix: &str, suffix: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let file = e.unwrap().file_name().into_string().unwrap();
                Some(file.strip_prefix(prefix)?.strip_suffix(suffix)?.to_string())
            })
            .collect();
        names.sort();
        names
    };
    let mut tested: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    tested.sort();
    assert_eq!(
        names(root().join("tests/scenarios"), "", ".ops"),
        tested,
        "scripts vs tests"
    );
    assert_eq!(
        names(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"),
            "scenarios__",
            ".snap"
        ),
        tested,
        "snapshots vs tests"
    );
}
