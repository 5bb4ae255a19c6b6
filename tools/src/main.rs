//! `brk-pools`: the port of run.c, script traces, pictures and comparisons
//! with the original binary. `brk-pools --help` lists the subcommands;
//! `brk-pools SUBCOMMAND --help` explains each.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with status 2 (0 for --help
    // and --version).
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("brk-pools: {error}");
            ExitCode::from(2)
        }
    }
}
