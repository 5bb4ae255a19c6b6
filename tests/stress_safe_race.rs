//! Safe Rust against the program break: the main thread churns
//! `Vec<u8>`s of 16 B – 124 KiB (glibc's main arena, which grows and trims
//! the break), while a second thread takes `pools::process().pool(1)`, fills
//! 2000 slices with a pattern and checks them. No `unsafe` anywhere in this
//! program: whatever goes wrong is the crate's fault.
//!
//! `harness = false`: the churn must run on the process's main thread (a
//! libtest `#[test]` thread would get its own malloc arena, away from the
//! break, and the race would never show). `main` runs itself as a child
//! process many times with a timeout and counts crashes, hangs and changed
//! bytes; all must be 0. Each child runs for `RUN_MS` milliseconds.
//!
//! Short form: 8 runs (part of `cargo test`). Long form: runs until
//! `BRK_POOLS_STRESS_SECS` seconds have passed, e.g.
//! `BRK_POOLS_STRESS_SECS=600 cargo test --release --test stress_safe_race`.

#![forbid(unsafe_code)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use brk_pools::pools;
use support::Rng;

const CHILD: &str = "BRK_POOLS_SAFE_RACE_CHILD";
const RUN_MS: u64 = 200;
const SHORT_RUNS: usize = 8;

fn pattern(id: u64, i: usize) -> u8 {
    (id.wrapping_mul(0x9e37_79b9) as u8) ^ (i as u8).wrapping_mul(31) ^ ((i >> 8) as u8)
}

/// The first and last 256 bytes of a large buffer (all of a small one).
fn edges(len: usize) -> impl Iterator<Item = usize> {
    let head = len.min(256);
    (0..head).chain(len.saturating_sub(256).max(head)..len)
}

fn child(seed: u64) -> i32 {
    let deadline = Instant::now() + Duration::from_millis(RUN_MS);
    let pool_thread = std::thread::spawn(move || {
        let mut changed = 0u64;
        let mut rounds = 0u64;
        while Instant::now() < deadline {
            let pool = pools::process().pool(1).expect("pool 1 is free");
            let mut rng = Rng(seed ^ rounds);
            let mut slices = Vec::with_capacity(2000);
            for i in 0..2000u64 {
                let len = rng.below(600) as usize;
                let slice = pool.alloc_zeroed(len).expect("a pool block");
                for (j, byte) in slice.iter_mut().enumerate() {
                    *byte = pattern(i + rounds, j);
                }
                slices.push((slice, i + rounds));
            }
            for (slice, id) in &slices {
                if slice.iter().enumerate().any(|(j, &b)| b != pattern(*id, j)) {
                    changed += 1;
                }
            }
            drop(slices);
            drop(pool);
            rounds += 1;
        }
        (changed, rounds)
    });
    let mut rng = Rng(seed);
    let mut live: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut malloc_changed = 0u64;
    let mut id = 1u64 << 40;
    while Instant::now() < deadline {
        for _ in 0..32 {
            let len = if rng.chance(50) {
                16 + rng.below(124 * 1024 - 16) as usize
            } else {
                16 + rng.below(2000) as usize
            };
            let mut bytes = vec![0u8; len];
            for j in edges(len) {
                bytes[j] = pattern(id, j);
            }
            live.push((bytes, id));
            id += 1;
            if live.len() > 8 {
                let (bytes, old) = live.swap_remove(rng.below(live.len() as u64) as usize);
                if edges(bytes.len()).any(|j| bytes[j] != pattern(old, j)) {
                    malloc_changed += 1;
                }
            }
        }
    }
    let (pool_changed, rounds) = pool_thread.join().expect("pool thread");
    println!(
        "rounds={rounds} pool_changed={pool_changed} malloc_changed={malloc_changed} vecs={}",
        id - (1 << 40)
    );
    if pool_changed + malloc_changed == 0 {
        0
    } else {
        2
    }
}

fn main() {
    if let Ok(seed) = std::env::var(CHILD) {
        std::process::exit(child(seed.parse().expect("seed")));
    }
    let tally = support::stress_runs(SHORT_RUNS, Duration::from_secs(30), |i| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.env(CHILD, i.to_string());
        command
    });
    println!(
        "safe-Rust race: {} runs of {RUN_MS} ms: {} crashed, {} hung, {} with changed bytes",
        tally.runs, tally.crashes, tally.hangs, tally.changed
    );
    if let Some(failure) = tally.first_failure {
        println!("first failure:\n{}", failure.describe());
        std::process::exit(1);
    }
}
