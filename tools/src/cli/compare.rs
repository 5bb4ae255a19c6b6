//! `brk-pools compare FILE`: the script through the original `run.s` (see
//! [`super::original`]) and through the port; prints `identical` or the
//! first divergence side by side. When the original crashes, which signal and
//! at which operation is part of the result, not an error of this command.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, ExitStatus, Stdio};

use super::original;
use super::trace::port_trace;
use super::{CliError, ScriptArgs, print, read_script};

/// What the original printed, and how it ended if not normally.
pub struct OriginalRun {
    /// Its trace (up to the crash).
    pub trace: String,
    /// `None` when it exited 0; otherwise what happened, e.g. `signal 11
    /// (SIGSEGV) during op 3 (deallocate), fault address +0x0`.
    pub crash: Option<String>,
}

/// How the original's run ended, from `asm/trace.c`'s `!! signal …` line or
/// the exit status.
fn crash(status: ExitStatus, trace: &str, stderr: &[u8]) -> Option<String> {
    if status.success() {
        return None;
    }
    if let Some(line) = trace.lines().rev().find(|l| l.starts_with("!! signal ")) {
        return Some(line.trim_start_matches("!! ").to_string());
    }
    Some(match status.signal() {
        Some(signal) => format!("killed by signal {signal}"),
        None => format!(
            "{status}: {}",
            String::from_utf8_lossy(stderr)
                .trim_end()
                .replace('\n', "; ")
        ),
    })
}

/// The original's trace of `script`.
pub fn original_trace(script: &str, final_only: bool) -> Result<OriginalRun, CliError> {
    let driver = original::trace_driver()?;
    let mut child = Command::new(&driver)
        .args(if final_only { &["-f"][..] } else { &[][..] })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CliError(format!("cannot run {}: {e}", driver.display())))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| CliError("no pipe to the original's stdin".into()))?;
    let input = script.as_bytes().to_vec();
    // A crashed original closes its end early: the write error is expected.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output()?;
    let _ = writer.join();
    let trace = String::from_utf8_lossy(&output.stdout).into_owned();
    let crash = crash(output.status, &trace, &output.stderr);
    Ok(OriginalRun { trace, crash })
}

pub fn run(args: &ScriptArgs) -> Result<ExitCode, CliError> {
    let script = read_script(&args.file)?;
    let original = original_trace(&script.text, args.final_only)?;
    let (port, _) = port_trace(&script.text, args.final_only)?;
    let divergence =
        brk_pools_tools::trace::first_divergence("original run.s", &original.trace, "port", &port);
    let mut report = String::new();
    if let Some(crash) = &original.crash {
        report.push_str(&format!(
            "{}: the original crashed ({crash}); the port did not\n",
            script.name
        ));
    }
    match divergence {
        None if original.crash.is_none() => {
            print(&format!(
                "identical: {} lines of trace ({})\n",
                original.trace.lines().count(),
                script.name
            ))?;
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
        Some(divergence) => {
            report.push_str(&format!(
                "{}: the port differs from the original\n{divergence}",
                script.name
            ));
        }
    }
    print(&report)?;
    Ok(ExitCode::from(1))
}
