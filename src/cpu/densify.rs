//! CPU twin of kernels/densify.cu: adaptive density control of the canonical Gaussians (3D Gaussian
//! Splatting's clone / split / prune), as one classification pass, an exclusive scan of the per-Gaussian
//! output counts, and a scatter into new arrays that carries the Adam state along.
//!
//! Per Gaussian i, with g = grad_accum[i] / max(visible[i], 1) (the mean view-space gradient norm) and
//! s = max(exp(log_scales[i])):
//!   - dense = g ≥ grad_threshold; small = s ≤ percent_dense · extent
//!   - clone (dense and small): the original stays and an identical copy is added (fresh Adam state);
//!   - split (dense and large): the original is replaced by SPLIT_CHILDREN samples from its own Gaussian,
//!     log-scales reduced by ln(SPLIT_SHRINK), fresh Adam state;
//!   - prune: any output whose opacity sigmoid(logit) < min_opacity is dropped; with `prune_large`, an
//!     original whose screen radius exceeded max_screen_radius or whose world scale exceeds
//!     max_world_scale is dropped too (new copies have no radius yet, and children are tested on their
//!     shrunk scale).
//! Output order is stable: for each i in order, the original (if kept), then its clone or its children.
//! The split samples are normal draws from the counter-based generator of src/rng.rs, stream `seed`,
//! values 2·(6·i + 3·c + a) and +1 for child c, axis a, so both backends draw the same numbers.

use crate::cpu::raster::quat_to_rot;
use crate::cpu::raster::SPLAT;
use crate::rng::mix;

/// Children of a split Gaussian and the factor their scales shrink by (3DGS: N = 2, 0.8·N).
pub const SPLIT_CHILDREN: usize = 2;
pub const SPLIT_SHRINK: f32 = 1.6;

/// The thresholds of one densification, in the units of SPEC §7.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct DensifyRule {
    pub grad_threshold: f32,
    /// percent_dense · extent: the scale separating clone (small) from split (large).
    pub clone_max_scale: f32,
    pub min_opacity: f32,
    /// 0 or 1: also prune by screen radius and world scale.
    pub prune_large: u32,
    pub max_screen_radius: f32,
    pub max_world_scale: f32,
}

/// What happens to one Gaussian: its outputs are the original (if `keep`), then a copy (if `clone`), then
/// `children` split samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Action {
    pub keep: bool,
    pub clone: bool,
    pub children: usize,
}

impl Action {
    pub fn count(self) -> usize {
        self.keep as usize + self.clone as usize + self.children
    }
    /// The kernel's encoding: bit 0 keep, bit 1 clone, bits 2.. children.
    pub fn code(self) -> i32 {
        self.keep as i32 | (self.clone as i32) << 1 | (self.children as i32) << 2
    }
}

/// Adds one step's view-space gradient norms to the statistics of the Gaussians the step saw (screen radius
/// > 0 in `splat` [N, SPLAT]): grad_accum += d_mean2d_norm, visible += 1, max_radius = max(radius).
pub fn densify_accumulate(splat: &[f32], d_mean2d_norm: &[f32], grad_accum: &mut [f32], visible: &mut [f32], max_radius: &mut [f32]) {
    for (i, sp) in splat.chunks_exact(SPLAT).enumerate() {
        let radius = sp[7].max(sp[11]);
        if radius > 0.0 {
            grad_accum[i] += d_mean2d_norm[i];
            visible[i] += 1.0;
            max_radius[i] = max_radius[i].max(radius);
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The action for one Gaussian, from its opacity logit, log-scales, statistics and the rule.
pub fn densify_classify(opacity_logit: f32, log_scale: [f32; 3], grad_accum: f32, visible: f32, max_radius: f32, r: &DensifyRule) -> Action {
    let grad = grad_accum / visible.max(1.0);
    let scale = log_scale[0].max(log_scale[1]).max(log_scale[2]).exp();
    let opaque = sigmoid(opacity_logit) >= r.min_opacity;
    let too_large = |s: f32, radius: f32| r.prune_large != 0 && (radius > r.max_screen_radius || s > r.max_world_scale);
    let dense = grad >= r.grad_threshold;
    let split = dense && scale > r.clone_max_scale;
    Action {
        keep: !split && opaque && !too_large(scale, max_radius),
        // A new copy has no screen radius yet, so only its opacity and world scale can prune it.
        clone: dense && !split && opaque && !too_large(scale, 0.0),
        children: if split && opaque && !too_large(scale / SPLIT_SHRINK, 0.0) { SPLIT_CHILDREN } else { 0 },
    }
}

/// Normal draw k of stream `seed` (Box–Muller on values 2k and 2k+1 of src/rng.rs's generator), in f32
/// exactly as the kernel computes it.
pub fn counter_normal(seed: u64, k: u64) -> f32 {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let value = |j: u64| mix(seed.wrapping_mul(GOLDEN).wrapping_add((j + 1).wrapping_mul(GOLDEN)));
    let u1 = 1.0 - (value(2 * k) >> 40) as f32 * (1.0 / 16_777_216.0); // (0, 1]
    let u2 = (value(2 * k + 1) >> 40) as f32 * (1.0 / 16_777_216.0);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Child c of Gaussian i: mean + R(q)·(scale ⊙ z) with z the normal draws of (i, c).
pub fn split_child_mean(seed: u64, i: usize, c: usize, mean: [f32; 3], log_scale: [f32; 3], quat: [f32; 4]) -> [f32; 3] {
    let z: [f32; 3] = std::array::from_fn(|a| counter_normal(seed, (6 * i + 3 * c + a) as u64));
    let local: [f32; 3] = std::array::from_fn(|a| log_scale[a].exp() * z[a]);
    let r = rotation(quat);
    std::array::from_fn(|row| mean[row] + r[3 * row] * local[0] + r[3 * row + 1] * local[1] + r[3 * row + 2] * local[2])
}

/// Row-major rotation of the normalised quaternion (w, x, y, z); the identity for a zero quaternion.
fn rotation(q: [f32; 4]) -> [f32; 9] {
    let n = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    if n == 0.0 {
        return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    }
    quat_to_rot(q.map(|v| v / n))
}

/// What an attribute array is, which decides how a split or a new copy treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A parameter copied as is (quaternions, opacity, SH).
    Param,
    /// The means: split children get sampled positions.
    Means,
    /// The log-scales: split children get them reduced by ln(SPLIT_SHRINK).
    LogScales,
    /// Adam moments: copied for a kept original, zero for every new Gaussian.
    OptimizerState,
}

/// One attribute array of the Gaussians: `src` [N, width] in, `dst` [N', width] out.
pub struct Attribute<'a> {
    pub src: &'a [f32],
    pub dst: &'a mut [f32],
    pub width: usize,
    pub role: Role,
}

/// Scatters every attribute of Gaussian i to its outputs at offsets[i] (exclusive scan of the counts).
/// `means`, `log_scales`, `quats` are the source parameter arrays the split samples need.
pub fn densify_scatter(
    actions: &[Action],
    offsets: &[usize],
    means: &[f32],
    log_scales: &[f32],
    quats: &[f32],
    seed: u64,
    attrs: &mut [Attribute],
) {
    for (i, &action) in actions.iter().enumerate() {
        let mut out = offsets[i];
        let child_means: Vec<[f32; 3]> = (0..action.children)
            .map(|c| {
                let row = |x: &[f32], n: usize| -> Vec<f32> { x[i * n..(i + 1) * n].to_vec() };
                let (m, s, q) = (row(means, 3), row(log_scales, 3), row(quats, 4));
                split_child_mean(seed, i, c, m.try_into().unwrap(), s.try_into().unwrap(), q.try_into().unwrap())
            })
            .collect();
        // (is this output a new Gaussian, split child index)
        let outputs = [(false, None)]
            .into_iter()
            .filter(|_| action.keep)
            .chain([(true, None)].into_iter().filter(|_| action.clone))
            .chain((0..action.children).map(|c| (true, Some(c))));
        for (fresh, child) in outputs {
            for a in attrs.iter_mut() {
                let w = a.width;
                let src = &a.src[i * w..(i + 1) * w];
                let dst = &mut a.dst[out * w..(out + 1) * w];
                match (a.role, child) {
                    (Role::OptimizerState, _) if fresh => dst.fill(0.0),
                    (Role::Means, Some(c)) => dst.copy_from_slice(&child_means[c]),
                    (Role::LogScales, Some(_)) => dst.iter_mut().zip(src).for_each(|(d, s)| *d = s - SPLIT_SHRINK.ln()),
                    _ => dst.copy_from_slice(src),
                }
            }
            out += 1;
        }
    }
}
