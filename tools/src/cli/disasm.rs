//! `brk-pools disasm`: the machine-code proof, side by side. run.s (embedded
//! in this binary) is assembled with gcc ([`super::original`]), both sides are read with objdump,
//! and each walk label of run.s is looked for in the port's code: by default
//! this very executable, which contains the crate's `asm!` walks.

use std::io;
use std::path::Path;
use std::process::ExitCode;

use brk_pools_tools::disasm;

use super::{CliError, DisasmArgs, original, print};

/// `objdump -d` of `path`, with one clear error for each way it can fail:
/// the file is missing, objdump is missing, or objdump refused the file.
fn objdump(path: &Path) -> Result<String, CliError> {
    std::fs::metadata(path)
        .map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
    disasm::objdump(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => CliError(
            "cannot run objdump: it is not installed (Debian: apt-get install binutils)".into(),
        ),
        _ => CliError(e.to_string().trim_end().to_string()),
    })
}

pub fn run(args: &DisasmArgs) -> Result<ExitCode, CliError> {
    let port = match &args.object {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| CliError(format!("cannot find this executable: {e}")))?,
    };
    // The port's side first: a wrong --object is reported before gcc runs.
    let port_listing = objdump(&port)?;
    let original = objdump(&original::object()?)?;
    let results = disasm::compare(&original, &port_listing);
    if args.markdown {
        print(&disasm::markdown(&results))?;
    } else {
        print(&disasm::side_by_side(&results))?;
        let found = results.iter().filter(|r| r.found()).count();
        print(&format!(
            "\n{found} of {} labels of run.s found instruction for instruction in {}\n",
            results.len(),
            port.display()
        ))?;
    }
    Ok(if results.iter().all(|r| r.found()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
