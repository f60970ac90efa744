//! `gensync bench ...`: timings of single kernels and whole steps, with CUDA events after warm-up, medians.

use crate::backend::Backend;
use crate::cpu;
use crate::cpu::adam::AdamGroup;
use crate::cuda::adam::{AdamTensor, FusedAdam};
use crate::cuda::{median, Arena, Gpu};
use crate::error::{Error, Result};
use crate::rng::Rng;
use std::fmt::Write;
use std::path::Path;

// The benches bound their options (check_sizes) so that every buffer a bench builds stays below 2^31
// elements (the kernels index with 32-bit integers) and well inside a GPU's memory; the host's vectors are
// as large.

/// Timed repetitions at most.
const MAX_REPS: usize = 100_000;

/// Each `(option, value, max)` within [1, max], else an input error that names the bench and the option.
/// A product of options, `("--a × --b", a·b, max)`, comes after its factors (which bound it below 2^64).
fn check_sizes(bench: &str, options: &[(&str, usize, usize)]) -> Result<()> {
    for &(option, value, max) in options {
        if value == 0 || value > max {
            return Err(Error::input(format!("bench {bench}: {option} {value}: must be between 1 and {max}")));
        }
    }
    Ok(())
}

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
    check_sizes("adam", &[("--params", params, 1 << 30), ("--reps", reps, MAX_REPS)])?;
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

/// Median forward and forward + backward times of one dense layer (`rows` × `n_in` → `n_out`, with bias),
/// in TFLOP/s of the GEMMs (2·M·I·O forward, 6·M·I·O forward + backward). On the CPU backend, the CPU twin's
/// wall time over at most 3 repetitions.
pub fn mlp(backend: &Backend, s: cpu::mlp::Dense, reps: usize) -> Result<String> {
    use crate::cpu::mlp::{dense_bwd, dense_fwd, DenseGrads};
    use crate::cuda::mlp::{self as cuda, dense_bwd_scratch_len, DenseBwdInputs};
    check_sizes(
        "mlp",
        &[
            ("--rows", s.rows, 1 << 26),
            ("--in", s.n_in, 4096),
            ("--out", s.n_out, 4096),
            ("--rows × the wider of --in, --out", s.rows * s.n_in.max(s.n_out), 1 << 30),
            ("--reps", reps, MAX_REPS),
        ],
    )?;
    let mut rng = Rng::new(42);
    let x = rng.vec(s.rows * s.n_in, -1.0, 1.0);
    let w = rng.vec(s.n_out * s.n_in, -0.3, 0.3);
    let b = rng.vec(s.n_out, -0.1, 0.1);
    let d_y = rng.vec(s.rows * s.n_out, -1.0, 1.0);
    let gemm_flop = 2.0 * s.rows as f64 * s.n_in as f64 * s.n_out as f64;
    let mut out = String::new();
    let (fwd_ms, both_ms) = match backend {
        Backend::Cpu => {
            let mut y = vec![0.0f32; s.rows * s.n_out];
            let (mut d_x, mut d_w, mut d_b) = (vec![0.0f32; x.len()], vec![0.0f32; w.len()], vec![0.0f32; s.n_out]);
            let fwd = median(&wall_times(reps.min(3), || dense_fwd(s, &x, &w, Some(&b), &mut y)));
            let both = median(&wall_times(reps.min(3), || {
                dense_fwd(s, &x, &w, Some(&b), &mut y);
                dense_bwd(s, &x, &w, &y, &d_y, DenseGrads { d_x: &mut d_x, d_w: &mut d_w, d_b: Some(&mut d_b) });
            }));
            let _ = writeln!(out, "device: CPU twin");
            (fwd, both)
        }
        Backend::Cuda(gpu) => {
            let floats = 2 * x.len() + 2 * w.len() + 2 * b.len() + 2 * d_y.len() + dense_bwd_scratch_len(s);
            let mut arena = Arena::new("bench mlp", 4 * floats + 16 * 256)?;
            let mut put = |host: &[f32]| -> Result<_> {
                let buf = arena.alloc::<f32>(gpu, host.len())?;
                gpu.upload(buf, host)?;
                Ok(buf)
            };
            let (gx, gw, gb, gdy) = (put(&x)?, put(&w)?, put(&b)?, put(&d_y)?);
            let gy = arena.alloc::<f32>(gpu, d_y.len())?;
            let grads = cuda::DenseGrads {
                d_x: arena.alloc::<f32>(gpu, x.len())?,
                d_w: arena.alloc::<f32>(gpu, w.len())?,
                d_b: Some(arena.alloc::<f32>(gpu, s.n_out)?),
            };
            let scratch = arena.alloc::<f32>(gpu, dense_bwd_scratch_len(s))?;
            let inp = DenseBwdInputs { x: gx, w: gw, y: gy, d_y: gdy };
            let fwd = median(&gpu.time_ms(5, reps, || cuda::dense_fwd(gpu, s, gx, gw, Some(gb), gy))?);
            let both = median(&gpu.time_ms(5, reps, || {
                cuda::dense_fwd(gpu, s, gx, gw, Some(gb), gy)?;
                cuda::dense_bwd(gpu, s, inp, grads, scratch)
            })?);
            let _ = writeln!(out, "device: {}", gpu.info());
            (fwd, both)
        }
    };
    let fwd_bytes = 4.0 * (s.rows * (s.n_in + s.n_out) + s.n_out * (s.n_in + 1)) as f64;
    let _ = writeln!(
        out,
        "dense {}x{}->{} {:?}: fwd median {:.1} us ({:.2} TFLOP/s, {:.0} GB/s compulsory), \
         fwd+bwd median {:.1} us ({:.2} TFLOP/s)",
        s.rows,
        s.n_in,
        s.n_out,
        s.act,
        fwd_ms * 1000.0,
        gemm_flop / (fwd_ms * 1e9),
        fwd_bytes / (fwd_ms * 1e6),
        both_ms * 1000.0,
        3.0 * gemm_flop / (both_ms * 1e9)
    );
    Ok(out)
}

/// Median forward (loss and its parts, reductions included) and forward + backward times of the photometric
/// loss on B frames of H×W, with the bytes the kernels declare. On the CPU backend, the CPU twin's wall time
/// over at most 3 repetitions.
pub fn loss(backend: &Backend, f: cpu::loss::Frames, reps: usize) -> Result<String> {
    use crate::cpu::loss::{loss_bwd, loss_fwd};
    use crate::cuda::loss::{self as cuda, loss_scratch_len, LossInputs};
    check_sizes(
        "loss",
        &[
            ("--batch", f.b, 256),
            ("--height", f.h, 8192),
            ("--width", f.w, 8192),
            ("--batch × --height × --width", f.b * f.h * f.w, 1 << 28),
            ("--reps", reps, MAX_REPS),
        ],
    )?;
    let mut rng = Rng::new(42);
    let render = rng.vec(f.values(), 0.0, 1.0);
    let gt = rng.vec(f.values(), 0.0, 1.0);
    let lip: Vec<[i32; 4]> =
        vec![[f.w as i32 / 3, 3 * f.h as i32 / 5, 2 * f.w as i32 / 3, 4 * f.h as i32 / 5]; f.b];
    let mut out = String::new();
    let (fwd_ms, both_ms) = match backend {
        Backend::Cpu => {
            let mut d_stats = vec![0.0f32; 3 * f.values()];
            let mut d_render = vec![0.0f32; f.values()];
            let fwd = median(&wall_times(reps.min(3), || {
                loss_fwd(f, &render, &gt, &lip, &mut d_stats);
            }));
            let both = median(&wall_times(reps.min(3), || {
                loss_fwd(f, &render, &gt, &lip, &mut d_stats);
                loss_bwd(f, &render, &gt, &lip, &d_stats, &mut d_render);
            }));
            let _ = writeln!(out, "device: CPU twin");
            (fwd, both)
        }
        Backend::Cuda(gpu) => {
            let floats = 3 * f.values() + loss_scratch_len(f) + 4 * f.b + 4;
            let mut arena = Arena::new("bench loss", 4 * floats + 8 * 256)?;
            let inp = LossInputs {
                render: arena.alloc::<f32>(gpu, f.values())?,
                gt: arena.alloc::<f32>(gpu, f.values())?,
                lip: arena.alloc::<i32>(gpu, 4 * f.b)?,
                scratch: arena.alloc::<f32>(gpu, loss_scratch_len(f))?,
            };
            gpu.upload(inp.render, &render)?;
            gpu.upload(inp.gt, &gt)?;
            gpu.upload(inp.lip, &lip.concat())?;
            let parts = arena.alloc::<f32>(gpu, 4)?;
            let d_render = arena.alloc::<f32>(gpu, f.values())?;
            let fwd = median(&gpu.time_ms(5, reps, || cuda::loss_fwd(gpu, f, inp, parts))?);
            let both = median(&gpu.time_ms(5, reps, || {
                cuda::loss_fwd(gpu, f, inp, parts)?;
                cuda::loss_bwd(gpu, f, inp, d_render)
            })?);
            let _ = writeln!(out, "device: {}", gpu.info());
            (fwd, both)
        }
    };
    let n = f.values() as f64;
    let _ = writeln!(
        out,
        "loss {}x{}x{}: fwd median {:.1} us ({:.0} GB/s of 20 B/value), \
         fwd+bwd median {:.1} us ({:.0} GB/s of 44 B/value)",
        f.b,
        f.h,
        f.w,
        fwd_ms * 1000.0,
        20.0 * n / (fwd_ms * 1e6),
        both_ms * 1000.0,
        44.0 * n / (both_ms * 1e6)
    );
    Ok(out)
}

/// `gensync bench raster`: median forward and forward + backward times of the rasterizer on the face-like
/// scene of shared/peers/torch_peer.py (`Scene::face_like`), CUDA events after warm-up; the CPU twin's wall
/// time on the CPU backend. The last line is `RESULT {json}` for scripts. With `dump`, the scene, a fixed
/// upstream gradient d_image and our outputs and gradients are written there as .npy files
/// (bench/raster_vs_gsplat.py reads them).
pub fn raster(backend: &Backend, gaussians: usize, batch: usize, size: usize, reps: usize, dump: Option<&Path>) -> Result<String> {
    use crate::render::rasterize::{backward_bytes, initial_capacity, rasterize, GpuRasterizer, GpuScene, GpuTape, Scene};
    check_sizes(
        "raster",
        &[
            ("--gaussians", gaussians, 1 << 24),
            ("--batch", batch, 256),
            ("--size", size, 4096),
            ("--gaussians × --batch", gaussians * batch, 1 << 26),
            ("--batch × --size²", batch * size * size, 1 << 28),
            ("--reps", reps, MAX_REPS),
        ],
    )?;
    let scene = Scene::face_like(gaussians, batch, size, 1);
    let d = scene.dims;
    let mut rng = Rng::new(2);
    let d_image: Vec<f32> = (0..3 * d.pixels()).map(|_| rng.normal() / d.pixels() as f32).collect();
    let mut out = String::new();
    let mut graphs = None;
    let (device, pairs, fwd_ms, both_ms) = match backend {
        Backend::Cpu => {
            let fwd = median(&wall_times(reps.min(3), || {
                let _ = rasterize(backend, &scene, None, None);
            }));
            let both = median(&wall_times(reps.min(3), || {
                let _ = rasterize(backend, &scene, Some(&d_image), None);
            }));
            ("CPU twin".to_string(), rasterize(backend, &scene, None, None)?.0.num_pairs, fwd, both)
        }
        Backend::Cuda(gpu) => {
            let mut persistent = Arena::new("bench raster inputs", GpuScene::bytes(&d) + 4 * d_image.len() + 1024)?;
            let gs = GpuScene::upload(gpu, &mut persistent, &scene)?;
            let dbuf = persistent.alloc::<f32>(gpu, d_image.len())?;
            gpu.upload(dbuf, &d_image)?;
            let mut transient = Arena::new("bench raster step", GpuTape::bytes(&d) + backward_bytes(&d))?;
            let mut rast = GpuRasterizer::new(gpu, initial_capacity(&d))?;
            let tape = rast.forward_checked(gpu, &mut transient, &d, &gs)?; // sizes the pair buffers
            let pairs = GpuRasterizer::pairs_needed(gpu, &tape)?;
            let fwd = median(&gpu.time_ms(5, reps, || {
                transient.reset();
                rast.forward(gpu, &mut transient, &d, &gs).map(|_| ())
            })?);
            let both = median(&gpu.time_ms(5, reps, || {
                transient.reset();
                let tape = rast.forward(gpu, &mut transient, &d, &gs)?;
                rast.backward(gpu, &mut transient, &d, &gs, &tape, dbuf).map(|_| ())
            })?);
            // The same work replayed as CUDA graphs, as a training step runs it: no host launch overhead.
            let graph_fwd = gpu.capture(|gpu| {
                transient.reset();
                rast.forward(gpu, &mut transient, &d, &gs).map(|_| ())
            })?;
            let graph_both = gpu.capture(|gpu| {
                transient.reset();
                let tape = rast.forward(gpu, &mut transient, &d, &gs)?;
                rast.backward(gpu, &mut transient, &d, &gs, &tape, dbuf).map(|_| ())
            })?;
            graphs = Some((
                median(&gpu.time_ms(5, reps, || graph_fwd.replay())?),
                median(&gpu.time_ms(5, reps, || graph_both.replay())?),
            ));
            (gpu.info().to_string(), pairs, fwd, both)
        }
    };
    let _ = writeln!(out, "device: {device}");
    let _ = writeln!(
        out,
        "raster: B={batch} N={gaussians} {size}x{size}, {pairs} tile pairs: forward {fwd_ms:.3} ms, forward + backward {both_ms:.3} ms"
    );
    let (graph_fwd_ms, graph_both_ms) = graphs.unwrap_or((f64::NAN, f64::NAN));
    if graphs.is_some() {
        let _ = writeln!(
            out,
            "raster as CUDA graphs: forward {graph_fwd_ms:.3} ms, forward + backward {graph_both_ms:.3} ms"
        );
    }
    if let Some(dir) = dump {
        let (img, grads) = rasterize(backend, &scene, Some(&d_image), None)?;
        let g = grads.expect("d_image was given");
        let (b, n, s) = (batch, gaussians, size);
        let views: Vec<f32> = scene.cams.iter().flat_map(|c| c.view).collect();
        let ks: Vec<f32> = scene.cams.iter().flat_map(|c| [c.fx, 0.0, c.cx, 0.0, c.fy, c.cy, 0.0, 0.0, 1.0]).collect();
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("{}: cannot create the dump folder: {e}", dir.display())))?;
        for (name, data, shape) in [
            ("means", &scene.means, vec![b, n, 3]),
            ("log_scales", &scene.log_scales, vec![b, n, 3]),
            ("quats", &scene.quats, vec![b, n, 4]),
            ("opacity_logits", &scene.opacity_logits, vec![b, n]),
            ("sh", &scene.sh, vec![b, n, 16, 3]),
            ("background", &scene.background, vec![b, s, s, 3]),
            ("viewmats", &views, vec![b, 4, 4]),
            ("Ks", &ks, vec![b, 3, 3]),
            ("d_image", &d_image, vec![b, s, s, 3]),
            ("image", &img.image, vec![b, s, s, 3]),
            ("final_t", &img.final_t, vec![b, s, s]),
            ("depth", &img.depth, vec![b, s, s]),
            ("d_means", &g.d_means, vec![b, n, 3]),
            ("d_log_scales", &g.d_log_scales, vec![b, n, 3]),
            ("d_quats", &g.d_quats, vec![b, n, 4]),
            ("d_opacity_logits", &g.d_opacity_logits, vec![b, n]),
            ("d_sh", &g.d_sh, vec![b, n, 16, 3]),
            ("d_mean2d_norm", &g.d_mean2d_norm, vec![b, n]),
        ] {
            let path = dir.join(format!("{name}.npy"));
            std::fs::write(&path, crate::data::import::npy::npy_f32_bytes(&shape, data))
                .map_err(|e| Error::Io(format!("{}: cannot write: {e}", path.display())))?;
        }
        let _ = writeln!(out, "dumped the scene, d_image, outputs and gradients to {}", dir.display());
    }
    let _ = writeln!(
        out,
        "RESULT {{\"device\": {device:?}, \"batch\": {batch}, \"gaussians\": {gaussians}, \"size\": {size}, \
         \"pairs\": {pairs}, \"fwd_ms\": {fwd_ms:.4}, \"fwd_bwd_ms\": {both_ms:.4}, \
         \"graph_fwd_ms\": {}, \"graph_fwd_bwd_ms\": {}}}",
        json_number(graph_fwd_ms),
        json_number(graph_both_ms)
    );
    Ok(out)
}

/// A float as JSON (null for NaN, which JSON lacks).
fn json_number(x: f64) -> String {
    if x.is_finite() { format!("{x:.4}") } else { "null".into() }
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

/// Median time of one deformation-network training step at N Gaussians and B frames on random inputs:
/// tokens_fwd, deform_fwd, deform_bwd (+ deform_reduce), tokens_bwd and the fused Adam over the network's
/// parameters (the canonical Gaussians' and triplane's Adam are not included), once with the chain's dense
/// layers in fp32 and once on the tensor cores. The incoming gradient of the deformed Gaussians is random
/// (the rasterizer's stand-in). On the CPU backend, the CPU twin's forward and backward wall time over at
/// most 3 repetitions.
pub fn deform(backend: &Backend, gaussians: usize, batch: usize, reps: usize) -> Result<String> {
    use crate::cpu::attention::{Canonical, Deformed, Dropout};
    use crate::cpu::audio::FrameInputs;
    use crate::cuda::attention::{DeformChain, GaussianBufs, Precision, MACS_PER_PAIR};
    use crate::cuda::audio::{tokens_bwd, tokens_fwd, FrameBufs};
    use crate::model::deform::{self as model, DeformBatch, DeformLayout, Disentangle, DELTAS, DROPOUT};
    // The tape alone is 944 bytes per (Gaussian, frame) pair: 8 GB at the bound.
    check_sizes(
        "deform",
        &[
            ("--gaussians", gaussians, 1 << 22),
            ("--batch", batch, 256),
            ("--gaussians × --batch", gaussians * batch, 1 << 23),
            ("--reps", reps, MAX_REPS),
        ],
    )?;
    let (n, b, c, identities) = (gaussians, batch, 29, 10);
    let layout = DeformLayout::new(c, identities, Disentangle::Multiplicative);
    let params = layout.init(1);
    let mut rng = Rng::new(42);
    let frames = FrameInputs {
        audio: rng.vec(b * model::WINDOWS * model::WINDOW_LEN * c, -1.0, 1.0),
        eye: rng.vec(b, 0.0, 1.0),
        view: rng.vec(b * model::VIEW_IN, -1.0, 1.0),
        ids: (0..b).map(|_| rng.below(identities as u64) as usize).collect(),
    };
    let canonical = Canonical {
        means: rng.vec(n * 3, -1.0, 1.0),
        log_scales: rng.vec(n * 3, -5.0, -3.0),
        rotations: rng.vec(n * 4, -1.0, 1.0),
        opacities: rng.vec(n, -2.0, 2.0),
        sh: rng.vec(n * 48, -0.5, 0.5),
    };
    let d_out = Deformed {
        means: rng.vec(b * n * 3, -1e-3, 1e-3),
        scales: rng.vec(b * n * 3, -1e-3, 1e-3),
        rotations: rng.vec(b * n * 4, -1e-3, 1e-3),
        opacities: rng.vec(b * n, -1e-3, 1e-3),
        sh: rng.vec(b * n * 48, -1e-3, 1e-3),
    };
    let batch_in = DeformBatch { frames, features: rng.vec(n * model::D, 0.0, 1.0), canonical, dropout: Dropout::new(DROPOUT, 7, 1) };
    let pairs = (b * n) as f64;
    let step_flop = 8.0 * MACS_PER_PAIR as f64 * pairs;
    let step_bytes = 4.0 * (pairs * 2.0 * DELTAS as f64 + n as f64 * 2.0 * (model::D + DELTAS) as f64 + 7.0 * layout.total as f64);
    let mut out = String::new();
    let mut timings = Vec::new();
    match backend {
        Backend::Cpu => {
            let times = wall_times(reps.min(3), || {
                let (_, tape) = model::forward(&layout, &params, &batch_in);
                let _ = model::backward(&layout, &params, &batch_in, &tape, &d_out);
            });
            let _ = writeln!(out, "device: CPU twin (forward + backward, no optimizer)");
            timings.push(("cpu", median(&times)));
        }
        Backend::Cuda(gpu) => {
            let floats = 4 * layout.total
                + 2 * n * (model::D + DELTAS)
                + 2 * b * n * DELTAS
                + 4 * b * model::TOKENS * model::D
                + FrameBufs::floats(&layout, b)
                + DeformChain::floats(gpu, b, n, Precision::Fp32)
                + DeformChain::floats(gpu, b, n, Precision::TensorCores);
            let mut arena = Arena::new("bench deform", 4 * floats + 64 * 256 + (1 << 16))?;
            let put = |arena: &mut Arena, host: &[f32]| -> Result<_> {
                let buf = arena.alloc::<f32>(gpu, host.len())?;
                gpu.upload(buf, host)?;
                Ok(buf)
            };
            let p = put(&mut arena, &params)?;
            let zeros = vec![0.0f32; layout.total];
            let (d_params, m, v) = (put(&mut arena, &zeros)?, put(&mut arena, &zeros)?, put(&mut arena, &zeros)?);
            let f = put(&mut arena, &batch_in.features)?;
            let d_f = arena.alloc::<f32>(gpu, n * model::D)?;
            let upload5 = |arena: &mut Arena, rows: usize, a: [&Vec<f32>; 5]| -> Result<GaussianBufs> {
                let g = GaussianBufs::alloc(gpu, arena, rows)?;
                for (buf, host) in [g.means, g.scales, g.rotations, g.opacities, g.sh].iter().zip(a) {
                    gpu.upload(*buf, host)?;
                }
                Ok(g)
            };
            let cn = &batch_in.canonical;
            let canon = upload5(&mut arena, n, [&cn.means, &cn.log_scales, &cn.rotations, &cn.opacities, &cn.sh])?;
            let d_o = upload5(&mut arena, b * n, [&d_out.means, &d_out.scales, &d_out.rotations, &d_out.opacities, &d_out.sh])?;
            let deformed = GaussianBufs::alloc(gpu, &mut arena, b * n)?;
            let d_canon = GaussianBufs::alloc(gpu, &mut arena, n)?;
            let fr = FrameBufs::upload(gpu, &mut arena, &layout, &batch_in.frames)?;
            let kv = arena.alloc::<f32>(gpu, 2 * b * model::TOKENS * model::D)?;
            let d_kv = arena.alloc::<f32>(gpu, 2 * b * model::TOKENS * model::D)?;
            let adam = FusedAdam::new(gpu, &mut arena, &[AdamTensor { p, g: d_params, m, v, group: 0 }], 1)?;
            adam.set_groups(gpu, &[AdamGroup::new(1e-4, 0.9, 0.999, 1e-15, 1)])?;
            let drop = batch_in.dropout;
            let _ = writeln!(out, "device: {}", gpu.info());
            let precisions = [(Precision::Fp32, "fp32"), (Precision::TensorCores, "tensor cores (split fp16 forward, bf16 backward)")];
            let mut chains = Vec::new();
            for (precision, name) in precisions {
                chains.push((DeformChain::new(gpu, &mut arena, &layout, b, n, precision)?, name));
            }
            let step = |chain: &DeformChain| -> Result<()> {
                chain.prepare(gpu, p)?;
                tokens_fwd(gpu, &layout, p, &fr, kv)?;
                chain.deform_fwd(gpu, p, f, kv, b, n, drop, &canon, &deformed)?;
                chain.deform_bwd(gpu, p, f, kv, b, n, drop, &canon, &d_o, d_params, d_kv, d_f, &d_canon)?;
                tokens_bwd(gpu, &layout, p, &fr, d_kv, d_params)?;
                adam.step(gpu)
            };
            // Warm-up of both paths first, so the --profile table holds the timed steps of both.
            for (chain, _) in &chains {
                gpu.time_ms(3, 0, || step(chain))?;
            }
            gpu.reset_profile()?;
            for (chain, name) in &chains {
                timings.push((*name, median(&gpu.time_ms(0, reps, || step(chain))?)));
            }
            let _ = writeln!(out, "{}", arena.usage());
        }
    }
    for (name, ms) in timings {
        let _ = writeln!(
            out,
            "deform step, {name} (N {n}, B {b}, {} parameters): median {:.3} ms; {:.1} GFLOP/step (8 × {} \
             multiply-adds per pair: forward, recomputed forward, backward d_x and d_W) = {:.1} TFLOP/s; \
             {:.0} MB/step compulsory",
            layout.total,
            ms,
            step_flop / 1e9,
            MACS_PER_PAIR,
            step_flop / (ms * 1e9),
            step_bytes / 1e6
        );
    }
    Ok(out)
}

/// Median time of one canonical-stage training step (batch 1: triplane, F_c, rasterizer, loss, their
/// backward, Adam) on a synthetic identity of `size`² pixels with at most `gaussians` Gaussians from its head
/// mesh (the corpus is written to a temporary folder first). The CUDA step reads its loss back, so each
/// timed step includes one host synchronisation. On the CPU backend, the CPU step's wall time.
pub fn canonical(backend: &Backend, gaussians: usize, size: usize, reps: usize) -> Result<String> {
    use crate::data::synth::{write_corpus, CorpusOptions, Progress};
    use crate::train::canonical::Identity;
    use crate::train::canonical_gpu::{DeviceFrames, GpuIdentity};
    check_sizes("canonical", &[("--gaussians", gaussians, 1 << 24), ("--reps", reps, MAX_REPS)])?;
    let dir = std::env::temp_dir().join(format!("gensync-bench-canonical-{}", std::process::id()));
    let options = CorpusOptions { identities: 1, seconds: 1.0, size, seed: 1, out: dir.clone() };
    let written = write_corpus(&options, &Progress { quiet: true });
    let result = written.and_then(|paths| {
        let ds = crate::data::Dataset::open(&paths[0])?;
        let mut id = Identity::new(&ds, 0, 1, Some(gaussians))?;
        let n = id.len();
        let train = ds.header().train_frames as usize;
        let times = match backend {
            Backend::Cpu => {
                let mut frame = 0;
                wall_times(reps.min(5), || {
                    id.step(&ds, frame % train, 1.0);
                    frame += 1;
                })
            }
            Backend::Cuda(gpu) => {
                let frames = DeviceFrames::upload(gpu, &ds)?;
                let mut model = GpuIdentity::upload(gpu, &id, &frames)?;
                let mut frame = 0;
                gpu.time_ms(5, reps, || {
                    frame += 1;
                    model.step(gpu, &frames, frame % train, 1.0)
                })?
            }
        };
        Ok(format!("canonical step ({}): {n} Gaussians, {size}x{size}, median {:.3} ms\n", device_name(backend), median(&times)))
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn device_name(backend: &Backend) -> String {
    backend.gpu().map_or("cpu".to_string(), |g| g.info().name.clone())
}
