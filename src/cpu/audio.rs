//! CPU twin of kernels/audio.cu: the per-frame token path of the deformation network (SPEC §5) and its
//! backward — AudioNet (4 stride-2 Conv1d + FC), AudioAttNet (5 Conv1d + Linear + softmax over the 8 windows
//! → weighted sum), the audio MLP → a, the identity embedding i, M(a,i), the eye and view tokens, the null
//! token, and the K/V projections of the 4 tokens that the per-pair chain attends to.
//!
//! `tokens_fwd` / `tokens_bwd` are the twins of the kernels of the same names. Shapes: audio [B,8,16,C]
//! (window, feature frame, channel), eye [B], view [B,12], ids [B]; tokens [B,4,64]; kv [2,B,4,64].
//! Conv1d activations are time-major [L, C]; weights are PyTorch's [out, in, 3], padding 1.

use super::attention::{split_grads, Math};
use super::mlp::{dense_bwd, dense_fwd, Act, Dense, DenseGrads};
use super::real::Real;
use crate::model::deform::{
    DeformLayout, Disentangle, Slot, ATT_CONV, AUDIO_CONV, D, EYE_FREQS, TOKENS, VIEW_IN, WINDOWS, WINDOW_LEN,
};

/// The B frames' per-frame inputs.
#[derive(Debug, Clone)]
pub struct FrameInputs<T> {
    /// Audio feature windows [B, 8, 16, C].
    pub audio: Vec<T>,
    /// Eye value e ∈ [0, 1] [B].
    pub eye: Vec<T>,
    /// World-to-camera R (row-major) and T [B, 12].
    pub view: Vec<T>,
    /// Identity of each frame [B].
    pub ids: Vec<usize>,
}

/// One Conv1d layer's shape: `rows` independent sequences of length `len` with `c_in` channels.
#[derive(Debug, Clone, Copy)]
pub struct Conv {
    pub rows: usize,
    pub len: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub stride: usize,
}

impl Conv {
    /// Output length with kernel 3 and padding 1.
    pub fn len_out(&self) -> usize {
        (self.len - 1) / self.stride + 1
    }
}

/// y [rows, L_out, c_out] = LeakyReLU(conv(x [rows, L, c_in], w [c_out, c_in, 3]) + b), padding 1:
/// y[t][o] = b[o] + Σ_i Σ_k w[o][i][k] · x[t·stride + k − 1][i].
pub fn conv1d_fwd<T: Real>(s: Conv, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    let lo = s.len_out();
    assert_eq!(x.len(), s.rows * s.len * s.c_in, "conv1d_fwd: x");
    assert_eq!(w.len(), s.c_out * s.c_in * 3, "conv1d_fwd: w");
    assert_eq!(y.len(), s.rows * lo * s.c_out, "conv1d_fwd: y");
    for r in 0..s.rows {
        for t in 0..lo {
            for o in 0..s.c_out {
                let mut acc = T::zero();
                for k in 0..3 {
                    let Some(ti) = (t * s.stride + k).checked_sub(1).filter(|&ti| ti < s.len) else {
                        continue;
                    };
                    for i in 0..s.c_in {
                        acc += w[(o * s.c_in + i) * 3 + k] * x[(r * s.len + ti) * s.c_in + i];
                    }
                }
                acc += b[o];
                y[(r * lo + t) * s.c_out + o] = Act::LeakyRelu.apply(acc);
            }
        }
    }
}

/// conv1d_fwd's backward from its output y: d_x overwritten, d_w and d_b accumulated.
pub fn conv1d_bwd<T: Real>(s: Conv, x: &[T], w: &[T], y: &[T], d_y: &[T], d_x: &mut [T], d_w: &mut [T], d_b: &mut [T]) {
    let lo = s.len_out();
    d_x.iter_mut().for_each(|v| *v = T::zero());
    for r in 0..s.rows {
        for t in 0..lo {
            for o in 0..s.c_out {
                let yi = (r * lo + t) * s.c_out + o;
                let d_pre = Act::LeakyRelu.vjp(y[yi], d_y[yi]);
                d_b[o] += d_pre;
                for k in 0..3 {
                    let Some(ti) = (t * s.stride + k).checked_sub(1).filter(|&ti| ti < s.len) else {
                        continue;
                    };
                    for i in 0..s.c_in {
                        let xi = (r * s.len + ti) * s.c_in + i;
                        d_w[(o * s.c_in + i) * 3 + k] += d_pre * x[xi];
                        d_x[xi] += d_pre * w[(o * s.c_in + i) * 3 + k];
                    }
                }
            }
        }
    }
}

/// The eye value's sinusoid: [sin(e·f_j), cos(e·f_j)], f_j = 10000^(j/16), j < 16.
pub fn eye_sinusoid<T: Math>(e: T, out: &mut [T]) {
    for j in 0..EYE_FREQS {
        let x = e * T::from_f64(10000f64.powf(j as f64 / EYE_FREQS as f64) as f32 as f64);
        out[j] = x.sin();
        out[EYE_FREQS + j] = x.cos();
    }
}

/// The token path's activations, kept for tokens_bwd (all small: O(B) rows).
pub struct TokenTape<T> {
    /// AudioNet conv outputs [B·8, L, C] for L = 8, 4, 2, 1.
    an: [Vec<T>; 4],
    /// AudioNet FC hidden [B·8,64] and window codes X [B,8,32].
    fc0: Vec<T>,
    xw: Vec<T>,
    /// AudioAttNet conv outputs [B,8,c] for c = 16, 8, 4, 2, 1.
    at: [Vec<T>; 5],
    /// Window logits [B,8] and softmax weights [B,8].
    logits: Vec<T>,
    wts: Vec<T>,
    /// Weighted window code [B,32], audio MLP hidden [B,64], a [B,64], i [B,64], U1 a, U2 i, their combination.
    y: Vec<T>,
    ah: Vec<T>,
    a: Vec<T>,
    i: Vec<T>,
    u: Vec<T>,
    v: Vec<T>,
    g: Vec<T>,
    /// Eye sinusoid [B,32] and hidden [B,64]; view hidden [B,64].
    es: Vec<T>,
    eh: Vec<T>,
    vh: Vec<T>,
    /// The tokens [B,4,64] and their K/V projections [2,B,4,64].
    pub tokens: Vec<T>,
    pub kv: Vec<T>,
}

fn dense(rows: usize, n_in: usize, n_out: usize, act: Act) -> Dense {
    Dense { rows, n_in, n_out, act }
}

/// The four AudioNet convs' shapes for `rows` windows of C channels.
fn an_convs(rows: usize, c: usize) -> [Conv; 4] {
    let mut len = WINDOW_LEN;
    let mut c_in = c;
    std::array::from_fn(|k| {
        let s = Conv {
            rows,
            len,
            c_in,
            c_out: AUDIO_CONV[k],
            stride: 2,
        };
        len = s.len_out();
        c_in = s.c_out;
        s
    })
}

/// The five AudioAttNet convs' shapes for `rows` frames (over the 8 windows).
fn at_convs(rows: usize) -> [Conv; 5] {
    std::array::from_fn(|k| Conv {
        rows,
        len: WINDOWS,
        c_in: ATT_CONV[k],
        c_out: ATT_CONV[k + 1],
        stride: 1,
    })
}

fn an_slots(l: &DeformLayout) -> [(Slot, Slot); 4] {
    [
        (l.an_conv0_w, l.an_conv0_b),
        (l.an_conv1_w, l.an_conv1_b),
        (l.an_conv2_w, l.an_conv2_b),
        (l.an_conv3_w, l.an_conv3_b),
    ]
}

fn at_slots(l: &DeformLayout) -> [(Slot, Slot); 5] {
    [
        (l.at_conv0_w, l.at_conv0_b),
        (l.at_conv1_w, l.at_conv1_b),
        (l.at_conv2_w, l.at_conv2_b),
        (l.at_conv3_w, l.at_conv3_b),
        (l.at_conv4_w, l.at_conv4_b),
    ]
}

/// Forward of the token path for the B frames.
pub fn tokens_fwd<T: Math>(l: &DeformLayout, params: &[T], fr: &FrameInputs<T>) -> TokenTape<T> {
    let b = fr.eye.len();
    let c = l.channels;
    assert_eq!(
        fr.audio.len(),
        b * WINDOWS * WINDOW_LEN * c,
        "tokens: audio must be [B,8,16,C]"
    );
    assert_eq!(fr.view.len(), b * VIEW_IN, "tokens: view must be [B,12]");
    assert_eq!(fr.ids.len(), b, "tokens: ids must be [B]");
    let w = |s: Slot| &params[s.range()];
    let z0 = |k: usize| vec![T::zero(); k];
    let bw = b * WINDOWS;
    // AudioNet on the B·8 windows.
    let convs = an_convs(bw, c);
    let mut an: [Vec<T>; 4] = std::array::from_fn(|k| z0(bw * convs[k].len_out() * convs[k].c_out));
    for (k, (s, (ws, bs))) in convs.iter().zip(an_slots(l)).enumerate() {
        let (done, rest) = an.split_at_mut(k);
        let x = if k == 0 { &fr.audio } else { &done[k - 1] };
        conv1d_fwd(*s, x, w(ws), w(bs), &mut rest[0]);
    }
    let mut fc0 = z0(bw * 64);
    dense_fwd(
        dense(bw, 64, 64, Act::LeakyRelu),
        &an[3],
        w(l.an_fc0_w),
        Some(w(l.an_fc0_b)),
        &mut fc0,
    );
    let mut xw = z0(bw * 32);
    dense_fwd(
        dense(bw, 64, 32, Act::None),
        &fc0,
        w(l.an_fc1_w),
        Some(w(l.an_fc1_b)),
        &mut xw,
    );
    // AudioAttNet over the 8 windows of each frame, then the window softmax and the weighted sum.
    let aconvs = at_convs(b);
    let mut at: [Vec<T>; 5] = std::array::from_fn(|k| z0(b * WINDOWS * aconvs[k].c_out));
    for (k, (s, (ws, bs))) in aconvs.iter().zip(at_slots(l)).enumerate() {
        let (done, rest) = at.split_at_mut(k);
        let x = if k == 0 { &xw } else { &done[k - 1] };
        conv1d_fwd(*s, x, w(ws), w(bs), &mut rest[0]);
    }
    let mut logits = z0(b * WINDOWS);
    dense_fwd(
        dense(b, WINDOWS, WINDOWS, Act::None),
        &at[4],
        w(l.at_fc_w),
        Some(w(l.at_fc_b)),
        &mut logits,
    );
    let mut wts = z0(b * WINDOWS);
    let mut y = z0(b * 32);
    for fb in 0..b {
        let z = &logits[fb * WINDOWS..(fb + 1) * WINDOWS];
        let mut mx = z[0];
        for &v in &z[1..] {
            if v > mx {
                mx = v;
            }
        }
        let mut sum = T::zero();
        for k in 0..WINDOWS {
            wts[fb * WINDOWS + k] = (z[k] - mx).exp();
            sum += wts[fb * WINDOWS + k];
        }
        for k in 0..WINDOWS {
            wts[fb * WINDOWS + k] = wts[fb * WINDOWS + k] / sum;
        }
        for j in 0..32 {
            let mut acc = T::zero();
            for k in 0..WINDOWS {
                acc += wts[fb * WINDOWS + k] * xw[(fb * WINDOWS + k) * 32 + j];
            }
            y[fb * 32 + j] = acc;
        }
    }
    // Audio MLP → a; identity i; M(a, i).
    let mut ah = z0(b * D);
    dense_fwd(dense(b, 32, D, Act::Relu), &y, w(l.am0_w), None, &mut ah);
    let mut a = z0(b * D);
    dense_fwd(dense(b, D, D, Act::None), &ah, w(l.am1_w), None, &mut a);
    let mut i = z0(b * D);
    for (fb, &id) in fr.ids.iter().enumerate() {
        assert!(id < l.identities, "tokens: identity {id} of {}", l.identities);
        i[fb * D..(fb + 1) * D].copy_from_slice(&w(l.id_emb)[id * D..(id + 1) * D]);
    }
    let (mut u, mut v, mut g) = (z0(b * D), z0(b * D), z0(b * D));
    dense_fwd(dense(b, D, D, Act::None), &a, w(l.u1), None, &mut u);
    dense_fwd(dense(b, D, D, Act::None), &i, w(l.u2), None, &mut v);
    for j in 0..b * D {
        g[j] = match l.disentangle {
            Disentangle::Multiplicative => u[j] * v[j],
            Disentangle::Additive => u[j] + v[j],
        };
    }
    let (mut m_c, mut m_a, mut m_i) = (z0(b * D), z0(b * D), z0(b * D));
    dense_fwd(dense(b, D, D, Act::None), &g, w(l.mc), None, &mut m_c);
    dense_fwd(dense(b, D, D, Act::None), &a, w(l.w2), None, &mut m_a);
    dense_fwd(dense(b, D, D, Act::None), &i, w(l.w3), Some(w(l.w3_b)), &mut m_i);
    // Eye and view tokens.
    let mut es = z0(b * 2 * EYE_FREQS);
    for fb in 0..b {
        eye_sinusoid(fr.eye[fb], &mut es[fb * 2 * EYE_FREQS..(fb + 1) * 2 * EYE_FREQS]);
    }
    let (mut eh, mut et) = (z0(b * D), z0(b * D));
    dense_fwd(
        dense(b, 2 * EYE_FREQS, D, Act::Relu),
        &es,
        w(l.eye0_w),
        Some(w(l.eye0_b)),
        &mut eh,
    );
    dense_fwd(dense(b, D, D, Act::None), &eh, w(l.eye1_w), Some(w(l.eye1_b)), &mut et);
    let (mut vh, mut vt) = (z0(b * D), z0(b * D));
    dense_fwd(
        dense(b, VIEW_IN, D, Act::Relu),
        &fr.view,
        w(l.view0_w),
        Some(w(l.view0_b)),
        &mut vh,
    );
    dense_fwd(
        dense(b, D, D, Act::None),
        &vh,
        w(l.view1_w),
        Some(w(l.view1_b)),
        &mut vt,
    );
    // Tokens [B,4,64] = [M(a,i), eye, view, null]; K and V.
    let mut tokens = z0(b * TOKENS * D);
    for fb in 0..b {
        for j in 0..D {
            let t = &mut tokens[fb * TOKENS * D..(fb + 1) * TOKENS * D];
            t[j] = m_c[fb * D + j] + m_a[fb * D + j] + m_i[fb * D + j];
            t[D + j] = et[fb * D + j];
            t[2 * D + j] = vt[fb * D + j];
            t[3 * D + j] = w(l.null)[j];
        }
    }
    let mut kv = z0(2 * b * TOKENS * D);
    let (k_out, v_out) = kv.split_at_mut(b * TOKENS * D);
    dense_fwd(
        dense(b * TOKENS, D, D, Act::None),
        &tokens,
        w(l.wk),
        Some(w(l.bk)),
        k_out,
    );
    dense_fwd(
        dense(b * TOKENS, D, D, Act::None),
        &tokens,
        w(l.wv),
        Some(w(l.bv)),
        v_out,
    );
    TokenTape {
        an,
        fc0,
        xw,
        at,
        logits,
        wts,
        y,
        ah,
        a,
        i,
        u,
        v,
        g,
        es,
        eh,
        vh,
        tokens,
        kv,
    }
}

/// Backward of the token path from dL/dK,V [2,B,4,64]: writes the token section of `d_params` and wk, bk,
/// wv, bv (the identity embeddings' gradient is scattered to the batch's identities, zero elsewhere).
pub fn tokens_bwd<T: Math>(
    l: &DeformLayout,
    params: &[T],
    fr: &FrameInputs<T>,
    t: &TokenTape<T>,
    d_kv: &[T],
    d_params: &mut [T],
) {
    let b = fr.eye.len();
    let c = l.channels;
    let bw = b * WINDOWS;
    let w = |s: Slot| &params[s.range()];
    let z0 = |k: usize| vec![T::zero(); k];
    let add = |acc: &mut [T], x: &[T]| acc.iter_mut().zip(x).for_each(|(a, &v)| *a += v);
    // K, V → tokens.
    let (d_k, d_v) = d_kv.split_at(b * TOKENS * D);
    let (mut d_tok, mut d_tok_v) = (z0(b * TOKENS * D), z0(b * TOKENS * D));
    let (k_out, v_out) = t.kv.split_at(b * TOKENS * D);
    let (dw, db) = split_grads(d_params, l.wk, l.bk);
    dense_bwd(
        dense(b * TOKENS, D, D, Act::None),
        &t.tokens,
        w(l.wk),
        k_out,
        d_k,
        DenseGrads {
            d_x: &mut d_tok,
            d_w: dw,
            d_b: Some(db),
        },
    );
    let (dw, db) = split_grads(d_params, l.wv, l.bv);
    dense_bwd(
        dense(b * TOKENS, D, D, Act::None),
        &t.tokens,
        w(l.wv),
        v_out,
        d_v,
        DenseGrads {
            d_x: &mut d_tok_v,
            d_w: dw,
            d_b: Some(db),
        },
    );
    add(&mut d_tok, &d_tok_v);
    let (mut d_m, mut d_et, mut d_vt) = (z0(b * D), z0(b * D), z0(b * D));
    {
        let d_null = &mut d_params[l.null.range()];
        d_null.iter_mut().for_each(|v| *v = T::zero());
        for fb in 0..b {
            let dt = &d_tok[fb * TOKENS * D..(fb + 1) * TOKENS * D];
            d_m[fb * D..(fb + 1) * D].copy_from_slice(&dt[..D]);
            d_et[fb * D..(fb + 1) * D].copy_from_slice(&dt[D..2 * D]);
            d_vt[fb * D..(fb + 1) * D].copy_from_slice(&dt[2 * D..3 * D]);
            add(d_null, &dt[3 * D..]);
        }
    }
    // View and eye MLPs (their inputs are data: d_x is computed and dropped).
    let mut d_vh = z0(b * D);
    let (dw, db) = split_grads(d_params, l.view1_w, l.view1_b);
    let vt: Vec<T> = t
        .tokens
        .chunks(TOKENS * D)
        .flat_map(|r| r[2 * D..3 * D].to_vec())
        .collect();
    dense_bwd(
        dense(b, D, D, Act::None),
        &t.vh,
        w(l.view1_w),
        &vt,
        &d_vt,
        DenseGrads {
            d_x: &mut d_vh,
            d_w: dw,
            d_b: Some(db),
        },
    );
    let (dw, db) = split_grads(d_params, l.view0_w, l.view0_b);
    dense_bwd(
        dense(b, VIEW_IN, D, Act::Relu),
        &fr.view,
        w(l.view0_w),
        &t.vh,
        &d_vh,
        DenseGrads {
            d_x: &mut z0(b * VIEW_IN),
            d_w: dw,
            d_b: Some(db),
        },
    );
    let mut d_eh = z0(b * D);
    let et: Vec<T> = t.tokens.chunks(TOKENS * D).flat_map(|r| r[D..2 * D].to_vec()).collect();
    let (dw, db) = split_grads(d_params, l.eye1_w, l.eye1_b);
    dense_bwd(
        dense(b, D, D, Act::None),
        &t.eh,
        w(l.eye1_w),
        &et,
        &d_et,
        DenseGrads {
            d_x: &mut d_eh,
            d_w: dw,
            d_b: Some(db),
        },
    );
    let (dw, db) = split_grads(d_params, l.eye0_w, l.eye0_b);
    dense_bwd(
        dense(b, 2 * EYE_FREQS, D, Act::Relu),
        &t.es,
        w(l.eye0_w),
        &t.eh,
        &d_eh,
        DenseGrads {
            d_x: &mut z0(b * 2 * EYE_FREQS),
            d_w: dw,
            d_b: Some(db),
        },
    );
    // M(a, i) = C g + W2 a + W3 i + b3, g = u ⊙ v (or u + v), u = U1 a, v = U2 i. (Linear layers without an
    // activation read nothing from y, so the forward outputs not kept are passed as the layer's own d_y.)
    let lin = dense(b, D, D, Act::None);
    let (mut d_g, mut d_a, mut d_i) = (z0(b * D), z0(b * D), z0(b * D));
    dense_bwd(
        lin,
        &t.g,
        w(l.mc),
        &d_m,
        &d_m,
        DenseGrads {
            d_x: &mut d_g,
            d_w: &mut d_params[l.mc.range()],
            d_b: None,
        },
    );
    dense_bwd(
        lin,
        &t.a,
        w(l.w2),
        &d_m,
        &d_m,
        DenseGrads {
            d_x: &mut d_a,
            d_w: &mut d_params[l.w2.range()],
            d_b: None,
        },
    );
    let (dw, db) = split_grads(d_params, l.w3, l.w3_b);
    dense_bwd(
        lin,
        &t.i,
        w(l.w3),
        &d_m,
        &d_m,
        DenseGrads {
            d_x: &mut d_i,
            d_w: dw,
            d_b: Some(db),
        },
    );
    let (mut d_u, mut d_v) = (z0(b * D), z0(b * D));
    for j in 0..b * D {
        match l.disentangle {
            Disentangle::Multiplicative => {
                d_u[j] = d_g[j] * t.v[j];
                d_v[j] = d_g[j] * t.u[j];
            }
            Disentangle::Additive => {
                d_u[j] = d_g[j];
                d_v[j] = d_g[j];
            }
        }
    }
    let mut tmp = z0(b * D);
    dense_bwd(
        lin,
        &t.a,
        w(l.u1),
        &t.u,
        &d_u,
        DenseGrads {
            d_x: &mut tmp,
            d_w: &mut d_params[l.u1.range()],
            d_b: None,
        },
    );
    add(&mut d_a, &tmp);
    dense_bwd(
        lin,
        &t.i,
        w(l.u2),
        &t.v,
        &d_v,
        DenseGrads {
            d_x: &mut tmp,
            d_w: &mut d_params[l.u2.range()],
            d_b: None,
        },
    );
    add(&mut d_i, &tmp);
    {
        let d_id = &mut d_params[l.id_emb.range()];
        d_id.iter_mut().for_each(|v| *v = T::zero());
        for (fb, &id) in fr.ids.iter().enumerate() {
            add(&mut d_id[id * D..(id + 1) * D], &d_i[fb * D..(fb + 1) * D]);
        }
    }
    // Audio MLP.
    let mut d_ah = z0(b * D);
    dense_bwd(
        lin,
        &t.ah,
        w(l.am1_w),
        &t.a,
        &d_a,
        DenseGrads {
            d_x: &mut d_ah,
            d_w: &mut d_params[l.am1_w.range()],
            d_b: None,
        },
    );
    let mut d_y = z0(b * 32);
    dense_bwd(
        dense(b, 32, D, Act::Relu),
        &t.y,
        w(l.am0_w),
        &t.ah,
        &d_ah,
        DenseGrads {
            d_x: &mut d_y,
            d_w: &mut d_params[l.am0_w.range()],
            d_b: None,
        },
    );
    // Window softmax and weighted sum: y = Σ_w p_w X_w.
    let mut d_xw = z0(bw * 32);
    let mut d_logits = z0(b * WINDOWS);
    for fb in 0..b {
        let mut d_p = [T::zero(); WINDOWS];
        for k in 0..WINDOWS {
            for j in 0..32 {
                d_p[k] += t.xw[(fb * WINDOWS + k) * 32 + j] * d_y[fb * 32 + j];
                d_xw[(fb * WINDOWS + k) * 32 + j] = t.wts[fb * WINDOWS + k] * d_y[fb * 32 + j];
            }
        }
        let mut dot = T::zero();
        for k in 0..WINDOWS {
            dot += t.wts[fb * WINDOWS + k] * d_p[k];
        }
        for k in 0..WINDOWS {
            d_logits[fb * WINDOWS + k] = t.wts[fb * WINDOWS + k] * (d_p[k] - dot);
        }
    }
    let mut d_at = z0(b * WINDOWS);
    let (dw, db) = split_grads(d_params, l.at_fc_w, l.at_fc_b);
    dense_bwd(
        dense(b, WINDOWS, WINDOWS, Act::None),
        &t.at[4],
        w(l.at_fc_w),
        &t.logits,
        &d_logits,
        DenseGrads {
            d_x: &mut d_at,
            d_w: dw,
            d_b: Some(db),
        },
    );
    let aconvs = at_convs(b);
    for k in (0..5).rev() {
        let (ws, bs) = at_slots(l)[k];
        let x = if k == 0 { &t.xw } else { &t.at[k - 1] };
        let mut d_x = z0(x.len());
        let (dw, db) = split_grads(d_params, ws, bs);
        zero_all(dw, db);
        conv1d_bwd(aconvs[k], x, w(ws), &t.at[k], &d_at, &mut d_x, dw, db);
        if k == 0 {
            add(&mut d_xw, &d_x);
        } else {
            d_at = d_x;
        }
    }
    // AudioNet FC, then its convs (the audio features are data: the last d_x is dropped).
    let mut d_fc0 = z0(bw * 64);
    let (dw, db) = split_grads(d_params, l.an_fc1_w, l.an_fc1_b);
    dense_bwd(
        dense(bw, 64, 32, Act::None),
        &t.fc0,
        w(l.an_fc1_w),
        &t.xw,
        &d_xw,
        DenseGrads {
            d_x: &mut d_fc0,
            d_w: dw,
            d_b: Some(db),
        },
    );
    let mut d_an = z0(bw * 64);
    let (dw, db) = split_grads(d_params, l.an_fc0_w, l.an_fc0_b);
    dense_bwd(
        dense(bw, 64, 64, Act::LeakyRelu),
        &t.an[3],
        w(l.an_fc0_w),
        &t.fc0,
        &d_fc0,
        DenseGrads {
            d_x: &mut d_an,
            d_w: dw,
            d_b: Some(db),
        },
    );
    let convs = an_convs(bw, c);
    for k in (0..4).rev() {
        let (ws, bs) = an_slots(l)[k];
        let x = if k == 0 { &fr.audio } else { &t.an[k - 1] };
        let mut d_x = z0(x.len());
        let (dw, db) = split_grads(d_params, ws, bs);
        zero_all(dw, db);
        conv1d_bwd(convs[k], x, w(ws), &t.an[k], &d_an, &mut d_x, dw, db);
        d_an = d_x;
    }
}

fn zero_all<T: Real>(a: &mut [T], b: &mut [T]) {
    a.iter_mut().chain(b.iter_mut()).for_each(|v| *v = T::zero());
}
