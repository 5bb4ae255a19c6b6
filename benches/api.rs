//! Rust API benchmarks (divan): `allocate`, `deallocate` and `deallocate_pool`
//! at N = 10, 100, 1000, 10000 live blocks, on an arena heap and on the process
//! heap, the safe API against the raw one, with glibc `malloc`/`free` and
//! `bumpalo` as context.
//!
//! ```sh
//! cargo bench --bench api                 # everything (~20 s once built)
//! cargo bench --bench api -- arena        # one module
//! cargo bench --bench api -- safe_vs_raw  # the safe API vs the raw one (~12 s)
//! ```
//!
//! Every block is `allocate(1, 16)` (48 bytes with the header). Benchmarks that
//! must leave the heap as they found it pair the measured call with an undo
//! whose cost is constant and small:
//! * `allocate_reuse_*`: `allocate` + the unchecked `Heap::deallocate`
//!   (run.s's 3 stores), so the same block is reused every iteration;
//! * `deallocate`: the unchecked one, on the same block every time (a double
//!   free is harmless, as in run.s), and `try_deallocate_last`: the checked one
//!   on the last block, found by a binary search in the index of block starts;
//! * `deallocate_pool_all_match`: `deallocate_pool(0)` over N free blocks,
//!   which matches (and rewrites) all N each time: the same walk as freeing N
//!   blocks of a pool (`docs/original-behaviour.md` A.9: both cost 5 + 8N).
//!
//! `safe_vs_raw` compares the safe API (`Pools` on an arena, a `Pool` guard)
//! with the raw calls it wraps, on the same heaps: appending (`alloc_uninit`
//! vs `allocate`), reusing a free block at the end (a dropped `PoolBox` vs
//! `allocate` + unchecked `deallocate`) and releasing a pool of N blocks
//! (`Pool::reset` vs `deallocate_pool`); its docs list what the safe path
//! adds. Results and ratios: docs/performance.md; raw output:
//! `docs/perf/divan-safe.txt`.

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
            // Boxed, so that moving the ~2 KiB Heap in and out of the timed
            // closure costs a pointer copy, not a memcpy.
            .with_inputs(|| Box::new(heap(n, Shape::InUse).0))
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

/// The safe API ([`brk_pools::Pools`] and its [`brk_pools::Pool`] guards)
/// against the raw [`Heap`] calls it wraps, on the same heap: every pair
/// builds its heap with the same raw calls (so the blocks, their order and
/// their addresses relative to the arena are the same) and only then wraps
/// it in `Pools` and takes a guard for pool 2. The measured operations all
/// go to pool 2, which the N other blocks (pool 1) do not match.
///
/// What the safe path adds per operation, over the raw one:
/// * the `Pools` mutex (uncontended: a lock and an unlock);
/// * the held-pool check on the guard's token (a scan of the held-pool
///   table, one entry here) where the raw `allocate`/`deallocate_pool`
///   scan the raw heap's empty table;
/// * `block()`'s checked `len + align - 1` and `align_offset`;
/// * for a [`brk_pools::PoolBox`]: freeing goes through a `dyn` call that
///   takes the mutex *again* and checks the token again, where the raw
///   `deallocate` is 2 unchecked stores; `boxed_zeroed` also writes 16 zeros.
mod safe_vs_raw {
    use super::*;
    use brk_pools::{Pool, Pools};
    use core::mem::{ManuallyDrop, MaybeUninit};

    /// The pool the measured calls use; the N background blocks are pool 1.
    const POOL: u64 = 2;
    /// Room for 10 001 blocks of 48 bytes (rounded up to pages).
    const CAPACITY: usize = 1 << 20;

    /// A raw heap on an arena with `n` blocks of `pool`, all in use, then
    /// (if `free_at_end`) one free block of the same size after them.
    fn raw(n: usize, pool: u64, free_at_end: bool) -> Heap<Arena> {
        let mut heap = Heap::on_arena(CAPACITY).unwrap();
        for _ in 0..n {
            heap.allocate(pool, SIZE).unwrap();
        }
        if free_at_end {
            let p = heap.allocate(pool, SIZE).unwrap();
            // SAFETY: p came from this heap's allocate.
            unsafe { heap.deallocate(p) };
        }
        heap
    }

    // The timed closures take their input by value and return it (to be
    // dropped untimed). A `Heap` is about 2 KiB (the segment and held-pool
    // tables), so the raw inputs are boxed: moving the heap itself in and
    // out cost ~120 ns per call at N = 10 in a first run, which the 32-byte
    // `Guarded` did not pay.

    /// The same heap as [`raw`], in `Pools`, with a guard for [`POOL`] taken
    /// after the blocks were made (blocks already in pool 2 are adopted).
    /// Owned together so that divan can hand it to the timed closure by
    /// value and drop it (guard first, which frees pool 2) outside the timing.
    struct Guarded {
        pool: ManuallyDrop<Pool<'static, Pools<Arena>>>,
        pools: NonNull<Pools<Arena>>,
    }

    impl Guarded {
        fn new(heap: Heap<Arena>) -> Guarded {
            let pools = NonNull::from(Box::leak(Box::new(Pools::new(heap))));
            // SAFETY: `pools` is a leaked Box, so it stays valid (and is only
            // shared) until Guarded::drop frees it, after dropping the guard
            // that borrows it; the 'static never escapes (see `pool`).
            let pool = unsafe { pools.as_ref() }.pool(POOL).unwrap();
            Guarded {
                pool: ManuallyDrop::new(pool),
                pools,
            }
        }

        /// The guard, for no longer than `self` lives (shared, so it cannot
        /// be moved out from under the 'static).
        fn pool(&self) -> &Pool<'_, Pools<Arena>> {
            &self.pool
        }

        /// [`Pool::reset`] on the guard.
        #[inline]
        fn reset(&mut self) {
            self.pool.reset();
        }
    }

    impl Drop for Guarded {
        fn drop(&mut self) {
            // SAFETY: the guard is dropped once, here, before the Pools it
            // borrows; no allocation from it survives (they borrow `self`).
            // `pools` came from Box::leak and is freed once.
            unsafe {
                ManuallyDrop::drop(&mut self.pool);
                drop(Box::from_raw(self.pools.as_ptr()));
            }
        }
    }

    /// Raw: `allocate(2, 16)` appending after N blocks (fresh heap per input,
    /// dropped outside the timing). Includes the walk, the break move (an
    /// arena's, no syscall) and sometimes a first touch of a new page.
    #[divan::bench(args = NS, sample_count = 25)]
    fn append_raw(bencher: Bencher, n: usize) {
        bencher
            .with_inputs(|| Box::new(raw(n, 1, false)))
            .bench_local_values(|mut heap| {
                black_box(heap.allocate(POOL, SIZE).unwrap());
                heap
            });
    }

    /// Safe: `alloc_uninit(16)` on the guard, the same append on the same
    /// heap, plus the mutex and the token check (no zeroing).
    #[divan::bench(args = NS, sample_count = 25)]
    fn append_safe(bencher: Bencher, n: usize) {
        bencher
            .with_inputs(|| Guarded::new(raw(n, 1, false)))
            .bench_local_values(|g| {
                black_box(g.pool().alloc_uninit(SIZE as usize).unwrap().as_ptr());
                g
            });
    }

    /// Raw: reuse of the free block after N blocks, `allocate(2, 16)` + the
    /// unchecked `deallocate` (2 stores) to free it again.
    #[divan::bench(args = NS)]
    fn reuse_end_raw(bencher: Bencher, n: usize) {
        let mut heap = raw(n, 1, true);
        bencher.bench_local(|| {
            let p = heap.allocate(POOL, SIZE).unwrap();
            // SAFETY: p came from this heap's allocate.
            unsafe { heap.deallocate(black_box(p)) };
        });
    }

    /// Safe: the same reuse as a `PoolBox<MaybeUninit<[u8; 16]>>` (16 bytes,
    /// alignment 1, nothing written), dropped at once: two mutex round trips
    /// and two token checks, no zeroing. The closest equivalent: the safe
    /// API frees single blocks only through a box.
    #[divan::bench(args = NS)]
    fn reuse_end_safe(bencher: Bencher, n: usize) {
        let g = Guarded::new(raw(n, 1, true));
        let pool = g.pool();
        bencher.bench_local(|| {
            let b = pool.boxed(MaybeUninit::<[u8; SIZE as usize]>::uninit());
            drop(black_box(b.unwrap()));
        });
    }

    /// Safe: as [`reuse_end_safe`] with `boxed_zeroed(16)`, which also
    /// writes the 16 bytes (reused blocks keep old data).
    #[divan::bench(args = NS)]
    fn reuse_end_safe_zeroed(bencher: Bencher, n: usize) {
        let g = Guarded::new(raw(n, 1, true));
        let pool = g.pool();
        bencher.bench_local(|| drop(black_box(pool.boxed_zeroed(SIZE as usize).unwrap())));
    }

    /// Raw: `deallocate_pool(2)` over N blocks of pool 2, all of which match
    /// (fresh heap per input: freeing cannot be undone cheaply).
    #[divan::bench(args = NS, sample_count = 25)]
    fn release_raw(bencher: Bencher, n: usize) {
        bencher
            .with_inputs(|| Box::new(raw(n, POOL, false)))
            .bench_local_values(|mut heap| {
                heap.deallocate_pool(black_box(POOL));
                heap
            });
    }

    /// Safe: `reset` of the guard holding those N blocks (adopted: made by
    /// raw calls before the guard was taken, the same heap as `release_raw`);
    /// adds the mutex and the token check.
    #[divan::bench(args = NS, sample_count = 25)]
    fn release_safe(bencher: Bencher, n: usize) {
        bencher
            .with_inputs(|| Guarded::new(raw(n, POOL, false)))
            .bench_local_values(|mut g| {
                black_box(&mut g).reset();
                g
            });
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
