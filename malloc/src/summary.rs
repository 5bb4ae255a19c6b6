//! The heap summary, written when the program exits: to
//! `$BRK_POOLS_SUMMARY_DIR/PID` (nothing when the variable is unset), one
//! `name value…` line each, for `brk-pools run` to read and print. Every
//! process of the program that exits normally writes its own (a shell's
//! children, a compiler driver's passes).
//!
//! Formatting happens in a buffer on the stack and the file is written with
//! `open(2)`/`write(2)`: no `malloc`, so the summary cannot change the heap
//! it describes.

use core::fmt::{self, Write as _};
use core::sync::atomic::Ordering;

use brk_pools::build_info;
use brk_pools::process;

use crate::stats;

/// The environment variable naming the folder the summary goes to.
pub const SUMMARY_DIR_VARIABLE: &core::ffi::CStr = c"BRK_POOLS_SUMMARY_DIR";

/// Free blocks are counted by size class: class `k` holds the blocks of
/// `2^k .. 2^(k+1)` bytes (header included), up to `2^63`.
const SIZE_CLASSES: usize = 64;

/// Bytes of the summary buffer (the summary is some 40 short lines).
const BUFFER_SIZE: usize = 8192;

/// A fixed buffer that `write!` fills; what does not fit is cut off.
struct StackText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    const fn new() -> Self {
        StackText {
            bytes: [0; N],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        let room = N - self.len;
        let bytes = &bytes[..bytes.len().min(room)];
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

impl<const N: usize> fmt::Write for StackText<N> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.push_bytes(text.as_bytes());
        Ok(())
    }
}

/// What a walk over every block finds.
struct HeapCensus {
    blocks: u64,
    in_use_blocks: u64,
    in_use_bytes: u64,
    free_blocks: u64,
    free_bytes: u64,
    segments: u64,
    segment_bytes: u64,
    free_by_class: [(u64, u64); SIZE_CLASSES],
}

fn census(heap: &process::ProcessHeap) -> HeapCensus {
    let mut census = HeapCensus {
        blocks: 0,
        in_use_blocks: 0,
        in_use_bytes: 0,
        free_blocks: 0,
        free_bytes: 0,
        segments: heap.segments().len() as u64,
        segment_bytes: heap
            .segments()
            .iter()
            .map(|segment| (segment.end as usize - segment.start as usize) as u64)
            .sum(),
        free_by_class: [(0, 0); SIZE_CLASSES],
    };
    for block in heap.blocks() {
        let size = block.header.size;
        census.blocks += 1;
        if block.header.is_in_use() {
            census.in_use_blocks += 1;
            census.in_use_bytes += size;
        } else {
            census.free_blocks += 1;
            census.free_bytes += size;
            let class = &mut census.free_by_class[size.max(1).ilog2() as usize];
            class.0 += 1;
            class.1 += size;
        }
    }
    census
}

/// The process's name as the kernel keeps it (`/proc/self/comm`, at most
/// 15 bytes), read into `buffer`; `?` if it cannot be read.
fn program_name(buffer: &mut [u8; 64]) -> &str {
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/self/comm".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return "?";
    }
    // SAFETY: `buffer` is writable for its whole length.
    let read = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
    // SAFETY: `fd` was opened above.
    unsafe { libc::close(fd) };
    let Ok(read) = usize::try_from(read) else {
        return "?";
    };
    let name = buffer[..read].trim_ascii_end();
    match core::str::from_utf8(name) {
        Ok(name) if !name.is_empty() && !name.contains(char::is_whitespace) => name,
        _ => "?",
    }
}

/// The summary's lines for the locked heap.
fn write_summary(text: &mut impl fmt::Write, heap: &process::ProcessHeap) -> fmt::Result {
    let census = census(heap);
    let counter = |counter: &core::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    writeln!(text, "pid {pid}")?;
    let mut name = [0u8; 64];
    writeln!(text, "program {}", program_name(&mut name))?;
    let fit = if build_info::INDEXED_FIT {
        "indexed-fit"
    } else {
        "walk"
    };
    writeln!(text, "fit {fit}")?;
    writeln!(text, "allocations {}", counter(&stats::ALLOCATIONS))?;
    writeln!(text, "refusals {}", counter(&stats::REFUSALS))?;
    writeln!(text, "blocks {}", census.blocks)?;
    writeln!(
        text,
        "in_use {} {}",
        census.in_use_blocks, census.in_use_bytes
    )?;
    writeln!(text, "free {} {}", census.free_blocks, census.free_bytes)?;
    writeln!(
        text,
        "segments {} {}",
        census.segments, census.segment_bytes
    )?;
    for (class, (count, bytes)) in census.free_by_class.iter().enumerate() {
        if *count != 0 {
            writeln!(text, "free_class {} {count} {bytes}", 1u64 << class)?;
        }
    }
    // The walk figures hold while every block is an append that stayed
    // whole (run.s's design); a heap that splits or merges blocks (the
    // exercises) has more or fewer blocks than appends, and they do not.
    let counted = census.blocks == counter(&stats::APPENDS);
    writeln!(text, "walks_counted {}", u64::from(counted))?;
    writeln!(text, "walk_total {}", counter(&stats::WALK_TOTAL))?;
    writeln!(text, "walk_longest {}", counter(&stats::WALK_LONGEST))?;
    writeln!(text, "appends {}", counter(&stats::APPENDS))?;
    writeln!(text, "break_moves {}", counter(&stats::BREAK_MOVES))?;
    writeln!(text, "mapped_segments {}", counter(&stats::MAPPED_SEGMENTS))?;
    writeln!(text, "end")
}

/// Writes the summary if `$BRK_POOLS_SUMMARY_DIR` is set; called once, at
/// exit (the library's destructor). Skipped on a thread that holds the
/// heap's lock (an `exit` from a signal handler that interrupted malloc).
extern "C" fn write_summary_at_exit() {
    // SAFETY: getenv reads the environment without allocating; the name is
    // NUL-terminated.
    let dir = unsafe { libc::getenv(SUMMARY_DIR_VARIABLE.as_ptr()) };
    if dir.is_null() {
        return;
    }
    let Ok(heap) = process::lock_unless_reentered() else {
        return;
    };
    let mut summary = StackText::<BUFFER_SIZE>::new();
    let _ = write_summary(&mut summary, &heap);
    drop(heap);

    let mut path = StackText::<4096>::new();
    // SAFETY: getenv returned a NUL-terminated string that lives as long as
    // the environment is not changed, which nothing does during this call.
    path.push_bytes(unsafe { core::ffi::CStr::from_ptr(dir) }.to_bytes());
    // SAFETY: getpid has no preconditions.
    let _ = write!(path, "/{}\0", unsafe { libc::getpid() });
    if path.as_bytes().last() != Some(&0) {
        return; // the path did not fit
    }
    // SAFETY: a NUL-terminated path; the flags ask for a new file of our own.
    let fd = unsafe {
        libc::open(
            path.as_bytes().as_ptr().cast(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return;
    }
    let mut rest = summary.as_bytes();
    while !rest.is_empty() {
        // SAFETY: `rest` is initialised memory of the live buffer.
        let written = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if written <= 0 {
            break;
        }
        rest = &rest[written as usize..];
    }
    // SAFETY: `fd` is the descriptor opened above.
    unsafe { libc::close(fd) };
}

/// The library's destructor: the dynamic loader runs it when the program
/// exits, after the destructors of the program and of the libraries loaded
/// after this one (all of them, under `LD_PRELOAD`).
#[used]
#[unsafe(link_section = ".fini_array")]
static WRITE_SUMMARY_AT_EXIT: extern "C" fn() = write_summary_at_exit;

/// Writes `brk-pools malloc: MESSAGE` to standard error and aborts, without
/// allocating.
pub fn abort_with(message: &[u8]) -> ! {
    let mut text = StackText::<256>::new();
    text.push_bytes(b"brk-pools malloc: ");
    text.push_bytes(message);
    text.push_bytes(b"\n");
    // SAFETY: write(2) reads initialised bytes of a live buffer; abort(3)
    // has no preconditions.
    unsafe {
        libc::write(
            libc::STDERR_FILENO,
            text.as_bytes().as_ptr().cast(),
            text.len,
        );
        libc::abort()
    }
}
