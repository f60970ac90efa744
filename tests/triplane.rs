//! Triplane features (kernels/triplane.cu, src/cpu/triplane.rs): the CPU backward against f64 central
//! finite differences, and the CUDA kernels against the CPU twin.

mod common;

use common::{gpu, rel_err, upload};
use gensync::cpu::real::convert;
use gensync::cpu::triplane::{
    triplane_bwd, triplane_fwd, triplane_init, TriplaneBox, TRIPLANE_FEATURES, TRIPLANE_FLOATS, TRIPLANE_RES,
};
use gensync::cuda::triplane as cuda;
use gensync::cuda::{elementwise, Arena};
use gensync::rng::Rng;

/// L = Σ r ⊙ f(μ) for fixed random r.
fn loss(means: &[f64], planes: &[f64], bx: &TriplaneBox, r: &[f64]) -> f64 {
    let mut f = vec![0.0; r.len()];
    triplane_fwd(means, planes, bx, &mut f);
    f.iter().zip(r).map(|(a, b)| a * b).sum()
}

/// `n` means inside `bx` whose texel coordinates at both resolutions stay 0.05 away from texel centres,
/// where the bilinear interpolation has its kinks.
fn means_off_texel_lines(rng: &mut Rng, bx: &TriplaneBox, n: usize) -> Vec<f64> {
    let mut out = Vec::new();
    while out.len() < 3 * n {
        let a = out.len() % 3;
        let t = rng.range(0.02, 0.98) as f64;
        let ok = TRIPLANE_RES.iter().all(|&r| {
            let c = t * (r - 1) as f64;
            (c - c.floor()).min(c.ceil() - c) > 0.05
        });
        if ok {
            out.push(bx.lo[a] as f64 + t / bx.inv_extent[a] as f64);
        }
    }
    out
}

/// d_means and d_planes against f64 central differences of L = Σ r ⊙ f(μ). d_planes is checked at every
/// texel the forward touches and at 200 random others (which must be 0). Worst seen: 2.7e-10 (d_planes)
/// and 1.6e-11 (d_means) relative to the largest derivative.
#[test]
fn triplane_bwd_matches_finite_differences() {
    let mut rng = Rng::new(3);
    let bx = TriplaneBox { lo: [-0.3, -0.5, 0.2], inv_extent: [1.0 / 0.6, 1.0 / 1.1, 1.0 / 0.8] };
    let n = 4;
    let mut means = means_off_texel_lines(&mut rng, &bx, n);
    let mut planes: Vec<f64> = convert(&triplane_init(&mut rng));
    let r: Vec<f64> = convert(&rng.vec(n * TRIPLANE_FEATURES, -1.0, 1.0));
    let mut d_planes = vec![0.0; TRIPLANE_FLOATS];
    let mut d_means = vec![0.0; 3 * n];
    triplane_bwd(&means, &planes, &bx, &r, &mut d_planes, &mut d_means);

    let h = 1e-6;
    let fd = |v: &mut [f64], i: usize, f: &dyn Fn(&[f64]) -> f64| {
        let keep = v[i];
        v[i] = keep + h;
        let up = f(v);
        v[i] = keep - h;
        let down = f(v);
        v[i] = keep;
        (up - down) / (2.0 * h)
    };
    let p0 = planes.clone();
    let scale = d_means.iter().fold(1e-12f64, |m, a| m.max(a.abs()));
    let mut worst_mu = 0.0f64;
    for (i, &d) in d_means.iter().enumerate() {
        let num = fd(&mut means, i, &|m| loss(m, &p0, &bx, &r));
        let err = (num - d).abs() / scale;
        assert!(err < 1e-6, "d_means[{i}]: analytic {d} vs finite difference {num}");
        worst_mu = worst_mu.max(err);
    }
    let m0 = means.clone();
    let mut idx: Vec<usize> = (0..TRIPLANE_FLOATS).filter(|&i| d_planes[i] != 0.0).collect();
    assert!(idx.len() > 100, "only {} plane entries have a gradient", idx.len());
    idx.extend((0..200).map(|_| rng.below(TRIPLANE_FLOATS as u64) as usize));
    let scale = d_planes.iter().fold(1e-12f64, |m, a| m.max(a.abs()));
    let mut worst_p = 0.0f64;
    for &i in &idx {
        let num = fd(&mut planes, i, &|p| loss(&m0, p, &bx, &r));
        let err = (num - d_planes[i]).abs() / scale;
        assert!(err < 1e-6, "d_planes[{i}]: analytic {} vs finite difference {num}", d_planes[i]);
        worst_p = worst_p.max(err);
    }
    let checked = idx.len();
    eprintln!("triplane: worst relative FD error d_means {worst_mu:.1e}, d_planes {worst_p:.1e} ({checked} entries)");
}

/// A mean outside the box samples the clamped border and gets no position gradient along that axis.
#[test]
fn clamped_axes_have_no_position_gradient() {
    let mut rng = Rng::new(4);
    let bx = TriplaneBox::from_points(&[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let planes = triplane_init(&mut rng);
    let means = [1.7f32, 0.4, -0.2];
    let mut d_planes = vec![0.0f32; TRIPLANE_FLOATS];
    let mut d_means = [0.0f32; 3];
    triplane_bwd(&means, &planes, &bx, &vec![1.0; TRIPLANE_FEATURES], &mut d_planes, &mut d_means);
    assert_eq!(d_means[0], 0.0);
    assert_eq!(d_means[2], 0.0);
    assert_ne!(d_means[1], 0.0);
    let (mut f_out, mut f_edge) = (vec![0.0f32; TRIPLANE_FEATURES], vec![0.0f32; TRIPLANE_FEATURES]);
    triplane_fwd(&means, &planes, &bx, &mut f_out);
    triplane_fwd(&[1.0, 0.4, 0.0], &planes, &bx, &mut f_edge);
    assert_eq!(f_out, f_edge);
}

/// GPU against the CPU twin on several N (not multiples of the 8 Gaussians per block), with means spread a
/// little beyond the box so some are clamped: features, d_means and d_planes within 1e-5 relative.
/// d_planes is accumulated with atomics, so it is zero-filled first; features and d_means are fresh
/// NaN-poisoned slots.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_matches_cpu_twin() {
    let gpu = gpu();
    for (case, &n) in [1usize, 7, 1000, 50_000, 100_003].iter().enumerate() {
        let mut rng = Rng::new(200 + case as u64);
        let init: Vec<f32> = (0..3 * n.max(2)).map(|_| rng.range(-1.0, 1.0)).collect();
        let bx = TriplaneBox::from_points(&init);
        let means = rng.vec(3 * n, -1.1, 1.1);
        let planes = triplane_init(&mut rng);
        let d_f = rng.vec(n * TRIPLANE_FEATURES, -1.0, 1.0);
        let mut f = vec![0.0f32; n * TRIPLANE_FEATURES];
        triplane_fwd(&means, &planes, &bx, &mut f);
        let mut d_planes = vec![0.0f32; TRIPLANE_FLOATS];
        let mut d_means = vec![0.0f32; 3 * n];
        triplane_bwd(&means, &planes, &bx, &d_f, &mut d_planes, &mut d_means);

        let floats = 2 * TRIPLANE_FLOATS + 2 * f.len() + 2 * means.len();
        let mut arena = Arena::new("test", 4 * floats + 256 * 8).unwrap();
        let gm = upload(&gpu, &mut arena, &means);
        let gp = upload(&gpu, &mut arena, &planes);
        let gf = arena.alloc::<f32>(&gpu, f.len()).unwrap();
        cuda::triplane_fwd(&gpu, gm, gp, &bx, gf).unwrap();
        let e = rel_err(&format!("n={n} features"), &gpu.download(gf).unwrap(), &f);
        assert!(e < 1e-5, "n={n} features: rel err {e}");

        let gdf = upload(&gpu, &mut arena, &d_f);
        let gdp = arena.alloc::<f32>(&gpu, TRIPLANE_FLOATS).unwrap();
        elementwise::fill(&gpu, gdp, 0.0).unwrap();
        let gdm = arena.alloc::<f32>(&gpu, 3 * n).unwrap();
        cuda::triplane_bwd(&gpu, gm, gp, &bx, gdf, gdp, gdm).unwrap();
        let e = rel_err(&format!("n={n} d_means"), &gpu.download(gdm).unwrap(), &d_means);
        assert!(e < 1e-5, "n={n} d_means: rel err {e}");
        let e = rel_err(&format!("n={n} d_planes"), &gpu.download(gdp).unwrap(), &d_planes);
        assert!(e < 1e-5, "n={n} d_planes: rel err {e}");
    }
}
