//! CPU twin of kernels/mlp.cu: the dense layer Y = act(X·Wᵀ + b) that every MLP of the model is made of, and
//! its backward. Plain loops in the kernels' order: each output element sums over k from 0 upwards and adds
//! the bias last. The long reductions over rows (d_w, d_b) accumulate in f64 here, so the f32 twin is the
//! accurate reference the GPU's split-and-reduce sums are measured against.
//!
//! Shapes: M rows, I = n_in, O = n_out; x [M,I], w [O,I] (PyTorch's Linear layout), b [O], y [M,O].

use super::real::Real;

/// LeakyReLU's negative slope (the audio encoder's, SPEC §5); LEAKY_SLOPE in kernels/mlp.cu.
pub const LEAKY_SLOPE: f64 = 0.02;

/// The activation applied after the affine map. Codes as in kernels/mlp.cu (ACT_NONE, ACT_RELU, ACT_LEAKY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    None = 0,
    Relu = 1,
    LeakyRelu = 2,
}

impl Act {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// act(v). NaN propagates (the comparisons are written so a NaN takes the identity branch).
    pub fn apply<T: Real>(self, v: T) -> T {
        match self {
            Act::None => v,
            Act::Relu => if v < T::zero() { T::zero() } else { v },
            Act::LeakyRelu => if v < T::zero() { v * T::from_f64(LEAKY_SLOPE) } else { v },
        }
    }

    /// dL/d(pre-activation) from the output y and dL/dy. Reads the branch from y (y > 0 exactly where the
    /// pre-activation is > 0 for all three), so the pre-activations need not be kept. A select, not a
    /// product: an inactive ReLU unit passes 0 even when d_y is NaN.
    pub fn vjp<T: Real>(self, y: T, d_y: T) -> T {
        match self {
            Act::None => d_y,
            Act::Relu => if y > T::zero() { d_y } else { T::zero() },
            Act::LeakyRelu => if y > T::zero() { d_y } else { d_y * T::from_f64(LEAKY_SLOPE) },
        }
    }
}

impl std::str::FromStr for Act {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s {
            "none" => Ok(Act::None),
            "relu" => Ok(Act::Relu),
            "leaky" => Ok(Act::LeakyRelu),
            _ => Err(crate::error::Error::input(format!("--act: expected none, relu or leaky, got {s:?}"))),
        }
    }
}

/// The shape and activation of one dense layer applied to `rows` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dense {
    pub rows: usize,
    pub n_in: usize,
    pub n_out: usize,
    pub act: Act,
}

impl Dense {
    fn check(&self, what: &str, got: &[(&str, usize, usize)]) {
        for &(name, len, want) in got {
            assert_eq!(len, want, "{what}: {name} has {len} elements, the shape {self:?} needs {want}");
        }
    }
}

/// y [M,O] = act(x [M,I] · wᵀ + b); `b` None for a layer without bias.
pub fn dense_fwd<T: Real>(s: Dense, x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T]) {
    let (m, ni, no) = (s.rows, s.n_in, s.n_out);
    s.check("dense_fwd", &[("x", x.len(), m * ni), ("w", w.len(), no * ni), ("y", y.len(), m * no)]);
    if let Some(b) = b {
        s.check("dense_fwd", &[("b", b.len(), no)]);
    }
    for r in 0..m {
        let xr = &x[r * ni..(r + 1) * ni];
        for (o, yo) in y[r * no..(r + 1) * no].iter_mut().enumerate() {
            let mut acc = T::zero();
            for (&a, &c) in xr.iter().zip(&w[o * ni..(o + 1) * ni]) {
                acc += a * c;
            }
            if let Some(b) = b {
                acc += b[o];
            }
            *yo = s.act.apply(acc);
        }
    }
}

/// d_x [M,I] = (act'(y) ⊙ d_y) [M,O] · w [O,I]; overwrites d_x.
pub fn dense_bwd_x<T: Real>(s: Dense, w: &[T], y: &[T], d_y: &[T], d_x: &mut [T]) {
    let (m, ni, no) = (s.rows, s.n_in, s.n_out);
    s.check(
        "dense_bwd_x",
        &[("w", w.len(), no * ni), ("y", y.len(), m * no), ("d_y", d_y.len(), m * no), ("d_x", d_x.len(), m * ni)],
    );
    let mut d_pre = vec![T::zero(); no];
    for r in 0..m {
        for o in 0..no {
            d_pre[o] = s.act.vjp(y[r * no + o], d_y[r * no + o]);
        }
        for i in 0..ni {
            let mut acc = T::zero();
            for (o, &d) in d_pre.iter().enumerate() {
                acc += d * w[o * ni + i];
            }
            d_x[r * ni + i] = acc;
        }
    }
}

/// d_w [O,I] = Σ_rows (act'(y) ⊙ d_y)ᵀ · x and d_b [O] = Σ_rows act'(y) ⊙ d_y, accumulated in f64;
/// overwrites both. `d_b` None for a layer without bias.
pub fn dense_bwd_w<T: Real>(s: Dense, x: &[T], y: &[T], d_y: &[T], d_w: &mut [T], d_b: Option<&mut [T]>) {
    let (m, ni, no) = (s.rows, s.n_in, s.n_out);
    s.check(
        "dense_bwd_w",
        &[("x", x.len(), m * ni), ("y", y.len(), m * no), ("d_y", d_y.len(), m * no), ("d_w", d_w.len(), no * ni)],
    );
    let mut acc_w = vec![0.0f64; no * ni];
    let mut acc_b = vec![0.0f64; no];
    for r in 0..m {
        for o in 0..no {
            let d_pre = s.act.vjp(y[r * no + o], d_y[r * no + o]);
            acc_b[o] += d_pre.to_f64();
            for (a, &xi) in acc_w[o * ni..(o + 1) * ni].iter_mut().zip(&x[r * ni..(r + 1) * ni]) {
                *a += (d_pre * xi).to_f64();
            }
        }
    }
    for (d, a) in d_w.iter_mut().zip(&acc_w) {
        *d = T::from_f64(*a);
    }
    if let Some(d_b) = d_b {
        s.check("dense_bwd_w", &[("d_b", d_b.len(), no)]);
        for (d, a) in d_b.iter_mut().zip(&acc_b) {
            *d = T::from_f64(*a);
        }
    }
}

/// The whole backward of one layer: d_x, d_w and d_b (see dense_bwd_x and dense_bwd_w).
pub struct DenseGrads<'a, T> {
    pub d_x: &'a mut [T],
    pub d_w: &'a mut [T],
    pub d_b: Option<&'a mut [T]>,
}

pub fn dense_bwd<T: Real>(s: Dense, x: &[T], w: &[T], y: &[T], d_y: &[T], grads: DenseGrads<'_, T>) {
    dense_bwd_x(s, w, y, d_y, grads.d_x);
    dense_bwd_w(s, x, y, d_y, grads.d_w, grads.d_b);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-computed 2×2 layer with a ReLU that cuts one unit.
    #[test]
    fn small_layer_by_hand() {
        let s = Dense { rows: 1, n_in: 2, n_out: 2, act: Act::Relu };
        let (x, w, b) = ([1.0f32, 2.0], [1.0f32, 1.0, -1.0, -1.0], [0.5f32, 0.0]);
        let mut y = [0.0f32; 2];
        dense_fwd(s, &x, &w, Some(&b), &mut y);
        assert_eq!(y, [3.5, 0.0]);
        let (mut d_x, mut d_w, mut d_b) = ([0.0f32; 2], [0.0f32; 4], [0.0f32; 2]);
        dense_bwd(s, &x, &w, &y, &[1.0, 1.0], DenseGrads { d_x: &mut d_x, d_w: &mut d_w, d_b: Some(&mut d_b) });
        assert_eq!(d_x, [1.0, 1.0]);
        assert_eq!(d_w, [1.0, 2.0, 0.0, 0.0]);
        assert_eq!(d_b, [1.0, 0.0]);
    }

    #[test]
    fn activations_and_their_vjp() {
        assert_eq!(Act::LeakyRelu.apply(-1.0f32), -0.02);
        assert_eq!(Act::LeakyRelu.vjp(-0.02f32, 2.0), 0.04);
        assert_eq!(Act::Relu.vjp(0.0f32, f32::NAN), 0.0);
        assert!(Act::Relu.apply(f32::NAN).is_nan());
        assert_eq!(Act::None.vjp(-3.0f64, 2.0), 2.0);
    }
}
