//! `brk-pools disasm`: the machine-code proof, side by side. run.s (embedded
//! in this binary) is assembled with gcc, both sides are read with objdump,
//! and each walk label of run.s is looked for in the port's code: by default
//! this very executable, which contains the crate's `asm!` walks.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use brk_pools::disasm;

use super::{CliError, USAGE};

const RUN_S: &str = include_str!("../../asm/run.s");

/// `run.o`, assembled once per content beside this executable (or in the
/// temporary directory).
fn original_object() -> Result<PathBuf, CliError> {
    let mut hasher = DefaultHasher::new();
    RUN_S.hash(&mut hasher);
    let base = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("original-disasm")))
        .unwrap_or_else(|| std::env::temp_dir().join("brk-pools-original-disasm"));
    let dir = base.join(format!("{:016x}", hasher.finish()));
    let object = dir.join("run.o");
    if object.exists() {
        return Ok(object);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError(format!("cannot create {}: {e}", dir.display())))?;
    std::fs::write(dir.join("run.s"), RUN_S)?;
    let partial = format!("run.partial.{}.o", std::process::id());
    let output = Command::new("gcc")
        .args(["-c", "run.s", "-o", &partial])
        .current_dir(&dir)
        .output()
        .map_err(|e| {
            CliError(format!(
                "cannot run gcc ({e}): disasm assembles run.s with gcc and reads it with objdump \
                 (Debian: apt-get install gcc binutils)"
            ))
        })?;
    if !output.status.success() {
        return Err(CliError(format!(
            "gcc -c run.s failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    std::fs::rename(dir.join(&partial), &object)?;
    Ok(object)
}

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
    let original = objdump(&original_object()?)?;
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
