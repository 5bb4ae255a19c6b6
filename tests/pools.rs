//! The safe API on arenas: typed errors that leave the heap as it was,
//! alignment, zeroing, early frees, guards, and random sequences of safe
//! operations checked against the heap's own block list.

mod support;

use support::Rng;

use std::collections::HashMap;

use brk_pools::pools::Pools;
use brk_pools::{Arena, Error, Header, Heap, Refusal, Segment};

/// Everything that makes up a heap's state: segments, end, break end, the
/// headers of every block, and the held pools.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    segments: Vec<Segment>,
    memory_end: usize,
    break_end: usize,
    blocks: Vec<(usize, Header)>,
    held: Vec<u64>,
}

fn layout(heap: &Heap<Arena>) -> Layout {
    Layout {
        segments: heap.segments().to_vec(),
        memory_end: heap.memory_end() as usize,
        break_end: heap.break_end() as usize,
        blocks: heap.blocks().map(|b| (b.offset, b.header)).collect(),
        held: (0..16).filter(|&p| heap.is_pool_held(p)).collect(),
    }
}

/// Runs `f` on the heap and asserts it failed with an error matching
/// `expected` and left the layout as it was.
fn assert_unchanged<T: std::fmt::Debug>(
    heap: &mut Heap<Arena>,
    f: impl FnOnce(&mut Heap<Arena>) -> Result<T, Error>,
    expected: impl FnOnce(&Error) -> bool,
) {
    let before = layout(heap);
    let result = f(heap);
    match &result {
        Err(e) => assert!(expected(e), "unexpected error {e:?}"),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
    assert_eq!(before, layout(heap), "the failed call changed the heap");
}

#[test]
fn raw_errors_leave_the_heap_unchanged() {
    let mut heap = Heap::on_arena(64 * 1024).unwrap();
    // Refused before the first block: the heap stays uninitialised.
    assert_unchanged(
        &mut heap,
        |h| h.allocate(1, 1 << 20),
        |e| {
            matches!(
                e,
                Error::BreakRefused {
                    requested: 1_048_608,
                    refusal: Refusal::ArenaExhausted { .. }
                }
            )
        },
    );
    assert!(heap.segments().is_empty());
    assert_unchanged(
        &mut heap,
        |h| h.allocate(1, u64::MAX - 31),
        |e| matches!(e, Error::SizeOverflow { .. }),
    );
    let a = heap.allocate(1, 100).unwrap();
    let b = heap.allocate(2, 7).unwrap();
    heap.allocate(3, 0).unwrap();
    // SAFETY: b came from this heap and no guard exists.
    unsafe { heap.deallocate(b) };
    // Refused after some blocks.
    assert_unchanged(
        &mut heap,
        |h| h.allocate(4, 70_000),
        |e| matches!(e, Error::BreakRefused { .. }),
    );
    assert_unchanged(
        &mut heap,
        |h| h.allocate(4, u64::MAX),
        |e| matches!(e, Error::SizeOverflow { size: u64::MAX }),
    );
    // Pointers that are not blocks.
    let start = heap.memory_start();
    let mut foreign = [0u8; 64];
    for bad in [
        std::ptr::null_mut(),
        a.as_ptr().wrapping_add(16),
        a.as_ptr().wrapping_sub(1),
        start,
        heap.memory_end().wrapping_add(32),
        foreign.as_mut_ptr().wrapping_add(32),
    ] {
        assert_unchanged(
            &mut heap,
            |h| h.try_deallocate(bad),
            |e| matches!(e, Error::NotABlock { address } if *address == bad as usize),
        );
    }
    assert_eq!(foreign, [0u8; 64]);
    // The table of segments has no fixed limit (a refused table is shown in
    // tests/stress_single_threaded.rs).
    let mut heap = Heap::on_arena(1 << 20).unwrap();
    heap.allocate(1, 1).unwrap();
    for _ in 1..1000 {
        heap.grow_foreign(8).unwrap();
        heap.allocate(1, 1).unwrap();
    }
    assert_eq!(heap.segments().len(), 1000);
}

#[test]
fn guard_errors_leave_the_heap_unchanged() {
    let pools = Pools::on_arena(64 * 1024).unwrap();
    let one = pools.pool(1).unwrap();
    let kept = one.alloc_slice_copy(b"kept").unwrap();
    let check = |f: &dyn Fn() -> Result<(), Error>, expected: &dyn Fn(&Error) -> bool| {
        let before = pools.inspect(layout);
        let error = f().expect_err("the call should fail");
        assert!(expected(&error), "unexpected error {error:?}");
        assert_eq!(before, pools.inspect(layout));
    };
    check(&|| pools.pool(0).map(drop), &|e| {
        *e == Error::PoolZeroReserved
    });
    check(&|| pools.pool(1).map(drop), &|e| {
        *e == Error::PoolAlreadyHeld { pool: 1 }
    });
    check(&|| one.alloc_zeroed(usize::MAX).map(drop), &|e| {
        matches!(e, Error::SizeOverflow { .. })
    });
    check(&|| one.alloc_slice_copy(&[0u64; 10_000]).map(drop), &|e| {
        matches!(e, Error::BreakRefused { .. })
    });
    check(&|| one.boxed([0u8; 70_000]).map(drop), &|e| {
        matches!(e, Error::BreakRefused { .. })
    });
    // The heap's own safe methods respect the guard (so does the C ABI).
    // SAFETY: the closures below only call safe methods and replace nothing.
    unsafe {
        pools.with_heap_unchecked(|heap| {
            assert_unchanged(
                heap,
                |h| h.allocate(1, 8),
                |e| *e == Error::PoolHeld { pool: 1 },
            );
            assert_unchanged(
                heap,
                |h| h.try_deallocate(kept.as_ptr().cast_mut()),
                |e| *e == Error::PoolHeld { pool: 1 },
            );
            assert_unchanged(
                heap,
                |h| h.try_deallocate_pool(1),
                |e| *e == Error::PoolHeld { pool: 1 },
            );
            let before = layout(heap);
            heap.deallocate_pool(1); // skipped
            assert_eq!(before, layout(heap));
        });
    }
    assert_eq!(kept, b"kept");
    drop(one);
    // No fixed limit on held pools (it was 64).
    let mut guards = Vec::new();
    for pool in 1..=1000 {
        guards.push(pools.pool(pool).unwrap());
    }
    check(&|| pools.pool(1000).map(drop), &|e| {
        *e == Error::PoolAlreadyHeld { pool: 1000 }
    });
    drop(guards);
    assert!(pools.pool(1000).is_ok());
}

#[test]
fn guard_frees_its_pool_and_only_its_pool() {
    let pools = Pools::on_arena(1 << 20).unwrap();
    let outer = pools.pool(1).unwrap();
    let a = outer.alloc_str("outer").unwrap();
    {
        let inner = pools.pool(2).unwrap();
        let b = inner.alloc_zeroed(40).unwrap();
        b.fill(0xbb);
        assert_eq!(
            pools.inspect(brk_pools::render::map),
            "|1|2|",
            "one block per allocation, pool numbers as given"
        );
    }
    assert_eq!(pools.inspect(brk_pools::render::map), "|1|.|");
    // The free 72-byte block is reused, and its old bytes are not visible.
    let again = outer.alloc_zeroed(40).unwrap();
    assert_eq!(again, &[0u8; 40]);
    let uninit = outer.alloc_uninit(3).unwrap();
    assert_eq!(uninit.len(), 3);
    assert_eq!(a, "outer");
    drop(outer);
    assert_eq!(pools.inspect(brk_pools::render::map), "|.|.|.|");
}

#[test]
fn reset_and_early_free() {
    let pools = Pools::on_arena(1 << 20).unwrap();
    let mut pool = pools.pool(5).unwrap();
    {
        let first = pool.boxed_slice_copy(&[1u8; 50]).unwrap();
        let address = first.block_pointer();
        first.free();
        let second = pool.boxed_zeroed(50).unwrap();
        assert_eq!(
            second.block_pointer(),
            address,
            "first fit reuses the block"
        );
        assert_eq!(&*second, &[0u8; 50]);
        let kept: &mut [u8] = second.leak();
        kept[0] = 9;
        assert_eq!(pools.inspect(brk_pools::render::map), "|5|");
    }
    pool.reset();
    assert_eq!(pools.inspect(brk_pools::render::map), "|.|");
    assert!(pools.pool(5).is_err(), "reset keeps the pool held");
}

#[test]
fn typed_values_are_aligned_in_misaligned_blocks() {
    let pools = Pools::on_arena(1 << 20).unwrap();
    let pool = pools.pool(1).unwrap();
    // An odd-sized block first, so later blocks start at odd addresses.
    pool.alloc_zeroed(1).unwrap();
    let odd = pool.alloc_zeroed(1).unwrap();
    assert_eq!(odd.as_ptr() as usize % 2, 1);
    #[repr(align(64))]
    struct Wide(#[allow(dead_code)] [u8; 64]);
    for _ in 0..5 {
        let x = pool
            .alloc(0x1122_3344_5566_7788_99aa_bbcc_ddee_ff00_u128)
            .unwrap();
        assert_eq!(std::ptr::from_mut(x) as usize % 16, 0);
        let y = pool.boxed(3.5f64).unwrap();
        assert_eq!(std::ptr::from_ref(&*y) as usize % 8, 0);
        let w = pool.alloc(Wide([1; 64])).unwrap();
        assert_eq!(std::ptr::from_mut(w) as usize % 64, 0);
        let s = pool.alloc_slice_copy(&[1u32, 2, 3]).unwrap();
        assert_eq!(s.as_ptr() as usize % 4, 0);
        let z = pool.alloc(()).unwrap();
        let _ = z;
        assert_eq!(*x, 0x1122_3344_5566_7788_99aa_bbcc_ddee_ff00);
        pool.alloc_zeroed(3).unwrap();
    }
}

#[test]
fn boxes_run_destructors_and_alloc_does_not() {
    use std::rc::Rc;
    let counter = Rc::new(());
    let pools = Pools::on_arena(1 << 20).unwrap();
    {
        let pool = pools.pool(1).unwrap();
        let boxed = pool.boxed(Rc::clone(&counter)).unwrap();
        assert_eq!(Rc::strong_count(&counter), 2);
        drop(boxed);
        assert_eq!(Rc::strong_count(&counter), 1);
        let _kept = pool.alloc(Rc::clone(&counter)).unwrap();
    }
    assert_eq!(Rc::strong_count(&counter), 2, "alloc'd values are leaked");
}

// ---------------------------------------------------------------------------
// Random sequences of safe operations.

/// Mostly small sizes, some zero, now and then a few KiB.
fn random_size(rng: &mut Rng) -> usize {
    match rng.below(20) {
        0 => rng.below(6000) as usize,
        1 => 0,
        _ => rng.below(200) as usize,
    }
}

fn pattern(id: u64, i: usize) -> u8 {
    (id.wrapping_mul(0x9e37_79b9) as u8) ^ (i as u8).wrapping_mul(31) ^ ((i >> 8) as u8)
}

fn fill(bytes: &mut [u8], id: u64) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = pattern(id, i);
    }
}

fn check(bytes: &[u8], id: u64) {
    for (i, b) in bytes.iter().enumerate() {
        assert_eq!(*b, pattern(id, i), "allocation {id}, byte {i}");
    }
}

/// What the test expects of the heap: in-use blocks per held pool, and the
/// byte range of every live allocation with its pool.
#[derive(Default)]
struct Model {
    in_use: HashMap<u64, usize>,
    live: HashMap<u64, (usize, usize, u64)>,
    next_id: u64,
    operations: usize,
    refusals: usize,
}

impl Model {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// Checks `Heap::blocks` against the segments and the model.
fn check_heap(pools: &Pools<Arena>, model: &Model) {
    pools.inspect(|heap| {
        let mut blocks = Vec::new();
        for segment in heap.segments() {
            let mut cursor = segment.start as usize;
            for block in heap.blocks().filter(|b| {
                (segment.start as usize..segment.end as usize).contains(&(b.address as usize))
            }) {
                assert_eq!(block.address as usize, cursor, "blocks tile the segment");
                assert!(block.header.size >= 32);
                assert!(block.header.in_use <= 1);
                if block.header.in_use == 0 {
                    assert_eq!(block.header.pool, 0, "free blocks have pool 0");
                }
                cursor += block.header.size as usize;
                blocks.push(block);
            }
            assert_eq!(
                cursor, segment.end as usize,
                "blocks end at the segment end"
            );
        }
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for block in blocks.iter().filter(|b| b.header.is_in_use()) {
            assert!(
                heap.is_pool_held(block.header.pool),
                "only guards allocate here"
            );
            *counts.entry(block.header.pool).or_default() += 1;
        }
        let expected: HashMap<u64, usize> = model
            .in_use
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(p, n)| (*p, *n))
            .collect();
        assert_eq!(counts, expected, "in-use blocks per pool");
        for (id, &(start, len, pool)) in &model.live {
            let i = blocks.partition_point(|b| b.pointer() as usize <= start);
            assert!(i > 0, "allocation {id} precedes every block");
            let block = blocks[i - 1];
            let capacity = block.header.size as usize - 32;
            assert!(block.header.is_in_use() && block.header.pool == pool);
            assert!(start + len <= block.pointer() as usize + capacity);
        }
    });
}

/// One random value kept in a box: bytes, or an aligned number.
enum Boxed<'p> {
    Bytes(brk_pools::PoolBox<'p, [u8]>, u64),
    Number(brk_pools::PoolBox<'p, u128>, u64),
}

/// One guard's life: random allocations, early frees, nested guards, resets.
fn session(
    pools: &Pools<Arena>,
    rng: &mut Rng,
    model: &mut Model,
    depth: usize,
    held: &mut Vec<u64>,
) {
    // Pick a pool; sometimes try one that is already held.
    if let Some(&taken) = held.first().filter(|_| rng.chance(20)) {
        let before = pools.inspect(layout);
        assert_eq!(
            pools.pool(taken).unwrap_err(),
            Error::PoolAlreadyHeld { pool: taken }
        );
        assert_eq!(before, pools.inspect(layout));
    }
    let number = loop {
        let candidate = 1 + rng.below(12);
        if !held.contains(&candidate) {
            break candidate;
        }
    };
    let mut pool = pools.pool(number).unwrap();
    held.push(number);
    let phases = 1 + rng.below(3);
    for _ in 0..phases {
        let mut slices: Vec<(&mut [u8], u64)> = Vec::new();
        let mut boxes: Vec<Boxed<'_>> = Vec::new();
        let steps = rng.below(30);
        for _ in 0..steps {
            model.operations += 1;
            let before = (rng.chance(5)).then(|| pools.inspect(layout));
            let choice = rng.below(100);
            let result: Result<(), Error> = (|| {
                match choice {
                    0..=29 => {
                        let len = random_size(rng);
                        let bytes = match rng.below(3) {
                            0 => pool.alloc_zeroed(len)?,
                            1 => {
                                let uninit = pool.alloc_uninit(len)?;
                                uninit.fill(std::mem::MaybeUninit::new(0));
                                // SAFETY: just initialised.
                                unsafe { &mut *(std::ptr::from_mut(uninit) as *mut [u8]) }
                            }
                            _ => pool.alloc_slice_copy(&vec![0u8; len])?,
                        };
                        assert!(bytes.iter().all(|&b| b == 0));
                        let id = model.id();
                        fill(bytes, id);
                        model
                            .live
                            .insert(id, (bytes.as_ptr() as usize, len, number));
                        slices.push((bytes, id));
                    }
                    30..=54 => {
                        let id = model.id();
                        let boxed = if rng.chance(70) {
                            let mut b = pool.boxed_zeroed(random_size(rng))?;
                            fill(&mut b, id);
                            model
                                .live
                                .insert(id, (b.as_ptr() as usize, b.len(), number));
                            Boxed::Bytes(b, id)
                        } else {
                            let b = pool.boxed(u128::from(id) * 0x0101_0101_0101_0101)?;
                            assert_eq!(std::ptr::from_ref(&*b) as usize % 16, 0);
                            model
                                .live
                                .insert(id, (std::ptr::from_ref(&*b) as usize, 16, number));
                            Boxed::Number(b, id)
                        };
                        boxes.push(boxed);
                    }
                    55..=74 if !boxes.is_empty() => {
                        let i = rng.below(boxes.len() as u64) as usize;
                        let id = match boxes.swap_remove(i) {
                            Boxed::Bytes(b, id) if rng.chance(20) => {
                                // Leak it into the pool: it stays in use.
                                let bytes = b.leak();
                                slices.push((bytes, id));
                                return Ok(());
                            }
                            Boxed::Bytes(b, id) => {
                                b.free();
                                id
                            }
                            Boxed::Number(b, id) => {
                                drop(b);
                                id
                            }
                        };
                        model.live.remove(&id);
                        *model.in_use.get_mut(&number).unwrap() -= 1;
                        return Ok(());
                    }
                    75..=79 if depth < 4 => {
                        session(pools, rng, model, depth + 1, held);
                        return Ok(());
                    }
                    _ => return Ok(()),
                }
                *model.in_use.entry(number).or_default() += 1;
                Ok(())
            })();
            match result {
                Ok(()) => {}
                Err(Error::BreakRefused { .. }) => {
                    model.refusals += 1;
                    if let Some(before) = before {
                        assert_eq!(before, pools.inspect(layout), "refusal changed the heap");
                    }
                }
                Err(e) => panic!("unexpected error {e}"),
            }
            for (bytes, id) in &slices {
                check(bytes, *id);
            }
            for boxed in &boxes {
                match boxed {
                    Boxed::Bytes(b, id) => check(b, *id),
                    Boxed::Number(b, id) => {
                        assert_eq!(**b, u128::from(*id) * 0x0101_0101_0101_0101)
                    }
                }
            }
            if rng.chance(25) {
                check_heap(pools, model);
            }
        }
        // End of the phase: its boxes are dropped, its slices forgotten (their
        // blocks stay in use until the reset or the guard's end).
        for boxed in boxes {
            let id = match boxed {
                Boxed::Bytes(_, id) | Boxed::Number(_, id) => id,
            };
            model.live.remove(&id);
            *model.in_use.get_mut(&number).unwrap() -= 1;
        }
        for (_, id) in slices {
            model.live.remove(&id);
        }
        check_heap(pools, model);
        if rng.chance(40) {
            pool.reset();
            model.in_use.insert(number, 0);
            check_heap(pools, model);
        }
    }
    drop(pool);
    held.retain(|&p| p != number);
    model.in_use.insert(number, 0);
    check_heap(pools, model);
}

#[test]
fn random_safe_operations_keep_contents_and_blocks_consistent() {
    let sequences: u64 = std::env::var("BRK_POOLS_RANDOM_SEQUENCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let mut totals = Model::default();
    for seed in 0..sequences {
        let mut rng = Rng(seed);
        // Small arenas now and then, so that refusals happen mid-sequence.
        let capacity = if seed % 5 == 0 { 48 * 1024 } else { 16 << 20 };
        let pools = Pools::on_arena(capacity).unwrap();
        let mut model = Model::default();
        let mut held = Vec::new();
        for _ in 0..1 + rng.below(4) {
            session(&pools, &mut rng, &mut model, 0, &mut held);
        }
        assert!(model.live.is_empty());
        pools.inspect(|heap| assert!(heap.blocks().all(|b| !b.header.is_in_use())));
        totals.operations += model.operations;
        totals.refusals += model.refusals;
    }
    println!(
        "{sequences} sequences, {} operations, {} refused by the break",
        totals.operations, totals.refusals
    );
    assert!(
        totals.refusals > 0,
        "the small arenas should refuse some growth"
    );
}

/// The raw operations keep the original's quirks (`docs/original-behaviour.md` A.3,
/// A.4, A.5, A.6); only the safe API rules them out.
#[test]
fn raw_quirks_are_reproduced() {
    use brk_pools::c_abi::zero_extended;
    use brk_pools::render::map;
    let mut heap = Heap::on_arena(1 << 20).unwrap();
    // Double free: accepted, no change the second time ([A.6](../docs/original-behaviour.md#a6-misuse) item 1).
    let a = heap.allocate(1, 16).unwrap();
    // SAFETY: a is a block of this heap; no guards exist.
    unsafe { heap.deallocate(a) };
    let once = layout(&heap);
    // SAFETY: as above (a double free is allowed by the contract).
    unsafe { heap.deallocate(a) };
    assert_eq!(once, layout(&heap));
    // Stale free frees the new owner ([A.6](../docs/original-behaviour.md#a6-misuse) item 2).
    let c = heap.allocate(3, 16).unwrap();
    assert_eq!(c, a);
    // SAFETY: a stale pointer of this heap; no guards exist.
    unsafe { heap.deallocate(a) };
    assert_eq!(map(&heap), "|.|", "c's block was freed through the stale a");
    // Pool 0: deallocate_pool(0) frees pool-0 blocks in use and rewrites
    // every free block with the zeros it holds ([A.5](../docs/original-behaviour.md#a5-pool-0)).
    heap.allocate(0, 16).unwrap();
    heap.allocate(2, 16).unwrap();
    heap.allocate(0, 16).unwrap();
    assert_eq!(map(&heap), "|0|2|0|");
    heap.deallocate_pool(0);
    assert_eq!(map(&heap), "|.|2|.|");
    // No rounding: odd sizes give odd addresses ([A.3](../docs/original-behaviour.md#a3-alignment)).
    let mut heap = Heap::on_arena(1 << 20).unwrap();
    let odd = heap.allocate(1, 7).unwrap();
    let next = heap.allocate(1, 16).unwrap();
    assert_eq!(next.as_ptr() as usize - odd.as_ptr() as usize, 39);
    assert_eq!(next.as_ptr() as usize % 2, 1);
    // C ints are zero-extended ([A.4](../docs/original-behaviour.md#a4-int-arguments-in-64-bit-registers)): pool -1 is 4294967295.
    assert_eq!(zero_extended(-1), 4_294_967_295);
    assert_eq!(zero_extended(i32::MIN), 0x8000_0000);
    heap.allocate(zero_extended(-1), 0).unwrap();
    assert!(heap.blocks().any(|b| b.header.pool == 4_294_967_295));
}
