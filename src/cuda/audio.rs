//! Launchers for kernels/audio.cu: the per-frame token path of the deformation network (tokens_fwd,
//! tokens_bwd). CPU twin: src/cpu/audio.rs.

use super::{elementwise, Arena, Arg, Cost, DevBuf, Gpu, LaunchCfg};
use crate::cpu::audio::FrameInputs;
use crate::error::{Error, Result};
use crate::model::deform::{DeformLayout, Disentangle, D, TOKENS, VIEW_IN, WINDOWS, WINDOW_LEN};

/// TOK_THREADS and the dynamic shared memory (TOK_FWD_FLOATS·4, TOK_BWD_FLOATS·4) in the kernel.
const TOK_THREADS: u32 = 512;
const TOK_FWD_SMEM: u32 = 26_656;
/// The frame's forward activations (TOK_FWD_FLOATS, tokens_fwd's shared memory): its tape record.
const TOK_FWD_FLOATS: usize = TOK_FWD_SMEM as usize / 4;
const TOK_BWD_SMEM: u32 = 49_088;
/// The largest audio width whose [8,16,C] window both kernels copy into their shared memory
/// (TOK_AUDIO_MAX_C), after their own floats.
const TOK_AUDIO_MAX_C: usize = 64;
fn audio_smem(c: usize) -> u32 {
    if c <= TOK_AUDIO_MAX_C { (4 * WINDOWS * WINDOW_LEN * c) as u32 } else { 0 }
}
/// First float of an_conv0_w (T_AN0W in the kernel): the token section's data-dependent tensors follow.
const TOKEN_FIXED_END: usize = 150_752;

/// The B frames' inputs on the GPU: audio [B,8,16,C], eye [B], view [B,12], ids [B].
#[derive(Debug, Clone, Copy)]
pub struct FrameBufs {
    pub audio: DevBuf<f32>,
    pub eye: DevBuf<f32>,
    pub view: DevBuf<f32>,
    pub ids: DevBuf<i32>,
    /// tokens_fwd's per-frame activations [B][TOK_FWD_FLOATS], which tokens_bwd reads.
    tape: DevBuf<f32>,
}

impl FrameBufs {
    /// Uploads `frames` into new slots of `arena`, checking the identities against the layout.
    pub fn upload(gpu: &Gpu, arena: &mut Arena, layout: &DeformLayout, frames: &FrameInputs<f32>) -> Result<Self> {
        if let Some(&id) = frames.ids.iter().find(|&&id| id >= layout.identities) {
            return Err(Error::input(format!(
                "identity {id} out of range: the model has {}",
                layout.identities
            )));
        }
        let ids: Vec<i32> = frames.ids.iter().map(|&i| i as i32).collect();
        let bufs = FrameBufs {
            audio: arena.alloc(gpu, frames.audio.len())?,
            eye: arena.alloc(gpu, frames.eye.len())?,
            view: arena.alloc(gpu, frames.view.len())?,
            ids: arena.alloc(gpu, ids.len())?,
            tape: arena.alloc(gpu, frames.eye.len() * TOK_FWD_FLOATS)?,
        };
        gpu.upload(bufs.audio, &frames.audio)?;
        gpu.upload(bufs.eye, &frames.eye)?;
        gpu.upload(bufs.view, &frames.view)?;
        gpu.upload(bufs.ids, &ids)?;
        Ok(bufs)
    }

    /// The floats `upload` takes from an arena for `frames` frames (before the arena's alignment).
    pub fn floats(layout: &DeformLayout, frames: usize) -> usize {
        frames * (WINDOWS * WINDOW_LEN * layout.channels + 1 + VIEW_IN + 1 + TOK_FWD_FLOATS)
    }

    fn frames(&self, layout: &DeformLayout) -> Result<usize> {
        let b = self.eye.len();
        let c = layout.channels;
        if b == 0
            || self.audio.len() != b * WINDOWS * WINDOW_LEN * c
            || self.view.len() != b * VIEW_IN
            || self.ids.len() != b
        {
            return Err(Error::Cuda(format!(
                "tokens: audio {} (B·8·16·C = {}), view {} (B·12), ids {} for B = {b}",
                self.audio.len(),
                b * WINDOWS * WINDOW_LEN * c,
                self.view.len(),
                self.ids.len()
            )));
        }
        Ok(b)
    }
}

/// Sets the token kernels' shared-memory limits (once, before the first launch): past the default 48 KB with
/// the widest staged audio.
pub fn tokens_setup(gpu: &Gpu) -> Result<()> {
    gpu.set_max_dynamic_shared("tokens_fwd", TOK_FWD_SMEM + audio_smem(TOK_AUDIO_MAX_C))?;
    gpu.set_max_dynamic_shared("tokens_bwd", TOK_BWD_SMEM + audio_smem(TOK_AUDIO_MAX_C))
}

fn check_layout(layout: &DeformLayout, params: DevBuf<f32>) -> Result<()> {
    if layout.an_conv0_w.off != TOKEN_FIXED_END || params.len() != layout.total {
        return Err(Error::Cuda(format!(
            "tokens: parameter buffer of {} floats with an_conv0_w at {}; kernels/audio.cu expects {} and {TOKEN_FIXED_END}",
            params.len(),
            layout.an_conv0_w.off,
            layout.total
        )));
    }
    Ok(())
}

/// Multiply-adds of one frame's token path: AudioNet's convs and FC on 8 windows, AudioAttNet, the MLPs,
/// M(a,i) and the K/V projections.
fn macs_per_frame(c: usize) -> u64 {
    let an = 8 * (8 * 32 * c * 3 + 4 * 32 * 32 * 3 + 2 * 64 * 32 * 3 + 64 * 64 * 3 + 64 * 64 + 32 * 64);
    let at = 8 * 3 * (32 * 16 + 16 * 8 + 8 * 4 + 4 * 2 + 2) + 64;
    let mlps = 32 * 64 + 64 * 64 + 5 * 64 * 64 + 32 * 64 + 64 * 64 + 12 * 64 + 64 * 64 + 2 * 4 * 64 * 64;
    (an + at + mlps) as u64
}

fn multiplicative(layout: &DeformLayout) -> i32 {
    (layout.disentangle == Disentangle::Multiplicative) as i32
}

/// The frame count and the arguments tokens_fwd and tokens_bwd open with (params, the frames' audio, eye,
/// view and identity, B, C, the disentanglement mode), after checking the layout and the frames.
fn token_inputs(layout: &DeformLayout, params: DevBuf<f32>, frames: &FrameBufs) -> Result<(usize, Vec<Arg>)> {
    check_layout(layout, params)?;
    let b = frames.frames(layout)?;
    let args = vec![
        params.into(),
        frames.audio.into(),
        frames.eye.into(),
        frames.view.into(),
        frames.ids.into(),
        (b as i32).into(),
        (layout.channels as i32).into(),
        multiplicative(layout).into(),
    ];
    Ok((b, args))
}

/// kv [2,B,4,64]: the K and V rows of the B frames' tokens; the frames' activations stay in `frames` for
/// tokens_bwd.
pub fn tokens_fwd(
    gpu: &Gpu,
    layout: &DeformLayout,
    params: DevBuf<f32>,
    frames: &FrameBufs,
    kv: DevBuf<f32>,
) -> Result<()> {
    let (b, mut args) = token_inputs(layout, params, frames)?;
    if kv.len() != 2 * b * TOKENS * D {
        return Err(Error::Cuda(format!(
            "tokens_fwd: kv has {} floats, want {}",
            kv.len(),
            2 * b * TOKENS * D
        )));
    }
    let c = layout.channels;
    let cost = Cost {
        bytes: 4 * (b * (WINDOWS * WINDOW_LEN * c + 14 + 2 * TOKENS * D + TOK_FWD_FLOATS) + layout.total) as u64,
        flop: 2 * b as u64 * macs_per_frame(c),
    };
    let cfg = LaunchCfg {
        grid: (b as u32, 1, 1),
        block: (TOK_THREADS, 1, 1),
        shared_bytes: TOK_FWD_SMEM + audio_smem(c),
        cost,
    };
    args.extend::<[Arg; 2]>([kv.into(), frames.tape.into()]);
    gpu.launch("tokens_fwd", cfg, &args)
}

/// Backward of the token path from d_kv [2,B,4,64]: zeroes the token section of d_params and fills it
/// (identity rows not in the batch stay 0); adds to wk, bk, wv, bv (deform_bwd has written them). Reads the
/// activations tokens_fwd left in `frames`: tokens_fwd must have run last on these frames with these params.
pub fn tokens_bwd(
    gpu: &Gpu,
    layout: &DeformLayout,
    params: DevBuf<f32>,
    frames: &FrameBufs,
    d_kv: DevBuf<f32>,
    d_params: DevBuf<f32>,
) -> Result<()> {
    let (b, mut args) = token_inputs(layout, params, frames)?;
    if d_kv.len() != 2 * b * TOKENS * D || d_params.len() != params.len() {
        return Err(Error::Cuda(format!(
            "tokens_bwd: d_kv {} (want {}), d_params {}",
            d_kv.len(),
            2 * b * TOKENS * D,
            d_params.len()
        )));
    }
    let chain = layout.chain_floats();
    elementwise::fill(gpu, d_params.slice(chain, layout.total - chain), 0.0)?;
    let c = layout.channels;
    let cost = Cost {
        bytes: 4 * (b * (WINDOWS * WINDOW_LEN * c + 14 + 2 * TOKENS * D + TOK_FWD_FLOATS) + layout.total) as u64
            + 8 * (b * (layout.total - chain)) as u64,
        flop: 4 * b as u64 * macs_per_frame(c),
    };
    let cfg = LaunchCfg {
        grid: (b as u32, 1, 1),
        block: (TOK_THREADS, 1, 1),
        shared_bytes: TOK_BWD_SMEM + audio_smem(c),
        cost,
    };
    args.extend::<[Arg; 3]>([d_kv.into(), frames.tape.into(), d_params.into()]);
    gpu.launch("tokens_bwd", cfg, &args)
}
