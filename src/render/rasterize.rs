//! The rasterizer of a batch, stage by stage, on either backend (SPEC.md §6).
//!
//! Forward:  project_fwd → exclusive_scan(tiles_touched) → tile_pairs → radix_sort → tile_ranges → raster_fwd
//!           → raster_fwd_combine
//! Backward: raster_bwd → project_bwd
//!
//! On the GPU nothing waits for the host inside `GpuRasterizer::forward`/`backward`: the pair count stays on
//! the device, the pair buffers have a fixed capacity and pairs past it are dropped. `forward_checked` reads
//! the count afterwards and, on overflow, grows the buffers and redoes the stages from tile_pairs on (the
//! projection and its scan are still valid).

use crate::backend::Backend;
use crate::cpu::raster::{
    self as twin, Camera, Float, GaussianGrads, Gaussians, RasterDims, RasterFwd, D_SPLAT, SH_COEFFS, SPLAT,
};
use crate::cpu::sort as twin_sort;
use crate::cuda::elementwise::fill;
use crate::cuda::raster::{self as kernels, piece_buffer_lens, GpuGaussianGrads, GpuGaussians, GpuPairs, GpuRasterOut};
use crate::cuda::sort::{exclusive_scan, radix_sort, scan_scratch_len, SortBuffers, SORT_TILE};
use crate::cuda::{Arena, DevBuf, Gpu};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The host inputs of one call: B cameras, B·N Gaussians (frame-major), B background images.
#[derive(Debug, Clone)]
pub struct Scene {
    pub dims: RasterDims,
    pub cams: Vec<Camera>,
    pub means: Vec<f32>,
    pub log_scales: Vec<f32>,
    pub quats: Vec<f32>,
    pub opacity_logits: Vec<f32>,
    pub sh: Vec<f32>,
    pub background: Vec<f32>,
}

impl Scene {
    pub fn gaussians(&self) -> Gaussians<'_, f32> {
        Gaussians {
            means: &self.means,
            log_scales: &self.log_scales,
            quats: &self.quats,
            opacity_logits: &self.opacity_logits,
            sh: &self.sh,
        }
    }

    /// The benchmark scene of shared/peers/torch_peer.py: per frame, N means ~ N(0, 0.3²) seen from distance 3
    /// with focal 1200 (principal point at the centre), random unit quaternions, scales U(0.002, 0.012),
    /// opacity logits U(0, 1), SH coefficients N(0, 0.1²) (degree 3), a random background image.
    pub fn face_like(gaussians: usize, batch: usize, size: usize, seed: u64) -> Scene {
        let dims = RasterDims { batch, gaussians, width: size, height: size, sh_degree: 3 };
        let mut rng = Rng::new(seed);
        let bn = dims.bn();
        let means = (0..3 * bn).map(|_| 0.3 * rng.normal()).collect();
        let quats = (0..4 * bn).map(|_| rng.normal()).collect();
        let log_scales = (0..3 * bn).map(|_| rng.range(0.002, 0.012).ln()).collect();
        let opacity_logits = rng.vec(bn, 0.0, 1.0);
        let sh = (0..3 * SH_COEFFS * bn).map(|_| 0.1 * rng.normal()).collect();
        let background = rng.vec(3 * dims.pixels(), 0.0, 1.0);
        let cams = vec![Camera::facing_origin(3.0, 1200.0 * size as f32 / 512.0, size, size); batch];
        Scene { dims, cams, means, log_scales, quats, opacity_logits, sh, background }
    }
}

/// Host outputs of the forward pass.
#[derive(Debug, Clone)]
pub struct RasterImages {
    /// [B,H,W,3]
    pub image: Vec<f32>,
    /// [B,H,W]
    pub final_t: Vec<f32>,
    /// [B,H,W], Σ w·z (not normalised by the alpha)
    pub depth: Vec<f32>,
    /// Tile pairs the call needed (its buffers may have been grown to hold them).
    pub num_pairs: usize,
}

// ---------------------------------------------------------------------------------------------------------
// CPU

/// What the CPU backward needs from the CPU forward.
#[derive(Debug, Clone)]
pub struct CpuTape<T> {
    pub splat: Vec<T>,
    pub values: Vec<u32>,
    pub ranges: Vec<[i32; 2]>,
    pub out: RasterFwd<T>,
    pub num_pairs: usize,
}

/// All forward stages on the CPU twins, in the kernels' order.
pub fn forward_cpu<T: Float>(d: &RasterDims, cams: &[Camera], g: &Gaussians<T>, background: &[T]) -> CpuTape<T> {
    let bn = d.bn();
    let mut splat = vec![T::zero(); SPLAT * bn];
    let mut touched = vec![0i32; bn];
    twin::project_fwd(d, cams, g, &mut splat, &mut touched);
    let mut offsets = vec![0i32; bn];
    let num_pairs = twin_sort::exclusive_scan(&touched, &mut offsets) as usize;
    let mut keys = vec![0u64; num_pairs];
    let mut values = vec![0u32; num_pairs];
    twin::tile_pairs(d, &splat, &offsets, &mut keys, &mut values);
    twin_sort::radix_sort(&mut keys, &mut values, d.key_bits());
    let ranges = twin::tile_ranges(d.batch * d.tiles(), &keys);
    let out = twin::raster_fwd(d, &splat, &values, &ranges, background);
    CpuTape { splat, values, ranges, out, num_pairs }
}

/// All backward stages on the CPU twins.
pub fn backward_cpu<T: Float>(
    d: &RasterDims,
    cams: &[Camera],
    g: &Gaussians<T>,
    background: &[T],
    tape: &CpuTape<T>,
    d_image: &[T],
) -> GaussianGrads<T> {
    let mut d_splat = vec![T::zero(); D_SPLAT * d.bn()];
    twin::raster_bwd(
        d,
        &tape.splat,
        &tape.values,
        &tape.ranges,
        background,
        &tape.out.final_t,
        &tape.out.n_contrib,
        d_image,
        &mut d_splat,
    );
    twin::project_bwd(d, cams, g, &tape.splat, &d_splat)
}

// ---------------------------------------------------------------------------------------------------------
// GPU

/// A scene's inputs on the device.
#[derive(Debug, Clone, Copy)]
pub struct GpuScene {
    pub cams: DevBuf<Camera>,
    pub gaussians: GpuGaussians,
    pub background: DevBuf<f32>,
}

impl GpuScene {
    pub fn upload(gpu: &Gpu, arena: &mut Arena, scene: &Scene) -> Result<Self> {
        let up = |arena: &mut Arena, host: &[f32]| -> Result<DevBuf<f32>> {
            let b = arena.alloc::<f32>(gpu, host.len())?;
            if !host.is_empty() {
                gpu.upload(b, host)?;
            }
            Ok(b)
        };
        let cams = arena.alloc::<Camera>(gpu, scene.cams.len())?;
        gpu.upload(cams, &scene.cams)?;
        Ok(GpuScene {
            cams,
            gaussians: GpuGaussians {
                means: up(arena, &scene.means)?,
                log_scales: up(arena, &scene.log_scales)?,
                quats: up(arena, &scene.quats)?,
                opacity_logits: up(arena, &scene.opacity_logits)?,
                sh: up(arena, &scene.sh)?,
            },
            background: up(arena, &scene.background)?,
        })
    }

    /// Device bytes `upload` takes (arena alignment included).
    pub fn bytes(d: &RasterDims) -> usize {
        80 * d.batch + 4 * d.bn() * (3 + 3 + 4 + 1 + 3 * SH_COEFFS) + 12 * d.pixels() + 7 * 256
    }
}

/// What one GPU forward leaves for the backward and for the overflow check.
#[derive(Debug, Clone, Copy)]
pub struct GpuTape {
    pub splat: DevBuf<f32>,
    pub tiles_touched: DevBuf<i32>,
    pub offsets: DevBuf<i32>,
    scan_sums: DevBuf<i32>,
    /// The sorted pairs (keys and values are slots of the rasterizer's pair buffers); num_pairs [1] counts
    /// the pairs needed, which may exceed the capacity: then the images are incomplete.
    pub pairs: GpuPairs,
    pub out: GpuRasterOut,
}

impl GpuTape {
    /// Transient-arena bytes of one forward.
    pub fn bytes(d: &RasterDims) -> usize {
        let bn = d.bn();
        4 * (SPLAT * bn + 2 * bn + scan_scratch_len(bn) + 1 + 2 * d.batch * d.tiles() + 6 * d.pixels()) + 12 * 256
    }
}

/// Transient-arena bytes of one backward (d_splat and the gradients).
pub fn backward_bytes(d: &RasterDims) -> usize {
    4 * d.bn() * (D_SPLAT + 3 + 3 + 4 + 1 + 3 * SH_COEFFS + 1) + 8 * 256
}

/// The GPU rasterizer: owns the tile-pair buffers (their own arena, so growing them leaves the caller's
/// transient arena alone).
pub struct GpuRasterizer {
    sort: SortBuffers,
    /// The blending passes' per-piece buffers (`GpuRasterOut`).
    piece_state: DevBuf<f32>,
    piece_part: DevBuf<f32>,
    _pairs: Arena,
}

impl GpuRasterizer {
    /// Pair buffers for `capacity` pairs (rounded up to whole sort blocks).
    pub fn new(gpu: &Gpu, capacity: usize) -> Result<Self> {
        let capacity = capacity.max(1).next_multiple_of(SORT_TILE);
        if capacity > i32::MAX as usize {
            return Err(Error::Cuda(format!("rasterizer: {capacity} tile pairs exceed the kernels' int indices")));
        }
        let (state, part) = piece_buffer_lens(capacity);
        let mut arena = Arena::new("tile pairs", SortBuffers::bytes(capacity) + 4 * (state + part) + 512)?;
        let sort = SortBuffers::new(gpu, &mut arena, capacity)?;
        let piece_state = arena.alloc(gpu, state)?;
        let piece_part = arena.alloc(gpu, part)?;
        Ok(GpuRasterizer { sort, piece_state, piece_part, _pairs: arena })
    }

    pub fn capacity(&self) -> usize {
        self.sort.capacity()
    }

    /// Launches every forward stage; no host synchronisation. Check `pairs_needed` against `capacity`
    /// afterwards (or use `forward_checked`).
    pub fn forward(&self, gpu: &Gpu, arena: &mut Arena, d: &RasterDims, scene: &GpuScene) -> Result<GpuTape> {
        let bn = d.bn();
        let px = d.pixels();
        let mut tape = GpuTape {
            splat: arena.alloc(gpu, SPLAT * bn)?,
            tiles_touched: arena.alloc(gpu, bn)?,
            offsets: arena.alloc(gpu, bn)?,
            scan_sums: arena.alloc(gpu, scan_scratch_len(bn))?,
            pairs: GpuPairs {
                keys: self.sort.keys[0],
                values: self.sort.values[0],
                num_pairs: arena.alloc(gpu, 1)?,
                ranges: arena.alloc(gpu, 2 * d.batch * d.tiles())?,
            },
            out: GpuRasterOut {
                image: arena.alloc(gpu, 3 * px)?,
                final_t: arena.alloc(gpu, px)?,
                depth: arena.alloc(gpu, px)?,
                n_contrib: arena.alloc(gpu, px)?,
                piece_state: self.piece_state,
                piece_part: self.piece_part,
            },
        };
        kernels::project_fwd(gpu, d, scene.cams, &scene.gaussians, tape.splat, tape.tiles_touched)?;
        exclusive_scan(gpu, tape.tiles_touched, tape.offsets, tape.scan_sums, tape.pairs.num_pairs)?;
        self.pairs_to_image(gpu, d, scene, &mut tape)?;
        Ok(tape)
    }

    /// tile_pairs → radix_sort → tile_ranges → raster_fwd.
    fn pairs_to_image(&self, gpu: &Gpu, d: &RasterDims, scene: &GpuScene, tape: &mut GpuTape) -> Result<()> {
        let s = &self.sort;
        let p = &mut tape.pairs;
        kernels::tile_pairs(gpu, d, tape.splat, tape.offsets, s.keys[0], s.values[0])?;
        let which = radix_sort(gpu, s, p.num_pairs, d.key_bits())?;
        kernels::tile_ranges(gpu, d, s.keys[which], p.num_pairs, p.ranges)?;
        (p.keys, p.values) = (s.keys[which], s.values[which]);
        (tape.out.piece_state, tape.out.piece_part) = (self.piece_state, self.piece_part);
        let pairs = self.capacity() as u64;
        kernels::raster_fwd(gpu, d, tape.splat, &tape.pairs, scene.background, &tape.out, pairs)
    }

    /// Tile pairs the forward needed (waits for the stream).
    pub fn pairs_needed(gpu: &Gpu, tape: &GpuTape) -> Result<usize> {
        Ok(gpu.download(tape.pairs.num_pairs)?[0].max(0) as usize)
    }

    /// `forward`, then the overflow check; on overflow the pair buffers grow to 1.25× the need and the
    /// stages from tile_pairs on run again.
    pub fn forward_checked(&mut self, gpu: &Gpu, arena: &mut Arena, d: &RasterDims, scene: &GpuScene) -> Result<GpuTape> {
        let mut tape = self.forward(gpu, arena, d, scene)?;
        let need = Self::pairs_needed(gpu, &tape)?;
        if need > self.capacity() {
            *self = GpuRasterizer::new(gpu, need + need / 4)?;
            self.pairs_to_image(gpu, d, scene, &mut tape)?;
        }
        Ok(tape)
    }

    /// Launches the backward stages for `d_image` [B,H,W,3]; gradients in new slots of `arena`.
    pub fn backward(
        &self,
        gpu: &Gpu,
        arena: &mut Arena,
        d: &RasterDims,
        scene: &GpuScene,
        tape: &GpuTape,
        d_image: DevBuf<f32>,
    ) -> Result<GpuGaussianGrads> {
        let bn = d.bn();
        let d_splat = arena.alloc::<f32>(gpu, D_SPLAT * bn)?;
        let grads = GpuGaussianGrads {
            d_means: arena.alloc(gpu, 3 * bn)?,
            d_log_scales: arena.alloc(gpu, 3 * bn)?,
            d_quats: arena.alloc(gpu, 4 * bn)?,
            d_opacity_logits: arena.alloc(gpu, bn)?,
            d_sh: arena.alloc(gpu, 3 * SH_COEFFS * bn)?,
            d_mean2d_norm: arena.alloc(gpu, bn)?,
        };
        fill(gpu, d_splat, 0.0)?;
        let pairs = self.capacity() as u64;
        kernels::raster_bwd(gpu, d, tape.splat, &tape.pairs, scene.background, &tape.out, d_image, d_splat, pairs)?;
        kernels::project_bwd(gpu, d, scene.cams, &scene.gaussians, tape.splat, d_splat, &grads)?;
        Ok(grads)
    }
}

/// Downloads the gradients (N = 0 gives empty vectors without touching the device).
pub fn download_grads(gpu: &Gpu, g: &GpuGaussianGrads) -> Result<GaussianGrads<f32>> {
    let get = |b: DevBuf<f32>| if b.is_empty() { Ok(Vec::new()) } else { gpu.download(b) };
    Ok(GaussianGrads {
        d_means: get(g.d_means)?,
        d_log_scales: get(g.d_log_scales)?,
        d_quats: get(g.d_quats)?,
        d_opacity_logits: get(g.d_opacity_logits)?,
        d_sh: get(g.d_sh)?,
        d_mean2d_norm: get(g.d_mean2d_norm)?,
    })
}

/// A first guess of the pair count: 4 tiles per Gaussian (the face-like scene needs about 2).
pub fn initial_capacity(d: &RasterDims) -> usize {
    (4 * d.bn()).max(SORT_TILE)
}

/// Renders `scene` on `backend` and, with `d_image`, runs the backward: host in, host out. The GPU path
/// starts with `capacity` pairs (default `initial_capacity`) and grows on overflow.
pub fn rasterize(
    backend: &Backend,
    scene: &Scene,
    d_image: Option<&[f32]>,
    capacity: Option<usize>,
) -> Result<(RasterImages, Option<GaussianGrads<f32>>)> {
    let d = &scene.dims;
    if let Some(di) = d_image {
        if di.len() != 3 * d.pixels() {
            return Err(Error::input(format!("rasterize: d_image has {} values, expected {}", di.len(), 3 * d.pixels())));
        }
    }
    match backend {
        Backend::Cpu => {
            let g = scene.gaussians();
            let tape = forward_cpu(d, &scene.cams, &g, &scene.background);
            let grads = d_image.map(|di| backward_cpu(d, &scene.cams, &g, &scene.background, &tape, di));
            let RasterFwd { image, final_t, depth, .. } = tape.out;
            Ok((RasterImages { image, final_t, depth, num_pairs: tape.num_pairs }, grads))
        }
        Backend::Cuda(gpu) => {
            let bytes = GpuScene::bytes(d) + GpuTape::bytes(d) + backward_bytes(d) + 4 * 3 * d.pixels() + 4096;
            let mut arena = Arena::new("rasterize", bytes)?;
            let gs = GpuScene::upload(gpu, &mut arena, scene)?;
            let mut rast = GpuRasterizer::new(gpu, capacity.unwrap_or_else(|| initial_capacity(d)))?;
            let tape = rast.forward_checked(gpu, &mut arena, d, &gs)?;
            let grads = match d_image {
                None => None,
                Some(di) => {
                    let dbuf = arena.alloc::<f32>(gpu, di.len())?;
                    gpu.upload(dbuf, di)?;
                    let g = rast.backward(gpu, &mut arena, d, &gs, &tape, dbuf)?;
                    Some(download_grads(gpu, &g)?)
                }
            };
            let images = RasterImages {
                image: gpu.download(tape.out.image)?,
                final_t: gpu.download(tape.out.final_t)?,
                depth: gpu.download(tape.out.depth)?,
                num_pairs: GpuRasterizer::pairs_needed(gpu, &tape)?,
            };
            Ok((images, grads))
        }
    }
}
