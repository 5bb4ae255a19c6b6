//! Fault tests: the cases in which the original crashes or corrupts memory
//! (original-behaviour A.6, A.7, A.8), each run in a child process so that a
//! crash fails the test instead of killing the harness.
//!
//! Rust cases re-run this test binary with `BRK_POOLS_FAULT_CASE=<test name>`
//! (the child runs only that test, on the real process heap, and may set
//! resource limits); C cases build small programs from `tests/c/` against
//! both the original `run.s` and the port's `libbrk_pools.a`.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use brk_pools::heap::MAX_SEGMENTS;
use brk_pools::pools;
use brk_pools::{Error, Header, Heap, ProcessBreak, Refusal, Segment, process};
use support::{Allocator, Rng, build_c};

const CASE: &str = "BRK_POOLS_FAULT_CASE";

/// Runs `body` in a child process (this test binary, filtered to `name`).
/// In the child, runs it.
fn in_child(name: &str, body: fn()) {
    in_child_with_env(name, &[], body);
}

/// [`in_child`] with extra environment variables for the child.
fn in_child_with_env(name: &str, env: &[(&str, &str)], body: fn()) {
    if std::env::var(CASE).as_deref() == Ok(name) {
        body();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, name)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child for {name} failed: {}",
        output.status
    );
}

fn signal(output: &Output) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    output.status.signal()
}

fn c_program(name: &str, allocator: Allocator) -> PathBuf {
    let source = support::root().join("tests/c").join(format!("{name}.c"));
    build_c(name, &[source], allocator, &[])
}

fn run(exe: &PathBuf, args: &[&str]) -> Output {
    Command::new(exe).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

// ---------------------------------------------------------------------------
// Helpers for the children on the process heap. Under a tight RLIMIT_DATA a
// child must not allocate, so layouts are copied into preallocated storage.

#[derive(PartialEq, Eq)]
struct Snapshot {
    segments: [Segment; MAX_SEGMENTS],
    segment_count: usize,
    memory_end: usize,
    blocks: Vec<(usize, Header)>,
}

impl Snapshot {
    fn with_capacity(blocks: usize) -> Snapshot {
        Snapshot {
            segments: [Segment {
                start: std::ptr::null_mut(),
                end: std::ptr::null_mut(),
            }; MAX_SEGMENTS],
            segment_count: 0,
            memory_end: 0,
            blocks: Vec::with_capacity(blocks),
        }
    }

    /// Copies the layout without allocating (within the capacity).
    fn take(&mut self, heap: &Heap<ProcessBreak>) {
        self.segment_count = heap.segments().len();
        self.segments[..self.segment_count].copy_from_slice(heap.segments());
        self.memory_end = heap.memory_end() as usize;
        self.blocks.clear();
        assert!(heap.blocks().count() <= self.blocks.capacity());
        self.blocks
            .extend(heap.blocks().map(|b| (b.address as usize, b.header)));
    }
}

fn data_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_DATA, &mut limit) }, 0);
    limit
}

fn set_data_limit(soft: u64) {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: data_limit().rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) }, 0);
}

/// VmData of this process, in bytes.
fn vm_data() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmData:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
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
// Refused brk under RLIMIT_DATA (A.7).

#[test]
fn refused_brk_on_the_first_allocation() {
    in_child("refused_brk_on_the_first_allocation", || {
        let old = data_limit();
        let mut snapshot = Snapshot::with_capacity(16);
        let mut after = Snapshot::with_capacity(16);
        let mut heap = process::lock();
        snapshot.take(&heap);
        // No room at all: any growth of the break is refused. (0 would be
        // the kernel's valgrind exception, so 4096.)
        set_data_limit(4096);
        let raw = heap.allocate(1, 1000);
        after.take(&heap);
        let guard_result = {
            drop(heap);
            let pool = pools::process().pool(2).unwrap();
            pool.alloc_zeroed(100).map(|_| ())
        };
        set_data_limit(old.rlim_cur);
        let raw = raw.unwrap_err();
        assert!(is_enomem(&raw), "{raw:?}");
        assert!(is_enomem(&guard_result.unwrap_err()));
        assert!(snapshot == after, "the refused allocate changed the heap");
        let mut heap = process::lock();
        assert!(heap.segments().is_empty(), "the heap stays uninitialised");
        // With the limit lifted, the first block is at the break + 0x20.
        let start = current_break();
        let p = heap.allocate(1, 1000).unwrap();
        assert_eq!(p.as_ptr() as usize, start + 0x20);
        println!(
            "first allocation refused with {raw}; after lifting the limit: block at break+0x20"
        );
    });
}

#[test]
fn refused_brk_after_many_allocations() {
    in_child("refused_brk_after_many_allocations", || {
        let old = data_limit();
        let mut before = Snapshot::with_capacity(4096);
        let mut after = Snapshot::with_capacity(4096);
        let mut pointers = Vec::with_capacity(4096);
        let limit = vm_data() + 64 * 1024;
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
    });
}

// ---------------------------------------------------------------------------
// The C ABI (A.6, A.7) against the original.

#[test]
fn c_abi_int_max_under_rlimit_as() {
    let port = run(&c_program("fault_int_max", Allocator::Port), &[]);
    assert!(port.status.success(), "port: {port:?}");
    // The kernel break: the first block's end, or one 64 KiB step with
    // batched growth (memory_end is exact either way).
    let brk = if cfg!(feature = "batched-brk") {
        "+0x10000"
    } else {
        "+0x30"
    };
    assert_eq!(
        stdout(&port),
        format!(
            "allocate(1,INT_MAX)=NULL memory_end+=0 brk={brk}\nallocate(2,16)=non-NULL p intact=yes\n"
        )
    );
    let original = run(&c_program("fault_int_max", Allocator::OriginalGlobals), &[]);
    // run.s returns a block past the refused break (A.7 case 3) and then
    // faults appending the next header (case 6).
    assert_eq!(
        stdout(&original),
        "allocate(1,INT_MAX)=non-NULL memory_end+=2147483679 brk=+0x30\n"
    );
    assert_eq!(signal(&original), Some(libc::SIGSEGV), "{original:?}");
}

#[test]
fn c_abi_ignores_pointers_that_are_not_blocks() {
    let port = c_program("fault_bad_pointers", Allocator::Port);
    let expected = "blocks=3 layout unchanged, buffer unchanged, stack unchanged\n\
                    +0 in_use=1 size=48 pool=1\n\
                    +0x30 in_use=0 size=72 pool=0\n\
                    +0x78 in_use=1 size=40 pool=3\n";
    for mode in ["null", "interior", "foreign", "all"] {
        let output = run(&port, &[mode]);
        assert!(output.status.success(), "port, {mode}: {output:?}");
        assert_eq!(stdout(&output), expected, "port, {mode}");
    }
    let original = c_program("fault_bad_pointers", Allocator::OriginalGlobals);
    // A.6.6: deallocate(NULL) writes to 0xffffffffffffffe0.
    let null = run(&original, &["null"]);
    assert_eq!(signal(&null), Some(libc::SIGSEGV), "{null:?}");
    assert_eq!(stdout(&null), "");
    // A.6.4: an interior pointer zeroes the block's pool word (and user data).
    let interior = stdout(&run(&original, &["interior"]));
    assert!(
        interior.starts_with("blocks=3 layout CHANGED")
            && interior.contains("+0 in_use=1 size=48 pool=0"),
        "{interior}"
    );
    // A.6.5: a foreign pointer zeroes two quadwords of someone else's memory.
    let foreign = stdout(&run(&original, &["foreign"]));
    assert!(foreign.contains("buffer CHANGED"), "{foreign}");
}

#[test]
fn c_abi_survives_the_glibc_interleavings_that_crash_the_original() {
    // repro_malloc_crash: allocate; printf; allocate; malloc(10).
    let port = run(&c_program("repro_malloc_crash", Allocator::Port), &[]);
    assert!(port.status.success(), "port: {port:?}");
    assert_eq!(stdout(&port), "hello\nmalloc ok\n");
    let original = run(&c_program("repro_malloc_crash", Allocator::Original), &[]);
    assert_eq!(signal(&original), Some(libc::SIGSEGV), "{original:?}");
    assert_eq!(stdout(&original), "", "the buffered output is lost");

    // repro_garbage, stdout to a pipe.
    let port = run(&c_program("repro_garbage", Allocator::Port), &[]);
    assert!(port.status.success(), "port: {port:?}");
    assert_eq!(stdout(&port), "line1 hello world\nline2\n");
    let original = run(&c_program("repro_garbage", Allocator::Original), &[]);
    assert!(original.status.success(), "{original:?}");
    // The third block's header {1, 48, 1} over the pending first line (A.8).
    let mut garbage = vec![1, 0, 0, 0, 0, 0, 0, 0, 0x30, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    garbage.extend_from_slice(b"line2\n");
    assert_eq!(original.stdout, garbage);
}

// ---------------------------------------------------------------------------
// The safe API on the process heap, next to glibc malloc and threads.

fn pattern(id: u64, i: usize) -> u8 {
    (id.wrapping_mul(0x9e37_79b9) as u8) ^ (i as u8).wrapping_mul(31) ^ ((i >> 8) as u8)
}

fn filled(len: usize, id: u64) -> Vec<u8> {
    (0..len).map(|i| pattern(id, i)).collect()
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

fn check(bytes: &[u8], id: u64) {
    assert!(
        bytes.iter().enumerate().all(|(i, &b)| b == pattern(id, i)),
        "contents of allocation {id} changed"
    );
}

#[test]
fn rust_collections_churn_next_to_pools() {
    // One malloc arena: the test thread's malloc then uses the program
    // break (a thread's own arena would be mmap'd), next to the pools. Large
    // buffers stay on the break (no mmap below 64 MiB), and glibc trims its
    // heap as soon as 128 KiB at the top are free.
    let env = [(
        "GLIBC_TUNABLES",
        "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=67108864:\
         glibc.malloc.trim_threshold=131072",
    )];
    in_child_with_env("rust_collections_churn_next_to_pools", &env, || {
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
                let burst: Vec<Vec<u8>> = (0..4).map(|_| vec![1u8; 512 * 1024]).collect();
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
    });
}

#[test]
fn threads_with_their_own_pools() {
    in_child("threads_with_their_own_pools", || {
        const THREADS: u64 = 6;
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                scope.spawn(move || {
                    let mut rng = Rng(t);
                    let pool = pools::process().pool(100 + t).unwrap();
                    let mut live = Vec::new();
                    for i in 0..2000u64 {
                        let id = t << 32 | i;
                        let size = rng.below(500) as usize;
                        let block = pool.boxed_slice_copy(&filled(size, id)).unwrap();
                        live.push((block, id));
                        if rng.below(2) == 0 {
                            let j = rng.below(live.len() as u64) as usize;
                            live.swap_remove(j);
                        }
                        if i % 64 == 0 {
                            for (block, id) in &live {
                                check(block, *id);
                            }
                            let v: Vec<u64> = (0..rng.below(5000)).collect();
                            assert_eq!(
                                v.iter().sum::<u64>(),
                                v.len() as u64 * (v.len() as u64).saturating_sub(1) / 2
                            );
                        }
                    }
                    for (block, id) in &live {
                        check(block, *id);
                    }
                });
            }
        });
        let heap = process::lock();
        assert!(heap.blocks().all(|b| !b.header.is_in_use()));
        println!(
            "{THREADS} threads, {} blocks, {} segments",
            heap.blocks().count(),
            heap.segments().len()
        );
    });
}
