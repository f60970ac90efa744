//! The CUDA runtime itself: poisoned arena slots, graph capture and replay, the profiler, module loading.

mod common;

use common::{gpu, rel_err};
use gensync::cpu::elementwise as cpu;
use gensync::cuda::elementwise as cuda;
use gensync::cuda::{Arena, Cost, LaunchCfg};
use gensync::rng::Rng;

#[test]
#[ignore = "needs a CUDA GPU"]
fn new_slots_are_nan_poisoned_and_aligned() {
    let gpu = gpu();
    let mut arena = Arena::new("transient", 1 << 20).unwrap();
    let a = arena.alloc::<f32>(&gpu, 3).unwrap();
    let b = arena.alloc::<f32>(&gpu, 1000).unwrap();
    assert_eq!(a.ptr() % 256, 0);
    assert_eq!(b.ptr() % 256, 0);
    cuda::fill(&gpu, b, 0.0).unwrap();
    arena.reset();
    // The same memory handed out again is poisoned again, not left with the zeros written before.
    let c = arena.alloc::<f32>(&gpu, 2000).unwrap();
    assert!(gpu.download(c).unwrap().iter().all(|v| v.is_nan()));
    assert!(arena.alloc::<f32>(&gpu, 1 << 20).unwrap_err().to_string().contains("transient arena exhausted"));
    assert_eq!(arena.layout().high_water(), 8000);
}

/// A captured "step" (fill, axpy, scale) replayed three times equals three eager runs on the CPU twin.
#[test]
#[ignore = "needs a CUDA GPU"]
fn graph_replay_equals_eager_steps() {
    let gpu = gpu();
    let n = 100_003;
    let mut rng = Rng::new(9);
    let mut arena = Arena::new("persistent", 3 * 4 * n + 4096).unwrap();
    let (x, y, t) = (arena.alloc::<f32>(&gpu, n).unwrap(), arena.alloc::<f32>(&gpu, n).unwrap(), arena.alloc::<f32>(&gpu, n).unwrap());
    let (hx, mut hy) = (rng.vec(n, -1.0, 1.0), rng.vec(n, -1.0, 1.0));
    gpu.upload(x, &hx).unwrap();
    gpu.upload(y, &hy).unwrap();
    let graph = gpu
        .capture(|g| {
            cuda::fill(g, t, 0.5)?;
            cuda::axpy(g, y, t, 2.0)?;
            cuda::axpy(g, y, x, -0.5)?;
            cuda::scale(g, y, 0.9)
        })
        .unwrap();
    for _ in 0..3 {
        graph.replay().unwrap();
        let mut ht = vec![0.0; n];
        cpu::fill(&mut ht, 0.5);
        cpu::axpy(&mut hy, &ht, 2.0);
        cpu::axpy(&mut hy, &hx, -0.5);
        cpu::scale(&mut hy, 0.9);
    }
    gpu.synchronize().unwrap();
    assert!(rel_err("graph replay", &gpu.download(y).unwrap(), &hy) < 1e-6);
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn profiler_counts_calls_bytes_and_time() {
    let gpu = gpu();
    gpu.enable_profiler();
    let n = 1 << 20;
    let mut arena = Arena::new("transient", 4 * n + 256).unwrap();
    let x = arena.alloc::<f32>(&gpu, n).unwrap();
    for _ in 0..4 {
        cuda::fill(&gpu, x, 1.0).unwrap();
    }
    cuda::scale(&gpu, x, 2.0).unwrap();
    let table = gpu.profile().unwrap().expect("profiler on");
    let fill = &table.kernels["fill"];
    assert_eq!(fill.calls, 4);
    assert_eq!(fill.bytes, 4 * 4 * n as u64);
    assert!(fill.total_ms > 0.0 && fill.total_ms < 100.0, "{}", fill.total_ms);
    assert_eq!(table.kernels["scale"].calls, 1);
    eprint!("{}", table.table());
}

/// Every kernel of every family is loaded, and a launch of an unknown kernel or with a bad configuration
/// is an error naming the kernel, not a crash.
#[test]
#[ignore = "needs a CUDA GPU"]
fn kernels_load_and_bad_launches_are_errors() {
    let gpu = gpu();
    let names: Vec<String> = gpu.kernel_names().iter().map(|(f, k)| format!("{f}.cu:{k}")).collect();
    for want in ["adam.cu:adam_step", "elementwise.cu:fill", "elementwise.cu:sum_partial"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let bad = LaunchCfg::linear(1, 4096, Cost::default()); // more threads than a block may have
    let err = gpu.launch("fill", bad, &[0u64.into(), 0i64.into(), 0.0f32.into()]).unwrap_err().to_string();
    assert!(err.contains("fill"), "{err}");
    assert!(gpu.launch("no_such_kernel", bad, &[]).unwrap_err().to_string().contains("no_such_kernel"));
}
