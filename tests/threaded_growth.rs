//! Appends in a process that has had a thread, where the process heap grows
//! from `mmap` reservations (see `ProcessBreak`): they go on for as long as
//! the kernel gives memory, whatever it places where.
//!
//! Linux usually places a new mapping right below the one before, so a
//! reservation filled to its very end ends where an older segment starts.
//! That end is the heap's own break, not "a break below the heap". Each case
//! runs in a child process of its own (`support::child_cases`), first
//! creating and joining a thread, through the C ABI's functions and the
//! heap's safe methods alike; `cargo test --features indexed-fit` runs them on
//! the indexed build too.

mod limits;
mod support;

use brk_pools::c_abi::{allocate, deallocate, deallocate_pool};
use brk_pools::process;
use brk_pools::process::PROCESS_RESERVATION;
use limits::{limit, set_soft_limit, vm_status};

const CASES: &[support::child_cases::Case] = &[
    (
        "reservations_filled_to_the_end_then_small_appends",
        reservations_filled_to_the_end_then_small_appends,
    ),
    (
        "address_space_limit_lowered_then_raised",
        address_space_limit_lowered_then_raised,
    ),
    ("many_reservations", many_reservations),
    (
        "a_reservation_left_for_a_larger_one_gives_its_tail_back",
        a_reservation_left_for_a_larger_one_gives_its_tail_back,
    ),
    (
        "a_refused_request_leaves_the_reservation_as_it_was",
        a_refused_request_leaves_the_reservation_as_it_was,
    ),
];

fn main() {
    support::child_cases::main("threaded-growth", CASES, become_threaded, |_, _| {});
}

/// From here on the process heap grows from mappings, for good.
fn become_threaded() {
    std::thread::spawn(|| ()).join().unwrap();
    assert!(!process::lock().source().uses_break());
}

/// The user size of a block that fills a whole default reservation.
const RESERVATION_BLOCK: i32 = (PROCESS_RESERVATION - 32) as i32;

/// Small blocks appended by both APIs, each filled with its own byte; checks
/// every byte, then frees them. Returns how many of the `n` appends of each
/// API failed.
fn small_appends(n: usize, pool: i32) -> usize {
    let mut blocks = Vec::with_capacity(2 * n);
    let mut failed = 0;
    for i in 0..n {
        let from_c = allocate(pool, 100).cast::<u8>();
        let from_rust = process::lock().allocate(pool as u64, 100);
        let from_rust = from_rust.map_or(core::ptr::null_mut(), |p| p.as_ptr());
        for (block, fill) in [(from_c, 2 * i as u8), (from_rust, 2 * i as u8 + 1)] {
            if block.is_null() {
                failed += 1;
                continue;
            }
            // SAFETY: a fresh block of 100 bytes.
            unsafe { block.write_bytes(fill, 100) };
            blocks.push((block, fill));
        }
    }
    for &(block, fill) in &blocks {
        // SAFETY: blocks of 100 bytes handed out above, still in use.
        let bytes = unsafe { std::slice::from_raw_parts(block, 100) };
        assert!(bytes.iter().all(|&b| b == fill), "a block's bytes changed");
    }
    deallocate_pool(pool);
    failed
}

/// Two blocks that fill a whole reservation each (the second reservation
/// usually lands right below the first, so its end is the first one's start),
/// then small appends: none fails, and the big blocks stay in use.
fn reservations_filled_to_the_end_then_small_appends() {
    let first = allocate(1, RESERVATION_BLOCK);
    let second = allocate(1, RESERVATION_BLOCK);
    assert!(!first.is_null() && !second.is_null());
    let adjacent = second as usize + PROCESS_RESERVATION - 32 == first as usize - 32;
    println!("the second reservation ends where the first starts: {adjacent}");
    assert_eq!(small_appends(100, 2), 0, "appends failed");
    let heap = process::lock();
    assert!(heap.is_block_pointer(first.cast()) && heap.is_block_pointer(second.cast()));
    assert_eq!(
        heap.blocks().filter(|b| b.header.in_use == 1).count(),
        2,
        "only the two big blocks are in use"
    );
}

/// Under an address-space limit 32 MiB above what the process uses, page-sized
/// appends use most of that room (reservations shrink to what the limit
/// leaves); the first refusal returns NULL and changes nothing; once the limit
/// is raised, appends succeed again.
fn address_space_limit_lowered_then_raised() {
    const PAGE_BLOCK: i32 = 4096 - 32;
    let old = limit(libc::RLIMIT_AS).rlim_cur;
    let mut pointers = Vec::with_capacity(16 * 1024);
    let blocks_before = process::lock().blocks().count();
    set_soft_limit(libc::RLIMIT_AS, vm_status("VmSize") + (32 << 20));
    loop {
        let block = allocate(3, PAGE_BLOCK);
        if block.is_null() || pointers.len() == pointers.capacity() {
            break;
        }
        pointers.push(block);
    }
    let blocks_at_refusal = process::lock().blocks().count();
    set_soft_limit(libc::RLIMIT_AS, old);
    println!(
        "{} page-sized appends under the limit ({} MiB of 32)",
        pointers.len(),
        (pointers.len() * 4096) >> 20
    );
    assert!(
        pointers.len() >= 4096,
        "only {} page-sized appends fit in 32 MiB",
        pointers.len()
    );
    assert_eq!(blocks_at_refusal, blocks_before + pointers.len());
    assert_eq!(
        small_appends(100, 4),
        0,
        "appends failed after the limit was raised"
    );
    for pointer in pointers {
        deallocate(pointer);
    }
}

/// Forty reservations filled to the end, with small appends, frees and reuse
/// between them: every append succeeds, and first fit still reuses the
/// oldest free block.
fn many_reservations() {
    let mut big = Vec::new();
    for round in 0..40 {
        let block = allocate(5, RESERVATION_BLOCK);
        assert!(!block.is_null(), "round {round}: reservation block refused");
        big.push(block);
        assert_eq!(small_appends(10, 6), 0, "round {round}: appends failed");
    }
    let heap = process::lock();
    assert!(
        heap.segments().len() >= 40,
        "{} segments",
        heap.segments().len()
    );
    drop(heap);
    // The first freed big block is the first that fits a big request again.
    deallocate(big[7]);
    deallocate(big[3]);
    assert_eq!(allocate(7, RESERVATION_BLOCK), big[3]);
}

/// A request larger than the rest of the current reservation moves on to a
/// new one; refused under `RLIMIT_AS`, it is asked for again once the old
/// one's unused tail is given back, and that room holds it. The limit here
/// leaves room for the new one only if half of the old tail or more is
/// given back.
fn a_reservation_left_for_a_larger_one_gives_its_tail_back() {
    let before = vm_status("VmSize");
    let small = allocate(8, 100).cast::<u8>();
    assert!(!small.is_null());
    // SAFETY: the block has 100 bytes.
    unsafe { small.write_bytes(0x5a, 100) };
    let reserved = vm_status("VmSize") - before;
    assert!(
        reserved >= PROCESS_RESERVATION as u64 / 2,
        "the first append made no reservation of its own ({} MiB)",
        reserved >> 20
    );
    // Larger than the whole reservation: it needs a new one of its size.
    let big_size = reserved + (1 << 20);
    let old = limit(libc::RLIMIT_AS).rlim_cur;
    set_soft_limit(
        libc::RLIMIT_AS,
        vm_status("VmSize") + big_size - reserved / 2,
    );
    let big = allocate(9, i32::try_from(big_size).unwrap());
    set_soft_limit(libc::RLIMIT_AS, old);
    assert!(
        !big.is_null(),
        "a {} MiB block was refused: the old reservation's tail was kept",
        big_size >> 20
    );
    // SAFETY: the small block's 100 bytes, still mapped and still ours.
    let bytes = unsafe { core::slice::from_raw_parts(small, 100) };
    assert!(bytes.iter().all(|&b| b == 0x5a), "the small block changed");
    assert_eq!(small_appends(10, 10), 0, "appends failed afterwards");
    deallocate(big);
    deallocate(small.cast());
    deallocate_pool(10);
}

/// A request no reservation can hold (a petabyte, through the Rust API) is
/// refused and changes nothing: the address space stays reserved (the tail
/// given back while asking is taken back), and small appends go on in the
/// same reservation, with no new segment.
fn a_refused_request_leaves_the_reservation_as_it_was() {
    let small = allocate(12, 100);
    assert!(!small.is_null());
    let (size, segments) = (vm_status("VmSize"), process::lock().segments().len());
    let refused = process::lock().allocate(12, 1 << 50);
    assert!(
        matches!(refused, Err(brk_pools::Error::BreakRefused { .. })),
        "{refused:?}"
    );
    assert_eq!(
        vm_status("VmSize"),
        size,
        "the refusal changed the reservations"
    );
    assert_eq!(
        small_appends(100, 13),
        0,
        "appends failed after the refusal"
    );
    assert_eq!(
        process::lock().segments().len(),
        segments,
        "the appends after the refusal needed a new reservation"
    );
    deallocate(small);
}
