//! The default command: `asm/run.c`, line for line, on the real program
//! break through the C ABI functions, then the layout it leaves.

use std::process::ExitCode;

use brk_pools::c_abi::{allocate, deallocate, deallocate_pool};
use brk_pools::{process, render};

use super::{CliError, print};

pub fn run() -> Result<ExitCode, CliError> {
    // get 400 bytes from pool 1
    let a1 = allocate(1, 400);
    // get 32 bytes from pool 2
    let a2 = allocate(2, 32);
    // get 80 bytes from pool 2
    let ae = allocate(2, 80);
    // release all of pool 2
    deallocate_pool(2);

    print(&format!("Allocations: {a1:p} {a2:p} {ae:p}\n"))?;

    // Test if pool 1 still works
    let a3 = a1; // save pointer to verify it's still usable

    deallocate(a1);
    print(&format!("Allocations: {a1:p} {a2:p} {a3:p}\n"))?;

    let heap = process::lock();
    print(&format!(
        "\n{}{}\n",
        render::table(&heap),
        render::map(&heap)
    ))?;
    Ok(ExitCode::SUCCESS)
}
