//! Helpers shared by the integration tests: relative error with NaN checks, the GPU for GPU tests.

#![allow(dead_code)] // each test binary uses its own subset

use gensync::cuda::{Arena, DevBuf, Gpu};

/// ‖got − want‖ / ‖want‖ in f64, after checking that `got` has no NaN/Inf (poisoned outputs that were never
/// written show up here). Panics naming `what` and the worst element.
pub fn rel_err(what: &str, got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().position(|v| !v.is_finite()) {
        panic!("{what}: element {i} is {} (unwritten or overflowed), want {}", got[i], want[i]);
    }
    let (mut num, mut den, mut worst, mut worst_i) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g as f64 - w as f64).abs();
        num += d * d;
        den += (w as f64) * (w as f64);
        if d > worst {
            worst = d;
            worst_i = i;
        }
    }
    let rel = if den > 0.0 { (num / den).sqrt() } else { num.sqrt() };
    if rel > 0.0 {
        eprintln!("{what}: rel err {rel:.3e}, worst |d| {worst:.3e} at {worst_i} (got {}, want {})", got[worst_i], want[worst_i]);
    }
    rel
}

/// ‖got − exact‖ / ‖exact‖ against an f64 reference (no NaN check: for CPU twins against their f64 form).
pub fn rel_to_f64(got: &[f32], exact: &[f64]) -> f64 {
    let num: f64 = got.iter().zip(exact).map(|(&g, &x)| (g as f64 - x).powi(2)).sum();
    let den: f64 = exact.iter().map(|x| x * x).sum();
    (num / den.max(1e-300)).sqrt()
}

/// Runs the binary under test (the one cargo built, or GENSYNC_BIN when the tests run on another machine)
/// with `args` and returns its exit status and output.
pub fn gensync<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    let bin = std::env::var("GENSYNC_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gensync").to_string());
    std::process::Command::new(&bin).args(args).output().unwrap_or_else(|e| panic!("run {bin}: {e}"))
}

/// Checks that a run failed as bad input must: exit 2, one line `gensync: …` on stderr that mentions
/// `needle`, nothing on stdout. `what` names the run in the failure message.
pub fn assert_input_error(o: &std::process::Output, what: &str, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{what}: {err}");
    assert!(o.stdout.is_empty(), "{what}: partial output {:?}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(err.trim_end().lines().count(), 1, "{what}: more than one line: {err}");
    assert!(err.starts_with("gensync: ") && err.contains(needle), "{what}: {err:?} does not mention {needle:?}");
}

/// The GPU in test mode (poisoned slots, synchronous launch checks). GPU tests are #[ignore]d; when run
/// without a GPU they fail loudly rather than pass.
pub fn gpu() -> Gpu {
    Gpu::for_tests().expect("GPU tests need a CUDA GPU (run them on the GPU machine with --include-ignored)")
}

/// A new arena slot holding `host`.
pub fn upload<T: bytemuck::Pod>(gpu: &Gpu, arena: &mut Arena, host: &[T]) -> DevBuf<T> {
    let buf = arena.alloc::<T>(gpu, host.len()).unwrap();
    gpu.upload(buf, host).unwrap();
    buf
}
