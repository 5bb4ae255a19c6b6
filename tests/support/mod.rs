//! Shared test plumbing: building the C programs in `asm/` with gcc, once per
//! content, against either the original `run.s` or the port's static library.
//!
//! Builds are cached under `target/c-build/<hash>/`, keyed by the compiler
//! flags, the sources' bytes and (for the port) the static library's size and
//! modification time, so parallel tests and later test runs reuse them.

#![allow(dead_code)]

pub mod child_cases;
pub mod props;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// Which allocator a C program is linked with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Allocator {
    /// `asm/run.s`, assembled by gcc (`-no-pie`: it does not link as PIE).
    Original,
    /// `asm/run.s` with `memory_start`/`memory_end` made global by objcopy,
    /// for drivers that read them (the machine code is unchanged).
    OriginalGlobals,
    /// The port: `libbrk_pools.a` from this very `cargo test` build.
    Port,
}

/// The repository's root folder (the workspace root, where `asm/` is), for
/// the tests of both packages: the allocator's at the root and the tools'
/// in `tools/` (which include this module by `#[path]`).
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("asm").join("run.s").is_file())
        .unwrap_or(manifest)
        .to_path_buf()
}

/// `asm/NAME`.
pub fn asm(name: &str) -> PathBuf {
    root().join("asm").join(name)
}

/// `target/debug` (or `target/release`): two levels above this test binary.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// The port's static library, built by cargo for this test run.
///
/// `cargo test` builds the library's `staticlib` artifact beside the rlib in
/// `target/<profile>/deps/libbrk_pools-<hash>.a` but, unlike `cargo build`,
/// does not copy it to `target/<profile>/libbrk_pools.a`. Builds with other
/// features leave archives with other hashes there, so the newest archive
/// carrying this build's `process::BUILD_TAG` and `build_info::SOURCE_TAG`
/// (the same features, the same library sources) is the one under test.
pub fn staticlib() -> PathBuf {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(find_staticlib).clone()
}

fn find_staticlib() -> PathBuf {
    let deps = profile_dir().join("deps");
    let mut archives: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&deps)
        .unwrap_or_else(|e| panic!("{}: {e}", deps.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let ours = name.starts_with("libbrk_pools-") && name.ends_with(".a");
            ours.then(|| Some((std::fs::metadata(&path).ok()?.modified().ok()?, path)))?
        })
        .collect();
    archives.sort();
    let tags = [
        brk_pools::build_info::BUILD_TAG.as_bytes(),
        brk_pools::build_info::SOURCE_TAG.as_bytes(),
    ];
    archives
        .into_iter()
        .rev()
        .map(|(_, path)| path)
        .find(|path| {
            let bytes = std::fs::read(path).unwrap_or_default();
            tags.iter().all(|tag| contains(&bytes, tag))
        })
        .unwrap_or_else(|| {
            panic!(
                "no libbrk_pools-*.a with {:?} and {:?} in {}: the crate-type must include \
                 staticlib",
                brk_pools::build_info::BUILD_TAG,
                brk_pools::build_info::SOURCE_TAG,
                deps.display()
            )
        })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    haystack
        .iter()
        .enumerate()
        .filter(|&(_, &byte)| byte == first)
        .any(|(at, _)| haystack[at + 1..].starts_with(rest))
}

/// Fails the test with a clear message when a tool is missing.
pub fn require_tool(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{tool}` is required by this test; .ci/run installs it"
    );
}

fn hash_file(path: &Path, hasher: &mut DefaultHasher) {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .hash(hasher);
}

/// Builds `sources` (C files, relative to the crate root or absolute) into an
/// executable linked with `allocator`, with extra gcc `flags`; cached.
pub fn build_c(name: &str, sources: &[PathBuf], allocator: Allocator, flags: &[&str]) -> PathBuf {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    require_tool("gcc");
    let mut hasher = DefaultHasher::new();
    (name, allocator, flags).hash(&mut hasher);
    for source in sources {
        hash_file(source, &mut hasher);
    }
    let mut link: Vec<PathBuf> = Vec::new();
    let mut link_flags: Vec<&str> = Vec::new();
    match allocator {
        Allocator::Original | Allocator::OriginalGlobals => {
            hash_file(&asm("run.s"), &mut hasher);
            link_flags.push("-no-pie");
        }
        Allocator::Port => {
            let lib = staticlib();
            let meta = std::fs::metadata(&lib).unwrap();
            (meta.len(), meta.modified().unwrap()).hash(&mut hasher);
            link.push(lib);
            link_flags.extend(["-lpthread", "-ldl", "-lm"]);
        }
    }
    let dir = profile_dir()
        .parent()
        .unwrap()
        .join("c-build")
        .join(format!("{:016x}", hasher.finish()));
    let exe = dir.join(name);
    let _guard = LOCK
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if exe.exists() {
        return exe;
    }
    std::fs::create_dir_all(&dir).unwrap();
    match allocator {
        Allocator::Original => link.push(asm("run.s")),
        Allocator::OriginalGlobals => {
            let object = dir.join("run.o");
            let globals = dir.join("run_g.o");
            run_ok(
                Command::new("gcc")
                    .arg("-c")
                    .arg(asm("run.s"))
                    .arg("-o")
                    .arg(&object),
            );
            run_ok(
                Command::new("objcopy")
                    .args([
                        "--globalize-symbol=memory_start",
                        "--globalize-symbol=memory_end",
                    ])
                    .arg(&object)
                    .arg(&globals),
            );
            link.push(globals);
        }
        Allocator::Port => {}
    }
    // Build under a temporary name and rename, so a parallel test binary never
    // runs a half-written executable.
    let partial = dir.join(format!("{name}.partial.{}", std::process::id()));
    let mut gcc = Command::new("gcc");
    gcc.args(["-O2", "-g", "-Wall"])
        .args(flags)
        .args(sources)
        .args(&link);
    gcc.args(&link_flags).arg("-o").arg(&partial);
    run_ok(&mut gcc);
    std::fs::rename(&partial, &exe).unwrap();
    exe
}

/// Runs a command and panics with its output if it fails.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Where the tests' runs of the `brk-pools` command cache their gcc builds:
/// `target/<profile>/brk-pools-cache`, not the user's cache folder.
pub fn tool_cache() -> PathBuf {
    profile_dir().join("brk-pools-cache")
}

/// The tools package's `brk-pools` command (only its own tests have it),
/// caching under [`tool_cache`].
pub fn brk_pools_command() -> Command {
    let Some(exe) = option_env!("CARGO_BIN_EXE_brk-pools") else {
        panic!("the brk-pools command belongs to the tools package's tests");
    };
    let mut command = Command::new(exe);
    command.env("BRK_POOLS_CACHE_DIR", tool_cache());
    command
}

/// `command.output()` for an executable this test process has just written
/// (a copy of the command): while another test thread forks, the child holds
/// the written file open until it execs, and running the file fails with
/// "Text file busy" meanwhile; this retries then.
pub fn output_of_fresh_executable(command: &mut Command) -> Output {
    for _ in 0..100 {
        match command.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result.unwrap_or_else(|e| panic!("run {command:?}: {e}")),
        }
    }
    panic!("{command:?}: text file busy for 2 s");
}

/// Runs `exe` with `stdin` as its standard input; returns its output
/// (whatever the exit status).
pub fn run_with_stdin(exe: &Path, args: &[&str], stdin: &[u8]) -> Output {
    run_command_with_stdin(Command::new(exe).args(args), stdin)
}

/// Runs `command` with `stdin` as its standard input; returns its output
/// (whatever the exit status).
pub fn run_command_with_stdin(command: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

/// `asm/trace.c` linked with `allocator` (the original needs its
/// `memory_start`/`memory_end` made global; the port exports them).
pub fn trace_driver(allocator: Allocator) -> PathBuf {
    let allocator = match allocator {
        Allocator::Original => Allocator::OriginalGlobals,
        other => other,
    };
    build_c("trace", &[asm("trace.c")], allocator, &[])
}

/// Runs a trace driver on `script`; panics unless it exits 0.
pub fn run_trace(driver: &Path, script: &str, final_only: bool) -> String {
    let args: &[&str] = if final_only { &["-f"] } else { &[] };
    let output = run_with_stdin(driver, args, script.as_bytes());
    let stdout = String::from_utf8(output.stdout).expect("trace output is ASCII");
    assert!(
        output.status.success(),
        "{} exited with {}; stderr: {}\nstdout tail:\n{}",
        driver.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr),
        &stdout[stdout.len().saturating_sub(2000)..]
    );
    stdout
}

/// splitmix64: a small seeded generator, so random tests can be replayed
/// from their seed and need no crate.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `percent` times in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A heap's blocks as `(offset, in_use, size, pool)`, for comparing layouts.
pub fn layout<S: brk_pools::BreakSource>(heap: &brk_pools::Heap<S>) -> Vec<(usize, u64, u64, u64)> {
    heap.blocks()
        .map(|b| (b.offset, b.header.in_use, b.header.size, b.header.pool))
        .collect()
}

/// How a child process ended, as seen by [`run_with_timeout`].
pub struct Outcome {
    /// The exit status; `None` if the child was killed for taking too long.
    pub status: Option<std::process::ExitStatus>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Outcome {
    /// Exited with status 0 in time.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Killed for taking too long: a hang.
    pub fn hung(&self) -> bool {
        self.status.is_none()
    }

    /// Exit status and output, for a failure message.
    pub fn describe(&self) -> String {
        let status = self
            .status
            .map_or("killed after the timeout (hang)".to_string(), |s| {
                s.to_string()
            });
        format!(
            "status: {status}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs `command`, killing it after `timeout` (to detect hangs, not to
/// measure speed). Output goes to temporary files, so a chatty child cannot
/// block on a full pipe.
pub fn run_with_timeout(command: &mut Command, timeout: std::time::Duration) -> Outcome {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    let tag = format!(
        "brk-pools-child-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let out_path = dir.join(format!("{tag}.out"));
    let err_path = dir.join(format!("{tag}.err"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let read = |path: &Path| {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
        let _ = std::fs::remove_file(path);
        text
    };
    Outcome {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

/// What [`stress_runs`] saw: every child's outcome counted by kind.
#[derive(Default)]
pub struct StressTally {
    pub runs: usize,
    pub crashes: usize,
    pub hangs: usize,
    /// Children that exited 2: their own check found changed bytes.
    pub changed: usize,
    /// Children that exited 3: `allocate` returned NULL where it must not.
    pub nulls: usize,
    pub first_failure: Option<Outcome>,
    /// Standard output of the last child that exited 0.
    pub last_stdout: String,
}

/// Runs `command(i)` with `timeout` at least `min_runs` times, and for as long
/// as `BRK_POOLS_STRESS_SECS` asks (the long form), counting crashes, hangs
/// (timeout), failed checks (exit status 2) and NULLs (exit status 3).
pub fn stress_runs(
    min_runs: usize,
    timeout: std::time::Duration,
    mut command: impl FnMut(usize) -> Command,
) -> StressTally {
    let budget = std::env::var("BRK_POOLS_STRESS_SECS").ok().map(|secs| {
        std::time::Duration::from_secs(secs.parse().expect("BRK_POOLS_STRESS_SECS: seconds"))
    });
    let start = std::time::Instant::now();
    let mut tally = StressTally::default();
    while tally.runs < min_runs || budget.is_some_and(|b| start.elapsed() < b) {
        let outcome = run_with_timeout(&mut command(tally.runs), timeout);
        tally.runs += 1;
        if outcome.success() {
            tally.last_stdout = outcome.stdout;
            continue;
        }
        if outcome.hung() {
            tally.hangs += 1;
        } else if outcome.status.and_then(|s| s.code()) == Some(2) {
            tally.changed += 1;
        } else if outcome.status.and_then(|s| s.code()) == Some(3) {
            tally.nulls += 1;
        } else {
            tally.crashes += 1;
        }
        tally.first_failure.get_or_insert(outcome);
    }
    tally
}
