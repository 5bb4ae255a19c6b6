//! What this build of the library is: its features, and a fingerprint of
//! the sources it was compiled from.
//!
//! Code that depends on the library asks here instead of testing
//! `cfg!(feature = …)` itself: a dependent's `cfg!` sees its own features,
//! not the ones this library was built with. Tools that link C programs with
//! `libbrk_pools.a` (the tests, `brk-pools step`) look for [`SOURCE_TAG`] and
//! [`BUILD_TAG`] in the archive to know it was built from the same sources
//! with the same features as the library they were compiled with.

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
static SOURCE_TAG_BYTES: [u8; SOURCE_TAG.len()] = tag_bytes(SOURCE_TAG);

#[cfg(not(feature = "batched-brk"))]
macro_rules! growth_name {
    () => {
        "exact"
    };
}
#[cfg(feature = "batched-brk")]
macro_rules! growth_name {
    () => {
        "batched"
    };
}
#[cfg(feature = "indexed-fit")]
macro_rules! fit_name {
    () => {
        "indexed"
    };
}
#[cfg(not(feature = "indexed-fit"))]
macro_rules! fit_name {
    () => {
        "walk"
    };
}
#[cfg(feature = "c-abi")]
macro_rules! c_abi_name {
    () => {
        "yes"
    };
}
#[cfg(not(feature = "c-abi"))]
macro_rules! c_abi_name {
    () => {
        "no"
    };
}

/// Names this build's features in the compiled library, where tools can find
/// it: the tests link C programs with `libbrk_pools.a` and must pick the
/// archive built with the same features as themselves.
pub const BUILD_TAG: &str = concat!(
    "brk-pools-build:growth=",
    growth_name!(),
    ",c-abi=",
    c_abi_name!(),
    ",fit=",
    fit_name!(),
    ";"
);

/// [`BUILD_TAG`]'s bytes, kept in the library's data by `#[used]`.
#[used]
#[unsafe(no_mangle)]
pub static BRK_POOLS_BUILD_TAG: [u8; BUILD_TAG.len()] = tag_bytes(BUILD_TAG);

/// A tag's bytes as an array, for a `#[used]` static.
const fn tag_bytes<const N: usize>(tag: &str) -> [u8; N] {
    let mut bytes = [0; N];
    let mut i = 0;
    while i < N {
        bytes[i] = tag.as_bytes()[i];
        i += 1;
    }
    bytes
}
