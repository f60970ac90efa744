//! Launchers for kernels/elementwise.cu (fill, axpy, scale, unit_from_u8, sum, mean).

use super::{Cost, DevBuf, Gpu, LaunchCfg};
use crate::error::{Error, Result};

const ELEMENTWISE_THREADS: u32 = 256;
const SUM_THREADS: u32 = 256;
/// Partial sums a reduction needs at most: the caller provides a scratch buffer of this length.
pub const SUM_BLOCKS: usize = 1024;

/// x[i] = value
pub fn fill(gpu: &Gpu, x: DevBuf<f32>, value: f32) -> Result<()> {
    let n = x.len();
    if n == 0 {
        return Ok(());
    }
    let cost = Cost { bytes: 4 * n as u64, flop: 0 };
    gpu.launch("fill", LaunchCfg::per_element(n, ELEMENTWISE_THREADS, cost), &[x.into(), (n as i64).into(), value.into()])
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
