//! `brk-pools trace FILE`: the port's trace of a script on a fresh arena
//! (offsets are the same in every run), then the final heap map. With
//! `--svg OUT`, also the picture of the heap after every operation
//! (`brk_pools_tools::svg`), from the same run.

use std::process::ExitCode;

use brk_pools::{Heap, render};
use brk_pools_tools::svg;
use brk_pools_tools::trace::{self, Layouts};

use super::{CliError, TraceArgs, print, read_script};

/// Address space reserved for a script's heap: room for INT_MAX-sized blocks.
pub const ARENA_CAPACITY: usize = 1 << 40;

/// A fresh arena heap for one script.
fn fresh_heap() -> Result<Heap<brk_pools::Arena>, CliError> {
    Heap::on_arena(ARENA_CAPACITY).map_err(|e| CliError(format!("cannot reserve the arena: {e}")))
}

/// The port's trace of `script` on a fresh arena, and the final heap map.
pub fn port_trace(script: &str, final_only: bool) -> Result<(String, String), CliError> {
    let mut heap = fresh_heap()?;
    let layouts = if final_only {
        Layouts::FinalOnly
    } else {
        Layouts::EveryOp
    };
    let text = trace::run(&mut heap, script, layouts);
    Ok((text, render::map(&heap)))
}

pub fn run(args: &TraceArgs) -> Result<ExitCode, CliError> {
    let script = read_script(&args.script.file)?;
    let (text, map) = port_trace(&script.text, args.script.final_only)?;
    if let Some(out) = &args.svg {
        let mut heap = fresh_heap()?;
        let picture = svg::script_picture(&mut heap, &script.text);
        std::fs::write(out, &picture)
            .map_err(|e| CliError(format!("cannot write {}: {e}", out.display())))?;
        let operations = text.lines().filter(|l| l.starts_with("op ")).count();
        let rows = picture.matches("<g class=\"step\"").count();
        eprintln!(
            "brk-pools: wrote {}: {rows} of {operations} operations drawn, {} KiB",
            out.display(),
            picture.len().div_ceil(1024)
        );
    }
    print(&text)?;
    print(&format!("map {map}\n"))?;
    Ok(ExitCode::SUCCESS)
}
