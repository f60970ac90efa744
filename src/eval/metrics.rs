//! The measures SPEC §8 names, computable with no pretrained network: PSNR (whole image, or outside / inside
//! the lip box), SSIM (the training loss's 11×11 Gaussian-window SSIM), the mouth opening seen in an image
//! (dark pixels in the lip box, measured the same way on ground truth and renders), the Pearson correlation
//! of two opening tracks (sync), and the lag of their cross-correlation peak (offset).
//! LPIPS, FID and SyncNet need weights that cannot be fetched here; `UNAVAILABLE` says so.

use crate::cpu::loss::{loss_fwd, Frames};

/// What the evaluation prints instead of numbers it cannot compute.
pub const UNAVAILABLE: &str =
    "LPIPS, FID and SyncNet confidence need pretrained network weights, which this build does not have: not reported";

/// Luminance (Rec. 601, of u8 RGB scaled to [0, 1]) below which a lip-box pixel counts as mouth opening.
pub const DARK_LUMA: f32 = 0.2;

/// PSNR in dB of two RGB images with values in [0, 1] ([H,W,3] flattened); pixels inside `exclude` (a box
/// x0, y0, x1, y1, half-open) are left out. Infinite for identical images.
pub fn psnr(a: &[f32], b: &[f32], width: usize, exclude: Option<[u32; 4]>) -> f64 {
    assert_eq!(a.len(), b.len(), "psnr: image sizes differ");
    let inside = |k: usize| {
        exclude.is_some_and(|[x0, y0, x1, y1]| {
            let (x, y) = ((k / 3 % width) as u32, (k / 3 / width) as u32);
            x >= x0 && x < x1 && y >= y0 && y < y1
        })
    };
    let (mut se, mut n) = (0.0f64, 0usize);
    for (k, (&x, &y)) in a.iter().zip(b).enumerate() {
        if !inside(k) {
            se += (x as f64 - y as f64).powi(2);
            n += 1;
        }
    }
    10.0 * (1.0 / (se / n.max(1) as f64)).log10()
}

/// PSNR in dB inside a box only (the lip-box PSNR).
pub fn psnr_in_box(a: &[f32], b: &[f32], width: usize, [x0, y0, x1, y1]: [u32; 4]) -> f64 {
    let crop = |img: &[f32]| -> Vec<f32> {
        (y0..y1).flat_map(|y| (x0..x1).flat_map(move |x| (0..3).map(move |c| img[(y as usize * width + x as usize) * 3 + c]))).collect()
    };
    psnr(&crop(a), &crop(b), (x1 - x0) as usize, None)
}

/// Mean SSIM of two RGB images [H,W,3] in [0, 1], exactly the training loss's SSIM term.
pub fn ssim(a: &[f32], b: &[f32], width: usize, height: usize) -> f64 {
    let f = Frames { b: 1, h: height, w: width };
    let mut scratch = vec![0.0f32; 3 * f.values()];
    loss_fwd(f, a, b, &[[0, 0, 0, 0]], &mut scratch).ssim
}

/// Dark pixels in the lip box of a u8 RGB image [H,W,3]: the mouth opening as seen in the image.
pub fn mouth_opening(rgb: &[u8], width: usize, [x0, y0, x1, y1]: [u32; 4]) -> usize {
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (y as usize * width + x as usize) * 3))
        .filter(|&k| {
            let luma = (0.299 * rgb[k] as f32 + 0.587 * rgb[k + 1] as f32 + 0.114 * rgb[k + 2] as f32) / 255.0;
            luma < DARK_LUMA
        })
        .count()
}

/// Pearson correlation of two equally long series (0 when either is constant).
pub fn pearson(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "pearson: series lengths differ");
    let n = a.len() as f64;
    let mean = |s: &[f32]| s.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// The shift (in frames, within ±max_lag) that best aligns `rendered` with `truth`, and the correlation
/// there: positive when the rendered mouth moves later than the truth.
pub fn sync_offset(truth: &[f32], rendered: &[f32], max_lag: usize) -> (i64, f64) {
    assert_eq!(truth.len(), rendered.len(), "sync_offset: series lengths differ");
    let n = truth.len() as i64;
    let mut best = (0i64, f64::MIN);
    for lag in -(max_lag as i64)..=max_lag as i64 {
        // Compare truth[t] with rendered[t + lag] over the overlap.
        let (t0, t1) = ((-lag).max(0), (n - lag).min(n));
        if t1 - t0 < 2 {
            continue;
        }
        let a = &truth[t0 as usize..t1 as usize];
        let b = &rendered[(t0 + lag) as usize..(t1 + lag) as usize];
        let r = pearson(a, b);
        if r > best.1 {
            best = (lag, r);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn psnr_of_known_errors() {
        let a = vec![0.5f32; 4 * 4 * 3];
        let mut b = a.clone();
        b.iter_mut().for_each(|v| *v += 0.1); // MSE 0.01 → 20 dB
        assert!((psnr(&a, &b, 4, None) - 20.0).abs() < 1e-4);
        assert!(psnr(&a, &a, 4, None).is_infinite());
        // An error only inside the box: infinite outside, 20 dB inside.
        let mut c = a.clone();
        for y in 1..3 {
            for x in 1..3 {
                for ch in 0..3 {
                    c[(y * 4 + x) * 3 + ch] += 0.1;
                }
            }
        }
        assert!(psnr(&a, &c, 4, Some([1, 1, 3, 3])).is_infinite());
        assert!((psnr_in_box(&a, &c, 4, [1, 1, 3, 3]) - 20.0).abs() < 1e-4);
    }

    #[test]
    fn ssim_is_one_for_equal_images_and_lower_for_noise() {
        let mut rng = Rng::new(2);
        let a = rng.vec(24 * 20 * 3, 0.0, 1.0);
        assert!((ssim(&a, &a, 24, 20) - 1.0).abs() < 1e-9);
        let b: Vec<f32> = a.iter().map(|v| (v + 0.3 * rng.normal()).clamp(0.0, 1.0)).collect();
        assert!(ssim(&a, &b, 24, 20) < 0.9);
    }

    #[test]
    fn mouth_opening_counts_dark_pixels_in_the_box() {
        let mut img = vec![200u8; 10 * 10 * 3];
        for k in [(5 * 10 + 5) * 3, (6 * 10 + 5) * 3, 0] {
            img[k..k + 3].fill(10);
        }
        assert_eq!(mouth_opening(&img, 10, [4, 4, 8, 8]), 2); // the dark pixel at (0, 0) is outside
    }

    #[test]
    fn offset_of_a_delayed_track() {
        let truth: Vec<f32> = (0..200).map(|t| ((t as f32) * 0.3).sin() + ((t as f32) * 0.071).cos()).collect();
        let delayed: Vec<f32> = (0..200).map(|t| truth[(t as i64 - 3).max(0) as usize]).collect();
        let (lag, r) = sync_offset(&truth, &delayed, 10);
        assert_eq!(lag, 3);
        assert!(r > 0.99);
        assert!((pearson(&truth, &truth) - 1.0).abs() < 1e-12);
        assert_eq!(pearson(&truth, &vec![1.0; 200]), 0.0);
    }
}
