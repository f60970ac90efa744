//! The dense layer (kernels/mlp.cu, src/cpu/mlp.rs): the CPU backward against f64 central finite
//! differences, and the CUDA kernels against the CPU twin.

mod common;

use common::{gpu, rel_err, upload};
use gensync::cpu::mlp::{dense_bwd, dense_fwd, Act, Dense, DenseGrads};
use gensync::cpu::real::convert;
use gensync::cuda::mlp::{
    self as cuda, dense_bwd_scratch_len, dense_gemv_w_blocks, dense_uses_gemv, dense_uses_tensor_cores, dense_w_splits,
    dense_w_tc_splits, DenseBwdInputs,
};
use gensync::cuda::{Arena, Gpu};
use gensync::rng::Rng;

const ACTS: [Act; 3] = [Act::None, Act::Relu, Act::LeakyRelu];

/// L = Σ r ⊙ y for fixed random r: dL/dy = r.
fn loss(s: Dense, x: &[f64], w: &[f64], b: Option<&[f64]>, r: &[f64]) -> f64 {
    let mut y = vec![0.0; s.rows * s.n_out];
    dense_fwd(s, x, w, b, &mut y);
    y.iter().zip(r).map(|(a, b)| a * b).sum()
}

/// Random inputs whose pre-activations all stay at least `margin` from the ReLU kink at 0 (seeds are
/// tried in order until one qualifies), so a finite-difference step never crosses it.
fn inputs_away_from_kink(s: Dense, with_bias: bool, margin: f64) -> (Vec<f64>, Vec<f64>, Option<Vec<f64>>) {
    for seed in 0.. {
        let mut rng = Rng::new(seed);
        let x: Vec<f64> = convert(&rng.vec(s.rows * s.n_in, -1.0, 1.0));
        let w: Vec<f64> = convert(&rng.vec(s.n_out * s.n_in, -1.0, 1.0));
        let b: Option<Vec<f64>> = with_bias.then(|| convert(&rng.vec(s.n_out, -0.5, 0.5)));
        let mut pre = vec![0.0; s.rows * s.n_out];
        dense_fwd(Dense { act: Act::None, ..s }, &x, &w, b.as_deref(), &mut pre);
        if pre.iter().all(|p| p.abs() > margin) {
            return (x, w, b);
        }
    }
    unreachable!()
}

/// Central differences of `f` at every element of `v`, against `analytic`; returns the worst error
/// relative to the largest derivative.
fn check_fd(what: &str, v: &mut [f64], analytic: &[f64], f: &dyn Fn(&[f64]) -> f64) -> f64 {
    let h = 1e-6;
    let scale = analytic.iter().fold(1e-12f64, |m, a| m.max(a.abs()));
    let mut worst = 0.0f64;
    for i in 0..v.len() {
        let keep = v[i];
        v[i] = keep + h;
        let up = f(v);
        v[i] = keep - h;
        let down = f(v);
        v[i] = keep;
        let fd = (up - down) / (2.0 * h);
        let err = (fd - analytic[i]).abs() / scale;
        assert!(err < 1e-7, "{what}[{i}]: analytic {} vs finite difference {fd}", analytic[i]);
        worst = worst.max(err);
    }
    worst
}

/// d_x, d_w, d_b of every activation, with and without bias, against f64 central differences of
/// L = Σ r ⊙ y. The layer is piecewise linear, so the differences are exact up to rounding (worst seen:
/// 3.3e-10 of the largest derivative); the bound 1e-7 leaves room.
#[test]
fn dense_bwd_matches_finite_differences() {
    for act in ACTS {
        for with_bias in [true, false] {
            let s = Dense { rows: 5, n_in: 7, n_out: 6, act };
            let (mut x, mut w, b) = inputs_away_from_kink(s, with_bias, 1e-3);
            let mut b = b;
            let r: Vec<f64> = convert(&Rng::new(99).vec(s.rows * s.n_out, -1.0, 1.0));
            let mut y = vec![0.0; s.rows * s.n_out];
            dense_fwd(s, &x, &w, b.as_deref(), &mut y);
            let (mut d_x, mut d_w, mut d_b) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; s.n_out]);
            let grads = DenseGrads { d_x: &mut d_x, d_w: &mut d_w, d_b: with_bias.then_some(&mut d_b[..]) };
            dense_bwd(s, &x, &w, &y, &r, grads);
            let tag = format!("{act:?} bias {with_bias}");
            let (w0, b0, x0) = (w.clone(), b.clone(), x.clone());
            let ex = check_fd(&format!("{tag} d_x"), &mut x, &d_x, &|v| loss(s, v, &w0, b0.as_deref(), &r));
            let ew = check_fd(&format!("{tag} d_w"), &mut w, &d_w, &|v| loss(s, &x0, v, b0.as_deref(), &r));
            let mut eb = 0.0;
            if let Some(b) = b.as_mut() {
                eb = check_fd(&format!("{tag} d_b"), b, &d_b, &|v| loss(s, &x0, &w0, Some(v), &r));
            }
            eprintln!("{tag}: worst relative FD error d_x {ex:.1e}, d_w {ew:.1e}, d_b {eb:.1e}");
        }
    }
}

/// The tensor-core kernel variants (kernels/mlp.cu, `_tc`) the launchers should pick for `s`, with the
/// reduction: fwd by output width, bwd_x and bwd_w by input width.
fn tc_kernels(s: Dense) -> Vec<&'static str> {
    let fwd = if s.n_out <= 64 { "dense_fwd_tc_n64" } else { "dense_fwd_tc" };
    let (bwd_x, bwd_w) =
        if s.n_in <= 64 { ("dense_bwd_x_tc_i64", "dense_bwd_w_tc_i64") } else { ("dense_bwd_x_tc", "dense_bwd_w_tc") };
    let mut names = vec![fwd, bwd_x, bwd_w, "dense_bwd_w_reduce"];
    names.sort();
    names
}

/// Runs dense_fwd and dense_bwd of shape `s` on the GPU and the CPU twin and checks y, d_x, d_w, d_b within
/// 1e-5 relative. Outputs are fresh (NaN-poisoned) arena slots, so an unwritten element fails the NaN check.
/// With `nan_where_inactive` (ReLU layers), d_y is NaN wherever y = 0: the backward must select 0 there
/// (the NaN policy), or the gradients turn NaN. Returns the names of the kernels that ran, sorted (the GPU's
/// profiler is on and reset here).
fn check_against_twin(gpu: &Gpu, case: usize, s: Dense, with_bias: bool, nan_where_inactive: bool) -> Vec<String> {
    let (rows, n_in, n_out) = (s.rows, s.n_in, s.n_out);
    let mut rng = Rng::new(1000 + case as u64);
    let x = rng.vec(rows * n_in, -1.0, 1.0);
    let w = rng.vec(n_out * n_in, -0.3, 0.3);
    let b = rng.vec(n_out, -0.2, 0.2);
    let mut d_y = rng.vec(rows * n_out, -1.0, 1.0);
    let b_opt = with_bias.then_some(&b[..]);
    let mut y = vec![0.0f32; rows * n_out];
    dense_fwd(s, &x, &w, b_opt, &mut y);
    if nan_where_inactive {
        assert_eq!(s.act, Act::Relu, "NaN d_y is only masked by an inactive ReLU unit");
        for (d, &v) in d_y.iter_mut().zip(&y) {
            if v <= 0.0 {
                *d = f32::NAN;
            }
        }
    }
    let (mut d_x, mut d_w, mut d_b) = (vec![0.0f32; x.len()], vec![0.0f32; w.len()], vec![0.0f32; n_out]);
    let grads = DenseGrads { d_x: &mut d_x, d_w: &mut d_w, d_b: with_bias.then_some(&mut d_b[..]) };
    dense_bwd(s, &x, &w, &y, &d_y, grads);

    gpu.enable_profiler();
    gpu.reset_profile().unwrap();
    let floats = 2 * x.len() + 2 * w.len() + 2 * b.len() + 3 * y.len() + dense_bwd_scratch_len(s);
    let mut arena = Arena::new("test", 4 * floats + 256 * 16).unwrap();
    let (gx, gw, gb) = (upload(gpu, &mut arena, &x), upload(gpu, &mut arena, &w), upload(gpu, &mut arena, &b));
    let gb = with_bias.then_some(gb);
    let gy = arena.alloc::<f32>(gpu, y.len()).unwrap();
    cuda::dense_fwd(gpu, s, gx, gw, gb, gy).unwrap();
    let tag = format!("case {case} {s:?} bias {with_bias}");
    let e = rel_err(&format!("{tag} y"), &gpu.download(gy).unwrap(), &y);
    assert!(e < 1e-5, "{tag} y: rel err {e}");

    // The backward reads the CPU's y, so both sides take the same ReLU branches.
    let inp = DenseBwdInputs { x: gx, w: gw, y: upload(gpu, &mut arena, &y), d_y: upload(gpu, &mut arena, &d_y) };
    let out = cuda::DenseGrads {
        d_x: arena.alloc::<f32>(gpu, x.len()).unwrap(),
        d_w: arena.alloc::<f32>(gpu, w.len()).unwrap(),
        d_b: with_bias.then(|| arena.alloc::<f32>(gpu, n_out).unwrap()),
    };
    let scratch = arena.alloc::<f32>(gpu, dense_bwd_scratch_len(s)).unwrap();
    cuda::dense_bwd(gpu, s, inp, out, scratch).unwrap();
    for (name, buf, want) in [("d_x", out.d_x, &d_x), ("d_w", out.d_w, &d_w)] {
        let e = rel_err(&format!("{tag} {name}"), &gpu.download(buf).unwrap(), want);
        assert!(e < 1e-5, "{tag} {name}: rel err {e}");
    }
    if let Some(gdb) = out.d_b {
        let e = rel_err(&format!("{tag} d_b"), &gpu.download(gdb).unwrap(), &d_b);
        assert!(e < 1e-5, "{tag} d_b: rel err {e}");
    }
    gpu.profile().unwrap().expect("profiler on").kernels.into_keys().collect()
}

/// GPU against the CPU twin: y, d_x, d_w, d_b within 1e-5 relative, on shapes that are and are not
/// multiples of the 128 × 128 tile and the 8-deep k step, including the model's typical layers (F_c 64→128,
/// 128→128 at 50 000 rows; heads 128→48 and 128→1) and LeakyReLU layers; output widths on both sides of the
/// narrow variants' limits (32, 33, 64, 65) so every SIMT dense_fwd / dense_bwd_w variant runs. Shapes the
/// tensor-core rule takes (`dense_uses_tensor_cores`) must run only `_tc` kernels, the others none.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_matches_cpu_twin() {
    let gpu = gpu();
    let shapes: [(usize, usize, usize, Act, bool); 12] = [
        (1, 1, 1, Act::None, true),
        (513, 65, 33, Act::Relu, true),
        (257, 33, 65, Act::LeakyRelu, true),
        (7, 3, 5, Act::Relu, true),
        (129, 64, 128, Act::Relu, true),
        (300, 200, 130, Act::None, false),
        (1000, 128, 48, Act::Relu, true),
        (999, 128, 1, Act::None, true),
        (4099, 29, 32, Act::LeakyRelu, true),
        (20_000, 32, 64, Act::LeakyRelu, false),
        (50_000, 64, 128, Act::Relu, true),
        (50_000, 128, 128, Act::Relu, true),
    ];
    for (case, &(rows, n_in, n_out, act, with_bias)) in shapes.iter().enumerate() {
        let s = Dense { rows, n_in, n_out, act };
        let ran = check_against_twin(&gpu, case, s, with_bias, false);
        let tc = ran.iter().any(|k| k.contains("_tc"));
        assert_eq!(tc, dense_uses_tensor_cores(s), "case {case} {s:?}: kernels {ran:?}");
    }
}

/// The tensor-core (3xTF32) kernels against the CPU twin within 1e-5 relative, on every variant
/// (fwd O > 64 and ≤ 64, bwd_x / bwd_w I > 64 and ≤ 64), awkward row counts (1, 7, 1000, 32 736 + 3: partial
/// row tiles and a partial last row chunk), a k tail (I = 200, 12.5 steps of 16) with a partial second
/// column tile (O = 136), widths that are multiples of 4 but not 8, every activation, with and without bias,
/// and NaN d_y at inactive ReLU units. The profiler shows which kernels ran: exactly the `_tc` variants and
/// the reduction, so a silent fallback to the SIMT kernels fails here.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_tensor_core_kernels_match_cpu_twin() {
    let gpu = gpu();
    let shapes: [(usize, usize, usize, Act, bool); 11] = [
        (1, 128, 128, Act::Relu, true),
        (7, 64, 128, Act::LeakyRelu, true),
        (1000, 128, 128, Act::LeakyRelu, false),
        (1000, 128, 48, Act::Relu, true),
        (32_739, 128, 128, Act::Relu, true),
        (32_739, 64, 128, Act::LeakyRelu, true),
        (4097, 32, 64, Act::LeakyRelu, true),
        (999, 64, 64, Act::None, true),
        (513, 200, 136, Act::Relu, true),
        (77, 36, 44, Act::None, false),
        (2048, 128, 128, Act::Relu, true),
    ];
    for (case, &(rows, n_in, n_out, act, with_bias)) in shapes.iter().enumerate() {
        let s = Dense { rows, n_in, n_out, act };
        assert!(dense_uses_tensor_cores(s), "case {case} {s:?} should take the tensor-core kernels");
        let ran = check_against_twin(&gpu, 100 + case, s, with_bias, act == Act::Relu);
        assert_eq!(ran, tc_kernels(s), "case {case} {s:?}: kernels that ran");
    }
}

/// The tensor-core shape rule covers the model's layers and leaves the rest to SIMT; dense_bwd_w_tc's row
/// chunks cover the rows, number at most 128 (as dense_bwd_w's), give about 264 blocks on large inputs with
/// two or more output tiles, and fit the scratch the callers allocate.
#[test]
fn tensor_core_rule_and_row_chunks() {
    let layer = |n_in, n_out| Dense { rows: 32_768, n_in, n_out, act: Act::Relu };
    for (i, o) in [(64, 128), (128, 128), (128, 48), (32, 64), (64, 64), (200, 136), (36, 44)] {
        assert!(dense_uses_tensor_cores(layer(i, o)), "{i}→{o} should use tensor cores");
    }
    for (i, o) in [(128, 1), (29, 32), (200, 130), (16, 64), (64, 16), (33, 64)] {
        assert!(!dense_uses_tensor_cores(layer(i, o)), "{i}→{o} should stay on the SIMT kernels");
    }
    // 32 768 rows of a 128 × 128 layer: 2 output tiles of 64, 128 chunks of 256 rows, 256 blocks.
    assert_eq!(dense_w_tc_splits(32_768, 2), (256, 128));
    for rows in [0, 1, 7, 63, 64, 65, 1000, 32_736, 32_739, 50_000, 400_000, 4_000_000] {
        for tiles in [1, 2, 4, 8] {
            let (per, splits) = dense_w_tc_splits(rows, tiles);
            assert!(per % 16 == 0 && per >= 64, "rows {rows} tiles {tiles}: {per} rows per chunk");
            assert!(splits * per >= rows && (splits == 0 || (splits - 1) * per < rows), "rows {rows}: {splits}×{per}");
            assert!(splits <= 264usize.div_ceil(tiles).min(128), "rows {rows} tiles {tiles}: {splits} chunks");
            if rows >= 100_000 {
                let want = if tiles == 1 { 120 } else { 240 };
                assert!(splits * tiles >= want, "rows {rows} tiles {tiles}: only {} blocks", splits * tiles);
            }
        }
    }
    for (rows, i, o) in
        [(1, 128, 128), (1000, 128, 48), (32_739, 64, 128), (50_000, 128, 128), (999, 128, 1), (32_736, 128, 1), (1, 4, 1)]
    {
        let s = Dense { rows, n_in: i, n_out: o, act: Act::None };
        let simt = dense_w_splits(rows).1;
        let tiles = i.div_ceil(if i <= 64 { 64 } else { 128 }) * o.div_ceil(64);
        let tc = if dense_uses_tensor_cores(s) { dense_w_tc_splits(rows, tiles).1 } else { 0 };
        let gemv = if dense_uses_gemv(s) { dense_gemv_w_blocks(rows).1 * (i + 1) + 1 } else { 0 };
        assert_eq!(dense_bwd_scratch_len(s), (simt.max(tc) * (o * i + o)).max(gemv), "{s:?}");
    }
}

/// The GEMV rule takes single-output layers with n_in a multiple of 4 (up to 1024) and nothing else;
/// dense_gemv_bwd_w's blocks cover the rows, number at most 256 and take a multiple of 32 rows each.
#[test]
fn gemv_rule_and_row_blocks() {
    let layer = |rows, n_in, n_out| Dense { rows, n_in, n_out, act: Act::None };
    for (r, i) in [(32_736, 128), (1, 4), (31, 1024), (7, 132)] {
        assert!(dense_uses_gemv(layer(r, i, 1)), "{r} × {i}→1 should take the GEMV kernels");
        assert!(!dense_uses_tensor_cores(layer(r, i, 1)));
    }
    for (r, i, o) in [(32_736, 128, 2), (100, 129, 1), (100, 1, 1), (100, 1028, 1), (0, 128, 1), (100, 128, 48)] {
        assert!(!dense_uses_gemv(layer(r, i, o)), "{r} × {i}→{o} should not take the GEMV kernels");
    }
    assert_eq!(dense_gemv_w_blocks(32_736), (128, 256));
    for rows in [1, 31, 32, 33, 1000, 8191, 8192, 8193, 32_737, 77_777, 4_000_000] {
        let (per, blocks) = dense_gemv_w_blocks(rows);
        assert!(per % 32 == 0 && per >= 32, "rows {rows}: {per} rows per block");
        assert!(blocks * per >= rows && (blocks - 1) * per < rows && blocks <= 256, "rows {rows}: {blocks}×{per}");
    }
}

/// The GEMV kernels (kernels/mlp.cu, `dense_gemv_`) against the CPU twin within 1e-5 relative: the opacity
/// head (128 → 1) at 1, 31, 32 736 and 32 737 rows (a partial last warp and block, and 256 dense_gemv_bwd_w
/// blocks whose partials the last block adds), n_in = 4 (one lane per row), 132 (a second float4 for one lane
/// in 32) and 1024 (eight per lane), every activation, with and without bias, NaN d_y at inactive ReLU units.
/// Outputs are NaN-poisoned, so an unwritten element fails; the profiler shows exactly the three GEMV
/// kernels ran (no separate reduction, no fallback to the SIMT kernels).
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_gemv_kernels_match_cpu_twin() {
    let gpu = gpu();
    let shapes: [(usize, usize, Act, bool); 10] = [
        (1, 128, Act::None, true),
        (31, 128, Act::Relu, true),
        (32_736, 128, Act::None, true),
        (32_737, 128, Act::None, true),
        (32_737, 128, Act::Relu, true),
        (1000, 4, Act::LeakyRelu, true),
        (77, 132, Act::None, false),
        (513, 1024, Act::Relu, true),
        (4097, 64, Act::LeakyRelu, false),
        (100_003, 128, Act::LeakyRelu, true),
    ];
    let want = vec!["dense_gemv_bwd_w".to_string(), "dense_gemv_bwd_x".into(), "dense_gemv_fwd".into()];
    for (case, &(rows, n_in, act, with_bias)) in shapes.iter().enumerate() {
        let s = Dense { rows, n_in, n_out: 1, act };
        assert!(dense_uses_gemv(s), "case {case} {s:?} should take the GEMV kernels");
        let ran = check_against_twin(&gpu, 200 + case, s, with_bias, act == Act::Relu);
        assert_eq!(ran, want, "case {case} {s:?}: kernels that ran");
    }
}

/// Two runs of the backward give bit-identical gradients (no float atomics anywhere in it; the GEMV
/// kernels' arrival counter only picks which block adds the partials, not their order): the tensor-core
/// kernels with dense_bwd_w_reduce, the SIMT kernels with it, and the GEMV kernels with their in-kernel
/// reduction (run three times on the same scratch, so the counter's reset between calls is exercised too).
/// The profiler confirms which path each shape took.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_backward_is_deterministic() {
    let gpu = gpu();
    let shapes = [
        (Dense { rows: 77_777, n_in: 128, n_out: 128, act: Act::Relu }, "dense_bwd_w_tc"),
        (Dense { rows: 20_001, n_in: 29, n_out: 33, act: Act::LeakyRelu }, "dense_bwd_w_n64"),
        (Dense { rows: 77_777, n_in: 128, n_out: 1, act: Act::None }, "dense_gemv_bwd_w"),
    ];
    for (s, kernel) in shapes {
        let (mi, mo, oi) = (s.rows * s.n_in, s.rows * s.n_out, s.n_out * s.n_in);
        let mut rng = Rng::new(7);
        let floats = 2 * mi + 2 * mo + oi + dense_bwd_scratch_len(s) + 3 * (mi + oi + s.n_out);
        let mut arena = Arena::new("test", 4 * floats + 16 * 256).unwrap();
        let x = upload(&gpu, &mut arena, &rng.vec(mi, -1.0, 1.0));
        let w = upload(&gpu, &mut arena, &rng.vec(oi, -0.3, 0.3));
        let y = upload(&gpu, &mut arena, &rng.vec(mo, -1.0, 1.0));
        let d_y = upload(&gpu, &mut arena, &rng.vec(mo, -1.0, 1.0));
        let scratch = arena.alloc::<f32>(&gpu, dense_bwd_scratch_len(s)).unwrap();
        gpu.enable_profiler();
        gpu.reset_profile().unwrap();
        let mut runs = Vec::new();
        for _ in 0..3 {
            let out = cuda::DenseGrads {
                d_x: arena.alloc::<f32>(&gpu, mi).unwrap(),
                d_w: arena.alloc::<f32>(&gpu, oi).unwrap(),
                d_b: Some(arena.alloc::<f32>(&gpu, s.n_out).unwrap()),
            };
            cuda::dense_bwd(&gpu, s, DenseBwdInputs { x, w, y, d_y }, out, scratch).unwrap();
            runs.push([out.d_x, out.d_w, out.d_b.unwrap()].map(|b| gpu.download(b).unwrap()));
        }
        let ran: Vec<String> = gpu.profile().unwrap().expect("profiler on").kernels.into_keys().collect();
        assert!(ran.iter().any(|k| k == kernel), "{s:?}: kernels {ran:?}, want {kernel}");
        assert!(runs[0] == runs[1] && runs[1] == runs[2], "dense_bwd of {s:?} is not deterministic");
    }
}
