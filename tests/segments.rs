//! When something else moves the break between two appends (glibc's malloc,
//! in a real process), the heap continues in a new segment at the break
//! instead of pulling the break back under the other user's memory. Shown on
//! an arena, whose `grow_foreign` moves the break as another user would.

mod support;

use brk_pools::{Error, Heap, render};
use support::layout;

#[test]
fn a_foreign_break_move_starts_a_new_segment_walked_in_order() {
    let mut heap = Heap::on_arena(1 << 20).unwrap();
    let a = heap.allocate(1, 16).unwrap();
    // "malloc" takes 0x1000 bytes of break right after the heap's first block.
    let foreign = heap.grow_foreign(0x1000).unwrap();
    assert_eq!(foreign, heap.memory_end());
    // SAFETY: the foreign bytes are ours to scribble on, as malloc would.
    unsafe { foreign.write_bytes(0xAB, 0x1000) };
    let b = heap.allocate(2, 16).unwrap();
    assert_eq!(heap.segments().len(), 2);
    assert_eq!(b.as_ptr() as usize - a.as_ptr() as usize, 0x30 + 0x1000);
    assert_eq!(
        layout(&heap),
        [(0, 1, 48, 1), (0x1030, 1, 48, 2)],
        "the foreign bytes are not walked"
    );
    // First fit walks segment 1 before segment 2.
    heap.deallocate_pool(1);
    heap.deallocate_pool(2);
    let c = heap.allocate(3, 16).unwrap();
    assert_eq!(c, a);
    // deallocate_pool and try_deallocate reach blocks in both segments.
    let d = heap.allocate(3, 16).unwrap();
    assert_eq!(d, b);
    heap.deallocate_pool(3);
    assert_eq!(render::map(&heap), "|.|.|");
    // The foreign memory was never written by the heap.
    // SAFETY: still mapped, owned by "malloc".
    let untouched = unsafe { core::slice::from_raw_parts(foreign, 0x1000) };
    assert!(untouched.iter().all(|&byte| byte == 0xAB));
    assert_eq!(
        heap.try_deallocate(foreign.wrapping_add(64)),
        Err(Error::NotABlock {
            address: foreign as usize + 64
        })
    );
}

#[test]
fn the_segment_table_has_no_fixed_limit() {
    // 10 000 foreign moves: far more segments than any fixed-size table would hold.
    let mut heap = Heap::on_arena(1 << 24).unwrap();
    for i in 0..10_000u64 {
        heap.allocate(1, i % 50).unwrap();
        heap.grow_foreign(16).unwrap();
    }
    assert_eq!(heap.segments().len(), 10_000);
    // Every block is still found by address and freed.
    let pointers: Vec<*mut u8> = heap.blocks().map(|b| b.pointer()).collect();
    for p in pointers {
        heap.try_deallocate(p).unwrap();
    }
    assert!(heap.blocks().all(|b| !b.header.is_in_use()));
}

#[test]
fn a_refused_break_is_an_error_that_changes_nothing() {
    let mut heap = Heap::on_arena(4096).unwrap();
    heap.allocate(1, 1000).unwrap();
    heap.allocate(1, 1000).unwrap();
    let before = layout(&heap);
    let error = heap.allocate(1, 4000).unwrap_err();
    assert!(
        matches!(
            error,
            Error::BreakRefused {
                requested: 4032,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(layout(&heap), before);
    assert_eq!(heap.memory_end(), heap.break_end());
    // The first call refused: the heap stays uninitialised, as before the call.
    let mut empty = Heap::on_arena(4096).unwrap();
    assert!(empty.allocate(1, 5000).is_err());
    assert!(empty.segments().is_empty());
    assert!(empty.memory_start().is_null());
    assert_eq!(
        empty.allocate(1, 16).unwrap().as_ptr(),
        empty.memory_start().wrapping_add(32)
    );
}

#[test]
fn size_plus_header_overflow_is_an_error() {
    let mut heap = Heap::on_arena(4096).unwrap();
    assert_eq!(
        heap.allocate(1, u64::MAX - 31),
        Err(Error::SizeOverflow {
            size: u64::MAX - 31
        })
    );
    assert!(heap.segments().is_empty());
}

#[test]
fn a_batched_step_that_overflows_is_refused() {
    let arena = brk_pools::Arena::new(1 << 20).unwrap();
    let step = (1usize << 63) + 1;
    let mut heap = Heap::with_growth(arena, brk_pools::Growth::Batched { step });
    let size = (1u64 << 63) + 2 - 32; // size + 32 = step + 1: the next multiple is 2 * step
    assert!(matches!(
        heap.allocate(1, size),
        Err(Error::BreakRefused {
            refusal: brk_pools::Refusal::TooLarge,
            ..
        })
    ));
    assert!(heap.segments().is_empty());
}
