//! `brk-pools step FILE`: the glue around [`brk_pools_tools::step`]. Builds the
//! two drivers (asm/trace.c with run.s, and with `libbrk_pools.a`), runs
//! the script through both under ptrace and prints the listing, the verdict
//! (`--compare`) or the walk picture (`--svg`).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use brk_pools::build_info;
use brk_pools_tools::step::{self, Comparison, StepOptions, picture};

use clap::Args;

use super::{CliError, original, print, read_script};

const TRACE_C: &str = include_str!("../../../asm/trace.c");

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
    /// List run.s and the port side by side, one instruction a line (rows
    /// of about 150 columns) instead of the default listing of at most 100.
    #[arg(long)]
    wide: bool,
    /// Stop with an error (exit status 2) after this many single steps on
    /// either side.
    #[arg(long, value_name = "N", default_value_t = step::DEFAULT_MAX_STEPS,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_steps: u64,
    /// Also draw one allocate's walk as an SVG picture to OUT (the longest
    /// walk, or the one of --op).
    #[arg(long, value_name = "OUT")]
    svg: Option<PathBuf>,
    /// Also write a page to OUT that steps through the whole run in a
    /// browser (self-contained: open it from disk). With --compare it is
    /// written whatever the verdict, and opens on the first difference.
    #[arg(long, value_name = "OUT")]
    html: Option<PathBuf>,
    /// The operation to list (or, with --svg, to draw), numbered from 0 as
    /// in the listing.
    #[arg(long, value_name = "N")]
    op: Option<usize>,
    /// The port's static library [default: libbrk_pools.a beside this
    /// executable, else the newest deps/libbrk_pools-*.a there, built from
    /// the same library sources and features as this brk-pools].
    ///
    /// An archive built from other sources (stale) or with other features is
    /// refused, with the command that rebuilds it. An installed brk-pools has
    /// no archive beside it: build one in a checkout of the same sources
    /// (`cargo build --release -p brk-pools`) and pass
    /// --port-lib target/release/libbrk_pools.a.
    #[arg(long, value_name = "PATH")]
    port_lib: Option<PathBuf>,
    /// Step a --port-lib built from other library sources than this
    /// brk-pools (a deliberate change, such as a mutation of a walk); it
    /// must still have the same features.
    #[arg(long, requires = "port_lib")]
    other_sources: bool,
}

/// `asm/trace.c` linked with the port's static library, `-no-pie` like the
/// original's driver; cached (under [`original::cache_dir`]) by the sources
/// and the archive's path, size, time and tags.
fn port_driver(lib: &Archive) -> Result<PathBuf, CliError> {
    let meta = std::fs::metadata(&lib.path)?;
    let mut hasher = DefaultHasher::new();
    (TRACE_C, &lib.path, meta.len(), meta.modified().ok()).hash(&mut hasher);
    (&lib.build_tag, &lib.source_tag).hash(&mut hasher);
    let dir = original::cache_dir()?.join(format!("step-port-{:016x}", hasher.finish()));
    let driver = dir.join("trace");
    if driver.exists() {
        return Ok(driver);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError(format!("cannot create {}: {e}", dir.display())))?;
    std::fs::write(dir.join("trace.c"), TRACE_C)?;
    let partial = dir.join(format!("trace.partial.{}", std::process::id()));
    let output = Command::new("gcc")
        .args(["-no-pie", "-O2", "trace.c"])
        .arg(&lib.path)
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
            lib.path.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    std::fs::rename(&partial, &driver)?;
    Ok(driver)
}

/// A `libbrk_pools.a` and the marks the library leaves in it:
/// [`build_info::BUILD_TAG`] (its features) and [`build_info::SOURCE_TAG`] (its
/// sources), if present.
struct Archive {
    path: PathBuf,
    build_tag: Option<String>,
    source_tag: Option<String>,
}

/// The mark in `bytes` that starts with `prefix` and ends with `;`.
fn find_tag(bytes: &[u8], prefix: &str) -> Option<String> {
    let prefix = prefix.as_bytes();
    let at = bytes
        .windows(prefix.len())
        .position(|window| window == prefix)?;
    let rest = &bytes[at..];
    let end = rest.iter().take(200).position(|&b| b == b';')?;
    String::from_utf8(rest[..=end].to_vec()).ok()
}

impl Archive {
    fn read(path: &Path) -> Result<Archive, CliError> {
        let bytes = std::fs::read(path).map_err(|e| {
            CliError(format!(
                "cannot read the port's library {}: {e}; {}",
                path.display(),
                rebuild_hint()
            ))
        })?;
        Ok(Archive {
            path: path.to_path_buf(),
            build_tag: find_tag(&bytes, "brk-pools-build:"),
            source_tag: find_tag(&bytes, "brk-pools-source:"),
        })
    }

    /// Why this archive is not the library this binary was built with, if it
    /// is not: other features, or (unless `other_sources`) other sources.
    fn mismatch(&self, other_sources: bool) -> Option<String> {
        let (Some(build), Some(source)) = (&self.build_tag, &self.source_tag) else {
            return Some(format!(
                "{} is not a libbrk_pools.a of this version (it has no build and source marks)",
                self.path.display()
            ));
        };
        if build != build_info::BUILD_TAG {
            return Some(format!(
                "{} was built with other features ({build}, this brk-pools has {})",
                self.path.display(),
                build_info::BUILD_TAG
            ));
        }
        if source != build_info::SOURCE_TAG && !other_sources {
            return Some(format!(
                "{} is stale: it was built from other library sources than this brk-pools \
                 (source fingerprint {}, this brk-pools has {}), so stepping it would compare \
                 other code",
                self.path.display(),
                source
                    .trim_start_matches("brk-pools-source:")
                    .trim_end_matches(';'),
                build_info::SOURCE_FINGERPRINT
            ));
        }
        None
    }
}

/// The command that builds the library this binary was built with, for the
/// profile this binary looks built with.
fn rebuild_command() -> String {
    let release = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.file_name()? != "debug"))
        .unwrap_or(true);
    let mut command = String::from("cargo build");
    if release {
        command += " --release";
    }
    command += " -p brk-pools";
    if build_info::BATCHED_BRK {
        command += " --features batched-brk";
    }
    command
}

fn rebuild_hint() -> String {
    format!(
        "build the library with `{}` in the brk-pools checkout this command was built from \
         (building the brk-pools binary alone may leave libbrk_pools.a as it was), or pass \
         --port-lib PATH",
        rebuild_command()
    )
}

/// The archives `step` tries without `--port-lib`: `libbrk_pools.a` beside
/// this executable (where `cargo build -p brk-pools` puts it), then the
/// `deps/libbrk_pools-*.a` that cargo leaves beside it, newest first.
fn default_archives() -> Result<Vec<PathBuf>, CliError> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let mut found = Vec::new();
    let beside = dir.join("libbrk_pools.a");
    if beside.is_file() {
        found.push(beside);
    }
    let mut deps: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir.join("deps"))
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let ours = name.starts_with("libbrk_pools-") && name.ends_with(".a");
            ours.then(|| Some((std::fs::metadata(&path).ok()?.modified().ok()?, path)))?
        })
        .collect();
    deps.sort();
    found.extend(deps.into_iter().rev().map(|(_, path)| path));
    Ok(found)
}

/// The port's static library to step: `--port-lib`, or the first default
/// archive built from this binary's library (same sources, same features).
fn port_lib(args: &StepArgs) -> Result<Archive, CliError> {
    if let Some(path) = &args.port_lib {
        let archive = Archive::read(path)?;
        return match archive.mismatch(args.other_sources) {
            None => Ok(archive),
            Some(why) if archive.source_tag.is_some() && archive.build_tag.is_some() => {
                Err(CliError(format!(
                    "{why}; {}{}",
                    rebuild_hint(),
                    if archive.build_tag.as_deref() == Some(build_info::BUILD_TAG) {
                        " (--other-sources steps it anyway, for a deliberate change)"
                    } else {
                        ""
                    }
                )))
            }
            Some(why) => Err(CliError(format!("{why}; {}", rebuild_hint()))),
        };
    }
    let candidates = default_archives()?;
    let mut first_mismatch = None;
    for path in &candidates {
        let archive = Archive::read(path)?;
        match archive.mismatch(false) {
            None => return Ok(archive),
            Some(why) => {
                first_mismatch.get_or_insert(why);
            }
        }
    }
    let exe = std::env::current_exe()?;
    Err(CliError(match first_mismatch {
        Some(why) => format!("{why}; {}", rebuild_hint()),
        None => format!(
            "no libbrk_pools.a beside {} (an installed brk-pools has none): {}",
            exe.display(),
            rebuild_hint()
        ),
    }))
}

/// Why `step` does not apply to an `indexed-fit` build.
pub const NOT_WITH_INDEXED_FIT: &str = "step does not apply to this build: it was built with \
     --features indexed-fit, whose allocate finds blocks through an index instead of run.s's \
     walk, so there is no walk to compare instruction by instruction; build brk-pools without \
     that feature to step";

pub fn run(args: &StepArgs) -> Result<ExitCode, CliError> {
    if brk_pools::build_info::INDEXED_FIT {
        return Err(CliError(NOT_WITH_INDEXED_FIT.to_string()));
    }
    let script = read_script(&args.file)?.text;
    if !brk_pools_tools::script::parse(&script)
        .iter()
        .any(Result::is_ok)
    {
        return Err(CliError(format!(
            "{}: the script has no operations (one a line: `a POOL SIZE`, `d HANDLE`, `p POOL`)",
            args.file.display()
        )));
    }
    let lib = port_lib(args)?;
    let mut options = StepOptions::new(&script, original::trace_driver()?, port_driver(&lib)?);
    options.max_steps = args.max_steps;
    options.read_headers = args.svg.is_some() || args.html.is_some();
    let outcome = step::run(&options)?;
    if let Some(n) = args.op
        && n >= outcome.operations.len()
    {
        return Err(CliError(format!(
            "there is no operation {n}: the script has {} (numbered from 0)",
            outcome.operations.len()
        )));
    }
    if let Some(out) = &args.html {
        let title = args.file.file_name().map_or_else(
            || "-".to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        std::fs::write(out, step::html::render(&outcome, &title))
            .map_err(|e| CliError(format!("cannot write {}: {e}", out.display())))?;
        eprintln!("brk-pools: wrote {}", out.display());
    }
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
        let listing = |outcome: &step::StepOutcome| {
            if args.wide {
                outcome.side_by_side()
            } else {
                outcome.listing()
            }
        };
        match args.op {
            Some(n) => {
                let mut only = outcome.clone();
                only.operations.retain(|op| op.number == n);
                print(&listing(&only))?;
            }
            None => print(&listing(&outcome))?,
        }
    }
    Ok(match comparison {
        Comparison::Identical { .. } => ExitCode::SUCCESS,
        Comparison::Differs(_) if args.compare => ExitCode::from(1),
        Comparison::Differs(_) => ExitCode::SUCCESS,
    })
}
