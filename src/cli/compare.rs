//! `brk-pools compare FILE`: the script through the original `run.s` (see
//! [`super::original`]) and through the port; prints `identical` or the
//! first divergence side by side.

use std::io::Write;
use std::process::{Command, ExitCode, Stdio};

use super::original;
use super::trace::port_trace;
use super::{CliError, ScriptArgs, read_script};

/// The original's trace of `script`.
pub fn original_trace(script: &str, final_only: bool) -> Result<String, CliError> {
    let driver = original::trace_driver()?;
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
