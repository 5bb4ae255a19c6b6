//! `brk-pools step FILE`: the glue around [`brk_pools::step`]. Builds the
//! two drivers (asm/trace.c with run.s, and with `libbrk_pools.a`), runs
//! the script through both under ptrace and prints the listing, the verdict
//! (`--compare`) or the walk picture (`--svg`).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use brk_pools::step::{self, Comparison, StepOptions, picture};

use clap::Args;

use super::{CliError, original, print, read_script};

const TRACE_C: &str = include_str!("../../asm/trace.c");

/// `step`'s arguments.
#[derive(Debug, Args)]
pub struct StepArgs {
    /// The script file; `-` reads standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Print only the verdict: `identical: …`, or the first differing
    /// instruction with both register sets (exit status 1).
    #[arg(long)]
    compare: bool,
    /// Stop with an error (exit status 2) after this many single steps on
    /// either side.
    #[arg(long, value_name = "N", default_value_t = step::DEFAULT_MAX_STEPS)]
    max_steps: u64,
    /// Also draw one allocate's walk as an SVG picture to OUT (the longest
    /// walk, or the one of --op).
    #[arg(long, value_name = "OUT")]
    svg: Option<PathBuf>,
    /// With --svg: the operation to draw, numbered from 0 as in the listing.
    #[arg(long, value_name = "N", requires = "svg")]
    op: Option<usize>,
    /// The port's static library [default: libbrk_pools.a beside this
    /// executable].
    #[arg(long, value_name = "PATH")]
    port_lib: Option<PathBuf>,
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

/// Why `step` does not apply to an `indexed-fit` build.
pub const NOT_WITH_INDEXED_FIT: &str = "step does not apply to this build: it was built with \
     --features indexed-fit, whose allocate finds blocks through an index instead of run.s's \
     walk, so there is no walk to compare instruction by instruction; build brk-pools without \
     that feature to step";

pub fn run(args: &StepArgs) -> Result<ExitCode, CliError> {
    if cfg!(feature = "indexed-fit") {
        return Err(CliError(NOT_WITH_INDEXED_FIT.to_string()));
    }
    let script = read_script(&args.file)?.text;
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
            .map_err(|e| CliError(format!("cannot write {}: {e}", out.display())))?;
        eprintln!(
            "brk-pools: wrote {}: the walk of op {}: {}",
            out.display(),
            op.number,
            op.call
        );
    }
    let comparison = outcome.compare();
    if args.compare {
        let mut text = String::new();
        for note in &outcome.notes {
            text += &format!("note: {note}\n");
        }
        print(&format!("{text}{comparison}\n"))?;
    } else {
        print(&outcome.side_by_side())?;
    }
    Ok(match comparison {
        Comparison::Identical { .. } => ExitCode::SUCCESS,
        Comparison::Differs(_) if args.compare => ExitCode::from(1),
        Comparison::Differs(_) => ExitCode::SUCCESS,
    })
}
