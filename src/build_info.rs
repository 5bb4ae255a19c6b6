//! What this build of the library is: its features, and a fingerprint of
//! the sources it was compiled from.
//!
//! Code that depends on the library asks here instead of testing
//! `cfg!(feature = …)` itself: a dependent's `cfg!` sees its own features,
//! not the ones this library was built with. Tools that link C programs with
//! `libbrk_pools.a` (the tests, `brk-pools step`) look for [`SOURCE_TAG`] and
//! [`process::BUILD_TAG`](crate::process::BUILD_TAG) in the archive to know
//! it was built from the same sources with the same features as the library
//! they were compiled with.

/// Built with the `c-abi` feature: `allocate`, `deallocate`,
/// `deallocate_pool`, `memory_start` and `memory_end` are exported unmangled.
pub const C_ABI: bool = cfg!(feature = "c-abi");

/// Built with the `batched-brk` feature: the process heap grows the break in
/// [`process::BATCH_STEP`](crate::process::BATCH_STEP) steps.
pub const BATCHED_BRK: bool = cfg!(feature = "batched-brk");

/// Built with the `indexed-fit` feature: allocate finds its block through an
/// index instead of run.s's walk (so there is no walk to compare
/// instruction by instruction).
pub const INDEXED_FIT: bool = cfg!(feature = "indexed-fit");

/// A hash (16 hex digits) of the library's sources (`src/` and `build.rs`),
/// computed by its build script: it changes whenever their content does.
pub const SOURCE_FINGERPRINT: &str = env!("BRK_POOLS_SOURCE_FINGERPRINT");

/// [`SOURCE_FINGERPRINT`] as it is marked in the compiled library.
pub const SOURCE_TAG: &str = concat!(
    "brk-pools-source:",
    env!("BRK_POOLS_SOURCE_FINGERPRINT"),
    ";"
);

/// [`SOURCE_TAG`]'s bytes, kept in the library's data (and so in
/// `libbrk_pools.a`) by `#[used]`.
#[used]
static SOURCE_TAG_BYTES: [u8; SOURCE_TAG.len()] = {
    let mut bytes = [0; SOURCE_TAG.len()];
    let mut i = 0;
    while i < bytes.len() {
        bytes[i] = SOURCE_TAG.as_bytes()[i];
        i += 1;
    }
    bytes
};
