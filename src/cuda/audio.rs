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
const TOK_BWD_SMEM: u32 = 34_752;
/// AudioNet's blocks: tokens_audio_fwd's one window (WindowRows<1>::floats) and tokens_audio_bwd's
/// TOK_AUDIO_BWD_WINDOWS (TOK_AUDIO_BWD_FLOATS), in floats of shared memory before the audio's.
const AUDIO_FWD_FLOATS: usize = 672;
const AUDIO_BWD_WINDOWS: usize = 2;
const AUDIO_BWD_FLOATS: usize = 2432;
/// The largest audio width whose windows the AudioNet kernels copy into their shared memory
/// (TOK_AUDIO_MAX_C), after their own floats: `windows` windows of [16,C].
const TOK_AUDIO_MAX_C: usize = 64;
fn audio_smem(c: usize, windows: usize) -> u32 {
    if c <= TOK_AUDIO_MAX_C { (4 * windows * WINDOW_LEN * c) as u32 } else { 0 }
}
/// dL/dX of the windows' codes, [B,8,32]: from tokens_bwd to tokens_audio_bwd.
const CODE: usize = 32;
/// First float of an_conv0_w (T_AN0W in the kernel): the token section's data-dependent tensors follow.
const TOKEN_FIXED_END: usize = 150_752;

/// The B frames' inputs on the GPU: audio [B,8,16,C], eye [B], view [B,12], ids [B].
#[derive(Debug, Clone, Copy)]
pub struct FrameBufs {
    pub audio: DevBuf<f32>,
    pub eye: DevBuf<f32>,
    pub view: DevBuf<f32>,
    pub ids: DevBuf<i32>,
    /// The forward's per-frame activations [B][TOK_FWD_FLOATS], which the backward reads.
    tape: DevBuf<f32>,
    /// tokens_bwd's gradients of the window codes [B,8,32], which tokens_audio_bwd reads.
    d_codes: DevBuf<f32>,
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
            d_codes: arena.alloc(gpu, frames.eye.len() * WINDOWS * CODE)?,
        };
        gpu.upload(bufs.audio, &frames.audio)?;
        gpu.upload(bufs.eye, &frames.eye)?;
        gpu.upload(bufs.view, &frames.view)?;
        gpu.upload(bufs.ids, &ids)?;
        Ok(bufs)
    }

    /// The floats `upload` takes from an arena for `frames` frames (before the arena's alignment).
    pub fn floats(layout: &DeformLayout, frames: usize) -> usize {
        frames * (WINDOWS * WINDOW_LEN * layout.channels + 1 + VIEW_IN + 1 + TOK_FWD_FLOATS + WINDOWS * CODE)
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

/// Floats of AudioNet's weights and biases (an_conv1_w … an_fc1_b, an_conv0_w, an_conv0_b).
fn audio_net_floats(layout: &DeformLayout) -> usize {
    layout.at_conv0_w.off - layout.an_conv1_w.off + layout.an_conv0_w.len + layout.an_conv0_b.len
}

/// Multiply-adds of AudioNet on one window: its four convs and its FC.
fn audio_net_macs(c: usize) -> u64 {
    (8 * 32 * c * 3 + 4 * 32 * 32 * 3 + 2 * 64 * 32 * 3 + 64 * 64 * 3 + 64 * 64 + 32 * 64) as u64
}

/// Multiply-adds of the rest of one frame's token path: AudioAttNet, the MLPs, M(a,i) and the K/V
/// projections.
fn frame_macs() -> u64 {
    let at = 8 * 3 * (32 * 16 + 16 * 8 + 8 * 4 + 4 * 2 + 2) + 64;
    let mlps = 32 * 64 + 64 * 64 + 5 * 64 * 64 + 32 * 64 + 64 * 64 + 12 * 64 + 64 * 64 + 2 * 4 * 64 * 64;
    (at + mlps) as u64
}

fn multiplicative(layout: &DeformLayout) -> i32 {
    (layout.disentangle == Disentangle::Multiplicative) as i32
}

/// The frame count and the arguments tokens_fwd and tokens_bwd open with (params, the frames' eye, view and
/// identity, B, C, the disentanglement mode), after checking the layout and the frames.
fn token_inputs(layout: &DeformLayout, params: DevBuf<f32>, frames: &FrameBufs) -> Result<(usize, Vec<Arg>)> {
    check_layout(layout, params)?;
    let b = frames.frames(layout)?;
    let args = vec![
        params.into(),
        frames.eye.into(),
        frames.view.into(),
        frames.ids.into(),
        (b as i32).into(),
        (layout.channels as i32).into(),
        multiplicative(layout).into(),
    ];
    Ok((b, args))
}

/// kv [2,B,4,64]: the K and V rows of the B frames' tokens (tokens_audio_fwd, then tokens_fwd); the frames'
/// activations stay in `frames` for tokens_bwd.
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
    let windows = b * WINDOWS;
    let audio_weights = audio_net_floats(layout);
    let audio_cfg = LaunchCfg {
        grid: (windows as u32, 1, 1),
        block: (TOK_THREADS, 1, 1),
        shared_bytes: (4 * AUDIO_FWD_FLOATS) as u32 + audio_smem(c, 1),
        cost: Cost {
            bytes: 4 * (windows * (WINDOW_LEN * c + AUDIO_FWD_FLOATS) + audio_weights) as u64,
            flop: 2 * windows as u64 * audio_net_macs(c),
        },
    };
    let audio_args = [params.into(), frames.audio.into(), (c as i32).into(), frames.tape.into()];
    gpu.launch("tokens_audio_fwd", audio_cfg, &audio_args)?;
    let cfg = LaunchCfg {
        grid: (b as u32, 1, 1),
        block: (TOK_THREADS, 1, 1),
        shared_bytes: TOK_FWD_SMEM,
        cost: Cost {
            bytes: 4 * (b * (14 + WINDOWS * CODE + 2 * TOKENS * D + TOK_FWD_FLOATS) + layout.total) as u64,
            flop: 2 * b as u64 * frame_macs(),
        },
    };
    args.extend::<[Arg; 2]>([kv.into(), frames.tape.into()]);
    gpu.launch("tokens_fwd", cfg, &args)
}

/// Backward of the token path from d_kv [2,B,4,64] (tokens_bwd, then tokens_audio_bwd): zeroes the token
/// section of d_params and fills it (identity rows not in the batch stay 0); adds to wk, bk, wv, bv
/// (deform_bwd has written them). Reads the activations the forward left in `frames`: tokens_fwd must have
/// run last on these frames with these params.
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
    let audio_weights = audio_net_floats(layout);
    let rest = layout.total - chain - audio_weights;
    let cfg = LaunchCfg {
        grid: (b as u32, 1, 1),
        block: (TOK_THREADS, 1, 1),
        shared_bytes: TOK_BWD_SMEM,
        cost: Cost {
            bytes: 4 * (b * (14 + 2 * TOKENS * D + TOK_FWD_FLOATS + WINDOWS * CODE) + layout.total) as u64
                + 8 * (b * rest) as u64,
            flop: 4 * b as u64 * frame_macs(),
        },
    };
    args.extend::<[Arg; 4]>([d_kv.into(), frames.tape.into(), d_params.into(), frames.d_codes.into()]);
    gpu.launch("tokens_bwd", cfg, &args)?;
    let blocks = b * WINDOWS / AUDIO_BWD_WINDOWS;
    let audio_cfg = LaunchCfg {
        grid: (blocks as u32, 1, 1),
        block: (TOK_THREADS, 1, 1),
        shared_bytes: (4 * AUDIO_BWD_FLOATS) as u32 + audio_smem(c, AUDIO_BWD_WINDOWS),
        cost: Cost {
            bytes: 4 * (b * WINDOWS * (WINDOW_LEN * c + AUDIO_FWD_FLOATS + CODE) + audio_weights) as u64
                + 8 * (blocks * audio_weights) as u64,
            flop: 4 * (b * WINDOWS) as u64 * audio_net_macs(c),
        },
    };
    let audio_args = [
        params.into(),
        frames.audio.into(),
        (c as i32).into(),
        frames.tape.into(),
        frames.d_codes.into(),
        d_params.into(),
    ];
    gpu.launch("tokens_audio_bwd", audio_cfg, &audio_args)
}
