//! Building the original from the `asm/` sources embedded in this binary, so
//! `compare` and `disasm` work from any directory. Builds are cached once per
//! content under [`cache_dir`]: `$BRK_POOLS_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/brk-pools`, else `~/.cache/brk-pools`; never beside this
//! executable, whose folder may be read-only (an installed command).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::CliError;

const RUN_S: &str = include_str!("../../../asm/run.s");
const TRACE_C: &str = include_str!("../../../asm/trace.c");

/// Where gcc builds are cached (`compare`'s and `step`'s drivers, `disasm`'s
/// object): `$BRK_POOLS_CACHE_DIR`, else `$XDG_CACHE_HOME/brk-pools` (an
/// absolute path, as the XDG spec asks), else `$HOME/.cache/brk-pools`.
pub fn cache_dir() -> Result<PathBuf, CliError> {
    let set = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = set("BRK_POOLS_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = set("XDG_CACHE_HOME").map(PathBuf::from)
        && dir.is_absolute()
    {
        return Ok(dir.join("brk-pools"));
    }
    match set("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("brk-pools")),
        None => Err(CliError(
            "no cache folder for the gcc builds: set BRK_POOLS_CACHE_DIR (or XDG_CACHE_HOME or \
             HOME)"
                .to_string(),
        )),
    }
}

/// The cache folder for a build from `sources` (name, text), and whether
/// `product` is already built there; if not, the sources are written into it.
fn cache(sources: &[(&str, &str)], product: &str) -> Result<(PathBuf, bool), CliError> {
    let mut hasher = DefaultHasher::new();
    sources.hash(&mut hasher);
    let dir = cache_dir()?.join(format!("{:016x}", hasher.finish()));
    if dir.join(product).exists() {
        return Ok((dir, true));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError(format!("cannot create {}: {e}", dir.display())))?;
    for (name, text) in sources {
        std::fs::write(dir.join(name), text)?;
    }
    Ok((dir, false))
}

/// Runs one build step in `dir`, with an install hint if the tool is missing.
fn step(dir: &Path, program: &str, args: &[&str]) -> Result<(), CliError> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| {
            CliError(format!(
                "cannot run {program} ({e}): the original is built with gcc and binutils \
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
}

/// Builds under a temporary name and renames, so that a concurrent run never
/// sees a half-written product.
fn finish(dir: &Path, partial: &str, product: &str) -> Result<PathBuf, CliError> {
    let path = dir.join(product);
    std::fs::rename(dir.join(partial), &path)?;
    Ok(path)
}

/// `run.o`: run.s assembled by gcc.
pub fn object() -> Result<PathBuf, CliError> {
    let (dir, cached) = cache(&[("run.s", RUN_S)], "run.o")?;
    if cached {
        return Ok(dir.join("run.o"));
    }
    let partial = format!("run.partial.{}.o", std::process::id());
    step(&dir, "gcc", &["-c", "run.s", "-o", &partial])?;
    finish(&dir, &partial, "run.o")
}

/// `asm/trace.c` linked with run.s, whose `memory_start`/`memory_end` objcopy
/// makes global (the machine code is unchanged).
pub fn trace_driver() -> Result<PathBuf, CliError> {
    let (dir, cached) = cache(&[("run.s", RUN_S), ("trace.c", TRACE_C)], "trace")?;
    if cached {
        return Ok(dir.join("trace"));
    }
    let partial = format!("trace.partial.{}", std::process::id());
    step(&dir, "gcc", &["-c", "run.s", "-o", "run.o"])?;
    step(
        &dir,
        "objcopy",
        &[
            "--globalize-symbol=memory_start",
            "--globalize-symbol=memory_end",
            "run.o",
            "run_g.o",
        ],
    )?;
    step(
        &dir,
        "gcc",
        &["-no-pie", "-O2", "trace.c", "run_g.o", "-o", &partial],
    )?;
    finish(&dir, &partial, "trace")
}
