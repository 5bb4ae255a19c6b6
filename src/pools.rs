//! The safe API: scoped pool guards whose allocations borrow from them.
//!
//! The raw operations ([`Heap::allocate`], the `unsafe`
//! [`Heap::deallocate`], [`Heap::deallocate_pool`]) hand out raw pointers
//! and free whatever they are told to, as run.s does. This module puts them
//! behind types with which safe code cannot cause undefined behaviour, in the
//! spirit of bumpalo's `Bump` (allocations borrow the allocator, `reset` needs
//! `&mut`) and of APR's scoped pools (a pool is freed as a whole when its
//! scope ends):
//!
//! * [`Pools`] owns a [`Heap`] (for example on an [`Arena`]);
//!   [`process()`] is the process heap. Both hand out guards through `&self`.
//! * [`Pool`] is a guard for one pool number. While it lives, nothing else
//!   can allocate into that pool or free its blocks: a second guard gets
//!   [`Error::PoolAlreadyHeld`], and the heap's own safe methods (and so the
//!   C ABI) get [`Error::PoolHeld`] or skip it. Pool 0 cannot be held
//!   ([`Error::PoolZeroReserved`]): free blocks have pool 0, and
//!   `deallocate_pool(0)` frees every pool-0 block. Blocks that raw or C
//!   callers put into the pool before the guard took it are adopted: they
//!   are freed with the guard.
//! * Allocations borrow the guard (`&'g self -> &'g mut T`). Dropping the
//!   guard calls `deallocate_pool` for its pool, which needs the guard by
//!   value, so no reference can outlive the blocks; [`Pool::reset`] frees
//!   them too and needs `&mut self`.
//! * [`PoolBox`] owns one block: dropping it (or [`PoolBox::free`]) runs the
//!   value's destructor and gives the block back early. Values placed with
//!   [`Pool::alloc`] are never dropped (like bumpalo): their memory is
//!   reclaimed with the pool, their destructors do not run.
//!
//! **Initialisation.** Blocks are reused whole and keep their old bytes
//! (`docs/original-behaviour.md` A.1), so memory from a block is never handed out as
//! initialised unless it was written: [`Pool::alloc_uninit`] returns
//! `MaybeUninit<u8>`, [`Pool::alloc_zeroed`] writes zeros, and the other
//! methods copy or move a value in.
//!
//! **Alignment.** Sizes are not rounded, so a block's user area can start
//! at any address (`docs/original-behaviour.md` A.3). Byte slices and `str` (alignment 1) use blocks of
//! exactly the requested size, so layouts are the original's. A type with
//! alignment `a > 1` asks for `size + a - 1` bytes and is placed at the first
//! aligned address inside the block.
//!
//! ```
//! use brk_pools::pools::Pools;
//!
//! let pools = Pools::on_arena(1 << 20)?;
//! {
//!     let pool = pools.pool(1)?;
//!     let name = pool.alloc_str("pool one")?;
//!     let numbers = pool.alloc_slice_copy(&[1u64, 2, 3])?;
//!     numbers[2] += name.len() as u64;
//!     assert_eq!(numbers, &[1, 2, 11]);
//!     let early = pool.boxed([7u8; 100])?;
//!     assert_eq!(early[99], 7);
//!     early.free(); // the block is free again; no reference to it remains
//!     assert!(pools.pool(1).is_err()); // one guard per pool
//! } // guard dropped: every block of pool 1 is freed
//! pools.inspect(|heap| assert!(heap.blocks().all(|b| !b.header.is_in_use())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The borrow checker rejects a reference that outlives its guard:
//!
//! ```compile_fail,E0505
//! use brk_pools::pools::Pools;
//!
//! let pools = Pools::on_arena(1 << 20).unwrap();
//! let pool = pools.pool(1).unwrap();
//! let bytes = pool.alloc_zeroed(16).unwrap();
//! drop(pool); // frees pool 1 ...
//! bytes[0] = 1; // ... so this would write to a free block
//! ```
//!
//! The raw, faithful operations stay available, as `unsafe` where they can
//! break the guards' promises:
//!
//! ```
//! use brk_pools::pools::Pools;
//!
//! let pools = Pools::on_arena(1 << 20)?;
//! // SAFETY: no guard is alive, so no guard's block can be freed.
//! unsafe {
//!     pools.with_heap_unchecked(|heap| {
//!         let p = heap.allocate(3, 16)?;
//!         heap.deallocate(p);
//!         heap.deallocate(p); // a double free is accepted, as in run.s
//!         Ok::<(), brk_pools::Error>(())
//!     })?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::mem::{MaybeUninit, align_of, size_of};
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};

use crate::error::Error;
use crate::heap::Heap;
use crate::lock::Lock;
use crate::process::ProcessBreak;
use crate::source::{Arena, BreakSource};

/// Panics for an operation that cannot return an error (a `Drop`, `reset`,
/// `inspect`) made on a thread that already holds the heap's lock: waiting
/// would never end.
#[track_caller]
fn reentered(operation: &str) -> ! {
    panic!(
        "brk-pools: {operation} on a thread that already holds this heap's lock \
         (inside Pools::inspect, Pools::with_heap_unchecked, or while process::lock() is held); \
         it would deadlock"
    )
}

mod sealed {
    use crate::heap::Heap;
    use crate::source::BreakSource;

    /// Exclusive access to one heap, the same heap every time.
    pub trait Locked: Sync {
        type Source: BreakSource;

        /// Runs `f` under the heap's lock, or returns
        /// [`Error::LockHeldByThisThread`](crate::Error::LockHeldByThisThread)
        /// if this thread holds it already.
        fn locked<R>(
            &self,
            f: impl FnOnce(&mut Heap<Self::Source>) -> R,
        ) -> Result<R, crate::Error>;
    }
}

/// A heap that [`Pool`] guards can be taken from: [`Pools`] or
/// [`ProcessPools`]. Sealed: the guards rely on its implementations locking
/// one and the same heap every time.
pub trait SharedHeap: sealed::Locked {}

/// A [`Heap`] shared by [`Pool`] guards through `&self` (a lock inside).
///
/// The lock knows which thread holds it: a guard operation made inside
/// [`inspect`](Pools::inspect) (or another callback under the lock) returns
/// [`Error::LockHeldByThisThread`], and one that cannot return an error
/// (dropping a [`Pool`] or [`PoolBox`], [`Pool::reset`], a nested `inspect`)
/// panics with that message, instead of deadlocking.
///
/// See the [module docs](self) for the rules and an example.
pub struct Pools<S: BreakSource> {
    heap: Lock<Heap<S>>,
}

impl Pools<Arena> {
    /// Pools on a heap on a fresh [`Arena`] of `capacity` bytes.
    pub fn on_arena(capacity: usize) -> std::io::Result<Pools<Arena>> {
        Ok(Pools::new(Heap::on_arena(capacity)?))
    }
}

impl<S: BreakSource + Send> Pools<S> {
    /// Shares `heap`.
    pub const fn new(heap: Heap<S>) -> Self {
        Pools {
            heap: Lock::new(heap),
        }
    }

    /// A guard for `pool`.
    ///
    /// # Errors
    /// [`Error::PoolZeroReserved`], [`Error::PoolAlreadyHeld`] or
    /// [`Error::TooManyPoolsHeld`]; the heap is unchanged.
    pub fn pool(&self, pool: u64) -> Result<Pool<'_, Self>, Error> {
        Pool::hold(self, pool)
    }

    /// Looks at the heap, e.g. with [`Heap::blocks`] or [`crate::render`].
    ///
    /// `f` runs under the heap's lock: guard operations inside it return
    /// [`Error::LockHeldByThisThread`], and dropping a guard or a [`PoolBox`]
    /// inside it panics (it cannot wait for itself).
    ///
    /// # Panics
    /// If this thread already holds the lock (an `inspect` inside `f`).
    pub fn inspect<R>(&self, f: impl FnOnce(&Heap<S>) -> R) -> R {
        sealed::Locked::locked(self, |heap| f(heap)).unwrap_or_else(|_| reentered("Pools::inspect"))
    }

    /// The heap itself. `&mut self` proves that no guard is borrowing.
    pub fn heap_mut(&mut self) -> &mut Heap<S> {
        self.heap.get_mut()
    }

    /// The heap back.
    pub fn into_heap(self) -> Heap<S> {
        self.heap.into_inner()
    }

    /// The heap itself while guards may be alive, for the raw operations
    /// (e.g. the faithful `unsafe` [`Heap::deallocate`]).
    ///
    /// # Safety
    /// `f` must not free a block a live guard handed out (with
    /// [`Heap::deallocate`]), and must not replace the heap or its break
    /// source (`mem::replace`/`swap`): dropping an [`Arena`] unmaps the
    /// guards' memory.
    ///
    /// # Panics
    /// If this thread already holds the lock, as [`inspect`](Pools::inspect).
    pub unsafe fn with_heap_unchecked<R>(&self, f: impl FnOnce(&mut Heap<S>) -> R) -> R {
        sealed::Locked::locked(self, f).unwrap_or_else(|_| reentered("Pools::with_heap_unchecked"))
    }
}

impl<S: BreakSource + Send> sealed::Locked for Pools<S> {
    type Source = S;

    fn locked<R>(&self, f: impl FnOnce(&mut Heap<S>) -> R) -> Result<R, Error> {
        // The heap's state is only changed by code that cannot panic half
        // way, so a panic in user code under the lock leaves it consistent.
        let mut heap = self.heap.lock().map_err(|_| Error::LockHeldByThisThread)?;
        Ok(f(&mut heap))
    }
}

impl<S: BreakSource + Send> SharedHeap for Pools<S> {}

impl<S: BreakSource + Send> fmt::Debug for Pools<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pools").finish_non_exhaustive()
    }
}

/// The process heap ([`crate::process`]) as a source of [`Pool`] guards.
///
/// Every guard locks the process heap only for the length of one operation,
/// so guards of different pools can be used from different threads, and C
/// code can call the C ABI in between. On a thread that holds
/// [`crate::process::lock`]'s guard, guard operations return
/// [`Error::LockHeldByThisThread`] (dropping a guard or a [`PoolBox`] there
/// panics) instead of deadlocking.
///
/// ```
/// let pool = brk_pools::pools::process().pool(41)?;
/// let text = pool.alloc_str("on the program break")?;
/// assert_eq!(text, "on the program break");
/// // C (and Rust) code cannot free the pool under the guard:
/// brk_pools::c_abi::deallocate_pool(41);
/// assert_eq!(text, "on the program break");
/// # Ok::<(), brk_pools::Error>(())
/// ```
#[derive(Debug)]
pub struct ProcessPools {
    _private: (),
}

static PROCESS_POOLS: ProcessPools = ProcessPools { _private: () };

/// The process heap's [`ProcessPools`].
pub fn process() -> &'static ProcessPools {
    &PROCESS_POOLS
}

impl ProcessPools {
    /// A guard for `pool` on the process heap.
    ///
    /// # Errors
    /// As [`Pools::pool`].
    pub fn pool(&'static self, pool: u64) -> Result<Pool<'static, Self>, Error> {
        Pool::hold(self, pool)
    }
}

impl sealed::Locked for ProcessPools {
    type Source = ProcessBreak;

    fn locked<R>(&self, f: impl FnOnce(&mut Heap<ProcessBreak>) -> R) -> Result<R, Error> {
        let mut heap = crate::process::lock_unless_reentered()?;
        Ok(f(&mut heap))
    }
}

impl SharedHeap for ProcessPools {}

/// A guard that holds one pool of a heap. Its allocations borrow it; dropping
/// it frees every block of the pool (`deallocate_pool`).
///
/// See the [module docs](self).
pub struct Pool<'h, H: SharedHeap> {
    heap: &'h H,
    pool: u64,
    token: u64,
}

/// Frees one block of a guard; what a [`PoolBox`] keeps of its guard.
trait FreeBlock: Sync {
    fn free_block(&self, pointer: NonNull<u8>);
}

impl<'h, H: SharedHeap> Pool<'h, H> {
    fn hold(heap: &'h H, pool: u64) -> Result<Self, Error> {
        let token = heap.locked(|heap| heap.held.insert(pool))??;
        Ok(Pool { heap, pool, token })
    }

    /// The pool number.
    pub fn number(&self) -> u64 {
        self.pool
    }

    /// A new block of this pool with room for `len` bytes at alignment
    /// `align`; returns the block pointer and the aligned address in it.
    fn block(&self, len: usize, align: usize) -> Result<(NonNull<u8>, NonNull<u8>), Error> {
        debug_assert!(align.is_power_of_two());
        let size = len
            .checked_add(align - 1)
            .filter(|&size| size <= isize::MAX as usize)
            .ok_or(Error::SizeOverflow { size: len as u64 })?;
        let block = self.heap.locked(|heap| {
            if heap.held.holds(self.pool, self.token) {
                heap.allocate_for_guard(self.pool, size as u64)
            } else {
                Err(Error::PoolNotHeld { pool: self.pool })
            }
        })??;
        let offset = block.as_ptr().align_offset(align);
        debug_assert!(offset < align);
        // SAFETY: the block has room for at least `len + align - 1` bytes
        // after its header, and offset < align, so the address stays inside it.
        let aligned = unsafe { block.add(offset) };
        Ok((block, aligned))
    }

    /// `len` bytes whose contents are whatever the block held (its last
    /// owner's data, or zeros on fresh memory): `MaybeUninit`.
    ///
    /// # Errors
    /// As [`Heap::allocate`], plus [`Error::PoolNotHeld`], and
    /// [`Error::LockHeldByThisThread`] on a thread that holds the heap's lock
    /// (inside [`Pools::inspect`]); the heap is then unchanged.
    #[allow(clippy::mut_from_ref)] // each call hands out a different block
    pub fn alloc_uninit(&self, len: usize) -> Result<&mut [MaybeUninit<u8>], Error> {
        let (_, data) = self.block(len, 1)?;
        // SAFETY: data..data+len lies in a block that is in use for this pool
        // and is handed out only here; it stays allocated until the guard is
        // dropped or reset, which the borrow of `self` outlasts.
        Ok(unsafe { core::slice::from_raw_parts_mut(data.as_ptr().cast(), len) })
    }

    /// `len` zero bytes (the block is zeroed: reused blocks keep old data).
    ///
    /// # Errors
    /// As [`alloc_uninit`](Pool::alloc_uninit).
    #[allow(clippy::mut_from_ref)] // each call hands out a different block
    pub fn alloc_zeroed(&self, len: usize) -> Result<&mut [u8], Error> {
        let bytes = self.alloc_uninit(len)?;
        bytes.fill(MaybeUninit::new(0));
        // SAFETY: every byte was just initialised.
        Ok(unsafe { &mut *(ptr::from_mut(bytes) as *mut [u8]) })
    }

    /// A copy of `values` in the pool.
    ///
    /// # Errors
    /// As [`alloc_uninit`](Pool::alloc_uninit); [`Error::SizeOverflow`] if
    /// the slice's size does not fit.
    #[allow(clippy::mut_from_ref)] // each call hands out a different block
    pub fn alloc_slice_copy<T: Copy>(&self, values: &[T]) -> Result<&mut [T], Error> {
        let data = self.place_slice(values)?;
        // SAFETY: place_slice initialised `values.len()` aligned Ts in a
        // block of this pool that lives as long as the borrow of `self`.
        Ok(unsafe { core::slice::from_raw_parts_mut(data.as_ptr(), values.len()) })
    }

    /// A copy of `text` in the pool.
    ///
    /// # Errors
    /// As [`alloc_uninit`](Pool::alloc_uninit).
    #[allow(clippy::mut_from_ref)] // each call hands out a different block
    pub fn alloc_str(&self, text: &str) -> Result<&mut str, Error> {
        let bytes = self.alloc_slice_copy(text.as_bytes())?;
        // SAFETY: the bytes are a copy of a str.
        Ok(unsafe { core::str::from_utf8_unchecked_mut(bytes) })
    }

    /// Moves `value` into the pool. Its destructor never runs (the memory is
    /// reclaimed with the pool); use [`boxed`](Pool::boxed) for values that
    /// need dropping.
    ///
    /// # Errors
    /// As [`alloc_uninit`](Pool::alloc_uninit); `value` is dropped then.
    #[allow(clippy::mut_from_ref)] // each call hands out a different block
    pub fn alloc<T>(&self, value: T) -> Result<&mut T, Error> {
        let (_, data) = self.block(size_of::<T>(), align_of::<T>())?;
        let data = data.cast::<T>();
        // SAFETY: data is aligned for T with room for one T, in a block of
        // this pool handed out only here and living as long as `self`'s borrow.
        unsafe {
            data.write(value);
            Ok(&mut *data.as_ptr())
        }
    }

    /// Moves `value` into its own block, owned by the returned box: dropping
    /// the box drops the value and frees the block.
    ///
    /// # Errors
    /// As [`alloc`](Pool::alloc).
    pub fn boxed<T>(&self, value: T) -> Result<PoolBox<'_, T>, Error> {
        let (block, data) = self.block(size_of::<T>(), align_of::<T>())?;
        let data = data.cast::<T>();
        // SAFETY: as in alloc.
        unsafe { data.write(value) };
        Ok(PoolBox::new(data, block, self))
    }

    /// A boxed copy of `values`.
    ///
    /// # Errors
    /// As [`alloc_slice_copy`](Pool::alloc_slice_copy).
    pub fn boxed_slice_copy<T: Copy>(&self, values: &[T]) -> Result<PoolBox<'_, [T]>, Error> {
        let (block, data) = self.place(values)?;
        let slice = NonNull::slice_from_raw_parts(data, values.len());
        Ok(PoolBox::new(slice, block, self))
    }

    /// `len` boxed zero bytes.
    ///
    /// # Errors
    /// As [`alloc_uninit`](Pool::alloc_uninit).
    pub fn boxed_zeroed(&self, len: usize) -> Result<PoolBox<'_, [u8]>, Error> {
        let (block, data) = self.block(len, 1)?;
        // SAFETY: data..data+len is inside the new block (see block()).
        unsafe { data.write_bytes(0, len) };
        Ok(PoolBox::new(
            NonNull::slice_from_raw_parts(data, len),
            block,
            self,
        ))
    }

    fn place_slice<T: Copy>(&self, values: &[T]) -> Result<NonNull<T>, Error> {
        self.place(values).map(|(_, data)| data)
    }

    fn place<T: Copy>(&self, values: &[T]) -> Result<(NonNull<u8>, NonNull<T>), Error> {
        let len = size_of::<T>()
            .checked_mul(values.len())
            .ok_or(Error::SizeOverflow { size: u64::MAX })?;
        let (block, data) = self.block(len, align_of::<T>())?;
        let data = data.cast::<T>();
        // SAFETY: data is aligned with room for values.len() Ts, in a fresh
        // block that cannot overlap `values` (a live borrow elsewhere).
        unsafe { ptr::copy_nonoverlapping(values.as_ptr(), data.as_ptr(), values.len()) };
        Ok((block, data))
    }

    /// Frees every block of the pool, keeping the pool held. `&mut self`
    /// proves that nothing borrows from the guard.
    ///
    /// # Panics
    /// On a thread that holds the heap's lock (inside [`Pools::inspect`]).
    pub fn reset(&mut self) {
        self.heap
            .locked(|heap| {
                if heap.held.holds(self.pool, self.token) {
                    heap.deallocate_pool_for_guard(self.pool);
                }
            })
            .unwrap_or_else(|_| reentered("Pool::reset"));
    }
}

impl<H: SharedHeap> FreeBlock for Pool<'_, H> {
    fn free_block(&self, pointer: NonNull<u8>) {
        self.heap
            .locked(|heap| {
                // With our token still in the table this is the heap the block
                // came from (tokens are unique, and a Heap cannot be cloned), and
                // the block is in use for our pool: only its box frees it.
                if heap.held.holds(self.pool, self.token) {
                    // SAFETY: see above; the header before `pointer` is ours,
                    // and the box freeing it is the block's only user (so
                    // Heap::deallocate's "no live guard's block" is the box's own).
                    unsafe { heap.deallocate(pointer) }
                }
            })
            .unwrap_or_else(|_| reentered("dropping a PoolBox"));
    }
}

impl<H: SharedHeap> Drop for Pool<'_, H> {
    fn drop(&mut self) {
        self.heap
            .locked(|heap| {
                if heap.held.remove(self.pool, self.token) {
                    heap.deallocate_pool_for_guard(self.pool);
                }
            })
            .unwrap_or_else(|_| reentered("dropping a Pool guard"));
    }
}

impl<H: SharedHeap> fmt::Debug for Pool<'_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("pool", &self.pool).finish()
    }
}

/// A value in its own block of a pool, borrowed from the [`Pool`] guard.
/// Dropping it (or [`free`](PoolBox::free)) drops the value and frees the
/// block (`deallocate`), so the block can be reused before the guard ends.
///
/// Dropping it on a thread that holds the heap's lock (inside
/// [`Pools::inspect`], or while [`crate::process::lock`]'s guard lives)
/// panics instead of deadlocking; the block then stays in use until the
/// guard ends.
pub struct PoolBox<'p, T: ?Sized> {
    value: NonNull<T>,
    block: NonNull<u8>,
    owner: &'p dyn FreeBlock,
    _owns: PhantomData<T>,
}

// SAFETY: a PoolBox owns its T like a Box; the owner is only used to free
// the block, under the heap's lock, and is Sync.
unsafe impl<T: ?Sized + Send> Send for PoolBox<'_, T> {}
// SAFETY: &PoolBox only gives out &T.
unsafe impl<T: ?Sized + Sync> Sync for PoolBox<'_, T> {}

impl<'p, T: ?Sized> PoolBox<'p, T> {
    fn new(value: NonNull<T>, block: NonNull<u8>, owner: &'p dyn FreeBlock) -> Self {
        PoolBox {
            value,
            block,
            owner,
            _owns: PhantomData,
        }
    }

    /// Drops the value and gives its block back now.
    pub fn free(self) {
        drop(self);
    }

    /// Keeps the value until the guard is dropped or reset (its destructor
    /// does not run then).
    pub fn leak(self) -> &'p mut T {
        let value = self.value;
        core::mem::forget(self);
        // SAFETY: the block stays in use until the guard frees the pool, which
        // needs the guard's borrow 'p to have ended.
        unsafe { &mut *value.as_ptr() }
    }

    /// The pointer the heap handed out for the block (the header is 32 bytes
    /// before it); the value may sit a little later, for alignment.
    pub fn block_pointer(&self) -> *const u8 {
        self.block.as_ptr()
    }
}

impl<T: ?Sized> Deref for PoolBox<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the value is initialised and owned by this box.
        unsafe { self.value.as_ref() }
    }
}

impl<T: ?Sized> DerefMut for PoolBox<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the value is initialised and owned by this box.
        unsafe { self.value.as_mut() }
    }
}

impl<T: ?Sized> Drop for PoolBox<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the value is initialised, owned by this box, and dropped
        // once; no reference to it survives this box.
        unsafe { ptr::drop_in_place(self.value.as_ptr()) };
        self.owner.free_block(self.block);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for PoolBox<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
