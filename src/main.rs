//! `brk-pools`: the port of run.c, script traces, and comparisons with the
//! original binary.
//!
//! ```text
//! brk-pools                  run.c on the real program break, then the heap it leaves
//! brk-pools trace FILE       the port's trace of an operation script (see brk_pools::script)
//! brk-pools compare FILE     the same script through the original run.s (built with gcc): identical?
//! ```

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::run(&args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("brk-pools: {error}");
            ExitCode::from(2)
        }
    }
}
