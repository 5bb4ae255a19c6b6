//! `brk-pools run -- PROGRAM ARGS…`: a real program with every `malloc` on
//! the port (the malloc shim under `LD_PRELOAD`), then the heap summary the
//! shim wrote when the program exited.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use brk_pools_tools::heap_summary::{self, HeapSummary};
use brk_pools_tools::shim::{self, Fit};
use clap::Args;

use super::CliError;

/// The environment variable the shim reads (its `summary` module).
const SUMMARY_DIR_VARIABLE: &str = "BRK_POOLS_SUMMARY_DIR";

/// Other processes listed one line each, at most.
const OTHERS_LISTED: usize = 20;

/// `run`'s arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run on the indexed-fit build (the same blocks as the walk, found
    /// through an index) instead of run.s's walk.
    #[arg(long)]
    indexed_fit: bool,
    /// The shim library to preload [default: built with cargo from the
    /// checkout this brk-pools was built in, into
    /// $CARGO_TARGET_DIR/brk-pools-shim/FIT, else target/brk-pools-shim/FIT].
    #[arg(long, value_name = "PATH", conflicts_with = "indexed_fit")]
    shim: Option<PathBuf>,
    /// The program and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    command: Vec<OsString>,
}

/// The shim to preload: `--shim`, or the build for the chosen fit.
fn shim_library(args: &RunArgs) -> Result<PathBuf, CliError> {
    if let Some(path) = &args.shim {
        return std::path::absolute(path).map_err(CliError::from);
    }
    let fit = if args.indexed_fit {
        Fit::Indexed
    } else {
        Fit::Walk
    };
    let library = shim::library_path(fit);
    if !library.exists() {
        eprintln!(
            "brk-pools run: building the malloc shim ({} build) with cargo into {}",
            fit.name(),
            shim::target_dir(fit).display()
        );
    }
    shim::build(fit).map_err(|e| {
        CliError(format!(
            "{e}\n(an installed brk-pools has no checkout to build from: pass --shim PATH)"
        ))
    })
}

/// The summaries the shim wrote, by process id.
fn read_summaries(dir: &std::path::Path) -> Result<BTreeMap<u32, HeapSummary>, CliError> {
    let mut summaries = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        let summary =
            heap_summary::parse(&text).map_err(|e| CliError(format!("{}: {e}", path.display())))?;
        summaries.insert(summary.pid, summary);
    }
    Ok(summaries)
}

/// CPU seconds (user, system) of the waited-for children.
fn children_cpu_seconds() -> (f64, f64) {
    // SAFETY: an all-zero rusage is a valid value to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (seconds(usage.ru_utime), seconds(usage.ru_stime))
}

pub fn run(args: &RunArgs) -> Result<ExitCode, CliError> {
    let library = shim_library(args)?;
    let dir = std::env::temp_dir().join(format!("brk-pools-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir)
        .map_err(|e| CliError(format!("cannot create {}: {e}", dir.display())))?;
    let mut preload = library.into_os_string();
    if let Some(earlier) = std::env::var_os("LD_PRELOAD").filter(|p| !p.is_empty()) {
        preload.push(":");
        preload.push(earlier);
    }
    let program = &args.command[0];
    // The children so far (a cargo build of the shim) are not the program's.
    let (user_before, system_before) = children_cpu_seconds();
    let started = Instant::now();
    let status = Command::new(program)
        .args(&args.command[1..])
        .env("LD_PRELOAD", preload)
        .env(SUMMARY_DIR_VARIABLE, &dir)
        .spawn()
        .and_then(|mut child| {
            let pid = child.id();
            child.wait().map(|status| (pid, status))
        });
    let elapsed = started.elapsed().as_secs_f64();
    let (user, system) = children_cpu_seconds();
    let (user, system) = (user - user_before, system - system_before);
    let summaries = read_summaries(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let (pid, status) =
        status.map_err(|e| CliError(format!("cannot run {}: {e}", program.to_string_lossy())))?;
    let mut summaries = summaries?;

    let how = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended".to_string(),
    };
    let mut out = format!(
        "\nbrk-pools run: {} ({how}) in {elapsed:.2} s ({user:.2} s user, {system:.2} s system)\n",
        program.to_string_lossy()
    );
    match summaries.remove(&pid) {
        Some(summary) => out.push_str(&summary.render()),
        None => out.push_str(&format!(
            "no heap summary from process {pid}: it ended without running its exit \
             destructors (_exit, exec of a program that is not dynamically linked, a signal)\n"
        )),
    }
    if !summaries.is_empty() {
        out.push_str(&format!(
            "{} other process(es) on the shim (children):\n",
            summaries.len()
        ));
        for summary in summaries.values().take(OTHERS_LISTED) {
            out.push_str(&format!(
                "  {} ({}): {} allocations, {} blocks, {} free, longest walk {}\n",
                summary.pid,
                summary.program,
                summary.allocations,
                summary.blocks,
                summary.free.0,
                summary.walk_longest
            ));
        }
    }
    eprint!("{out}");
    let code = status
        .code()
        .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|s| 128 + s))
        .unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
