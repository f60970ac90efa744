//! Densification (clone / split / prune by compaction): the rules on hand-made Gaussians, the split
//! samples' distribution, and the CUDA kernels against the CPU twin.

mod common;

use common::{gpu, rel_err, upload};
use gensync::cpu::densify::{densify_accumulate as cpu_accumulate, counter_normal, densify_classify, densify_scatter, Action, Attribute, DensifyRule, Role, SPLIT_SHRINK};
use gensync::cpu::raster::SPLAT;
use gensync::cpu::sort::exclusive_scan;
use gensync::cuda::densify::{densify_accumulate, densify_apply, densify_plan, AttrCopy, DensifyStats};
use gensync::cuda::Arena;
use gensync::rng::Rng;

const RULE: DensifyRule = DensifyRule {
    grad_threshold: 0.001,
    clone_max_scale: 0.03,
    min_opacity: 0.005,
    prune_large: 1,
    max_screen_radius: 20.0,
    max_world_scale: 0.3,
};

#[test]
fn rules_on_hand_made_gaussians() {
    let ln = |s: f32| [s.ln(); 3];
    let act = |keep, clone, children| Action { keep, clone, children };
    let op = 0.0; // opacity 0.5
    // (opacity logit, scale, grad accum, visible, screen radius) → action
    let cases = [
        ((op, 0.01, 0.0, 10.0, 5.0), act(true, false, 0)),  // quiet: kept
        ((op, 0.01, 0.02, 10.0, 5.0), act(true, true, 0)),  // dense and small: cloned
        ((op, 0.1, 0.02, 10.0, 5.0), act(false, false, 2)), // dense and large: split
        ((-8.0, 0.01, 0.02, 10.0, 5.0), act(false, false, 0)), // transparent: gone, clone too
        ((op, 0.01, 0.0, 10.0, 50.0), act(false, false, 0)), // too large on screen: pruned
        ((op, 0.01, 0.02, 10.0, 50.0), act(false, true, 0)), // ... but its clone has no radius yet
        ((op, 0.4, 0.0, 10.0, 5.0), act(false, false, 0)),  // too large in the world
        ((op, 0.4, 0.02, 10.0, 5.0), act(false, false, 2)), // split: children at 0.4/1.6 fit
        ((op, 0.6, 0.02, 10.0, 5.0), act(false, false, 0)), // split: children at 0.6/1.6 still too large
        ((op, 0.01, 0.02, 0.0, 5.0), act(true, true, 0)),   // never visible: accum / max(visible, 1)
    ];
    for (k, ((o, s, g, v, r), want)) in cases.iter().enumerate() {
        assert_eq!(densify_classify(*o, ln(*s), *g, *v, *r, &RULE), *want, "case {k}");
    }
    let early = DensifyRule { prune_large: 0, ..RULE };
    assert_eq!(densify_classify(op, ln(0.01), 0.0, 10.0, 50.0, &early), act(true, false, 0));
}

/// The normal draws are values 2k, 2k+1 of the shared generator, and look normal.
#[test]
fn counter_normals_are_the_shared_generator_and_normal() {
    let mut r = Rng::new(77);
    let (a, b) = (r.next_u64(), r.next_u64());
    let u1 = 1.0 - (a >> 40) as f32 / 16_777_216.0;
    let u2 = (b >> 40) as f32 / 16_777_216.0;
    assert_eq!(counter_normal(77, 0), (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos());
    let z: Vec<f64> = (0..100_000).map(|k| counter_normal(3, k) as f64).collect();
    let mean = z.iter().sum::<f64>() / z.len() as f64;
    let var = z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / z.len() as f64;
    assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.02, "mean {mean}, var {var}");
}

/// Splitting many copies of one rotated anisotropic Gaussian: the children's positions have its covariance,
/// their log-scales shrink by ln 1.6, and their Adam state starts at zero; clones copy everything but it.
#[test]
fn scatter_splits_with_the_gaussian_covariance_and_carries_state() {
    let n = 20_000;
    let scale = [0.2f32, 0.05, 0.01];
    let ang = std::f32::consts::FRAC_PI_4; // half of a 90° turn about z: x ↔ y
    let quat = [(ang).cos(), 0.0, 0.0, (ang).sin()];
    let means: Vec<f32> = (0..n).flat_map(|_| [1.0, 2.0, 3.0]).collect();
    let log_scales: Vec<f32> = (0..n).flat_map(|_| scale.map(f32::ln)).collect();
    let quats: Vec<f32> = (0..n).flat_map(|_| quat).collect();
    let moments: Vec<f32> = (0..n).map(|i| 1.0 + i as f32).collect();
    let mut actions = vec![Action { keep: false, clone: false, children: 2 }; n];
    actions[0] = Action { keep: true, clone: true, children: 0 };
    let mut offsets = vec![0i32; n];
    let counts: Vec<i32> = actions.iter().map(|a| a.count() as i32).collect();
    let total = exclusive_scan(&counts, &mut offsets) as usize;
    let offsets: Vec<usize> = offsets.iter().map(|&o| o as usize).collect();
    let (mut m2, mut s2, mut q2, mut v2) = (vec![0.0; 3 * total], vec![0.0; 3 * total], vec![0.0; 4 * total], vec![9.0; total]);
    let mut attrs = [
        Attribute { src: &means, dst: &mut m2, width: 3, role: Role::Means },
        Attribute { src: &log_scales, dst: &mut s2, width: 3, role: Role::LogScales },
        Attribute { src: &quats, dst: &mut q2, width: 4, role: Role::Param },
        Attribute { src: &moments, dst: &mut v2, width: 1, role: Role::OptimizerState },
    ];
    densify_scatter(&actions, &offsets, &means, &log_scales, &quats, 11, &mut attrs);
    // Gaussian 0: kept with its state, cloned with fresh state.
    assert_eq!((v2[0], v2[1]), (1.0, 0.0));
    assert_eq!(&m2[..6], &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    let children = 2..total;
    assert!(children.clone().all(|k| v2[k] == 0.0 && q2[4 * k..4 * k + 4] == quat));
    assert!(children.clone().all(|k| (s2[3 * k] - (0.2f32 / SPLIT_SHRINK).ln()).abs() < 1e-6));
    for axis in 0..3 {
        let xs: Vec<f64> = children.clone().map(|k| m2[3 * k + axis] as f64).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        // The rotation swaps x and y: world x spreads with scale[1], world y with scale[0].
        let want = [scale[1], scale[0], scale[2]][axis] as f64;
        assert!((mean - [1.0, 2.0, 3.0][axis]).abs() < 3.0 * want / (xs.len() as f64).sqrt() + 1e-6, "axis {axis} mean {mean}");
        assert!((sd / want - 1.0).abs() < 0.03, "axis {axis}: sd {sd}, want {want}");
    }
}

#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_matches_cpu_twin() {
    let gpu = gpu();
    for (case, &n) in [1usize, 1000, 100_003].iter().enumerate() {
        let mut rng = Rng::new(500 + case as u64);
        let opacity = rng.vec(n, -7.0, 3.0);
        let log_scales: Vec<f32> = (0..3 * n).map(|_| rng.range(-6.0, -0.5)).collect();
        let grad_accum = rng.vec(n, 0.0, 0.03);
        let visible: Vec<f32> = (0..n).map(|_| rng.below(12) as f32).collect();
        let max_radius = rng.vec(n, 0.0, 30.0);
        let means = rng.vec(3 * n, -1.0, 1.0);
        let quats = rng.vec(4 * n, -1.0, 1.0);
        let sh = rng.vec(48 * n, -1.0, 1.0);
        let adam_m = rng.vec(48 * n, -1.0, 1.0);
        // CPU twin.
        let actions: Vec<Action> = (0..n)
            .map(|i| densify_classify(opacity[i], log_scales[3 * i..3 * i + 3].try_into().unwrap(), grad_accum[i], visible[i], max_radius[i], &RULE))
            .collect();
        let counts: Vec<i32> = actions.iter().map(|a| a.count() as i32).collect();
        let mut offsets = vec![0i32; n];
        let total = exclusive_scan(&counts, &mut offsets) as usize;
        let offsets_u: Vec<usize> = offsets.iter().map(|&o| o as usize).collect();
        let mut want: Vec<Vec<f32>> = [3, 3, 4, 48, 48].iter().map(|w| vec![0.0; w * total]).collect();
        {
            let [wm, ws, wq, wsh, wam] = &mut want[..] else { unreachable!() };
            let mut attrs = [
                Attribute { src: &means, dst: wm, width: 3, role: Role::Means },
                Attribute { src: &log_scales, dst: ws, width: 3, role: Role::LogScales },
                Attribute { src: &quats, dst: wq, width: 4, role: Role::Param },
                Attribute { src: &sh, dst: wsh, width: 48, role: Role::Param },
                Attribute { src: &adam_m, dst: wam, width: 48, role: Role::OptimizerState },
            ];
            densify_scatter(&actions, &offsets_u, &means, &log_scales, &quats, 99, &mut attrs);
        }
        // GPU.
        let mut arena = Arena::new("persistent", 4 * (120 * n + 120 * total) + (1 << 20)).unwrap();
        let mut transient = Arena::new("transient", 64 * n + (1 << 20)).unwrap();
        let stats = DensifyStats {
            opacity: upload(&gpu, &mut arena, &opacity),
            log_scales: upload(&gpu, &mut arena, &log_scales),
            grad_accum: upload(&gpu, &mut arena, &grad_accum),
            visible: upload(&gpu, &mut arena, &visible),
            max_radius: upload(&gpu, &mut arena, &max_radius),
        };
        let src = [upload(&gpu, &mut arena, &means), stats.log_scales, upload(&gpu, &mut arena, &quats), upload(&gpu, &mut arena, &sh), upload(&gpu, &mut arena, &adam_m)];
        let plan = densify_plan(&gpu, &mut transient, &stats, &RULE).unwrap();
        assert_eq!(plan.new_count, total, "case {case}: new count");
        let roles = [Role::Means, Role::LogScales, Role::Param, Role::Param, Role::OptimizerState];
        let widths = [3, 3, 4, 48, 48];
        let attrs: Vec<AttrCopy> = (0..5)
            .map(|k| AttrCopy { src: src[k], dst: arena.alloc::<f32>(&gpu, widths[k] * total).unwrap(), width: widths[k], role: roles[k] })
            .collect();
        densify_apply(&gpu, &mut transient, &plan, [src[0], src[1], src[2]], 99, &attrs).unwrap();
        for (k, a) in attrs.iter().enumerate() {
            let got = gpu.download(a.dst).unwrap();
            let e = rel_err(&format!("case {case} attribute {k}"), &got, &want[k]);
            assert!(e < 1e-5, "case {case} attribute {k}: rel err {e}");
        }
    }
}

/// The statistics update on random splats, a third of them invisible (radius 0), from non-zero statistics.
#[test]
#[ignore = "needs a CUDA GPU"]
fn accumulate_matches_cpu_twin() {
    let gpu = gpu();
    for (case, &n) in [1usize, 1000, 100_003].iter().enumerate() {
        let mut rng = Rng::new(700 + case as u64);
        let mut splat = rng.vec(SPLAT * n, -1.0, 1.0);
        for i in 0..n {
            let visible = rng.below(3) != 0;
            splat[SPLAT * i + 7] = if visible { rng.range(0.5, 30.0) } else { 0.0 };
            splat[SPLAT * i + 11] = if visible { rng.range(0.5, 30.0) } else { 0.0 };
        }
        let norms = rng.vec(n, 0.0, 0.01);
        let mut want = [rng.vec(n, 0.0, 0.1), (0..n).map(|_| rng.below(50) as f32).collect(), rng.vec(n, 0.0, 20.0)];
        let mut arena = Arena::new("persistent", 4 * (SPLAT + 8) * n + (1 << 16)).unwrap();
        let stats = DensifyStats {
            opacity: upload(&gpu, &mut arena, &norms),
            log_scales: upload(&gpu, &mut arena, &vec![0.0; 3 * n]),
            grad_accum: upload(&gpu, &mut arena, &want[0]),
            visible: upload(&gpu, &mut arena, &want[1]),
            max_radius: upload(&gpu, &mut arena, &want[2]),
        };
        let (splat_d, norms_d) = (upload(&gpu, &mut arena, &splat), upload(&gpu, &mut arena, &norms));
        densify_accumulate(&gpu, splat_d, norms_d, &stats).unwrap();
        let [g, v, r] = &mut want;
        cpu_accumulate(&splat, &norms, g, v, r);
        assert_eq!(gpu.download(stats.grad_accum).unwrap(), want[0], "case {case}: grad_accum");
        assert_eq!(gpu.download(stats.visible).unwrap(), want[1], "case {case}: visible");
        assert_eq!(gpu.download(stats.max_radius).unwrap(), want[2], "case {case}: max_radius");
    }
}
