//! The photometric loss (kernels/loss.cu, src/cpu/loss.rs): the CPU gradient against f64 central finite
//! differences, the SSIM against a direct 2-D window sum, and the CUDA kernels against the CPU twin.

mod common;

use common::{gpu, rel_err, upload};
use gensync::cpu::loss::{loss_bwd, loss_fwd, Frames, LossParts, SSIM_C1, SSIM_C2, SSIM_TAPS};
use gensync::cpu::real::convert;
use gensync::cuda::loss::{self as cuda, loss_scratch_len, LossInputs};
use gensync::cuda::Arena;
use gensync::rng::Rng;

/// gt uniform in [0.1, 0.9], render = gt ± [0.05, 0.1] (random sign): |render − gt| stays away from the L1
/// kink at 0 under a finite-difference step.
fn images(rng: &mut Rng, f: Frames) -> (Vec<f32>, Vec<f32>) {
    let gt = rng.vec(f.values(), 0.1, 0.9);
    let render = gt
        .iter()
        .map(|&g| {
            let d = rng.range(0.05, 0.1);
            if rng.uniform() < 0.5 { g - d } else { g + d }
        })
        .collect();
    (render, gt)
}

fn total(f: Frames, render: &[f64], gt: &[f64], lip: &[[i32; 4]]) -> f64 {
    let mut d_stats = vec![0.0; 3 * f.values()];
    loss_fwd(f, render, gt, lip, &mut d_stats).total
}

/// d_render against f64 central differences of the whole loss at every value, on frames smaller and larger
/// than the 11-pixel window in odd sizes, with one lip box inside and one cut by the border. Worst seen:
/// 6.5e-8 relative to the largest derivative (rounding of a loss of ~0.1 over a step of 1e-6, against
/// derivatives of ~1e-3).
#[test]
fn loss_bwd_matches_finite_differences() {
    let f = Frames { b: 2, h: 13, w: 17 };
    let lip = [[3, 4, 11, 9], [-2, 8, 5, 20]];
    let mut rng = Rng::new(5);
    let (r32, g32) = images(&mut rng, f);
    let (mut render, gt): (Vec<f64>, Vec<f64>) = (convert(&r32), convert(&g32));
    let mut d_stats = vec![0.0; 3 * f.values()];
    loss_fwd(f, &render, &gt, &lip, &mut d_stats);
    let mut d_render = vec![0.0; f.values()];
    loss_bwd(f, &render, &gt, &lip, &d_stats, &mut d_render);
    let h = 1e-6;
    let scale = d_render.iter().fold(1e-12f64, |m, a| m.max(a.abs()));
    let mut worst = 0.0f64;
    for i in 0..f.values() {
        let keep = render[i];
        render[i] = keep + h;
        let up = total(f, &render, &gt, &lip);
        render[i] = keep - h;
        let down = total(f, &render, &gt, &lip);
        render[i] = keep;
        let fd = (up - down) / (2.0 * h);
        let err = (fd - d_render[i]).abs() / scale;
        assert!(err < 1e-6, "d_render[{i}]: analytic {} vs finite difference {fd}", d_render[i]);
        worst = worst.max(err);
    }
    eprintln!("loss: worst relative FD error d_render {worst:.1e} over {} values", f.values());
}

/// The separable, zero-padded SSIM equals the direct 11×11 window sum (3DGS's conv2d with padding 5).
#[test]
fn ssim_matches_direct_window_sum() {
    let f = Frames { b: 1, h: 9, w: 14 };
    let mut rng = Rng::new(6);
    let (r32, g32) = images(&mut rng, f);
    let (x, y): (Vec<f64>, Vec<f64>) = (convert(&r32), convert(&g32));
    let mut d_stats = vec![0.0; 3 * f.values()];
    let parts = loss_fwd(f, &x, &y, &[[0, 0, 0, 0]], &mut d_stats);
    let mut sum = 0.0;
    for ch in 0..3 {
        for r in 0..f.h as i64 {
            for c in 0..f.w as i64 {
                let mut m = [0.0f64; 5];
                for dy in -5..=5i64 {
                    for dx in -5..=5i64 {
                        let (rr, cc) = (r + dy, c + dx);
                        if rr < 0 || cc < 0 || rr >= f.h as i64 || cc >= f.w as i64 {
                            continue;
                        }
                        let g = SSIM_TAPS[(dy + 5) as usize] * SSIM_TAPS[(dx + 5) as usize];
                        let i = ((rr as usize) * f.w + cc as usize) * 3 + ch;
                        for (q, v) in [x[i], y[i], x[i] * x[i], y[i] * y[i], x[i] * y[i]].iter().enumerate() {
                            m[q] += g * v;
                        }
                    }
                }
                let (v1, v2, cov) = (m[2] - m[0] * m[0], m[3] - m[1] * m[1], m[4] - m[0] * m[1]);
                sum += (2.0 * m[0] * m[1] + SSIM_C1) * (2.0 * cov + SSIM_C2)
                    / ((m[0] * m[0] + m[1] * m[1] + SSIM_C1) * (v1 + v2 + SSIM_C2));
            }
        }
    }
    let direct = sum / f.values() as f64;
    assert!((parts.ssim - direct).abs() < 1e-12, "separable {} vs direct {direct}", parts.ssim);
    assert_eq!(parts, LossParts::new(parts.l1, parts.ssim, 0.0));
}

/// GPU against the CPU twin: the four parts and d_render within 1e-5 relative, on frame sizes that are
/// and are not multiples of the 16×16 tile, with lip boxes inside, cut by the border and empty. The scratch
/// and the outputs are fresh NaN-poisoned slots.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_matches_cpu_twin() {
    let gpu = gpu();
    let cases = [
        Frames { b: 1, h: 16, w: 16 },
        Frames { b: 2, h: 37, w: 53 },
        Frames { b: 3, h: 5, w: 70 },
        Frames { b: 8, h: 130, w: 77 },
        Frames { b: 1, h: 512, w: 512 },
    ];
    for (case, &f) in cases.iter().enumerate() {
        let mut rng = Rng::new(300 + case as u64);
        let (render, gt) = images(&mut rng, f);
        let lip: Vec<[i32; 4]> = (0..f.b)
            .map(|b| match b % 3 {
                0 => [f.w as i32 / 4, f.h as i32 / 2, 3 * f.w as i32 / 4, 3 * f.h as i32 / 4],
                1 => [-5, f.h as i32 - 3, 7, f.h as i32 + 9],
                _ => [4, 4, 4, 9],
            })
            .collect();
        let mut d_stats = vec![0.0f32; 3 * f.values()];
        let parts = loss_fwd(f, &render, &gt, &lip, &mut d_stats);
        let mut d_render = vec![0.0f32; f.values()];
        loss_bwd(f, &render, &gt, &lip, &d_stats, &mut d_render);

        let mut arena = Arena::new("test", 4 * (4 * f.values() + loss_scratch_len(f) + 4 * f.b + 4) + 256 * 8).unwrap();
        let inp = LossInputs {
            render: upload(&gpu, &mut arena, &render),
            gt: upload(&gpu, &mut arena, &gt),
            lip: upload(&gpu, &mut arena, &lip.concat()),
            scratch: arena.alloc::<f32>(&gpu, loss_scratch_len(f)).unwrap(),
        };
        let gparts = arena.alloc::<f32>(&gpu, 4).unwrap();
        cuda::loss_fwd(&gpu, f, inp, gparts).unwrap();
        let want = [parts.l1, parts.ssim, parts.lip, parts.total].map(|v| v as f32);
        let e = rel_err(&format!("{f:?} parts"), &gpu.download(gparts).unwrap(), &want);
        assert!(e < 1e-5, "{f:?} parts: rel err {e}");
        let gd = arena.alloc::<f32>(&gpu, f.values()).unwrap();
        cuda::loss_bwd(&gpu, f, inp, gd).unwrap();
        let e = rel_err(&format!("{f:?} d_render"), &gpu.download(gd).unwrap(), &d_render);
        assert!(e < 1e-5, "{f:?} d_render: rel err {e}");
    }
}
