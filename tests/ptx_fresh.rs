//! Stale PTX cannot land: every committed ptx/X.ptx must record the hash of kernels/X.cu (and the shared
//! headers) it was built from, and every kernel source must have its PTX. Regenerate with nvcc on PATH or
//! NVCC set, then `cargo build`.

#[path = "../src/cuda/source_hash.rs"]
mod source_hash;

use std::path::Path;

#[test]
fn committed_ptx_matches_its_kernel_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("kernels")).unwrap() {
        let cu = entry.unwrap().path();
        if cu.extension().is_none_or(|e| e != "cu") {
            continue;
        }
        let stem = cu.file_stem().unwrap().to_str().unwrap();
        for name in [format!("{stem}.ptx"), format!("{stem}_sm90a.ptx")] {
            let ptx = root.join("ptx").join(&name);
            if name.ends_with("_sm90a.ptx") && !ptx.exists() {
                continue;  // only some sources have a Hopper variant
            }
            let recorded = source_hash::recorded_hash(&ptx)
                .unwrap_or_else(|| panic!("ptx/{name} is missing or has no source hash: rebuild with nvcc"));
            assert_eq!(
                recorded,
                source_hash::source_hash(&cu),
                "ptx/{name} is stale: kernels/{stem}.cu changed since it was generated; rebuild with nvcc and commit it"
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "expected kernel sources in kernels/, found {checked}");
}

#[test]
fn every_ptx_has_a_kernel_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("ptx")).unwrap() {
        let ptx = entry.unwrap().path();
        let name = ptx.file_stem().unwrap().to_str().unwrap().to_string();
        let stem = name.strip_suffix("_sm90a").unwrap_or(&name);  // a Hopper variant of kernels/{stem}.cu
        assert!(root.join("kernels").join(format!("{stem}.cu")).exists(), "ptx/{name}.ptx has no kernels/{stem}.cu");
    }
}

/// The staleness check itself must be able to fail: a changed source gives a different hash.
#[test]
fn source_hash_changes_with_the_source() {
    let dir = std::env::temp_dir().join(format!("gensync-ptx-hash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cu = dir.join("k.cu");
    std::fs::write(&cu, "__global__ void k() {}\n").unwrap();
    let a = source_hash::source_hash(&cu);
    std::fs::write(&cu, "__global__ void k() { }\n").unwrap();
    let b = source_hash::source_hash(&cu);
    std::fs::write(dir.join("common.cuh"), "#define X 1\n").unwrap();
    let c = source_hash::source_hash(&cu);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_ne!(a, b);
    assert_ne!(b, c, "a shared header is part of the hash");
}
