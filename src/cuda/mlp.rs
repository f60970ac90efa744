//! Launchers for kernels/mlp.cu: the dense layer y = act(x·wᵀ + b) forward and backward (CPU twin:
//! src/cpu/mlp.rs, same names).

use super::{Arg, Cost, DevBuf, Gpu, LaunchCfg};
use crate::cpu::mlp::Dense;
use crate::error::{Error, Result};

/// DENSE_THREADS and DENSE_BK in the kernel: 256 threads own a 128 × 128 tile of the output (narrower on
/// the output side for narrow layers, see `narrow`).
const DENSE_THREADS: u32 = 256;
const DENSE_TILE: usize = 128;
const DENSE_BK: usize = 8;
const DENSE_REDUCE_THREADS: u32 = 256;
/// dense_bwd_w cuts the rows into at most this many chunks (about one wave of blocks on an H100 for a
/// 128 × 128 weight), each chunk a multiple of DENSE_BK rows and at least DENSE_W_MIN_ROWS.
const DENSE_W_SPLITS: usize = 128;
const DENSE_W_MIN_ROWS: usize = 64;

/// Rows per chunk and chunk count of dense_bwd_w for `rows` rows.
pub fn dense_w_splits(rows: usize) -> (usize, usize) {
    let per = rows.div_ceil(DENSE_W_SPLITS).next_multiple_of(DENSE_BK).max(DENSE_W_MIN_ROWS);
    (per, rows.div_ceil(per))
}

/// Floats of scratch dense_bwd needs for shape `s` (the per-chunk partial sums of d_w and d_b).
pub fn dense_bwd_scratch_len(s: Dense) -> usize {
    dense_w_splits(s.rows).1 * (s.n_out * s.n_in + s.n_out)
}

fn check(what: &str, s: Dense, bufs: &[(&str, usize, usize)]) -> Result<()> {
    // Row tiles run along grid.y (dense_fwd, dense_bwd_x), as do output tiles in dense_bwd_w.
    if s.rows > 65_535 * DENSE_TILE || s.n_out > 65_535 * DENSE_TILE || s.n_in > i32::MAX as usize {
        return Err(Error::Cuda(format!("{what}: shape {s:?} is beyond one launch")));
    }
    for &(name, len, want) in bufs {
        if len != want {
            return Err(Error::Cuda(format!("{what}: {name} has {len} elements, shape {s:?} needs {want}")));
        }
    }
    Ok(())
}

fn tiles(n: usize) -> u32 {
    n.div_ceil(DENSE_TILE) as u32
}

/// The dense_fwd and dense_bwd_w variants whose tile side along the outputs fits `n_out`, and that side:
/// 32 for O ≤ 32, 64 for O ≤ 64, else 128.
fn narrow(n_out: usize) -> (&'static str, &'static str, usize) {
    match n_out {
        0..=32 => ("dense_fwd_n32", "dense_bwd_w_n32", 32),
        33..=64 => ("dense_fwd_n64", "dense_bwd_w_n64", 64),
        _ => ("dense_fwd", "dense_bwd_w", DENSE_TILE),
    }
}

fn dims(s: Dense) -> [Arg; 4] {
    [(s.rows as i32).into(), (s.n_in as i32).into(), (s.n_out as i32).into(), s.act.code().into()]
}

fn opt(b: Option<DevBuf<f32>>) -> Arg {
    Arg::Ptr(b.map_or(0, |b| b.ptr()))
}

/// y [M,O] = act(x [M,I] · w [O,I]ᵀ + b [O]); `b` None for a layer without bias.
pub fn dense_fwd(
    gpu: &Gpu,
    s: Dense,
    x: DevBuf<f32>,
    w: DevBuf<f32>,
    b: Option<DevBuf<f32>>,
    y: DevBuf<f32>,
) -> Result<()> {
    let (m, i, o) = (s.rows as u64, s.n_in as u64, s.n_out as u64);
    let b_len = b.map_or(s.n_out, |b| b.len());
    check(
        "dense_fwd",
        s,
        &[
            ("x", x.len(), s.rows * s.n_in),
            ("w", w.len(), s.n_out * s.n_in),
            ("b", b_len, s.n_out),
            ("y", y.len(), s.rows * s.n_out),
        ],
    )?;
    if s.rows == 0 || s.n_out == 0 {
        return Ok(());
    }
    let cost = Cost { bytes: 4 * (m * i + o * i + o + m * o), flop: 2 * m * i * o };
    let (kernel, _, side) = narrow(s.n_out);
    let grid = (s.n_out.div_ceil(side) as u32, tiles(s.rows), 1);
    let cfg = LaunchCfg { grid, block: (DENSE_THREADS, 1, 1), shared_bytes: 0, cost };
    let [m_, i_, o_, a_] = dims(s);
    gpu.launch(kernel, cfg, &[x.into(), w.into(), opt(b), m_, i_, o_, a_, y.into()])
}

/// Inputs of dense_bwd: the layer's x, w and output y, and dL/dy.
#[derive(Debug, Clone, Copy)]
pub struct DenseBwdInputs {
    pub x: DevBuf<f32>,
    pub w: DevBuf<f32>,
    pub y: DevBuf<f32>,
    pub d_y: DevBuf<f32>,
}

/// Outputs of dense_bwd (overwritten): d_x [M,I], d_w [O,I], d_b [O] (None for a layer without bias).
#[derive(Debug, Clone, Copy)]
pub struct DenseGrads {
    pub d_x: DevBuf<f32>,
    pub d_w: DevBuf<f32>,
    pub d_b: Option<DevBuf<f32>>,
}

/// d_x = (act'(y) ⊙ d_y) · w, d_w = Σ_rows (act'(y) ⊙ d_y)ᵀ · x, d_b = Σ_rows act'(y) ⊙ d_y; deterministic.
/// `scratch` holds at least dense_bwd_scratch_len(s) floats.
pub fn dense_bwd(gpu: &Gpu, s: Dense, inp: DenseBwdInputs, out: DenseGrads, scratch: DevBuf<f32>) -> Result<()> {
    let (mu, iu, ou) = (s.rows, s.n_in, s.n_out);
    let d_b_len = out.d_b.map_or(ou, |b| b.len());
    check(
        "dense_bwd",
        s,
        &[
            ("x", inp.x.len(), mu * iu),
            ("w", inp.w.len(), ou * iu),
            ("y", inp.y.len(), mu * ou),
            ("d_y", inp.d_y.len(), mu * ou),
            ("d_x", out.d_x.len(), mu * iu),
            ("d_w", out.d_w.len(), ou * iu),
            ("d_b", d_b_len, ou),
        ],
    )?;
    let need = dense_bwd_scratch_len(s);
    if scratch.len() < need {
        return Err(Error::Cuda(format!("dense_bwd: scratch has {} floats, shape {s:?} needs {need}", scratch.len())));
    }
    let (m, i, o) = (mu as u64, iu as u64, ou as u64);
    let [m_, i_, o_, a_] = dims(s);
    if mu > 0 && iu > 0 {
        let cost = Cost { bytes: 4 * (2 * m * o + o * i + m * i), flop: 2 * m * i * o };
        let cfg = LaunchCfg { grid: (tiles(iu), tiles(mu), 1), block: (DENSE_THREADS, 1, 1), shared_bytes: 0, cost };
        gpu.launch("dense_bwd_x", cfg, &[inp.d_y.into(), inp.y.into(), inp.w.into(), m_, i_, o_, a_, out.d_x.into()])?;
    }
    let stride = o * i + o;
    if stride == 0 {
        return Ok(());
    }
    let (per, splits) = dense_w_splits(mu);
    if splits > 0 {
        let cost = Cost { bytes: 4 * (2 * m * o + m * i + splits as u64 * stride), flop: 2 * m * i * o + m * o };
        // Column tile 0 also computes d_b, so there is at least one even when I = 0.
        let (_, kernel, side) = narrow(ou);
        let cfg = LaunchCfg {
            grid: (tiles(iu).max(1), ou.div_ceil(side) as u32, splits as u32),
            block: (DENSE_THREADS, 1, 1),
            shared_bytes: 0,
            cost,
        };
        gpu.launch(
            kernel,
            cfg,
            &[inp.d_y.into(), inp.y.into(), inp.x.into(), m_, i_, o_, a_, (per as i32).into(), scratch.into()],
        )?;
    }
    let cost = Cost { bytes: 4 * (splits as u64 + 1) * stride, flop: splits as u64 * stride };
    gpu.launch(
        "dense_bwd_w_reduce",
        LaunchCfg::per_element(stride as usize, DENSE_REDUCE_THREADS, cost),
        &[scratch.into(), (splits as i32).into(), i_, o_, out.d_w.into(), opt(out.d_b)],
    )
}
