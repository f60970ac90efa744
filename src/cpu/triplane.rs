//! CPU twin of kernels/triplane.cu: the triplane feature f(μ) of SPEC §5, and its backward.
//!
//! Planes xy, xz, yz at two scales (64² and 128²), TRIPLANE_C = 32 channels each, stored in one buffer of
//! TRIPLANE_FLOATS floats: scale-major, then plane, then [R, R, C] (row v, column u, channel) so one texel's 32
//! channels are one 128-byte line. Plane p samples axes (u, v) = (x, y), (x, z), (y, z).
//!
//! A mean μ is normalised by the box (`t = (μ − lo) · inv_extent`, in [0, 1] inside the box), mapped to texel
//! coordinates `c = t·(R − 1)` (texel centres at integers: align_corners = True), clamped to [0, R − 1], and
//! sampled bilinearly from texels i0 = min(floor(c), R − 2) and i0 + 1 with weight f = c − i0. Per scale the
//! three planes' samples are multiplied elementwise; the two scales are concatenated: feature[s·32 + ch].
//! Outside the box the coordinate is clamped and its gradient is 0.

use super::real::Real;
use crate::rng::Rng;

pub const TRIPLANE_C: usize = 32;
pub const TRIPLANE_RES: [usize; 2] = [64, 128];
/// Feature width: channels × scales.
pub const TRIPLANE_FEATURES: usize = TRIPLANE_C * TRIPLANE_RES.len();
/// Floats of all six planes: 3·(64² + 128²)·32 = 1 966 080.
pub const TRIPLANE_FLOATS: usize = 3 * (64 * 64 + 128 * 128) * TRIPLANE_C;
/// Axes (u, v) sampled by planes xy, xz, yz.
pub const PLANE_AXES: [[usize; 2]; 3] = [[0, 1], [0, 2], [1, 2]];

/// First float of plane `p` at scale `s`.
pub fn plane_offset(s: usize, p: usize) -> usize {
    let before: usize = TRIPLANE_RES[..s].iter().map(|r| 3 * r * r * TRIPLANE_C).sum();
    before + p * TRIPLANE_RES[s] * TRIPLANE_RES[s] * TRIPLANE_C
}

/// The normalising box: t = (μ − lo) · inv_extent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TriplaneBox {
    pub lo: [f32; 3],
    pub inv_extent: [f32; 3],
}

impl TriplaneBox {
    /// The bounding box of the initial means [N,3] (an extent below 1e-6 is taken as 1e-6).
    pub fn from_points(means: &[f32]) -> Self {
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for p in means.chunks_exact(3) {
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        if means.is_empty() {
            return TriplaneBox { lo: [0.0; 3], inv_extent: [1.0; 3] };
        }
        TriplaneBox { lo, inv_extent: [0, 1, 2].map(|a| 1.0 / (hi[a] - lo[a]).max(1e-6)) }
    }
}

/// Planes initialised U(0.1, 0.5) (SPEC §5).
pub fn triplane_init(rng: &mut Rng) -> Vec<f32> {
    rng.vec(TRIPLANE_FLOATS, 0.1, 0.5)
}

/// Where one coordinate samples a plane of resolution `res`: first texel, weight of the second, and
/// dc/dμ (0 when clamped).
struct Tap<T> {
    i0: usize,
    f: T,
    dc_dmu: T,
}

fn tap<T: Real>(mu: T, lo: f32, inv_extent: f32, res: usize) -> Tap<T> {
    let scale = T::from_f64((res - 1) as f64);
    let c = (mu - T::from_f64(lo as f64)) * T::from_f64(inv_extent as f64) * scale;
    let inside = c >= T::zero() && c <= scale;
    let c = if c < T::zero() { T::zero() } else if c > scale { scale } else { c };
    let i0 = (c.floor().to_f64() as usize).min(res - 2);
    let dc_dmu = if inside { T::from_f64(inv_extent as f64) * scale } else { T::zero() };
    Tap { i0, f: c - T::from_f64(i0 as f64), dc_dmu }
}

/// Texel indices (00, 10, 01, 11 = (u0,v0), (u1,v0), (u0,v1), (u1,v1)) of channel 0 and bilinear weights.
fn corners<T: Real>(s: usize, p: usize, tu: &Tap<T>, tv: &Tap<T>) -> ([usize; 4], [T; 4]) {
    let (res, base) = (TRIPLANE_RES[s], plane_offset(s, p));
    let at = |u: usize, v: usize| base + (v * res + u) * TRIPLANE_C;
    let (gu, gv) = (T::one() - tu.f, T::one() - tv.f);
    (
        [at(tu.i0, tv.i0), at(tu.i0 + 1, tv.i0), at(tu.i0, tv.i0 + 1), at(tu.i0 + 1, tv.i0 + 1)],
        [gu * gv, tu.f * gv, gu * tv.f, tu.f * tv.f],
    )
}

fn taps<T: Real>(mu: &[T], bx: &TriplaneBox, s: usize, p: usize) -> [Tap<T>; 2] {
    PLANE_AXES[p].map(|a| tap(mu[a], bx.lo[a], bx.inv_extent[a], TRIPLANE_RES[s]))
}

/// features [N,64] from means [N,3] and planes [TRIPLANE_FLOATS].
pub fn triplane_fwd<T: Real>(means: &[T], planes: &[T], bx: &TriplaneBox, features: &mut [T]) {
    let n = means.len() / 3;
    assert_eq!(planes.len(), TRIPLANE_FLOATS, "triplane_fwd: planes");
    assert_eq!(features.len(), n * TRIPLANE_FEATURES, "triplane_fwd: features");
    for g in 0..n {
        let mu = &means[3 * g..3 * g + 3];
        for s in 0..TRIPLANE_RES.len() {
            let samples: [([usize; 4], [T; 4]); 3] = [0, 1, 2].map(|p| {
                let [tu, tv] = taps(mu, bx, s, p);
                corners(s, p, &tu, &tv)
            });
            for ch in 0..TRIPLANE_C {
                let mut prod = T::one();
                for (idx, w) in &samples {
                    prod = prod * bilerp(planes, idx, w, ch);
                }
                features[g * TRIPLANE_FEATURES + s * TRIPLANE_C + ch] = prod;
            }
        }
    }
}

fn bilerp<T: Real>(planes: &[T], idx: &[usize; 4], w: &[T; 4], ch: usize) -> T {
    w[0] * planes[idx[0] + ch] + w[1] * planes[idx[1] + ch] + w[2] * planes[idx[2] + ch] + w[3] * planes[idx[3] + ch]
}

/// From d_features [N,64]: adds into d_planes [TRIPLANE_FLOATS] (accumulated: zero it first) and overwrites
/// d_means [N,3].
pub fn triplane_bwd<T: Real>(
    means: &[T],
    planes: &[T],
    bx: &TriplaneBox,
    d_features: &[T],
    d_planes: &mut [T],
    d_means: &mut [T],
) {
    let n = means.len() / 3;
    assert_eq!(planes.len(), TRIPLANE_FLOATS, "triplane_bwd: planes");
    assert_eq!(d_planes.len(), TRIPLANE_FLOATS, "triplane_bwd: d_planes");
    assert_eq!(d_features.len(), n * TRIPLANE_FEATURES, "triplane_bwd: d_features");
    assert_eq!(d_means.len(), 3 * n, "triplane_bwd: d_means");
    for g in 0..n {
        let mu = &means[3 * g..3 * g + 3];
        let taps_s: [[[Tap<T>; 2]; 3]; 2] = [0, 1].map(|s| [0, 1, 2].map(|p| taps(mu, bx, s, p)));
        let corners_s: [[([usize; 4], [T; 4]); 3]; 2] =
            [0, 1].map(|s| [0, 1, 2].map(|p| corners(s, p, &taps_s[s][p][0], &taps_s[s][p][1])));
        let mut d_mu = [T::zero(); 3];
        for ch in 0..TRIPLANE_C {
            // Per channel, in the kernel's order: scales, then planes xy, xz, yz.
            let mut d_mu_ch = [T::zero(); 3];
            for s in 0..TRIPLANE_RES.len() {
                let (t, c) = (&taps_s[s], &corners_s[s]);
                let v: [T; 3] = [0, 1, 2].map(|p| bilerp(planes, &c[p].0, &c[p].1, ch));
                let d_f = d_features[g * TRIPLANE_FEATURES + s * TRIPLANE_C + ch];
                let d_v = [d_f * (v[1] * v[2]), d_f * (v[0] * v[2]), d_f * (v[0] * v[1])];
                for p in 0..3 {
                    let (idx, w) = &c[p];
                    for k in 0..4 {
                        d_planes[idx[k] + ch] += d_v[p] * w[k];
                    }
                    let q = idx.map(|i| planes[i + ch]);
                    let [tu, tv] = &t[p];
                    let d_fu = d_v[p] * ((T::one() - tv.f) * (q[1] - q[0]) + tv.f * (q[3] - q[2]));
                    let d_fv = d_v[p] * ((T::one() - tu.f) * (q[2] - q[0]) + tu.f * (q[3] - q[1]));
                    let [au, av] = PLANE_AXES[p];
                    d_mu_ch[au] += d_fu * tu.dc_dmu;
                    d_mu_ch[av] += d_fv * tv.dc_dmu;
                }
            }
            for a in 0..3 {
                d_mu[a] += d_mu_ch[a];
            }
        }
        d_means[3 * g..3 * g + 3].copy_from_slice(&d_mu);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_constants_agree() {
        assert_eq!(plane_offset(1, 0), 3 * 64 * 64 * 32);
        assert_eq!(plane_offset(1, 2) + 128 * 128 * 32, TRIPLANE_FLOATS);
    }

    /// Constant planes give the product of the constants whatever the position, clamped or not.
    #[test]
    fn constant_planes_give_the_product() {
        let mut planes = vec![0.0f32; TRIPLANE_FLOATS];
        for s in 0..2 {
            for p in 0..3 {
                let len = 3 * TRIPLANE_RES[s] * TRIPLANE_RES[s] * TRIPLANE_C / 3;
                planes[plane_offset(s, p)..plane_offset(s, p) + len].fill(0.5 + p as f32 * 0.25);
            }
        }
        let bx = TriplaneBox::from_points(&[0.0, 0.0, 0.0, 1.0, 2.0, 4.0]);
        let means = [0.3f32, 1.7, 2.2, -5.0, 9.0, 0.0];
        let mut f = vec![0.0f32; 2 * TRIPLANE_FEATURES];
        triplane_fwd(&means, &planes, &bx, &mut f);
        assert!(f.iter().all(|&v| (v - 0.5 * 0.75 * 1.0).abs() < 1e-6), "{f:?}");
    }
}
