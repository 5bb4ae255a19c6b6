//! The 32-byte block header that precedes every allocation.
//!
//! ```text
//!  block start (header)                                   pointer handed out
//!  │                                                      │
//!  ▼                                                      ▼
//!  ┌────────────┬────────────┬────────────┬────────────┬──────────────────────┐
//!  │ in_use  +0 │ size    +8 │ pool   +16 │ unused +24 │ user data …          │
//!  └────────────┴────────────┴────────────┴────────────┴──────────────────────┘
//!  ◄──────────────────── HEADER_SIZE = 32 ───────────►
//!  ◄──────────────────────────── size (header included) ─────────────────────►
//! ```
//!
//! run.s names these offsets with `.equ`:
//!
//! ```text
//! .equ HEADER_SIZE, 32 # only need 24, but this is a 16-byte aligned value
//! .equ HDR_IN_USE_OFFSET, 0
//! .equ HDR_SIZE_OFFSET, 8
//! .equ HDR_POOL_OFFSET, 16
//! ```
//!
//! The port derives them from a `#[repr(C)]` struct with [`core::mem::offset_of!`]
//! and checks them against the numbers above at compile time, so the asm walks
//! (which take the offsets as `const` operands) cannot drift from the struct.
//!
//! Sizes are never rounded (`docs/original-behaviour.md` A.3), so a header can sit at any
//! address: `+0x51` is a real header offset. Rust code therefore never makes a
//! `&Header` into the heap and never dereferences a `*const Header` directly;
//! it copies headers in and out with [`read_unaligned`](core::ptr::read_unaligned)
//! and [`write_unaligned`](core::ptr::write_unaligned).

use core::mem::{offset_of, size_of};

/// One block header, exactly as run.s lays it out.
///
/// This is a *value* copied out of (or into) the heap; see the module docs for
/// why the heap is never borrowed as `&Header`.
// ANCHOR: header
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Header {
    /// `1` while the block is handed out, `0` when it is free.
    pub in_use: u64,
    /// Size of the whole block in bytes, header included (request + 32).
    pub size: u64,
    /// Pool number the block belongs to; `0` for every free block.
    pub pool: u64,
    /// The fourth quadword: padding to 32 bytes. run.s never writes it.
    pub unused: u64,
}
// ANCHOR_END: header

// ANCHOR: offsets
/// `.equ HEADER_SIZE, 32`: bytes between a block's start and the pointer handed out.
pub const HEADER_SIZE: usize = size_of::<Header>();
/// `.equ HDR_IN_USE_OFFSET, 0`
pub const HDR_IN_USE_OFFSET: usize = offset_of!(Header, in_use);
/// `.equ HDR_SIZE_OFFSET, 8`
pub const HDR_SIZE_OFFSET: usize = offset_of!(Header, size);
/// `.equ HDR_POOL_OFFSET, 16`
pub const HDR_POOL_OFFSET: usize = offset_of!(Header, pool);

// The numbers of run.s's `.equ` lines, checked at compile time.
const _: () = assert!(HEADER_SIZE == 32);
const _: () = assert!(HDR_IN_USE_OFFSET == 0);
const _: () = assert!(HDR_SIZE_OFFSET == 8);
const _: () = assert!(HDR_POOL_OFFSET == 16);
// ANCHOR_END: offsets

impl Header {
    /// Copies the header that starts at `block`.
    ///
    /// # Safety
    /// `block..block + 32` must be readable memory (any alignment).
    #[inline]
    pub unsafe fn read(block: *const u8) -> Header {
        // SAFETY: the caller guarantees 32 readable bytes; read_unaligned has no
        // alignment requirement, which matters because headers are often misaligned.
        unsafe { block.cast::<Header>().read_unaligned() }
    }

    /// Returns the header for the block handed out as `ptr` (`ptr - 32`).
    ///
    /// # Safety
    /// `ptr - 32 .. ptr` must be readable memory.
    #[inline]
    pub unsafe fn of_pointer(ptr: *const u8) -> Header {
        // SAFETY: forwarded to the caller's contract.
        unsafe { Header::read(ptr.wrapping_sub(HEADER_SIZE)) }
    }

    /// Whether the block is handed out (`in_use != 0`).
    #[inline]
    pub fn is_in_use(&self) -> bool {
        self.in_use != 0
    }

    /// Usable bytes after the header (`size - 32`).
    #[inline]
    pub fn capacity(&self) -> u64 {
        self.size.saturating_sub(HEADER_SIZE as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_run_s_equ_lines() {
        // Read the numbers out of the original source, so that this test fails
        // if someone edits run.s or the struct.
        let run_s = include_str!("../asm/run.s");
        let equ = |name: &str| -> usize {
            let line = run_s
                .lines()
                .find(|l| l.trim_start().starts_with(&format!(".equ {name},")))
                .unwrap_or_else(|| panic!("{name} not in run.s"));
            let value = line.split(',').nth(1).unwrap();
            let value = value.split('#').next().unwrap().trim();
            value.parse().unwrap()
        };
        assert_eq!(equ("HEADER_SIZE"), HEADER_SIZE);
        assert_eq!(equ("HDR_IN_USE_OFFSET"), HDR_IN_USE_OFFSET);
        assert_eq!(equ("HDR_SIZE_OFFSET"), HDR_SIZE_OFFSET);
        assert_eq!(equ("HDR_POOL_OFFSET"), HDR_POOL_OFFSET);
    }

    #[test]
    fn reads_misaligned_headers() {
        let mut bytes = [0u8; 64];
        let at = 17; // an odd offset, as after allocate(1, 1)
        bytes[at..at + 8].copy_from_slice(&1u64.to_ne_bytes());
        bytes[at + 8..at + 16].copy_from_slice(&49u64.to_ne_bytes());
        bytes[at + 16..at + 24].copy_from_slice(&7u64.to_ne_bytes());
        // SAFETY: 32 bytes from `at` lie inside `bytes`.
        let header = unsafe { Header::read(bytes.as_ptr().add(at)) };
        assert_eq!(
            header,
            Header {
                in_use: 1,
                size: 49,
                pool: 7,
                unused: 0
            }
        );
        assert_eq!(header.capacity(), 17);
    }
}
