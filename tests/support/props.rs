//! Shared proptest settings: how many cases, and where failures are kept.

use proptest::test_runner::{Config, FileFailurePersistence};

/// `default_cases` cases (or `PROPTEST_CASES`), with failing inputs saved
/// to `proptest-regressions/<test>.txt` at the repository root and replayed first
/// on later runs. Those files are committed, as proptest's docs advise.
pub fn config(test: &str, default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let path = format!(
        "{}/proptest-regressions/{test}.txt",
        super::root().display()
    );
    Config {
        cases,
        // Enough steps to shrink a 300-line script to the few lines that
        // matter (the default, 1024, stops at about 150 lines).
        max_shrink_iters: 100_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(Box::leak(
            path.into_boxed_str(),
        )))),
        ..Config::default()
    }
}
