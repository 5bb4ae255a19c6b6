//! The heap summary the malloc shim writes when a program exits (see the
//! `malloc/` package's `summary` module for the file): read back and put
//! into words.

use std::fmt::Write as _;

/// One process's summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeapSummary {
    /// The process id.
    pub pid: u32,
    /// The process's name (`/proc/PID/comm`).
    pub program: String,
    /// `walk` or `indexed-fit`.
    pub fit: String,
    /// Allocations the heap served.
    pub allocations: u64,
    /// Allocations it refused.
    pub refusals: u64,
    /// Blocks in the heap.
    pub blocks: u64,
    /// Blocks in use, and their bytes (headers included).
    pub in_use: (u64, u64),
    /// Free blocks, and their bytes (headers included).
    pub free: (u64, u64),
    /// Segments, and the bytes they span.
    pub segments: (u64, u64),
    /// Free blocks by size class: (smallest size of the class, blocks,
    /// bytes); a class holds the sizes up to twice its smallest.
    pub free_classes: Vec<(u64, u64, u64)>,
    /// Whether the walk figures hold: the heap has one block per append (a
    /// heap that splits or merges blocks, as the exercises make it, does
    /// not, and its blocks' walk positions change).
    pub walks_counted: bool,
    /// Blocks visited by all the first-fit walks together.
    pub walk_total: u64,
    /// Blocks visited by the longest walk.
    pub walk_longest: u64,
    /// Blocks appended at the end of the heap.
    pub appends: u64,
    /// Appends that moved the program break.
    pub break_moves: u64,
    /// New segments off the break (mmap reservations).
    pub mapped_segments: u64,
}

/// Parses a summary file.
///
/// # Errors
/// A message naming the first line that is not the shim's format, or a
/// summary cut short (no `end` line).
pub fn parse(text: &str) -> Result<HeapSummary, String> {
    let mut summary = HeapSummary::default();
    let mut ended = false;
    for line in text.lines() {
        let mut words = line.split(' ');
        let key = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        let numbers: Vec<u64> = rest.iter().filter_map(|w| w.parse().ok()).collect();
        let bad = || format!("not a summary line: {line:?}");
        let one = || match numbers[..] {
            [n] if rest.len() == 1 => Ok(n),
            _ => Err(bad()),
        };
        let two = || match numbers[..] {
            [a, b] if rest.len() == 2 => Ok((a, b)),
            _ => Err(bad()),
        };
        match key {
            "pid" => summary.pid = u32::try_from(one()?).map_err(|_| bad())?,
            "program" => summary.program = rest.join(" "),
            "fit" => summary.fit = rest.join(" "),
            "allocations" => summary.allocations = one()?,
            "refusals" => summary.refusals = one()?,
            "blocks" => summary.blocks = one()?,
            "in_use" => summary.in_use = two()?,
            "free" => summary.free = two()?,
            "segments" => summary.segments = two()?,
            "free_class" => match numbers[..] {
                [size, count, bytes] if rest.len() == 3 => {
                    summary.free_classes.push((size, count, bytes))
                }
                _ => return Err(bad()),
            },
            "walks_counted" => summary.walks_counted = one()? == 1,
            "walk_total" => summary.walk_total = one()?,
            "walk_longest" => summary.walk_longest = one()?,
            "appends" => summary.appends = one()?,
            "break_moves" => summary.break_moves = one()?,
            "mapped_segments" => summary.mapped_segments = one()?,
            "end" => ended = true,
            _ => return Err(bad()),
        }
    }
    if !ended {
        return Err("the summary is cut short (no `end` line)".to_string());
    }
    Ok(summary)
}

/// `bytes` as a person reads them: `512 B`, `4.0 KiB`, `1.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

impl HeapSummary {
    /// The summary as `brk-pools run` prints it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let average = if self.allocations == 0 {
            0.0
        } else {
            self.walk_total as f64 / self.allocations as f64
        };
        let _ = writeln!(
            out,
            "heap of process {} ({}), {} build:",
            self.pid, self.program, self.fit
        );
        let _ = writeln!(
            out,
            "  allocations   {} ({} refused)",
            self.allocations, self.refusals
        );
        let _ = writeln!(
            out,
            "  blocks        {}: {} in use ({}), {} free ({}), headers included",
            self.blocks,
            self.in_use.0,
            human_bytes(self.in_use.1),
            self.free.0,
            human_bytes(self.free.1)
        );
        let _ = writeln!(
            out,
            "  heap          {} in {} segment(s); {} appends, {} break moves (brk), {} new \
             mappings (mmap)",
            human_bytes(self.segments.1),
            self.segments.0,
            self.appends,
            self.break_moves,
            self.mapped_segments
        );
        if self.walks_counted {
            if self.fit == "indexed-fit" {
                let _ = writeln!(
                    out,
                    "  first-fit walk (what run.s's walk would visit; this build finds the same \
                     blocks through its index):"
                );
            }
            let _ = writeln!(
                out,
                "  first-fit walk: {average:.1} blocks visited per allocation on average, {} at \
                 the longest",
                self.walk_longest
            );
        } else {
            let _ = writeln!(
                out,
                "  first-fit walk: not counted ({} blocks from {} appends: this heap splits or \
                 merges blocks)",
                self.blocks, self.appends
            );
        }
        if !self.free_classes.is_empty() {
            let heading = if self.walks_counted {
                "free blocks by size (never split, never merged):"
            } else {
                "free blocks by size:"
            };
            let _ = writeln!(out, "  {heading}");
            for (size, count, bytes) in &self.free_classes {
                let _ = writeln!(
                    out,
                    "    {:>9} .. {:<9} {count:>8} blocks {:>12}",
                    human_bytes(*size),
                    human_bytes(size.saturating_mul(2) - 1),
                    human_bytes(*bytes)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_reads_back() {
        let text = "pid 7\nprogram perl\nfit walk\nallocations 10\nrefusals 0\nblocks 4\n\
                    in_use 3 300\nfree 1 64\nsegments 1 364\nfree_class 64 1 64\n\
                    walks_counted 1\nwalk_total 12\nwalk_longest 4\nappends 4\nbreak_moves 4\n\
                    mapped_segments 0\nend\n";
        let summary = parse(text).unwrap();
        assert_eq!(summary.pid, 7);
        assert_eq!(summary.in_use, (3, 300));
        assert_eq!(summary.free_classes, vec![(64, 1, 64)]);
        assert!(
            summary
                .render()
                .contains("1.2 blocks visited per allocation")
        );
        // A heap that split blocks (5 blocks from 4 appends): no walk figures.
        let split = parse(
            &text
                .replace("blocks 4", "blocks 5")
                .replace("counted 1", "counted 0"),
        );
        let rendered = split.unwrap().render();
        assert!(rendered.contains("walk: not counted (5 blocks from 4 appends"));
        assert!(!rendered.contains("visited per allocation"));
    }

    #[test]
    fn a_cut_summary_is_refused() {
        assert!(parse("pid 7\nblocks 4\n").is_err());
        assert!(parse("pid 7\nblocks four\nend\n").is_err());
    }

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
