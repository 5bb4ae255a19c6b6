//! A `harness = false` test binary whose cases each run in a child process of
//! their own: `main` re-runs the binary once per case with
//! `BRK_POOLS_CASE=<name>`, and the child runs that case on its main thread.
//! Used where a case changes the whole process (resource limits, the first
//! thread, the real program break). A case that crashes, panics or does not
//! finish in time fails the run. Arguments that do not start with `-` select
//! cases by substring, like libtest's filter.

use std::process::Command;
use std::time::Duration;

const CASE: &str = "BRK_POOLS_CASE";

/// One case: its name and the function the child runs.
pub type Case = (&'static str, fn());

/// The test binary's `main`. In the child: `before` (a precondition every
/// case shares), then the case. In the parent: every selected case in a
/// child, which `configure` may adjust (environment variables).
pub fn main(kind: &str, cases: &[Case], before: fn(), configure: impl Fn(&str, &mut Command)) {
    if let Ok(name) = std::env::var(CASE) {
        let (_, case) = cases
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no case {name}"));
        before();
        case();
        println!("case {name}: ok");
        return;
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, _) in cases {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.env(CASE, name);
        configure(name, &mut command);
        let outcome = super::run_with_timeout(&mut command, Duration::from_secs(120));
        let ok = outcome.success() && outcome.stdout.contains(&format!("case {name}: ok"));
        println!("case {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            println!("{}", outcome.describe());
            failed.push(*name);
        }
    }
    println!("{ran} {kind} cases, {} failed", failed.len());
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
