//! Compiles `kernels/*.cu` to PTX in `ptx/` when nvcc is available, and embeds the committed PTX in the
//! binary either way.
//!
//! - nvcc is taken from the `NVCC` environment variable, else from `PATH`. Without it the committed PTX is
//!   used unchanged, so the crate builds (and its CPU tests run) on machines with no CUDA toolkit.
//! - Every PTX file starts with `// source-sha256: <hex>` of the `.cu` it came from (and the shared `.cuh`); a PTX whose recorded hash
//!   already matches its source is not rebuilt. `tests/ptx_fresh.rs` fails when a committed PTX is stale.
//! - The PTX is portable `sm_80` code that the driver JIT-compiles for sm_86/89/90 at module load.

#[path = "src/cuda/source_hash.rs"]
mod source_hash;

use source_hash::{recorded_hash, source_hash, HASH_PREFIX};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

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
        let ptx = ptx_dir.join(format!("{stem}.ptx"));
        let hash = source_hash(src);
        if recorded_hash(&ptx).as_deref() == Some(hash.as_str()) {
            continue;
        }
        match &nvcc {
            Some(nvcc) => compile(nvcc, src, &ptx, &hash, &kernels),
            None => println!(
                "cargo:warning=ptx/{stem}.ptx is stale and nvcc was not found (set NVCC): using it as committed"
            ),
        }
    }

    // Embed every PTX module: `PTX_MODULES: &[(family, ptx_source)]`.
    let mut table = String::from("/// Every kernel family's PTX, embedded at build time: (family, PTX source).\n");
    table.push_str("pub const PTX_MODULES: &[(&str, &str)] = &[\n");
    for src in &sources {
        let stem = src.file_stem().unwrap().to_str().unwrap();
        let ptx = ptx_dir.join(format!("{stem}.ptx"));
        if ptx.exists() {
            table.push_str(&format!("    ({stem:?}, include_str!({:?})),\n", ptx.display().to_string()));
        }
    }
    table.push_str("];\n");
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

fn compile(nvcc: &Path, src: &Path, ptx: &Path, hash: &str, include: &Path) {
    let tmp = ptx.with_extension("ptx.tmp");
    let status = Command::new(nvcc)
        .args(["-ptx", "-O3", "-lineinfo", "-arch=sm_80", "-std=c++17"])
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
