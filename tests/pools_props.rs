//! Property test of the safe API with shrinking: random sequences of guard
//! operations (open a guard, allocate byte slices and boxes, free boxes
//! early, reset, close), on an arena, checked after every operation against
//! a reference model of the allocator written here from its rules (first
//! fit, a reused block taken whole, no coalescing, append at the end, a
//! dropped guard or a reset frees its pool), and every live allocation's
//! bytes checked. A failure is shrunk by proptest to a short sequence and
//! saved in `proptest-regressions/pools_props.txt`.
//!
//! `PROPTEST_CASES=N` runs more sequences than the default 64.

mod support;

use std::fmt;

use brk_pools::pools::{Pool, Pools};
use brk_pools::{Arena, Error, PoolBox};
use proptest::prelude::*;

/// One operation on the innermost open guard (or on the guard stack).
#[derive(Clone, Copy)]
enum SafeOp {
    /// `pools.pool(n)`: a new innermost guard (pool 0 and held pools are
    /// errors that change nothing).
    Open(u64),
    /// Drop the innermost guard: every block of its pool is freed.
    Close,
    /// `alloc_zeroed(len)`: a slice that lives until the guard's reset or end.
    Slice(usize),
    /// `boxed_zeroed(len)`: a box that can be freed early.
    Boxed(usize),
    /// Free the `i % boxes`-th box of the innermost guard.
    FreeBox(usize),
    /// `reset()` the innermost guard (its slices and boxes go first).
    Reset,
}

impl fmt::Debug for SafeOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SafeOp::Open(n) => write!(f, "open pool {n}"),
            SafeOp::Close => write!(f, "close"),
            SafeOp::Slice(len) => write!(f, "alloc_zeroed({len})"),
            SafeOp::Boxed(len) => write!(f, "boxed_zeroed({len})"),
            SafeOp::FreeBox(i) => write!(f, "free box {i}"),
            SafeOp::Reset => write!(f, "reset"),
        }
    }
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0..200usize, 1 => Just(0usize), 1 => 0..6000usize]
}

fn safe_op() -> impl Strategy<Value = SafeOp> {
    // proptest shrinks an operation towards the first alternatives: the
    // plainest operations come first.
    prop_oneof![
        5 => size().prop_map(SafeOp::Slice),
        4 => size().prop_map(SafeOp::Boxed),
        3 => (0..16usize).prop_map(SafeOp::FreeBox),
        1 => Just(SafeOp::Reset),
        1 => Just(SafeOp::Close),
        2 => (0..8u64).prop_map(SafeOp::Open),
    ]
}

/// The allocator's rules, on a list of blocks `(size, in_use, pool)`.
#[derive(Default)]
struct Model {
    blocks: Vec<(u64, u64, u64)>,
}

impl Model {
    /// The header offset of the block `allocate(pool, len)` uses.
    fn allocate(&mut self, pool: u64, len: usize) -> usize {
        let size = len as u64 + 32;
        let mut offset = 0;
        for block in &mut self.blocks {
            if block.1 == 0 && block.0 >= size {
                *block = (block.0, 1, pool);
                return offset;
            }
            offset += block.0 as usize;
        }
        self.blocks.push((size, 1, pool));
        offset
    }

    fn free_at(&mut self, at: usize) {
        let mut offset = 0;
        for block in &mut self.blocks {
            if offset == at {
                *block = (block.0, 0, 0);
                return;
            }
            offset += block.0 as usize;
        }
        panic!("the model has no block at +{at:#x}");
    }

    fn free_pool(&mut self, pool: u64) {
        for block in &mut self.blocks {
            if block.2 == pool {
                *block = (block.0, 0, 0);
            }
        }
    }
}

/// The heap's blocks as `(size, in_use, pool)`.
fn blocks(pools: &Pools<Arena>) -> Vec<(u64, u64, u64)> {
    pools.inspect(|heap| {
        heap.blocks()
            .map(|b| (b.header.size, b.header.in_use, b.header.pool))
            .collect()
    })
}

fn pattern(id: usize, i: usize) -> u8 {
    (id as u8).wrapping_mul(37) ^ (i as u8).wrapping_mul(31) ^ ((i >> 8) as u8)
}

/// Runs the operations; returns the first broken promise.
struct Run<'a> {
    pools: &'a Pools<Arena>,
    ops: &'a [SafeOp],
    at: usize,
    model: Model,
    next_id: usize,
}

impl Run<'_> {
    fn check(&self, live: &[(&[u8], usize)]) -> Result<(), String> {
        let actual = blocks(self.pools);
        if actual != self.model.blocks {
            return Err(format!(
                "after op {} ({:?}): blocks (size, in_use, pool)\n  heap:  {actual:?}\n  model: {:?}",
                self.at, self.ops[self.at], self.model.blocks
            ));
        }
        for (bytes, id) in live {
            if let Some(i) = (0..bytes.len()).find(|&i| bytes[i] != pattern(*id, i)) {
                return Err(format!(
                    "after op {}: allocation {id} lost byte {i}",
                    self.at
                ));
            }
        }
        Ok(())
    }

    /// Fills a new allocation of `pool` with its own pattern and checks
    /// that it sits in the block the model's first fit chose; returns its id.
    fn fill_and_place(
        &mut self,
        pool: u64,
        bytes: &mut [u8],
        block: *const u8,
        what: &str,
    ) -> Result<usize, String> {
        let id = self.next_id;
        self.next_id += 1;
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = pattern(id, i);
        }
        let at = self.model.allocate(pool, bytes.len());
        if self.header_offset(block) != at {
            return Err(format!("op {}: {what} at the wrong block", self.at));
        }
        Ok(id)
    }

    /// The header offset of the block whose data starts at `data`.
    fn header_offset(&self, data: *const u8) -> usize {
        let start = self.pools.inspect(|heap| heap.memory_start() as usize);
        data as usize - 32 - start
    }

    /// Runs operations on `guard` (the innermost) until `Close` or the end;
    /// `outer` are the outer guards' live bytes, checked too.
    fn session(
        &mut self,
        mut guard: Pool<'_, Pools<Arena>>,
        outer: &[(&[u8], usize)],
    ) -> Result<(), String> {
        let pool = guard.number();
        loop {
            // One phase: slices and boxes live until a reset or the end.
            let mut slices: Vec<(&[u8], usize)> = Vec::new();
            let mut boxes: Vec<(PoolBox<'_, [u8]>, usize)> = Vec::new();
            let reset = loop {
                let Some(&op) = self.ops.get(self.at) else {
                    break false;
                };
                match op {
                    SafeOp::Close => break false,
                    SafeOp::Reset => break true,
                    SafeOp::Open(n) => {
                        let before = blocks(self.pools);
                        match self.pools.pool(n) {
                            Ok(inner) => {
                                self.at += 1;
                                let live = live_bytes(outer, &slices, &boxes);
                                self.session(inner, &live)?;
                                self.model.free_pool(n);
                            }
                            Err(Error::PoolZeroReserved | Error::PoolAlreadyHeld { .. }) => {
                                if blocks(self.pools) != before {
                                    return Err(format!(
                                        "op {}: a refused guard changed the heap",
                                        self.at
                                    ));
                                }
                            }
                            Err(e) => return Err(format!("op {}: unexpected {e}", self.at)),
                        }
                    }
                    SafeOp::Slice(len) => {
                        let bytes = guard.alloc_zeroed(len).map_err(|e| e.to_string())?;
                        if bytes.iter().any(|&b| b != 0) {
                            return Err(format!(
                                "op {}: alloc_zeroed gave non-zero bytes",
                                self.at
                            ));
                        }
                        let block = bytes.as_ptr();
                        let id = self.fill_and_place(pool, bytes, block, "slice")?;
                        slices.push((bytes, id));
                    }
                    SafeOp::Boxed(len) => {
                        let mut b = guard.boxed_zeroed(len).map_err(|e| e.to_string())?;
                        let block = b.block_pointer();
                        let id = self.fill_and_place(pool, &mut b, block, "box")?;
                        boxes.push((b, id));
                    }
                    SafeOp::FreeBox(i) if !boxes.is_empty() => {
                        let (b, _) = boxes.swap_remove(i % boxes.len());
                        let at = self.header_offset(b.block_pointer());
                        b.free();
                        self.model.free_at(at);
                    }
                    SafeOp::FreeBox(_) => {}
                }
                let live = live_bytes(outer, &slices, &boxes);
                self.check(&live)?;
                self.at += 1;
            };
            // Boxes dropped at the end of a phase free their blocks.
            for (b, _) in boxes {
                let at = self.header_offset(b.block_pointer());
                drop(b);
                self.model.free_at(at);
            }
            drop(slices);
            if !reset {
                break;
            }
            guard.reset();
            self.model.free_pool(pool);
            self.check(outer)?;
            self.at += 1;
        }
        // Close (or the end of the operations): dropping the guard frees its pool.
        if self.at < self.ops.len() {
            self.at += 1;
        }
        drop(guard);
        Ok(())
    }
}

/// Runs `ops`: each top-level stretch of operations runs in a guard of pool
/// 1 (or the pool `Open` names), as sessions nest.
fn run(ops: &[SafeOp]) -> Result<(), String> {
    let pools = Pools::on_arena(1 << 30).map_err(|e| e.to_string())?;
    let mut run = Run {
        pools: &pools,
        ops,
        at: 0,
        model: Model::default(),
        next_id: 0,
    };
    while run.at < ops.len() {
        let number = match ops[run.at] {
            SafeOp::Open(n) if n != 0 => {
                run.at += 1;
                n
            }
            _ => 1,
        };
        let guard = pools.pool(number).map_err(|e| e.to_string())?;
        run.session(guard, &[])?;
        run.model.free_pool(number);
        run.check(&[])
            .map_err(|e| format!("after dropping the guard of pool {number}: {e}"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(support::props::config("pools_props", 64))]

    #[test]
    fn safe_operations_follow_the_allocators_rules(ops in prop::collection::vec(safe_op(), 0..120)) {
        if let Err(broken) = run(&ops) {
            prop_assert!(false, "{}", broken);
        }
    }
}

/// Every live allocation's bytes with its id: the outer guards', then this
/// session's slices and boxes.
fn live_bytes<'a>(
    outer: &[(&'a [u8], usize)],
    slices: &[(&'a [u8], usize)],
    boxes: &'a [(PoolBox<'_, [u8]>, usize)],
) -> Vec<(&'a [u8], usize)> {
    outer
        .iter()
        .copied()
        .chain(slices.iter().copied())
        .chain(boxes.iter().map(|(b, id)| (&b[..], *id)))
        .collect()
}
