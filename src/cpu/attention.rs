//! CPU twin of kernels/attention.cu: the per-(Gaussian, frame) chain of the deformation network (SPEC §5) —
//! query projection, 2-head attention over the frame's 4 tokens, out-projection, dropout, residual +
//! LayerNorm, FFN, dropout, residual + LayerNorm, the five F_d heads — and the deltas applied to the
//! canonical Gaussians, with the backward of all of it.
//!
//! `deform_fwd` / `deform_bwd` are the twins of the kernels of the same names, and with
//! `Operands::TensorCores` of deform_fwd_*_tc / deform_bwd_*_tc. The backward recomputes the forward, as the
//! fp32 kernels do (the tensor-core backward reads the same values from the forward's tape). Dense layers
//! are `cpu::mlp`'s.
//! Shapes: f [N,64] features, kv [2,B,4,64] (K rows then V rows, from `cpu::audio::tokens_fwd`), pair r = b·N + n.

use std::borrow::Cow;

use super::mlp::{dense_bwd, dense_bwd_w, dense_bwd_x, dense_fwd, Act, Dense, DenseGrads};
use super::real::Real;
use crate::model::deform::{
    DeformLayout, Slot, D, DELTAS, FFN, HEADS, HEAD_DIM, HEAD_HIDDEN, HEAD_OFF, HEAD_OUT, TOKENS,
};
use crate::rng::mix;

/// The transcendental functions the deformation network needs beyond `Real`.
pub trait Math: Real {
    fn exp(self) -> Self;
    fn sqrt(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
}

macro_rules! impl_math {
    ($t:ty) => {
        impl Math for $t {
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
        }
    };
}
impl_math!(f32);
impl_math!(f64);

/// How the chain's dense products see their operands. `Exact`: as they are (the fp32 kernels, and the
/// reference). `TensorCores`: rounded as deform_fwd_*_tc / deform_bwd_*_tc round them for the mma units, to
/// nearest even. The forward takes fp16 inputs and weights (`FwdProduct` says how each layer uses them).
/// The backward's inputs and output gradients (for d_W and d_b) are rounded to bf16, its weights and output
/// gradients for d_x to fp16, each gradient row scaled by a power of two first (`rounded_rows_f16`). Sums,
/// and everything that is not a dense product (attention, LayerNorm, dropout, ReLU masks, the deltas), stay
/// in T, as in the kernels, but for the LayerNorms' x̂ that the backward reads from the kernels' tape: fp16
/// (and h1 = γ1·x̂1 + β1 from it), and d_h2: bf16. The
/// backward through the attention and its two layers, the query and the out-projection, is
/// `attention_bwd_projected`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operands {
    Exact,
    TensorCores,
}

fn rounded<T: Real>(x: &[T], to_f16: bool) -> Vec<T> {
    let round = |v: T| {
        let v = v.to_f64() as f32;
        T::from_f64(if to_f16 { half::f16::from_f32(v).to_f32() } else { half::bf16::from_f32(v).to_f32() } as f64)
    };
    x.iter().map(|&v| round(v)).collect()
}

/// deform_fwd_chain_tc's split product of one layer: x = hi + lo with hi = fp16(x), lo = fp16(x − hi), W = Whi +
/// Wlo the same way; y = hi·Whi + lo·Whi + hi·Wlo, each product exact, summed in T.
fn split_product<T: Real>(s: Dense, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    let split = |v: &[T]| -> (Vec<T>, Vec<T>) {
        let hi = rounded(v, true);
        let rest: Vec<T> = v.iter().zip(&hi).map(|(&a, &h)| a - h).collect();
        (hi, rounded(&rest, true))
    };
    let ((x_hi, x_lo), (w_hi, w_lo)) = (split(x), split(w));
    let linear = Dense { act: Act::None, ..s };
    let mut terms = [vec![T::zero(); y.len()], vec![T::zero(); y.len()]];
    dense_fwd(linear, &x_hi, &w_hi, Some(b), y);
    dense_fwd(linear, &x_lo, &w_hi, None, &mut terms[0]);
    dense_fwd(linear, &x_hi, &w_lo, None, &mut terms[1]);
    for (i, v) in y.iter_mut().enumerate() {
        *v = s.act.apply(*v + terms[0][i] + terms[1][i]);
    }
}

/// A heads' hidden layer y = ReLU(x·Wᵀ + b) with its ReLU decisions (unit on). Exact: on where y > 0.
/// TensorCores, as deform_fwd_heads_tc's tc_head_hidden: y from fp16 operands, on where the split product
/// (`split_product`, near fp32's) is > 0.
fn head_hidden<T: Real>(ops: Operands, s: Dense, x: &[T], w: &[T], b: &[T], y: &mut [T]) -> Vec<bool> {
    assert_eq!(s.act, Act::Relu, "head_hidden: a ReLU layer");
    let linear = Dense { act: Act::None, ..s };
    dense_fwd_ops(ops, FwdProduct::Plain, linear, x, w, b, y);
    let on: Vec<bool> = if ops == Operands::TensorCores {
        let mut split = vec![T::zero(); y.len()];
        split_product(linear, x, w, b, &mut split);
        split.iter().map(|&v| v > T::zero()).collect()
    } else {
        y.iter().map(|&v| v > T::zero()).collect()
    };
    y.iter_mut().for_each(|v| *v = Act::Relu.apply(*v));
    on
}

/// How deform_fwd_*_tc compute a forward layer from fp16 operands: plain (the heads' last layers) or split
/// (the FFN: `split_product`; and the query and the out-projection, which the kernel takes through each
/// frame's projected tokens, each product split the same way: within 2^-20 of the same values). The heads'
/// first layers: `head_hidden`.
#[derive(Clone, Copy)]
enum FwdProduct {
    Plain,
    Split,
}

/// y = act(x·Wᵀ + b) with the forward's operands as `ops` says, `how` for the tensor cores.
fn dense_fwd_ops<T: Real>(ops: Operands, how: FwdProduct, s: Dense, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    match (ops, how) {
        (Operands::Exact, _) => dense_fwd(s, x, w, Some(b), y),
        (Operands::TensorCores, FwdProduct::Split) => split_product(s, x, w, b, y),
        (Operands::TensorCores, FwdProduct::Plain) => dense_fwd(s, &rounded(x, true), &rounded(w, true), Some(b), y),
    }
}

/// LayerNorm epsilon (SPEC §5).
pub const LN_EPS: f64 = 1e-12;

/// Dropout with a counter-based mask: elements 2m and 2m + 1 take the low and the high 16 bits of
/// u = hash32(lo ^ base), lo and hi being the 32-bit halves of m and base = hash32(hi ^ key's high half) ^
/// key's low half; an element is kept iff its 16 bits ≥ threshold, and kept elements are scaled by `scale`
/// = 1/(1 − p). `key` = mix(mix(seed) + step), so the CPU and GPU draw the same mask for a step. The
/// chain's element index is ((site·B + b)·N + n)·64 + j, site 0 after the out-projection, site 1 after the
/// FFN. One 32-bit hash (two multiply-xorshift rounds) per two elements instead of SplitMix64 per element:
/// a sixth of the GPU's instructions, and p to 2^-16.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    pub key: u64,
    /// round(p · 2^16): the 16-bit uniform must be at least this to keep.
    pub threshold: u32,
    pub scale: f32,
}

impl Dropout {
    pub fn new(p: f32, seed: u64, step: u64) -> Self {
        assert!((0.0..1.0).contains(&p), "dropout probability {p} not in [0, 1)");
        Dropout {
            key: mix(mix(seed).wrapping_add(step)),
            threshold: (p as f64 * (1u64 << 16) as f64).round() as u32,
            scale: 1.0 / (1.0 - p),
        }
    }

    /// Evaluation mode: every element kept, scale 1.
    pub fn off() -> Self {
        Dropout {
            key: 0,
            threshold: 0,
            scale: 1.0,
        }
    }

    /// The factor element `idx` is multiplied by: 0 or `scale`.
    pub fn factor<T: Real>(&self, idx: u64) -> T {
        if self.threshold == 0 {
            return T::one();
        }
        let m = idx >> 1;
        let base = hash32((m >> 32) as u32 ^ (self.key >> 32) as u32) ^ self.key as u32;
        let u = hash32(m as u32 ^ base);
        if (if idx & 1 == 0 { u & 0xffff } else { u >> 16 }) >= self.threshold {
            T::from_f64(self.scale as f64)
        } else {
            T::zero()
        }
    }
}

/// The dropout's 32-bit integer mix (kernels/attention.cu: hash32).
fn hash32(mut x: u32) -> u32 {
    x = (x ^ (x >> 16)).wrapping_mul(0x21f0_aaad);
    x = (x ^ (x >> 15)).wrapping_mul(0x735a_2d97);
    x ^ (x >> 15)
}

/// An identity's canonical Gaussians: means [N,3], log-scales [N,3], rotations (w,x,y,z) [N,4], opacity
/// logits [N], SH [N,48].
#[derive(Debug, Clone, PartialEq)]
pub struct Canonical<T> {
    pub means: Vec<T>,
    pub log_scales: Vec<T>,
    pub rotations: Vec<T>,
    pub opacities: Vec<T>,
    pub sh: Vec<T>,
}

impl<T: Real> Canonical<T> {
    pub fn zeros(n: usize) -> Self {
        let z = |k: usize| vec![T::zero(); n * k];
        Canonical {
            means: z(3),
            log_scales: z(3),
            rotations: z(4),
            opacities: z(1),
            sh: z(48),
        }
    }
    pub fn len(&self) -> usize {
        self.opacities.len()
    }
    pub fn is_empty(&self) -> bool {
        self.opacities.is_empty()
    }
}

/// The deformed, activated Gaussians of every frame, frame-major: means [B,N,3], scales [B,N,3] (exp),
/// rotations [B,N,4] (unit), opacities [B,N] (sigmoid), SH [B,N,48].
#[derive(Debug, Clone, PartialEq)]
pub struct Deformed<T> {
    pub means: Vec<T>,
    pub scales: Vec<T>,
    pub rotations: Vec<T>,
    pub opacities: Vec<T>,
    pub sh: Vec<T>,
}

impl<T: Real> Deformed<T> {
    pub fn zeros(pairs: usize) -> Self {
        let z = |k: usize| vec![T::zero(); pairs * k];
        Deformed {
            means: z(3),
            scales: z(3),
            rotations: z(4),
            opacities: z(1),
            sh: z(48),
        }
    }
}

/// LayerNorm of one row: y = γ·x̂ + β, x̂ = (x − mean)/√(var + eps) (biased variance). Returns 1/√(var + eps);
/// writes x̂ into `xhat`.
pub fn layer_norm_fwd<T: Math>(x: &[T], g: &[T], b: &[T], xhat: &mut [T], y: &mut [T]) -> T {
    let n = T::from_f64(x.len() as f64);
    let mut mean = T::zero();
    for &v in x {
        mean += v;
    }
    mean = mean / n;
    let mut var = T::zero();
    for &v in x {
        var += (v - mean) * (v - mean);
    }
    let rstd = T::one() / (var / n + T::from_f64(LN_EPS)).sqrt();
    for j in 0..x.len() {
        xhat[j] = (x[j] - mean) * rstd;
        y[j] = g[j] * xhat[j] + b[j];
    }
    rstd
}

/// LayerNorm's backward for one row: d_x = rstd·(d_x̂ − mean(d_x̂) − x̂·mean(d_x̂ ⊙ x̂)) with d_x̂ = γ ⊙ d_y;
/// d_γ += d_y ⊙ x̂, d_β += d_y.
pub fn layer_norm_vjp<T: Math>(xhat: &[T], rstd: T, g: &[T], d_y: &[T], d_x: &mut [T], d_g: &mut [T], d_b: &mut [T]) {
    let n = T::from_f64(xhat.len() as f64);
    let (mut m1, mut m2) = (T::zero(), T::zero());
    for j in 0..xhat.len() {
        let dxh = g[j] * d_y[j];
        m1 += dxh;
        m2 += dxh * xhat[j];
        d_g[j] += d_y[j] * xhat[j];
        d_b[j] += d_y[j];
    }
    m1 = m1 / n;
    m2 = m2 / n;
    for j in 0..xhat.len() {
        d_x[j] = rstd * (g[j] * d_y[j] - m1 - xhat[j] * m2);
    }
}

/// Attention of one query q [64] over one frame's keys k [4,64] and values v [4,64], per head h (columns
/// h·32 … h·32+31): s_t = q_h·k_t,h / √32, p = softmax_t(s), o_h = Σ_t p_t v_t,h. Writes o [64] and p [2,4].
pub fn attend_fwd<T: Math>(q: &[T], k: &[T], v: &[T], o: &mut [T], p: &mut [T]) {
    let scale = T::from_f64(1.0 / (HEAD_DIM as f64).sqrt());
    for h in 0..HEADS {
        let cols = h * HEAD_DIM..(h + 1) * HEAD_DIM;
        let mut s = [T::zero(); TOKENS];
        for t in 0..TOKENS {
            let mut acc = T::zero();
            for c in cols.clone() {
                acc += q[c] * k[t * D + c];
            }
            s[t] = acc * scale;
        }
        let mut mx = s[0];
        for &st in &s[1..] {
            if st > mx {
                mx = st;
            }
        }
        let mut sum = T::zero();
        for st in &mut s {
            *st = (*st - mx).exp();
            sum += *st;
        }
        for t in 0..TOKENS {
            p[h * TOKENS + t] = s[t] / sum;
        }
        for c in cols {
            let mut acc = T::zero();
            for t in 0..TOKENS {
                acc += p[h * TOKENS + t] * v[t * D + c];
            }
            o[c] = acc;
        }
    }
}

/// attend_fwd's backward: d_q [64] overwritten; d_k, d_v [4,64] accumulated.
pub fn attend_vjp<T: Math>(q: &[T], k: &[T], v: &[T], p: &[T], d_o: &[T], d_q: &mut [T], d_k: &mut [T], d_v: &mut [T]) {
    let scale = T::from_f64(1.0 / (HEAD_DIM as f64).sqrt());
    for h in 0..HEADS {
        let cols = h * HEAD_DIM..(h + 1) * HEAD_DIM;
        let mut d_p = [T::zero(); TOKENS];
        for t in 0..TOKENS {
            let pt = p[h * TOKENS + t];
            for c in cols.clone() {
                d_p[t] += d_o[c] * v[t * D + c];
                d_v[t * D + c] += pt * d_o[c];
            }
        }
        let mut dot = T::zero();
        for t in 0..TOKENS {
            dot += p[h * TOKENS + t] * d_p[t];
        }
        for c in cols.clone() {
            d_q[c] = T::zero();
        }
        for t in 0..TOKENS {
            let d_s = p[h * TOKENS + t] * (d_p[t] - dot) * scale;
            for c in cols.clone() {
                d_q[c] += d_s * k[t * D + c];
                d_k[t * D + c] += d_s * q[c];
            }
        }
    }
}

/// The deltas of one pair applied to its Gaussian's canonical values (index n), written to pair r:
/// μ + Δμ, exp(log s + Δ), normalise(q + Δq), sigmoid(o + Δo), SH + ΔSH.
fn apply_deltas_fwd<T: Math>(c: &Canonical<T>, n: usize, delta: &[T], out: &mut Deformed<T>, r: usize) {
    for a in 0..3 {
        out.means[r * 3 + a] = c.means[n * 3 + a] + delta[a];
        out.scales[r * 3 + a] = (c.log_scales[n * 3 + a] + delta[3 + a]).exp();
    }
    let q: [T; 4] = std::array::from_fn(|a| c.rotations[n * 4 + a] + delta[6 + a]);
    let inv = T::one() / (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    for a in 0..4 {
        out.rotations[r * 4 + a] = q[a] * inv;
    }
    out.opacities[r] = T::one() / (T::one() + (-(c.opacities[n] + delta[10])).exp());
    for j in 0..48 {
        out.sh[r * 48 + j] = c.sh[n * 48 + j] + delta[11 + j];
    }
}

/// apply_deltas_fwd's backward: writes d_delta [59] and adds the same gradients to d_c (the canonical values
/// receive exactly what their delta receives). Quaternion: d_q = (d_q̂ − q̂ (q̂·d_q̂)) / |q|.
fn apply_deltas_vjp<T: Math>(
    c: &Canonical<T>,
    n: usize,
    delta: &[T],
    d_out: &Deformed<T>,
    r: usize,
    d_delta: &mut [T],
    d_c: &mut Canonical<T>,
) {
    for a in 0..3 {
        d_delta[a] = d_out.means[r * 3 + a];
        let s = (c.log_scales[n * 3 + a] + delta[3 + a]).exp();
        d_delta[3 + a] = d_out.scales[r * 3 + a] * s;
    }
    let q: [T; 4] = std::array::from_fn(|a| c.rotations[n * 4 + a] + delta[6 + a]);
    let inv = T::one() / (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
    let mut dot = T::zero();
    for a in 0..4 {
        dot += q[a] * inv * d_out.rotations[r * 4 + a];
    }
    for a in 0..4 {
        d_delta[6 + a] = (d_out.rotations[r * 4 + a] - q[a] * inv * dot) * inv;
    }
    let o = T::one() / (T::one() + (-(c.opacities[n] + delta[10])).exp());
    d_delta[10] = d_out.opacities[r] * o * (T::one() - o);
    for j in 0..48 {
        d_delta[11 + j] = d_out.sh[r * 48 + j];
    }
    for a in 0..3 {
        d_c.means[n * 3 + a] += d_delta[a];
        d_c.log_scales[n * 3 + a] += d_delta[3 + a];
    }
    for a in 0..4 {
        d_c.rotations[n * 4 + a] += d_delta[6 + a];
    }
    d_c.opacities[n] += d_delta[10];
    for j in 0..48 {
        d_c.sh[n * 48 + j] += d_delta[11 + j];
    }
}

/// Every activation of the chain for all P pairs (the backward recomputes these).
struct ChainTape<T> {
    b: usize,
    n: usize,
    /// q [N,64]
    q: Vec<T>,
    /// o [P,64] attention outputs, p [P,2,4] attention weights
    o: Vec<T>,
    probs: Vec<T>,
    /// out-projection [P,64]
    att: Vec<T>,
    /// LayerNorm 1: x̂ [P,64], 1/σ [P], output h1 [P,64]
    xhat1: Vec<T>,
    rstd1: Vec<T>,
    h1: Vec<T>,
    /// FFN hidden (after ReLU) [P,128] and output [P,64]
    z: Vec<T>,
    y: Vec<T>,
    /// LayerNorm 2 and g = ReLU(h2) [P,64]
    xhat2: Vec<T>,
    rstd2: Vec<T>,
    h2: Vec<T>,
    g: Vec<T>,
    /// per head: hidden (after ReLU) [P,128], its ReLU decisions (head_hidden) and output [P,out_h]
    hid: Vec<Vec<T>>,
    hid_on: Vec<Vec<bool>>,
    head_out: Vec<Vec<T>>,
    /// deltas [P,59]
    delta: Vec<T>,
}

fn param<'a, T>(params: &'a [T], s: Slot) -> &'a [T] {
    &params[s.range()]
}

fn param_mut<T>(params: &mut [T], s: Slot) -> &mut [T] {
    &mut params[s.range()]
}

fn dense(rows: usize, n_in: usize, n_out: usize, act: Act) -> Dense {
    Dense { rows, n_in, n_out, act }
}

/// Rows of head h in the stacked head weights: first layer [128·h, 128·(h+1)), last layer HEAD_OFF[h]….
fn head_slots(l: &DeformLayout, h: usize) -> [Slot; 4] {
    let sub = |s: Slot, start: usize, len: usize| Slot {
        off: s.off + start,
        len,
    };
    [
        sub(l.head0_w, h * HEAD_HIDDEN * D, HEAD_HIDDEN * D),
        sub(l.head0_b, h * HEAD_HIDDEN, HEAD_HIDDEN),
        sub(l.head1_w, HEAD_OFF[h] * HEAD_HIDDEN, HEAD_OUT[h] * HEAD_HIDDEN),
        sub(l.head1_b, HEAD_OFF[h], HEAD_OUT[h]),
    ]
}

fn chain_fwd<T: Math>(l: &DeformLayout, params: &[T], f: &[T], kv: &[T], drop: Dropout, ops: Operands) -> ChainTape<T> {
    let n = f.len() / D;
    let b = kv.len() / (2 * TOKENS * D);
    assert_eq!(f.len(), n * D, "deform: features must be [N,64]");
    assert_eq!(kv.len(), 2 * b * TOKENS * D, "deform: kv must be [2,B,4,64]");
    let pr = b * n;
    let w = |s: Slot| param(params, s);
    let z0 = |k: usize| vec![T::zero(); k];
    let mut t = ChainTape {
        b,
        n,
        q: z0(n * D),
        o: z0(pr * D),
        probs: z0(pr * HEADS * TOKENS),
        att: z0(pr * D),
        xhat1: z0(pr * D),
        rstd1: z0(pr),
        h1: z0(pr * D),
        z: z0(pr * FFN),
        y: z0(pr * D),
        xhat2: z0(pr * D),
        rstd2: z0(pr),
        h2: z0(pr * D),
        g: z0(pr * D),
        hid: Vec::new(),
        hid_on: Vec::new(),
        head_out: Vec::new(),
        delta: z0(pr * DELTAS),
    };
    dense_fwd_ops(ops, FwdProduct::Split, dense(n, D, D, Act::None), f, w(l.wq), w(l.bq), &mut t.q);
    let (k_all, v_all) = kv.split_at(b * TOKENS * D);
    for fb in 0..b {
        let kb = &k_all[fb * TOKENS * D..(fb + 1) * TOKENS * D];
        let vb = &v_all[fb * TOKENS * D..(fb + 1) * TOKENS * D];
        for gn in 0..n {
            let r = fb * n + gn;
            attend_fwd(
                &t.q[gn * D..(gn + 1) * D],
                kb,
                vb,
                &mut t.o[r * D..(r + 1) * D],
                &mut t.probs[r * 8..(r + 1) * 8],
            );
        }
    }
    dense_fwd_ops(ops, FwdProduct::Split, dense(pr, D, D, Act::None), &t.o, w(l.wo), w(l.bo), &mut t.att);
    let mut row = vec![T::zero(); D];
    for r in 0..pr {
        let (fb, gn) = (r / n, r % n);
        for j in 0..D {
            let idx = (((fb * n + gn) * D) + j) as u64; // site 0: ((0·B + b)·N + n)·64 + j
            row[j] = f[gn * D + j] + drop.factor::<T>(idx) * t.att[r * D + j];
        }
        t.rstd1[r] = layer_norm_fwd(
            &row,
            w(l.ln1_g),
            w(l.ln1_b),
            &mut t.xhat1[r * D..(r + 1) * D],
            &mut t.h1[r * D..(r + 1) * D],
        );
    }
    dense_fwd_ops(ops, FwdProduct::Split, dense(pr, D, FFN, Act::Relu), &t.h1, w(l.ffn0_w), w(l.ffn0_b), &mut t.z);
    dense_fwd_ops(ops, FwdProduct::Split, dense(pr, FFN, D, Act::None), &t.z, w(l.ffn1_w), w(l.ffn1_b), &mut t.y);
    for r in 0..pr {
        for j in 0..D {
            let idx = ((pr + r) * D + j) as u64; // site 1: ((1·B + b)·N + n)·64 + j
            row[j] = t.h1[r * D + j] + drop.factor::<T>(idx) * t.y[r * D + j];
        }
        t.rstd2[r] = layer_norm_fwd(
            &row,
            w(l.ln2_g),
            w(l.ln2_b),
            &mut t.xhat2[r * D..(r + 1) * D],
            &mut t.h2[r * D..(r + 1) * D],
        );
    }
    for (gi, &hi) in t.g.iter_mut().zip(&t.h2) {
        *gi = Act::Relu.apply(hi);
    }
    for h in 0..5 {
        let [w0, b0, w1, b1] = head_slots(l, h);
        let mut hid = z0(pr * HEAD_HIDDEN);
        let on = head_hidden(ops, dense(pr, D, HEAD_HIDDEN, Act::Relu), &t.g, w(w0), w(b0), &mut hid);
        let mut out = z0(pr * HEAD_OUT[h]);
        dense_fwd_ops(ops, FwdProduct::Plain, dense(pr, HEAD_HIDDEN, HEAD_OUT[h], Act::None), &hid, w(w1), w(b1), &mut out);
        for r in 0..pr {
            t.delta[r * DELTAS + HEAD_OFF[h]..r * DELTAS + HEAD_OFF[h] + HEAD_OUT[h]]
                .copy_from_slice(&out[r * HEAD_OUT[h]..(r + 1) * HEAD_OUT[h]]);
        }
        t.hid.push(hid);
        t.hid_on.push(on);
        t.head_out.push(out);
    }
    t
}

/// Forward of the per-pair chain and the deltas: the deformed Gaussians of every frame.
pub fn deform_fwd<T: Math>(
    l: &DeformLayout,
    params: &[T],
    f: &[T],
    kv: &[T],
    c: &Canonical<T>,
    drop: Dropout,
    ops: Operands,
) -> Deformed<T> {
    let t = chain_fwd(l, params, f, kv, drop, ops);
    assert_eq!(c.len(), t.n, "deform: canonical Gaussians and features disagree on N");
    let mut out = Deformed::zeros(t.b * t.n);
    for r in 0..t.b * t.n {
        apply_deltas_fwd(c, r % t.n, &t.delta[r * DELTAS..(r + 1) * DELTAS], &mut out, r);
    }
    out
}

/// deform_bwd's outputs besides the chain's parameter gradients.
pub struct ChainGrads<T> {
    /// dL/df [N,64]
    pub d_features: Vec<T>,
    /// dL/dK,V [2,B,4,64]
    pub d_kv: Vec<T>,
    pub d_canonical: Canonical<T>,
}

/// Backward of deform_fwd (recomputing it): writes the chain section of `d_params` (wq … head1_b).
#[allow(clippy::too_many_arguments)]
pub fn deform_bwd<T: Math>(
    l: &DeformLayout,
    params: &[T],
    f: &[T],
    kv: &[T],
    c: &Canonical<T>,
    drop: Dropout,
    d_out: &Deformed<T>,
    d_params: &mut [T],
    ops: Operands,
) -> ChainGrads<T> {
    let t = chain_fwd(l, params, f, kv, drop, ops);
    let (b, n) = (t.b, t.n);
    let pr = b * n;
    let w = |s: Slot| param(params, s);
    // deform_bwd_chain_tc reads the LayerNorms' x̂ from its tape as fp16 and recomputes h1 = γ1·x̂1 + β1.
    let (xhat1, xhat2, h1) = if ops == Operands::TensorCores {
        let xhat1 = rounded(&t.xhat1, true);
        let (g1, b1) = (w(l.ln1_g), w(l.ln1_b));
        let h1: Vec<T> = xhat1.iter().enumerate().map(|(i, &x)| g1[i % D] * x + b1[i % D]).collect();
        (Cow::Owned(xhat1), Cow::Owned(rounded(&t.xhat2, true)), Cow::Owned(h1))
    } else {
        (Cow::Borrowed(&t.xhat1[..]), Cow::Borrowed(&t.xhat2[..]), Cow::Borrowed(&t.h1[..]))
    };
    let z0 = |k: usize| vec![T::zero(); k];
    let mut d_c = Canonical::zeros(n);
    let mut d_delta = z0(pr * DELTAS);
    for r in 0..pr {
        apply_deltas_vjp(
            c,
            r % n,
            &t.delta[r * DELTAS..(r + 1) * DELTAS],
            d_out,
            r,
            &mut d_delta[r * DELTAS..(r + 1) * DELTAS],
            &mut d_c,
        );
    }
    // F_d heads: d_g = Σ_h head0_hᵀ · (ReLU' ⊙ head1_hᵀ · d_out_h).
    let mut d_g = z0(pr * D);
    for h in 0..5 {
        let [w0, b0, w1, b1] = head_slots(l, h);
        let mut d_o = z0(pr * HEAD_OUT[h]);
        for r in 0..pr {
            d_o[r * HEAD_OUT[h]..(r + 1) * HEAD_OUT[h]]
                .copy_from_slice(&d_delta[r * DELTAS + HEAD_OFF[h]..r * DELTAS + HEAD_OFF[h] + HEAD_OUT[h]]);
        }
        let out_layer = dense(pr, HEAD_HIDDEN, HEAD_OUT[h], Act::None);
        let d_hid = linear_bwd(ops, params, d_params, (w1, b1), out_layer, &t.hid[h], &t.head_out[h], &d_o);
        // Through the ReLU by the forward's decisions (a select, as Act::Relu's vjp).
        let d_pre: Vec<T> = d_hid.iter().zip(&t.hid_on[h]).map(|(&d, &on)| if on { d } else { T::zero() }).collect();
        let hidden_layer = dense(pr, D, HEAD_HIDDEN, Act::None);
        let d_gh = linear_bwd(ops, params, d_params, (w0, b0), hidden_layer, &t.g, &t.hid[h], &d_pre);
        for (a, v) in d_g.iter_mut().zip(&d_gh) {
            *a += *v;
        }
    }
    // g = ReLU(h2), then LayerNorm 2.
    let mut d_h2: Vec<T> = t.g.iter().zip(&d_g).map(|(&g, &d)| Act::Relu.vjp(g, d)).collect();
    if ops == Operands::TensorCores {
        d_h2 = rounded(&d_h2, false);  // deform_bwd_heads_tc passes it on in bf16
    }
    let d_r2 = layer_norm_rows_vjp(params, d_params, (l.ln2_g, l.ln2_b), &xhat2, &t.rstd2, &d_h2);
    // r2 = h1 + drop(y): FFN.
    let mut d_y = z0(pr * D);
    for r in 0..pr {
        for j in 0..D {
            d_y[r * D + j] = drop.factor::<T>(((pr + r) * D + j) as u64) * d_r2[r * D + j];
        }
    }
    let d_z = linear_bwd(ops, params, d_params, (l.ffn1_w, l.ffn1_b), dense(pr, FFN, D, Act::None), &t.z, &t.y, &d_y);
    let mut d_h1 = linear_bwd(ops, params, d_params, (l.ffn0_w, l.ffn0_b), dense(pr, D, FFN, Act::Relu), &h1, &t.z, &d_z);
    for (a, v) in d_h1.iter_mut().zip(&d_r2) {
        *a += *v;
    }
    // LayerNorm 1; r1 = f + drop(att).
    let d_r1 = layer_norm_rows_vjp(params, d_params, (l.ln1_g, l.ln1_b), &xhat1, &t.rstd1, &d_h1);
    let mut d_f = z0(n * D);
    let mut d_att = z0(pr * D);
    for r in 0..pr {
        for j in 0..D {
            d_f[(r % n) * D + j] += d_r1[r * D + j];
            d_att[r * D + j] = drop.factor::<T>((r * D + j) as u64) * d_r1[r * D + j];
        }
    }
    let mut d_kv = z0(kv.len());
    match ops {
        Operands::Exact => attention_bwd(l, params, f, kv, &t, &d_att, &mut d_f, &mut d_kv, d_params),
        Operands::TensorCores => attention_bwd_projected(l, params, f, kv, &t.probs, &d_att, &mut d_f, &mut d_kv, d_params),
    }
    ChainGrads {
        d_features: d_f,
        d_kv,
        d_canonical: d_c,
    }
}

/// The backward from d_att (dL/d att, [B·N,64]) through the out-projection, the attention and the query:
/// d_f (+=), d_kv [2,B,4,64] (+=) and the gradients of wq, bq, wo, bo (overwritten).
#[allow(clippy::too_many_arguments)]
fn attention_bwd<T: Math>(
    l: &DeformLayout,
    params: &[T],
    f: &[T],
    kv: &[T],
    t: &ChainTape<T>,
    d_att: &[T],
    d_f: &mut [T],
    d_kv: &mut [T],
    d_params: &mut [T],
) {
    let (b, n) = (t.b, t.n);
    let pr = b * n;
    let exact = Operands::Exact;
    let d_o = linear_bwd(exact, params, d_params, (l.wo, l.bo), dense(pr, D, D, Act::None), &t.o, &t.att, d_att);
    // d_q summed over the frames, d_k and d_v over the Gaussians.
    let mut d_q = vec![T::zero(); n * D];
    let mut d_q_pair = vec![T::zero(); D];
    let (k_all, v_all) = kv.split_at(b * TOKENS * D);
    let (d_k_all, d_v_all) = d_kv.split_at_mut(b * TOKENS * D);
    for r in 0..pr {
        let (fb, gn) = (r / n, r % n);
        let blk = fb * TOKENS * D..(fb + 1) * TOKENS * D;
        attend_vjp(
            &t.q[gn * D..(gn + 1) * D],
            &k_all[blk.clone()],
            &v_all[blk.clone()],
            &t.probs[r * 8..(r + 1) * 8],
            &d_o[r * D..(r + 1) * D],
            &mut d_q_pair,
            &mut d_k_all[blk.clone()],
            &mut d_v_all[blk],
        );
        for j in 0..D {
            d_q[gn * D + j] += d_q_pair[j];
        }
    }
    let d_f_q = linear_bwd(exact, params, d_params, (l.wq, l.bq), dense(n, D, D, Act::None), f, &t.q, &d_q);
    for (a, v) in d_f.iter_mut().zip(&d_f_q) {
        *a += *v;
    }
}

/// attention_bwd as deform_bwd_chain_tc computes it (Operands::TensorCores), with the forward's weights
/// `probs` and through each frame's tokens projected by the query and the out-projection
/// (kernels/attention.cu, TOK_*): with S = 1/√32, ht = 4h + t and c over head h's columns, KT[i][ht] =
/// S·Σ_c Wq[c][i]·k_t[c], UT[j][ht] = Σ_c Wo[j][c]·v_t[c]. As the kernel's products, on bf16 operands: d_p
/// = d_att·UT and d_f += ds·KTᵀ (ds, the softmax's backward of d_p, in T), and the sums over a frame's
/// pairs dUT = Σ d_att ⊗ p, dbo = Σ d_att, dKT = Σ ds ⊗ f, dKC = Σ ds; then Wq, bq, Wo and d_kv by the
/// chain rule through the projections, in T.
#[allow(clippy::too_many_arguments)]
fn attention_bwd_projected<T: Math>(
    l: &DeformLayout,
    params: &[T],
    f: &[T],
    kv: &[T],
    probs: &[T],
    d_att: &[T],
    d_f: &mut [T],
    d_kv: &mut [T],
    d_params: &mut [T],
) {
    const HT: usize = HEADS * TOKENS;
    let n = f.len() / D;
    let b = kv.len() / (2 * TOKENS * D);
    let s = T::from_f64(1.0 / (HEAD_DIM as f64).sqrt());
    let (wq, bq, wo) = (param(params, l.wq), param(params, l.bq), param(params, l.wo));
    let key = |fb: usize, t: usize, c: usize| kv[(fb * TOKENS + t) * D + c];
    let value = |fb: usize, t: usize, c: usize| kv[((b + fb) * TOKENS + t) * D + c];
    let f_bf = rounded(f, false);
    let (mut d_ut, mut d_kt, mut d_kc) = (vec![T::zero(); b * D * HT], vec![T::zero(); b * HT * D], vec![T::zero(); b * HT]);
    let mut d_bo = vec![T::zero(); D];
    for fb in 0..b {
        let mut kt = vec![T::zero(); D * HT];
        let mut ut = vec![T::zero(); D * HT];
        for ht in 0..HT {
            let (h, t) = (ht / TOKENS, ht % TOKENS);
            for i in 0..D {
                let (mut sk, mut su) = (T::zero(), T::zero());
                for c in h * HEAD_DIM..(h + 1) * HEAD_DIM {
                    sk += wq[c * D + i] * key(fb, t, c);
                    su += wo[i * D + c] * value(fb, t, c);
                }
                kt[i * HT + ht] = sk * s;
                ut[i * HT + ht] = su;
            }
        }
        let (kt_bf, ut_bf) = (rounded(&kt, false), rounded(&ut, false));
        for gn in 0..n {
            let r = fb * n + gn;
            let p = &probs[r * HT..(r + 1) * HT];
            let (p_bf, da_bf) = (rounded(p, false), rounded(&d_att[r * D..(r + 1) * D], false));
            let mut ds = [T::zero(); HT];
            for (ht, d) in ds.iter_mut().enumerate() {
                for j in 0..D {
                    *d += da_bf[j] * ut_bf[j * HT + ht];
                }
            }
            for h in 0..HEADS {
                let heads = h * TOKENS..(h + 1) * TOKENS;
                let dot = heads.clone().fold(T::zero(), |a, ht| a + p[ht] * ds[ht]);
                for ht in heads {
                    ds[ht] = p[ht] * (ds[ht] - dot);
                }
            }
            let ds_bf = rounded(&ds, false);
            for i in 0..D {
                for ht in 0..HT {
                    d_f[gn * D + i] += ds_bf[ht] * kt_bf[i * HT + ht];
                    d_kt[(fb * HT + ht) * D + i] += ds_bf[ht] * f_bf[gn * D + i];
                }
            }
            for j in 0..D {
                d_bo[j] += da_bf[j];
                for ht in 0..HT {
                    d_ut[(fb * D + j) * HT + ht] += da_bf[j] * p_bf[ht];
                }
            }
            for ht in 0..HT {
                d_kc[fb * HT + ht] += ds_bf[ht];
            }
        }
    }
    param_mut(d_params, l.bo).copy_from_slice(&d_bo);
    for c in 0..D {
        let h = c / HEAD_DIM;
        let mut d_bq = T::zero();
        for i in 0..D {
            let (mut d_wq, mut d_wo) = (T::zero(), T::zero());
            for fb in 0..b {
                for t in 0..TOKENS {
                    let ht = h * TOKENS + t;
                    d_wq += key(fb, t, c) * d_kt[(fb * HT + ht) * D + i];
                    d_wo += d_ut[(fb * D + i) * HT + ht] * value(fb, t, c);
                }
            }
            param_mut(d_params, l.wq)[c * D + i] = d_wq * s;
            param_mut(d_params, l.wo)[i * D + c] = d_wo;
        }
        for fb in 0..b {
            for t in 0..TOKENS {
                let ht = h * TOKENS + t;
                d_bq += key(fb, t, c) * d_kc[fb * HT + ht];
                let (mut dk, mut dv) = (bq[c] * d_kc[fb * HT + ht], T::zero());
                for i in 0..D {
                    dk += wq[c * D + i] * d_kt[(fb * HT + ht) * D + i];
                    dv += wo[i * D + c] * d_ut[(fb * D + i) * HT + ht];
                }
                d_kv[(fb * TOKENS + t) * D + c] += dk * s;
                d_kv[((b + fb) * TOKENS + t) * D + c] += dv;
            }
        }
        param_mut(d_params, l.bq)[c] = d_bq * s;
    }
}

/// deform_bwd_*_tc's to_frags_row_scaled: each row of `width` values times 2^k, with k such that the
/// row's largest |value| times 2^k lies in [2^14, 2^15) (|k| ≤ 100; k = 0 for a largest value of 0 or a
/// subnormal one), rounded to fp16, times 2^-k.
fn rounded_rows_f16<T: Real>(x: &[T], width: usize) -> Vec<T> {
    x.chunks(width)
        .flat_map(|row| {
            let largest = row.iter().map(|v| (v.to_f64() as f32).abs()).fold(0.0f32, f32::max);
            let exponent = (largest.to_bits() >> 23) as i32;
            let k = if exponent == 0 { 0 } else { (141 - exponent).clamp(-100, 100) };
            let (scale, inv) = (2f32.powi(k), 2f32.powi(-k));
            row.iter().map(move |&v| T::from_f64((half::f16::from_f32(v.to_f64() as f32 * scale).to_f32() * inv) as f64))
        })
        .collect()
}

/// Backward of one biased dense layer of the chain (weight and bias at `slots`): their gradients into
/// `d_params` (overwritten), the gradient of the layer's input `x` returned.
#[allow(clippy::too_many_arguments)]
fn linear_bwd<T: Math>(
    ops: Operands,
    params: &[T],
    d_params: &mut [T],
    (w, b): (Slot, Slot),
    s: Dense,
    x: &[T],
    y: &[T],
    d_y: &[T],
) -> Vec<T> {
    let mut d_x = vec![T::zero(); s.rows * s.n_in];
    let (d_w, d_b) = split_grads(d_params, w, b);
    let w = param(params, w);
    match ops {
        Operands::Exact => dense_bwd(s, x, w, y, d_y, DenseGrads { d_x: &mut d_x, d_w, d_b: Some(d_b) }),
        Operands::TensorCores => {
            let (x_bf16, d_y_bf16) = (rounded(x, false), rounded(d_y, false));
            dense_bwd_w(s, &x_bf16, y, &d_y_bf16, d_w, Some(d_b));
            dense_bwd_x(s, &rounded(w, true), y, &rounded_rows_f16(d_y, s.n_out), &mut d_x);
        }
    }
    d_x
}

/// LayerNorm's backward over rows of D (row r: x̂ rows, its 1/σ rstd[r]) from d_y: returns d_x, and writes
/// γ's and β's gradients (`slots`) into d_params.
fn layer_norm_rows_vjp<T: Math>(params: &[T], d_params: &mut [T], slots: (Slot, Slot), xhat: &[T], rstd: &[T], d_y: &[T]) -> Vec<T> {
    let gamma = param(params, slots.0);
    let (d_gamma, d_beta) = split_grads(d_params, slots.0, slots.1);
    zero(d_gamma);
    zero(d_beta);
    let mut d_x = vec![T::zero(); d_y.len()];
    for (r, &rstd) in rstd.iter().enumerate() {
        let rows = r * D..(r + 1) * D;
        layer_norm_vjp(&xhat[rows.clone()], rstd, gamma, &d_y[rows.clone()], &mut d_x[rows], d_gamma, d_beta);
    }
    d_x
}

/// Two disjoint tensors of the gradient buffer, mutably (a weight and its bias: the weight comes first).
pub fn split_grads<T>(d: &mut [T], w: Slot, b: Slot) -> (&mut [T], &mut [T]) {
    assert!(
        w.off + w.len <= b.off,
        "split_grads: the weight slot must precede the bias slot"
    );
    let (lo, hi) = d.split_at_mut(b.off);
    (&mut lo[w.range()], &mut hi[..b.len])
}

pub fn zero<T: Real>(x: &mut [T]) {
    x.iter_mut().for_each(|v| *v = T::zero());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::deform::Disentangle;
    use crate::rng::Rng;

    fn rel(a: &[f64], b: &[f64]) -> f64 {
        let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
        (diff / b.iter().map(|y| y * y).sum::<f64>()).sqrt()
    }

    /// The tensor-core path's backward through the frames' projected tokens computes the direct one's
    /// gradients: they differ only by the bf16 rounding of its products' operands (2^-9 relative each).
    #[test]
    fn projected_attention_backward_matches_direct() {
        let l = DeformLayout::new(5, 3, Disentangle::Multiplicative);
        let params: Vec<f64> = l.init(3).iter().map(|&v| v as f64).collect();
        let (b, n) = (3, 40);
        let mut rng = Rng::new(11);
        let mut random = |len: usize| -> Vec<f64> { rng.vec(len, -1.0, 1.0).into_iter().map(f64::from).collect() };
        let (f, kv, d_att) = (random(n * D), random(2 * b * TOKENS * D), random(b * n * D));
        let t = chain_fwd(&l, &params, &f, &kv, Dropout::off(), Operands::Exact);
        let run = |projected: bool| {
            let (mut d_f, mut d_kv, mut d_params) = (vec![0.0; n * D], vec![0.0; kv.len()], vec![0.0; params.len()]);
            if projected {
                attention_bwd_projected(&l, &params, &f, &kv, &t.probs, &d_att, &mut d_f, &mut d_kv, &mut d_params);
            } else {
                attention_bwd(&l, &params, &f, &kv, &t, &d_att, &mut d_f, &mut d_kv, &mut d_params);
            }
            (d_f, d_kv, d_params)
        };
        let (direct, projected) = (run(false), run(true));
        let mut errors = vec![("d_f", rel(&projected.0, &direct.0)), ("d_kv", rel(&projected.1, &direct.1))];
        for (name, s) in [("wq", l.wq), ("bq", l.bq), ("wo", l.wo), ("bo", l.bo)] {
            assert!(param(&direct.2, s).iter().any(|&v| v != 0.0), "{name}: no gradient to compare");
            errors.push((name, rel(param(&projected.2, s), param(&direct.2, s))));
        }
        assert!(errors.iter().all(|&(_, e)| e < 1e-2), "relative errors: {errors:?}");
    }
}
