//! The safe API under valgrind's memcheck: this test binary re-runs its own
//! `safe_api_workload` test under
//! `valgrind --tool=memcheck --error-exitcode=1`, which must exit 0.
//! Skipped with a note when valgrind is not installed (CI installs it).

use std::process::Command;

use brk_pools::pools::{self, Pools};
use brk_pools::{c_abi, process};

const SUBJECT: &str = "BRK_POOLS_VALGRIND_SUBJECT";

/// The workload: guards, typed and byte allocations, early frees, resets and
/// threads on an arena, then on the process heap next to malloc, then the
/// C ABI. Runs in-process too (quickly), so a plain `cargo test` covers it.
#[test]
fn safe_api_workload() {
    let pools = Pools::on_arena(1 << 20).unwrap();
    let mut total = 0u64;
    for round in 0..20u64 {
        let mut pool = pools.pool(1 + round % 3).unwrap();
        {
            let bytes = pool.alloc_zeroed(100 + round as usize).unwrap();
            bytes.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
            let number = pool.alloc(round * 3).unwrap();
            let mut boxed = pool.boxed([round as u8; 40]).unwrap();
            boxed[0] = 1;
            let text = pool.alloc_str("valgrind").unwrap();
            let wide = pool.boxed(u128::from(round)).unwrap();
            total += bytes.iter().map(|&b| u64::from(b)).sum::<u64>()
                + *number
                + u64::from(boxed[39])
                + text.len() as u64
                + *wide as u64;
            boxed.free();
            let uninit = pool.alloc_uninit(16).unwrap();
            uninit[0].write(5);
            // SAFETY: byte 0 was just written.
            total += u64::from(unsafe { uninit[0].assume_init() });
        }
        pool.reset();
    }
    std::thread::scope(|scope| {
        for t in 0..2u64 {
            let pools = &pools;
            scope.spawn(move || {
                let pool = pools.pool(10 + t).unwrap();
                for i in 0..50 {
                    let b = pool.boxed_slice_copy(&[i as u8; 64]).unwrap();
                    assert!(b.iter().all(|&x| x == i as u8));
                }
            });
        }
    });
    // The process heap, with malloc in between.
    let pool = pools::process().pool(21).unwrap();
    let mut kept = Vec::new();
    for i in 0..50usize {
        let s = format!("{i:>width$}", width = i * 10);
        kept.push((pool.boxed_slice_copy(s.as_bytes()).unwrap(), s));
    }
    for (b, s) in &kept {
        assert_eq!(&**b, s.as_bytes());
    }
    drop(kept);
    drop(pool);
    // The C ABI, including pointers run.s would write through.
    let p = c_abi::allocate(22, 30);
    assert!(!p.is_null());
    c_abi::deallocate(std::ptr::null_mut());
    c_abi::deallocate(p.cast::<u8>().wrapping_add(3).cast());
    c_abi::deallocate(p);
    c_abi::deallocate_pool(22);
    assert!(process::lock().blocks().all(|b| !b.header.is_in_use()));
    println!("workload total {total}");
}

#[test]
fn safe_api_is_clean_under_memcheck() {
    if std::env::var_os(SUBJECT).is_some() {
        return; // we are the child: only the workload runs
    }
    let found = Command::new("valgrind").arg("--version").output().is_ok();
    if !found {
        println!("note: valgrind is not installed; skipping the memcheck run");
        return;
    }
    let output = Command::new("valgrind")
        .args(["--tool=memcheck", "--error-exitcode=1", "-q"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "safe_api_workload",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SUBJECT, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "memcheck reported errors ({}):\n{stderr}",
        output.status
    );
}
