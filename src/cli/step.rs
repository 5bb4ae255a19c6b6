//! `brk-pools step FILE`: the glue around [`brk_pools::step`]. Builds the
//! two drivers (asm/trace.c with run.s, and with `libbrk_pools.a`), runs
//! the script through both under ptrace and prints the listing, the verdict
//! (`--compare`) or the walk picture (`--svg`).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use brk_pools::step::{self, Comparison, StepOptions, picture};

use super::{CliError, USAGE, original, read_script};

const TRACE_C: &str = include_str!("../../asm/trace.c");

struct Args {
    file: String,
    compare: bool,
    max_steps: u64,
    svg: Option<String>,
    op: Option<usize>,
    port_lib: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Args, CliError> {
    let mut parsed = Args {
        file: String::new(),
        compare: false,
        max_steps: step::DEFAULT_MAX_STEPS,
        svg: None,
        op: None,
        port_lib: None,
    };
    let mut args = args.iter();
    let value = |args: &mut std::slice::Iter<String>, option: &str| {
        args.next()
            .cloned()
            .ok_or_else(|| CliError(format!("step: {option} needs a value\n{USAGE}")))
    };
    let number = |text: String, option: &str| {
        text.parse::<u64>()
            .map_err(|_| CliError(format!("step: {option} needs a number, not {text}")))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--compare" => parsed.compare = true,
            "--max-steps" => parsed.max_steps = number(value(&mut args, arg)?, arg)?,
            "--svg" => parsed.svg = Some(value(&mut args, arg)?),
            "--op" => parsed.op = Some(number(value(&mut args, arg)?, arg)? as usize),
            "--port-lib" => parsed.port_lib = Some(value(&mut args, arg)?.into()),
            option if option.starts_with('-') => {
                return Err(CliError(format!("step: unknown option {option}\n{USAGE}")));
            }
            path if parsed.file.is_empty() => parsed.file = path.to_string(),
            extra => {
                return Err(CliError(format!(
                    "step: unexpected argument {extra}\n{USAGE}"
                )));
            }
        }
    }
    if parsed.file.is_empty() {
        return Err(CliError(format!("step: missing FILE\n{USAGE}")));
    }
    Ok(parsed)
}

/// `asm/trace.c` linked with the port's static library, `-no-pie` like the
/// original's driver; cached by the sources and the library's size and time.
fn port_driver(lib: &Path) -> Result<PathBuf, CliError> {
    let meta = std::fs::metadata(lib).map_err(|e| {
        CliError(format!(
            "{}: {e}; `cargo build` puts libbrk_pools.a beside brk-pools (crate-type staticlib), \
             or pass --port-lib PATH",
            lib.display()
        ))
    })?;
    let mut hasher = DefaultHasher::new();
    (TRACE_C, lib, meta.len(), meta.modified().ok()).hash(&mut hasher);
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .unwrap_or(Path::new("."))
        .join("original")
        .join(format!("step-port-{:016x}", hasher.finish()));
    let driver = dir.join("trace");
    if driver.exists() {
        return Ok(driver);
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("trace.c"), TRACE_C)?;
    let partial = dir.join(format!("trace.partial.{}", std::process::id()));
    let output = Command::new("gcc")
        .args(["-no-pie", "-O2", "trace.c"])
        .arg(lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&partial)
        .current_dir(&dir)
        .output()
        .map_err(|e| {
            CliError(format!(
                "cannot run gcc ({e}): apt-get install gcc binutils"
            ))
        })?;
    if !output.status.success() {
        return Err(CliError(format!(
            "gcc failed linking {}:\n{}",
            lib.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    std::fs::rename(&partial, &driver)?;
    Ok(driver)
}

pub fn run(args: &[String]) -> Result<ExitCode, CliError> {
    let args = parse(args)?;
    let script = read_script(&args.file)?;
    let lib = match &args.port_lib {
        Some(lib) => lib.clone(),
        None => std::env::current_exe()?
            .parent()
            .unwrap_or(Path::new("."))
            .join("libbrk_pools.a"),
    };
    let mut options = StepOptions::new(&script, original::trace_driver()?, port_driver(&lib)?);
    options.max_steps = args.max_steps;
    options.read_headers = args.svg.is_some();
    let outcome = step::run(&options)?;
    if let Some(out) = &args.svg {
        let op = picture::choose(&outcome, args.op)?;
        std::fs::write(out, picture::render(op))
            .map_err(|e| CliError(format!("cannot write {out}: {e}")))?;
        eprintln!("{out}: the walk of op {}: {}", op.number, op.call);
    }
    let comparison = outcome.compare();
    if args.compare {
        for note in &outcome.notes {
            println!("note: {note}");
        }
        println!("{comparison}");
    } else {
        print!("{}", outcome.side_by_side());
    }
    Ok(match comparison {
        Comparison::Identical { .. } => ExitCode::SUCCESS,
        Comparison::Differs(_) if args.compare => ExitCode::from(1),
        Comparison::Differs(_) => ExitCode::SUCCESS,
    })
}
