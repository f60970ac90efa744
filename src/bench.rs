//! `gensync bench ...`: timings of single kernels and whole steps, with CUDA events after warm-up, medians.

use crate::backend::Backend;
use crate::cpu;
use crate::cpu::adam::AdamGroup;
use crate::cuda::adam::{AdamTensor, FusedAdam};
use crate::cuda::{median, Arena, Gpu};
use crate::error::{Error, Result};
use crate::rng::Rng;
use std::fmt::Write;

/// Splits `total` parameters into tensors of uneven sizes (none a multiple of the kernel's chunk), the way a
/// model's parameter list looks, so the multi-tensor path is what gets timed.
pub fn adam_tensor_sizes(total: usize) -> Vec<usize> {
    let shares = [0.45, 0.25, 0.15, 0.08, 0.05];
    let mut left = total;
    let mut sizes = Vec::new();
    for share in shares {
        let n = (((total as f64 * share) as usize) | 1).min(left);
        sizes.push(n);
        left -= n;
    }
    sizes.push(left);
    sizes.retain(|&n| n > 0);
    sizes
}

/// Median time of one fused Adam step over `params` parameters, against the card's measured device-to-device
/// copy bandwidth (bytes read + written). On the CPU backend, the CPU twin's wall time.
pub fn adam(backend: &Backend, params: usize, reps: usize) -> Result<String> {
    if params == 0 || reps == 0 {
        return Err(Error::input("bench adam: --params and --reps must be positive"));
    }
    let sizes = adam_tensor_sizes(params);
    let mut rng = Rng::new(42);
    let host: Vec<[Vec<f32>; 4]> = sizes
        .iter()
        .map(|&n| [rng.vec(n, -1.0, 1.0), rng.vec(n, -1.0, 1.0), rng.vec(n, -0.1, 0.1), rng.vec(n, 0.0, 0.01)])
        .collect();
    let groups: Vec<AdamGroup> =
        [1.6e-4, 1.6e-3, 5e-3].iter().map(|&lr| AdamGroup::new(lr, 0.9, 0.999, 1e-15, 10)).collect();
    let mut out = String::new();
    match backend {
        Backend::Cpu => {
            let mut state = host;
            let times = wall_times(reps, || {
                for (k, [p, g, m, v]) in state.iter_mut().enumerate() {
                    cpu::adam::adam_step(p, g, m, v, &groups[k % groups.len()]);
                }
            });
            let ms = median(&times);
            let _ = writeln!(
                out,
                "adam (cpu): {params} parameters in {} tensors, median {:.3} ms, {:.1} GB/s",
                sizes.len(),
                ms,
                28.0 * params as f64 / (ms * 1e6)
            );
        }
        Backend::Cuda(gpu) => {
            let bytes = 4 * 4 * params + 4096 * sizes.len() + (1 << 16);
            let mut arena = Arena::new("persistent", bytes)?;
            let mut tensors = Vec::new();
            for (k, (&n, h)) in sizes.iter().zip(&host).enumerate() {
                let bufs = [(); 4].map(|_| arena.alloc::<f32>(gpu, n));
                let [p, g, m, v] = bufs;
                let (p, g, m, v) = (p?, g?, m?, v?);
                for (buf, data) in [p, g, m, v].iter().zip(h) {
                    gpu.upload(*buf, data)?;
                }
                tensors.push(AdamTensor { p, g, m, v, group: k % groups.len() });
            }
            let adam = FusedAdam::new(gpu, &mut arena, &tensors, groups.len())?;
            adam.set_groups(gpu, &groups)?;
            let ms = median(&gpu.time_ms(10, reps, || adam.step(gpu))?);
            let adam_gbs = 28.0 * params as f64 / (ms * 1e6);
            let copy_gbs = copy_bandwidth(gpu, reps)?;
            let _ = writeln!(out, "device: {}", gpu.info());
            let _ = writeln!(out, "{}", arena.usage());
            let _ = writeln!(
                out,
                "adam_step: {params} parameters in {} tensors, median {:.1} us, {:.0} GB/s (28 B/parameter), \
                 {:.0}% of device-to-device copy ({:.0} GB/s, read + write)",
                sizes.len(),
                ms * 1000.0,
                adam_gbs,
                100.0 * adam_gbs / copy_gbs,
                copy_gbs
            );
        }
    }
    Ok(out)
}

/// The card's device-to-device copy bandwidth in GB/s, counting bytes read plus bytes written, over a copy
/// large enough (512 MiB) to leave the L2 cache out.
pub fn copy_bandwidth(gpu: &Gpu, reps: usize) -> Result<f64> {
    let n = 128 << 20; // f32 elements: 512 MiB each way
    let mut arena = Arena::new("copy bandwidth", 2 * 4 * n + 512)?;
    let src = arena.alloc::<f32>(gpu, n)?;
    let dst = arena.alloc::<f32>(gpu, n)?;
    crate::cuda::elementwise::fill(gpu, src, 1.0)?;
    let ms = median(&gpu.time_ms(3, reps.max(5), || gpu.copy(dst, src))?);
    Ok(2.0 * 4.0 * n as f64 / (ms * 1e6))
}

/// Wall-clock times in ms of `reps` calls of `f` after one warm-up call.
fn wall_times(reps: usize, mut f: impl FnMut()) -> Vec<f64> {
    f();
    (0..reps)
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tensor_sizes_cover_the_total() {
        for total in [1usize, 7, 1000, 10_000_000] {
            let s = super::adam_tensor_sizes(total);
            assert_eq!(s.iter().sum::<usize>(), total, "{total}: {s:?}");
            assert!(s.iter().all(|&n| n > 0));
        }
    }
}
