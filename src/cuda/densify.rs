//! Launchers for kernels/densify.cu: classify every Gaussian, scan the output counts, read the new count
//! back, then scatter every attribute array (parameters and Adam moments) into arrays of the new size.

use super::sort::{exclusive_scan, scan_scratch_len};
use super::{Arena, Cost, DevBuf, Gpu, LaunchCfg};
use crate::cpu::densify::{DensifyRule, Role};
use crate::cpu::raster::SPLAT;
use crate::error::{Error, Result};

const DENSIFY_THREADS: u32 = 256;

/// The per-Gaussian statistics densification reads (all [N]).
#[derive(Debug, Clone, Copy)]
pub struct DensifyStats {
    pub opacity: DevBuf<f32>,
    /// [N, 3]
    pub log_scales: DevBuf<f32>,
    pub grad_accum: DevBuf<f32>,
    pub visible: DevBuf<f32>,
    pub max_radius: DevBuf<f32>,
}

/// The outcome of classification: per-Gaussian codes and output offsets, and the new count.
#[derive(Debug, Clone, Copy)]
pub struct DensifyPlan {
    codes: DevBuf<i32>,
    offsets: DevBuf<i32>,
    pub new_count: usize,
}

/// One attribute array: `src` [N, width] → `dst` [new_count, width].
#[derive(Debug, Clone, Copy)]
pub struct AttrCopy {
    pub src: DevBuf<f32>,
    pub dst: DevBuf<f32>,
    pub width: usize,
    pub role: Role,
}

/// `struct DensifyAttr` of the kernel (24 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AttrEntry {
    src: u64,
    dst: u64,
    width: i32,
    role: i32,
}

/// Adds one step's statistics (CPU twin: `cpu::densify::densify_accumulate`): for every Gaussian with a
/// screen radius in `splat` [N, 12], grad_accum += d_mean2d_norm, visible += 1, max_radius = max.
pub fn densify_accumulate(gpu: &Gpu, splat: DevBuf<f32>, d_mean2d_norm: DevBuf<f32>, s: &DensifyStats) -> Result<()> {
    let n = d_mean2d_norm.len();
    if splat.len() != SPLAT * n || [s.grad_accum.len(), s.visible.len(), s.max_radius.len()] != [n; 3] {
        return Err(Error::Cuda(format!("densify_accumulate: statistics of {n} Gaussians have mismatched lengths")));
    }
    if n == 0 {
        return Ok(());
    }
    let nn = n as u64;
    gpu.launch(
        "densify_accumulate",
        LaunchCfg::per_element(n, DENSIFY_THREADS, Cost { bytes: 36 * nn, flop: 3 * nn }),
        &[splat.into(), d_mean2d_norm.into(), (n as i32).into(), s.grad_accum.into(), s.visible.into(), s.max_radius.into()],
    )
}

/// Classifies every Gaussian and scans the counts (scratch from `transient`); waits for the new count.
pub fn densify_plan(gpu: &Gpu, transient: &mut Arena, s: &DensifyStats, rule: &DensifyRule) -> Result<DensifyPlan> {
    let n = s.opacity.len();
    if [s.grad_accum.len(), s.visible.len(), s.max_radius.len()] != [n; 3] || s.log_scales.len() != 3 * n {
        return Err(Error::Cuda(format!("densify_classify: statistics of {n} Gaussians have mismatched lengths")));
    }
    let counts = transient.alloc::<i32>(gpu, n.max(1))?;
    let codes = transient.alloc::<i32>(gpu, n.max(1))?;
    let offsets = transient.alloc::<i32>(gpu, n)?;
    let sums = transient.alloc::<i32>(gpu, scan_scratch_len(n))?;
    let total = transient.alloc::<i32>(gpu, 1)?;
    if n > 0 {
        let nn = n as u64;
        gpu.launch(
            "densify_classify",
            LaunchCfg::per_element(n, DENSIFY_THREADS, Cost { bytes: 36 * nn, flop: 20 * nn }),
            &[
                s.opacity.into(),
                s.log_scales.into(),
                s.grad_accum.into(),
                s.visible.into(),
                s.max_radius.into(),
                (n as i32).into(),
                rule.grad_threshold.into(),
                rule.clone_max_scale.into(),
                rule.min_opacity.into(),
                (rule.prune_large as i32).into(),
                rule.max_screen_radius.into(),
                rule.max_world_scale.into(),
                counts.into(),
                codes.into(),
            ],
        )?;
    }
    exclusive_scan(gpu, counts.slice(0, n), offsets, sums, total)?;
    let new_count = if n == 0 { 0 } else { gpu.download(total)?[0] as usize };
    Ok(DensifyPlan { codes, offsets, new_count })
}

/// Writes every attribute's new rows. `means`, `log_scales`, `quats` are the source parameters the split
/// samples are drawn from; `seed` selects the draws (src/cpu/densify.rs).
pub fn densify_apply(
    gpu: &Gpu,
    transient: &mut Arena,
    plan: &DensifyPlan,
    [means, log_scales, quats]: [DevBuf<f32>; 3],
    seed: u64,
    attrs: &[AttrCopy],
) -> Result<()> {
    let n = plan.offsets.len();
    let mut entries = Vec::with_capacity(attrs.len());
    let mut bytes_per_row = 0u64;
    for a in attrs {
        if a.src.len() != n * a.width || a.dst.len() != plan.new_count * a.width {
            return Err(Error::Cuda(format!(
                "densify_scatter: attribute of width {} has {} → {} elements for {n} → {} Gaussians",
                a.width,
                a.src.len(),
                a.dst.len(),
                plan.new_count
            )));
        }
        let role = match a.role {
            Role::Param => 0,
            Role::Means => 1,
            Role::LogScales => 2,
            Role::OptimizerState => 3,
        };
        entries.push(AttrEntry { src: a.src.ptr(), dst: a.dst.ptr(), width: a.width as i32, role });
        bytes_per_row += 4 * a.width as u64;
    }
    if n == 0 || entries.is_empty() {
        return Ok(());
    }
    let table = transient.alloc::<AttrEntry>(gpu, entries.len())?;
    gpu.upload(table, &entries)?;
    let cost = Cost { bytes: (8 + bytes_per_row) * n as u64 + bytes_per_row * plan.new_count as u64, flop: 0 };
    gpu.launch(
        "densify_scatter",
        LaunchCfg::per_element(n, DENSIFY_THREADS, cost),
        &[
            plan.codes.into(),
            plan.offsets.into(),
            (n as i32).into(),
            means.into(),
            log_scales.into(),
            quats.into(),
            (seed as i64).into(),
            table.into(),
            (entries.len() as i32).into(),
        ],
    )
}
