//! Random and hostile scripts thrown at the built `brk-pools` binary:
//! `trace`, `trace --svg` and `compare` must exit 0, 2 (bad input, one line
//! on stderr) or, for `compare`, 1 (a reported difference, e.g. the original
//! crashed): never a panic, a signal or another status. Scripts have up to
//! thousands of lines, huge and negative numbers, stray signs and odd bytes;
//! they are passed as a file or on stdin (`-`).
//!
//! `PROPTEST_CASES=N` runs more than the default 24 scripts (each through the
//! three commands); a failure is shrunk and saved in
//! `proptest-regressions/cli_props.txt`.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Output;

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::TestRunner;

/// A script's bytes; `Debug` shows them as text with escapes.
#[derive(Clone)]
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes:\n{}",
            self.0.len(),
            self.0.escape_ascii().to_string().replace("\\n", "\n")
        )
    }
}

/// Numbers as a hostile user writes them.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (-5..100i64).prop_map(|n| n.to_string()),
        2 => any::<i32>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "2147483647", "-2147483648", "2147483648", "-2147483649", "4294967295",
            "-0", "+1", "00000000000000000016", "99999999999999999999999999", "1e3", "0x10", "",
        ])
        .prop_map(str::to_string),
    ]
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => (number(), number()).prop_map(|(p, s)| format!("a {p} {s}").into_bytes()),
        3 => number().prop_map(|h| format!("d {h}").into_bytes()),
        1 => number().prop_map(|h| format!("d h{h}").into_bytes()),
        2 => number().prop_map(|p| format!("p {p}").into_bytes()),
        1 => "[ \t#a-z0-9-]{0,30}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

/// A line of a script that parses: `d` takes the `k % allocations`-th handle.
#[derive(Clone, Copy, Debug)]
enum Valid {
    Allocate(i32, i32),
    Deallocate(u64),
    Pool(i32),
    Comment,
}

fn valid_line() -> impl Strategy<Value = Valid> {
    let int = prop_oneof![
        8 => 0..2000i32,
        1 => prop::sample::select(vec![-1, i32::MIN, i32::MAX, 0x7fff_ffe0, -33]),
        1 => any::<i32>(),
    ];
    prop_oneof![
        10 => (int.clone(), int.clone()).prop_map(|(p, s)| Valid::Allocate(p, s)),
        5 => any::<u64>().prop_map(Valid::Deallocate),
        2 => int.prop_map(Valid::Pool),
        1 => Just(Valid::Comment),
    ]
}

fn render(lines: &[Valid]) -> Vec<Vec<u8>> {
    let mut allocations = 0u64;
    lines
        .iter()
        .map(|line| match *line {
            Valid::Allocate(pool, size) => {
                allocations += 1;
                format!("a {pool} {size}")
            }
            Valid::Deallocate(_) if allocations == 0 => "# no handle yet".to_string(),
            Valid::Deallocate(k) => format!("d h{} # a comment", k % allocations),
            Valid::Pool(pool) => format!("  p {pool}\t"),
            Valid::Comment => "# a comment".to_string(),
        })
        .map(String::into_bytes)
        .collect()
}

/// Scripts that parse (short and long) and hostile ones.
fn script() -> impl Strategy<Value = Bytes> {
    let lines = prop_oneof![
        4 => prop::collection::vec(line(), 0..60),
        4 => prop::collection::vec(valid_line(), 0..120).prop_map(|l| render(&l)),
        1 => prop::collection::vec(valid_line(), 500..3000).prop_map(|l| render(&l)),
        1 => prop::collection::vec(line(), 500..3000),
    ];
    (lines, any::<bool>()).prop_map(|(lines, crlf)| {
        let end: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        Bytes(lines.join(end))
    })
}

/// Runs `brk-pools ARGS` with `script` as FILE or on stdin.
fn brk_pools(args: &[&str], script: &[u8], file: &Path, stdin: bool) -> Output {
    let source = if stdin { "-" } else { file.to_str().unwrap() };
    let mut all: Vec<&str> = vec![args[0], source];
    all.extend(&args[1..]);
    support::run_command_with_stdin(
        support::brk_pools_command().args(&all),
        if stdin { script } else { b"" },
    )
}

fn allowed(args: &[&str], output: &Output, codes: &[i32]) -> Result<(), TestCaseError> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    prop_assert!(
        output.status.code().is_some_and(|c| codes.contains(&c)),
        "{args:?}: {} (allowed {codes:?})\nstderr: {stderr}",
        output.status
    );
    prop_assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    if output.status.code() == Some(2) {
        prop_assert_eq!(stderr.lines().count(), 1, "{:?}: {}", args, stderr);
        prop_assert!(stderr.starts_with("brk-pools: "), "{args:?}: {stderr}");
    }
    Ok(())
}

/// Exit statuses seen, per command: [trace, trace --svg, compare] × [0, 1, 2].
static SEEN: [[AtomicUsize; 3]; 3] = [const { [const { AtomicUsize::new(0) }; 3] }; 3];

fn seen(command: usize, output: &Output) {
    if let Some(code @ 0..=2) = output.status.code() {
        SEEN[command][code as usize].fetch_add(1, Ordering::Relaxed);
    }
}

fn one_script(script: &Bytes, stdin: bool) -> Result<(), TestCaseError> {
    let dir = support::profile_dir().join("cli-props");
    std::fs::create_dir_all(&dir).unwrap();
    let id = std::process::id();
    let file = dir.join(format!("script-{id}.ops"));
    let svg = dir.join(format!("picture-{id}.svg"));
    std::fs::write(&file, &script.0).unwrap();
    let _ = std::fs::remove_file(&svg);
    // Long scripts print the layout once (-f): every-op layouts of
    // thousands of blocks are millions of lines.
    let long = script.0.len() > 4000;
    let f: &[&str] = if long { &["-f"] } else { &[] };
    let trace = brk_pools(&[&["trace"][..], f].concat(), &script.0, &file, stdin);
    allowed(&["trace"], &trace, &[0, 2])?;
    seen(0, &trace);
    let svg_args = [&["trace"][..], f, &["--svg", svg.to_str().unwrap()]].concat();
    let picture = brk_pools(&svg_args, &script.0, &file, stdin);
    allowed(&svg_args, &picture, &[0, 2])?;
    seen(1, &picture);
    prop_assert_eq!(trace.status.code(), picture.status.code());
    prop_assert_eq!(&trace.stdout, &picture.stdout);
    if picture.status.success() {
        let bytes = std::fs::metadata(&svg).unwrap().len();
        prop_assert!(bytes < 1 << 20, "{} bytes of SVG", bytes);
    }
    let compare = brk_pools(&[&["compare"][..], f].concat(), &script.0, &file, stdin);
    allowed(&["compare"], &compare, &[0, 1, 2])?;
    seen(2, &compare);
    prop_assert_eq!(
        trace.status.code() == Some(2),
        compare.status.code() == Some(2)
    );
    Ok(())
}

#[test]
fn hostile_scripts_never_crash_the_command() {
    let mut runner = TestRunner::new(support::props::config("cli_props", 24));
    let result = runner.run(&(script(), any::<bool>()), |(script, stdin)| {
        one_script(&script, stdin)
    });
    let counts: Vec<Vec<usize>> = SEEN
        .iter()
        .map(|c| c.iter().map(|n| n.load(Ordering::Relaxed)).collect())
        .collect();
    eprintln!(
        "exit statuses 0/1/2: trace {:?}, trace --svg {:?}, compare {:?}",
        counts[0], counts[1], counts[2]
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
