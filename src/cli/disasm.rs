//! `brk-pools disasm`: the machine-code proof, side by side. run.s (embedded
//! in this binary) is assembled with gcc ([`super::original`]), both sides are read with objdump,
//! and each walk label of run.s is looked for in the port's code: by default
//! this very executable, which contains the crate's `asm!` walks.

use std::path::PathBuf;
use std::process::ExitCode;

use brk_pools::disasm;

use super::{CliError, USAGE, original};

pub fn run(args: &[String]) -> Result<ExitCode, CliError> {
    let mut markdown = false;
    let mut object: Option<PathBuf> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--markdown" => markdown = true,
            "--object" => {
                let path = args
                    .next()
                    .ok_or_else(|| CliError(format!("disasm: --object needs a path\n{USAGE}")))?;
                object = Some(PathBuf::from(path));
            }
            other => {
                return Err(CliError(format!(
                    "disasm: unexpected argument {other}\n{USAGE}"
                )));
            }
        }
    }
    let port = match object {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|e| CliError(format!("cannot find this executable: {e}")))?,
    };
    let objdump = |path: &PathBuf| {
        disasm::objdump(path).map_err(|e| {
            CliError(format!(
                "objdump -d {}: {e} (Debian: apt-get install binutils)",
                path.display()
            ))
        })
    };
    let original = objdump(&original::object()?)?;
    let results = disasm::compare(&original, &objdump(&port)?);
    if markdown {
        print!("{}", disasm::markdown(&results));
    } else {
        print!("{}", disasm::side_by_side(&results));
        let found = results.iter().filter(|r| r.found()).count();
        println!(
            "\n{found} of {} labels of run.s found instruction for instruction in {}",
            results.len(),
            port.display()
        );
    }
    Ok(if results.iter().all(|r| r.found()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
