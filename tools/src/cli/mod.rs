//! Command-line parsing (clap, derive) and dispatch. Each subcommand lives in
//! its own module; errors are one-line messages for a person, never panics.
//!
//! A new subcommand is one variant of [`Command`] (its doc comment is its
//! `--help` summary, its fields its options) and one arm in [`run`].

mod compare;
mod disasm;
mod original;
mod run_c;
mod run_program;
mod step;
mod trace;

use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// The script language, shown under every script subcommand's `--help`.
const SCRIPT_HELP: &str = "\
A script holds one operation a line:
  a POOL SIZE   allocate(POOL, SIZE); the result becomes handle h0, h1, … in order
  d H           deallocate the pointer of handle H (also written `d hH`)
  p POOL        deallocate_pool(POOL)
POOL and SIZE are C ints in decimal (an optional `-`). `#` starts a comment, to
the end of the line; blank lines are skipped. FILE `-` reads the script from
standard input.

Exit status: 0 success, 1 a reported difference (compare), 2 bad input or a
missing tool.";

/// The port of a brk memory-pools allocator, its traces, pictures and
/// comparisons with the original run.s.
#[derive(Debug, Parser)]
#[command(name = "brk-pools", version, about, after_help = SCRIPT_HELP)]
pub struct Cli {
    /// What to do; without one, `run-c`.
    #[command(subcommand)]
    command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run asm/run.c's steps on the real program break, then print the heap
    /// it leaves (the default).
    RunC,
    /// Print the port's trace of an operation script, then its heap map.
    ///
    /// The trace is asm/trace.c's format: every operation, then the heap
    /// layout after it. The last line, `map |1|.|`, is the heap in address
    /// order: one cell per block, its pool number if in use, `.` if free.
    #[command(after_help = SCRIPT_HELP)]
    Trace(TraceArgs),
    /// Trace a script with the original run.s (built with gcc) and with the
    /// port, and say whether the traces are identical.
    ///
    /// Prints `identical: N lines of trace`, or the first difference side by
    /// side (exit status 1). When the original crashes, the signal and the
    /// operation it crashed at are reported as the result.
    #[command(after_help = SCRIPT_HELP)]
    Compare(ScriptArgs),
    /// Show run.s's walk labels beside the port's machine code (objdump).
    Disasm(DisasmArgs),
    /// Step the walks instruction by instruction under ptrace, run.s beside
    /// the port (asm/trace.c linked with each).
    ///
    /// Every executed instruction of the ported labels is listed with the
    /// contract registers it reads or writes (%r10 %rdx %rsi %rcx %rdi %r8
    /// %rax), the flags a jump reads and whether it was taken. `--compare`
    /// prints `identical: N instructions over M operations` or the first
    /// differing instruction (exit status 1). About the default build: the
    /// asm walks.
    ///
    /// The port's side is a libbrk_pools.a built from the same library
    /// sources and features as this brk-pools (checked by the marks the
    /// library leaves in it; a stale one is refused with the command that
    /// rebuilds it). An installed brk-pools has none beside it: see
    /// --port-lib. The gcc builds are cached in $BRK_POOLS_CACHE_DIR, else
    /// $XDG_CACHE_HOME/brk-pools, else ~/.cache/brk-pools.
    #[command(after_help = SCRIPT_HELP)]
    Step(step::StepArgs),
    /// Run a program with every malloc on the port (the malloc shim,
    /// libbrk_pools_malloc.so, under LD_PRELOAD), then print on standard
    /// error what happened to its heap: blocks in use and free, free blocks
    /// by size (nothing is split or merged), first-fit walk lengths,
    /// appends, break moves and mappings, time.
    ///
    /// Example: brk-pools run -- perl -e 'my %h; $h{$_} = 1 for 1..5000'.
    /// The exit status is the program's. The shim writes one summary per
    /// process that exits normally; children are listed one line each.
    Run(run_program::RunArgs),
}

/// A script and how much layout to print: shared by `trace` and `compare`.
#[derive(Debug, Args)]
pub struct ScriptArgs {
    /// The script file; `-` reads standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the layout only once, after the last operation.
    #[arg(short = 'f', long = "final")]
    pub final_only: bool,
}

/// `trace`'s arguments.
#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    /// Also draw the heap after every operation as an SVG picture to OUT
    /// (long scripts are summarised; see brk_pools_tools::svg).
    #[arg(long, value_name = "OUT")]
    pub svg: Option<PathBuf>,
}

/// `disasm`'s arguments.
#[derive(Debug, Args)]
pub struct DisasmArgs {
    /// Print the comparison as Markdown (docs/machine-code.md).
    #[arg(long)]
    pub markdown: bool,
    /// The object or executable holding the port's walks [default: this
    /// executable].
    #[arg(long, value_name = "PATH")]
    pub object: Option<PathBuf>,
}

/// A failure to report to the user (exit status 2).
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(error: E) -> Self {
        CliError(error.to_string())
    }
}

/// The largest script `asm/trace.c` reads (`INPUT_CAP`); larger ones are
/// refused here too, so that `trace` and `compare` accept the same inputs.
const MAX_SCRIPT: usize = 16 << 20;

/// A script as read: its name for messages and its text.
pub struct Script {
    /// The file name as given, or `<stdin>`.
    pub name: String,
    /// The text, every line an operation, a comment or blank.
    pub text: String,
}

/// Reads and checks a script (`-` is standard input): every line must be an
/// operation, a comment or blank. An error names the file and the line.
pub fn read_script(file: &std::path::Path) -> Result<Script, CliError> {
    let from_stdin = file.as_os_str() == "-";
    let name = if from_stdin {
        "<stdin>".to_string()
    } else {
        file.display().to_string()
    };
    let mut bytes = Vec::new();
    let read = if from_stdin {
        io::stdin()
            .lock()
            .take(MAX_SCRIPT as u64 + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_SCRIPT as u64 + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| CliError(format!("cannot read {name}: {e}")))?;
    if bytes.len() > MAX_SCRIPT {
        return Err(CliError(format!(
            "{name}: larger than 16 MiB, the most asm/trace.c reads"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        CliError(format!("{name}: line {line}: not UTF-8 text (byte {at})"))
    })?;
    brk_pools_tools::script::parse_strict(&text)
        .map_err(|e| CliError(format!("{name}: {}", one_line(&e.to_string()))))?;
    Ok(Script { name, text })
}

/// `message` made safe to print as one line: control characters escaped,
/// at most 200 characters.
fn one_line(message: &str) -> String {
    const LIMIT: usize = 200;
    let mut out = String::new();
    for (n, c) in message.chars().enumerate() {
        if n == LIMIT {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `text` to standard output. A closed pipe (`brk-pools trace … |
/// head`) ends the output quietly; other write errors are reported.
pub fn print(text: &str) -> Result<(), CliError> {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(CliError(format!("cannot write to standard output: {e}")))
        }
        _ => Ok(()),
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command.unwrap_or(Command::RunC) {
        Command::RunC => run_c::run(),
        Command::Trace(args) => trace::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Disasm(args) => disasm::run(&args),
        Command::Step(args) => step::run(&args),
        Command::Run(args) => run_program::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(one_line("a\rb\u{1b}c"), "a\\rb\\u{1b}c");
        assert_eq!(one_line(&"x".repeat(300)).chars().count(), 201);
    }
}
