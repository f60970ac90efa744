//! Elementwise and reduction helpers: CUDA against the CPU twins, on sizes around the block size.

mod common;

use common::{gpu, rel_err};
use gensync::cpu::elementwise as cpu;
use gensync::cuda::elementwise::{self as cuda, SUM_BLOCKS};
use gensync::cuda::Arena;
use gensync::rng::Rng;

const SIZES: [usize; 7] = [1, 31, 255, 256, 257, 100_003, 3_000_001];

#[test]
#[ignore = "needs a CUDA GPU"]
fn fill_axpy_scale_match_cpu() {
    let gpu = gpu();
    for (case, &n) in SIZES.iter().enumerate() {
        let mut rng = Rng::new(case as u64);
        let mut arena = Arena::new("transient", 12 * n + 1024).unwrap();
        let (x, y) = (arena.alloc::<f32>(&gpu, n).unwrap(), arena.alloc::<f32>(&gpu, n).unwrap());
        let (hx, mut hy) = (rng.vec(n, -2.0, 2.0), rng.vec(n, -2.0, 2.0));
        gpu.upload(x, &hx).unwrap();
        gpu.upload(y, &hy).unwrap();
        let a = rng.range(-3.0, 3.0);
        cuda::axpy(&gpu, y, x, a).unwrap();
        cpu::axpy(&mut hy, &hx, a);
        assert!(rel_err(&format!("axpy n={n}"), &gpu.download(y).unwrap(), &hy) < 1e-6);
        cuda::scale(&gpu, y, 0.37).unwrap();
        cpu::scale(&mut hy, 0.37);
        assert!(rel_err(&format!("scale n={n}"), &gpu.download(y).unwrap(), &hy) < 1e-6);
        // The slot is NaN-poisoned at allocation, so a missed element of fill would show.
        let z = arena.alloc::<f32>(&gpu, n).unwrap();
        cuda::fill(&gpu, z, 1.25).unwrap();
        assert!(gpu.download(z).unwrap().iter().all(|&v| v == 1.25), "fill n={n}");
    }
}

/// One launch over six buffers of awkward lengths (one empty) fills each and nothing past it; the slots are
/// NaN-poisoned, so a missed element would show, and a seventh buffer is refused.
#[test]
#[ignore = "needs a CUDA GPU"]
fn fill_spans_fills_every_buffer() {
    let gpu = gpu();
    let lens = [1usize, 257, 0, 100_003, 31, 3_000_001];
    let mut arena = Arena::new("transient", 4 * lens.iter().sum::<usize>() + 4096).unwrap();
    let bufs: Vec<_> = lens.iter().map(|&n| arena.alloc::<f32>(&gpu, n + 1).unwrap()).collect();
    let spans: Vec<_> = bufs.iter().zip(lens).map(|(b, n)| b.slice(0, n)).collect();
    cuda::fill_spans(&gpu, &spans, -0.5).unwrap();
    for (b, n) in bufs.iter().zip(lens) {
        let got = gpu.download(*b).unwrap();
        let mut want = vec![f32::NAN; n];
        cpu::fill(&mut want, -0.5);
        assert_eq!(&got[..n], &want[..], "fill_spans n={n}");
        assert!(got[n].is_nan(), "fill_spans wrote past a span of {n}");
    }
    let seven = [spans.as_slice(), &spans[..1]].concat();
    assert!(cuda::fill_spans(&gpu, &seven, 0.0).is_err());
}

/// Every byte value, then random bytes of awkward lengths; the slot is NaN-poisoned, so a missed element
/// would show.
#[test]
#[ignore = "needs a CUDA GPU"]
fn unit_from_u8_matches_cpu() {
    let gpu = gpu();
    for (case, &n) in [256usize, 257, 100_003].iter().enumerate() {
        let mut rng = Rng::new(90 + case as u64);
        let bytes: Vec<u8> = (0..n).map(|i| if i < 256 { i as u8 } else { rng.below(256) as u8 }).collect();
        let mut arena = Arena::new("transient", 5 * n + 1024).unwrap();
        let (x, y) = (arena.alloc::<u8>(&gpu, n).unwrap(), arena.alloc::<f32>(&gpu, n).unwrap());
        gpu.upload(x, &bytes).unwrap();
        cuda::unit_from_u8(&gpu, y, x).unwrap();
        let mut want = vec![0.0; n];
        cpu::unit_from_u8(&mut want, &bytes);
        assert_eq!(gpu.download(y).unwrap(), want, "n={n}");
    }
}

/// Sums and means of positive values (no cancellation, so the relative error is the accumulation error of
/// the f32 tree against the f64 reference).
#[test]
#[ignore = "needs a CUDA GPU"]
fn sum_and_mean_match_cpu() {
    let gpu = gpu();
    for (case, &n) in SIZES.iter().enumerate() {
        let mut rng = Rng::new(50 + case as u64);
        let mut arena = Arena::new("transient", 4 * n + 4 * SUM_BLOCKS + 2048).unwrap();
        let x = arena.alloc::<f32>(&gpu, n).unwrap();
        let partials = arena.alloc::<f32>(&gpu, SUM_BLOCKS).unwrap();
        let out = arena.alloc::<f32>(&gpu, 1).unwrap();
        let hx = rng.vec(n, 0.0, 1.0);
        gpu.upload(x, &hx).unwrap();
        cuda::sum(&gpu, x, partials, out).unwrap();
        assert!(rel_err(&format!("sum n={n}"), &gpu.download(out).unwrap(), &[cpu::sum(&hx)]) < 1e-6);
        cuda::mean(&gpu, x, partials, out).unwrap();
        assert!(rel_err(&format!("mean n={n}"), &gpu.download(out).unwrap(), &[cpu::mean(&hx)]) < 1e-6);
    }
}
