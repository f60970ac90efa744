//! CPU twins of kernels/elementwise.cu.

/// x[i] = value
pub fn fill(x: &mut [f32], value: f32) {
    x.iter_mut().for_each(|e| *e = value);
}

/// y[i] += a * x[i]
pub fn axpy(y: &mut [f32], x: &[f32], a: f32) {
    assert_eq!(y.len(), x.len(), "axpy: length mismatch");
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// x[i] *= a
pub fn scale(x: &mut [f32], a: f32) {
    x.iter_mut().for_each(|e| *e *= a);
}

/// y[i] = x[i] / 255: image bytes to floats in [0, 1].
pub fn unit_from_u8(y: &mut [f32], x: &[u8]) {
    assert_eq!(y.len(), x.len(), "unit_from_u8: length mismatch");
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = xi as f32 / 255.0;
    }
}

/// Σ x, accumulated in f64 (the reference the GPU's f32 tree reduction is compared with).
pub fn sum(x: &[f32]) -> f32 {
    x.iter().map(|&v| v as f64).sum::<f64>() as f32
}

/// Σ x / n (0 for an empty slice, like the kernel).
pub fn mean(x: &[f32]) -> f32 {
    if x.is_empty() {
        0.0
    } else {
        (x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_compute_what_they_say() {
        let mut y = vec![1.0f32, 2.0, 3.0];
        axpy(&mut y, &[1.0, 1.0, -1.0], 2.0);
        assert_eq!(y, [3.0, 4.0, 1.0]);
        scale(&mut y, 0.5);
        assert_eq!(y, [1.5, 2.0, 0.5]);
        assert_eq!(sum(&y), 4.0);
        assert!((mean(&y) - 4.0 / 3.0).abs() < 1e-7);
        fill(&mut y, -7.0);
        assert_eq!(y, [-7.0; 3]);
        assert_eq!(mean(&[]), 0.0);
    }
}
