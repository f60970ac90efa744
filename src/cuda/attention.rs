//! Launchers for kernels/attention.cu: the fused per-(Gaussian, frame) chain of the deformation network
//! (deform_transpose, deform_fwd / deform_project_tokens + deform_fwd_chain_tc + deform_fwd_heads_tc,
//! deform_bwd / deform_bwd_heads_tc + deform_pass_through_bwd + deform_bwd_chain_tc,
//! deform_reduce, deform_project_tokens_bwd). CPU twin: src/cpu/attention.rs. `Precision` picks the dense
//! layers' arithmetic: fp32 SIMT (the reference path, within 1e-5 of the twin) or the tensor cores with fp32
//! accumulation (split fp16 forward, bf16 and row-scaled fp16 backward; within 1e-2).

use super::{elementwise, Arena, Arg, Cost, DevBuf, Gpu, LaunchCfg};
use crate::cpu::attention::Dropout;
use crate::error::{Error, Result};
use crate::model::deform::{DeformLayout, D, DELTAS, TOKENS};

/// fp32 kernels: DEF_TP pairs per tile and DEF_THREADS threads per block.
const DEF_TP: usize = 32;
const DEF_THREADS: u32 = 256;
/// Dynamic shared memory of deform_fwd and deform_bwd (FWD_SMEM_FLOATS·4, BWD_SMEM_FLOATS·4 in the kernel).
const DEF_FWD_SMEM: u32 = 88_064;
const DEF_BWD_SMEM: u32 = 156_928;
/// Tensor-core kernels: work items of TC_TILE Gaussians of one frame (TC_WARPS warp tiles of 16); the
/// backward's blocks of TC_THREADS take one item at a time; its two kernels' dynamic shared memory
/// (TC_BWD_HEADS_SMEM, TC_BWD_CHAIN_SMEM).
const TC_TILE: usize = 128;
const TC_THREADS: u32 = 256;
const DEF_BWD_HEADS_TC_SMEM: u32 = 230_344;
const DEF_BWD_CHAIN_TC_SMEM: u32 = 188_424;
/// The forward's two kernels' dynamic shared memory: fp16 copies of their weights with the split layers' low
/// parts (TC_FWD_CHAIN_SMEM, TC_FWD_HEADS_SMEM).
const DEF_FWD_CHAIN_TC_SMEM: u32 = 67_584;
const DEF_FWD_HEADS_TC_SMEM: u32 = 195_520;
/// deform_fwd_chain_tc's tape record per warp tile of 16 Gaussians of one frame (u32 words; TAPE_WORDS), and
/// the bytes it holds per pair.
const TAPE_WORDS: usize = 3776;
const TAPE_BYTES_PER_PAIR: u64 = 4 * TAPE_WORDS as u64 / 16;
const TC_WARPS: usize = 8;
/// deform_bwd_heads_tc's per-pair canonical gradients (PAIR_GRADS).
const PAIR_GRADS: usize = 8;
/// The forward kernels' warps per block: deform_fwd_heads_tc's (FWD_WARPS), deform_fwd_chain_tc's
/// (FWD_CHAIN_WARPS).
const FWD_WARPS: usize = 12;
const FWD_CHAIN_WARPS: usize = 8;
/// The chain's transposed weights (WT_FLOATS) and its section of the parameter buffer (CHAIN_FLOATS).
const WT_FLOATS: usize = 73_088;
const CHAIN_FLOATS: usize = 82_683;
/// Where the chain's out-projection bias bo starts (P_BO): on the tensor cores the gradients before it (Wq, bq,
/// wk, bk, wv, bv, Wo) come from deform_project_tokens_bwd's two launches, the rest from deform_reduce.
const P_BO: usize = 4 * D * D + 3 * D;
/// Where the partial slices continue after the chain's gradients (PART_TAIL): d_kv's sums in fp32, the
/// projected tokens' on the tensor cores.
const PART_TAIL: usize = CHAIN_FLOATS.next_multiple_of(4);
/// One frame's tokens projected through the query and the out-projection (TOK_FRAME words: the forward's
/// and the backward's mma fragments of them), and their gradients (DTOK_FRAME floats).
const TOK_FRAME: usize = 1544;
const DTOK_FRAME: usize = 16 * D + 8;
/// The F_d heads' part of it (P_HEAD0W to the end): V0, c0 of five heads and V1, c1.
const HEADS_FLOATS: usize = 5 * 128 * D + 5 * 128 + DELTAS * 128 + DELTAS;
const TRANSPOSE_THREADS: u32 = 256;
const REDUCE_THREADS: u32 = 256;
/// deform_project_tokens' block (one per frame).
const PROJECT_THREADS: u32 = 1024;
/// deform_reduce's outputs per block (REDUCE_COLS).
const REDUCE_COLS: usize = 32;
/// Multiply-adds of one pair's chain: q 4096, scores and weighted sum 512, out-projection 4096, FFN 16 384,
/// the heads' first layers 40 960 and last layers 7552.
pub const MACS_PER_PAIR: u64 = 4096 + 512 + 4096 + 16_384 + HEADS_MACS_PER_PAIR;
const HEADS_MACS_PER_PAIR: u64 = 40_960 + 7552;

/// The five per-Gaussian arrays: canonical ([N,…], `scales` holding log-scales) or deformed ([B,N,…]), or
/// their gradients: means 3, scales 3, rotations 4, opacities 1, SH 48 floats per Gaussian.
#[derive(Debug, Clone, Copy)]
pub struct GaussianBufs {
    pub means: DevBuf<f32>,
    pub scales: DevBuf<f32>,
    pub rotations: DevBuf<f32>,
    pub opacities: DevBuf<f32>,
    pub sh: DevBuf<f32>,
}

impl GaussianBufs {
    pub fn alloc(gpu: &Gpu, arena: &mut Arena, rows: usize) -> Result<Self> {
        Ok(GaussianBufs {
            means: arena.alloc(gpu, rows * 3)?,
            scales: arena.alloc(gpu, rows * 3)?,
            rotations: arena.alloc(gpu, rows * 4)?,
            opacities: arena.alloc(gpu, rows)?,
            sh: arena.alloc(gpu, rows * 48)?,
        })
    }

    fn all(&self) -> [DevBuf<f32>; 5] {
        [self.means, self.scales, self.rotations, self.opacities, self.sh]
    }

    fn args(&self) -> [Arg; 5] {
        self.all().map(Arg::from)
    }

    fn check(&self, what: &str, rows: usize) -> Result<()> {
        let names = ["means", "scales", "rotations", "opacities", "sh"];
        for ((buf, width), name) in self.all().iter().zip([3, 3, 4, 1, 48]).zip(names) {
            if buf.len() != rows * width {
                return Err(Error::Cuda(format!(
                    "{what}: {name} has {} floats, {rows} rows need {}",
                    buf.len(),
                    rows * width
                )));
            }
        }
        Ok(())
    }
}

/// How the chain's dense products are computed; attention, softmax, LayerNorm, dropout and the deltas are
/// fp32 in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// fp32 FMA on the SIMT cores (deform_fwd, deform_bwd).
    Fp32,
    /// Tensor-core mma with fp32 accumulation (deform_fwd_*_tc, deform_bwd_*_tc): the forward on fp16 operands,
    /// its out-projection and FFN split (x = hi + lo, W = Whi + Wlo: three fp16 products) and the heads'
    /// hidden units near 0 taken again in fp32, so that its ReLU decisions are fp32's; the backward's weight
    /// gradients and the chain's input gradients on bf16 operands (gradients need its range), the F_d heads'
    /// input gradients on fp16 ones with each gradient row scaled by a power of two. The backward has no
    /// per-pair query or out-projection layer: it takes the attention's gradients through each frame's
    /// tokens projected by them (bf16 products) and sums their weights' gradients per frame.
    TensorCores,
}

/// Words of the tensor-core path's tape for `frames` frames of `gaussians` Gaussians.
fn tape_words(frames: usize, gaussians: usize) -> usize {
    gaussians.div_ceil(TC_TILE) * frames * TC_WARPS * TAPE_WORDS
}

/// The chain's scratch: in fp32 the weights transposed for its kernels, deform_bwd's per-block partial
/// gradients, and on the tensor cores the forward's tape that deform_bwd reads, and the projected tokens
/// (both directions') and their summed gradients. (The tensor-core kernels copy their weights to shared
/// memory themselves.)
pub struct DeformChain {
    precision: Precision,
    transposed: Option<DevBuf<f32>>,
    partials: DevBuf<f32>,
    part_stride: usize,
    max_blocks: usize,
    max_frames: usize,
    max_gaussians: usize,
    tc: Option<TcScratch>,
}

/// The tensor-core path's buffers besides the partials.
#[derive(Clone, Copy)]
struct TcScratch {
    tape: DevBuf<u32>,
    /// [B·N][PAIR_GRADS]: deform_bwd_heads_tc's per-pair canonical gradients (log-scales, rotations, opacity).
    d_pair: DevBuf<f32>,
    /// [B][TOK_FRAME]: deform_project_tokens' output.
    tokens: DevBuf<u32>,
    /// [B][DTOK_FRAME]: deform_reduce's sums of the tokens' gradients.
    d_tokens: DevBuf<f32>,
}

/// Partial-slice stride (floats) for batches of up to `max_frames` frames.
fn part_stride(max_frames: usize) -> usize {
    (PART_TAIL + DTOK_FRAME.max(2 * TOKENS * D) * max_frames).next_multiple_of(64)
}

fn drop_args(d: Dropout) -> [Arg; 3] {
    [Arg::Ptr(d.key), (d.threshold as i32).into(), d.scale.into()]
}

impl DeformChain {
    /// Floats (4 bytes each, with room for the arena's alignment) that `new` takes from its arena.
    pub fn floats(gpu: &Gpu, max_frames: usize, max_gaussians: usize, precision: Precision) -> usize {
        let partials = gpu.info().multiprocessors.max(1) as usize * part_stride(max_frames);
        let own = match precision {
            Precision::Fp32 => WT_FLOATS,
            Precision::TensorCores => {
                tape_words(max_frames, max_gaussians)
                    + PAIR_GRADS * max_frames * max_gaussians
                    + (TOK_FRAME + DTOK_FRAME) * max_frames
            }
        };
        partials + own + 5 * 64
    }

    /// Scratch for batches of up to `max_frames` frames of up to `max_gaussians` Gaussians, in `arena`
    /// (persistent): the laid-out weights, one partial-gradient slice (83 k + 1032·B floats) per SM and, on
    /// the tensor cores, the tape (944 bytes per Gaussian and frame: tape_words) and the projected tokens.
    pub fn new(
        gpu: &Gpu,
        arena: &mut Arena,
        layout: &DeformLayout,
        max_frames: usize,
        max_gaussians: usize,
        precision: Precision,
    ) -> Result<Self> {
        if layout.chain_floats() != CHAIN_FLOATS {
            return Err(Error::Cuda(format!(
                "deform: the parameter layout's chain has {} floats, kernels/attention.cu expects {CHAIN_FLOATS}",
                layout.chain_floats()
            )));
        }
        let (transposed, tc) = match precision {
            Precision::Fp32 => {
                gpu.set_max_dynamic_shared("deform_fwd", DEF_FWD_SMEM)?;
                gpu.set_max_dynamic_shared("deform_bwd", DEF_BWD_SMEM)?;
                (Some(arena.alloc(gpu, WT_FLOATS)?), None)
            }
            Precision::TensorCores => {
                gpu.set_max_dynamic_shared("deform_fwd_chain_tc", DEF_FWD_CHAIN_TC_SMEM)?;
                gpu.set_max_dynamic_shared("deform_fwd_heads_tc", DEF_FWD_HEADS_TC_SMEM)?;
                gpu.set_max_dynamic_shared("deform_bwd_heads_tc", DEF_BWD_HEADS_TC_SMEM)?;
                gpu.set_max_dynamic_shared("deform_bwd_chain_tc", DEF_BWD_CHAIN_TC_SMEM)?;
                let tc = TcScratch {
                    tape: arena.alloc(gpu, tape_words(max_frames, max_gaussians))?,
                    d_pair: arena.alloc(gpu, PAIR_GRADS * max_frames * max_gaussians)?,
                    tokens: arena.alloc(gpu, TOK_FRAME * max_frames)?,
                    d_tokens: arena.alloc(gpu, DTOK_FRAME * max_frames)?,
                };
                (None, Some(tc))
            }
        };
        let part_stride = part_stride(max_frames);
        let max_blocks = gpu.info().multiprocessors.max(1) as usize;
        Ok(DeformChain {
            precision,
            transposed,
            partials: arena.alloc(gpu, max_blocks * part_stride)?,
            part_stride,
            max_blocks,
            max_frames,
            max_gaussians,
            tc,
        })
    }

    /// Bytes of the tape deform_fwd writes and deform_bwd reads for B frames of N Gaussians (0 in fp32).
    fn tape_bytes(&self, b: usize, n: usize) -> u64 {
        match self.tc {
            Some(_) => 4 * tape_words(b, n) as u64,
            None => 0,
        }
    }

    /// Lays the chain's weights out for the fp32 kernels (transposed): once per step, after the optimizer.
    /// Nothing to do on the tensor cores.
    pub fn prepare(&self, gpu: &Gpu, params: DevBuf<f32>) -> Result<()> {
        let Some(wt) = self.transposed else { return Ok(()) };
        let cost = Cost { bytes: 8 * WT_FLOATS as u64, flop: 0 };
        gpu.launch(
            "deform_transpose",
            LaunchCfg::per_element(WT_FLOATS, TRANSPOSE_THREADS, cost),
            &[params.into(), wt.into()],
        )
    }

    /// The arguments deform_fwd and deform_bwd open with (params, the fp32 kernels' transposed weights, f,
    /// kv, B, N, dropout, canonical), after checking their sizes.
    #[allow(clippy::too_many_arguments)]
    fn chain_inputs(
        &self,
        what: &str,
        params: DevBuf<f32>,
        f: DevBuf<f32>,
        kv: DevBuf<f32>,
        b: usize,
        n: usize,
        drop: Dropout,
        canonical: &GaussianBufs,
    ) -> Result<Vec<Arg>> {
        let too_many = b > self.max_frames || n > self.max_gaussians || (b * n).div_ceil(DEF_TP) > i32::MAX as usize;
        if b == 0 || n == 0 || too_many {
            return Err(Error::Cuda(format!(
                "{what}: B = {b} (at most {}), N = {n} (at most {})",
                self.max_frames, self.max_gaussians
            )));
        }
        if params.len() < CHAIN_FLOATS || f.len() != n * D || kv.len() != 2 * b * TOKENS * D {
            return Err(Error::Cuda(format!(
                "{what}: params {} (≥ {CHAIN_FLOATS}), f {} (N·64 = {}), kv {} (2·B·256 = {})",
                params.len(),
                f.len(),
                n * D,
                kv.len(),
                2 * b * TOKENS * D
            )));
        }
        canonical.check(&format!("{what} canonical"), n)?;
        let mut args: Vec<Arg> = vec![params.into()];
        args.extend(self.transposed.map(Arg::from));
        args.extend::<[Arg; 4]>([f.into(), kv.into(), (b as i32).into(), (n as i32).into()]);
        args.extend(drop_args(drop));
        args.extend(canonical.args());
        Ok(args)
    }

    /// The deformed Gaussians of every frame: out [B,N,…] from canonical [N,…], features f [N,64] and the
    /// frames' K/V rows kv [2,B,4,64]. `prepare` must have run since params last changed. On the tensor
    /// cores it also writes the tape that deform_bwd reads.
    #[allow(clippy::too_many_arguments)]
    pub fn deform_fwd(
        &self,
        gpu: &Gpu,
        params: DevBuf<f32>,
        f: DevBuf<f32>,
        kv: DevBuf<f32>,
        b: usize,
        n: usize,
        drop: Dropout,
        canonical: &GaussianBufs,
        out: &GaussianBufs,
    ) -> Result<()> {
        let mut args = self.chain_inputs("deform_fwd", params, f, kv, b, n, drop, canonical)?;
        out.check("deform_fwd out", b * n)?;
        let p = (b * n) as u64;
        // The chain reads f, the heads the canonical Gaussians, and write the deformed ones.
        let chain = Cost { bytes: 4 * n as u64 * D as u64, flop: 2 * (MACS_PER_PAIR - HEADS_MACS_PER_PAIR) * p };
        let heads = Cost { bytes: 4 * (n as u64 + p) * DELTAS as u64, flop: 2 * HEADS_MACS_PER_PAIR * p };
        args.extend(out.args());
        match (self.precision, self.tc) {
            (Precision::TensorCores, Some(tc)) => {
                args.push(tc.tape.into());
                // Persistent blocks of `warps` warps, each warp a tile of 16 Gaussians of one frame at a
                // time; each block copies its kernel's weights to shared memory once. The tape: the chain
                // writes it (944 bytes per pair), the heads read g back and add their ReLU decisions (296).
                let warp_tiles = n.div_ceil(TC_TILE) * b * TC_WARPS;
                let cfg = |warps: usize, shared_bytes, cost| LaunchCfg {
                    grid: (warp_tiles.div_ceil(warps).min(self.max_blocks) as u32, 1, 1),
                    block: (32 * warps as u32, 1, 1),
                    shared_bytes,
                    cost,
                };
                let tape = self.tape_bytes(b, n);
                let chain = Cost { bytes: chain.bytes + tape, ..chain };
                let heads = Cost { bytes: heads.bytes + tape * 296 / TAPE_BYTES_PER_PAIR, ..heads };
                // Each frame's tokens through the query and the out-projection: the chain's attention, in
                // both directions (deform_bwd reads them too).
                let project = LaunchCfg {
                    grid: (b as u32, 1, 1),
                    block: (PROJECT_THREADS, 1, 1),
                    shared_bytes: 0,
                    cost: Cost { bytes: 4 * (b * (2 * TOKENS * D + TOK_FRAME)) as u64, flop: 2 * 32 * (b * (2 * 512 + 8)) as u64 },
                };
                gpu.launch("deform_project_tokens", project, &[params.into(), kv.into(), (b as i32).into(), tc.tokens.into()])?;
                let chain_args: Vec<Arg> = args.iter().copied().chain([tc.tokens.into()]).collect();
                // Each kernel's blocks copy their weights while the kernel before it ends (Gpu::launch_dependent).
                gpu.launch_dependent("deform_fwd_chain_tc", cfg(FWD_CHAIN_WARPS, DEF_FWD_CHAIN_TC_SMEM, chain), &chain_args)?;
                gpu.launch_dependent("deform_fwd_heads_tc", cfg(FWD_WARPS, DEF_FWD_HEADS_TC_SMEM, heads), &args)
            }
            _ => {
                let cfg = LaunchCfg {
                    grid: ((b * n).div_ceil(DEF_TP) as u32, 1, 1),
                    block: (DEF_THREADS, 1, 1),
                    shared_bytes: DEF_FWD_SMEM,
                    cost: Cost { bytes: chain.bytes + heads.bytes, flop: chain.flop + heads.flop },
                };
                gpu.launch("deform_fwd", cfg, &args)
            }
        }
    }

    /// Backward of deform_fwd from d_out [B,N,…]: writes the chain section of d_params (wk, bk, wv, bv get 0:
    /// tokens_bwd adds theirs), d_kv [2,B,4,64], d_f [N,64] and d_canonical [N,…]. In fp32 it recomputes the
    /// forward; on the tensor cores it reads the tape and the projected tokens, so deform_fwd must have run
    /// last on the same inputs, and it uses part of the tape up: one deform_bwd per deform_fwd. On the tensor
    /// cores d_canonical and d_params but for wk, bk, wv, bv are written on the GPU's second stream
    /// (Gpu::on_side_stream): complete after `gpu.join_side()`, which every transfer and synchronization and
    /// the optimizer's step do first.
    #[allow(clippy::too_many_arguments)]
    pub fn deform_bwd(
        &self,
        gpu: &Gpu,
        params: DevBuf<f32>,
        f: DevBuf<f32>,
        kv: DevBuf<f32>,
        b: usize,
        n: usize,
        drop: Dropout,
        canonical: &GaussianBufs,
        d_out: &GaussianBufs,
        d_params: DevBuf<f32>,
        d_kv: DevBuf<f32>,
        d_f: DevBuf<f32>,
        d_canonical: &GaussianBufs,
    ) -> Result<()> {
        let mut args = self.chain_inputs("deform_bwd", params, f, kv, b, n, drop, canonical)?;
        d_out.check("deform_bwd d_out", b * n)?;
        gpu.join_side()?;  // the last deform_bwd's deform_pass_through_bwd still reads d_pair
        d_canonical.check("deform_bwd d_canonical", n)?;
        if d_params.len() < CHAIN_FLOATS || d_kv.len() != kv.len() || d_f.len() != f.len() {
            return Err(Error::Cuda(format!(
                "deform_bwd: d_params {}, d_kv {} (want {}), d_f {} (want {})",
                d_params.len(),
                d_kv.len(),
                kv.len(),
                d_f.len(),
                f.len()
            )));
        }
        let [means, scales, rotations, opacities, sh] = d_canonical.all();
        // On the tensor cores deform_bwd_chain_tc stores d_f (summed over the frames) and
        // deform_pass_through_bwd d_canonical; the fp32 kernel adds to them.
        if self.tc.is_none() {
            elementwise::fill_spans(gpu, &[d_f, means, scales, rotations, opacities, sh], 0.0)?;
        }
        let p = (b * n) as u64;
        // Work items: tiles of DEF_TP pairs (fp32) or of TC_TILE Gaussians of one frame (tensor cores); each
        // adds its weight gradients into its block's partial slice once.
        let tiles = match self.precision {
            Precision::Fp32 => (b * n).div_ceil(DEF_TP),
            Precision::TensorCores => n.div_ceil(TC_TILE) * b,
        };
        let blocks = tiles.min(self.max_blocks);
        let stride = self.part_stride as u64;
        // Per pair: the heads' share reads d_out and the canonical Gaussian and adds to d_canonical; the
        // chain's reads f and adds to d_f; each reads and writes its weights' partials once per tile.
        let (tiles64, n64) = (tiles as u64, n as u64);
        let heads = Cost {
            bytes: 4 * p * 3 * DELTAS as u64 + 8 * n64 * DELTAS as u64 + 8 * tiles64 * HEADS_FLOATS as u64,
            flop: 6 * HEADS_MACS_PER_PAIR * p,
        };
        let chain = Cost {
            bytes: 4 * p * D as u64 + 8 * n64 * D as u64 + 8 * tiles64 * (CHAIN_FLOATS - HEADS_FLOATS) as u64,
            flop: 6 * (MACS_PER_PAIR - HEADS_MACS_PER_PAIR) * p,
        };
        args.extend(d_out.args());
        args.extend::<[Arg; 3]>([self.partials.into(), (stride as i64).into(), d_f.into()]);
        args.extend(d_canonical.args());
        if let Some(tc) = self.tc {
            args.push(tc.tape.into());
        }
        let cfg = |threads, shared_bytes, cost| LaunchCfg {
            grid: (blocks as u32, 1, 1),
            block: (threads, 1, 1),
            shared_bytes,
            cost,
        };
        // Outputs [first, last) of the chain section followed by the slices' tail floats (into d_tail).
        let reduce = |first: usize, last: usize, d_tail: DevBuf<f32>| {
            let cost = Cost { bytes: 4 * (blocks as u64 + 1) * (last - first) as u64, flop: (blocks * (last - first)) as u64 };
            gpu.launch(
                "deform_reduce",
                LaunchCfg::linear((last - first).div_ceil(REDUCE_COLS) as u32, REDUCE_THREADS, cost),
                &[
                    self.partials.into(),
                    (stride as i64).into(),
                    (blocks as i32).into(),
                    (first as i32).into(),
                    (last as i32).into(),
                    d_params.into(),
                    d_tail.into(),
                    // The tensor-core backward's slices on wgmma hold some weight gradients' columns permuted.
                    i32::from(self.precision == Precision::TensorCores).into(),
                ],
            )
        };
        match (self.precision, self.tc) {
            (Precision::TensorCores, Some(tc)) => {
                // The tape: the heads read g and their ReLU decisions and write d_h2 in g's place (424 bytes
                // per pair), the chain reads d_h2 and the rest (776 bytes).
                let tape = self.tape_bytes(b, n);
                let heads = Cost { bytes: heads.bytes + tape * 424 / TAPE_BYTES_PER_PAIR, ..heads };
                let chain = Cost { bytes: chain.bytes + tape * 776 / TAPE_BYTES_PER_PAIR, ..chain };
                let heads_args: Vec<Arg> = args.iter().copied().chain([tc.d_pair.into()]).collect();
                // Dependent on deform_fwd_heads_tc where that kernel came last (as in `bench deform`): the
                // heads' prologue (their slice zeroed, their weights copied) runs on the SMs its last wave
                // leaves idle. After any other kernel it starts as a plain launch would.
                gpu.launch_dependent("deform_bwd_heads_tc", cfg(TC_THREADS, DEF_BWD_HEADS_TC_SMEM, heads), &heads_args)?;
                args.push(tc.tokens.into());
                gpu.launch_dependent("deform_bwd_chain_tc", cfg(TC_THREADS, DEF_BWD_CHAIN_TC_SMEM, chain), &args)?;
                // On the second stream, after the chain (whose blocks fill every SM): d_canonical, the sums over
                // the frames of d_out's means and SH coefficients (the deltas pass them through) and of the
                // heads' per-pair gradients; then the weight gradients from bo on. They run beside the main
                // stream's short path to the token gradients (the slices' tail, d_kv from
                // deform_project_tokens_bwd, and the caller's token path on 8 blocks), which touches none of
                // their inputs or outputs; the next deform_bwd (which rewrites d_pair and the slices), every
                // transfer and the optimizer join it.
                let [do_means, .., do_sh] = d_out.all();
                let pass_floats = n * (3 + 48 + PAIR_GRADS);
                let pass_cost = Cost { bytes: 4 * (pass_floats * (b + 1)) as u64, flop: (pass_floats * b) as u64 };
                gpu.on_side_stream(|gpu| {
                    gpu.launch(
                        "deform_pass_through_bwd",
                        LaunchCfg::per_element(pass_floats, REDUCE_THREADS, pass_cost),
                        &[
                            do_means.into(),
                            do_sh.into(),
                            tc.d_pair.into(),
                            (b as i32).into(),
                            (n as i32).into(),
                            means.into(),
                            sh.into(),
                            scales.into(),
                            rotations.into(),
                            opacities.into(),
                        ],
                    )?;
                    reduce(P_BO, CHAIN_FLOATS, tc.d_tokens)
                })?;
                reduce(CHAIN_FLOATS, CHAIN_FLOATS + b * DTOK_FRAME, tc.d_tokens)?;
                // deform_project_tokens_bwd, a warp per output float: on the second stream (after the slices'
                // tail) the query's and the out-projection's weight gradients, d_params [0, P_BO) but for wk …
                // bv; on the main stream d_kv and the zeroed wk … bv (32 floats per warp), which the caller's
                // tokens_bwd reads and adds to.
                let weight_warps = 2 * D * D + D;
                let kv_warps = 2 * b * TOKENS * D;
                let zero_warps = 2 * (D * D + D) / 32;
                let project_bwd = |gpu: &Gpu, first: usize, last: usize, cost: Cost| {
                    gpu.launch(
                        "deform_project_tokens_bwd",
                        LaunchCfg::linear((32 * (last - first)).div_ceil(REDUCE_THREADS as usize) as u32, REDUCE_THREADS, cost),
                        &[
                            params.into(),
                            kv.into(),
                            tc.d_tokens.into(),
                            (b as i32).into(),
                            (first as i32).into(),
                            (last as i32).into(),
                            d_params.into(),
                            d_kv.into(),
                        ],
                    )
                };
                let weights_cost = Cost {
                    bytes: 4 * (b * (DTOK_FRAME + 2 * TOKENS * D) + weight_warps) as u64,
                    flop: 2 * (weight_warps * TOKENS * b) as u64,
                };
                gpu.on_side_stream(|gpu| project_bwd(gpu, 0, weight_warps, weights_cost))?;
                let kv_cost = Cost {
                    bytes: 4 * (b * DTOK_FRAME + 2 * D * D + D + kv_warps + 32 * zero_warps) as u64,
                    flop: 2 * (kv_warps * D) as u64,
                };
                project_bwd(gpu, weight_warps, weight_warps + kv_warps + zero_warps, kv_cost)
            }
            _ => {
                let cost = Cost { bytes: heads.bytes + chain.bytes, flop: heads.flop + chain.flop };
                gpu.launch("deform_bwd", cfg(DEF_THREADS, DEF_BWD_SMEM, cost), &args)?;
                reduce(0, CHAIN_FLOATS + 2 * TOKENS * D * b, d_kv)
            }
        }
    }
}
