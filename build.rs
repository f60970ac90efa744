//! Compiles `kernels/*.cu` to PTX in `ptx/` when nvcc is available, and embeds the committed PTX in the
//! binary either way.
//!
//! - nvcc is taken from the `NVCC` environment variable, else from `PATH`. Without it the committed PTX is
//!   used unchanged, so the crate builds (and its CPU tests run) on machines with no CUDA toolkit.
//! - Every PTX file starts with `// source-sha256: <hex>` of the `.cu` it came from (and the shared `.cuh`); a PTX whose recorded hash
//!   already matches its source is not rebuilt. `tests/ptx_fresh.rs` fails when a committed PTX is stale.
//! - The PTX is portable `sm_80` code that the driver JIT-compiles for sm_86/89/90 at module load. The
//!   sources in `SM90A_SOURCES` are compiled a second time for `sm_90a` (Hopper's warpgroup MMA, wgmma),
//!   into `ptx/<stem>_sm90a.ptx`; the runtime loads that variant on compute capability 9.0.

#[path = "src/cuda/source_hash.rs"]
mod source_hash;

use source_hash::{recorded_hash, source_hash, HASH_PREFIX};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Kernel sources with a Hopper variant (their code tests `__CUDA_ARCH_FEAT_SM90_ALL`).
const SM90A_SOURCES: &[&str] = &["attention"];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let kernels = root.join("kernels");
    let ptx_dir = root.join("ptx");
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-changed=ptx");
    println!("cargo:rerun-if-env-changed=NVCC");

    let mut sources: Vec<PathBuf> = fs::read_dir(&kernels)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    sources.retain(|p| p.extension().is_some_and(|e| e == "cu"));
    sources.sort();

    let nvcc = find_nvcc();
    for src in &sources {
        let stem = src.file_stem().unwrap().to_str().unwrap().to_string();
        let hash = source_hash(src);
        let mut targets = vec![(format!("{stem}.ptx"), "sm_80")];
        if SM90A_SOURCES.contains(&stem.as_str()) {
            targets.push((format!("{stem}_sm90a.ptx"), "sm_90a"));
        }
        for (name, arch) in targets {
            let ptx = ptx_dir.join(&name);
            if recorded_hash(&ptx).as_deref() == Some(hash.as_str()) {
                continue;
            }
            match &nvcc {
                Some(nvcc) => compile(nvcc, arch, src, &ptx, &hash, &kernels),
                None => println!("cargo:warning=ptx/{name} is stale and nvcc was not found (set NVCC): using it as committed"),
            }
        }
    }

    // Embed every PTX module: `PTX_MODULES: &[(family, ptx_source)]`, and the Hopper variants:
    // `PTX_SM90A_MODULES`, the same shape.
    let mut table = String::new();
    for (konst, suffix, doc) in [
        ("PTX_MODULES", "", "Every kernel family's PTX (sm_80), embedded at build time: (family, PTX source)."),
        ("PTX_SM90A_MODULES", "_sm90a", "The families' sm_90a variants, for compute capability 9.0: (family, PTX source)."),
    ] {
        table.push_str(&format!("/// {doc}\npub const {konst}: &[(&str, &str)] = &[\n"));
        for src in &sources {
            let stem = src.file_stem().unwrap().to_str().unwrap();
            let ptx = ptx_dir.join(format!("{stem}{suffix}.ptx"));
            if ptx.exists() {
                table.push_str(&format!("    ({stem:?}, include_str!({:?})),\n", ptx.display().to_string()));
            }
        }
        table.push_str("];\n");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("ptx_modules.rs");
    fs::write(out, table).unwrap();
}

fn find_nvcc() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("NVCC") {
        let p = PathBuf::from(p);
        return p.exists().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|d| d.join("nvcc")).find(|p| p.is_file())
    })
}

fn compile(nvcc: &Path, arch: &str, src: &Path, ptx: &Path, hash: &str, include: &Path) {
    let tmp = ptx.with_extension("ptx.tmp");
    let status = Command::new(nvcc)
        .args(["-ptx", "-O3", "-lineinfo", &format!("-arch={arch}"), "-std=c++17"])
        .arg("-I")
        .arg(include)
        .arg(src)
        .arg("-o")
        .arg(&tmp)
        .status()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", nvcc.display()));
    assert!(status.success(), "nvcc failed on {}", src.display());
    let body = fs::read_to_string(&tmp).unwrap();
    fs::write(ptx, format!("{HASH_PREFIX}{hash}\n{}", without_directories(&body))).unwrap();
    fs::remove_file(&tmp).unwrap();
}

/// The PTX with every `.file` directive reduced to the file's name: line info keeps pointing at the right
/// source, and the committed PTX does not record where it was built.
fn without_directories(ptx: &str) -> String {
    ptx.lines()
        .map(|line| match (line.trim_start().starts_with(".file"), line.find('"'), line.rfind('"')) {
            (true, Some(open), Some(close)) if close > open => {
                let path = &line[open + 1..close];
                let name = path.rsplit('/').next().unwrap_or(path);
                format!("{}\"{name}\"{}", &line[..open], &line[close + 1..])
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
