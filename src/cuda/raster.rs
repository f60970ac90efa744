//! Launchers for kernels/raster.cu: project_fwd, tile_pairs, tile_ranges, raster_fwd, raster_bwd,
//! project_bwd. CPU twins: src/cpu/raster.rs. The stages are chained in src/render/rasterize.rs.

use super::{Cost, DevBuf, Gpu, LaunchCfg};
use crate::cpu::raster::{piece_slots, Camera, RasterDims, D_SPLAT, RASTER_PIECE, SH_COEFFS, SPLAT};
use crate::error::{Error, Result};

/// Threads per block (PROJECT_THREADS, PAIRS_THREADS, RANGES_THREADS, RASTER_THREADS in the kernel).
const PROJECT_THREADS: u32 = 128;
const PAIRS_THREADS: u32 = 256;
const RANGES_THREADS: u32 = 256;
const RASTER_THREADS: u32 = 256;
/// RASTER_BWD_THREADS: raster_bwd's threads each own two pixels of the 256-pixel tile.
const RASTER_BWD_THREADS: u32 = 128;

/// A batch's Gaussians on the device (layouts of `cpu::raster::Gaussians`).
#[derive(Debug, Clone, Copy)]
pub struct GpuGaussians {
    pub means: DevBuf<f32>,
    pub log_scales: DevBuf<f32>,
    pub quats: DevBuf<f32>,
    pub opacity_logits: DevBuf<f32>,
    pub sh: DevBuf<f32>,
}

/// Their gradients, and the densification statistic d_mean2d_norm [B,N].
#[derive(Debug, Clone, Copy)]
pub struct GpuGaussianGrads {
    pub d_means: DevBuf<f32>,
    pub d_log_scales: DevBuf<f32>,
    pub d_quats: DevBuf<f32>,
    pub d_opacity_logits: DevBuf<f32>,
    pub d_sh: DevBuf<f32>,
    pub d_mean2d_norm: DevBuf<f32>,
}

fn check(kernel: &str, what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Cuda(format!("{kernel}: {what} has {got} elements, expected {want}")))
    }
}

fn check_gaussians(kernel: &str, d: &RasterDims, cams: DevBuf<Camera>, g: &GpuGaussians) -> Result<()> {
    let n = d.bn();
    check(kernel, "cams", cams.len(), d.batch)?;
    check(kernel, "means", g.means.len(), 3 * n)?;
    check(kernel, "log_scales", g.log_scales.len(), 3 * n)?;
    check(kernel, "quats", g.quats.len(), 4 * n)?;
    check(kernel, "opacity_logits", g.opacity_logits.len(), n)?;
    check(kernel, "sh", g.sh.len(), 3 * SH_COEFFS * n)?;
    if d.sh_degree > 3 || n > i32::MAX as usize {
        return Err(Error::Cuda(format!("{kernel}: SH degree {} or {n} Gaussians out of range", d.sh_degree)));
    }
    Ok(())
}

fn sh_floats(d: &RasterDims) -> u64 {
    3 * ((d.sh_degree + 1) * (d.sh_degree + 1)) as u64
}

/// splat [BN,12], tiles_touched [BN] from the Gaussians and cameras.
pub fn project_fwd(
    gpu: &Gpu,
    d: &RasterDims,
    cams: DevBuf<Camera>,
    g: &GpuGaussians,
    splat: DevBuf<f32>,
    tiles_touched: DevBuf<i32>,
) -> Result<()> {
    check_gaussians("project_fwd", d, cams, g)?;
    check("project_fwd", "splat", splat.len(), SPLAT * d.bn())?;
    check("project_fwd", "tiles_touched", tiles_touched.len(), d.bn())?;
    let n = d.bn() as u64;
    let cost = Cost { bytes: n * (88 + 4 * sh_floats(d) + 52), flop: n * (250 + 2 * sh_floats(d)) };
    gpu.launch(
        "project_fwd",
        LaunchCfg::per_element(d.bn(), PROJECT_THREADS, cost),
        &[
            cams.into(),
            g.means.into(),
            g.log_scales.into(),
            g.quats.into(),
            g.opacity_logits.into(),
            g.sh.into(),
            (d.bn() as i32).into(),
            (d.gaussians as i32).into(),
            (d.width as i32).into(),
            (d.height as i32).into(),
            (d.sh_degree as i32).into(),
            splat.into(),
            tiles_touched.into(),
        ],
    )
}

/// keys/values [capacity] of every (Gaussian, tile) pair at the scanned offsets; positions past the
/// capacity are dropped (the caller compares the scan's total with the capacity afterwards).
pub fn tile_pairs(gpu: &Gpu, d: &RasterDims, splat: DevBuf<f32>, offsets: DevBuf<i32>, keys: DevBuf<u64>, values: DevBuf<u32>) -> Result<()> {
    check("tile_pairs", "offsets", offsets.len(), d.bn())?;
    check("tile_pairs", "values", values.len(), keys.len())?;
    let n = d.bn() as u64;
    // Pairs written are unknown on the host: the declared bytes count ~3 pairs per Gaussian.
    let cost = Cost { bytes: n * 40 + 3 * n * 12, flop: 3 * n * 4 };
    gpu.launch(
        "tile_pairs",
        LaunchCfg::per_element(d.bn(), PAIRS_THREADS, cost),
        &[
            splat.into(),
            offsets.into(),
            (d.bn() as i32).into(),
            (d.gaussians as i32).into(),
            (d.width as i32).into(),
            (d.height as i32).into(),
            (keys.len() as i32).into(),
            keys.into(),
            values.into(),
        ],
    )
}

/// ranges [B·TT, 2] (start, end) of every (frame, tile) in the sorted keys.
pub fn tile_ranges(gpu: &Gpu, d: &RasterDims, keys: DevBuf<u64>, num_pairs: DevBuf<i32>, ranges: DevBuf<i32>) -> Result<()> {
    let t = d.batch * d.tiles();
    check("tile_ranges", "ranges", ranges.len(), 2 * t)?;
    let log_p = 64 - (keys.len() as u64).leading_zeros() as u64;
    let cost = Cost { bytes: t as u64 * (16 * log_p + 8), flop: t as u64 * 2 * log_p };
    gpu.launch(
        "tile_ranges",
        LaunchCfg::per_element(t, RANGES_THREADS, cost),
        &[keys.into(), num_pairs.into(), (keys.len() as i32).into(), (t as i32).into(), ranges.into()],
    )
}

/// Outputs of raster_fwd: image [B,H,W,3], final_t, depth [B,H,W], n_contrib [B,H,W], and the pieces'
/// buffers (slots of the rasterizer's pair buffers, like the sorted pairs): piece_state [slots, 256, 4], the
/// pixel states at the piece boundaries, and the scratch piece_part [2·slots, 256, 8], with slots =
/// capacity / RASTER_PIECE + 1 (layouts in kernels/raster.cu).
#[derive(Debug, Clone, Copy)]
pub struct GpuRasterOut {
    pub image: DevBuf<f32>,
    pub final_t: DevBuf<f32>,
    pub depth: DevBuf<f32>,
    pub n_contrib: DevBuf<i32>,
    pub piece_state: DevBuf<f32>,
    pub piece_part: DevBuf<f32>,
}

/// Floats of piece_state and piece_part for `capacity` pairs.
pub fn piece_buffer_lens(capacity: usize) -> (usize, usize) {
    let slots = piece_slots(capacity);
    (4 * RASTER_THREADS as usize * slots, 16 * RASTER_THREADS as usize * slots)
}

/// The sorted tile pairs the blending kernels walk: keys and values [capacity], the pair count [1] and
/// ranges [B·TT, 2].
#[derive(Debug, Clone, Copy)]
pub struct GpuPairs {
    pub keys: DevBuf<u64>,
    pub values: DevBuf<u32>,
    pub num_pairs: DevBuf<i32>,
    pub ranges: DevBuf<i32>,
}

/// raster_fwd, then raster_fwd_combine: the images of B frames from the sorted pairs.
pub fn raster_fwd(
    gpu: &Gpu,
    d: &RasterDims,
    splat: DevBuf<f32>,
    pairs: &GpuPairs,
    background: DevBuf<f32>,
    out: &GpuRasterOut,
    pairs_estimate: u64,
) -> Result<()> {
    let px = d.pixels();
    check("raster_fwd", "background", background.len(), 3 * px)?;
    check("raster_fwd", "image", out.image.len(), 3 * px)?;
    for (what, len) in [("final_t", out.final_t.len()), ("depth", out.depth.len()), ("n_contrib", out.n_contrib.len())] {
        check("raster_fwd", what, len, px)?;
    }
    check_pairs("raster_fwd", d, pairs, out)?;
    let capacity = pairs.keys.len();
    let tiles = d.batch * d.tiles();
    let units = (tiles + capacity / RASTER_PIECE) as u32;
    // Pair counts are on the device: the costs count every pair once in raster_fwd and a tenth again in
    // raster_fwd_combine (the pieces where a pixel stops are blended twice).
    let cost = Cost { bytes: 52 * pairs_estimate + 36 * px as u64 + 32 * pairs_estimate, flop: 25 * pairs_estimate * 256 };
    gpu.launch(
        "raster_fwd",
        LaunchCfg { grid: (units, 1, 1), block: (RASTER_THREADS, 1, 1), shared_bytes: 0, cost },
        &[
            splat.into(),
            pairs.values.into(),
            pairs.keys.into(),
            pairs.num_pairs.into(),
            (capacity as i32).into(),
            pairs.ranges.into(),
            (tiles as i32).into(),
            background.into(),
            (d.width as i32).into(),
            (d.height as i32).into(),
            out.image.into(),
            out.final_t.into(),
            out.depth.into(),
            out.n_contrib.into(),
            out.piece_state.into(),
            out.piece_part.into(),
        ],
    )?;
    let cost = Cost { bytes: 48 * px as u64 + 52 * pairs_estimate / 10, flop: 25 * pairs_estimate * 256 / 10 };
    gpu.launch(
        "raster_fwd_combine",
        LaunchCfg { grid: (tiles as u32, 1, 1), block: (RASTER_THREADS, 1, 1), shared_bytes: 0, cost },
        &[
            splat.into(),
            pairs.values.into(),
            (capacity as i32).into(),
            pairs.ranges.into(),
            background.into(),
            (d.width as i32).into(),
            (d.height as i32).into(),
            out.piece_part.into(),
            out.image.into(),
            out.final_t.into(),
            out.depth.into(),
            out.n_contrib.into(),
            out.piece_state.into(),
        ],
    )
}

fn check_pairs(kernel: &str, d: &RasterDims, pairs: &GpuPairs, out: &GpuRasterOut) -> Result<()> {
    let capacity = pairs.keys.len();
    check(kernel, "values", pairs.values.len(), capacity)?;
    check(kernel, "ranges", pairs.ranges.len(), 2 * d.batch * d.tiles())?;
    let (state, part) = piece_buffer_lens(capacity);
    check(kernel, "piece_state", out.piece_state.len(), state)?;
    check(kernel, "piece_part", out.piece_part.len(), part)?;
    if capacity > i32::MAX as usize || pairs.num_pairs.is_empty() {
        return Err(Error::Cuda(format!("{kernel}: {capacity} pairs exceed int indices, or no pair count")));
    }
    Ok(())
}

/// d_splat [BN,9] += the blending's gradients for d_image [B,H,W,3] (zero d_splat first).
#[allow(clippy::too_many_arguments)]
pub fn raster_bwd(
    gpu: &Gpu,
    d: &RasterDims,
    splat: DevBuf<f32>,
    pairs: &GpuPairs,
    background: DevBuf<f32>,
    out: &GpuRasterOut,
    d_image: DevBuf<f32>,
    d_splat: DevBuf<f32>,
    pairs_estimate: u64,
) -> Result<()> {
    check("raster_bwd", "d_image", d_image.len(), 3 * d.pixels())?;
    check("raster_bwd", "d_splat", d_splat.len(), D_SPLAT * d.bn())?;
    check_pairs("raster_bwd", d, pairs, out)?;
    let capacity = pairs.keys.len();
    let tiles = d.batch * d.tiles();
    let pieces = tiles + capacity / RASTER_PIECE;
    let per_piece = 64 * d.pixels() as u64 / tiles.max(1) as u64;
    let cost = Cost {
        bytes: 52 * pairs_estimate + per_piece * (tiles + pairs_estimate as usize / RASTER_PIECE) as u64 + 36 * 4 * pairs_estimate,
        flop: 60 * pairs_estimate * 256,
    };
    gpu.launch(
        "raster_bwd",
        LaunchCfg { grid: (pieces as u32, 1, 1), block: (RASTER_BWD_THREADS, 1, 1), shared_bytes: 0, cost },
        &[
            splat.into(),
            pairs.values.into(),
            pairs.ranges.into(),
            pairs.keys.into(),
            pairs.num_pairs.into(),
            (capacity as i32).into(),
            (tiles as i32).into(),
            background.into(),
            out.image.into(),
            out.final_t.into(),
            out.n_contrib.into(),
            out.piece_state.into(),
            d_image.into(),
            (d.width as i32).into(),
            (d.height as i32).into(),
            d_splat.into(),
        ],
    )
}

/// Gradients of the Gaussians from d_splat; every element of `grads` is written.
pub fn project_bwd(
    gpu: &Gpu,
    d: &RasterDims,
    cams: DevBuf<Camera>,
    g: &GpuGaussians,
    splat: DevBuf<f32>,
    d_splat: DevBuf<f32>,
    grads: &GpuGaussianGrads,
) -> Result<()> {
    check_gaussians("project_bwd", d, cams, g)?;
    let n = d.bn();
    check("project_bwd", "d_splat", d_splat.len(), D_SPLAT * n)?;
    check("project_bwd", "d_means", grads.d_means.len(), 3 * n)?;
    check("project_bwd", "d_log_scales", grads.d_log_scales.len(), 3 * n)?;
    check("project_bwd", "d_quats", grads.d_quats.len(), 4 * n)?;
    check("project_bwd", "d_opacity_logits", grads.d_opacity_logits.len(), n)?;
    check("project_bwd", "d_sh", grads.d_sh.len(), 3 * SH_COEFFS * n)?;
    check("project_bwd", "d_mean2d_norm", grads.d_mean2d_norm.len(), n)?;
    let nn = n as u64;
    let cost = Cost { bytes: nn * (88 + 4 * sh_floats(d) + 84 + 304), flop: nn * (700 + 7 * sh_floats(d)) };
    gpu.launch(
        "project_bwd",
        LaunchCfg::per_element(n, PROJECT_THREADS, cost),
        &[
            cams.into(),
            g.means.into(),
            g.log_scales.into(),
            g.quats.into(),
            g.opacity_logits.into(),
            g.sh.into(),
            splat.into(),
            d_splat.into(),
            (n as i32).into(),
            (d.gaussians as i32).into(),
            (d.width as i32).into(),
            (d.height as i32).into(),
            (d.sh_degree as i32).into(),
            grads.d_means.into(),
            grads.d_log_scales.into(),
            grads.d_quats.into(),
            grads.d_opacity_logits.into(),
            grads.d_sh.into(),
            grads.d_mean2d_norm.into(),
        ],
    )
}
