//! Launchers for kernels/mlp.cu: the dense layer y = act(x·wᵀ + b) forward and backward (CPU twin:
//! src/cpu/mlp.rs, same names). Each launcher picks the tensor-core (3xTF32) kernels where
//! `dense_uses_tensor_cores` holds and the buffers are 16-byte aligned, the GEMV kernels for a single output
//! where `dense_uses_gemv` holds (and the buffers are aligned), else the SIMT kernels.

use super::{Arg, Cost, DevBuf, Gpu, LaunchCfg};
use crate::cpu::mlp::Dense;
use crate::error::{Error, Result};

/// DENSE_THREADS and DENSE_BK of the SIMT kernels: 256 threads own a 128 × 128 tile of the output (narrower
/// on the output side for narrow layers, see `narrow`).
const DENSE_THREADS: u32 = 256;
const DENSE_TILE: usize = 128;
const DENSE_BK: usize = 8;
/// dense_bwd_w_reduce: DENSE_REDUCE_THREADS per block sum DENSE_REDUCE_COLS consecutive elements, 8 threads
/// (one per split residue mod 8) per element.
const DENSE_REDUCE_THREADS: u32 = 256;
const DENSE_REDUCE_COLS: u64 = 32;
/// dense_bwd_w cuts the rows into at most this many chunks (about one wave of blocks on an H100 for a
/// 128 × 128 weight), each chunk a multiple of DENSE_BK rows and at least DENSE_W_MIN_ROWS.
const DENSE_W_SPLITS: usize = 128;
const DENSE_W_MIN_ROWS: usize = 64;

/// TC_THREADS and TC_BK of the tensor-core (3xTF32) kernels; dense_bwd_w_tc's block covers TC_W_OUT outputs.
const TC_THREADS: u32 = 256;
const TC_BK: usize = 16;
const TC_W_OUT: usize = 64;
/// dense_bwd_w_tc cuts the rows so that (output tiles) × (chunks) comes to at most this many blocks: two per
/// SM on the 132 SMs of an H100 or H200 SXM, which is all that can be resident (registers cap the kernel at
/// two blocks per SM), and two waves where only one fits. A fixed number rather than the card's SM count, so
/// the chunks, and with them d_w and d_b bit for bit, are the same on every card and the scratch length
/// needs no device.
const TC_W_BLOCKS: usize = 264;

/// GEMV_THREADS of the single-output kernels (dense_gemv_*): 8 warps, a warp per row, GEMV_ROWS = 4 rows
/// per warp in dense_gemv_fwd / _bwd_x (32 rows per block); n_in at most GEMV_MAX_IN.
const GEMV_THREADS: u32 = 256;
const GEMV_ROWS_PER_BLOCK: usize = 32;
const GEMV_MAX_IN: usize = 1024;
/// dense_gemv_bwd_w cuts the rows into at most this many blocks (each a multiple of 32 rows): about two per
/// SM on a 132-SM card, enough to stream x at full bandwidth, and few enough that the last block's sum over
/// the partials stays short. A fixed number, so d_w and d_b are the same on every card.
const GEMV_W_BLOCKS: usize = 256;

/// Rows per block and block count of dense_gemv_bwd_w for `rows` rows.
pub fn dense_gemv_w_blocks(rows: usize) -> (usize, usize) {
    let per = rows.div_ceil(GEMV_W_BLOCKS).next_multiple_of(GEMV_ROWS_PER_BLOCK).max(GEMV_ROWS_PER_BLOCK);
    (per, rows.div_ceil(per))
}

/// Whether the launchers run layer `s` on the single-output GEMV kernels (dense_gemv_fwd, _bwd_x, _bwd_w):
/// n_out = 1 (the opacity head), n_in a multiple of 4 (float4 rows) and at most GEMV_MAX_IN, at least one
/// row. The launchers also need x, w, d_x, d_w and the scratch 16-byte aligned (arena slots are).
pub fn dense_uses_gemv(s: Dense) -> bool {
    s.n_out == 1 && s.n_in % 4 == 0 && s.n_in > 0 && s.n_in <= GEMV_MAX_IN && s.rows > 0 && s.rows <= i32::MAX as usize
}

/// Rows per chunk and chunk count of dense_bwd_w for `rows` rows.
pub fn dense_w_splits(rows: usize) -> (usize, usize) {
    let per = rows.div_ceil(DENSE_W_SPLITS).next_multiple_of(DENSE_BK).max(DENSE_W_MIN_ROWS);
    (per, rows.div_ceil(per))
}

/// Rows per chunk and chunk count of dense_bwd_w_tc for `rows` rows and `tiles` output tiles per chunk: at
/// most TC_W_BLOCKS / tiles chunks (rounded up) and at most DENSE_W_SPLITS, each a multiple of TC_BK rows and
/// at least DENSE_W_MIN_ROWS. The cap keeps dense_bwd_w_reduce (one thread per element, summing the chunks
/// in order, latency-bound) no longer than after the SIMT kernel; the card fills through the 64-wide output
/// tiles instead: 32 768 rows of a 128 × 128 layer (2 tiles) give 128 chunks of 256 rows, 256 blocks.
/// Single-tile layers (O ≤ 64, I ≤ 128) run 128 blocks.
pub fn dense_w_tc_splits(rows: usize, tiles: usize) -> (usize, usize) {
    let want = TC_W_BLOCKS.div_ceil(tiles.max(1)).min(DENSE_W_SPLITS);
    let per = rows.div_ceil(want).next_multiple_of(TC_BK).max(DENSE_W_MIN_ROWS);
    (per, rows.div_ceil(per))
}

/// Whether the launchers run layer `s` on the tensor-core kernels (dense_fwd_tc, dense_bwd_x_tc,
/// dense_bwd_w_tc): n_in and n_out multiples of 4 (every row of x, w, y, d_y starts 16-byte aligned, as the
/// kernels' float4 loads need) and at least 32 (narrower layers leave most of a 64-wide tile as padding, and
/// the SIMT n32 variants are cheap there), and the grid within limits. The launchers also need every buffer
/// the kernels read or write in float4/float2 16-byte aligned (arena slots are); otherwise, and for every
/// other shape, the SIMT kernels run. Covers the F_c layers (64→128, 128→128), the SH head (128→48) and the
/// audio MLPs (32→64, 64→64); not the opacity head (O = 1, which takes the GEMV kernels, `dense_uses_gemv`).
pub fn dense_uses_tensor_cores(s: Dense) -> bool {
    s.n_in % 4 == 0
        && s.n_out % 4 == 0
        && s.n_in >= 32
        && s.n_out >= 32
        && s.rows <= 65_535 * 64
        && s.n_out <= 65_535 * TC_W_OUT
}

/// dense_fwd_tc's variant for `n_out` and its block tile (rows, outputs).
fn tc_fwd_tile(n_out: usize) -> (&'static str, usize, usize) {
    if n_out <= 64 { ("dense_fwd_tc_n64", 128, 64) } else { ("dense_fwd_tc", 64, 128) }
}

/// dense_bwd_x_tc's variant for `n_in` and its block tile (rows, inputs).
fn tc_bwd_x_tile(n_in: usize) -> (&'static str, usize, usize) {
    if n_in <= 64 { ("dense_bwd_x_tc_i64", 128, 64) } else { ("dense_bwd_x_tc", 64, 128) }
}

/// How dense_bwd_w_tc covers shape `s`: variant, grid (input tiles, output tiles), rows per chunk, chunks.
struct TcWPlan {
    kernel: &'static str,
    tiles: (usize, usize),
    per: usize,
    splits: usize,
}

fn tc_w_plan(s: Dense) -> TcWPlan {
    let (kernel, side) = if s.n_in <= 64 { ("dense_bwd_w_tc_i64", 64) } else { ("dense_bwd_w_tc", 128) };
    let tiles = (s.n_in.div_ceil(side), s.n_out.div_ceil(TC_W_OUT));
    let (per, splits) = dense_w_tc_splits(s.rows, tiles.0 * tiles.1);
    TcWPlan { kernel, tiles, per, splits }
}

/// Floats of scratch dense_bwd needs for shape `s` (the per-chunk partial sums of d_w and d_b; for the GEMV
/// kernels also their arrival counter, one word after the partials): enough for whichever of the SIMT,
/// tensor-core and GEMV kernels the launcher may pick (the pick also depends on the buffers' alignment,
/// which is not known here).
pub fn dense_bwd_scratch_len(s: Dense) -> usize {
    let mut splits = dense_w_splits(s.rows).1;
    if dense_uses_tensor_cores(s) {
        splits = splits.max(tc_w_plan(s).splits);
    }
    let mut len = splits * (s.n_out * s.n_in + s.n_out);
    if dense_uses_gemv(s) {
        len = len.max(gemv_scratch_len(s));
    }
    len
}

/// Floats dense_gemv_bwd_w uses: [blocks, n_in] d_w partials, [blocks] d_b partials, the counter.
fn gemv_scratch_len(s: Dense) -> usize {
    dense_gemv_w_blocks(s.rows).1 * (s.n_in + 1) + 1
}

/// Whether every pointer is 16-byte aligned (the tensor-core kernels' float4 loads and float2 stores).
fn aligned16(ptrs: &[u64]) -> bool {
    ptrs.iter().all(|p| p % 16 == 0)
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
    if dense_uses_gemv(s) && aligned16(&[x.ptr(), w.ptr()]) {
        let cfg = LaunchCfg::linear(s.rows.div_ceil(GEMV_ROWS_PER_BLOCK) as u32, GEMV_THREADS, cost);
        let [m_, i_, _, a_] = dims(s);
        return gpu.launch("dense_gemv_fwd", cfg, &[x.into(), w.into(), opt(b), m_, i_, a_, y.into()]);
    }
    let (kernel, grid, threads) = if dense_uses_tensor_cores(s) && aligned16(&[x.ptr(), w.ptr(), y.ptr()]) {
        let (kernel, rows, side) = tc_fwd_tile(s.n_out);
        (kernel, (s.n_out.div_ceil(side) as u32, s.rows.div_ceil(rows) as u32, 1), TC_THREADS)
    } else {
        let (kernel, _, side) = narrow(s.n_out);
        (kernel, (s.n_out.div_ceil(side) as u32, tiles(s.rows), 1), DENSE_THREADS)
    };
    let cfg = LaunchCfg { grid, block: (threads, 1, 1), shared_bytes: 0, cost };
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
/// `scratch` holds at least dense_bwd_scratch_len(s) floats. GEMV kernels where dense_uses_gemv(s) holds and
/// x, w, d_x, d_w and scratch are 16-byte aligned (two launches, no separate reduction); tensor-core kernels
/// where dense_uses_tensor_cores(s) holds and x, w, y, d_y, d_x and scratch are 16-byte aligned; else SIMT.
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
    if dense_uses_gemv(s) && aligned16(&[inp.x.ptr(), inp.w.ptr(), out.d_x.ptr(), out.d_w.ptr(), scratch.ptr()]) {
        return gemv_bwd(gpu, s, inp, out, scratch);
    }
    let ptrs = [inp.x.ptr(), inp.w.ptr(), inp.y.ptr(), inp.d_y.ptr(), out.d_x.ptr(), scratch.ptr()];
    let tc = dense_uses_tensor_cores(s) && aligned16(&ptrs);
    if mu > 0 && iu > 0 {
        let cost = Cost { bytes: 4 * (2 * m * o + o * i + m * i), flop: 2 * m * i * o };
        let (kernel, grid, threads) = if tc {
            let (kernel, rows, side) = tc_bwd_x_tile(iu);
            (kernel, (iu.div_ceil(side) as u32, mu.div_ceil(rows) as u32, 1), TC_THREADS)
        } else {
            ("dense_bwd_x", (tiles(iu), tiles(mu), 1), DENSE_THREADS)
        };
        let cfg = LaunchCfg { grid, block: (threads, 1, 1), shared_bytes: 0, cost };
        gpu.launch(kernel, cfg, &[inp.d_y.into(), inp.y.into(), inp.w.into(), m_, i_, o_, a_, out.d_x.into()])?;
    }
    let stride = o * i + o;
    if stride == 0 {
        return Ok(());
    }
    let (kernel, grid_xy, threads, per, splits, shared_bytes) = if tc {
        let p = tc_w_plan(s);
        // Two staging buffers of a 64-output P tile and a 128- or 64-input x tile, TC_BK rows of float2 pairs.
        let side = if p.kernel == "dense_bwd_w_tc" { 128 } else { 64 };
        let smem = (2 * 8 * TC_BK * (TC_W_OUT + 4 + side + 4)) as u32;
        gpu.set_max_dynamic_shared(p.kernel, smem)?;
        (p.kernel, (p.tiles.0 as u32, p.tiles.1 as u32), TC_THREADS, p.per, p.splits, smem)
    } else {
        // Column tile 0 also computes d_b, so there is at least one even when I = 0.
        let (_, kernel, side) = narrow(ou);
        let (per, splits) = dense_w_splits(mu);
        (kernel, (tiles(iu).max(1), ou.div_ceil(side) as u32), DENSE_THREADS, per, splits, 0)
    };
    if splits > 0 {
        let cost = Cost { bytes: 4 * (2 * m * o + m * i + splits as u64 * stride), flop: 2 * m * i * o + m * o };
        let cfg = LaunchCfg {
            grid: (grid_xy.0, grid_xy.1, splits as u32),
            block: (threads, 1, 1),
            shared_bytes,
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
        LaunchCfg::linear(stride.div_ceil(DENSE_REDUCE_COLS).max(1) as u32, DENSE_REDUCE_THREADS, cost),
        &[scratch.into(), (splits as i32).into(), i_, o_, out.d_w.into(), opt(out.d_b)],
    )
}

/// dense_bwd on the GEMV kernels (n_out = 1): dense_gemv_bwd_x (which also zeroes the arrival counter), then
/// dense_gemv_bwd_w, which writes d_w and d_b itself (its last block to finish sums the partials).
fn gemv_bwd(gpu: &Gpu, s: Dense, inp: DenseBwdInputs, out: DenseGrads, scratch: DevBuf<f32>) -> Result<()> {
    let (m, i) = (s.rows as u64, s.n_in as u64);
    let [m_, i_, _, a_] = dims(s);
    let (per, blocks) = dense_gemv_w_blocks(s.rows);
    let counter = Arg::Ptr(scratch.ptr() + 4 * (blocks * (s.n_in + 1)) as u64);
    let cost = Cost { bytes: 4 * (2 * m + i + m * i), flop: m * i };
    let cfg = LaunchCfg::linear(s.rows.div_ceil(GEMV_ROWS_PER_BLOCK) as u32, GEMV_THREADS, cost);
    gpu.launch(
        "dense_gemv_bwd_x",
        cfg,
        &[inp.d_y.into(), inp.y.into(), inp.w.into(), m_, i_, a_, out.d_x.into(), counter],
    )?;
    let part = 2 * blocks as u64 * (i + 1);
    let cost = Cost { bytes: 4 * (2 * m + m * i + part + i + 1), flop: 2 * m * i + m + part / 2 };
    let cfg = LaunchCfg::linear(blocks as u32, GEMV_THREADS, cost);
    gpu.launch(
        "dense_gemv_bwd_w",
        cfg,
        &[
            inp.d_y.into(),
            inp.y.into(),
            inp.x.into(),
            m_,
            i_,
            a_,
            (per as i32).into(),
            scratch.into(),
            counter,
            out.d_w.into(),
            opt(out.d_b),
        ],
    )
}
