//! The canonical stage on the CPU backend: a tiny run whose loss falls, bit-exact resume, and bad input.

mod common;

use gensync::data::synth::{write_corpus, CorpusOptions, Progress};
use gensync::data::synth::dataset_path;
use gensync::data::Dataset;
use gensync::train::canonical::{train_canonical, CanonicalOptions, Identity, ARCHITECTURE};
use gensync::train::canonical_gpu::{DeviceFrames, GpuIdentity};
use gensync::backend::Backend;
use gensync::train::checkpoint::Checkpoint;
use std::path::{Path, PathBuf};

/// Initial Gaussians of the tiny runs (the head mesh thinned), so a step takes about 50 ms on one core.
const POINTS: usize = 400;

/// A fresh folder holding a 1-identity, 1-second, 32-pixel corpus in `corpus/`.
fn tiny_corpus(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gensync-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = CorpusOptions { identities: 1, seconds: 1.0, size: 32, seed: 3, out: dir.join("corpus") };
    write_corpus(&o, &Progress { quiet: true }).unwrap();
    dir
}

fn options(dir: &Path, steps: u32, out: &str) -> CanonicalOptions {
    CanonicalOptions {
        data: dir.join("corpus"),
        out: dir.join(out),
        steps,
        identities: None,
        seed: 5,
        resume: None,
        init_points: Some(POINTS),
        // 30× SPEC §7's rates: the camera extent of the synthetic corpus (≈0.09) makes the decaying rates
        // tiny, and this run has 150 steps rather than 8000.
        lr_scale: 30.0,
        quiet: true,
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn loss_falls_and_the_checkpoint_holds_baked_gaussians() {
    let dir = tiny_corpus("falls");
    let o = options(&dir, 150, "ck.safetensors");
    let report = train_canonical(&o, &Backend::Cpu).unwrap();
    let losses = &report.identities[0].losses;
    assert_eq!(losses.len(), 150);
    let (first, last) = (mean(&losses[..10]), mean(&losses[losses.len() - 10..]));
    eprintln!("loss: first 10 {first:.4}, last 10 {last:.4}");
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(last < 0.8 * first, "loss did not fall: first 10 {first:.4}, last 10 {last:.4}");

    let ck = Checkpoint::load(&o.out).unwrap();
    assert_eq!(ck.metadata["stage"], "canonical");
    assert_eq!(ck.metadata["architecture"], ARCHITECTURE);
    let sh = ck.f32(&o.out, "identity-00.sh", &[POINTS, 16, 3]).unwrap();
    let opacity = ck.f32(&o.out, "identity-00.opacity_logits", &[POINTS]).unwrap();
    assert!(sh.iter().chain(opacity).all(|v| v.is_finite()));
    // F_c learned colours: the baked SH are no longer the initial near-zero grey.
    assert!(sh.iter().any(|v| v.abs() > 0.05), "SH still at their initial values");
    assert_eq!(ck.i64(&o.out, "identity-00.step", &[1]).unwrap(), &[150]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Densification inside training: Gaussians with a large mean view-space gradient are cloned or split
/// (one more Gaussian each), their Adam moments kept and the new ones' zero; training goes on with the new N.
#[test]
fn densify_grows_dense_gaussians_and_carries_adam_state() {
    let dir = tiny_corpus("densify");
    let ds = Dataset::open(&dataset_path(&dir.join("corpus"), 0)).unwrap();
    let mut model = Identity::new(&ds, 0, 1, Some(200)).unwrap();
    for frame in 0..3 {
        model.step(&ds, frame, 30.0);
    }
    assert_eq!(model.len(), 200);
    let moments = model.means.m.clone();
    // Only the first 10 Gaussians look under-reconstructed; the schedule is past its densification start.
    model.stats.grad_accum.fill(0.0);
    model.stats.grad_accum[..10].fill(1.0);
    model.stats.visible[..10].fill(1.0);
    model.step = 1000;
    model.densify(77);
    assert_eq!(model.len(), 210);
    assert!(model.stats.grad_accum.iter().all(|&g| g == 0.0) && model.stats.visible.len() == 210);
    // Gaussian 0 is either kept with its moments and cloned with zero moments, or split into two children
    // with zero moments; every later original keeps its moments.
    let carried = &model.means.m[3 * 210 - 3 * 190..];
    assert_eq!(carried, &moments[3 * 10..]);
    assert!(model.means.m[..6].iter().skip(3).all(|&m| m == 0.0));
    assert!(model.step(&ds, 4, 30.0).is_finite());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Three GPU steps against the CPU path from the same model on the same frames: the losses, then every
/// parameter, the densification statistics and the baked opacity and SH. fp32 twins agree to ~1e-6 per
/// kernel (tests/raster.rs, tests/mlp.rs); three Adam steps at SPEC §7's small rates move the parameters
/// by far less than the 1e-4 allowed.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_steps_match_the_cpu_path() {
    let gpu = common::gpu();
    let dir = tiny_corpus("gpu");
    let ds = Dataset::open(&dataset_path(&dir.join("corpus"), 0)).unwrap();
    let mut cpu = Identity::new(&ds, 0, 1, Some(POINTS)).unwrap();
    let frames = DeviceFrames::upload(&gpu, &ds).unwrap();
    let mut dev = GpuIdentity::upload(&gpu, &cpu, &frames).unwrap();
    let mut want = Vec::new();
    for frame in [0, 7, 3] {
        want.push(cpu.step(&ds, frame, 1.0));
        dev.step(&gpu, &frames, frame, 1.0).unwrap();
    }
    let got = dev.take_losses(&gpu).unwrap();
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(&want) {
        assert!((*g as f64 - w).abs() <= 1e-4 * w.abs(), "GPU loss {g}, CPU {w}");
    }
    cpu.bake();
    let got = dev.download(&gpu).unwrap();
    assert_eq!(got.step, 3);
    assert_models_agree(&got, &cpu, 1e-4);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every tensor of two models within `tol` relative error (the statistics' visibility counts exactly).
fn assert_models_agree(got: &Identity, want: &Identity, tol: f64) {
    assert_eq!(got.len(), want.len(), "Gaussian count");
    let pairs: [(&str, &[f32], &[f32]); 12] = [
        ("means", &got.means.value, &want.means.value),
        ("means.m", &got.means.m, &want.means.m),
        ("means.v", &got.means.v, &want.means.v),
        ("log_scales", &got.log_scales.value, &want.log_scales.value),
        ("log_scales.m", &got.log_scales.m, &want.log_scales.m),
        ("quats", &got.quats.value, &want.quats.value),
        ("triplane", &got.triplane.value, &want.triplane.value),
        ("opacity_logits", &got.opacity_logits, &want.opacity_logits),
        ("sh", &got.sh, &want.sh),
        ("grad_accum", &got.stats.grad_accum, &want.stats.grad_accum),
        ("max_radius", &got.stats.max_radius, &want.stats.max_radius),
        ("fc.0.weight", &got.fc[0].w.value, &want.fc[0].w.value),
    ];
    for (name, g, w) in pairs {
        assert!(common::rel_err(name, g, w) < tol, "{name}");
    }
    assert_eq!(got.stats.visible, want.stats.visible, "visible");
    for (l, (a, b)) in got.fc.iter().zip(&want.fc).enumerate() {
        assert!(common::rel_err(&format!("fc.{l}.weight"), &a.w.value, &b.w.value) < tol);
        assert!(common::rel_err(&format!("fc.{l}.bias"), &a.b.value, &b.b.value) < tol);
    }
}

/// A densification on the device against the CPU's, from the same model and statistics: clones, splits
/// (same random draws) and prunes land in the same places, Adam moments carried; then a step on each.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_densify_matches_the_cpu_path() {
    let gpu = common::gpu();
    let dir = tiny_corpus("gpu-densify");
    let ds = Dataset::open(&dataset_path(&dir.join("corpus"), 0)).unwrap();
    let mut cpu = Identity::new(&ds, 0, 1, Some(POINTS)).unwrap();
    for frame in 0..3 {
        cpu.step(&ds, frame, 30.0);
    }
    // A third of the Gaussians look under-reconstructed, some large on screen; past both schedule marks.
    let n = cpu.len();
    for i in 0..n {
        cpu.stats.grad_accum[i] = if i % 3 == 0 { 0.01 } else { 0.0 };
        cpu.stats.visible[i] = 1.0 + (i % 4) as f32;
        cpu.stats.max_radius[i] = if i % 7 == 0 { 40.0 } else { 2.0 };
    }
    cpu.step = 3500;
    let frames = DeviceFrames::upload(&gpu, &ds).unwrap();
    let mut dev = GpuIdentity::upload(&gpu, &cpu, &frames).unwrap();
    cpu.densify(1234);
    dev.densify(&gpu, 1234).unwrap();
    assert!(cpu.len() != n, "the densification changed nothing");
    cpu.bake();
    assert_models_agree(&dev.download(&gpu).unwrap(), &cpu, 1e-5);
    cpu.step(&ds, 5, 30.0);
    dev.step(&gpu, &frames, 5, 30.0).unwrap();
    cpu.bake();
    assert_models_agree(&dev.download(&gpu).unwrap(), &cpu, 1e-4);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `gensync train` on the GPU: the loss falls as on the CPU, with densification and pruning on the device.
#[test]
#[ignore = "needs a CUDA GPU"]
fn gpu_training_loss_falls() {
    let dir = tiny_corpus("gpu-train");
    let mut o = options(&dir, 1200, "ck.safetensors");
    o.quiet = true;
    let gpu = gensync::cuda::Gpu::for_tests().unwrap();
    let report = train_canonical(&o, &Backend::Cuda(Box::new(gpu))).unwrap();
    let losses = &report.identities[0].losses;
    assert_eq!(losses.len(), 1200);
    let (first, last) = (mean(&losses[..10]), mean(&losses[losses.len() - 10..]));
    eprintln!("GPU loss: first 10 {first:.4}, last 10 {last:.4}, N {}", report.identities[0].gaussians);
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(last < 0.5 * first, "loss did not fall: first 10 {first:.4}, last 10 {last:.4}");
    assert_ne!(report.identities[0].gaussians, POINTS, "no densification happened");
    std::fs::remove_dir_all(dir).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 2k steps in one go and k steps + resume for k give identical checkpoints (every parameter, the Adam
/// moments, the densification statistics, the step), through the command line, on the CPU backend (the
/// GPU's atomics reorder sums, so a GPU run is reproducible only to rounding).
#[test]
fn resume_continues_bit_for_bit() {
    let dir = tiny_corpus("resume");
    let data = dir.join("corpus");
    let (whole, half, resumed) = (dir.join("whole.safetensors"), dir.join("half.safetensors"), dir.join("resumed.safetensors"));
    let common_args = ["--device", "cpu", "train", "--quiet", "--data", s(&data), "--init-points", "300", "--lr-scale", "30", "--seed", "9"];
    let run = |extra: &[&str]| {
        let out = common::gensync(&[&common_args[..], extra].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["--steps", "24", "--out", s(&whole)]);
    run(&["--steps", "12", "--out", s(&half)]);
    run(&["--steps", "24", "--out", s(&resumed), "--resume", s(&half)]);
    let (a, b) = (Checkpoint::load(&whole).unwrap(), Checkpoint::load(&resumed).unwrap());
    assert_eq!(a.tensors.keys().collect::<Vec<_>>(), b.tensors.keys().collect::<Vec<_>>());
    for (name, t) in &a.tensors {
        assert!(b.tensors[name] == *t, "tensor {name} differs after resume");
    }
    assert_eq!(a.metadata, b.metadata);
    assert_ne!(Checkpoint::load(&half).unwrap().tensors["identity-00.means"], a.tensors["identity-00.means"]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Runs the CLI expecting it to fail as bad input (common::assert_input_error) mentioning `needle`, and no
/// file at `out`.
fn fails(args: &[String], needle: &str, out: &Path) {
    let o = common::gensync(&args.iter().map(String::as_str).collect::<Vec<_>>());
    common::assert_input_error(&o, &format!("{args:?}"), needle);
    assert!(!out.exists(), "{args:?} left {} behind", out.display());
}

#[test]
fn bad_input_is_one_line_exit_2_and_no_output() {
    let dir = tiny_corpus("bad");
    let data = dir.join("corpus");
    let out = dir.join("out.safetensors");
    let train = |extra: &[&str]| -> Vec<String> {
        ["train", "--quiet", "--steps", "2", "--init-points", "50", "--out", s(&out)].iter().chain(extra).map(|a| a.to_string()).collect()
    };

    fails(&train(&["--data", s(&dir.join("nowhere"))]), "--data", &out);
    fails(&train(&["--data", s(&data), "--identities", "7"]), "identity 7", &out);
    fails(&train(&["--data", s(&data), "--identities", "x"]), "--identities", &out);
    fails(&train(&["--data", s(&data), "--identities", "0,0"]), "listed twice", &out);
    fails(&train(&["--data", s(&data), "--stage", "joint"]), "--stage", &out);
    let nested = dir.join("no-such-folder/out.safetensors");
    fails(&["train", "--quiet", "--data", s(&data), "--out", s(&nested)].map(String::from), "--out", &nested);
    fails(&["train", "--quiet", "--data", s(&data), "--out", s(&data)].map(String::from), "is a folder", &nested);

    // A good checkpoint, then broken copies of it.
    let good = dir.join("good.safetensors");
    let ok = common::gensync(&["train", "--quiet", "--steps", "2", "--init-points", "50", "--data", s(&data), "--out", s(&good)]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    fails(&train(&["--data", s(&data), "--resume", s(&truncated)]), "truncated.safetensors", &out);

    let mut other = Checkpoint::load(&good).unwrap();
    other.metadata.insert("architecture".into(), "gensync-canonical-0: something else".into());
    let foreign = dir.join("foreign.safetensors");
    other.save(&foreign).unwrap();
    fails(&train(&["--data", s(&data), "--resume", s(&foreign)]), "architecture", &out);

    // Right metadata, wrong shapes (a wider F_c).
    let mut wide = Checkpoint::load(&good).unwrap();
    wide.put_f32("identity-00.fc.0.weight", &[256, 64], vec![0.0; 256 * 64]);
    let wide_path = dir.join("wide.safetensors");
    wide.save(&wide_path).unwrap();
    fails(&train(&["--data", s(&data), "--resume", s(&wide_path)]), "another architecture", &out);

    fails(&train(&["--data", s(&data), "--resume", s(&dir.join("missing.safetensors"))]), "missing.safetensors", &out);
    fails(&train(&["--data", s(&data), "--resume", s(&good), "--lr-scale", "3"]), "--lr-scale", &out);
    std::fs::remove_dir_all(dir).unwrap();
}
