//! Porting by inclusion: run.s assembled into a Rust program, with
//! `global_asm!`, and called through `extern "C"`.
//!
//! ```text
//! cargo run --example global_asm
//! ```
//!
//! `global_asm!(include_str!("../../asm/run.s"))` compiles, but does not link:
//! Rust builds position-independent executables, and run.s reaches
//! `memory_start`/`memory_end` through absolute 32-bit addresses
//! (`movq memory_start, %rsi`), which the linker refuses in a PIE
//! (`relocation R_X86_64_32S cannot be used against local symbol`). The same
//! error makes `gcc run.s run.c` fail without `-no-pie`. Two ways out:
//!
//! * build without PIE: `RUSTFLAGS="-C relocation-model=static"` links the
//!   untouched run.s (and rebuilds every crate of the program that way);
//! * adapt the source: `run_pic.s` next to this file is run.s with the eight
//!   references to `memory_start`/`memory_end` made RIP-relative
//!   (`memory_start(%rip)`); nothing else differs, and `tests/walkthrough.rs`
//!   checks that.
//!
//! This example takes the second way, so `cargo build --examples` works.
//! It does not use the `brk_pools` crate: the crate's C ABI exports the
//! same three symbols, and a release build that links both fails with
//! `duplicate symbol: allocate`.
//!
//! Nothing here can check that Rust and the assembly agree on anything: the
//! `extern "C"` declarations are a promise the compiler takes on trust.
//! run.s also calls `brk` behind glibc's back (`docs/original-behaviour.md` A.8), so
//! the program makes all its calls before its first `println!` (which
//! allocates stdout's buffer with malloc) and never allocates in between.

use core::arch::global_asm;

// ANCHOR: global_asm
global_asm!(include_str!("run_pic.s"), options(att_syntax));

// The three functions run.s exports with `.globl`. run.s reads whole 64-bit
// registers, so they are declared with u64 arguments, not C ints.
unsafe extern "C" {
    fn allocate(pool: u64, size: u64) -> *mut u8;
    fn deallocate(ptr: *mut u8);
    fn deallocate_pool(pool: u64);
}
// ANCHOR_END: global_asm

fn main() {
    // SAFETY: run.s's functions take plain integers and a pointer it handed
    // out; no Rust code allocates between the calls (see the module docs).
    let (a1, a2, ae) = unsafe {
        let a1 = allocate(1, 400);
        let a2 = allocate(2, 32);
        let ae = allocate(2, 80);
        deallocate_pool(2);
        deallocate(a1);
        (a1, a2, ae)
    };
    let start = a1 as usize - 32;
    let at = |p: *mut u8| p as usize - start;
    println!(
        "run.s via global_asm!: a1=+{:#x} a2=+{:#x} ae=+{:#x}",
        at(a1),
        at(a2),
        at(ae)
    );

    // The offsets the seed printed ([original-behaviour.md section B](../../docs/original-behaviour.md#b-the-oracle-driver)).
    assert_eq!([at(a1), at(a2), at(ae)], [0x20, 0x1d0, 0x210]);
}
