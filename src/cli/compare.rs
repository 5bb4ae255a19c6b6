//! `brk-pools compare FILE`: the script through the original `run.s` (built
//! with gcc from the sources embedded in this binary, cached beside it under
//! `target/`, or under `$BRK_POOLS_CACHE_DIR`) and through the port; prints
//! `identical` or the first divergence side by side.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use super::trace::port_trace;
use super::{CliError, ScriptArgs, read_script};

const RUN_S: &str = include_str!("../../asm/run.s");
const TRACE_C: &str = include_str!("../../asm/trace.c");

/// Builds `trace.c` + `run.s` (with `memory_start`/`memory_end` made global)
/// once per content, under `target/<profile>/original-trace/<hash>/`.
fn original_driver() -> Result<PathBuf, CliError> {
    let mut hasher = DefaultHasher::new();
    (RUN_S, TRACE_C).hash(&mut hasher);
    let base = match std::env::var_os("BRK_POOLS_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("original-trace")))
            .unwrap_or_else(|| std::env::temp_dir().join("brk-pools-original-trace")),
    };
    let dir = base.join(format!("{:016x}", hasher.finish()));
    let driver = dir.join("trace");
    if driver.exists() {
        return Ok(driver);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError(format!("cannot create {}: {e}", dir.display())))?;
    std::fs::write(dir.join("run.s"), RUN_S)?;
    std::fs::write(dir.join("trace.c"), TRACE_C)?;
    let step = |program: &str, args: &[&str]| -> Result<(), CliError> {
        let output = Command::new(program)
            .args(args)
            .current_dir(&dir)
            .output()
            .map_err(|e| {
                CliError(format!(
                    "cannot run {program} ({e}): compare builds the original with gcc and binutils \
                     (Debian: apt-get install gcc binutils)"
                ))
            })?;
        if !output.status.success() {
            return Err(CliError(format!(
                "{program} {} failed:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(())
    };
    step("gcc", &["-c", "run.s", "-o", "run.o"])?;
    step(
        "objcopy",
        &[
            "--globalize-symbol=memory_start",
            "--globalize-symbol=memory_end",
            "run.o",
            "run_g.o",
        ],
    )?;
    let partial = format!("trace.partial.{}", std::process::id());
    step(
        "gcc",
        &["-no-pie", "-O2", "trace.c", "run_g.o", "-o", &partial],
    )?;
    std::fs::rename(dir.join(&partial), &driver)?;
    Ok(driver)
}

/// The original's trace of `script`.
pub fn original_trace(script: &str, final_only: bool) -> Result<String, CliError> {
    let driver = original_driver()?;
    let mut child = Command::new(&driver)
        .args(if final_only { &["-f"][..] } else { &[][..] })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CliError(format!("cannot run {}: {e}", driver.display())))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = script.as_bytes().to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output()?;
    let _ = writer.join();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        // The original crashed (trace.c names the signal and operation on its
        // last line): still a trace to compare, so return it.
        eprintln!("note: the original exited with {}", output.status);
    }
    Ok(text)
}

pub fn run(args: &ScriptArgs) -> Result<ExitCode, CliError> {
    let script = read_script(&args.file)?;
    let original = original_trace(&script, args.final_only)?;
    let (port, _) = port_trace(&script, args.final_only)?;
    match brk_pools::trace::first_divergence("original run.s", &original, "port", &port) {
        None => {
            println!(
                "identical: {} lines of trace ({})",
                original.lines().count(),
                args.file
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(divergence) => {
            println!("{}: the port differs from the original", args.file);
            print!("{divergence}");
            Ok(ExitCode::from(1))
        }
    }
}
