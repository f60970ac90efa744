//! CPU twin of kernels/loss.cu: the photometric loss of SPEC §7 and its gradient with respect to the render,
//!
//!   L = 0.8·L1 + 0.2·(1 − SSIM) + 0.4·L1_lip
//!
//! over B frames [B,H,W,3] (RGB in [0, 1]).
//! - L1: mean of |render − gt| over all B·H·W·3 values.
//! - SSIM: 11×11 Gaussian window (σ 1.5, separable, normalised to sum 1), per channel, C1 = 0.01²,
//!   C2 = 0.03², 'same'-size maps with zero padding outside the image, mean over all B·H·W·3 values: the
//!   convention of 3DGS's `ssim()` (pytorch-ssim) and fused-ssim.
//! - L1_lip: per frame the mean of |render − gt| over the lip box [x0, x1) × [y0, y1) (clamped to the image;
//!   an empty box counts 0), averaged over the B frames.
//! - d|x|/dx at 0 is taken as 0.
//!
//! The forward also writes `d_stats` [3,B,H,W,3]: dL/dμ_render, dL/dσ²_render and dL/dσ_render,gt of every
//! pixel's window statistics; the backward blurs them with the same window (the window is symmetric, so
//! the transpose of a zero-padded blur is the same blur) and adds the L1 terms:
//!   d_render = G∗d_μ + 2·render·(G∗d_σ²) + gt·(G∗d_σ12)
//!            + 0.8·sign/(B·H·W·3) + 0.4·sign/(3·B·area_b)·[in lip box]
//! Sums over the image accumulate in f64.

use super::real::Real;

/// The 11 taps exp(−(i−5)²/(2·1.5²)) / Σ, i = 0..10 (SSIM_TAPS in kernels/loss.cu).
pub const SSIM_TAPS: [f64; 11] = [
    0.00102838008447911,
    0.007598758135239185,
    0.03600077212843083,
    0.10936068950970002,
    0.2130055377112537,
    0.26601172486179436,
    0.2130055377112537,
    0.10936068950970002,
    0.03600077212843083,
    0.007598758135239185,
    0.00102838008447911,
];
pub const SSIM_C1: f64 = 0.01 * 0.01;
pub const SSIM_C2: f64 = 0.03 * 0.03;
pub const W_L1: f64 = 0.8;
pub const W_SSIM: f64 = 0.2;
pub const W_LIP: f64 = 0.4;

/// B frames of H×W RGB pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frames {
    pub b: usize,
    pub h: usize,
    pub w: usize,
}

impl Frames {
    /// Values per image set: B·H·W·3.
    pub fn values(&self) -> usize {
        self.b * self.h * self.w * 3
    }
}

/// The loss and its parts (each part unweighted: mean L1, mean SSIM, mean lip L1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossParts {
    pub l1: f64,
    pub ssim: f64,
    pub lip: f64,
    pub total: f64,
}

impl LossParts {
    pub fn new(l1: f64, ssim: f64, lip: f64) -> Self {
        LossParts { l1, ssim, lip, total: W_L1 * l1 + W_SSIM * (1.0 - ssim) + W_LIP * lip }
    }
}

/// A lip box clamped to the image: (x0, y0, x1, y1) and its area in pixels.
pub fn clamp_lip_box(bx: [i32; 4], f: Frames) -> ([usize; 4], usize) {
    let cx = |v: i32| v.clamp(0, f.w as i32) as usize;
    let cy = |v: i32| v.clamp(0, f.h as i32) as usize;
    let b = [cx(bx[0]), cy(bx[1]), cx(bx[2]), cy(bx[3])];
    (b, b[2].saturating_sub(b[0]) * b[3].saturating_sub(b[1]))
}

/// 1/(3·B·area): the weight of one value in the lip part (0 for an empty box).
fn lip_weight<T: Real>(area: usize, f: Frames) -> T {
    if area == 0 { T::zero() } else { T::one() / T::from_f64((3 * f.b * area) as f64) }
}

/// The zero-padded separable blur of one H×W channel given by `at(row, col)`: horizontal pass, then
/// vertical, each summing taps 0..10 in order (terms outside the image are zeros and skipped).
fn blur<T: Real>(h: usize, w: usize, at: impl Fn(usize, usize) -> T) -> Vec<T> {
    let g: [T; 11] = SSIM_TAPS.map(T::from_f64);
    let window = |i: usize, n: usize| (0..11).filter(move |&j| i + j >= 5 && i + j - 5 < n);
    let mut horiz = vec![T::zero(); h * w];
    for r in 0..h {
        for c in 0..w {
            let mut acc = T::zero();
            for j in window(c, w) {
                acc += g[j] * at(r, c + j - 5);
            }
            horiz[r * w + c] = acc;
        }
    }
    let mut out = vec![T::zero(); h * w];
    for r in 0..h {
        for c in 0..w {
            let mut acc = T::zero();
            for j in window(r, h) {
                acc += g[j] * horiz[(r + j - 5) * w + c];
            }
            out[r * w + c] = acc;
        }
    }
    out
}

/// The loss of `render` against `gt` (both [B,H,W,3]) with lip boxes [B] (x0, y0, x1, y1); writes d_stats
/// [3,B,H,W,3] for loss_bwd.
pub fn loss_fwd<T: Real>(f: Frames, render: &[T], gt: &[T], lip: &[[i32; 4]], d_stats: &mut [T]) -> LossParts {
    let n = f.values();
    assert!(render.len() == n && gt.len() == n && lip.len() == f.b, "loss_fwd: sizes for {f:?}");
    assert_eq!(d_stats.len(), 3 * n, "loss_fwd: d_stats");
    let (c1, c2, two) = (T::from_f64(SSIM_C1), T::from_f64(SSIM_C2), T::from_f64(2.0));
    let k = T::from_f64(-W_SSIM / n as f64);
    let (mut l1, mut ssim, mut lip_sum) = (0.0f64, 0.0f64, 0.0f64);
    for (b, &lip_b) in lip.iter().enumerate() {
        let ([x0, y0, x1, y1], area) = clamp_lip_box(lip_b, f);
        let mut lip_frame = 0.0f64;
        for ch in 0..3 {
            let at = |img: &[T], r: usize, c: usize| img[((b * f.h + r) * f.w + c) * 3 + ch];
            let mu1 = blur(f.h, f.w, |r, c| at(render, r, c));
            let mu2 = blur(f.h, f.w, |r, c| at(gt, r, c));
            let e11 = blur(f.h, f.w, |r, c| at(render, r, c) * at(render, r, c));
            let e22 = blur(f.h, f.w, |r, c| at(gt, r, c) * at(gt, r, c));
            let e12 = blur(f.h, f.w, |r, c| at(render, r, c) * at(gt, r, c));
            for r in 0..f.h {
                for c in 0..f.w {
                    let p = r * f.w + c;
                    let (m1, m2) = (mu1[p], mu2[p]);
                    let s11 = e11[p] - m1 * m1;
                    let s22 = e22[p] - m2 * m2;
                    let s12 = e12[p] - m1 * m2;
                    let num_mu = two * m1 * m2 + c1;
                    let num_s = two * s12 + c2;
                    let den_mu = m1 * m1 + m2 * m2 + c1;
                    let den_s = s11 + s22 + c2;
                    let den = den_mu * den_s;
                    let s = num_mu * num_s / den;
                    let i = ((b * f.h + r) * f.w + c) * 3 + ch;
                    d_stats[i] = k * (two * (m2 * (num_s - num_mu) + m1 * s * (den_mu - den_s)) / den);
                    d_stats[n + i] = k * (-s / den_s);
                    d_stats[2 * n + i] = k * (two * num_mu / den);
                    ssim += s.to_f64();
                    let diff = (render[i] - gt[i]).abs();
                    l1 += diff.to_f64();
                    if (x0..x1).contains(&c) && (y0..y1).contains(&r) {
                        lip_frame += diff.to_f64();
                    }
                }
            }
        }
        lip_sum += lip_frame * lip_weight::<T>(area, f).to_f64();
    }
    LossParts::new(l1 / n as f64, ssim / n as f64, lip_sum)
}

/// d_render [B,H,W,3] (overwritten) from loss_fwd's d_stats.
pub fn loss_bwd<T: Real>(f: Frames, render: &[T], gt: &[T], lip: &[[i32; 4]], d_stats: &[T], d_render: &mut [T]) {
    let n = f.values();
    assert!(render.len() == n && gt.len() == n && lip.len() == f.b, "loss_bwd: sizes for {f:?}");
    assert!(d_stats.len() == 3 * n && d_render.len() == n, "loss_bwd: d_stats / d_render");
    let (two, w_l1, w_lip_all) = (T::from_f64(2.0), T::from_f64(W_L1 / n as f64), T::from_f64(W_LIP));
    for (b, &lip_b) in lip.iter().enumerate() {
        let ([x0, y0, x1, y1], area) = clamp_lip_box(lip_b, f);
        let w_lip = w_lip_all * lip_weight::<T>(area, f);
        for ch in 0..3 {
            let idx = |r: usize, c: usize| ((b * f.h + r) * f.w + c) * 3 + ch;
            let g = [0, 1, 2].map(|q| blur(f.h, f.w, |r, c| d_stats[q * n + idx(r, c)]));
            for r in 0..f.h {
                for c in 0..f.w {
                    let (p, i) = (r * f.w + c, idx(r, c));
                    let sign = (render[i] - gt[i]).sign();
                    let mut d = g[0][p] + two * render[i] * g[1][p] + gt[i] * g[2][p] + w_l1 * sign;
                    if (x0..x1).contains(&c) && (y0..y1).contains(&r) {
                        d += w_lip * sign;
                    }
                    d_render[i] = d;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_are_the_normalised_gaussian() {
        let g: Vec<f64> = (0..11).map(|i| (-((i as f64 - 5.0).powi(2)) / (2.0 * 1.5 * 1.5)).exp()).collect();
        let s: f64 = g.iter().sum();
        for (a, b) in g.iter().zip(SSIM_TAPS) {
            assert!((a / s - b).abs() < 1e-16);
        }
    }

    /// Identical images: L1 0, SSIM 1 (the zero padding is the same on both sides), loss 0.
    #[test]
    fn identical_images_have_zero_loss() {
        let f = Frames { b: 2, h: 7, w: 9 };
        let img: Vec<f32> = (0..f.values()).map(|i| (i % 13) as f32 / 13.0).collect();
        let mut d_stats = vec![0.0f32; 3 * f.values()];
        let parts = loss_fwd(f, &img, &img, &[[1, 1, 4, 5], [0, 0, 0, 0]], &mut d_stats);
        assert_eq!(parts.l1, 0.0);
        assert!((parts.ssim - 1.0).abs() < 1e-6 && parts.total.abs() < 1e-6, "{parts:?}");
    }

    #[test]
    fn lip_boxes_are_clamped() {
        let f = Frames { b: 1, h: 10, w: 20 };
        assert_eq!(clamp_lip_box([-3, 2, 25, 4], f), ([0, 2, 20, 4], 40));
        assert_eq!(clamp_lip_box([5, 5, 3, 9], f).1, 0);
    }
}
