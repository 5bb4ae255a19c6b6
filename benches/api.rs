//! Rust API benchmarks (divan): `allocate`, `deallocate` and `deallocate_pool`
//! at N = 10, 100, 1000, 10000 live blocks, on an arena heap and on the process
//! heap, with glibc `malloc`/`free` and `bumpalo` as context.
//!
//! ```sh
//! cargo bench --bench api                 # everything (a few seconds once built)
//! cargo bench --bench api -- arena        # one module
//! ```
//!
//! Every block is `allocate(1, 16)` (48 bytes with the header). Benchmarks that
//! must leave the heap as they found it pair the measured call with an undo
//! whose cost is constant and small:
//! * `allocate_reuse_*`: `allocate` + the unchecked `Heap::deallocate`
//!   (run.s's 3 stores), so the same block is reused every iteration;
//! * `deallocate`: the unchecked one, on the same block every time (a double
//!   free is harmless, as in run.s), and `try_deallocate_last`: the checked one
//!   on the last block, which walks to it;
//! * `deallocate_pool_all_match`: `deallocate_pool(0)` over N free blocks,
//!   which matches (and rewrites) all N each time: the same walk as freeing N
//!   blocks of a pool (original-behaviour A.9: both cost 5 + 8N).
//!
//! The safe API being written in parallel is not benchmarked here yet.

use std::hint::black_box;
use std::ptr::NonNull;

use brk_pools::{Arena, Heap};
use divan::Bencher;

fn main() {
    divan::main();
}

const NS: &[usize] = &[10, 100, 1000, 10000];
const SIZE: u64 = 16;

/// What the heap looks like before the measured call.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// N blocks in use.
    InUse,
    /// N blocks in use and a free one after them.
    FreeAtEnd,
    /// N blocks, the first one free.
    FirstFree,
}

/// Puts N blocks of pool 1 at the start of `heap` (reusing free ones), shaped.
fn shape<S: brk_pools::BreakSource>(
    heap: &mut Heap<S>,
    n: usize,
    shape: Shape,
) -> Vec<NonNull<u8>> {
    let count = if shape == Shape::FreeAtEnd { n + 1 } else { n };
    let mut blocks: Vec<NonNull<u8>> = (0..count)
        .map(|_| heap.allocate(1, SIZE).unwrap())
        .collect();
    match shape {
        Shape::InUse => {}
        // SAFETY: both pointers came from this heap's allocate.
        Shape::FreeAtEnd => unsafe { heap.deallocate(blocks.pop().unwrap()) },
        // SAFETY: as above.
        Shape::FirstFree => unsafe { heap.deallocate(blocks[0]) },
    }
    blocks
}

mod arena {
    use super::*;

    fn heap(n: usize, s: Shape) -> (Heap<Arena>, Vec<NonNull<u8>>) {
        let mut heap = Heap::on_arena(64 << 20).unwrap();
        let blocks = shape(&mut heap, n, s);
        (heap, blocks)
    }

    /// An appending `allocate` after N blocks (each sample gets a fresh heap).
    #[divan::bench(args = NS, sample_count = 25, sample_size = 1)]
    fn allocate_append(bencher: Bencher, n: usize) {
        bencher
            .with_inputs(|| heap(n, Shape::InUse).0)
            .bench_local_values(|mut heap| {
                black_box(heap.allocate(1, SIZE).unwrap());
                heap // dropped outside the timing
            });
    }

    #[divan::bench(args = NS)]
    fn allocate_reuse_end(bencher: Bencher, n: usize) {
        let (mut heap, _) = heap(n, Shape::FreeAtEnd);
        bencher.bench_local(|| {
            let p = heap.allocate(1, SIZE).unwrap();
            // SAFETY: p came from this heap's allocate.
            unsafe { heap.deallocate(black_box(p)) };
        });
    }

    #[divan::bench(args = NS)]
    fn allocate_reuse_first(bencher: Bencher, n: usize) {
        let (mut heap, _) = heap(n, Shape::FirstFree);
        bencher.bench_local(|| {
            let p = heap.allocate(1, SIZE).unwrap();
            // SAFETY: p came from this heap's allocate.
            unsafe { heap.deallocate(black_box(p)) };
        });
    }

    #[divan::bench(args = NS)]
    fn deallocate(bencher: Bencher, n: usize) {
        let (mut heap, blocks) = heap(n, Shape::InUse);
        let last = blocks[n - 1];
        // SAFETY: last came from this heap's allocate; freeing it again is harmless.
        bencher.bench_local(|| unsafe { heap.deallocate(black_box(last)) });
    }

    #[divan::bench(args = NS)]
    fn try_deallocate_last(bencher: Bencher, n: usize) {
        let (mut heap, blocks) = heap(n, Shape::InUse);
        let last = blocks[n - 1].as_ptr();
        bencher.bench_local(|| heap.try_deallocate(black_box(last)).unwrap());
    }

    #[divan::bench(args = NS)]
    fn deallocate_pool_no_match(bencher: Bencher, n: usize) {
        let (mut heap, _) = heap(n, Shape::InUse);
        bencher.bench_local(|| heap.deallocate_pool(black_box(2)));
    }

    #[divan::bench(args = NS)]
    fn deallocate_pool_all_match(bencher: Bencher, n: usize) {
        let (mut heap, _) = heap(n, Shape::InUse);
        heap.deallocate_pool(1);
        bencher.bench_local(|| heap.deallocate_pool(black_box(0)));
    }
}

/// The process heap is one per process and never shrinks, so one function
/// runs every operation, with arguments "N operation". divan sorts them by N,
/// then by name, which keeps the heap at exactly N blocks for the two
/// `deallocate_pool` cases (they walk every block); `reuse_end` then adds
/// block N+1. Nothing else in this binary uses the process heap.
mod process_heap {
    use super::*;

    const CASES: &[&str] = &[
        "10 dealloc",
        "10 pool_all",
        "10 pool_none",
        "10 reuse_end",
        "10 reuse_first",
        "10 try_dealloc",
        "100 dealloc",
        "100 pool_all",
        "100 pool_none",
        "100 reuse_end",
        "100 reuse_first",
        "100 try_dealloc",
        "1000 dealloc",
        "1000 pool_all",
        "1000 pool_none",
        "1000 reuse_end",
        "1000 reuse_first",
        "1000 try_dealloc",
        "10000 dealloc",
        "10000 pool_all",
        "10000 pool_none",
        "10000 reuse_end",
        "10000 reuse_first",
        "10000 try_dealloc",
    ];

    #[divan::bench(args = CASES)]
    fn ops(bencher: Bencher, case: &str) {
        let (n, op) = case.split_once(' ').unwrap();
        let n: usize = n.parse().unwrap();
        let mut heap = brk_pools::process::lock();
        heap.deallocate_pool(1);
        let s = match op {
            "reuse_end" => Shape::FreeAtEnd,
            "reuse_first" => Shape::FirstFree,
            _ => Shape::InUse,
        };
        let blocks = shape(&mut heap, n, s);
        let total = heap.blocks().count();
        if op.starts_with("pool") && total != n {
            eprintln!("note: process heap has {total} blocks, so {case} walks {total}");
        }
        match op {
            // SAFETY: the block came from this heap; freeing it again is harmless.
            "dealloc" => {
                bencher.bench_local(|| unsafe { heap.deallocate(black_box(blocks[n - 1])) })
            }
            "pool_all" => {
                heap.deallocate_pool(1);
                bencher.bench_local(|| heap.deallocate_pool(black_box(0)));
            }
            "pool_none" => bencher.bench_local(|| heap.deallocate_pool(black_box(2))),
            "reuse_end" | "reuse_first" => bencher.bench_local(|| {
                let p = heap.allocate(1, SIZE).unwrap();
                // SAFETY: p came from this heap's allocate.
                unsafe { heap.deallocate(black_box(p)) };
            }),
            "try_dealloc" => {
                let last = blocks[n - 1].as_ptr();
                bencher.bench_local(|| heap.try_deallocate(black_box(last)).unwrap());
            }
            _ => unreachable!("{case}"),
        }
        heap.deallocate_pool(1);
    }
}

/// glibc malloc with N live 16-byte chunks, for context.
mod glibc {
    use super::*;

    fn live(n: usize) -> Vec<*mut libc::c_void> {
        // SAFETY: malloc has no preconditions.
        (0..n)
            .map(|_| unsafe { libc::malloc(SIZE as usize) })
            .collect()
    }

    fn free_all(chunks: Vec<*mut libc::c_void>) {
        for c in chunks {
            // SAFETY: every chunk came from malloc and is freed once.
            unsafe { libc::free(c) };
        }
    }

    #[divan::bench(args = NS)]
    fn malloc_free(bencher: Bencher, n: usize) {
        let chunks = live(n);
        bencher.bench_local(|| {
            // SAFETY: malloc has no preconditions; the chunk is freed once.
            unsafe { libc::free(black_box(libc::malloc(SIZE as usize))) };
        });
        free_all(chunks);
    }

    /// Freeing N chunks: what `deallocate_pool` with all N matching does.
    #[divan::bench(args = NS, sample_count = 25, sample_size = 1)]
    fn free_n(bencher: Bencher, n: usize) {
        bencher.with_inputs(|| live(n)).bench_local_values(free_all);
    }
}

/// bumpalo: the cheapest possible allocation, for context (no free at all).
mod bump {
    use super::*;

    #[divan::bench]
    fn alloc_16(bencher: Bencher) {
        let mut bump = bumpalo::Bump::new();
        bencher.bench_local(|| {
            if bump.allocated_bytes() > 64 << 20 {
                bump.reset();
            }
            black_box(bump.alloc([0u8; SIZE as usize]));
        });
    }
}
