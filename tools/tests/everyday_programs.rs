//! Everyday programs on the malloc shim (`libbrk_pools_malloc.so` under
//! `LD_PRELOAD`), on both builds (run.s's walk and indexed-fit): a C program
//! that checks the malloc family's contract, a shell, ls, git, gcc, perl and
//! python3, each with the same output and exit status as on glibc's malloc,
//! and `brk-pools run`'s summary.
//!
//! A program that is not installed is skipped with a message on stderr
//! (.ci/run installs them and sets BRK_POOLS_REQUIRE_PROGRAMS, which turns
//! a skip into a failure).

mod shim_support;

use std::process::Command;

use brk_pools_tools::shim::Fit;
use shim_support::{FITS, Run, ScratchDir, available, command, fit_name, run_on, workspace};

/// Debian's python3 (the one on PATH may be another build).
const PYTHON: &str = "/usr/bin/python3.11";

/// Runs `make()`'s command on glibc and on both shims: the same stdout and
/// exit status everywhere, and each shim run wrote a heap summary of its
/// own process. Returns the shim runs.
fn same_as_glibc(name: &str, make: impl Fn() -> Command) -> Vec<Run> {
    let glibc = run_on(None, make());
    assert!(
        glibc.output.status.success(),
        "{name} fails on glibc: {}",
        glibc.stderr()
    );
    FITS.map(|fit| {
        let run = run_on(Some(fit), make());
        assert_eq!(
            (run.output.status, run.stdout()),
            (glibc.output.status, glibc.stdout()),
            "{name} on the {} shim, stderr: {}",
            fit.name(),
            run.stderr()
        );
        assert!(
            !run.summaries.is_empty(),
            "{name} on the {} shim wrote no heap summary: the shim was not loaded",
            fit.name()
        );
        eprintln!(
            "{name}: glibc {:.2} s, {} {:.2} s",
            glibc.seconds,
            fit_name(Some(fit)),
            run.seconds
        );
        run
    })
    .into()
}

#[test]
fn the_malloc_family_keeps_its_contract() {
    if !available("the_malloc_family_keeps_its_contract", "gcc") {
        return;
    }
    let dir = ScratchDir::new("malloc-family");
    let binary = dir.path().join("malloc_family");
    let status = Command::new("gcc")
        .args(["-O1", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg(workspace().join("tools/tests/c/malloc_family.c"))
        .arg("-o")
        .arg(&binary)
        .status()
        .unwrap();
    assert!(status.success());
    let glibc = run_on(None, Command::new(&binary));
    assert!(
        glibc.stdout().ends_with("\nok\n"),
        "glibc: {}",
        glibc.stdout()
    );
    for fit in FITS {
        let run = run_on(Some(fit), Command::new(&binary));
        // 16 usable bytes in malloc(1)'s block: the shim's rounding, where
        // glibc's chunks give 24.
        assert_eq!(
            run.stdout(),
            "usable size of malloc(1): 16\nok\n",
            "{} shim, stderr: {}",
            fit.name(),
            run.stderr()
        );
    }
}

#[test]
fn a_shell_runs_a_pipeline() {
    if !available("a_shell_runs_a_pipeline", "sh") {
        return;
    }
    same_as_glibc("sh", || {
        command(
            "sh",
            &[
                "-c",
                "for i in 3 1 2; do echo line $i; done | sort -r; echo done",
            ],
        )
    });
}

#[test]
fn ls_lists_a_folder() {
    if !available("ls_lists_a_folder", "ls") {
        return;
    }
    let folder = workspace().join("asm");
    same_as_glibc("ls", || {
        let mut ls = command("ls", &["-l"]);
        ls.arg(&folder);
        ls
    });
}

#[test]
fn git_makes_a_repository_and_a_commit() {
    if !available("git_makes_a_repository_and_a_commit", "git") {
        return;
    }
    same_as_glibc("git --version", || command("git", &["--version"]));
    let script = "git init -q repo && cd repo && printf 'a\\nb\\n' > file && git add file \
                  && git -c user.name=t -c user.email=t@example.com commit -q -m first \
                  && git log --format=%s && git ls-files";
    for fit in [None, Some(Fit::Walk), Some(Fit::Indexed)] {
        let dir = ScratchDir::new("git");
        let mut sh = command("sh", &["-c", script]);
        sh.current_dir(dir.path());
        let run = run_on(fit, sh);
        assert!(
            run.output.status.success() && run.stdout() == "first\nfile\n",
            "git on {}: {} {}",
            fit_name(fit),
            run.stdout(),
            run.stderr()
        );
    }
}

#[test]
fn gcc_compiles_hello_world() {
    if !available("gcc_compiles_hello_world", "gcc") {
        return;
    }
    for fit in [None, Some(Fit::Walk), Some(Fit::Indexed)] {
        let dir = ScratchDir::new("gcc");
        std::fs::write(
            dir.path().join("hello.c"),
            "#include <stdio.h>\nint main(void) { puts(\"hello, world\"); return 0; }\n",
        )
        .unwrap();
        let mut gcc = command("gcc", &["-O2", "-Wall", "hello.c", "-o", "hello"]);
        gcc.current_dir(dir.path());
        let compiled = run_on(fit, gcc);
        assert!(
            compiled.output.status.success() && compiled.output.stderr.is_empty(),
            "gcc on {}: {}",
            fit_name(fit),
            compiled.stderr()
        );
        if fit.is_some() {
            // The driver's passes (cc1, as, collect2, ld) are processes of
            // their own, each with its summary.
            assert!(
                compiled.summaries.len() >= 2,
                "{} summaries",
                compiled.summaries.len()
            );
        }
        let hello = run_on(fit, Command::new(dir.path().join("hello")));
        assert_eq!(hello.stdout(), "hello, world\n");
    }
}

/// Perl building a hash: keys in a fixed order (no hash randomisation), so
/// the output, and the heap, are the same in every run.
fn perl_hash(keys: u32) -> Command {
    let mut perl = command(
        "perl",
        &[
            "-e",
            &format!(
                "my %h; $h{{\"key$_\"}} = $_ for 1..{keys}; my $sum = 0; $sum += $_ for \
                 values %h; print scalar(keys %h), \" $sum\\n\""
            ),
        ],
    );
    perl.env("PERL_HASH_SEED", "0")
        .env("PERL_PERTURB_KEYS", "0");
    perl
}

#[test]
fn perl_builds_a_hash() {
    if !available("perl_builds_a_hash", "perl") {
        return;
    }
    let runs = same_as_glibc("perl", || perl_hash(3000));
    // The indexed fit finds the walk's blocks: the same heap in both builds.
    let [walk, indexed] = [&runs[0], &runs[1]].map(|run| {
        assert_eq!(run.summaries.len(), 1);
        let mut summary = run.summaries.values().next().unwrap().clone();
        summary.pid = 0;
        summary.fit.clear();
        summary
    });
    assert!(walk.blocks > 1000 && walk.free.0 > 0, "{walk:?}");
    assert_eq!(walk, indexed);
}

#[test]
fn python_runs_a_script() {
    if !available("python_runs_a_script", PYTHON) {
        return;
    }
    // A thread and a fork; few imports: on the walk build every allocation
    // visits every block, and an import is thousands of allocations.
    let script = "import json, threading, os\n\
                  words = {}\n\
                  for w in ('a b a c b a ' * 2000).split(): words[w] = words.get(w, 0) + 1\n\
                  out = []\n\
                  t = threading.Thread(target=lambda: out.append(json.dumps(sorted(words.items()))))\n\
                  t.start(); t.join()\n\
                  pid = os.fork()\n\
                  if pid == 0: os._exit(7)\n\
                  _, status = os.waitpid(pid, 0)\n\
                  print(out[0], os.waitstatus_to_exitcode(status))\n";
    same_as_glibc("python3", || {
        let mut python = command(PYTHON, &["-c", script]);
        python.env("PYTHONMALLOC", "malloc");
        python
    });
}

#[test]
fn brk_pools_run_prints_the_heap_summary() {
    if !available("brk_pools_run_prints_the_heap_summary", "perl") {
        return;
    }
    for (flag, fit) in [(None, "walk"), (Some("--indexed-fit"), "indexed-fit")] {
        let mut run = Command::new(env!("CARGO_BIN_EXE_brk-pools"));
        run.arg("run").args(flag).arg("--");
        let perl = perl_hash(500);
        run.arg(perl.get_program()).args(perl.get_args());
        run.env("PERL_HASH_SEED", "0").env("PERL_PERTURB_KEYS", "0");
        let output = run.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(
            stdout, "500 125250\n",
            "the program's output, alone on stdout"
        );
        for expected in [
            "brk-pools run: perl (exit status 0)",
            &format!("(perl), {fit} build:"),
            "  allocations   ",
            "  blocks        ",
            "first-fit walk: ",
            "free blocks by size (never split, never merged):",
        ] {
            assert!(
                stderr.contains(expected),
                "{expected:?} missing in:\n{stderr}"
            );
        }
    }
}

#[test]
fn brk_pools_run_passes_the_exit_status_on() {
    if !available("brk_pools_run_passes_the_exit_status_on", "sh") {
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_brk-pools"))
        .args(["run", "--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
}
