//! Random differential testing, two ways:
//!
//! * **shrinking** (`scripts_shrink_to_a_minimal_difference`): proptest makes
//!   scripts of up to 300 lines, runs each through the original binary
//!   (`asm/trace.c` + `asm/run.s`), the port in process and the port's C ABI,
//!   and on a difference shrinks the script to a minimal one (a few lines),
//!   printed as a script and saved in `proptest-regressions/differential.txt`.
//!   `PROPTEST_CASES=N` runs more than the default 48.
//! * **the long seeded run**: seeded random scripts in four flavours run
//!   through the original and the port, in process on an arena (every script,
//!   in both growth modes every 10th) and through its C ABI (every 10th
//!   script). Any difference fails with the script's path and the first
//!   differing line. `BRK_POOLS_SCRIPTS` sets how many scripts run (default
//!   200, split over the four flavours); `BRK_POOLS_SEED` the first seed:
//!
//! ```sh
//! BRK_POOLS_SCRIPTS=10000 cargo test --release --test differential
//! ```

#[path = "../../tests/support/mod.rs"]
mod support;

use brk_pools::{Growth, Heap};
use brk_pools_tools::trace::{self, Layouts};
use proptest::prelude::*;
use proptest::test_runner::{TestError, TestRunner};
use support::{Allocator, Rng, run_trace, trace_driver};

#[derive(Clone, Copy, Debug)]
enum Flavour {
    /// Mostly allocations: long first-fit walks.
    AllocationHeavy,
    /// Mostly frees, many of them stale or double.
    FreeHeavy,
    /// Mostly `deallocate_pool`, including pool 0 over free blocks.
    PoolReleaseHeavy,
    /// 1000+ blocks, odd sizes, then churn.
    LongList,
}

fn pool(rng: &mut Rng) -> i32 {
    match rng.below(20) {
        0 => -1,
        1 => i32::MIN,
        2 => i32::MAX,
        3 => 42, // a pool that is never allocated from... mostly
        n => (n % 8) as i32,
    }
}

fn size(rng: &mut Rng, odd: bool) -> i32 {
    let size = match rng.below(10) {
        0 => 0,
        1..=5 => rng.below(64),
        6..=8 => rng.below(1024),
        _ => rng.below(70_000),
    } as i32;
    if odd { size | 1 } else { size }
}

fn script(flavour: Flavour, seed: u64) -> String {
    let mut rng = Rng(seed);
    let (ops, allocate, free) = match flavour {
        Flavour::AllocationHeavy => (200 + rng.below(300), 70, 20),
        Flavour::FreeHeavy => (200 + rng.below(300), 40, 50),
        Flavour::PoolReleaseHeavy => (200 + rng.below(300), 50, 15),
        Flavour::LongList => (1500 + rng.below(1000), 60, 30),
    };
    let mut out = format!("# {flavour:?}, seed {seed}\n");
    let mut handles = 0u64;
    for i in 0..ops {
        let roll = rng.below(100);
        let line = if matches!(flavour, Flavour::LongList) && i < 1000 || roll < allocate {
            handles += 1;
            let odd = matches!(flavour, Flavour::LongList) || rng.chance(30);
            format!("a {} {}", pool(&mut rng), size(&mut rng, odd))
        } else if roll < allocate + free && handles > 0 {
            format!("d {}", rng.below(handles))
        } else {
            format!("p {}", pool(&mut rng))
        };
        out.push_str(&line);
        out.push('\n');
        if rng.chance(1) {
            // Now and then a line trace.c must reject the same way.
            out.push_str(REJECTED_OR_COMMENTED[rng.below(5) as usize]);
            out.push('\n');
        }
    }
    out
}

/// Lines that `trace.c` must reject (or skip, or cut at `#`) as the port does.
const REJECTED_OR_COMMENTED: [&str; 8] = [
    "a 1",
    "d 999999",
    "p 2147483648",
    "x 1 2",
    "  # note",
    "a 1 16 # a comment after an operation",
    "x 1 # a comment after a bad line",
    "d h999 # unknown",
];

fn fail(name: &str, script: &str, expected: &str, actual: &str) -> ! {
    let dir = support::profile_dir()
        .parent()
        .unwrap()
        .join("differential-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.ops"));
    std::fs::write(&path, script).unwrap();
    panic!(
        "{name}: the port differs from the original (script saved as {}; replay with `brk-pools compare {}`)\n{}",
        path.display(),
        path.display(),
        trace::first_divergence("original run.s", expected, "port", actual).unwrap_or_default()
    );
}

fn scripts_per_flavour() -> u64 {
    let total: u64 = std::env::var("BRK_POOLS_SCRIPTS")
        .ok()
        .map(|v| v.parse().expect("BRK_POOLS_SCRIPTS is a number"))
        .unwrap_or(200);
    total.div_ceil(4)
}

fn first_seed() -> u64 {
    std::env::var("BRK_POOLS_SEED")
        .ok()
        .map(|v| v.parse().expect("BRK_POOLS_SEED is a number"))
        .unwrap_or(1)
}

fn differential(flavour: Flavour) {
    let original = trace_driver(Allocator::Original);
    let c_abi = trace_driver(Allocator::Port);
    let count = scripts_per_flavour();
    for i in 0..count {
        let seed = first_seed() + i;
        let script = script(flavour, seed);
        let final_only = matches!(flavour, Flavour::LongList);
        let layouts = if final_only {
            Layouts::FinalOnly
        } else {
            Layouts::EveryOp
        };
        let name = format!("{flavour:?}-{seed}");
        let expected = run_trace(&original, &script, final_only);
        let mut heap = Heap::on_arena(1 << 32).unwrap();
        let port = trace::run(&mut heap, &script, layouts);
        if port != expected {
            fail(&name, &script, &expected, &port);
        }
        if i % 10 == 0 {
            let via_c = run_trace(&c_abi, &script, final_only);
            if via_c != expected {
                fail(&format!("{name}-c-abi"), &script, &expected, &via_c);
            }
            let arena = brk_pools::Arena::new(1 << 32).unwrap();
            let mut batched = Heap::with_growth(arena, Growth::Batched { step: 64 << 10 });
            let port = trace::run(&mut batched, &script, layouts);
            if port != expected {
                fail(&format!("{name}-batched"), &script, &expected, &port);
            }
        }
    }
    eprintln!("{flavour:?}: {count} scripts identical");
}

#[test]
fn allocation_heavy_scripts_match_the_original() {
    differential(Flavour::AllocationHeavy);
}

#[test]
fn free_heavy_scripts_match_the_original() {
    differential(Flavour::FreeHeavy);
}

#[test]
fn pool_release_heavy_scripts_match_the_original() {
    differential(Flavour::PoolReleaseHeavy);
}

#[test]
fn long_lists_match_the_original() {
    differential(Flavour::LongList);
}

/// One line of a generated script.
#[derive(Clone, Copy, Debug)]
enum Line {
    Allocate(i32, i32),
    /// `d` of the `k`-th most recent allocation (the first one if there
    /// are fewer; `d 0` before any).
    Deallocate(u64),
    Pool(i32),
    Other(&'static str),
}

/// A generated script; its `Debug` is the script's text, so a shrunk
/// failure prints as a script to paste into a `.ops` file.
#[derive(Clone)]
struct Script(Vec<Line>);

impl Script {
    fn text(&self) -> String {
        let mut out = String::new();
        let mut allocations = 0u64;
        for line in &self.0 {
            match *line {
                Line::Allocate(pool, size) => {
                    allocations += 1;
                    out.push_str(&format!("a {pool} {size}\n"));
                }
                Line::Deallocate(k) => {
                    let handle = allocations.saturating_sub(1).saturating_sub(k);
                    out.push_str(&format!("d {handle}\n"));
                }
                Line::Pool(pool) => out.push_str(&format!("p {pool}\n")),
                Line::Other(text) => {
                    out.push_str(text);
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "script of {} lines:\n{}", self.0.len(), self.text())
    }
}

fn any_pool() -> impl Strategy<Value = i32> {
    prop_oneof![
        16 => 0..8i32,
        1 => Just(-1),
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
        1 => Just(42),
    ]
}

fn any_size() -> impl Strategy<Value = i32> {
    prop_oneof![5 => 0..64i32, 3 => 0..1024i32, 1 => 0..70_000i32]
}

fn any_line() -> impl Strategy<Value = Line> {
    prop_oneof![
        12 => (any_pool(), any_size()).prop_map(|(p, s)| Line::Allocate(p, s)),
        6 => prop_oneof![3 => 0..4u64, 1 => 0..400u64].prop_map(Line::Deallocate),
        3 => any_pool().prop_map(Line::Pool),
        1 => prop::sample::select(&REJECTED_OR_COMMENTED[..]).prop_map(Line::Other),
    ]
}

/// How the port's traces differ from the original's on `script`, if they do.
fn difference(script: &str) -> Option<String> {
    let original = run_trace(&trace_driver(Allocator::Original), script, false);
    let mut heap = Heap::on_arena(1 << 32).unwrap();
    let in_process = trace::run(&mut heap, script, Layouts::EveryOp);
    let c_abi = run_trace(&trace_driver(Allocator::Port), script, false);
    [("port in process", &in_process), ("port via C ABI", &c_abi)]
        .into_iter()
        .find_map(|(side, port)| {
            let diff = trace::first_divergence("original run.s", &original, side, port)?;
            Some(format!(
                "the {side} differs from the original run.s\n{diff}"
            ))
        })
}

/// Removes lines from a failing script while it still fails. proptest's
/// shrinking simplifies lines in place, which can leave lines that no
/// longer matter; here handle numbers stay as written (a `d` of a removed
/// allocation becomes a rejected line, for both sides alike).
fn remove_lines(script: &str) -> String {
    let mut lines: Vec<&str> = script.lines().collect();
    let mut at = 0;
    while at < lines.len() {
        let mut shorter = lines.clone();
        shorter.remove(at);
        if difference(&(shorter.join("\n") + "\n")).is_some() {
            lines = shorter;
        } else {
            at += 1;
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn scripts_shrink_to_a_minimal_difference() {
    let mut runner = TestRunner::new(support::props::config("differential", 48));
    let scripts = prop::collection::vec(any_line(), 0..300).prop_map(Script);
    let result = runner.run(&scripts, |script| match difference(&script.text()) {
        None => Ok(()),
        Some(diff) => Err(TestCaseError::fail(diff)),
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(_, script)) => {
            let script = remove_lines(&script.text());
            panic!(
                "the port differs from the original on this script of {} lines:\n{script}\n{}",
                script.lines().count(),
                difference(&script).unwrap_or_default()
            );
        }
        Err(error) => panic!("{error}"),
    }
}
