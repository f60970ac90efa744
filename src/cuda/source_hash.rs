//! The hash recorded at the top of every `ptx/*.ptx`: SHA-256 over the kernel's `.cu` source followed by every
//! shared header `kernels/*.cuh` (sorted by name), so that a change to either makes the PTX stale.
//! Used by build.rs and by tests/ptx_fresh.rs; not part of the library.

use sha2::{Digest, Sha256};
use std::path::Path;

pub const HASH_PREFIX: &str = "// source-sha256: ";

pub fn source_hash(cu_file: &Path) -> String {
    let mut hasher = Sha256::new();
    hasher.update(std::fs::read(cu_file).expect("kernel source readable"));
    let dir = cu_file.parent().expect("kernel in a folder");
    let mut headers: Vec<_> = std::fs::read_dir(dir)
        .expect("kernels folder readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "cuh"))
        .collect();
    headers.sort();
    for h in headers {
        hasher.update(std::fs::read(h).expect("kernel header readable"));
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash a PTX file records in its first line, if any.
pub fn recorded_hash(ptx_file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(ptx_file).ok()?;
    text.lines().next()?.strip_prefix(HASH_PREFIX).map(str::to_string)
}
