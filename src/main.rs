//! `cargo run --release`: the seed's `run.c` on the real program break, then
//! the heap it leaves.

use brk_pools::{process, render};

/// The port of `asm/run.c`, line for line, through the C ABI functions.
fn run_c() {
    use brk_pools::c_abi::{allocate, deallocate, deallocate_pool};

    // get 400 bytes from pool 1
    let a1 = allocate(1, 400);
    // get 32 bytes from pool 2
    let a2 = allocate(2, 32);
    // get 80 bytes from pool 2
    let ae = allocate(2, 80);
    // release all of pool 2
    deallocate_pool(2);

    println!("Allocations: {a1:p} {a2:p} {ae:p}");

    // Test if pool 1 still works
    let a3 = a1; // save pointer to verify it's still usable

    deallocate(a1);
    println!("Allocations: {a1:p} {a2:p} {a3:p}");
}

fn main() {
    run_c();
    let heap = process::lock();
    println!();
    print!("{}", render::table(&heap));
    println!("{}", render::map(&heap));
}
