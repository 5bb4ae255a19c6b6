//! `brk-pools trace FILE`: the port's trace of a script on a fresh arena
//! (offsets are the same in every run), then the final heap map. With
//! `--svg OUT.svg`, also the picture of the heap after every operation
//! (`brk_pools::svg`), from a second run on another fresh arena.

use std::process::ExitCode;

use brk_pools::trace::{self, Layouts};
use brk_pools::{Heap, render, svg};

use super::{CliError, ScriptArgs, read_script};

/// Address space reserved for a script's heap: room for INT_MAX-sized blocks.
pub const ARENA_CAPACITY: usize = 1 << 40;

/// The port's trace of `script` on a fresh arena.
pub fn port_trace(script: &str, final_only: bool) -> Result<(String, String), CliError> {
    let mut heap = Heap::on_arena(ARENA_CAPACITY)
        .map_err(|e| CliError(format!("cannot reserve the arena: {e}")))?;
    let layouts = if final_only {
        Layouts::FinalOnly
    } else {
        Layouts::EveryOp
    };
    let text = trace::run(&mut heap, script, layouts);
    Ok((text, render::map(&heap)))
}

pub fn run(args: &ScriptArgs) -> Result<ExitCode, CliError> {
    let script = read_script(&args.file)?;
    let (text, map) = port_trace(&script, args.final_only)?;
    if let Some(out) = &args.svg {
        let mut heap = Heap::on_arena(ARENA_CAPACITY)
            .map_err(|e| CliError(format!("cannot reserve the arena: {e}")))?;
        let picture = svg::render(&svg::script_steps(&mut heap, &script));
        std::fs::write(out, picture).map_err(|e| CliError(format!("cannot write {out}: {e}")))?;
    }
    print!("{text}");
    println!("map {map}");
    Ok(ExitCode::SUCCESS)
}
