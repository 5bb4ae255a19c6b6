//! What can go wrong, where run.s would crash or corrupt memory instead.
//!
//! run.s has no error path at all. Every variant here names a case in which
//! the original carries on regardless (`docs/original-behaviour.md` A.4, A.6, A.7, A.8)
//! and the port stops, leaving the heap exactly as it was.

use core::fmt;

/// Why a [`BreakSource`](crate::BreakSource) did not move the break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The kernel refused `brk`, or an `mmap` or `mprotect` of an arena,
    /// with this `errno`: usually `ENOMEM` (under `RLIMIT_DATA` or
    /// `RLIMIT_AS`; a refused `brk` is always `ENOMEM`, as glibc's `sbrk`
    /// reports it).
    Kernel {
        /// The `errno` value.
        errno: i32,
    },
    /// An [`Arena`](crate::Arena) would grow past its reservation.
    ArenaExhausted {
        /// The reservation's size in bytes.
        capacity: usize,
    },
    /// The increment does not fit `sbrk`'s signed argument (the process
    /// break takes what `sbrk` takes), or whole batched steps would not fit
    /// an address.
    TooLarge,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Kernel { errno } => write!(
                f,
                "the kernel refused to move the break ({})",
                std::io::Error::from_raw_os_error(*errno)
            ),
            Refusal::ArenaExhausted { capacity } => {
                write!(f, "the arena's {capacity}-byte reservation is exhausted")
            }
            Refusal::TooLarge => f.write_str("the increment is larger than sbrk accepts"),
        }
    }
}

/// An operation the port refused; the heap is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The break could not grow by `requested` bytes (header included).
    /// run.s stores the new `memory_end` anyway and writes the header past
    /// the break (`docs/original-behaviour.md` A.7).
    BreakRefused {
        /// Bytes the heap asked the break to grow by.
        requested: u64,
        /// Why the source said no.
        refusal: Refusal,
    },
    /// `size + 32` does not fit in 64 bits. run.s wraps it (`docs/original-behaviour.md` A.4, cases 8-10).
    SizeOverflow {
        /// The requested size.
        size: u64,
    },
    /// The break is inside the heap's memory, or the source handed out
    /// memory that overlaps it: someone shrank the break under the heap's
    /// blocks. The port never writes there and records no such segment.
    BreakBelowHeap,
    /// An append needed a new segment and the kernel refused memory for the
    /// segment table (which otherwise has no limit). Checked before the
    /// break moves, so nothing is lost.
    SegmentTableFull {
        /// Segments recorded so far.
        segments: usize,
    },
    /// The pointer is not one this heap handed out: null, outside every
    /// segment, or not at the start of a block's user area (`docs/original-behaviour.md` A.6).
    NotABlock {
        /// The address given.
        address: usize,
    },
    /// A pool guard for this pool number already exists.
    PoolAlreadyHeld {
        /// The pool number.
        pool: u64,
    },
    /// Pool 0 is how run.s marks free blocks (`docs/original-behaviour.md` A.5); a safe guard cannot own it.
    PoolZeroReserved,
    /// A [`Pool`](crate::pools::Pool) guard holds this pool: only the guard
    /// allocates into it and frees its blocks.
    PoolHeld {
        /// The pool number.
        pool: u64,
    },
    /// The guard's hold on its pool is gone: the heap it was taken from has
    /// been replaced. Safe code cannot do that (there is one process heap,
    /// and a [`Pools`](crate::pools::Pools) heap can only be taken back with
    /// `&mut`, when no guard exists); the check guards against unsafe code
    /// breaking [`Pools::with_heap_unchecked`](crate::pools::Pools::with_heap_unchecked)'s contract.
    PoolNotHeld {
        /// The pool number.
        pool: u64,
    },
    /// The kernel refused memory to grow the table of held pools (which
    /// otherwise has no limit).
    TooManyPoolsHeld {
        /// Pools held so far.
        limit: usize,
    },
    /// This thread already holds the heap's lock: the call was made inside
    /// [`Pools::inspect`](crate::pools::Pools::inspect) or another callback
    /// under the lock, while [`process::lock`](crate::process::lock)'s
    /// guard lives (in a `fork` handler too, when the `fork` was made under
    /// it), or by a signal handler that interrupted a heap call on this
    /// thread. Waiting would deadlock.
    LockHeldByThisThread,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BreakRefused { requested, refusal } => {
                write!(f, "could not grow the heap by {requested} bytes: {refusal}")
            }
            Error::SizeOverflow { size } => {
                write!(f, "size {size} plus the 32-byte header overflows 64 bits")
            }
            Error::BreakBelowHeap => f.write_str(
                "the program break is below the end of the heap (shrunk by someone else)",
            ),
            Error::SegmentTableFull { segments } => write!(
                f,
                "a new segment was needed and the kernel refused memory to record more than \
                 {segments} segments"
            ),
            Error::NotABlock { address } => {
                write!(f, "{address:#x} is not a block handed out by this heap")
            }
            Error::PoolAlreadyHeld { pool } => write!(f, "pool {pool} is already held by a guard"),
            Error::PoolZeroReserved => {
                f.write_str("pool 0 marks free blocks and cannot be held by a guard")
            }
            Error::PoolHeld { pool } => write!(
                f,
                "pool {pool} is held by a guard; only the guard allocates into it and frees it"
            ),
            Error::PoolNotHeld { pool } => write!(
                f,
                "the guard of pool {pool} no longer holds it (the heap was replaced)"
            ),
            Error::TooManyPoolsHeld { limit } => write!(
                f,
                "the kernel refused memory to record more than {limit} held pools"
            ),
            Error::LockHeldByThisThread => f.write_str(
                "this thread already holds the heap's lock (inside Pools::inspect or another \
                 callback under the lock, while process::lock() is held, or in a signal handler \
                 that interrupted a heap call): waiting would deadlock",
            ),
        }
    }
}

impl std::error::Error for Error {}
