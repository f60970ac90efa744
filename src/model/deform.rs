//! The deformation network of SPEC §5 (audio encoder, identity embeddings, disentanglement module M(a,i),
//! eye/view/null tokens, fused spatial-audio attention, F_d heads): its parameter layout, its initialisation,
//! and one batch's forward-then-backward tape on the CPU backend.
//!
//! Dimension letters: B frames, N Gaussians, P = B·N (Gaussian, frame) pairs (pair r = b·N + n, frame-major),
//! T = 4 tokens, W = 8 audio windows, C audio channels, D = 64 model width.
//!
//! All parameters live in one flat buffer (`DeformLayout`), in the order of `deform_tensors!` below: the
//! per-pair chain first (fixed shapes, so kernels/attention.cu hard-codes its offsets), then the per-frame
//! token path (kernels/audio.cu), whose last two tensors depend on C and on the number of identities.
//! Gradients use the same layout. Weights are PyTorch's [out, in] (conv: [out, in, 3]).

use crate::cpu::attention::{deform_bwd, deform_fwd, Canonical, Deformed, Dropout, Operands};
use crate::cpu::audio::{tokens_bwd, tokens_fwd, FrameInputs, TokenTape};
use crate::cpu::real::Real;
use crate::rng::Rng;

/// Model width (token, query and feature size).
pub const D: usize = 64;
/// Attention heads and their width.
pub const HEADS: usize = 2;
pub const HEAD_DIM: usize = D / HEADS;
/// Tokens per frame: M(a,i), eye, view, null.
pub const TOKENS: usize = 4;
/// FFN hidden width.
pub const FFN: usize = 128;
/// Hidden width of each F_d head.
pub const HEAD_HIDDEN: usize = 128;
/// F_d heads: Δμ, Δlog-scale, Δrotation, Δopacity-logit, ΔSH; their outputs concatenated make one delta row.
pub const HEAD_OUT: [usize; 5] = [3, 3, 4, 1, 48];
/// First element of each head's output in the delta row.
pub const HEAD_OFF: [usize; 5] = [0, 3, 6, 10, 11];
/// Width of the delta row (3 + 3 + 4 + 1 + 48).
pub const DELTAS: usize = 59;
/// Audio windows per frame (t−4 … t+3) and feature frames per window.
pub const WINDOWS: usize = 8;
pub const WINDOW_LEN: usize = 16;
/// Rank k of the disentanglement module (SPEC §5 default).
pub const RANK: usize = 64;
/// AudioNet conv channels after each of its 4 stride-2 convs, and AudioAttNet's after each of its 5 convs.
pub const AUDIO_CONV: [usize; 4] = [32, 32, 64, 64];
pub const ATT_CONV: [usize; 6] = [32, 16, 8, 4, 2, 1];
/// Eye sinusoid: frequencies 10000^(j/16), j < 16, sin then cos.
pub const EYE_FREQS: usize = 16;
/// View input: R (9, row-major) then T (3) of world-to-camera.
pub const VIEW_IN: usize = 12;
/// Dropout probability in training (SPEC §5).
pub const DROPOUT: f32 = 0.2;

/// How M combines the audio and identity codes: the paper's product or the released code's sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disentangle {
    /// M(a,i) = C[(U1 a) ⊙ (U2 i)] + W2 a + W3 i (SPEC §5, the default).
    Multiplicative = 0,
    /// M(a,i) = C[(U1 a) + (U2 i)] + W2 a + W3 i (for comparison only).
    Additive = 1,
}

impl Disentangle {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A tensor's place in the flat buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub off: usize,
    pub len: usize,
}

impl Slot {
    pub fn range(&self) -> std::ops::Range<usize> {
        self.off..self.off + self.len
    }
}

/// How a tensor is initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// PyTorch's default for Linear and Conv1d weights and biases: U(−1/√fan_in, 1/√fan_in).
    Uniform {
        fan_in: usize,
    },
    /// Xavier-uniform with a gain: U(±gain·√(6/(fan_in + fan_out))) (the F_d heads' last layers, gain 0.1).
    Xavier {
        fan_in: usize,
        fan_out: usize,
        gain: f64,
    },
    Constant(f64),
    Normal {
        std: f64,
    },
}

macro_rules! deform_tensors {
    (|$c:ident, $ids:ident| { $($name:ident: $len:expr, $init:expr;)* }) => {
        /// Every tensor's slot in the flat parameter (and gradient) buffer.
        #[derive(Debug, Clone, PartialEq)]
        pub struct DeformLayout {
            /// Audio feature channels C.
            pub channels: usize,
            /// Identities (rows of `id_emb`).
            pub identities: usize,
            pub disentangle: Disentangle,
            /// Floats in the whole buffer.
            pub total: usize,
            $(pub $name: Slot,)*
        }

        impl DeformLayout {
            pub fn new(channels: usize, identities: usize, disentangle: Disentangle) -> Self {
                let ($c, $ids) = (channels, identities);
                let mut off = 0usize;
                $(let $name = Slot { off, len: $len }; off += $len;)*
                DeformLayout { channels, identities, disentangle, total: off, $($name,)* }
            }

            /// (name, slot, init) of every tensor, in buffer order.
            pub fn tensors(&self) -> Vec<(&'static str, Slot, Init)> {
                let ($c, $ids) = (self.channels, self.identities);
                let _ = ($c, $ids);
                vec![$((stringify!($name), self.$name, $init),)*]
            }
        }
    };
}

const fn lin(fan_in: usize) -> Init {
    Init::Uniform { fan_in }
}
const ZERO: Init = Init::Constant(0.0);
const ONE: Init = Init::Constant(1.0);

deform_tensors!(|c, ids| {
    // Per-pair chain (kernels/attention.cu: fixed offsets, ATT_* there).
    wq: D * D, lin(D);
    bq: D, lin(D);
    wk: D * D, lin(D);
    bk: D, lin(D);
    wv: D * D, lin(D);
    bv: D, lin(D);
    wo: D * D, lin(D);
    bo: D, lin(D);
    ln1_g: D, ONE;
    ln1_b: D, ZERO;
    ffn0_w: FFN * D, lin(D);
    ffn0_b: FFN, lin(D);
    ffn1_w: D * FFN, lin(FFN);
    ffn1_b: D, lin(FFN);
    ln2_g: D, ONE;
    ln2_b: D, ZERO;
    // The five heads' first layers stacked: rows h·128 … h·128+127 are head h's [128, 64].
    head0_w: 5 * HEAD_HIDDEN * D, lin(D);
    head0_b: 5 * HEAD_HIDDEN, lin(D);
    // The five heads' last layers stacked: rows HEAD_OFF[h] … are head h's [HEAD_OUT[h], 128]. Xavier with
    // fan_out 48 for all (the ΔSH head's; the smaller heads' bounds would be ≤ 1.4× larger).
    head1_w: DELTAS * HEAD_HIDDEN, Init::Xavier { fan_in: HEAD_HIDDEN, fan_out: 48, gain: 0.1 };
    head1_b: DELTAS, ZERO;
    // Per-frame token path (kernels/audio.cu: TOK_* offsets there, relative to an_conv1_w).
    an_conv1_w: 32 * 32 * 3, lin(32 * 3);
    an_conv1_b: 32, lin(32 * 3);
    an_conv2_w: 64 * 32 * 3, lin(32 * 3);
    an_conv2_b: 64, lin(32 * 3);
    an_conv3_w: 64 * 64 * 3, lin(64 * 3);
    an_conv3_b: 64, lin(64 * 3);
    an_fc0_w: 64 * 64, lin(64);
    an_fc0_b: 64, lin(64);
    an_fc1_w: 32 * 64, lin(64);
    an_fc1_b: 32, lin(64);
    at_conv0_w: 16 * 32 * 3, lin(32 * 3);
    at_conv0_b: 16, lin(32 * 3);
    at_conv1_w: 8 * 16 * 3, lin(16 * 3);
    at_conv1_b: 8, lin(16 * 3);
    at_conv2_w: 4 * 8 * 3, lin(8 * 3);
    at_conv2_b: 4, lin(8 * 3);
    at_conv3_w: 2 * 4 * 3, lin(4 * 3);
    at_conv3_b: 2, lin(4 * 3);
    at_conv4_w: 2 * 3, lin(2 * 3);
    at_conv4_b: 1, lin(2 * 3);
    at_fc_w: WINDOWS * WINDOWS, lin(WINDOWS);
    at_fc_b: WINDOWS, lin(WINDOWS);
    am0_w: D * 32, lin(32);
    am1_w: D * D, lin(D);
    u1: RANK * D, lin(D);
    u2: RANK * D, lin(D);
    mc: D * RANK, lin(RANK);
    w2: D * D, lin(D);
    w3: D * D, lin(D);
    w3_b: D, lin(D);
    eye0_w: D * 2 * EYE_FREQS, lin(2 * EYE_FREQS);
    eye0_b: D, lin(2 * EYE_FREQS);
    eye1_w: D * D, lin(D);
    eye1_b: D, lin(D);
    view0_w: D * VIEW_IN, lin(VIEW_IN);
    view0_b: D, lin(VIEW_IN);
    view1_w: D * D, lin(D);
    view1_b: D, lin(D);
    null: D, Init::Normal { std: 1.0 };
    // Shapes that depend on the data: the first conv's input channels, the identity count.
    an_conv0_w: 32 * c * 3, lin(c * 3);
    an_conv0_b: 32, lin(c * 3);
    id_emb: ids * D, Init::Normal { std: 0.1 };
});

impl DeformLayout {
    /// Floats of the per-pair chain's section (wq … head1_b), at the start of the buffer.
    pub fn chain_floats(&self) -> usize {
        self.an_conv1_w.off
    }

    /// A freshly initialised parameter buffer (PyTorch's defaults; see `Init`).
    pub fn init(&self, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let mut p = vec![0.0f32; self.total];
        for (_, slot, init) in self.tensors() {
            for v in &mut p[slot.range()] {
                *v = match init {
                    Init::Uniform { fan_in } => {
                        let a = 1.0 / (fan_in as f64).sqrt();
                        rng.range(-a as f32, a as f32)
                    }
                    Init::Xavier { fan_in, fan_out, gain } => {
                        let a = gain * (6.0 / (fan_in + fan_out) as f64).sqrt();
                        rng.range(-a as f32, a as f32)
                    }
                    Init::Constant(c) => c as f32,
                    Init::Normal { std } => (std * rng.normal() as f64) as f32,
                };
            }
        }
        p
    }
}

/// One batch's inputs.
#[derive(Debug, Clone)]
pub struct DeformBatch<T> {
    /// The B frames' audio windows, eye values, cameras and identities.
    pub frames: FrameInputs<T>,
    /// Triplane features f(μ) [N, 64] of the batch's identity's Gaussians.
    pub features: Vec<T>,
    /// The identity's canonical Gaussians [N, …].
    pub canonical: Canonical<T>,
    /// Training-mode dropout (`Dropout::off()` for evaluation).
    pub dropout: Dropout,
}

/// What the backward pass returns: the parameter gradient (layout of the parameters) and the gradients of the
/// batch's differentiable inputs.
#[derive(Debug, Clone)]
pub struct DeformGrads<T> {
    pub d_params: Vec<T>,
    /// dL/d f(μ) [N, 64], for the triplane's backward.
    pub d_features: Vec<T>,
    /// dL/d canonical Gaussians (summed over the B frames).
    pub d_canonical: Canonical<T>,
}

/// What the forward pass keeps for the backward: the per-frame token path's activations and the K/V rows.
/// (The per-pair chain keeps nothing: its backward recomputes it, as the fused kernel does.)
pub struct DeformTape<T> {
    tokens: TokenTape<T>,
    kv: Vec<T>,
}

/// Forward: per-frame tokens and K/V (tokens_fwd), then the per-pair chain and the deltas (deform_fwd).
pub fn forward<T: Real + crate::cpu::attention::Math>(
    layout: &DeformLayout,
    params: &[T],
    batch: &DeformBatch<T>,
) -> (Deformed<T>, DeformTape<T>) {
    let tokens = tokens_fwd(layout, params, &batch.frames);
    let kv = tokens.kv.clone();
    let out = deform_fwd(layout, params, &batch.features, &kv, &batch.canonical, batch.dropout, Operands::Exact);
    (out, DeformTape { tokens, kv })
}

/// Backward, in reverse: the per-pair chain (deform_bwd, which recomputes its forward) gives the chain's
/// parameter gradients, d f(μ), d canonical and dL/dK,V; the token path (tokens_bwd) takes dL/dK,V back to
/// the audio encoder, M(a,i), the eye/view MLPs, the null token and the identity embeddings.
pub fn backward<T: Real + crate::cpu::attention::Math>(
    layout: &DeformLayout,
    params: &[T],
    batch: &DeformBatch<T>,
    tape: &DeformTape<T>,
    d_out: &Deformed<T>,
) -> DeformGrads<T> {
    let mut d_params = vec![T::zero(); layout.total];
    let chain = deform_bwd(
        layout,
        params,
        &batch.features,
        &tape.kv,
        &batch.canonical,
        batch.dropout,
        d_out,
        &mut d_params,
        Operands::Exact,
    );
    tokens_bwd(layout, params, &batch.frames, &tape.tokens, &chain.d_kv, &mut d_params);
    DeformGrads {
        d_params,
        d_features: chain.d_features,
        d_canonical: chain.d_canonical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kernels/attention.cu and kernels/audio.cu hard-code these offsets (static_asserts there).
    #[test]
    fn offsets_match_the_kernels() {
        let l = DeformLayout::new(29, 4, Disentangle::Multiplicative);
        assert_eq!(l.chain_floats(), 82_683);
        assert_eq!((l.wk.off, l.bk.off, l.wv.off, l.bv.off), (4160, 8256, 8320, 12_416));
        assert_eq!(l.head1_b.off, 82_624);
        assert_eq!(l.an_conv0_w.off, 150_752);
        assert_eq!(l.id_emb.off, 150_752 + 32 * 29 * 3 + 32);
        assert_eq!(l.total, l.id_emb.off + 4 * D);
        let p = l.init(1);
        assert!(p[l.ln1_g.range()].iter().all(|&v| v == 1.0));
        assert!(p[l.head1_b.range()].iter().all(|&v| v == 0.0));
        assert!(p[l.head1_w.range()]
            .iter()
            .all(|&v| v.abs() <= 0.1 * (6.0f32 / 176.0).sqrt()));
    }
}
