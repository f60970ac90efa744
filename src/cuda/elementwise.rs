//! Launchers for kernels/elementwise.cu (fill, fill_spans, axpy, scale, unit_from_u8, sum, mean).

use super::{Arg, Cost, DevBuf, Gpu, LaunchCfg};
use crate::error::{Error, Result};

const ELEMENTWISE_THREADS: u32 = 256;
const SUM_THREADS: u32 = 256;
/// Partial sums a reduction needs at most: the caller provides a scratch buffer of this length.
pub const SUM_BLOCKS: usize = 1024;

/// Buffers one `fill_spans` launch takes at most (FILL_SPANS in the kernel).
pub const FILL_SPANS: usize = 6;
/// Elements per thread the fill's grid is sized for.
const FILL_PER_THREAD: usize = 8;

/// x[i] = value
pub fn fill(gpu: &Gpu, x: DevBuf<f32>, value: f32) -> Result<()> {
    fill_spans(gpu, &[x], value)
}

/// x[i] = value for every buffer x of `spans` (at most FILL_SPANS), in one launch.
pub fn fill_spans(gpu: &Gpu, spans: &[DevBuf<f32>], value: f32) -> Result<()> {
    if spans.len() > FILL_SPANS {
        return Err(Error::Cuda(format!("fill: {} buffers, one launch takes at most {FILL_SPANS}", spans.len())));
    }
    let total: usize = spans.iter().map(|x| x.len()).sum();
    if total == 0 {
        return Ok(());
    }
    let mut args = Vec::with_capacity(2 * FILL_SPANS + 1);
    for k in 0..FILL_SPANS {
        let (ptr, n) = spans.get(k).map_or((0, 0), |x| (x.ptr(), x.len()));
        args.extend([Arg::Ptr(ptr), Arg::I64(n as i64)]);
    }
    args.push(value.into());
    let blocks = total.div_ceil(ELEMENTWISE_THREADS as usize * FILL_PER_THREAD) as u32;
    let cost = Cost { bytes: 4 * total as u64, flop: 0 };
    gpu.launch("fill", LaunchCfg::linear(blocks, ELEMENTWISE_THREADS, cost), &args)
}

/// y[i] += a * x[i]
pub fn axpy(gpu: &Gpu, y: DevBuf<f32>, x: DevBuf<f32>, a: f32) -> Result<()> {
    let n = y.len();
    if x.len() != n {
        return Err(Error::Cuda(format!("axpy: y has {n} elements, x {}", x.len())));
    }
    if n == 0 {
        return Ok(());
    }
    let cost = Cost { bytes: 12 * n as u64, flop: 2 * n as u64 };
    gpu.launch(
        "axpy",
        LaunchCfg::per_element(n, ELEMENTWISE_THREADS, cost),
        &[y.into(), x.into(), (n as i64).into(), a.into()],
    )
}

/// x[i] *= a
pub fn scale(gpu: &Gpu, x: DevBuf<f32>, a: f32) -> Result<()> {
    let n = x.len();
    if n == 0 {
        return Ok(());
    }
    let cost = Cost { bytes: 8 * n as u64, flop: n as u64 };
    gpu.launch("scale", LaunchCfg::per_element(n, ELEMENTWISE_THREADS, cost), &[x.into(), (n as i64).into(), a.into()])
}

/// y[i] = x[i] / 255: image bytes to floats in [0, 1].
pub fn unit_from_u8(gpu: &Gpu, y: DevBuf<f32>, x: DevBuf<u8>) -> Result<()> {
    let n = y.len();
    if x.len() != n {
        return Err(Error::Cuda(format!("unit_from_u8: y has {n} elements, x {}", x.len())));
    }
    if n == 0 {
        return Ok(());
    }
    let cost = Cost { bytes: 5 * n as u64, flop: n as u64 };
    gpu.launch("unit_from_u8", LaunchCfg::per_element(n, ELEMENTWISE_THREADS, cost), &[y.into(), x.into(), (n as i64).into()])
}

/// out[0] = Σ x, deterministic. `partials` is scratch of at least SUM_BLOCKS elements.
pub fn sum(gpu: &Gpu, x: DevBuf<f32>, partials: DevBuf<f32>, out: DevBuf<f32>) -> Result<()> {
    reduce(gpu, x, partials, out, 1.0)
}

/// out[0] = Σ x / n (0 for n = 0). `partials` is scratch of at least SUM_BLOCKS elements.
pub fn mean(gpu: &Gpu, x: DevBuf<f32>, partials: DevBuf<f32>, out: DevBuf<f32>) -> Result<()> {
    let n = x.len();
    reduce(gpu, x, partials, out, if n == 0 { 0.0 } else { (1.0 / n as f64) as f32 })
}

fn reduce(gpu: &Gpu, x: DevBuf<f32>, partials: DevBuf<f32>, out: DevBuf<f32>, multiplier: f32) -> Result<()> {
    let n = x.len();
    if partials.len() < SUM_BLOCKS || out.is_empty() {
        return Err(Error::Cuda(format!(
            "sum: needs {SUM_BLOCKS} partials and 1 output, got {} and {}",
            partials.len(),
            out.len()
        )));
    }
    let blocks = (n.div_ceil(SUM_THREADS as usize * 4)).clamp(1, SUM_BLOCKS);
    let cost = Cost { bytes: 4 * n as u64 + 4 * blocks as u64, flop: n as u64 };
    gpu.launch(
        "sum_partial",
        LaunchCfg::linear(blocks as u32, SUM_THREADS, cost),
        &[x.into(), (n as i64).into(), partials.into()],
    )?;
    let cost = Cost { bytes: 4 * blocks as u64 + 4, flop: blocks as u64 };
    gpu.launch(
        "sum_final",
        LaunchCfg::linear(1, SUM_THREADS, cost),
        &[partials.into(), (blocks as i32).into(), out.into(), multiplier.into()],
    )
}
