//! Command-line parsing and dispatch. Each subcommand lives in its own module;
//! errors are messages for a person, never panics.

mod compare;
mod disasm;
mod original;
mod run_c;
mod step;
mod trace;

use std::fmt;
use std::process::ExitCode;

pub const USAGE: &str = "\
usage:
  brk-pools                      run asm/run.c's steps on the real program break (the default)
  brk-pools trace FILE [-f] [--svg OUT.svg]
                                 the port's trace of an operation script, then its heap map;
                                 --svg also draws the heap after every operation to OUT.svg
  brk-pools compare FILE [-f]    trace FILE with the original run.s (built with gcc) and the port: identical?
  brk-pools disasm [--markdown] [--object PATH]
                                 run.s's walk labels beside the port's machine code (objdump; PATH
                                 defaults to this executable); --markdown prints docs/machine-code.md
  brk-pools step FILE [--compare] [--max-steps N] [--svg OUT.svg [--op N]] [--port-lib PATH]
                                 the walks instruction by instruction under ptrace, run.s beside
                                 the port (asm/trace.c linked with each); --compare: identical?
                                 --svg draws one allocate's walk (the longest, or op N)
  brk-pools help                 this text

FILE holds one operation a line: `a POOL SIZE`, `d H` (handle H = the H-th allocate), `p POOL`;
`#` starts a comment. -f prints the layout only once, after the last operation.";

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

/// Options shared by `trace` and `compare`.
pub struct ScriptArgs {
    pub file: String,
    pub final_only: bool,
    /// `trace --svg OUT.svg`: where to draw the heap after every operation.
    pub svg: Option<String>,
}

fn script_args(command: &str, args: &[String]) -> Result<ScriptArgs, CliError> {
    let mut file = None;
    let mut final_only = false;
    let mut svg = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-f" | "--final" => final_only = true,
            "--svg" if command == "trace" => {
                let out = args.next().ok_or_else(|| {
                    CliError(format!("{command}: --svg needs a file name\n{USAGE}"))
                })?;
                svg = Some(out.to_string());
            }
            option if option.starts_with('-') => {
                return Err(CliError(format!(
                    "{command}: unknown option {option}\n{USAGE}"
                )));
            }
            path if file.is_none() => file = Some(path.to_string()),
            extra => {
                return Err(CliError(format!(
                    "{command}: unexpected argument {extra}\n{USAGE}"
                )));
            }
        }
    }
    let file = file.ok_or_else(|| CliError(format!("{command}: missing FILE\n{USAGE}")))?;
    Ok(ScriptArgs {
        file,
        final_only,
        svg,
    })
}

/// Reads and checks a script: every line must be an operation.
pub fn read_script(file: &str) -> Result<String, CliError> {
    let bytes = std::fs::read(file).map_err(|e| CliError(format!("cannot read {file}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        CliError(format!(
            "{file}: not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    brk_pools::script::parse_strict(&text).map_err(|e| CliError(format!("{file}: {e}")))?;
    Ok(text)
}

pub fn run(args: &[String]) -> Result<ExitCode, CliError> {
    match args.first().map(String::as_str) {
        None | Some("run-c") => run_c::run(),
        Some("trace") => trace::run(&script_args("trace", &args[1..])?),
        Some("compare") => compare::run(&script_args("compare", &args[1..])?),
        Some("disasm") => disasm::run(&args[1..]),
        Some("step") => step::run(&args[1..]),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => Err(CliError(format!("unknown command {other}\n{USAGE}"))),
    }
}
