//! First fit against a model: before every `allocate`, the block it must take
//! is computed from [`Heap::blocks`] in plain Rust (the first block in walk
//! order that is free and big enough, else a new one at the end), under
//! random allocates, checked and raw frees, `deallocate_pool`, pool guards and
//! foreign break moves (new segments). The default build answers with the asm
//! walk, `--features indexed-fit` with the fit index; both must agree with the
//! model, and with the feature this is what shows that every in_use change
//! reaches the index.

use brk_pools::{Heap, Pools};

const HEADER: u64 = 32;

/// xorshift64*: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Where the walk would put a request of `size` bytes: the first fitting
/// block's pointer, or `None` for an append.
fn expected_block<S: brk_pools::BreakSource>(heap: &Heap<S>, size: u64) -> Option<*mut u8> {
    heap.blocks()
        .find(|b| !b.header.is_in_use() && b.header.size >= size + HEADER)
        .map(|b| b.pointer())
}

fn check_allocate<S: brk_pools::BreakSource>(
    heap: &mut Heap<S>,
    pool: u64,
    size: u64,
    context: &str,
) -> *mut u8 {
    let expected = expected_block(heap, size);
    let end = heap.memory_end();
    let got = heap.allocate(pool, size).unwrap().as_ptr();
    match expected {
        Some(block) => assert_eq!(got, block, "{context}: first fit"),
        None => assert!(
            got as usize >= end as usize,
            "{context}: no block fits, so the allocate must append"
        ),
    }
    got
}

#[test]
fn allocate_takes_the_walks_block_under_random_operations() {
    for seed in 1..=4u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut heap = Heap::on_arena(64 << 20).unwrap();
        let mut live: Vec<*mut u8> = Vec::new();
        for step in 0..4000 {
            let context = format!("seed {seed} step {step}");
            match rng.below(20) {
                0..=8 => {
                    // Pool 0 too: deallocate_pool(0) frees its blocks in use.
                    let pool = rng.below(6);
                    let size = rng.below(300);
                    live.push(check_allocate(&mut heap, pool, size, &context));
                }
                9..=12 if !live.is_empty() => {
                    let p = live.swap_remove(rng.below(live.len() as u64) as usize);
                    heap.try_deallocate(p).unwrap();
                }
                13..=15 if !live.is_empty() => {
                    // The faithful unchecked free (the C ABI's store), also
                    // double frees of blocks already free.
                    let p = live[rng.below(live.len() as u64) as usize];
                    // SAFETY: p came from this heap's allocate; no guards here.
                    unsafe { heap.deallocate(core::ptr::NonNull::new(p).unwrap()) };
                }
                16 => {
                    heap.deallocate_pool(rng.below(6));
                    live.retain(|&p| {
                        heap.blocks()
                            .any(|b| b.pointer() == p && b.header.is_in_use())
                    });
                }
                17 if step % 7 == 0 && heap.segments().len() < 40 => {
                    heap.grow_foreign(16 * (1 + rng.below(8)) as usize).unwrap();
                }
                _ => {}
            }
        }
        assert!(
            heap.segments().len() > 1,
            "the test must cover several segments"
        );
        assert_index_in_use(&heap, &format!("seed {seed}"));
    }
}

/// With `indexed-fit`, the answers above must have come from the index: a
/// wrong block from it (one in use, say) would only make the heap give the
/// index up and walk, and the walk's answer would pass the model check.
fn assert_index_in_use<S: brk_pools::BreakSource>(heap: &Heap<S>, context: &str) {
    assert_eq!(
        heap.fit_index_in_use(),
        cfg!(feature = "indexed-fit"),
        "{context}: the heap gave the index up"
    );
}

/// Sizes from a short list, and blocks often freed right after they were
/// taken (checked or raw frees): most allocates repeat the size before them,
/// so with `indexed-fit` they go through the index's last answer and its
/// deferred lowering (the random sizes above rarely do).
#[test]
fn repeated_sizes_and_immediate_frees_take_the_walks_block() {
    for seed in 1..=4u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut heap = Heap::on_arena(16 << 20).unwrap();
        let mut live: Vec<*mut u8> = Vec::new();
        for step in 0..3000 {
            let context = format!("seed {seed} step {step}");
            let size = [16, 48, 100, 200][rng.below(4) as usize];
            match rng.below(10) {
                0..=4 => {
                    let p = check_allocate(&mut heap, 1 + rng.below(3), size, &context);
                    match rng.below(3) {
                        0 => heap.try_deallocate(p).unwrap(),
                        // SAFETY: p came from this heap's allocate; no guards.
                        1 => unsafe { heap.deallocate(core::ptr::NonNull::new(p).unwrap()) },
                        _ => live.push(p),
                    }
                }
                5..=7 if !live.is_empty() => {
                    let p = live.swap_remove(rng.below(live.len() as u64) as usize);
                    // May free a block handed out again since: as in run.s.
                    heap.try_deallocate(p).unwrap();
                }
                8 if step % 5 == 0 => heap.deallocate_pool(1 + rng.below(3)),
                9 if step % 50 == 0 => {
                    heap.grow_foreign(64).unwrap();
                }
                _ => {}
            }
        }
        assert!(heap.segments().len() > 1, "seed {seed}: several segments");
        assert_index_in_use(&heap, &format!("seed {seed}"));
    }
}

#[test]
fn pool_guards_free_their_blocks_for_first_fit() {
    let pools = Pools::on_arena(8 << 20).unwrap();
    let mut rng = Rng(99);
    for round in 0..30 {
        let guard = pools.pool(7).unwrap();
        let mut boxes = Vec::new();
        for step in 0..40 {
            let len = 1 + rng.below(200) as usize;
            let expected = pools.inspect(|heap| expected_block(heap, len as u64));
            let end = pools.inspect(|heap| heap.memory_end());
            let boxed = guard.boxed_zeroed(len).unwrap();
            let block = boxed.block_pointer() as *mut u8;
            match expected {
                Some(p) => assert_eq!(block, p, "round {round} step {step}"),
                None => assert!(block as usize >= end as usize, "round {round} step {step}"),
            }
            if rng.below(2) == 0 {
                boxed.free(); // the guard's own free
            } else {
                boxes.push(boxed);
            }
        }
        drop(boxes);
        drop(guard); // deallocate_pool of the guard's pool
        pools.inspect(|heap| assert!(heap.blocks().all(|b| b.header.pool != 7)));
        pools.inspect(|heap| assert_index_in_use(heap, &format!("round {round}")));
        // Raw allocations between guards take what the guards freed.
        for step in 0..5 {
            let size = rng.below(150);
            // SAFETY: only allocates; no guard is alive.
            unsafe {
                pools.with_heap_unchecked(|heap| {
                    check_allocate(heap, 3, size, &format!("round {round} raw {step}"))
                })
            };
        }
    }
}
