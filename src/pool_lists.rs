//! Each pool's blocks, for the `indexed-fit` build's `deallocate_pool`: the
//! pool's own blocks, not a walk of all of them.
//!
//! run.s's `deallocate_pool` walks every block to find the pool's. With the
//! fit index `allocate` no longer walks, and a release that did would cost
//! O(N) for a pool of a few blocks. So this build keeps, for every pool, a
//! doubly linked list threaded through the block positions (the block
//! index's: append order), and a hash table from pool number to the list's
//! first position. A block is *listed* in the pool it was last allocated
//! in:
//!
//! * an allocate for the pool the block is listed in (a block freed and
//!   taken again by the same pool, the common case) changes nothing; for
//!   another pool it moves the block to that pool's list, O(1) (expected,
//!   for the table lookup, which is skipped when the pool is the last one
//!   asked for);
//! * a free changes nothing: the block stays listed, free;
//! * a release visits the pool's list, frees the blocks there that are in
//!   use, and empties the list: O(blocks listed in the pool), which is at
//!   most the pool's blocks in use plus those it freed since its last
//!   release (each block is listed in one pool at most).
//!
//! The table keeps a slot for every pool that ever had a block (its list
//! may be empty); it doubles when half full. Everything lives in
//! [`MappedVec`]s, so it never calls `malloc`.

use crate::mapped_vec::{MappedVec, NoMemory};

/// No position: the end of a list, an empty list, no slot.
const NONE: usize = usize::MAX;
/// A table slot no pool has claimed.
const VACANT: usize = usize::MAX - 1;

/// One position's place in a pool's list.
#[derive(Clone, Copy)]
struct Links {
    /// The table slot of the pool the block is listed in, or [`NONE`].
    slot: usize,
    prev: usize,
    next: usize,
}

/// A pool number and its list's first position ([`NONE`]: empty;
/// [`VACANT`]: the slot is unclaimed).
#[derive(Clone, Copy)]
struct Slot {
    pool: u64,
    first: usize,
}

/// Every pool's list of blocks (see the [module docs](self)).
pub(crate) struct PoolLists {
    /// One per block position.
    links: MappedVec<Links>,
    /// Open addressing, linear probing; a power of two long (or empty).
    slots: MappedVec<Slot>,
    claimed: usize,
    /// The last pool asked for and its slot ([`NONE`]: none yet): a program
    /// allocates from one pool many times in a row, and this saves the
    /// table lookup then.
    recent: (u64, usize),
}

impl PoolLists {
    pub(crate) const EMPTY: PoolLists = PoolLists {
        links: MappedVec::EMPTY,
        slots: MappedVec::EMPTY,
        claimed: 0,
        recent: (0, NONE),
    };

    /// A block appended at the next position, in use for `pool`.
    pub(crate) fn appended(&mut self, pool: u64) -> Result<(), NoMemory> {
        self.links.push(Links {
            slot: NONE,
            prev: NONE,
            next: NONE,
        })?;
        self.allocated(self.links.len() - 1, pool)
    }

    /// Whether the block at `position` is listed in `pool`, answered only in
    /// the usual case: `pool` is the one asked for last and the block is
    /// listed there (freed by `deallocate` and taken again by the pool it
    /// was last allocated in). False means "not known": call
    /// [`allocated`](PoolLists::allocated).
    #[inline]
    pub(crate) fn is_listed(&self, position: usize, pool: u64) -> bool {
        self.recent_slot(pool)
            .is_some_and(|slot| self.links.as_slice()[position].slot == slot)
    }

    /// The slot of `pool` if it is the pool asked for last.
    #[inline]
    fn recent_slot(&self, pool: u64) -> Option<usize> {
        let (recent, slot) = self.recent;
        (recent == pool && slot != NONE).then_some(slot)
    }

    /// The block at `position` is now in use for `pool`: listed there (a
    /// reuse calls it only when [`is_listed`](PoolLists::is_listed) does not
    /// know; an append always).
    pub(crate) fn allocated(&mut self, position: usize, pool: u64) -> Result<(), NoMemory> {
        let slot = match self.recent_slot(pool) {
            Some(slot) => slot,
            None => self.claim(pool)?,
        };
        if self.links.as_slice()[position].slot != slot {
            self.relist(position, slot);
        }
        Ok(())
    }

    /// Moves the block at `position` to the front of the list of `slot`.
    #[inline(never)]
    fn relist(&mut self, position: usize, slot: usize) {
        self.unlist(position);
        let slots = self.slots.as_mut_slice();
        let links = self.links.as_mut_slice();
        let first = slots[slot].first;
        links[position] = Links {
            slot,
            prev: NONE,
            next: first,
        };
        if first != NONE {
            links[first].prev = position;
        }
        slots[slot].first = position;
    }

    /// Takes the block at `position` out of its list, if it is in one.
    fn unlist(&mut self, position: usize) {
        let links = self.links.as_mut_slice();
        let Links { slot, prev, next } = links[position];
        if slot == NONE {
            return;
        }
        links[position].slot = NONE;
        if next != NONE {
            links[next].prev = prev;
        }
        if prev == NONE {
            self.slots.as_mut_slice()[slot].first = next;
        } else {
            links[prev].next = next;
        }
    }

    /// The positions listed in `pool`, most recently listed first.
    pub(crate) fn listed(&self, pool: u64) -> impl Iterator<Item = usize> + '_ {
        let links = self.links.as_slice();
        let first = self
            .find(pool)
            .map_or(NONE, |slot| self.slots.as_slice()[slot].first);
        let position = |position: usize| (position != NONE).then_some(position);
        core::iter::successors(position(first), move |&p| position(links[p].next))
    }

    /// Empties `pool`'s list (its blocks in use were freed).
    pub(crate) fn clear(&mut self, pool: u64) {
        let Some(slot) = self.find(pool) else {
            return;
        };
        let mut position = core::mem::replace(&mut self.slots.as_mut_slice()[slot].first, NONE);
        let links = self.links.as_mut_slice();
        while position != NONE {
            links[position].slot = NONE;
            position = links[position].next;
        }
    }

    /// The slot of `pool`, if it has one.
    fn find(&self, pool: u64) -> Option<usize> {
        let slots = self.slots.as_slice();
        let mask = slots.len().checked_sub(1)?;
        let mut slot = home(pool, mask);
        loop {
            match slots[slot] {
                Slot { first: VACANT, .. } => return None,
                Slot { pool: claimed, .. } if claimed == pool => return Some(slot),
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// The slot of `pool`, claimed now if it had none (the table doubles
    /// first when half full); it becomes the recent one.
    #[inline(never)]
    fn claim(&mut self, pool: u64) -> Result<usize, NoMemory> {
        let slot = match self.find(pool) {
            Some(slot) => slot,
            None => self.claim_vacant(pool)?,
        };
        self.recent = (pool, slot);
        Ok(slot)
    }

    /// A vacant slot for `pool`, which has none.
    fn claim_vacant(&mut self, pool: u64) -> Result<usize, NoMemory> {
        if 2 * (self.claimed + 1) > self.slots.len() {
            self.grow()?;
        }
        let slots = self.slots.as_mut_slice();
        let slot = vacant_slot(slots, pool);
        slots[slot] = Slot { pool, first: NONE };
        self.claimed += 1;
        Ok(slot)
    }

    /// A table twice as long, every claimed slot moved into it, and every
    /// listed position told its new slot (O(N), as rare as a doubling).
    fn grow(&mut self) -> Result<(), NoMemory> {
        let length = (self.slots.len() * 2).max(16);
        let mut slots = MappedVec::EMPTY;
        slots.reserve(length)?;
        for _ in 0..length {
            slots.push(Slot {
                pool: 0,
                first: VACANT,
            })?;
        }
        let links = self.links.as_mut_slice();
        for old in self.slots.as_slice().iter().filter(|s| s.first != VACANT) {
            let new = slots.as_mut_slice();
            let slot = vacant_slot(new, old.pool);
            new[slot] = *old;
            let mut position = old.first;
            while position != NONE {
                links[position].slot = slot;
                position = links[position].next;
            }
        }
        self.slots = slots;
        self.recent = (0, NONE);
        Ok(())
    }
}

/// The first vacant slot of `slots` (a power of two long, at most half
/// claimed, so there is one) from `pool`'s home on.
fn vacant_slot(slots: &[Slot], pool: u64) -> usize {
    let mask = slots.len() - 1;
    let mut slot = home(pool, mask);
    while slots[slot].first != VACANT {
        slot = (slot + 1) & mask;
    }
    slot
}

/// Where `pool`'s probe starts (Fibonacci hashing, as the block index does).
fn home(pool: u64, mask: usize) -> usize {
    (pool.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random appends, allocates, frees and releases against a plain
    /// vector of the pool each block was last allocated in, with enough
    /// pools to make the table grow several times.
    #[test]
    fn lists_each_block_in_the_pool_it_was_last_allocated_in() {
        let mut lists = PoolLists::EMPTY;
        // Per position: the pool it is listed in, and whether it is in use.
        let mut model: Vec<(Option<u64>, bool)> = Vec::new();
        let mut rng = crate::test_rng::Rng::new(1);
        let mut next = |below: u64| rng.below(below);
        for step in 0..20_000 {
            let pool = next(300);
            match next(4) {
                0 => {
                    lists.appended(pool).unwrap();
                    model.push((Some(pool), true));
                }
                1 if !model.is_empty() => {
                    let position = next(model.len() as u64) as usize;
                    if !model[position].1 {
                        lists.allocated(position, pool).unwrap();
                        model[position] = (Some(pool), true);
                    }
                }
                2 if !model.is_empty() => {
                    let position = next(model.len() as u64) as usize;
                    model[position].1 = false; // a free: nothing to tell
                }
                _ => {
                    let mut listed: Vec<usize> = lists.listed(pool).collect();
                    listed.sort_unstable();
                    let expected: Vec<usize> = (0..model.len())
                        .filter(|&p| model[p].0 == Some(pool))
                        .collect();
                    assert_eq!(listed, expected, "pool {pool} at step {step}");
                    if next(2) == 0 {
                        lists.clear(pool);
                        for block in model.iter_mut().filter(|b| b.0 == Some(pool)) {
                            *block = (None, false);
                        }
                    }
                }
            }
        }
        for pool in 0..300 {
            let count = lists.listed(pool).count();
            assert_eq!(count, model.iter().filter(|b| b.0 == Some(pool)).count());
        }
        assert!(lists.slots.len() >= 512, "the table grew");
    }
}
