//! Fingerprints the library's sources for `build_info::SOURCE_FINGERPRINT`:
//! tools that link `libbrk_pools.a` (`brk-pools step`) compare it with the
//! fingerprint they were built with, so a stale archive is refused by its
//! content, whatever its timestamps say. Standard library only.

use std::path::{Path, PathBuf};

/// FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`.
struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    println!("cargo::rerun-if-changed=src");
    println!("cargo::rerun-if-changed=build.rs");
    let mut sources = vec![PathBuf::from("build.rs")];
    files(Path::new("src"), &mut sources);
    sources.sort();
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    for path in &sources {
        let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Each file as its path, its length and its bytes, so no two trees
        // hash as the same stream.
        hash.write(path.to_string_lossy().as_bytes());
        hash.write(&(text.len() as u64).to_le_bytes());
        hash.write(&text);
    }
    println!(
        "cargo::rustc-env=BRK_POOLS_SOURCE_FINGERPRINT={:016x}",
        hash.0
    );
}
