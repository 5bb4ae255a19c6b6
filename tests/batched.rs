//! Batched break growth (`Growth::Batched`, the `batched-brk` feature) changes
//! only how often the break moves: block lists, returned pointers and
//! `memory_end` are those of the faithful `Growth::Exact`.

mod support;

use support::{Rng, layout};

use brk_pools::{Arena, Growth, Heap};

/// Everything one operation shows: the offset `allocate` returned (if any)
/// and the layout afterwards, as (offset, in_use, size, pool).
type Step = (Option<usize>, Vec<(usize, u64, u64, u64)>);

/// Runs the same random workload of `ops` operations on a heap with `growth`.
fn run(growth: Growth, seed: u64, ops: usize) -> Vec<Step> {
    let mut heap = Heap::with_growth(Arena::new(64 << 20).unwrap(), growth);
    let mut rng = Rng(seed);
    let mut handed_out: Vec<*mut u8> = Vec::new();
    let mut steps = Vec::with_capacity(ops);
    for _ in 0..ops {
        let roll = rng.below(100);
        let mut returned = None;
        if roll < 55 || handed_out.is_empty() {
            // Sizes from 0 to 5000, not multiples of 16, some far past a page.
            let size = if rng.below(10) == 0 {
                rng.below(70_000)
            } else {
                rng.below(5000)
            };
            let p = heap.allocate(rng.below(6), size).unwrap();
            handed_out.push(p.as_ptr());
            returned = Some(p.as_ptr() as usize - heap.memory_start() as usize);
        } else if roll < 88 {
            // Any pointer ever handed out: double and stale frees included.
            let p = handed_out[rng.below(handed_out.len() as u64) as usize];
            heap.try_deallocate(p).unwrap();
        } else {
            heap.deallocate_pool(rng.below(6));
        }
        // memory_end is exact: the end of the last block, whatever the break.
        let last = heap.blocks().last().unwrap();
        assert_eq!(
            heap.memory_end() as usize,
            last.address as usize + last.header.size as usize
        );
        assert!(heap.break_end() >= heap.memory_end());
        steps.push((returned, layout(&heap)));
    }
    steps
}

#[test]
fn batched_growth_gives_the_same_pointers_and_layouts_as_exact() {
    for seed in [1, 0x5eed, 0xdead_beef] {
        let exact = run(Growth::Exact, seed, 600);
        for step in [1, 4096, 64 * 1024, 1 << 20] {
            let batched = run(Growth::Batched { step }, seed, 600);
            for (i, (e, b)) in exact.iter().zip(&batched).enumerate() {
                assert_eq!(e, b, "seed {seed:#x}, step {step}: op {i} differs");
            }
        }
    }
}

#[test]
fn batched_growth_moves_the_break_less_often() {
    let step = 64 * 1024;
    let mut heap = Heap::with_growth(Arena::new(8 << 20).unwrap(), Growth::Batched { step });
    let mut moves = 0;
    let mut last_break = core::ptr::null_mut();
    for _ in 0..10_000 {
        heap.allocate(1, 16).unwrap();
        if heap.break_end() != last_break {
            moves += 1;
            last_break = heap.break_end();
        }
    }
    // 10 000 blocks of 48 bytes: 480 000 bytes in 64 KiB steps.
    assert_eq!(moves, 480_000usize.div_ceil(step));
    assert_eq!(
        heap.memory_end() as usize - heap.memory_start() as usize,
        480_000
    );
    assert_eq!(
        heap.break_end() as usize - heap.memory_start() as usize,
        8 * step
    );
}

// `process_memory_end_global_stays_exact` moved to tests/single_threaded.rs:
// it looks at the real break, which only a single-threaded process moves.
