//! Offsets from the heap's start, written as traces write them.

use core::fmt;

/// An offset from the heap's start: `+0x1b0`, or `-0x20` before it.
///
/// ```
/// use brk_pools_tools::offset::Offset;
///
/// assert_eq!(Offset(0x1b0).to_string(), "+0x1b0");
/// assert_eq!(Offset(0).to_string(), "+0x0");
/// assert_eq!(Offset(-0x20).to_string(), "-0x20");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offset(pub i128);

impl From<usize> for Offset {
    fn from(offset: usize) -> Offset {
        Offset(offset as i128)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { '-' } else { '+' };
        write!(f, "{sign}{:#x}", self.0.unsigned_abs())
    }
}
