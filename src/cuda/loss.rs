//! Launchers for kernels/loss.cu: 0.8·L1 + 0.2·(1 − SSIM) + 0.4·L1_lip over B frames and its gradient (CPU
//! twin: src/cpu/loss.rs). The per-block partial sums are reduced by elementwise.cu's deterministic sum.

use super::elementwise::{sum, SUM_BLOCKS};
use super::{Cost, DevBuf, Gpu, LaunchCfg};
use crate::cpu::loss::{Frames, W_L1, W_SSIM};
use crate::error::{Error, Result};

/// LOSS_TILE and LOSS_THREADS in the kernel: one 16×16 pixel tile per block.
const LOSS_TILE: usize = 16;
const LOSS_THREADS: u32 = 256;

fn grid(f: Frames) -> (u32, u32, u32) {
    (f.w.div_ceil(LOSS_TILE) as u32, f.h.div_ceil(LOSS_TILE) as u32, f.b as u32)
}

fn blocks(f: Frames) -> usize {
    let (x, y, z) = grid(f);
    x as usize * y as usize * z as usize
}

/// Floats of scratch loss_fwd and loss_bwd share: d_stats [3,B,H,W,3], the block partials [3, blocks] and the
/// reduction's SUM_BLOCKS partials. loss_bwd reads what loss_fwd left there.
pub fn loss_scratch_len(f: Frames) -> usize {
    3 * f.values() + 3 * blocks(f) + SUM_BLOCKS
}

/// The loss's device buffers: render and gt [B,H,W,3], lip boxes [B,4] (x0, y0, x1, y1), scratch.
#[derive(Debug, Clone, Copy)]
pub struct LossInputs {
    pub render: DevBuf<f32>,
    pub gt: DevBuf<f32>,
    pub lip: DevBuf<i32>,
    pub scratch: DevBuf<f32>,
}

fn check(what: &str, f: Frames, inp: &LossInputs) -> Result<()> {
    let n = f.values();
    if f.b > 65_535 || f.h.div_ceil(LOSS_TILE) > 65_535 || n > i32::MAX as usize / 3 {
        return Err(Error::Cuda(format!("{what}: {f:?} is beyond one launch")));
    }
    let need = loss_scratch_len(f);
    if inp.render.len() != n || inp.gt.len() != n || inp.lip.len() != 4 * f.b || inp.scratch.len() < need {
        return Err(Error::Cuda(format!(
            "{what}: {f:?} needs render and gt of {n}, lip of {}, scratch of {need}; got {}, {}, {}, {}",
            4 * f.b,
            inp.render.len(),
            inp.gt.len(),
            inp.lip.len(),
            inp.scratch.len()
        )));
    }
    Ok(())
}

/// parts [4] = (mean L1, mean SSIM, lip L1, loss); leaves the SSIM statistics' gradients in the scratch for
/// loss_bwd. Nothing is synchronized: download `parts` to read them.
pub fn loss_fwd(gpu: &Gpu, f: Frames, inp: LossInputs, parts: DevBuf<f32>) -> Result<()> {
    check("loss_fwd", f, &inp)?;
    if parts.len() != 4 {
        return Err(Error::Cuda(format!("loss_fwd: parts has {} elements, needs 4", parts.len())));
    }
    let (n, nb) = (f.values(), blocks(f));
    if n == 0 {
        return Err(Error::Cuda(format!("loss_fwd: no pixels in {f:?}")));
    }
    let d_stats = inp.scratch.slice(0, 3 * n);
    let partials = inp.scratch.slice(3 * n, 3 * nb);
    let sum_scratch = inp.scratch.slice(3 * n + 3 * nb, SUM_BLOCKS);
    let nu = n as u64;
    let cost = Cost { bytes: 20 * nu + 12 * nb as u64, flop: 310 * nu };
    let cfg = LaunchCfg { grid: grid(f), block: (LOSS_THREADS, 1, 1), shared_bytes: 0, cost };
    gpu.launch(
        "loss_fwd",
        cfg,
        &[
            inp.render.into(),
            inp.gt.into(),
            inp.lip.into(),
            (f.b as i32).into(),
            (f.h as i32).into(),
            (f.w as i32).into(),
            ((1.0 / n as f64) as f32).into(),
            ((-W_SSIM / n as f64) as f32).into(),
            d_stats.into(),
            partials.into(),
        ],
    )?;
    for k in 0..3 {
        sum(gpu, partials.slice(k * nb, nb), sum_scratch, parts.slice(k, 1))?;
    }
    gpu.launch("loss_combine", LaunchCfg::linear(1, 1, Cost { bytes: 28, flop: 6 }), &[parts.into()])
}

/// d_render [B,H,W,3] (overwritten) from the statistics loss_fwd left in the same scratch.
pub fn loss_bwd(gpu: &Gpu, f: Frames, inp: LossInputs, d_render: DevBuf<f32>) -> Result<()> {
    check("loss_bwd", f, &inp)?;
    let n = f.values();
    if d_render.len() != n {
        return Err(Error::Cuda(format!("loss_bwd: d_render has {} elements, {f:?} needs {n}", d_render.len())));
    }
    if n == 0 {
        return Ok(());
    }
    let nu = n as u64;
    let cost = Cost { bytes: 24 * nu, flop: 200 * nu };
    let cfg = LaunchCfg { grid: grid(f), block: (LOSS_THREADS, 1, 1), shared_bytes: 0, cost };
    gpu.launch(
        "loss_bwd",
        cfg,
        &[
            inp.render.into(),
            inp.gt.into(),
            inp.lip.into(),
            inp.scratch.slice(0, 3 * n).into(),
            (f.b as i32).into(),
            (f.h as i32).into(),
            (f.w as i32).into(),
            ((W_L1 / n as f64) as f32).into(),
            d_render.into(),
        ],
    )
}
