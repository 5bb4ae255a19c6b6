//! The table of pools held by guards ([`crate::pools::Pool`]), kept inside
//! the [`Heap`](super::Heap) so that the heap's safe methods (and so the C ABI)
//! can respect it. It grows in its own mapping ([`MappedVec`]), like the
//! segment table: no fixed limit, and no `malloc`.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;
use crate::mapped_vec::MappedVec;

#[derive(Clone, Copy)]
struct Hold {
    pool: u64,
    token: u64,
}

/// Pools held by guards, each with the token of its hold.
pub(crate) struct HeldPools {
    holds: MappedVec<Hold>,
}

/// Tokens tell a guard's hold apart from any later hold of the same pool, in
/// this heap or in another one that replaced it. Never reused.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

impl HeldPools {
    pub(crate) const EMPTY: HeldPools = HeldPools {
        holds: MappedVec::EMPTY,
    };

    fn held(&self) -> &[Hold] {
        self.holds.as_slice()
    }

    /// Whether a guard holds `pool`. (Most programs hold none: that case
    /// is one load and a branch.)
    #[inline]
    pub(crate) fn contains(&self, pool: u64) -> bool {
        !self.is_empty() && self.contains_among_holds(pool)
    }

    /// Whether no guard holds any pool (most programs): one load.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.holds.len() == 0
    }

    /// [`contains`](HeldPools::contains) once some pool is held: out of
    /// line, so that the common case stays one load and a branch.
    #[inline(never)]
    fn contains_among_holds(&self, pool: u64) -> bool {
        self.held().iter().any(|h| h.pool == pool)
    }

    /// [`Error::PoolHeld`] if a guard holds `pool`.
    #[inline]
    pub(crate) fn check_not_held(&self, pool: u64) -> Result<(), Error> {
        if self.contains(pool) {
            Err(Error::PoolHeld { pool })
        } else {
            Ok(())
        }
    }

    /// Whether the hold with `token` on `pool` is still in the table.
    pub(crate) fn holds(&self, pool: u64, token: u64) -> bool {
        self.held()
            .iter()
            .any(|h| h.pool == pool && h.token == token)
    }

    /// Records a new hold on `pool`; returns its token.
    pub(crate) fn insert(&mut self, pool: u64) -> Result<u64, Error> {
        if pool == 0 {
            return Err(Error::PoolZeroReserved);
        }
        if self.contains(pool) {
            return Err(Error::PoolAlreadyHeld { pool });
        }
        self.holds.reserve(1).map_err(|_| Error::TooManyPoolsHeld {
            limit: self.holds.len(),
        })?;
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        self.holds
            .push(Hold { pool, token })
            .expect("room was reserved");
        Ok(token)
    }

    /// Ends the hold with `token` on `pool`; false if it was not recorded.
    pub(crate) fn remove(&mut self, pool: u64, token: u64) -> bool {
        let Some(index) = self
            .held()
            .iter()
            .position(|h| h.pool == pool && h.token == token)
        else {
            return false;
        };
        self.holds.swap_remove(index);
        true
    }
}
