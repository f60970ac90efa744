//! CPU twin of kernels/adam.cu, and the per-group constants both backends use.

/// One parameter group's Adam constants for the current step, as the kernel reads them (`#[repr(C)]`, same
/// layout as `struct AdamGroup` in kernels/adam.cu).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AdamGroup {
    /// lr / (1 - beta1^t)
    pub step_size: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// 1 / sqrt(1 - beta2^t)
    pub inv_sqrt_bias2: f32,
    pub pad: f32,
}

impl AdamGroup {
    /// Constants for step `t` (1-based) with learning rate `lr`; bias corrections computed in f64.
    pub fn new(lr: f32, beta1: f32, beta2: f32, eps: f32, t: u32) -> Self {
        let bias1 = 1.0 - (beta1 as f64).powi(t as i32);
        let bias2 = 1.0 - (beta2 as f64).powi(t as i32);
        AdamGroup {
            step_size: (lr as f64 / bias1) as f32,
            beta1,
            beta2,
            eps,
            inv_sqrt_bias2: (1.0 / bias2.sqrt()) as f32,
            pad: 0.0,
        }
    }
}

/// One Adam step over one tensor: p, m, v updated in place from g, in the kernel's operation order.
pub fn adam_step(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: &AdamGroup) {
    assert!(g.len() == p.len() && m.len() == p.len() && v.len() == p.len(), "adam_step: length mismatch");
    for i in 0..p.len() {
        m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * g[i];
        v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * g[i] * g[i];
        p[i] -= h.step_size * m[i] / (v[i].sqrt() * h.inv_sqrt_bias2 + h.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first Adam step moves every parameter by about lr·sign(g), whatever |g| is.
    #[test]
    fn first_step_moves_by_lr_times_sign() {
        let h = AdamGroup::new(0.01, 0.9, 0.999, 1e-15, 1);
        let g = [3.0f32, -0.5, 1e-3, -20.0];
        let mut p = [0.0f32; 4];
        let (mut m, mut v) = ([0.0f32; 4], [0.0f32; 4]);
        adam_step(&mut p, &g, &mut m, &mut v, &h);
        for (pi, gi) in p.iter().zip(g) {
            assert!((pi + 0.01 * gi.signum()).abs() < 1e-6, "p {pi} for g {gi}");
        }
    }

    /// Against the textbook form in f64 over several steps.
    #[test]
    fn matches_textbook_adam_in_f64() {
        let (lr, b1, b2, eps) = (1e-3f64, 0.9f64, 0.999f64, 1e-8f64);
        let grads: Vec<f64> = (0..50).map(|k| ((k * 37 % 11) as f64 - 5.0) * 0.3).collect();
        let (mut p32, mut m32, mut v32) = ([0.5f32], [0.0f32], [0.0f32]);
        let (mut p, mut m, mut v) = (0.5f64, 0.0f64, 0.0f64);
        for (t, g) in grads.iter().enumerate() {
            let t = t as i32 + 1;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let mhat = m / (1.0 - b1.powi(t));
            let vhat = v / (1.0 - b2.powi(t));
            p -= lr * mhat / (vhat.sqrt() + eps);
            let h = AdamGroup::new(lr as f32, b1 as f32, b2 as f32, eps as f32, t as u32);
            adam_step(&mut p32, &[*g as f32], &mut m32, &mut v32, &h);
        }
        assert!((p32[0] as f64 - p).abs() < 1e-5, "{} vs {p}", p32[0]);
    }
}
