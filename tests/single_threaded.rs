//! Cases that must see the real program break, so they run in a
//! single-threaded process: this is a `harness = false` test (libtest would
//! run each `#[test]` on a spawned thread, and a process that ever had a
//! second thread never moves the break again; see `ProcessBreak`).
//!
//! Each case runs in a child process of its own, on its main thread, and
//! checks that it is the only thread (`support::child_cases`).
//!
mod limits;
mod support;

use std::time::Duration;

use brk_pools::{Error, Growth, Header, Heap, ProcessBreak, Refusal, Segment, pools, process};
use support::Rng;

/// glibc settings for `rust_collections_churn_next_to_pools`: trim the top
/// as soon as 128 KiB are free. (Raising `mmap_threshold` as well, so that
/// multi-MiB buffers stay on the break, makes glibc's own `malloc` return
/// NULL after any foreign `sbrk` on the main thread, this crate's or not:
/// not this crate's to fix, so the buffers above 128 KiB are mmap'd by
/// glibc here.)
const TUNABLES: &str = "glibc.malloc.trim_threshold=131072";

const CASES: &[(&str, fn())] = &[
    (
        "refused_brk_on_the_first_allocation",
        refused_brk_on_the_first_allocation,
    ),
    (
        "refused_brk_after_many_allocations",
        refused_brk_after_many_allocations,
    ),
    (
        "rust_collections_churn_next_to_pools",
        rust_collections_churn_next_to_pools,
    ),
    (
        "process_memory_end_global_stays_exact",
        process_memory_end_global_stays_exact,
    ),
    (
        "the_break_until_the_first_thread_then_mappings",
        the_break_until_the_first_thread_then_mappings,
    ),
    (
        "fork_while_this_thread_holds_the_lock",
        fork_while_this_thread_holds_the_lock,
    ),
    (
        "the_plain_lock_still_reports_reentry",
        the_plain_lock_still_reports_reentry,
    ),
    (
        "a_thread_created_under_the_plain_lock_waits_for_it",
        a_thread_created_under_the_plain_lock_waits_for_it,
    ),
];

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    support::child_cases::main(
        "single-threaded",
        CASES,
        || assert_eq!(threads(), 1, "the case must start single-threaded"),
        |name, command| {
            if name == "rust_collections_churn_next_to_pools" {
                command.env("GLIBC_TUNABLES", TUNABLES);
            }
        },
    );
}

fn current_break() -> usize {
    // SAFETY: sbrk(0) only reads the break.
    unsafe { libc::sbrk(0) as usize }
}

fn is_enomem(error: &Error) -> bool {
    matches!(
        error,
        Error::BreakRefused {
            refusal: Refusal::Kernel {
                errno: libc::ENOMEM
            },
            ..
        }
    )
}

// ---------------------------------------------------------------------------
// Helpers for the children on the process heap. Under a tight RLIMIT_DATA a
// child must not allocate, so layouts are copied into preallocated storage.

#[derive(PartialEq, Eq)]
struct Snapshot {
    segments: Vec<Segment>,
    memory_end: usize,
    /// The real break: a refusal must not leave it moved.
    current_break: usize,
    blocks: Vec<(usize, Header)>,
}

impl Snapshot {
    fn with_capacity(blocks: usize) -> Snapshot {
        Snapshot {
            segments: Vec::with_capacity(64),
            memory_end: 0,
            current_break: 0,
            blocks: Vec::with_capacity(blocks),
        }
    }

    /// Copies the layout without allocating (within the capacity).
    fn take(&mut self, heap: &Heap<ProcessBreak>) {
        assert!(heap.segments().len() <= self.segments.capacity());
        self.segments.clear();
        self.segments.extend_from_slice(heap.segments());
        self.memory_end = heap.memory_end() as usize;
        self.current_break = current_break();
        self.blocks.clear();
        assert!(heap.blocks().count() <= self.blocks.capacity());
        self.blocks
            .extend(heap.blocks().map(|b| (b.address as usize, b.header)));
    }
}

fn data_limit() -> libc::rlimit {
    limits::limit(libc::RLIMIT_DATA)
}

fn set_data_limit(soft: u64) {
    limits::set_soft_limit(libc::RLIMIT_DATA, soft);
}

fn vm_data() -> u64 {
    limits::vm_status("VmData")
}

// ---------------------------------------------------------------------------
// Refused brk under RLIMIT_DATA ([A.7](../docs/original-behaviour.md#a7-brk-failure)).

/// Under a data limit below what the process already uses, the first
/// allocation is refused (by the kernel's `brk`, or earlier, when the segment
/// table's first page is refused) and changes nothing: not the heap, not the
/// break. With the limit lifted, the first block is at the break + 0x20.
fn refused_brk_on_the_first_allocation() {
    let old = data_limit();
    let mut snapshot = Snapshot::with_capacity(16);
    let mut after = Snapshot::with_capacity(16);
    let pool = pools::process().pool(2).unwrap();
    let mut heap = process::lock();
    snapshot.take(&heap);
    // No room at all: any new page is refused. (0 would be the kernel's
    // valgrind exception, so 4096.)
    set_data_limit(4096);
    let raw = heap.allocate(1, 1000);
    after.take(&heap);
    drop(heap);
    let guard_result = pool.alloc_zeroed(100).map(|_| ());
    set_data_limit(old.rlim_cur);
    let raw = raw.unwrap_err();
    let refused = |e: &Error| is_enomem(e) || matches!(e, Error::SegmentTableFull { segments: 0 });
    assert!(refused(&raw), "{raw:?}");
    assert!(refused(&guard_result.unwrap_err()));
    assert!(
        snapshot == after,
        "the refused allocate changed the heap or moved the break"
    );
    let mut heap = process::lock();
    assert!(heap.segments().is_empty(), "the heap stays uninitialised");
    // With the limit lifted, the first block is at the break + 0x20.
    let start = current_break();
    let p = heap.allocate(1, 1000).unwrap();
    assert_eq!(p.as_ptr() as usize, start + 0x20);
    println!("first allocation refused with {raw}; after lifting the limit: block at break+0x20");
}

/// Appends until the kernel refuses the break: the refusal changes nothing,
/// reuse and the rest of the last page still work.
fn refused_brk_after_many_allocations() {
    {
        let old = data_limit();
        let mut before = Snapshot::with_capacity(4096);
        let mut after = Snapshot::with_capacity(4096);
        let mut pointers = Vec::with_capacity(4096);
        // Room for the heap's tables (a few pages) and several 64 KiB steps
        // of batched growth.
        let limit = vm_data() + 256 * 1024;
        let mut heap = process::lock();
        set_data_limit(limit);
        // Append 1000-byte blocks until the kernel says no.
        let refused = loop {
            before.take(&heap);
            match heap.allocate(1, 1000) {
                Ok(p) => pointers.push(p),
                Err(e) => break e,
            }
            if pointers.len() == pointers.capacity() {
                panic!("no refusal after {} blocks", pointers.len());
            }
        };
        after.take(&heap);
        let unchanged_by_refusal = before == after;
        // Reuse of a free block needs no break move.
        let victim = pointers[pointers.len() / 2];
        let freed = heap.try_deallocate(victim.as_ptr());
        let reused = heap.allocate(2, 16);
        // The rest of the current page is still within the limit.
        let room = current_break().next_multiple_of(4096) - current_break();
        let fill = (room >= 32).then(|| heap.allocate(3, room as u64 - 32));
        let past = heap.allocate(3, 0).err();
        before.take(&heap);
        let second_refusal = heap.allocate(4, 5000).err();
        after.take(&heap);
        let unchanged_again = before == after;
        set_data_limit(old.rlim_cur);
        // Assertions only now: a failing one formats a message.
        assert!(is_enomem(&refused), "{refused:?}");
        assert!(
            unchanged_by_refusal,
            "the refused allocate changed the heap"
        );
        assert!(pointers.len() > 8, "only {} blocks fitted", pointers.len());
        freed.unwrap();
        assert_eq!(reused.unwrap(), victim, "first fit reuses the freed block");
        if let Some(fill) = fill {
            fill.unwrap();
            assert!(past.as_ref().is_some_and(is_enomem), "{past:?}");
        }
        assert!(second_refusal.as_ref().is_some_and(is_enomem));
        assert!(unchanged_again);
        // With the limit lifted, appends work again.
        heap.allocate(5, 100_000).unwrap();
        println!(
            "{} appends of 1032 bytes, then {refused}; reuse ok; the last {room} bytes of the page ok",
            pointers.len()
        );
    }
}

/// Random bytes; allocation `id` holds the slice starting at `id * 7919 %
/// 1 MiB`, so filling and checking are `memcpy` and `memcmp`.
struct Reference(Vec<u8>);

impl Reference {
    fn new() -> Reference {
        let mut rng = Rng(99);
        Reference(
            (0..(4 << 20) / 8)
                .flat_map(|_| rng.next().to_le_bytes())
                .collect(),
        )
    }

    fn bytes(&self, id: u64, len: usize) -> &[u8] {
        let start = (id * 7919 % (1 << 20)) as usize;
        &self.0[start..start + len]
    }
}

/// Rust collections on the main thread (glibc's main arena, on the break)
/// churn next to two pool guards, in a single-threaded process: both move
/// the real break. glibc trims as soon as 128 KiB at the top are free (see
/// `TUNABLES`).
fn rust_collections_churn_next_to_pools() {
    {
        let reference = Reference::new();
        let mut rng = Rng(7);
        let pool = pools::process().pool(1).unwrap();
        let other = pools::process().pool(2).unwrap();
        let mut boxes = Vec::new();
        let mut rust: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut strings: Vec<String> = Vec::new();
        let mut boxed: Vec<Box<[u64; 64]>> = Vec::new();
        let (mut lowest, mut highest, mut shrinks) = (usize::MAX, 0, 0);
        let mut last_break = current_break();
        for round in 0..400u64 {
            // Rust collections: small, medium and > 128 KiB buffers (the
            // large ones make glibc grow its heap and trim it when freed).
            let len = match rng.below(10) {
                0..=1 => 128 * 1024 + rng.below(3 << 20) as usize,
                2..=4 => rng.below(16 * 1024) as usize,
                _ => rng.below(300) as usize,
            };
            let id = 1_000_000 + round;
            rust.push((reference.bytes(id, len).to_vec(), id));
            strings.push(format!(
                "string {round} {}",
                "x".repeat(rng.below(500) as usize)
            ));
            boxed.push(Box::new([round; 64]));
            while rust.len() > 6 {
                let i = rng.below(rust.len() as u64) as usize;
                rust.swap_remove(i);
            }
            if round % 10 == 0 {
                // A burst that glibc serves at the top of its heap, then gives back.
                // (100 KiB each: below the mmap threshold, so on the break.)
                let burst: Vec<Vec<u8>> = (0..20).map(|_| vec![1u8; 100 * 1024]).collect();
                let peak = current_break();
                highest = highest.max(peak);
                drop(burst);
                if current_break() < peak {
                    shrinks += 1;
                }
            }
            if strings.len() > 20 {
                strings.drain(..10);
                boxed.drain(..10);
            }
            // Pool blocks, filled with a pattern per block; early frees.
            let target = if rng.below(2) == 0 { &pool } else { &other };
            let size = rng.below(3000) as usize;
            let mut block = target.boxed_zeroed(size).unwrap();
            block.copy_from_slice(reference.bytes(round, size));
            boxes.push((block, round));
            if rng.below(3) == 0 && !boxes.is_empty() {
                let i = rng.below(boxes.len() as u64) as usize;
                boxes.swap_remove(i).0.free();
            }
            let now = current_break();
            if now < last_break {
                shrinks += 1;
            }
            last_break = now;
            lowest = lowest.min(now);
            highest = highest.max(now);
            for (block, id) in &boxes {
                assert!(
                    **block == *reference.bytes(*id, block.len()),
                    "pool block {id}"
                );
            }
            for (bytes, id) in &rust {
                assert!(**bytes == *reference.bytes(*id, bytes.len()), "Vec {id}");
            }
            for (i, b) in boxed.iter().enumerate() {
                assert!(b.iter().all(|&x| x == b[0]), "box {i}");
            }
        }
        let segments = process::lock().segments().len();
        let blocks = boxes.len();
        drop(boxes);
        drop(other);
        drop(pool);
        assert!(
            process::lock().blocks().all(|b| !b.header.is_in_use()),
            "the guards freed their pools"
        );
        // glibc malloc still works, large and small.
        drop(rust);
        let big = vec![7u8; 8 << 20];
        assert!(big.iter().rev().step_by(4096).all(|&b| b == 7));
        // SAFETY: plain malloc/free of a small buffer.
        unsafe {
            let small = libc::malloc(10);
            assert!(!small.is_null());
            libc::free(small);
        }
        println!(
            "{segments} segments, {blocks} live pool blocks verified, break moved over {} KiB, \
             {shrinks} shrinks by glibc",
            (highest - lowest) / 1024
        );
        assert!(
            segments > 1,
            "glibc moved the break between the heap's growths"
        );
        assert!(shrinks > 0, "glibc trimmed its heap");
    }
}

/// The exported `memory_end` global, which C drivers read, is the end of the
/// last block in either mode; only the real break runs ahead with the
/// `batched-brk` feature.
fn process_memory_end_global_stays_exact() {
    use core::sync::atomic::Ordering;
    let break_before = current_break();
    let (end, break_end) = {
        let mut heap = process::lock();
        heap.allocate(7, 100).unwrap();
        heap.allocate(7, 3).unwrap();
        heap.deallocate_pool(7);
        (heap.memory_end() as usize, heap.break_end() as usize)
    };
    let heap = process::lock();
    let last = heap.blocks().last().unwrap();
    let exact_end = last.address as usize + last.header.size as usize;
    assert_eq!(end, exact_end);
    drop(heap);
    assert_eq!(process::memory_end.load(Ordering::Relaxed), exact_end);
    assert_eq!(
        process::memory_start.load(Ordering::Relaxed),
        break_before,
        "the heap starts at the real break"
    );
    assert_eq!(
        break_end,
        current_break(),
        "the heap's break is the real one"
    );
    if cfg!(feature = "batched-brk") {
        assert_eq!(break_end, break_before + process::BATCH_STEP);
        assert_eq!(
            process::GROWTH,
            Growth::Batched {
                step: process::BATCH_STEP
            }
        );
    } else {
        assert_eq!(break_end, end, "faithful mode: the break is memory_end");
    }
}

/// The rule of `ProcessBreak`: the real break while the process has one
/// thread; once a thread was created (even after it was joined), new room
/// comes from a mapping, as a new segment, and the break is left to glibc.
/// The blocks on the break are still walked and reused.
fn the_break_until_the_first_thread_then_mappings() {
    let start = current_break();
    let mut heap = process::lock();
    let a = heap.allocate(1, 100).unwrap();
    assert_eq!(a.as_ptr() as usize, start + 0x20);
    let b = heap.allocate(1, 200).unwrap();
    assert_eq!(b.as_ptr() as usize, start + 0x20 + 132);
    assert_eq!(current_break(), heap.break_end() as usize);
    drop(heap);
    std::thread::spawn(|| ()).join().unwrap();
    let mut heap = process::lock();
    let break_before = current_break();
    // Larger than the batched step, so that it cannot fit any slack.
    let c = heap.allocate(2, 100_000).unwrap();
    assert_eq!(current_break(), break_before, "the break did not move");
    assert_eq!(heap.segments().len(), 2);
    let mapped = heap.segments()[1];
    assert_eq!(c.as_ptr(), mapped.start.wrapping_add(32));
    assert!(
        !(start..break_before).contains(&(mapped.start as usize)),
        "the new segment is not on the break"
    );
    // Walks visit the break segment first: first fit reuses it.
    heap.deallocate_pool(1);
    assert_eq!(heap.allocate(3, 100).unwrap(), a);
    // And the mapped segment grows in place.
    let d = heap.allocate(3, 5000).unwrap();
    assert_eq!(d.as_ptr(), mapped.end.wrapping_add(32));
    assert_eq!(heap.segments().len(), 2);
    assert!(heap.is_block_pointer(c.as_ptr()) && heap.is_block_pointer(a.as_ptr()));
    println!(
        "segments: break at {start:#x}, mapping at {:#x}",
        mapped.start as usize
    );
}

/// `fork` from inside a callback that holds the process heap's lock (so the
/// atfork handlers must not wait for it), and `fork` while another thread
/// holds it: in both children the heap works.
fn fork_while_this_thread_holds_the_lock() {
    let pool = pools::process().pool(9).unwrap();
    let kept = pool.alloc_str("kept across fork").unwrap();
    let heap = process::lock();
    // SAFETY: the child only uses async-signal-safe-enough code of this
    // crate (no locks held by other threads: there are none) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: alarm has no preconditions; it ends a hung child.
        unsafe { libc::alarm(5) };
        drop(heap); // this thread held it before fork, and still does
        let fine = process::lock().allocate(1, 64).is_ok()
            && pool.alloc_zeroed(10).is_ok()
            && kept == "kept across fork";
        // SAFETY: leave without running the parent's exit handlers.
        unsafe { libc::_exit(if fine { 0 } else { 1 }) };
    }
    drop(heap);
    assert_eq!(wait(pid), 0, "child forked under this thread's lock");

    // Another thread holds the lock while this one forks: prepare waits for
    // it; the child can lock.
    let holding = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let heap = process::lock();
            holding.wait();
            std::thread::sleep(Duration::from_millis(50));
            drop(heap);
        });
        holding.wait();
        // SAFETY: as above.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: as above.
            unsafe { libc::alarm(5) };
            let fine = process::lock().allocate(1, 64).is_ok();
            // SAFETY: as above.
            unsafe { libc::_exit(if fine { 0 } else { 1 }) };
        }
        assert_eq!(
            wait(pid),
            0,
            "child forked while another thread held the lock"
        );
    });
    drop(pool);
}

/// While the process is single-threaded the lock is taken with a plain load
/// and store; re-entry is still reported: from Rust, from the C ABI, and from
/// a signal handler that interrupts this thread while it holds the lock.
fn the_plain_lock_still_reports_reentry() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HANDLER_GOT: AtomicUsize = AtomicUsize::new(usize::MAX);
    extern "C" fn allocate_in_handler(_: libc::c_int) {
        let block = brk_pools::c_abi::allocate(3, 40);
        HANDLER_GOT.store(block as usize, Ordering::SeqCst);
    }
    // SAFETY: the handler is a plain function that lives for the whole
    // program; raise delivers it on this thread before it returns.
    let raise_usr1 = || unsafe {
        HANDLER_GOT.store(usize::MAX, Ordering::SeqCst);
        assert_eq!(libc::raise(libc::SIGUSR1), 0);
        HANDLER_GOT.load(Ordering::SeqCst)
    };
    // SAFETY: as above.
    let previous = unsafe {
        libc::signal(
            libc::SIGUSR1,
            allocate_in_handler as *const () as libc::sighandler_t,
        )
    };
    assert_ne!(previous, libc::SIG_ERR);

    let heap = process::lock();
    assert_eq!(threads(), 1, "the lock was taken single-threaded");
    assert_eq!(
        process::lock_unless_reentered().err(),
        Some(Error::LockHeldByThisThread)
    );
    assert!(brk_pools::c_abi::allocate(3, 40).is_null());
    assert_eq!(raise_usr1(), 0, "the handler got a block from a held heap");
    drop(heap);

    let block = raise_usr1();
    assert!(block != 0 && block != usize::MAX, "the handler got nothing");
    brk_pools::c_abi::deallocate(block as *mut libc::c_void);
    assert_eq!(threads(), 1);
}

/// A thread created while this thread holds the lock (taken single-threaded,
/// with plain stores) finds it held, waits, and is woken by the release,
/// which sees that the process has a thread now.
fn a_thread_created_under_the_plain_lock_waits_for_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // SAFETY: alarm has no preconditions; it ends the case if the new
    // thread is never woken.
    unsafe { libc::alarm(10) };
    let heap = process::lock();
    let got_block = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            let block = brk_pools::c_abi::allocate(4, 48) as usize;
            got_block.store(true, Ordering::SeqCst);
            block
        });
        // Long enough for the other thread to spin and go to sleep.
        std::thread::sleep(Duration::from_millis(200));
        assert!(!got_block.load(Ordering::SeqCst), "it did not wait");
        drop(heap);
        assert_ne!(other.join().unwrap(), 0);
    });
    // SAFETY: as above; cancels the alarm.
    unsafe { libc::alarm(0) };
}

/// Waits for `pid`; its exit code, or 128 + the signal that ended it.
fn wait(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: waitpid writes one int.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}
