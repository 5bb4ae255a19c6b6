//! A growable array in its own anonymous `mmap` region: the heap's
//! bookkeeping (segment table, block index, held pools) without `malloc`.
//!
//! The heap must never call `malloc`: glibc's main arena grows with `brk`,
//! and a `malloc` inside the heap's own operation could move the break under
//! it. So its tables live in private anonymous mappings, made at the first
//! push and doubled with `mremap`, and have no fixed limit. If the kernel
//! refuses the memory, [`reserve`](MappedVec::reserve) says so and nothing
//! changes.

use core::ptr;

/// A `Vec<T>` whose buffer is an anonymous mapping.
pub(crate) struct MappedVec<T: Copy> {
    /// The mapping; dangling (aligned, not null) while `capacity` is 0, so
    /// that the slices below need no branch for the empty case.
    items: *mut T,
    len: usize,
    capacity: usize,
}

// SAFETY: the vector owns its mapping; nothing in it is tied to a thread.
unsafe impl<T: Copy + Send> Send for MappedVec<T> {}

/// A fresh private anonymous mapping of `bytes`: readable, writable, zeroed
/// by the kernel, aliasing nothing. None if the kernel refuses.
pub(crate) fn map_anonymous(bytes: usize) -> Option<*mut u8> {
    // SAFETY: asking for new memory at an address of the kernel's choosing
    // touches no existing memory.
    let mapping = unsafe {
        libc::mmap(
            ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (mapping != libc::MAP_FAILED).then_some(mapping.cast())
}

/// The kernel refused memory for a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NoMemory;

impl<T: Copy> MappedVec<T> {
    /// No items, no mapping yet.
    pub(crate) const EMPTY: MappedVec<T> = MappedVec {
        items: ptr::NonNull::dangling().as_ptr(),
        len: 0,
        capacity: 0,
    };

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The mapping's first item (dangling while empty), with the mapping's
    /// own permissions: unlike a pointer taken from
    /// [`as_slice`](MappedVec::as_slice), it stays valid for reads across
    /// later writes through [`as_mut_slice`](MappedVec::as_mut_slice).
    #[inline]
    pub(crate) fn as_ptr(&self) -> *const T {
        self.items
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[T] {
        // SAFETY: the first len items of the mapping were written by push
        // (len is 0 while items dangles: an empty slice may dangle).
        unsafe { core::slice::from_raw_parts(self.items, self.len) }
    }

    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in as_slice, and &mut self makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.items, self.len) }
    }

    /// Makes room for `additional` more items, so that that many pushes
    /// cannot fail.
    #[inline]
    pub(crate) fn reserve(&mut self, additional: usize) -> Result<(), NoMemory> {
        // Nearly every call has room already: one subtraction and a compare
        // (len <= capacity always), inlined; the mapping work is out of line.
        if additional <= self.capacity - self.len {
            return Ok(());
        }
        self.grow_for(additional)
    }

    /// [`reserve`](MappedVec::reserve) when the mapping is too small: map
    /// it, or remap it at twice the size (or more, if asked).
    #[cold]
    #[inline(never)]
    fn grow_for(&mut self, additional: usize) -> Result<(), NoMemory> {
        let needed = self.len.checked_add(additional).ok_or(NoMemory)?;
        let first = (4096 / size_of::<T>().max(1)).max(1);
        let capacity = needed.max(self.capacity * 2).max(first);
        let bytes = capacity.checked_mul(size_of::<T>()).ok_or(NoMemory)?;
        let mapping = if self.capacity == 0 {
            map_anonymous(bytes)
        } else {
            // SAFETY: items/capacity describe our own mapping; MAYMOVE keeps
            // its contents and no reference into it outlives this call.
            let moved = unsafe {
                libc::mremap(
                    self.items.cast(),
                    self.capacity * size_of::<T>(),
                    bytes,
                    libc::MREMAP_MAYMOVE,
                )
            };
            (moved != libc::MAP_FAILED).then_some(moved.cast())
        };
        self.items = mapping.ok_or(NoMemory)?.cast();
        self.capacity = capacity;
        Ok(())
    }

    /// Appends `item`.
    #[inline]
    pub(crate) fn push(&mut self, item: T) -> Result<(), NoMemory> {
        self.reserve(1)?;
        // SAFETY: len < capacity, so the slot lies in the mapping.
        unsafe { self.items.add(self.len).write(item) };
        self.len += 1;
        Ok(())
    }

    /// Inserts `item` at `index`, shifting the rest up.
    pub(crate) fn insert(&mut self, index: usize, item: T) -> Result<(), NoMemory> {
        assert!(index <= self.len);
        self.reserve(1)?;
        // SAFETY: len < capacity: the shifted range and the slot lie in the
        // mapping; `copy` allows the overlap.
        unsafe {
            let at = self.items.add(index);
            ptr::copy(at, at.add(1), self.len - index);
            at.write(item);
        }
        self.len += 1;
        Ok(())
    }

    /// Removes the item at `index`, moving the last one into its place.
    pub(crate) fn swap_remove(&mut self, index: usize) -> T {
        let slice = self.as_mut_slice();
        let last = slice.len() - 1;
        slice.swap(index, last);
        self.len -= 1;
        // SAFETY: the slot at the old last index is still in the mapping.
        unsafe { self.items.add(self.len).read() }
    }
}

impl MappedVec<usize> {
    /// `len` zeros, in a fresh mapping (which the kernel hands out zeroed,
    /// so nothing is written: untouched pages stay unallocated).
    pub(crate) fn zeroed(len: usize) -> Result<MappedVec<usize>, NoMemory> {
        let mut vec = MappedVec::EMPTY;
        vec.reserve(len)?;
        // The mapping is fresh (reserve on an empty vector maps, never
        // remaps), so its first len items are the kernel's zeros.
        vec.len = len;
        Ok(vec)
    }
}

impl<T: Copy> Drop for MappedVec<T> {
    fn drop(&mut self) {
        if self.capacity != 0 {
            // SAFETY: items/capacity describe exactly our mapping.
            unsafe { libc::munmap(self.items.cast(), self.capacity * size_of::<T>()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_across_remaps_and_keeps_every_item() {
        let mut vec = MappedVec::<u64>::EMPTY;
        for i in 0..100_000 {
            vec.push(i).unwrap();
        }
        assert!(vec.as_slice().iter().copied().eq(0..100_000));
        vec.insert(0, 7).unwrap();
        assert_eq!(vec.as_slice()[..3], [7, 0, 1]);
        assert_eq!(vec.swap_remove(0), 7);
        assert_eq!(vec.as_slice()[0], 99_999);
        assert_eq!(vec.len(), 100_000);
    }
}
